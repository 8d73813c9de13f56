//! The server serves its TUF repository to devices over HTTPS, without authentication (the
//! metadata is signed and public), file by file: metadata by name, targets under their
//! consistent names; nothing outside the repository's two directories, and nothing at all when
//! no repository is configured.

mod common;

use castellan_server::{Server, ServerConfig};
use castellan_store::testing::TestStore;
use castellan_tuf::repo::{Envelope, InitOptions, Policy, Repository, RoleSigner};
use common::Api;

/// A published repository listing `sensor-v1/fw.suit`.
fn repository(dir: &std::path::Path) -> Repository {
    let now = jiff::Timestamp::now();
    let key = || RoleSigner::generate().unwrap();
    let (a, b, rm, team) = (key(), key(), key(), key());
    let options = InitOptions {
        root_keys: vec![a.public().clone(), b.public().clone()],
        root_threshold: 2,
        targets_keys: vec![rm.public().clone()],
        targets_threshold: 1,
        policy: Policy::default(),
    };
    let repo = Repository::init(dir, &options, now).unwrap();
    let sign = |role: &str, keys: &[&RoleSigner]| {
        let mut staged: Envelope = repo.staged(role).unwrap().unwrap();
        for k in keys {
            staged.sign(k).unwrap();
        }
        repo.import(role, &staged, now).unwrap();
    };
    sign("root", &[&a, &b]);
    sign("targets", &[&rm]);
    repo.delegate("sensor-v1", vec![team.public().clone()], 1, now)
        .unwrap();
    sign("targets", &[&rm]);
    repo.add_target("sensor-v1", "fw.suit", b"envelope", None, now)
        .unwrap();
    sign("sensor-v1", &[&team]);
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tuf_repository_is_served_file_by_file() {
    let t = TestStore::sqlite().await;
    let tmp = common::tempdir();
    let repo = repository(&tmp.path().join("tuf"));
    let mut config = ServerConfig::new(common::state_dir(&tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    config.tuf_repository = Some(tmp.path().join("tuf"));
    let server = Server::start(config).await.unwrap();
    let api = Api::new(&server);

    for name in [
        "1.root.json",
        "timestamp.json",
        "2.snapshot.json",
        "1.sensor-v1.json",
    ] {
        let (status, _, body) = api.get_raw(&format!("/tuf/metadata/{name}"), &[]).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(Some(body), repo.metadata_file(name).unwrap(), "{name}");
    }
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"envelope"));
    let (status, _, body) = api
        .get_raw(&format!("/tuf/targets/sensor-v1/{digest}.fw.suit"), &[])
        .await;
    assert_eq!((status, body.as_slice()), (200, &b"envelope"[..]));
    // Nothing else of the repository's directory: not its policy, staged roles or online keys.
    for path in [
        "/tuf/metadata/..%2Frepository.json",
        "/tuf/metadata/.hidden",
        "/tuf/metadata/3.root.json",
        "/tuf/targets/..%2Fonline/x.pem",
        "/tuf/targets/sensor-v1/..",
    ] {
        let (status, _, _) = api.get_raw(path, &[]).await;
        assert_eq!(status, 404, "{path}");
    }
    server.shutdown().await;

    // A server without a repository has no /tuf/.
    let (tmp2, t2) = (common::tempdir(), TestStore::sqlite().await);
    let config = ServerConfig::new(common::state_dir(&tmp2))
        .with_ephemeral_ports()
        .with_database(t2.location.clone());
    let server = Server::start(config).await.unwrap();
    let (status, _, _) = Api::new(&server)
        .get_raw("/tuf/metadata/timestamp.json", &[])
        .await;
    assert_eq!(status, 404);
    server.shutdown().await;
}
