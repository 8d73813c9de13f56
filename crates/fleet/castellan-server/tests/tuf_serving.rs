//! The server serves its TUF repository to devices over HTTPS, without authentication (the
//! metadata is signed and public), file by file: metadata by name, targets under their
//! consistent names; nothing outside the repository's two directories, and nothing at all when
//! no repository is configured.

mod common;

use std::sync::Arc;

use castellan_server::{Server, ServerConfig};
use castellan_store::testing::TestStore;
use castellan_tuf::repo::{Envelope, Repository, RoleSigner};
use common::Api;
use common::tuf::published;

/// A published repository listing `sensor-v1/fw.suit`.
fn repository(dir: &std::path::Path) -> Repository {
    published(dir).repo
}

/// Sign the staged `role` with `key` and import it.
fn sign_staged(repo: &Repository, role: &str, key: &RoleSigner) {
    let mut staged: Envelope = repo.staged(role).unwrap().unwrap();
    staged.sign(key).unwrap();
    repo.import(role, &staged, jiff::Timestamp::now()).unwrap();
}

/// A server whose state is in `tmp` serving the repository `tmp/tuf`.
async fn start_serving(t: &TestStore, tmp: &tempfile::TempDir) -> castellan_server::ServerHandle {
    castellan_testkit::fleet::hand_over_pki(&common::state_dir(tmp));
    let mut config = ServerConfig::new(common::state_dir(tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    config.tuf_repository = Some(tmp.path().join("tuf"));
    Server::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tuf_repository_is_served_file_by_file() {
    let t = TestStore::sqlite().await;
    let tmp = common::tempdir();
    let repo = repository(&tmp.path().join("tuf"));
    let server = start_serving(&t, &tmp).await;
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
    // The console's releases page shows each role's published version and expiry.
    t.store
        .create_operator("boss", castellan_store::Role::Admin, 0)
        .await
        .unwrap();
    let s = t
        .store
        .create_console_session("boss", castellan_store::unix_now(), 600)
        .await
        .unwrap();
    let cookie = format!("{}={}", castellan_console::SESSION_COOKIE, s.id);
    let (status, _, body) = api
        .get_raw("/console/releases", &[("cookie", cookie.as_str())])
        .await;
    let page = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{page}");
    let status = repo.status().unwrap();
    for role in ["root", "targets", "snapshot", "timestamp", "sensor-v1"] {
        let r = status.roles.iter().find(|r| r.name == role).unwrap();
        let row = format!("id=\"tuf-{role}\"");
        let at = page.find(&row).unwrap_or_else(|| panic!("{row} in {page}"));
        let rest = &page[at..page[at..].find("</tr>").map_or(page.len(), |e| at + e)];
        let version = format!("<td>{}</td>", r.version.unwrap());
        assert!(rest.contains(&version), "{role}: {rest}");
        assert!(
            rest.contains("expires in") || rest.contains("EXPIRES in"),
            "{role}: {rest}"
        );
    }
    server.shutdown().await;

    // A server without a repository has no /tuf/.
    let (tmp2, t2) = (common::tempdir(), TestStore::sqlite().await);
    let server = common::start_server(&t2, &common::state_dir(&tmp2)).await;
    let (status, _, _) = Api::new(&server)
        .get_raw("/tuf/metadata/timestamp.json", &[])
        .await;
    assert_eq!(status, 404);
    server.shutdown().await;
}

/// The key-rotation drill against the running service: a device's TUF client (over the
/// service's HTTPS, trusting its CA) accepts a release; the class team's key is stolen and
/// replaced in the delegation; the thief, holding the server's online keys, lists a release
/// with the stolen key and the client refuses it; the next release signed with the new key is
/// accepted; the device's root is still version 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_drill_against_the_running_service() {
    use castellan_tuf::client::{self, DeviceClient};
    let t = TestStore::sqlite().await;
    let tmp = common::tempdir();
    let common::tuf::Published {
        repo,
        targets: rm,
        team: stolen,
        ..
    } = published(&tmp.path().join("tuf"));
    let server = start_serving(&t, &tmp).await;
    let url = format!("{}/tuf/metadata", server.api_url());
    let device = tmp.path().join("device-tuf");
    client::init(
        &device,
        &repo.metadata_file("1.root.json").unwrap().unwrap(),
    )
    .unwrap();
    let tls = {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&server.paths().ca_bundle).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    };
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let check = |release: &'static str, envelope: &'static [u8]| {
        let (device, url, http) = (device.clone(), url.clone(), http.clone());
        async move {
            let mut tuf = DeviceClient::open_with_http(&device, &url, None, http)?;
            tuf.check_release("sensor-v1", release, envelope, jiff::Timestamp::now())
                .await
        }
    };
    check("fw", b"envelope").await.unwrap();

    // The release manager replaces the stolen class key; the class's role is re-signed.
    let now = jiff::Timestamp::now();
    let team = RoleSigner::generate().unwrap();
    repo.add_key("sensor-v1", team.public().clone(), None, now)
        .unwrap();
    repo.remove_key("sensor-v1", stolen.keyid(), None, now)
        .unwrap();
    sign_staged(&repo, "targets", &rm);
    repo.add_target("sensor-v1", "fw2.suit", b"envelope 2", None, now)
        .unwrap();
    sign_staged(&repo, "sensor-v1", &team);
    check("fw2", b"envelope 2").await.unwrap();

    // The thief lists a release with the stolen key and re-signs snapshot and timestamp with
    // the server's online keys.
    let published = repo.published("sensor-v1").unwrap().unwrap();
    let mut signed: serde_json::Value = published.payload().unwrap();
    signed["version"] = serde_json::json!(published.version().unwrap() + 1);
    signed["targets"]["sensor-v1/evil.suit"] = serde_json::json!({"length": 4,
        "hashes": {"sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"evil"))}});
    let mut forged = Envelope::unsigned(&signed).unwrap();
    forged.sign(&stolen).unwrap();
    let bytes = forged.to_bytes().unwrap();
    let metadata = repo.metadata_dir();
    let version = forged.version().unwrap();
    std::fs::write(metadata.join(format!("{version}.sensor-v1.json")), &bytes).unwrap();
    std::fs::write(metadata.join("sensor-v1.json"), &bytes).unwrap();
    repo.publish_online(jiff::Timestamp::now()).unwrap();
    let refused = check("evil", b"evil").await;
    assert!(
        matches!(refused, Err(castellan_tuf::TufError::Refused(ref why)) if why.contains("threshold")),
        "{refused:?}"
    );
    let root = std::fs::read(device.join("root.json")).unwrap();
    assert_eq!(Envelope::from_bytes(&root).unwrap().version().unwrap(), 1);
    server.shutdown().await;
}

/// A device that speaks only MQTT asks its own `up/tuf/request` and reads the answer on its own
/// `down/tuf/response` (a real paho-mqtt session): the same files as over HTTPS, "not found"
/// for the end of the root chain and for paths outside the repository, "too large" above the
/// device's limit; another device's answers cannot be subscribed to.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tuf_files_are_answered_over_the_devices_own_mqtt_topics() {
    use castellan_server::protocol::{
        TufAnswer, TufFileKind, TufRequest, TufResponse, WireMessage as _, topics,
    };
    use std::time::Duration;

    let t = TestStore::sqlite().await;
    let tmp = common::tempdir();
    let repo = repository(&tmp.path().join("tuf"));
    let server = start_serving(&t, &tmp).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let id = "CSTL-0901";
    let dev = common::enrolled(&server, &api, &admin, id, 91, tmp.path()).await;
    let answers = topics::tuf_response(id);
    let (mut peer, codes) = common::ldevid_session(
        &server,
        &dev,
        &[&answers, &topics::tuf_response("CSTL-0902")],
    )
    .await;
    assert_eq!(
        codes,
        serde_json::json!([1, 128]),
        "another device's answers"
    );

    let mut ask = async |request_id: u64, kind: TufFileKind, name: &str, max_length: u64| {
        let request = TufRequest {
            request_id,
            kind,
            name: name.into(),
            max_length,
        };
        let payload = String::from_utf8(request.to_payload()).unwrap();
        peer.publish(&topics::tuf_request(id), &payload).await;
        let answer = peer
            .message_on(&answers, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no answer to {name}: {:?}", peer.events));
        let answer = TufResponse::parse(answer.as_bytes()).unwrap();
        assert_eq!(answer.request_id, request_id);
        answer
    };
    let timestamp = ask(1, TufFileKind::Metadata, "timestamp.json", 1 << 16).await;
    assert_eq!(timestamp.answer, TufAnswer::Found);
    assert_eq!(
        timestamp.data_bytes().unwrap(),
        repo.metadata_file("timestamp.json").unwrap().unwrap()
    );
    let end = ask(2, TufFileKind::Metadata, "2.root.json", 1 << 16).await;
    assert_eq!(end.answer, TufAnswer::NotFound);
    let outside = ask(3, TufFileKind::Target, "../metadata/root.json", 1 << 16).await;
    assert_eq!(outside.answer, TufAnswer::NotFound);
    let large = ask(4, TufFileKind::Metadata, "1.root.json", 16).await;
    assert_eq!(large.answer, TufAnswer::TooLarge);
    assert!(large.data.is_empty());
    peer.quit().await;
    server.shutdown().await;
}

/// The factory's registration answer carries the repository's current root (the new device's
/// TUF trust anchor), byte for byte; a server without a repository sends none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_registration_carries_the_current_tuf_root() {
    let t = TestStore::sqlite().await;
    let tmp = common::tempdir();
    let repo = repository(&tmp.path().join("tuf"));
    let server = start_serving(&t, &tmp).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let mut dev = common::TestDevice::new("CSTL-0911", 93, tmp.path());
    let answer = common::register(&api, &admin, &mut dev).await;
    let root = repo.metadata_file("root.json").unwrap().unwrap();
    assert_eq!(
        answer.tuf_root.as_deref().map(str::as_bytes),
        Some(&root[..])
    );
    server.shutdown().await;

    let (tmp2, t2) = (common::tempdir(), TestStore::sqlite().await);
    let server = common::start_server(&t2, &common::state_dir(&tmp2)).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let mut dev = common::TestDevice::new("CSTL-0912", 94, tmp2.path());
    assert_eq!(
        common::register(&api, &admin, &mut dev).await.tuf_root,
        None
    );
    server.shutdown().await;
}
