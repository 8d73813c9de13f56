//! The fleet's TUF repository in the QEMU campaign: root and targets signed here as the
//! offline machines would, the device class delegated to its release team, snapshot and
//! timestamp signed by the server's online keys. The release team lists each release for the
//! class by signing its envelope's targets entry (`<class>/<release id>.suit`).

use std::path::Path;

use castellan_bridge::DEVICE_CLASS;
use castellan_testkit::tuf_repo::PublishedRepo;

/// The repository and the offline keys that signed it.
pub struct Tuf(PublishedRepo);

impl Tuf {
    /// A published repository in `dir` delegating `DEVICE_CLASS` to a release team key.
    pub fn publish(dir: &Path) -> Result<Tuf, String> {
        PublishedRepo::publish(dir, DEVICE_CLASS)
            .map(Tuf)
            .map_err(|e| format!("the TUF repository: {e}"))
    }

    /// List `envelope` as release `release_id` of the class, signed by the class's team.
    pub fn list(&self, release_id: &str, envelope: &[u8]) -> Result<(), String> {
        self.0
            .list(&format!("{release_id}.suit"), envelope)
            .map_err(|e| format!("listing {release_id} in TUF: {e}"))
    }
}
