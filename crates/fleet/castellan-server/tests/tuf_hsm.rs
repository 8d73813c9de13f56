//! The TUF online keys in a PKCS#11 token (the real SoftHSM2): the server generates the
//! snapshot and timestamp keys inside the token and publishes their public keys; once the root
//! keys trust them (signed offline) the server re-signs with the token and no online key file
//! remains; every re-signing is in the audit trail with the key that made it; a device's TUF
//! client accepts the metadata the token signed.
//!
//! One test function: SoftHSM2 reads `SOFTHSM2_CONF` once per process.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use castellan_pki::{CaSigner, KeyBackend, Pkcs11Token, SOFTHSM2_MODULE};
use castellan_server::tuf_online::token_label;
use castellan_server::{Server, ServerConfig};
use castellan_store::testing::TestStore;
use castellan_testkit::peers::softhsm;
use castellan_tuf::client::{self, DeviceClient};
use castellan_tuf::mqtt::{answer, read_response};
use castellan_tuf::repo::{Repository, RoleSigner, public_key_from_file};

/// The token's key of an online `role`, as a TUF signer.
fn token_signer(token: &Arc<Pkcs11Token>, role: &str) -> Arc<RoleSigner> {
    let key: Arc<dyn CaSigner> = Arc::new(token.key(&token_label(role)).unwrap());
    Arc::new(RoleSigner::from_ca_signer(key).unwrap())
}

async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..300 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 15 s");
}

/// A device's TUF client refreshing from `dir` through the MQTT transport's answers.
async fn device_refresh(dir: &Path, root: &[u8]) -> Result<(), castellan_tuf::TufError> {
    let trusted = tempfile::tempdir().unwrap();
    client::init(trusted.path(), root).unwrap();
    let (transport, mut requests) = castellan_tuf::mqtt::channel();
    let dir = dir.to_path_buf();
    tokio::spawn(async move {
        let mut id = 0;
        while let Some(request) = requests.recv().await {
            id += 1;
            let wire = request.to_wire(id);
            let _ = request
                .reply
                .send(read_response(&wire, &answer(&dir, &wire)));
        }
    });
    let mut device = DeviceClient::open(trusted.path(), transport)?;
    device.refresh(jiff::Timestamp::now()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuf_online_keys_in_a_softhsm2_token_resign_and_are_audited() {
    let tokens = softhsm::TokenDir::create();
    #[allow(unsafe_code)]
    // Safety: this is the only test in this binary, so no other thread reads the environment
    // while it is changed; SoftHSM2 reads the variable when the module is initialised below.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", tokens.conf());
    }
    let module = Path::new(SOFTHSM2_MODULE);
    Pkcs11Token::initialize(module, "castellan-tuf", "so-secret", "user-secret").unwrap();
    let token = Pkcs11Token::open(module, "castellan-tuf", "user-secret").unwrap();

    let t = TestStore::sqlite().await;
    let tmp = common::tempdir();
    let dir = tmp.path().join("tuf");
    let fixture = common::tuf::published(&dir);
    castellan_testkit::fleet::hand_over_pki(&common::state_dir(&tmp));
    let mut config = ServerConfig::new(common::state_dir(&tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    config.tuf_repository = Some(dir.clone());
    config.tuf_online_keys = KeyBackend::Pkcs11(token.clone());
    config.tuf_resign_check = Duration::from_millis(100);
    let server = Server::start(config).await.unwrap();

    // The server made the keys in the token and says where their public halves are.
    let public = |role: &str| dir.join(format!("hsm/{role}.pub.pem"));
    wait_for("the token's public keys", || {
        public("snapshot").exists() && public("timestamp").exists()
    })
    .await;
    for role in ["snapshot", "timestamp"] {
        assert!(
            token.key_is_protected(&token_label(role)).unwrap(),
            "{role}"
        );
    }

    // The root keys, offline, trust the token's keys instead of the key files.
    let now = jiff::Timestamp::now();
    let in_token = [
        token_signer(&token, "snapshot"),
        token_signer(&token, "timestamp"),
    ];
    let repo = Repository::open(&dir)
        .unwrap()
        .with_online_signers(in_token.to_vec());
    for (role, signer) in ["snapshot", "timestamp"].iter().zip(&in_token) {
        let old = repo.root().unwrap().roles[*role].keyids.clone();
        let key = public_key_from_file(&public(role)).unwrap();
        assert_eq!(castellan_tuf::repo::key_id(&key).unwrap(), signer.keyid());
        repo.add_key(role, key, None, now).unwrap();
        for keyid in old {
            repo.remove_key(role, &keyid, None, now).unwrap();
        }
    }
    fixture
        .sign(&repo, "root", &[&fixture.root[0], &fixture.root[1]])
        .unwrap();
    let online_files = std::fs::read_dir(dir.join("online")).unwrap().count();
    assert_eq!(online_files, 0, "an online key file is left");

    // A timestamp about to pass half its life: the server re-signs it, with the token.
    let before = repo
        .published("timestamp")
        .unwrap()
        .unwrap()
        .version()
        .unwrap();
    let old_now = now
        .checked_sub(jiff::SignedDuration::from_hours(20))
        .unwrap();
    repo.publish_timestamp(old_now).unwrap();
    wait_for("the server's re-signing", || {
        Repository::open(&dir)
            .unwrap()
            .published("timestamp")
            .unwrap()
            .unwrap()
            .version()
            .unwrap()
            > before + 1
    })
    .await;
    let timestamp = Repository::open(&dir)
        .unwrap()
        .published("timestamp")
        .unwrap()
        .unwrap();
    assert_eq!(timestamp.signers(), vec![in_token[1].keyid().to_owned()]);
    // The metadata is published before its audit entry is written: wait for the entry too.
    let mut audit = common::audit(&server).await;
    for _ in 0..300 {
        if audit.iter().any(|e| e.action == "tuf.resign") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        audit = common::audit(&server).await;
    }
    let resign = audit
        .iter()
        .find(|e| e.action == "tuf.resign")
        .unwrap_or_else(|| panic!("no tuf.resign in the audit trail within 15 s: {audit:?}"));
    assert!(
        resign.reason.contains("timestamp") && resign.reason.contains("castellan-tuf-timestamp"),
        "{}",
        resign.reason
    );

    // A device that trusts root v1 follows the rotation and accepts what the token signed.
    let root_v1 = repo.metadata_file("1.root.json").unwrap().unwrap();
    device_refresh(&dir, &root_v1).await.unwrap();
    server.shutdown().await;
}
