//! SoftHSM2: a PKCS#11 token in files, where the tests keep CA and release keys.

use std::path::{Path, PathBuf};

/// How to install it.
pub const INSTALL: &str = "sudo apt-get install -y softhsm2";
/// The PKCS#11 module Debian's package installs (`castellan_pki::SOFTHSM2_MODULE`).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Its token tool.
pub const UTIL: &str = "/usr/bin/softhsm2-util";

/// Makes sure SoftHSM2 is installed: installs it when the tests run as root and it is missing,
/// otherwise fails the test with the command to run.
#[track_caller]
pub fn require() {
    if !Path::new(MODULE).exists() {
        super::apt_install_as_root(&["softhsm2"]);
    }
    super::require_file(&format!("SoftHSM2 ({MODULE})"), &[MODULE], INSTALL);
    super::require_file("softhsm2-util", &[UTIL], INSTALL);
}

/// The configuration file of a token directory (`SOFTHSM2_CONF` points at it): file object
/// store, errors only.
pub fn config(token_dir: &Path) -> String {
    format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        token_dir.display()
    )
}

/// A fresh token directory with its configuration file in it, removed when dropped.
#[derive(Debug)]
pub struct TokenDir {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl TokenDir {
    /// Requires SoftHSM2 ([`require`]), then makes the directory and writes its configuration.
    #[track_caller]
    pub fn create() -> TokenDir {
        require();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("token directory: {e}"));
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(&conf, config(dir.path()))
            .unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        TokenDir { dir, conf }
    }

    /// The configuration file: what `SOFTHSM2_CONF` must name.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The directory the tokens are kept in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
