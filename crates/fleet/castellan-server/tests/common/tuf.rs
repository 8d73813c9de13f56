//! A published TUF repository for the server's tests, with every key that signed it.

pub use castellan_testkit::tuf_repo::PublishedRepo as Published;

/// A repository in `dir` delegating `sensor-v1` to its team, listing `sensor-v1/fw.suit`.
pub fn published(dir: &std::path::Path) -> Published {
    let p = Published::publish(dir, "sensor-v1").unwrap();
    p.list("fw.suit", b"envelope").unwrap();
    p
}
