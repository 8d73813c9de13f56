//! The fleet PKI as production runs it, for every test that starts `castellan serve`: the
//! hierarchy made offline (root key included) in a directory beside the state directory, and
//! the service's `pki/` handed over from it (no root key), as `castellan pki init` and
//! `castellan pki handover` do.
//!
//! ```text
//!  <state>.offline-pki/   root + every issuing CA, keys included (the offline machine)
//!  <state>/pki/           what the service uses online (operational and manufacturer keys)
//! ```

use std::path::{Path, PathBuf};

use castellan_pki::{KeyBackend, Pki, ceremony};

/// The offline directory that goes with `state_dir`.
pub fn offline_dir(state_dir: &Path) -> PathBuf {
    let mut name = state_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".offline-pki");
    state_dir.with_file_name(name)
}

/// Prepare `state_dir` for `castellan serve`: create the offline hierarchy beside it (once) and
/// hand the service its online part, the manufacturer key included (the tests' service runs the
/// factory). Idempotent: a state directory already handed over is left as it is. Returns the
/// offline directory (to rotate or retire a CA, or to mint a certificate an attacker would).
pub fn hand_over_pki(state_dir: &Path) -> PathBuf {
    let offline = offline_dir(state_dir);
    if !Pki::exists(&state_dir.join("pki")) {
        Pki::init(&offline, KeyBackend::Files).expect("offline PKI");
        ceremony::hand_over(&offline, &state_dir.join("pki"), true).expect("PKI hand-over");
    }
    offline
}

/// Copy the directory tree `from` into `to` (a second service instance configured like the
/// first: the same PKI and TLS files).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
