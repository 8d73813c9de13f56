//! What the TUF repository publishes is in the audit trail, whoever published it: the server
//! audits the roles it serves when it starts, and every version published beside it (`castellan
//! repo resign` or `import` run by hand, on this machine or another) with the keys that signed it.

mod common;

use std::time::Duration;

use castellan_server::{Server, ServerConfig};
use castellan_store::testing::TestStore;
use common::tuf::published;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_published_outside_the_server_is_audited_with_its_signers() {
    let t = TestStore::sqlite().await;
    let tmp = common::tempdir();
    let dir = tmp.path().join("tuf");
    let fixture = published(&dir);
    castellan_testkit::fleet::hand_over_pki(&common::state_dir(&tmp));
    let mut config = ServerConfig::new(common::state_dir(&tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    config.tuf_repository = Some(dir.clone());
    config.tuf_resign_check = Duration::from_millis(100);
    let server = Server::start(config).await.unwrap();

    let entries = wait_for_action(&server, "tuf.serve").await;
    let serve = &entries[0];
    assert!(
        serve.reason.contains("root v1") && serve.reason.contains("sensor-v1 v1"),
        "{}",
        serve.reason
    );

    // An operator re-signs the online roles by hand (`castellan repo resign --force`).
    let repo = fixture.repo.clone();
    let before = repo
        .published("snapshot")
        .unwrap()
        .unwrap()
        .version()
        .unwrap();
    repo.publish_online(jiff::Timestamp::now()).unwrap();
    let entries = wait_for_action(&server, "tuf.publish").await;
    let publish = &entries[0];
    assert!(
        publish.reason.starts_with("published outside the server: ")
            && publish
                .reason
                .contains(&format!("snapshot v{} (signed by key ", before + 1))
            && publish.reason.contains("timestamp v"),
        "{}",
        publish.reason
    );
    // Once seen, the same versions are not audited again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        common::audit(&server)
            .await
            .iter()
            .filter(|e| e.action == "tuf.publish")
            .count(),
        1
    );
    server.shutdown().await;
}

/// The audit entries of `action`, waiting up to 15 s for the first.
async fn wait_for_action(
    server: &castellan_server::ServerHandle,
    action: &str,
) -> Vec<castellan_store::AuditEntry> {
    for _ in 0..300 {
        let found: Vec<_> = common::audit(server)
            .await
            .into_iter()
            .filter(|e| e.action == action)
            .collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {action} in the audit trail within 15 s");
}
