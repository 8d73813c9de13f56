//! `cargo xtask tuf-conformance`: the public TUF conformance suite against Castellan's TUF
//! client (`castellan-tuf-conformance`).
//!
//! The suite comes from `../shared/peers/tuf-conformance` next to the repository when that
//! copy exists, else from its public repository at a pinned commit (cloned once under
//! `target/`). Its Python dependencies are pinned and live in their own virtual environment
//! under `target/` (they never touch the system Python); Debian's `faketime` drives the
//! expiry tests. Expected failures are listed, one test name per line with the reason in the
//! comment above, in `crates/fleet/castellan-tuf/conformance.xfails` (strict: a listed test
//! that passes fails the run). The last line printed is pytest's summary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::steps::{Result, root, run, succeeds};

/// The public suite and the commit taken when no local copy is present.
const SUITE_REPOSITORY: &str = "https://github.com/theupdateframework/tuf-conformance";
const SUITE_COMMIT: &str = "eec841c186f81f2d9d8d30460c7e7deefa615f9e";
/// The local copy, relative to the repository root.
const LOCAL_SUITE: &str = "../shared/peers/tuf-conformance";
/// The suite's Python dependencies, as pinned in its `pyproject.toml` at `SUITE_COMMIT`.
const PIP_PINS: &[&str] = &[
    "securesystemslib[crypto]==1.4.0",
    "tuf==7.0.0",
    "pytest==9.1.1",
    "pytest-json-report==1.5.0",
];
const CLIENT_BIN: &str = "castellan-tuf-conformance";
const XFAILS: &str = "crates/fleet/castellan-tuf/conformance.xfails";

fn work_dir() -> PathBuf {
    root().join("target").join("tuf-conformance")
}

fn venv() -> PathBuf {
    work_dir().join("venv")
}

/// Create the suite's virtual environment with its pinned dependencies (idempotent).
pub(crate) fn install_env() -> Result {
    let venv = venv();
    let python = venv.join("bin").join("python");
    if !python.exists() {
        eprintln!("xtask: creating the tuf-conformance Python environment");
        run(Command::new(crate::deps::python())
            .args(["-m", "venv"])
            .arg(&venv))?;
    }
    let probe = format!(
        "import importlib.metadata as m, sys\n\
         want = {PIP_PINS:?}\n\
         sys.exit(0 if all(m.version(p.split('==')[0].split('[')[0]) == p.split('==')[1] for p in want) else 1)"
    );
    if succeeds(Command::new(&python).args(["-c", &probe])) {
        return Ok(());
    }
    eprintln!("xtask: installing {}", PIP_PINS.join(" "));
    run(Command::new(&python)
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .args(PIP_PINS))
}

/// The suite's source: the local copy, else a pinned clone. Says which.
fn suite() -> Result<PathBuf> {
    let local = root().join(LOCAL_SUITE);
    if local.join("tuf_conformance").is_dir() {
        eprintln!("xtask: tuf-conformance suite: local copy {LOCAL_SUITE}");
        return Ok(local);
    }
    let clone = work_dir().join("suite");
    if !clone.join("tuf_conformance").is_dir() {
        eprintln!("xtask: cloning {SUITE_REPOSITORY} at {SUITE_COMMIT}");
        std::fs::create_dir_all(&clone).map_err(|e| format!("{}: {e}", clone.display()))?;
        let git = |args: &[&str]| run(Command::new("git").current_dir(&clone).args(args));
        git(&["init", "-q"])?;
        git(&[
            "fetch",
            "-q",
            "--depth",
            "1",
            SUITE_REPOSITORY,
            SUITE_COMMIT,
        ])?;
        git(&["checkout", "-q", "FETCH_HEAD"])?;
    }
    eprintln!("xtask: tuf-conformance suite: {SUITE_REPOSITORY} at {SUITE_COMMIT}");
    Ok(clone)
}

/// Build the client, run the suite, print pytest's summary line.
pub(crate) fn tuf_conformance() -> Result {
    let started = std::time::Instant::now();
    crate::deps::install_all()?;
    if !succeeds(Command::new("faketime").args(["-f", "+0", "true"])) {
        return Err(
            "`faketime` is missing: run `cargo xtask deps` (Debian package faketime)".into(),
        );
    }
    let suite = suite()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).current_dir(root()).args([
        "build",
        "--quiet",
        "-p",
        "castellan-tuf",
        "--bin",
        CLIENT_BIN,
    ]))?;
    let client = root().join("target").join("debug").join(CLIENT_BIN);
    // The suite looks for `<entrypoint>.xfails`.
    let xfails = root().join(XFAILS);
    let beside = client.with_extension("xfails");
    std::fs::copy(&xfails, &beside).map_err(|e| format!("{}: {e}", xfails.display()))?;
    let summary = run_pytest(&suite, &client)?;
    eprintln!(
        "xtask: tuf-conformance step took {:.0?} (installation and client build included)",
        started.elapsed()
    );
    println!("tuf-conformance: {summary}");
    if summary.contains("failed") || summary.contains("error") {
        return Err(format!("tuf-conformance: {summary}"));
    }
    Ok(())
}

fn run_pytest(suite: &Path, client: &Path) -> Result<String> {
    use std::io::{BufRead as _, BufReader};
    let mut c = Command::new(venv().join("bin").join("pytest"));
    c.current_dir(suite)
        // The suite may sit in a read-only directory: no cache, no bytecode files.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-q", "-p", "no:cacheprovider", "-rfE", "tuf_conformance"])
        .arg("--entrypoint")
        .arg(client)
        .stdout(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("cannot start {c:?}: {e}"))?;
    let mut summary = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
            println!("{line}");
            if line.contains(" in ") && (line.contains("passed") || line.contains("failed")) {
                summary = line
                    .trim_matches(|ch: char| ch == '=' || ch == ' ')
                    .to_owned();
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if summary.is_empty() {
        return Err(format!("pytest ended ({status}) without a summary line"));
    }
    Ok(summary)
}
