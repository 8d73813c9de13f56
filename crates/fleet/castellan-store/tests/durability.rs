//! "A server restarted mid-run loses no registry or audit data": a store is dropped and
//! reopened (both engines), a SQLite writer process is killed with SIGKILL in the middle of its
//! writes, and a PostgreSQL server is crashed (`pg_ctl stop -m immediate`) under a writer. Every
//! write that was acknowledged is there afterwards, and the audit chain verifies.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use castellan_store::testing::{PgServer, TestStore, each_backend};
use castellan_store::{AuditRecord, Decision, NewDevice, Revocation, Role, Store, StoreOptions};

fn device(i: u64) -> NewDevice {
    NewDevice {
        id: format!("dev-{i}"),
        serial: format!("SN-{i}"),
        device_class: "sensor".into(),
        tags: vec!["t".into()],
        idevid_der: vec![0x30, i as u8],
        idevid_serial: format!("{i:x}"),
        lifecycle: 0x3000,
        reference_measurements: vec![],
        firmware_version: None,
    }
}

fn audit(i: u64) -> String {
    format!("provision dev-{i}")
}

async fn write_one(s: &Store, i: u64) -> Result<(), castellan_store::StoreError> {
    s.register_device(&device(i), i as i64).await?;
    let reason = audit(i);
    s.append_audit(
        &AuditRecord {
            actor: "factory",
            action: "device.provision",
            target: &format!("dev-{i}"),
            decision: Decision::Allowed,
            reason: &reason,
            code: None,
        },
        i as i64,
    )
    .await?;
    Ok(())
}

async fn check_acknowledged(s: &Store, acked: u64) {
    for i in 1..=acked {
        let d = s.device(&format!("dev-{i}")).await.unwrap();
        assert!(d.is_some(), "acknowledged device dev-{i} lost");
    }
    let report = s.verify_audit().await.unwrap();
    assert!(
        report.count >= acked,
        "audit has {} entries, {acked} were acknowledged",
        report.count
    );
    let entries = s.audit_entries(0, u32::MAX).await.unwrap();
    for i in 1..=acked {
        assert!(
            entries.iter().any(|e| e.reason == audit(i)),
            "acknowledged audit entry {i} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loses_no_registry_or_audit_data() {
    each_backend(async |t: &TestStore| {
        let s = t.reopen().await;
        for i in 1..=10 {
            write_one(&s, i).await.unwrap();
        }
        s.create_operator("ann", Role::Admin, 1).await.unwrap();
        let token = s.issue_token("ann", "x", 1, None).await.unwrap();
        s.revoke(&Revocation {
            serial: "aa".into(),
            issuer: "operational".into(),
            reason: 1,
            revoked_at: 5,
            device_id: None,
        })
        .await
        .unwrap();
        s.record_telemetry("dev-1", 7, "{\"t\":1}").await.unwrap();
        drop(s);
        drop(t.store.clone());

        let s = t.reopen().await;
        check_acknowledged(&s, 10).await;
        assert!(s.authenticate_token(&token, 2).await.unwrap().is_some());
        assert!(s.is_revoked("aa").await.unwrap());
        assert_eq!(s.latest_telemetry("dev-1", 5).await.unwrap().len(), 1);
        // The chain continues where it stopped.
        let e = s
            .append_audit(
                &AuditRecord {
                    actor: "a",
                    action: "b",
                    target: "c",
                    decision: Decision::Allowed,
                    reason: "d",
                    code: None,
                },
                99,
            )
            .await
            .unwrap();
        assert_eq!(e.seq, 11);
        assert_eq!(s.verify_audit().await.unwrap().count, 11);
    })
    .await;
}

const CHILD_ENV: &str = "CASTELLAN_STORE_CHILD_DB";

/// Not a test on its own: the writer process that `sqlite_writer_killed_mid_run_...` starts
/// (this test binary again) and kills.
#[test]
#[ignore = "helper process for sqlite_writer_killed_mid_run_loses_no_acknowledged_data"]
fn child_writer_process() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Store::open(&path).await.unwrap();
        for i in 1..100_000u64 {
            write_one(&s, i).await.unwrap();
            println!("acked {i}");
        }
    });
}

#[test]
fn sqlite_writer_killed_mid_run_loses_no_acknowledged_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writer_process",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0u64;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.trim().parse().unwrap();
            if acked >= 40 {
                break;
            }
        }
    }
    // SIGKILL in the middle of the writes: no chance to flush or close anything.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        acked >= 40,
        "the writer process stopped early (acknowledged {acked})"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Store::open(db.to_str().unwrap()).await.unwrap();
        check_acknowledged(&s, acked).await;
        // And the store keeps working. (The writer may have died between a device and its
        // audit entry: the next write takes a number it never reached.)
        let before = s.verify_audit().await.unwrap().count;
        write_one(&s, 1_000_000).await.unwrap();
        assert_eq!(s.verify_audit().await.unwrap().count, before + 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_under_a_writer_loses_no_acknowledged_data() {
    // A private server: crashing the shared one would disturb the other tests.
    let server = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("PostgreSQL test server unavailable: {e}"));
    let url = server.create_database().await.unwrap();
    let anchor_dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        anchor_path: Some(anchor_dir.path().join("audit-head")),
        ..StoreOptions::default()
    };
    let s = Store::open_with(&url, options.clone()).await.unwrap();

    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut failures = 0u32;
            let mut i = 1u64;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while acked.len() < 80 && std::time::Instant::now() < deadline {
                match write_one(&s, i).await {
                    Ok(()) => acked.push(i),
                    Err(_) => {
                        failures += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
                i += 1;
            }
            (acked, failures)
        })
    };
    // Let it write, then crash the server under it and bring it back.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let server = tokio::task::spawn_blocking(move || {
        server.crash_and_restart().unwrap();
        server
    })
    .await
    .unwrap();
    let (acked, failures) = writer.await.unwrap();
    assert!(
        acked.len() >= 80,
        "writer did not recover after the restart ({} acknowledged)",
        acked.len()
    );
    eprintln!(
        "{} writes acknowledged, {failures} failed during the crash",
        acked.len()
    );

    let s = Store::open_with(&url, options).await.unwrap();
    for i in &acked {
        assert!(
            s.device(&format!("dev-{i}")).await.unwrap().is_some(),
            "acknowledged dev-{i} lost"
        );
    }
    let report = s.verify_audit().await.unwrap();
    let entries = s.audit_entries(0, u32::MAX).await.unwrap();
    assert_eq!(report.count as usize, entries.len());
    for i in &acked {
        assert!(
            entries.iter().any(|e| e.reason == audit(*i)),
            "acknowledged audit entry for dev-{i} lost"
        );
    }
    drop(server);
}
