//! The steps of `cargo xtask ci`, each also usable on its own.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Result of a step: the error is a message for the user.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// The repository root (xtask lives one level below it).
pub(crate) fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Run a command, failing with its command line when it fails.
pub(crate) fn run(c: &mut Command) -> Result {
    let status = c.status().map_err(|e| format!("cannot start {c:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{c:?} failed ({status})"))
    }
}

/// Whether a command runs and succeeds (output discarded).
pub(crate) fn succeeds(c: &mut Command) -> bool {
    c.output().map(|o| o.status.success()).unwrap_or(false)
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn step(name: &str, f: impl FnOnce() -> Result) -> Result {
    eprintln!("\n== {name}");
    let t = Instant::now();
    let r = f();
    eprintln!(
        "== {name}: {} in {:.0?}",
        if r.is_ok() { "ok" } else { "FAILED" },
        t.elapsed()
    );
    r
}

/// The README's test command.
pub(crate) fn ci() -> Result {
    let t = Instant::now();
    crate::disk::report("start");
    step("install tools", crate::deps::install_all)?;
    step("cargo fmt --check", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    step("cargo clippy", || {
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        // Device crates must also build and lint without std, with no algorithm features and
        // with the firmware's selection (ECDSA P-256 / SHA-256 only; see firmware/Cargo.toml).
        for (p, features) in [
            ("castellan-image", ""),
            ("castellan-image", "p256"),
            ("castellan-attest", ""),
            ("castellan-suit", ""),
            ("castellan-services", "p256"),
            // The firmware's Cortex-M assembly routes (dead code on the host, linted all the same).
            ("castellan-image", "p256,p256-cortex-m,sha256-cortex-m"),
            ("castellan-suit", "p256-cortex-m"),
            ("castellan-services", "p256,p256-cortex-m"),
        ] {
            run(cargo().args([
                "clippy",
                "-p",
                p,
                "--no-default-features",
                "--features",
                features,
                "--",
                "-D",
                "warnings",
            ]))?;
        }
        Ok(())
    })?;
    step(
        "crate graph and layering rule (cargo xtask arch --check)",
        || crate::arch::arch_cmd(&["--check".to_owned()]),
    )?;
    let mut totals = (0u64, 0u64);
    step("cargo test", || {
        // The deps step installed the browser: its tests must not skip here.
        let mut test = cargo();
        test.args(["test", "--workspace", "--no-fail-fast"])
            .env("CASTELLAN_REQUIRE_BROWSER", "1");
        totals = run_tests(&mut test)?;
        Ok(())
    })?;
    // The test executables are the largest part of the build and no later step runs them.
    crate::disk::prune_test_executables_if_low();
    step("firmware in QEMU (cargo xtask qemu-test)", || {
        let (passed, failed) = crate::qemu::scenarios(false, true, None)?;
        totals.0 += passed;
        totals.1 += failed;
        if failed > 0 {
            return Err(format!("{failed} QEMU scenario(s) failed"));
        }
        Ok(())
    })?;
    step(
        "firmware lint (cargo xtask firmware --clippy)",
        crate::firmware::clippy,
    )?;
    step(
        "QEMU device in an update campaign (cargo xtask qemu-campaign)",
        || {
            crate::qemu_campaign::qemu_campaign(&[])?;
            totals.0 += 1;
            Ok(())
        },
    )?;
    step(
        "TUF conformance suite (cargo xtask tuf-conformance)",
        crate::tuf_conformance::tuf_conformance,
    )?;
    step("power-loss proof", powerfail)?;
    step("fuzz (bounded, over the committed corpora)", || {
        crate::fuzz::fuzz(crate::fuzz::FUZZ_TARGETS, 30, 1)
    })?;
    crate::disk::report("end");
    eprintln!("\nxtask ci: all steps passed in {:.0?}", t.elapsed());
    println!("ci: {} passed, {} failed", totals.0, totals.1);
    Ok(())
}

/// Run `cargo test`, echoing its output, and add up its `test result:` lines.
fn run_tests(c: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead as _, BufReader};
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {c:?}: {e}"))?;
    let mut totals = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                totals.0 += count_before(rest, " passed");
                totals.1 += count_before(rest, " failed");
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(totals)
    } else {
        Err(format!(
            "{c:?} failed ({status}): {} passed, {} failed",
            totals.0, totals.1
        ))
    }
}

/// The number just before `word` in a cargo `test result:` line.
fn count_before(line: &str, word: &str) -> u64 {
    line.find(word)
        .and_then(|end| line[..end].rsplit([' ', ';']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `cargo xtask powerfail`: the exhaustive power-loss sweep of the boot chain (release build).
pub(crate) fn powerfail() -> Result {
    run(cargo().args([
        "run",
        "--release",
        "--quiet",
        "-p",
        "castellan-powerfail",
        "--",
    ]))
}

/// Run the benchmarks (release build).
pub(crate) fn bench() -> Result {
    run(cargo().args(["bench", "-p", "castellan-image", "--bench", "verify"]))
}
