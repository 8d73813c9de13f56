//! State across restarts, on SQLite and PostgreSQL: the first start creates the state directory
//! and the first admin token (0600); a server stopped abruptly mid-run and started again loses
//! no registry, operator, revocation or audit data, and the audit chain stays intact.

mod common;

use std::time::Duration;

use castellan_store::testing::{TestStore, each_backend};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_run_creates_state_and_admin_token_once() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let state = state_dir(&tmp);
        let server = start_server(t, &state).await;
        assert!(server.first_run());
        let token = server.admin_token().unwrap().to_string();
        assert!(token.starts_with("cst_"));
        let file = &server.paths().admin_token_file;
        assert_eq!(std::fs::read_to_string(file).unwrap().trim(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(file), 0o600);
            assert_eq!(mode(&server.paths().server_key), 0o600);
            assert_eq!(mode(&state), 0o700);
        }
        server.shutdown().await;
        let again = start_server(t, &state).await;
        assert!(!again.first_run());
        assert_eq!(again.admin_token(), Some(token.as_str()));
        assert_eq!(again.store().list_operators().await.unwrap().len(), 1);
        again.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_restarted_mid_run_loses_no_registry_or_audit_data() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let state = state_dir(&tmp);
        let server = start_server(t, &state).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let good = enrolled(&server, &api, &admin, "KEEP-1", 51, tmp.path()).await;
        let bad = enrolled(&server, &api, &admin, "GONE-1", 52, tmp.path()).await;
        let (s, op) = api
            .call(
                "POST",
                "/api/v1/operators",
                Some(&admin),
                Some(&json!({"name": "auditor-1", "role": "auditor"})),
            )
            .await;
        assert_eq!(s, 201);
        let auditor = op["token"].as_str().unwrap().to_string();
        let (s, _) = api
            .call("POST", "/api/v1/devices/GONE-1/revoke", Some(&admin), None)
            .await;
        assert_eq!(s, 200);
        let (_, before) = api.call("GET", "/api/v1/devices", Some(&admin), None).await;
        let log_before = audit(&server).await;
        // Stop without a graceful shutdown.
        drop(server);
        tokio::time::sleep(Duration::from_millis(200)).await;

        let server = start_server(t, &state).await;
        let api = Api::new(&server);
        let (s, after) = api
            .call("GET", "/api/v1/devices", Some(&auditor), None)
            .await;
        assert_eq!(s, 200, "the auditor's token survived the restart");
        let keys = [
            "id",
            "idevid_serial",
            "ldevid_serial",
            "attestation",
            "revoked",
            "onboarded_at",
            "reference_measurements",
            "quarantined",
        ];
        for (b, a) in before
            .as_array()
            .unwrap()
            .iter()
            .zip(after.as_array().unwrap())
        {
            for k in keys {
                assert_eq!(b[k], a[k], "{k} of {} changed across the restart", b["id"]);
            }
        }
        assert_eq!(
            before.as_array().unwrap().len(),
            after.as_array().unwrap().len()
        );
        let log_after = audit(&server).await;
        assert!(log_after.len() > log_before.len());
        assert_eq!(
            &log_after[..log_before.len()],
            &log_before[..],
            "audit entries changed"
        );
        let (_, verify) = api
            .call("GET", "/api/v1/audit/verify", Some(&auditor), None)
            .await;
        assert_eq!(verify["intact"], true, "{verify}");
        assert_eq!(verify["anchor_checked"], true);
        // Revocation is still enforced; the good device still gets in.
        let port = server.mqtt_addr().port();
        let ca = &server.paths().ca_bundle;
        let (ok, out) = peers::mosquitto_pub(
            port,
            ca,
            Some((&bad.cert("ldevid"), &bad.key("ldevid"))),
            "GONE-1",
            "dev/GONE-1/status",
            "{}",
        )
        .await;
        assert!(!ok, "revoked device connected after a restart: {out}");
        let (ok, out) = peers::mosquitto_pub(
            port,
            ca,
            Some((&good.cert("ldevid"), &good.key("ldevid"))),
            "KEEP-1",
            "dev/KEEP-1/status",
            "{}",
        )
        .await;
        assert!(ok, "{out}");
        server.shutdown().await;
    })
    .await;
}
