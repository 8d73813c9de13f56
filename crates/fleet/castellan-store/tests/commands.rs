//! Pending device commands and requests awaiting approval, on SQLite and PostgreSQL: they
//! survive reopening the store (a restart of the service), a command's answer takes it once and
//! only with its nonce, one command of a kind per device, and a request needs a second,
//! different operator.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{PendingCommand, Store};

fn cmd(device: &str, kind: &str, nonce: &str, deadline: i64) -> PendingCommand {
    PendingCommand {
        device_id: device.into(),
        kind: kind.into(),
        nonce: nonce.into(),
        deadline,
        actor: "ana+bo".into(),
        created_at: 100,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_commands_survive_a_restart_and_are_answered_once() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        assert!(
            s.insert_pending_command(&cmd("D1", "decommission", "aa", 400))
                .await
                .unwrap()
        );
        assert!(
            !s.insert_pending_command(&cmd("D1", "decommission", "bb", 500))
                .await
                .unwrap(),
            "a second decommission of the same device is refused"
        );
        assert!(
            s.insert_pending_command(&cmd("D1", "reattest", "cc", 300))
                .await
                .unwrap()
        );
        // The service restarts: another store on the same database finds both.
        let reopened = Store::open_with(&t.location, t.options.clone())
            .await
            .unwrap();
        let all = reopened.pending_commands().await.unwrap();
        assert_eq!(
            all,
            vec![
                cmd("D1", "reattest", "cc", 300),
                cmd("D1", "decommission", "aa", 400)
            ]
        );
        assert_eq!(
            reopened
                .pending_command("D1", "decommission")
                .await
                .unwrap(),
            Some(cmd("D1", "decommission", "aa", 400))
        );
        // The answer over another nonce takes nothing; the right one once.
        assert!(
            !reopened
                .take_pending_command_matching("D1", "decommission", "bb")
                .await
                .unwrap()
        );
        assert!(
            reopened
                .take_pending_command_matching("D1", "decommission", "aa")
                .await
                .unwrap()
        );
        assert!(
            !reopened
                .take_pending_command_matching("D1", "decommission", "aa")
                .await
                .unwrap(),
            "a replayed answer finds nothing"
        );
        // The deadline: taken whatever the nonce, once.
        assert!(
            reopened
                .take_pending_command("D1", "reattest")
                .await
                .unwrap()
        );
        assert!(
            !reopened
                .take_pending_command("D1", "reattest")
                .await
                .unwrap()
        );
        assert!(s.pending_commands().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_for_a_second_operator_across_a_restart() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        assert_eq!(
            s.request_command("D2", "decommission", "ana", 10)
                .await
                .unwrap(),
            "ana"
        );
        // Asking again alone changes nothing.
        assert_eq!(
            s.request_command("D2", "decommission", "ana", 11)
                .await
                .unwrap(),
            "ana"
        );
        let reopened = Store::open_with(&t.location, t.options.clone())
            .await
            .unwrap();
        assert_eq!(
            reopened
                .command_request("D2", "decommission")
                .await
                .unwrap()
                .as_deref(),
            Some("ana")
        );
        // Another operator approves: the request is taken, the first name returned.
        assert_eq!(
            reopened
                .request_command("D2", "decommission", "bo", 12)
                .await
                .unwrap(),
            "ana"
        );
        assert_eq!(
            reopened
                .command_request("D2", "decommission")
                .await
                .unwrap(),
            None
        );
        // Kinds and devices are separate.
        assert_eq!(
            s.request_command("D3", "decommission", "bo", 13)
                .await
                .unwrap(),
            "bo"
        );
        assert_eq!(s.command_request("D2", "decommission").await.unwrap(), None);
    })
    .await;
}
