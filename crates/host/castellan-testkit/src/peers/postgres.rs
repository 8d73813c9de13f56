//! PostgreSQL: the store's second backend. The throwaway servers themselves are started by
//! `castellan_store::testing` (which installs the package when the tests run as root); this
//! driver only says whether the server binaries are there.

use std::path::PathBuf;

/// How to install it.
pub const INSTALL: &str = "apt-get install -y postgresql";

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// Fails the test unless PostgreSQL's server binaries are installed.
#[track_caller]
pub fn require() -> PathBuf {
    bin_dir().unwrap_or_else(|| {
        super::missing(
            "PostgreSQL",
            "no /usr/lib/postgresql/<version>/bin/initdb",
            INSTALL,
        )
    })
}
