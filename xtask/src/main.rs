//! `cargo xtask …`: Castellan's build and test automation, std-only so it builds in seconds.
//!
//! * `cargo xtask ci` — the README's test command: installs what the tests need (Python interop
//!   peers, cargo-fuzz, Debian packages when run as root), then runs format and lint checks,
//!   every test, the fuzz targets for a bounded time and the power-loss proof.
//! * `cargo xtask deps` — only the installation step.
//! * `cargo xtask fuzz [--seconds N] [--jobs J] [--minimise] [TARGET…]` — run cargo-fuzz targets
//!   over the committed corpora (stable toolchain, `RUSTC_BOOTSTRAP=1`), J at a time, then fold
//!   what they found into the minimised corpora.
//! * `cargo xtask powerfail` — cut power at every flash operation of upgrade, revert and confirm
//!   on every flash geometry; last line `power-loss: <P> injection points, <F> failures`.
//! * `cargo xtask bench` — the benchmarks whose ratios `docs/benchmarks.md` records.
//! * `cargo xtask bench-console [--release]` — the console's device list at 100 and 10,000
//!   devices in headless Chromium; its table goes into `docs/benchmarks.md`.
//! * `cargo xtask tuf-conformance` — the public TUF conformance suite against Castellan's TUF
//!   client; last line `tuf-conformance: <pytest summary>`.
//! * `cargo xtask cluster [--config FILE] [--dir DIR] [--fresh]` — a local cluster on
//!   127.0.0.1: one PostgreSQL database, three `castellan serve` instances, HAProxy in front of
//!   their HTTPS APIs; endpoints and health printed, stopped cleanly on Ctrl-C.
//! * `cargo xtask arch [--check]` — the crate graph in `docs/architecture.md`, from
//!   `cargo metadata`, and the layering rule (device and formats never use fleet crates).

mod arch;
mod bench_console;
mod cluster;
mod cluster_config;
mod cluster_pg;
mod deps;
mod disk;
mod firmware;
mod fuzz;
mod qemu;
mod qemu_campaign;
mod qemu_detect;
mod qemu_mqtt;
mod qemu_net;
mod qemu_suit;
mod qemu_tls;
mod steps;
mod symbols;
mod tuf_conformance;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         ci                       install tools, then fmt, clippy, tests, fuzz, power-loss proof\n  \
         arch [--check]           write (or check) the crate graph in docs/architecture.md; check the layering rule\n  \
         deps                     install the tools the tests need (pip, cargo-fuzz, apt)\n  \
         fuzz [--seconds N] [--jobs J] [--minimise] [T…]\n                           run fuzz targets for N seconds each (default 30; 0: no run), J at a\n                           time (default 1), then minimise their corpora into fuzz/corpus/\n  \
         bench                    run the benchmarks\n  \
         cluster [--config F] [--dir D] [--fresh]\n                           a local 3-instance cluster behind HAProxy on one PostgreSQL (--help)\n  \
         bench-console [--release] the console's device list at 100 and 10,000 devices in Chromium\n                           (page weight, time to interactive) into docs/benchmarks.md\n  \
         powerfail                exhaustive power-loss proof of the boot chain\n  \
         firmware [--symbols [I]] build the Cortex-M33 images (mps2-an505), print their footprint (and I's largest symbols)\n  \
         qemu-test [--bench] [--only TEXT]\n                           run the firmware scenarios in QEMU (those whose name contains TEXT;\n                           and the verification bench)\n  \
         qemu-test --bench-only   run only the verification bench, boot time and stack peaks\n  \
         qemu-campaign            a fleet service updates the QEMU device in a campaign (end to end)\n  \
         tuf-conformance          the public TUF conformance suite against Castellan's TUF client\n"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    // Commands without options of their own answer `--help` with the overview rather than
    // starting their work.
    let wants_help = rest.iter().any(|a| a == "-h" || a == "--help");
    if wants_help
        && matches!(
            cmd.as_str(),
            "ci" | "deps" | "bench" | "powerfail" | "tuf-conformance"
        )
    {
        usage();
        return ExitCode::SUCCESS;
    }
    let result = match cmd.as_str() {
        "ci" => steps::ci(),
        "arch" => arch::arch_cmd(rest),
        "deps" => deps::install_all(),
        "fuzz" => fuzz::fuzz_cmd(rest),
        "bench" => steps::bench(),
        "cluster" => cluster::cluster_cmd(rest),
        "bench-console" => bench_console::bench_console(rest),
        "powerfail" => steps::powerfail(),
        "firmware" => firmware::firmware_cmd(rest),
        "qemu-test" => qemu::qemu_test(rest),
        "qemu-campaign" => qemu_campaign::qemu_campaign(rest),
        "tuf-conformance" => tuf_conformance::tuf_conformance(),
        "-h" | "--help" | "help" => return usage(),
        other => {
            eprintln!("xtask: unknown command `{other}`");
            return usage();
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
