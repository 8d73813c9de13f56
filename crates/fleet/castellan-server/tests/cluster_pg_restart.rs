//! PostgreSQL restarted mid-campaign under two service instances. The test starts its own
//! PostgreSQL server (restarting the one the other tests share would disturb them): `initdb` and
//! `pg_ctl` from Debian's package into a temporary directory, a Unix socket of its own. It is
//! skipped, saying so, only when those binaries are not installed.
//!
//! While the database is down a device tries to connect: the broker, unable to read its
//! registry entry, refuses it (fail closed), and that audited refusal must wait for the
//! database rather than be lost. Once it is back both instances reconnect by themselves: their
//! API answers again, the campaign completes, and nothing written before, during or after the
//! restart is missing from the registry or the audit log, which verifies as one chain.

mod common;

use std::time::{Duration, Instant};

use castellan_server::ServerHandle;
use castellan_store::testing::PgServer;
use common::cluster::another_instance;
use common::update::*;
use common::*;
use serde_json::json;

/// The refused `mqtt.connect` entries of PG-1.
fn refused_connects(log: &[castellan_store::AuditEntry]) -> usize {
    log.iter()
        .filter(|e| {
            e.action == "mqtt.connect"
                && e.target == "PG-1"
                && e.decision == castellan_store::Decision::Refused
        })
        .count()
}

/// Poll `GET /api/v1/devices` on `server` until it answers 200 (the instance reached its
/// database again); returns how long that took.
async fn until_the_registry_answers(server: &ServerHandle, admin: &str) -> Duration {
    let api = Api::new(server);
    let started = Instant::now();
    loop {
        let (status, _) = api.call("GET", "/api/v1/devices", Some(admin), None).await;
        if status == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} did not reach the database again ({status})",
            server.instance_name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_completes_across_a_postgres_restart_under_two_instances() {
    if !castellan_testkit::peers::postgres::installed() {
        eprintln!(
            "SKIPPED: PostgreSQL's server binaries are missing (no /usr/lib/postgresql/*/bin/initdb); \
             install them with `{}` to run this test",
            castellan_testkit::peers::postgres::INSTALL
        );
        return;
    }
    let pg = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("private PostgreSQL server: {e}"));
    let url = pg.create_database().await.unwrap();

    let tmp_a = tempdir();
    let a = start_on(&url, &tmp_a).await;
    let admin = a.admin_token().unwrap().to_string();
    let api = Api::new(&a);
    let f = fleet_on(a, api, admin, tmp_a).await;
    let (b, _tmp_b) = another_instance(&url, &f.tmp).await;

    let mut d1 = f.enroll("PG-1", 60).await;
    let mut d2 = f.enroll("PG-2", 61).await;
    let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
    let mut u1 = Updater::connect(&f.server, &d1).await;
    let mut u2 = Updater::connect(&b, &d2).await;
    let (id, offer2) = f.campaign_midway(&rid, &mut u1, &mut d1, &mut u2).await;
    u1.quit().await;

    // What the database holds before the restart.
    f.server.flush_audit().await;
    b.flush_audit().await;
    let (_, registry_before) = f
        .api
        .call("GET", "/api/v1/devices", Some(&f.admin), None)
        .await;
    let audit_before = f.server.store().audit_entries(0, 100_000).await.unwrap();

    // Down for four seconds (longer than a lease); meanwhile a device tries to connect.
    let pg = tokio::task::spawn_blocking(move || pg.stop("fast").map(|()| pg))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("pg_ctl stop: {e}"));
    let down = Instant::now();
    let refused_before = refused_connects(&audit_before);
    let (ok, out) = peers::mosquitto_pub(
        b.mqtt_addr().port(),
        &b.paths().ca_bundle,
        Some((&d1.cert("ldevid"), &d1.key("ldevid"))),
        "PG-1",
        "dev/PG-1/status",
        "{}",
    )
    .await;
    // Fail closed: the broker cannot read the device's registry entry, so it refuses.
    assert!(!ok, "connected while the registry was unreachable: {out}");
    let (status, _) = f
        .api
        .call("GET", "/api/v1/devices", Some(&f.admin), None)
        .await;
    assert_eq!(status, 500, "the registry answered with its database down");
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(down.elapsed())).await;
    let pg = tokio::task::spawn_blocking(move || pg.start_again().map(|()| pg))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("pg_ctl start: {e}"));
    let back_a = until_the_registry_answers(&f.server, &f.admin).await;
    let back_b = until_the_registry_answers(&b, &f.admin).await;
    eprintln!("after the restart: instance A answered in {back_a:?}, B in {back_b:?}");

    // The campaign goes on: PG-2 downloads from B, the engine (on whichever instance holds its
    // lease now) completes it.
    assert!(u2.complete(&mut d2, &offer2).await.updated);
    let done = f.wait(&id, 30, |c| c.state == "completed").await;
    assert_eq!(done.counts.updated, 2);
    u2.quit().await;

    // Nothing lost: the registry as it was, every earlier audit entry unchanged, the connection
    // made while the database was down audited, one intact chain.
    let (_, registry_after) = f
        .api
        .call("GET", "/api/v1/devices", Some(&f.admin), None)
        .await;
    for k in [
        "id",
        "idevid_serial",
        "ldevid_serial",
        "revoked",
        "onboarded_at",
    ] {
        for (x, y) in registry_before
            .as_array()
            .unwrap()
            .iter()
            .zip(registry_after.as_array().unwrap())
        {
            assert_eq!(x[k], y[k], "{k} of {} changed", x["id"]);
        }
    }
    f.server.flush_audit().await;
    b.flush_audit().await;
    let audit_after = f.server.store().audit_entries(0, 100_000).await.unwrap();
    assert_eq!(&audit_after[..audit_before.len()], &audit_before[..]);
    assert!(
        refused_connects(&audit_after) > refused_before,
        "the connection refused while PostgreSQL was down was not audited"
    );
    // And the device gets in again.
    let (session, codes) = ldevid_session(&b, &d1, &["dev/PG-1/down/update/#"]).await;
    assert_eq!(codes, json!([1]));
    session.quit().await;
    let verify = f.audit_intact().await;
    assert!(
        verify["entries"].as_u64() >= Some(audit_after.len() as u64),
        "{verify}"
    );
    b.shutdown().await;
    f.server.shutdown().await;
    drop(pg);
}
