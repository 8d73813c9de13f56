//! Three service instances on one PostgreSQL database behind HAProxy (the configuration
//! `cargo xtask cluster` runs: TCP mode, TLS passed through, HTTPS health checks). The first
//! instance runs in its own process and holds the once-only duties' leases; it is killed with
//! SIGKILL mid-campaign. Every API call through HAProxy keeps being answered (a connection to the
//! dead instance is retried on another one until the health checks take it out), a surviving
//! instance takes the campaign engine over, the campaign started through HAProxy completes, and
//! the audit log written by the three instances verifies as one chain.

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use castellan_store::testing::TestStore;
use castellan_testkit::peers::haproxy::{self, Balancer, Haproxy};
use common::cluster::another_instance;
use common::update::*;
use common::*;

/// Environment of the instance process: its state directory and its database.
const CHILD_STATE: &str = "CASTELLAN_TEST_INSTANCE_STATE";
const CHILD_DATABASE: &str = "CASTELLAN_TEST_INSTANCE_DATABASE";

/// Not a test of its own: the body of the instance process [`spawn_instance`] starts (this test
/// binary run again, for this function alone). It starts a server like every fleet test's,
/// prints `READY <api> <mqtt> <instance name>` and runs until it is killed (or its parent
/// test process is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the instance process of haproxy_keeps_the_api_and_a_campaign_going_when_an_instance_is_killed"]
async fn instance_process() {
    let (Ok(state), Ok(database)) = (std::env::var(CHILD_STATE), std::env::var(CHILD_DATABASE))
    else {
        return;
    };
    let parent = std::os::unix::process::parent_id();
    let server = castellan_server::Server::start(instance_config(&database, state.as_ref()))
        .await
        .unwrap();
    println!(
        "READY {} {} {}",
        server.api_addr(),
        server.mqtt_addr(),
        server.instance_name()
    );
    while std::os::unix::process::parent_id() == parent {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// This test binary again, running [`instance_process`] on `database` with its state in
/// `state`; returns the process, its API address and its instance name once it serves.
fn spawn_instance(state: &std::path::Path, database: &str) -> (Child, SocketAddr, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["instance_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_STATE, state)
        .env(CHILD_DATABASE, database)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.strip_prefix("READY ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            let (api, name) = (parts[0].parse().unwrap(), parts[2].to_string());
            std::thread::spawn(move || lines.for_each(drop));
            return (child, api, name);
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the instance process did not start: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn haproxy_keeps_the_api_and_a_campaign_going_when_an_instance_is_killed() {
    haproxy::require();
    let t = TestStore::postgres().await;

    // Instance A in its own process: first on the database, it holds every lease.
    let tmp_a = tempdir();
    let state_a = state_dir(&tmp_a);
    castellan_testkit::fleet::hand_over_pki(&state_a);
    let (mut a, a_api, a_name) = spawn_instance(&state_a, &t.location);
    let admin = std::fs::read_to_string(state_a.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    // B and C in this process, configured like A.
    let (b, tmp_b) = another_instance(&t.location, &tmp_a).await;
    let (c, _tmp_c) = another_instance(&t.location, &tmp_a).await;
    for lease in t.store.leases().await.unwrap() {
        assert_eq!(lease.holder, a_name, "{lease:?}");
    }

    let servers = vec![
        ("a".to_string(), a_api),
        ("b".to_string(), b.api_addr()),
        ("c".to_string(), c.api_addr()),
    ];
    let ca_bundle = b.paths().ca_bundle.clone();
    let lb = Haproxy::start(
        tmp_b.path(),
        &Balancer {
            listen: haproxy::free_loopback_addr(),
            stats: haproxy::free_loopback_addr(),
            servers: &servers,
            ca_bundle: &ca_bundle,
            server_name: "localhost",
            check_interval_ms: 1000,
            fall: 2,
        },
    );
    let up = lb
        .wait_states(Duration::from_secs(15), |s| {
            s.len() == 3 && s.iter().all(|s| s.is_checked_up())
        })
        .await;
    assert!(
        up.is_some(),
        "not every instance came up behind HAProxy: {:?}",
        lb.states()
    );

    // Every operator call of the test goes through HAProxy.
    let api = Api::with_ca(lb.listen, &ca_bundle);
    let f = fleet_on(b, api, admin, tmp_b).await;
    let mut d1 = f.enroll("LB-1", 70).await;
    let mut d2 = f.enroll("LB-2", 71).await;
    let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
    // LB-1 on B, LB-2 on C; the engine runs on A and reaches them through the outbox.
    let mut u1 = Updater::connect(&f.server, &d1).await;
    let mut u2 = Updater::connect(&c, &d2).await;
    let (id, offer2) = f.campaign_midway(&rid, &mut u1, &mut d1, &mut u2).await;

    // A dies mid-campaign, holding the campaign engine's lease.
    a.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    a.wait().unwrap();
    let (mut calls, mut out_after) = (0u32, None);
    while out_after.is_none() || calls < 30 {
        let (status, body) = f
            .api
            .call("GET", "/api/v1/devices", Some(&f.admin), None)
            .await;
        assert_eq!(status, 200, "call {calls} after the kill: {body}");
        assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");
        calls += 1;
        if out_after.is_none()
            && lb
                .states()
                .is_ok_and(|s| s.iter().any(|s| s.name == "a" && !s.is_up()))
        {
            out_after = Some(killed.elapsed());
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "HAProxy did not take the dead instance out: {:?}",
            lb.states()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out_after = out_after.unwrap_or_default();
    eprintln!(
        "HAProxy took the killed instance out after {out_after:?}; {calls} API calls answered"
    );

    // LB-2 carries on with C; a survivor takes the engine over and completes the campaign.
    assert!(u2.complete(&mut d2, &offer2).await.updated);
    let done = f.wait(&id, 30, |c| c.state == "completed").await;
    assert_eq!(done.counts.updated, 2);
    let takeovers: Vec<String> = t
        .store
        .audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "lease.takeover" && e.target == "campaigns")
        .map(|e| e.reason)
        .collect();
    assert_eq!(takeovers.len(), 1, "{takeovers:?}");
    assert!(
        takeovers[0].contains(&format!("taken over from {a_name} (epoch 1)")),
        "{takeovers:?}"
    );

    // One chain, written by the three instances, verified through HAProxy.
    f.server.flush_audit().await;
    c.flush_audit().await;
    f.audit_intact().await;
    u1.quit().await;
    u2.quit().await;
    drop(lb);
    c.shutdown().await;
    f.server.shutdown().await;
}
