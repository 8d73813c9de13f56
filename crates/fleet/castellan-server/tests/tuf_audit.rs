//! What the TUF repository publishes is in the audit trail, whoever published it: the server
//! audits the roles it serves when it starts, and every version published beside it (`castellan
//! repo resign` or `import` run by hand, on this machine or another) with the keys that signed it;
//! and each command run by hand, from the repository's hash-chained operations log, once.

mod common;

use std::time::Duration;

use castellan_server::{Server, ServerConfig};
use castellan_store::Decision;
use castellan_store::testing::TestStore;
use castellan_tuf::repo::oplog::{self, OperationsLog};
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

fn config(tmp: &tempfile::TempDir, t: &TestStore, dir: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::new(common::state_dir(tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    config.tuf_repository = Some(dir.to_path_buf());
    config.tuf_resign_check = Duration::from_millis(100);
    config
}

/// The entries of the operations log the server recorded (allowed `tuf.offline`), oldest first.
async fn recorded(server: &castellan_server::ServerHandle) -> Vec<castellan_store::AuditEntry> {
    common::audit(server)
        .await
        .into_iter()
        .filter(|e| e.action == "tuf.offline" && e.decision == Decision::Allowed)
        .collect()
}

async fn wait_for_recorded(server: &castellan_server::ServerHandle, n: usize) {
    for _ in 0..300 {
        if recorded(server).await.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} operations log entries not recorded within 15 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_offline_repo_commands_are_audited_and_a_rewritten_log_is_caught() {
    let t = TestStore::sqlite().await;
    let tmp = common::tempdir();
    let dir = tmp.path().join("tuf");
    let fixture = published(&dir);
    castellan_testkit::fleet::hand_over_pki(&common::state_dir(&tmp));
    // Commands run on an offline machine before the service ever saw the repository.
    let now = jiff::Timestamp::now();
    let mut log = OperationsLog::open(&dir).unwrap();
    log.append("init", "created the repository", "alice@offline-1", now)
        .unwrap();
    log.append("import", "published root v1", "bob@offline-2", now)
        .unwrap();
    let server = Server::start(config(&tmp, &t, &dir)).await.unwrap();
    wait_for_recorded(&server, 2).await;

    // `castellan repo resign` by hand while the service runs: the entry arrives within a check.
    fixture.repo.publish_online(jiff::Timestamp::now()).unwrap();
    let entry = log
        .append("resign", "re-signed by hand: snapshot v9", "carol@ops", now)
        .unwrap();
    wait_for_recorded(&server, 3).await;
    let all = recorded(&server).await;
    let last = all.last().unwrap();
    assert_eq!(last.target, "tuf:offline-log/3");
    assert_eq!(last.actor, "tuf-offline");
    assert!(
        last.reason.starts_with("resign by carol@ops at ")
            && last.reason.contains("re-signed by hand: snapshot v9")
            && last
                .reason
                .ends_with(&format!("(entry 3, hash {})", entry.hash)),
        "{}",
        last.reason
    );
    assert!(all[0].reason.starts_with("init by alice@offline-1"));
    server.shutdown().await;

    // A restarted service goes on where its audit trail says: nothing recorded twice.
    let server = Server::start(config(&tmp, &t, &dir)).await.unwrap();
    log.append(
        "key add",
        "trusts key 1a2b for timestamp",
        "alice@offline-1",
        now,
    )
    .unwrap();
    wait_for_recorded(&server, 4).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let targets: Vec<String> = recorded(&server)
        .await
        .into_iter()
        .map(|e| e.target)
        .collect();
    assert_eq!(
        targets,
        ["1", "2", "3", "4"].map(|n| format!("tuf:offline-log/{n}"))
    );

    // Someone with write access to the directory rewrites history: a whole new chain whose
    // entry 3 hides the hand-made re-signing. Its hashes are consistent, but entry 4 is not
    // the one recorded.
    let forged = tmp.path().join("forged");
    let mut f = OperationsLog::open(&forged).unwrap();
    f.append("init", "created the repository", "alice@offline-1", now)
        .unwrap();
    f.append("import", "published root v1", "bob@offline-2", now)
        .unwrap();
    f.append("status", "nothing happened", "carol@ops", now)
        .unwrap();
    f.append(
        "key add",
        "trusts key 1a2b for timestamp",
        "alice@offline-1",
        now,
    )
    .unwrap();
    std::fs::copy(oplog::log_path(&forged), oplog::log_path(&dir)).unwrap();
    let mut refused = Vec::new();
    for _ in 0..300 {
        refused = common::audit(&server)
            .await
            .into_iter()
            .filter(|e| e.action == "tuf.offline" && e.decision == Decision::Refused)
            .collect();
        if !refused.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused.len(), 1, "audited once");
    assert!(
        refused[0]
            .reason
            .contains("was rewritten: entry 4 is not the one recorded"),
        "{}",
        refused[0].reason
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        recorded(&server).await.len(),
        4,
        "nothing recorded from the forged log"
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
