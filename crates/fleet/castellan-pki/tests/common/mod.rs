//! Helpers shared by the integration tests: a simulated device key, the real `openssl`
//! binary, and temporary files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use castellan_pki::{CaSigner, FileKey, Pki, build_csr};

/// A device whose key stays inside its "secure service": the test only calls `sign`.
pub struct SimDevice {
    key: FileKey,
}

impl SimDevice {
    pub fn new() -> SimDevice {
        SimDevice {
            key: FileKey::generate(),
        }
    }

    pub fn public_key(&self) -> [u8; 65] {
        CaSigner::public_key(&self.key)
    }

    /// The CSR the device's crypto service would return.
    pub fn csr(&self, cn: &str) -> Vec<u8> {
        build_csr(&self.public_key(), cn, None, |msg: &[u8]| {
            self.key.sign(msg)
        })
        .unwrap()
    }
}

/// Run the real openssl with `args` in `dir`; return (success, stdout + stderr).
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    castellan_testkit::peers::openssl::run_in(dir, args)
}

pub fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Write root.pem, manufacturer.pem and operational.pem into `dir`.
pub fn write_cas(pki: &Pki, dir: &Path) {
    use castellan_pki::CaKind;
    write(dir, "root.pem", pki.ca_pem(CaKind::Root));
    write(dir, "manufacturer.pem", pki.ca_pem(CaKind::Manufacturer));
    write(dir, "operational.pem", pki.ca_pem(CaKind::Operational));
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
