//! SoftHSM2: a PKCS#11 token in files, where the tests keep CA and release keys.

use std::path::Path;

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
