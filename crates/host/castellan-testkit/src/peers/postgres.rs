//! PostgreSQL: the store's second backend. The throwaway servers themselves are started by
//! `castellan_store::testing` (which installs the package when the tests run as root); this
//! driver only says whether the server binaries are there.

/// How to install it.
pub const INSTALL: &str = "apt-get install -y postgresql";

/// Whether some `/usr/lib/postgresql/<version>/bin/initdb` exists.
pub fn installed() -> bool {
    std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|version| version.path().join("bin/initdb").exists())
}

/// Fails the test unless PostgreSQL's server binaries are installed.
#[track_caller]
pub fn require() {
    if !installed() {
        super::missing(
            "PostgreSQL",
            "no /usr/lib/postgresql/<version>/bin/initdb",
            INSTALL,
        );
    }
}
