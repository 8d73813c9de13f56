//! `cargo xtask bench-console`: the console's device list at 100 and 10,000 devices (page
//! weight, time to interactive in headless Chromium), by the ignored test
//! `castellan-server/tests/console_bench.rs`; its table replaces the one between the
//! `bench-console` markers of `docs/benchmarks.md`. Not a CI step: it takes minutes and its
//! times depend on the machine.

use std::path::Path;

use crate::steps::{Result, root, run};

const BEGIN: &str = "<!-- bench-console:begin -->";
const END: &str = "<!-- bench-console:end -->";

/// Run the benchmark (`--release` for a release build) and record its table.
pub(crate) fn bench_console(args: &[String]) -> Result {
    let release = args.iter().any(|a| a == "--release");
    let root = root();
    let mut c =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(&root)
        .args(["test", "-p", "castellan-server", "--test", "console_bench"]);
    if release {
        c.arg("--release");
    }
    c.args(["--", "--ignored", "--nocapture"]);
    run(&mut c)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let table = std::fs::read_to_string(target.join("console-bench.md"))
        .map_err(|e| format!("the benchmark wrote no table: {e}"))?;
    let build = if release { "release" } else { "debug" };
    record(&root.join("docs/benchmarks.md"), &table, build)
}

/// Replace the text between the markers of `doc` with `table` and the date.
fn record(doc: &Path, table: &str, build: &str) -> Result {
    let text = std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!("{}: no {BEGIN} … {END} section", doc.display()));
    };
    if e < b {
        return Err(format!("{}: the markers are out of order", doc.display()));
    }
    let body = format!(
        "{BEGIN}\nLast run by `cargo xtask bench-console` ({build} build, SQLite):\n\n{table}{END}"
    );
    let updated = format!("{}{body}{}", &text[..b], &text[e + END.len()..]);
    std::fs::write(doc, updated).map_err(|e| format!("{}: {e}", doc.display()))?;
    eprintln!("bench-console: table written to {}", doc.display());
    Ok(())
}
