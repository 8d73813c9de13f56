//! `cargo xtask fuzz`: the cargo-fuzz targets (one per parser of hostile input), run over the
//! corpora kept in the repository.
//!
//! ```text
//!   fuzz/seeds/<target>/    small valid inputs, written by hand or by a fixture script
//!   fuzz/corpus/<target>/   the minimised corpus, committed: what every run starts from
//!   fuzz/found/<target>/     what runs found since the last `--minimise` (git-ignored), and
//!   fuzz/found/<target>.log  the last run's libFuzzer output
//!   fuzz/artifacts/<target>/ crashing inputs (git-ignored): make each a regression test
//! ```
//!
//! A run reads the three directories and writes new inputs to `found/` only, so CI's bounded run
//! leaves the committed corpus untouched; `--minimise` folds `found/` into `corpus/` with
//! `cargo fuzz cmin` (the smallest set with the same coverage) and empties it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::steps::{Result, root, run};

/// Fuzz targets, one per parser of hostile input (see `fuzz/Cargo.toml`).
pub(crate) const FUZZ_TARGETS: &[&str] = &[
    "image_verify",
    "attest_token",
    "suit_envelope",
    "x509_cert",
    "protocol_messages",
    "tuf_metadata",
    "p256_encodings",
    "detect_model",
    "detect_trace",
    "detect_report",
];

/// What `cargo xtask fuzz` was asked to do.
struct Options<'a> {
    seconds: u32,
    jobs: usize,
    minimise: bool,
    targets: Vec<&'a str>,
}

fn parse(args: &[String]) -> Result<Options<'_>> {
    let mut o = Options {
        seconds: 30,
        jobs: 1,
        minimise: false,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                o.seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds needs a number of seconds (0: no run)")?;
            }
            "--jobs" => {
                o.jobs = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--jobs needs a number of targets to run at a time (1 or more)")?;
            }
            "--minimise" | "--minimize" => o.minimise = true,
            t if FUZZ_TARGETS.contains(&t) => o.targets.push(t),
            other => {
                return Err(format!(
                    "`{other}` is not a fuzz target; the targets are {}",
                    FUZZ_TARGETS.join(", ")
                ));
            }
        }
    }
    if o.targets.is_empty() {
        o.targets.extend_from_slice(FUZZ_TARGETS);
    }
    Ok(o)
}

/// `cargo xtask fuzz [--seconds N] [--jobs J] [--minimise] [TARGET…]`.
pub(crate) fn fuzz_cmd(args: &[String]) -> Result {
    let o = parse(args)?;
    crate::deps::cargo_fuzz()?;
    if o.seconds > 0 {
        fuzz(&o.targets, o.seconds, o.jobs)?;
    }
    if o.minimise {
        for t in &o.targets {
            minimise(t)?;
        }
    }
    Ok(())
}

fn dir() -> PathBuf {
    root().join("fuzz")
}

/// cargo-fuzz, with the nightly-only flags (-Zsanitizer) it passes accepted by the stable
/// toolchain.
fn cargo_fuzz() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(dir()).env("RUSTC_BOOTSTRAP", "1").arg("fuzz");
    c
}

/// Build every target once, then run `targets` for `seconds` each, `jobs` at a time.
pub(crate) fn fuzz(targets: &[&str], seconds: u32, jobs: usize) -> Result {
    run(cargo_fuzz().arg("build"))?;
    let bin_dir = dir().join("target").join(host_triple()?).join("release");
    let mut failed = Vec::new();
    for batch in targets.chunks(jobs) {
        let mut running = Vec::new();
        for t in batch {
            eprintln!("xtask: fuzzing {t} for {seconds} s");
            running.push((*t, start(&bin_dir, t, seconds)?));
        }
        for (t, mut child) in running {
            let status = child
                .wait()
                .map_err(|e| format!("waiting for the {t} fuzzer: {e}"))?;
            let log = std::fs::read_to_string(log_path(t)).unwrap_or_default();
            if status.success() {
                eprintln!("xtask: {}", summary(t, &log));
            } else {
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                for line in tail.iter().rev() {
                    eprintln!("  {line}");
                }
                failed.push(t);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz target(s) {} failed: the crashing input is in fuzz/artifacts/<target>/; \
             turn it into a regression test in the crate that owns the parser, then fix it",
            failed.join(", ")
        ))
    }
}

fn log_path(target: &str) -> PathBuf {
    dir().join("found").join(format!("{target}.log"))
}

/// Start one fuzzer over found/, corpus/ and seeds/ (new inputs go to found/), output to its log.
fn start(bin_dir: &Path, target: &str, seconds: u32) -> Result<Child> {
    let d = dir();
    let found = d.join("found").join(target);
    let corpus = d.join("corpus").join(target);
    let artifacts = d.join("artifacts").join(target);
    for p in [&found, &corpus, &artifacts] {
        std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let log = std::fs::File::create(log_path(target))
        .map_err(|e| format!("{}: {e}", log_path(target).display()))?;
    let mut c = Command::new(bin_dir.join(target));
    c.current_dir(&d).arg(&found).arg(&corpus);
    let seeds = d.join("seeds").join(target);
    if seeds.is_dir() {
        c.arg(&seeds);
    }
    c.args([
        format!("-max_total_time={seconds}"),
        "-rss_limit_mb=4096".into(),
        "-print_final_stats=1".into(),
        format!("-artifact_prefix={}/", artifacts.display()),
    ])
    .stdout(Stdio::null())
    .stderr(log);
    c.spawn()
        .map_err(|e| format!("cannot start the {target} fuzzer ({c:?}): {e}"))
}

/// One line from a run's log: executions, and the coverage and corpus of its last status line.
fn summary(target: &str, log: &str) -> String {
    let runs = log
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .map_or("?", str::trim);
    let status = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains("cov: "))
        .and_then(|l| l.find("cov: ").map(|i| &l[i..]))
        .unwrap_or("no status line");
    format!("{target}: {runs} executions; {status}")
}

/// Fold found/<target> into corpus/<target>, minimise it with `cargo fuzz cmin`, empty found/.
fn minimise(target: &str) -> Result {
    let d = dir();
    let found = d.join("found").join(target);
    let corpus = d.join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    if let Ok(entries) = std::fs::read_dir(&found) {
        for entry in entries.flatten() {
            let to = corpus.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(|e| format!("{}: {e}", to.display()))?;
        }
    }
    let before = count(&corpus);
    eprintln!("xtask: minimising the {target} corpus ({before} inputs)");
    run(cargo_fuzz().args(["cmin", target]).arg(&corpus))?;
    eprintln!(
        "xtask: {target}: {before} -> {} inputs in fuzz/corpus/{target}",
        count(&corpus)
    );
    Ok(())
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().count())
}

/// The host's target triple, under which cargo-fuzz puts its builds.
fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV printed no host triple".into())
}
