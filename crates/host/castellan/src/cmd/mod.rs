//! The subcommands of `castellan`, one module each.

pub(crate) mod agent;
pub(crate) mod alerts;
pub(crate) mod args;
pub(crate) mod audit;
pub(crate) mod bench;
pub(crate) mod bench_fleet;
pub(crate) mod bench_response;
mod bench_response_loop;
pub(crate) mod bench_rollout;
pub(crate) mod campaign;
pub(crate) mod demo;
pub(crate) mod demo_console;
pub(crate) mod demo_respond;
pub(crate) mod demo_update;
pub(crate) mod detect;
pub(crate) mod factory;
pub(crate) mod fleet_api;
pub(crate) mod image;
pub(crate) mod keys;
pub(crate) mod operator;
pub(crate) mod pki;
pub(crate) mod release;
pub(crate) mod repo;
pub(crate) mod serve;
pub(crate) mod sim;
pub(crate) mod sim_services;
pub(crate) mod suit;
pub(crate) mod token;

use std::path::Path;

use anyhow::Context as _;

/// Read a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Read a text file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Read a binary file (a token, a manifest) that may also be given as hex text, as the
/// standards' examples are published.
pub(crate) fn read_binary_or_hex(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read_file(path)?;
    if let Ok(text) = std::str::from_utf8(&bytes) {
        let compact: String = text.split_whitespace().collect();
        if !compact.is_empty() && compact.bytes().all(|b| b.is_ascii_hexdigit()) {
            return hex::decode(&compact)
                .with_context(|| format!("{}: odd-length hex", path.display()));
        }
    }
    Ok(bytes)
}

/// Write a file, naming it in the error.
pub(crate) fn write_file(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, data).with_context(|| format!("cannot write {}", path.display()))
}
