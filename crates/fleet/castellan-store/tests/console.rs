//! The console's accounts, sessions and fleet views in the store, on SQLite and PostgreSQL:
//! lockout after repeated failures, sessions stored only by hash, expiring and ending at
//! logout, and server-side paging, filtering and counting of the registry.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{DeviceQuery, DeviceSort, DeviceState, NewDevice, Role};

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

async fn with_operator(t: &TestStore, name: &str) {
    t.store
        .create_operator(name, Role::Operator, 0)
        .await
        .unwrap();
    t.store.set_operator_password(name, PHC, 0).await.unwrap();
}

fn device(n: u32, class: &str, version: &str) -> NewDevice {
    NewDevice {
        id: format!("dev-{n:05}"),
        serial: format!("SN-{n:05}"),
        device_class: class.into(),
        tags: vec![],
        idevid_der: vec![0x30, 0x00],
        idevid_serial: format!("{n:x}"),
        lifecycle: 0x3000,
        reference_measurements: vec![],
        firmware_version: Some(version.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_password_guessing_locks_the_account() {
    each_backend(async |t: &TestStore| {
        with_operator(t, "ops").await;
        for _ in 0..4 {
            assert_eq!(
                t.store
                    .record_failed_login("ops", 100, 5, 900)
                    .await
                    .unwrap(),
                None
            );
        }
        let rec = t.store.operator_password("ops").await.unwrap().unwrap();
        assert_eq!(rec.failed_logins, 4);
        let until = t
            .store
            .record_failed_login("ops", 100, 5, 900)
            .await
            .unwrap();
        assert_eq!(until, Some(1000), "the fifth failure locks for 900 s");
        let rec = t.store.operator_password("ops").await.unwrap().unwrap();
        assert_eq!(rec.locked_until, Some(1000));
        // A new password (an admin's reset) lifts the lockout.
        t.store
            .set_operator_password("ops", PHC, 200)
            .await
            .unwrap();
        let rec = t.store.operator_password("ops").await.unwrap().unwrap();
        assert_eq!((rec.failed_logins, rec.locked_until), (0, None));
        assert!(
            t.store
                .set_operator_password("nobody", PHC, 0)
                .await
                .is_err(),
            "a password needs an account"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_end_at_logout_and_die_with_the_account() {
    each_backend(async |t: &TestStore| {
        with_operator(t, "ops").await;
        let s = t
            .store
            .create_console_session("ops", 100, 60)
            .await
            .unwrap();
        assert_eq!(s.id.len(), 64);
        assert_ne!(s.id, s.csrf_token);
        let live = t
            .store
            .console_session(&s.id, 159, 3600)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.operator.name, "ops");
        assert_eq!(live.csrf_token, s.csrf_token);
        assert_eq!(
            t.store.console_session(&s.id, 160, 3600).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(
            t.store.console_session(&s.id, 100, 3600).await.unwrap(),
            None,
            "deleted once expired"
        );

        let s2 = t
            .store
            .create_console_session("ops", 100, 60)
            .await
            .unwrap();
        assert_ne!(s2.id, s.id, "a fresh id at every login");
        assert!(t.store.end_console_session(&s2.id).await.unwrap());
        assert_eq!(
            t.store.console_session(&s2.id, 101, 3600).await.unwrap(),
            None,
            "logged out"
        );

        let s3 = t
            .store
            .create_console_session("ops", 100, 60)
            .await
            .unwrap();
        t.store.set_operator_disabled("ops", true).await.unwrap();
        assert_eq!(
            t.store.console_session(&s3.id, 101, 3600).await.unwrap(),
            None,
            "disabled"
        );
        assert_eq!(t.store.end_console_sessions_of("ops").await.unwrap(), 1);
        assert_eq!(
            t.store
                .console_session("attacker-chosen-id", 101, 3600)
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_pages_are_filtered_sorted_and_counted_on_the_server() {
    each_backend(async |t: &TestStore| {
        for n in 0u32..30 {
            let (class, version) = if n.is_multiple_of(3) {
                ("gateway", "2.0.0")
            } else {
                ("sensor", "1.0.0")
            };
            t.store
                .register_device(&device(n, class, version), 1000)
                .await
                .unwrap();
        }
        t.store.set_quarantined("dev-00004", true).await.unwrap();
        let q = DeviceQuery {
            limit: 7,
            offset: 7,
            ..DeviceQuery::default()
        };
        let page = t.store.device_page(&q).await.unwrap();
        assert_eq!(page.total, 30);
        let ids: Vec<&str> = page.devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids.first(), Some(&"dev-00007"));
        assert_eq!(ids.len(), 7);

        let q = DeviceQuery {
            device_class: Some("gateway".into()),
            sort: DeviceSort::Id,
            descending: true,
            limit: 50,
            ..DeviceQuery::default()
        };
        let page = t.store.device_page(&q).await.unwrap();
        assert_eq!(page.total, 10);
        assert_eq!(
            page.devices.first().map(|d| d.id.as_str()),
            Some("dev-00027")
        );

        let q = DeviceQuery {
            search: Some("sn-0001".into()),
            limit: 50,
            ..DeviceQuery::default()
        };
        assert_eq!(
            t.store.device_page(&q).await.unwrap().total,
            10,
            "case-insensitive"
        );
        let q = DeviceQuery {
            search: Some("%".into()),
            limit: 50,
            ..DeviceQuery::default()
        };
        assert_eq!(
            t.store.device_page(&q).await.unwrap().total,
            0,
            "a wildcard is literal"
        );

        let q = DeviceQuery {
            state: Some(DeviceState::Quarantined),
            limit: 50,
            ..DeviceQuery::default()
        };
        let page = t.store.device_page(&q).await.unwrap();
        assert_eq!(
            page.devices
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>(),
            ["dev-00004"]
        );

        let counts = t.store.fleet_counts().await.unwrap();
        let get = |v: &[(String, u64)], k: &str| v.iter().find(|(n, _)| n == k).map(|(_, c)| *c);
        assert_eq!(get(&counts.by_state, "pending"), Some(29));
        assert_eq!(get(&counts.by_state, "quarantined"), Some(1));
        assert_eq!(get(&counts.by_state, "revoked"), Some(0));
        assert_eq!(get(&counts.by_class, "gateway"), Some(10));
        assert_eq!(get(&counts.by_firmware, "1.0.0"), Some(20));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_search_finds_a_device_s_trail_newest_first() {
    use castellan_store::{AuditFilter, AuditRecord, Decision};
    each_backend(async |t: &TestStore| {
        let records = [
            (
                "admin",
                "api.device.quarantine",
                "/api/v1/devices/dev-1/quarantine",
                Decision::Allowed,
            ),
            (
                "dev-1",
                "mqtt.publish",
                "dev/dev-1/telemetry",
                Decision::Refused,
            ),
            ("system", "onboard", "dev-1", Decision::Allowed),
            (
                "ops",
                "console.device.release",
                "/console/devices/dev-10/release",
                Decision::Allowed,
            ),
            ("ops", "console.login", "/console/login", Decision::Refused),
        ];
        for (i, (actor, action, target, decision)) in records.into_iter().enumerate() {
            let rec = AuditRecord {
                actor,
                action,
                target,
                decision,
                reason: "r",
                code: None,
            };
            t.store.append_audit(&rec, 100 + i as i64).await.unwrap();
        }
        let search = async |f: AuditFilter| -> Vec<u64> {
            t.store
                .search_audit(&f)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        let device = AuditFilter {
            device: Some("dev-1".into()),
            limit: 10,
            ..AuditFilter::default()
        };
        assert_eq!(
            search(device.clone()).await,
            [3, 2, 1],
            "not dev-10's entry"
        );
        let older = AuditFilter {
            before: Some(3),
            ..device
        };
        assert_eq!(search(older).await, [2, 1]);
        let console = AuditFilter {
            action: Some("console.".into()),
            limit: 10,
            ..AuditFilter::default()
        };
        assert_eq!(search(console).await, [5, 4]);
        let refused = AuditFilter {
            actor: Some("ops".into()),
            decision: Some(Decision::Refused),
            limit: 10,
            ..AuditFilter::default()
        };
        assert_eq!(search(refused).await, [5]);
        let wildcard = AuditFilter {
            device: Some("dev-%".into()),
            limit: 10,
            ..AuditFilter::default()
        };
        assert!(search(wildcard).await.is_empty(), "wildcards are literal");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_one_time_code_replay_is_refused_by_the_store() {
    each_backend(async |t: &TestStore| {
        with_operator(t, "ops").await;
        let rec = t.store.operator_password("ops").await.unwrap().unwrap();
        assert_eq!(rec.totp_secret, None);
        t.store
            .set_operator_totp("ops", Some("JBSWY3DPEHPK3PXP"))
            .await
            .unwrap();
        let rec = t.store.operator_password("ops").await.unwrap().unwrap();
        assert_eq!(rec.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert!(t.store.use_totp_step("ops", 100).await.unwrap());
        assert!(
            !t.store.use_totp_step("ops", 100).await.unwrap(),
            "the same step twice"
        );
        assert!(
            !t.store.use_totp_step("ops", 99).await.unwrap(),
            "an older step"
        );
        assert!(t.store.use_totp_step("ops", 101).await.unwrap());
        // A new password keeps the second factor.
        t.store.set_operator_password("ops", PHC, 1).await.unwrap();
        let rec = t.store.operator_password("ops").await.unwrap().unwrap();
        assert!(rec.totp_secret.is_some());
        t.store.set_operator_totp("ops", None).await.unwrap();
        assert!(t.store.set_operator_totp("nobody", None).await.is_err());
    })
    .await;
}
