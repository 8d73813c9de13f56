//! The agent's update client against the real broker and a scripted update server
//! (`update_fleet`): an offer is checked by the secure services before any byte moves, the
//! image comes over MQTT (a window of fetches) or HTTPS (range requests), the device installs it
//! for trial, reboots, passes its self-test, accepts, reports `confirmed` and attests the new
//! measurement; downloads resume after a disconnect and after a restart of the agent; a release
//! that fails its self-test is reverted and reported; a cancel discards the download.

mod update_fleet;

use std::sync::Arc;
use std::time::Duration;

use castellan_image::Version;
use update_fleet::*;

/// Telemetry firmware versions `device` reported, in order.
fn firmware(fleet: &Fleet, device: &str) -> Vec<String> {
    fleet
        .state
        .lock()
        .unwrap()
        .telemetry
        .iter()
        .filter(|(d, _)| d == device)
        .map(|(_, v)| v["firmware"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Runs the agent of `dir` until `stop` is notified; returns its task.
fn spawn_agent(fleet: &Fleet, dir: &std::path::Path) -> (Arc<tokio::sync::Notify>, AgentTask) {
    spawn_agent_with(fleet, dir, |_| {})
}

/// Statuses are in protocol order and progress is reported at least every 10 %.
fn check_progress(fleet: &Fleet, device: &str, size: u64) {
    let offsets: Vec<u64> = fleet
        .state
        .lock()
        .unwrap()
        .statuses
        .iter()
        .filter(|(d, v)| d == device && (v["state"] == "downloading" || v["state"] == "accepted"))
        .map(|(_, v)| v["offset"].as_u64().unwrap())
        .collect();
    let mut last = 0;
    for o in offsets.iter().copied().chain([size]) {
        assert!(
            o.saturating_sub(last) <= size / 10 + u64::from(CHUNK),
            "a gap of more than 10 % between progress reports: {offsets:?}"
        );
        last = last.max(o);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_over_mqtt_is_installed_confirmed_and_attested() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-U1").await;
    let dir = t.path().join("CSTL-U1");
    let release = Release::new(
        &kit,
        &fleet.release_key,
        1,
        Version::new(1, 1, 0, 0),
        b"r-1.1.0",
        |b| b.expires(4_000_000_000),
    );
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;
    fleet.offer("CSTL-U1", "camp-1", &release, None).await;
    fleet
        .wait_for("the result", |s| !s.results.is_empty())
        .await;
    fleet
        .wait_for("telemetry of the new firmware", |s| {
            s.telemetry
                .last()
                .is_some_and(|(_, v)| v["firmware"] == "1.1.0")
        })
        .await;
    stop.notify_one();
    let report = agent.await.unwrap().unwrap();

    let states = fleet.states("CSTL-U1");
    let order = [
        "accepted",
        "downloaded",
        "installing",
        "rebooting",
        "confirmed",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| {
            states
                .iter()
                .position(|x| x == s)
                .unwrap_or_else(|| panic!("no {s}: {states:?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{states:?}");
    assert!(
        states.iter().filter(|s| *s == "downloading").count() >= 5,
        "{states:?}"
    );
    check_progress(&fleet, "CSTL-U1", release.image.len() as u64);
    let s = fleet.state.lock().unwrap();
    // The image came in windows of fetches over MQTT, each chunk once.
    assert!(s.fetches.len() as u64 >= release.image.len() as u64 / u64::from(CHUNK));
    // The fresh token shows the release's measurement, signed by the factory-registered IAK.
    assert_eq!(
        s.results,
        vec![(
            "CSTL-U1".to_string(),
            true,
            "attested the release's measurement".to_string()
        )]
    );
    // Onboarded once: the update kept the LDevID valid and the IAK stable.
    assert_eq!(s.hellos["CSTL-U1"], 1);
    drop(s);
    assert_eq!(firmware(&fleet, "CSTL-U1").first().unwrap(), "1.0.0");
    assert_eq!(
        (
            report.reboots,
            report.updates_confirmed,
            report.updates_failed
        ),
        (1, 1, 0)
    );
    // The next boot runs the new image, confirmed; the journal is gone.
    assert!(
        !castellan_agent::IdentityFiles::of(&dir)
            .update_journal()
            .exists()
    );
    let world = castellan_agent::SecureWorld::power_on(&dir).unwrap();
    assert!(world.boot_info().confirmed);
    assert_eq!(world.boot_info().firmware_version(), "1.1.0");
    let installed = world
        .service(|svc| svc.update_installed_sequence())
        .unwrap();
    assert_eq!(installed, 1);
    world.shut_down().unwrap();
    assert!(
        !castellan_agent::IdentityFiles::of(&dir)
            .update_journal()
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_over_https_uses_range_requests_with_the_token() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-U2").await;
    let dir = t.path().join("CSTL-U2");
    let release = Release::new(
        &kit,
        &fleet.release_key,
        1,
        Version::new(1, 1, 0, 0),
        b"r-https",
        |b| b,
    );
    let https = RangeServer::start(&fleet.pki, release.image.clone(), "tok-123").await;
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;
    fleet
        .offer("CSTL-U2", "c-https", &release, Some(https.source()))
        .await;
    fleet
        .wait_for("the result", |s| !s.results.is_empty())
        .await;
    stop.notify_one();
    agent.await.unwrap().unwrap();
    assert!(fleet.state.lock().unwrap().results[0].1);
    // Everything came over HTTPS: range requests with the bearer token, no MQTT fetch.
    assert!(fleet.state.lock().unwrap().fetches.is_empty());
    let requests = https.requests.lock().unwrap().clone();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|(r, ok)| *ok && r.as_deref().is_some_and(|r| r.starts_with("bytes="))),
        "{requests:?}"
    );
    assert!(fleet.states("CSTL-U2").contains(&"confirmed".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_resumes_after_a_disconnect() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-U3").await;
    let dir = t.path().join("CSTL-U3");
    let release = Release::new(
        &kit,
        &fleet.release_key,
        1,
        Version::new(1, 1, 0, 0),
        b"r-kick",
        |b| b,
    );
    fleet.state.lock().unwrap().kick_after_chunks = Some(5);
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;
    fleet.offer("CSTL-U3", "camp-3", &release, None).await;
    fleet
        .wait_for("the result", |s| !s.results.is_empty())
        .await;
    stop.notify_one();
    let report = agent.await.unwrap().unwrap();
    assert!(
        report.reconnects >= 1,
        "the broker kicked the device: {report:?}"
    );
    assert!(fleet.state.lock().unwrap().results[0].1);
    // After the kick the download went on from where it stood: no fetch from byte 0 again.
    let fetches = fleet.state.lock().unwrap().fetches.clone();
    let restarts = fetches.iter().filter(|(_, o, _)| *o == 0).count();
    assert_eq!(restarts, 1, "{fetches:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_resumes_after_the_agent_restarts() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-U4").await;
    let dir = t.path().join("CSTL-U4");
    let release = Release::new(
        &kit,
        &fleet.release_key,
        1,
        Version::new(1, 1, 0, 0),
        b"r-restart",
        |b| b,
    );
    // The server stalls after about 9 KiB: the device stores its progress at 4 KiB and 8 KiB.
    fleet.state.lock().unwrap().serve_below = Some(9000);
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;
    fleet.offer("CSTL-U4", "camp-4", &release, None).await;
    fleet
        .wait_for("9216 bytes written (progress stored at 8192)", |s| {
            s.statuses
                .iter()
                .any(|(_, v)| v["state"] == "downloading" && v["offset"].as_u64() >= Some(9216))
        })
        .await;
    stop.notify_one();
    agent.await.unwrap().unwrap();
    // Let the broker deliver the last fetches of the first run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = fleet.state.lock().unwrap().fetches.len();
    assert!(
        castellan_agent::IdentityFiles::of(&dir)
            .update_journal()
            .exists()
    );

    // A new run (the device powers on again): the download continues from the stored sector.
    fleet.state.lock().unwrap().serve_below = None;
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("the result", |s| !s.results.is_empty())
        .await;
    stop.notify_one();
    agent.await.unwrap().unwrap();
    let fetches = fleet.state.lock().unwrap().fetches.clone();
    let first_after = fetches[before].1;
    assert_eq!(
        first_after, 8192,
        "resumed at the last stored sector: {fetches:?}"
    );
    let from_zero = fetches.iter().filter(|(_, o, _)| *o == 0).count();
    assert_eq!(
        from_zero, 1,
        "only the first run started at byte 0: {fetches:?}"
    );
    assert!(fleet.state.lock().unwrap().results[0].1);
    let accepted = fleet.status("CSTL-U4", "accepted").unwrap();
    assert_eq!(accepted["offset"], 8192);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_fails_its_self_test_is_reverted_and_reported() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-U5").await;
    let dir = t.path().join("CSTL-U5");
    let bad = Release::new(
        &kit,
        &fleet.release_key,
        1,
        Version::new(1, 1, 0, 0),
        b"build with CASTELLAN-SELFTEST-FAIL inside",
        |b| b,
    );
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;
    fleet.offer("CSTL-U5", "camp-5", &bad, None).await;
    fleet
        .wait_for("reverted", |s| {
            s.statuses.iter().any(|(_, v)| v["state"] == "reverted")
        })
        .await;
    let n = firmware(&fleet, "CSTL-U5").len();
    fleet
        .wait_for("telemetry after the revert", |s| s.telemetry.len() > n)
        .await;
    stop.notify_one();
    let report = agent.await.unwrap().unwrap();
    let states = fleet.states("CSTL-U5");
    assert!(!states.contains(&"confirmed".to_string()), "{states:?}");
    let rebooting = states.iter().position(|s| s == "rebooting").unwrap();
    let reverted = states.iter().position(|s| s == "reverted").unwrap();
    assert!(rebooting < reverted);
    let why = fleet.status("CSTL-U5", "reverted").unwrap()["reason"].clone();
    assert!(
        why.as_str().unwrap().contains("previous image runs again"),
        "{why}"
    );
    // Into the trial image and out again; the old firmware runs and reports.
    assert_eq!(report.reboots, 2);
    assert_eq!(report.updates_reverted, 1);
    assert_eq!(firmware(&fleet, "CSTL-U5").last().unwrap(), "1.0.0");
    assert!(fleet.state.lock().unwrap().results.is_empty());
    let world = castellan_agent::SecureWorld::power_on(&dir).unwrap();
    assert_eq!(world.boot_info().firmware_version(), "1.0.0");
    assert_eq!(
        world
            .service(|svc| svc.update_installed_sequence())
            .unwrap(),
        0
    );
    world.shut_down().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_offers_are_reported_before_any_byte_and_cancel_discards() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-U6").await;
    let dir = t.path().join("CSTL-U6");
    let expired = Release::new(
        &kit,
        &fleet.release_key,
        1,
        Version::new(1, 1, 0, 0),
        b"old",
        |b| b.expires(1_000_000_000),
    );
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;
    fleet.offer("CSTL-U6", "camp-exp", &expired, None).await;
    fleet
        .wait_for("failed", |s| {
            s.statuses.iter().any(|(_, v)| v["state"] == "failed")
        })
        .await;
    let failed = fleet.status("CSTL-U6", "failed").unwrap();
    assert!(
        failed["reason"].as_str().unwrap().contains("expired"),
        "{failed}"
    );
    assert!(
        fleet.state.lock().unwrap().fetches.is_empty(),
        "no byte before the checks"
    );

    // A good offer, stalled, then cancelled by the server: the download is dropped.
    let good = Release::new(
        &kit,
        &fleet.release_key,
        2,
        Version::new(1, 1, 0, 0),
        b"good",
        |b| b,
    );
    fleet.state.lock().unwrap().serve_below = Some(3000);
    fleet.offer("CSTL-U6", "camp-ok", &good, None).await;
    fleet
        .wait_for("the stall", |s| {
            s.fetches.iter().any(|(_, o, _)| *o >= 3000)
        })
        .await;
    fleet
        .broker
        .publish(
            "dev/CSTL-U6/down/update/cancel",
            r#"{"campaign_id":"camp-ok"}"#,
            1,
        )
        .await
        .unwrap();
    for _ in 0..100 {
        if !castellan_agent::IdentityFiles::of(&dir)
            .update_journal()
            .exists()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !castellan_agent::IdentityFiles::of(&dir)
            .update_journal()
            .exists()
    );
    stop.notify_one();
    let report = agent.await.unwrap().unwrap();
    assert_eq!(report.updates_failed, 1);
    let world = castellan_agent::SecureWorld::power_on(&dir).unwrap();
    let status = world.service(|svc| svc.update_status()).unwrap();
    assert_eq!(status.state, castellan_services::UpdateState::Idle);
    world.shut_down().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_of_the_installed_release_is_confirmed_and_an_older_one_refused() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-U7").await;
    let dir = t.path().join("CSTL-U7");
    let old = Release::new(
        &kit,
        &fleet.release_key,
        1,
        Version::new(1, 1, 0, 0),
        b"r1",
        |b| b,
    );
    let new = Release::new(
        &kit,
        &fleet.release_key,
        2,
        Version::new(1, 2, 0, 0),
        b"r2",
        |b| b,
    );
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;
    fleet.offer("CSTL-U7", "camp-2", &new, None).await;
    fleet
        .wait_for("the result", |s| !s.results.is_empty())
        .await;
    stop.notify_one();
    agent.await.unwrap().unwrap();

    // A new run (no memory of the campaign): the same offer again, then an older release.
    let sent = fleet.state.lock().unwrap().telemetry.len();
    let (stop, agent) = spawn_agent(&fleet, &dir);
    fleet
        .wait_for("telemetry of the new run", |s| s.telemetry.len() > sent)
        .await;
    let before = fleet.states("CSTL-U7").len();
    fleet.offer("CSTL-U7", "camp-2", &new, None).await;
    fleet
        .wait_for("a report", |s| {
            s.statuses.iter().filter(|(d, _)| d == "CSTL-U7").count() > before
        })
        .await;
    let again = fleet
        .state
        .lock()
        .unwrap()
        .statuses
        .last()
        .unwrap()
        .1
        .clone();
    assert_eq!(again["state"], "confirmed", "{again}");
    assert!(
        again["reason"]
            .as_str()
            .unwrap()
            .contains("already installed")
    );
    fleet.offer("CSTL-U7", "camp-1-replayed", &old, None).await;
    fleet
        .wait_for("the refusal", |s| {
            s.statuses
                .iter()
                .any(|(_, v)| v["campaign_id"] == "camp-1-replayed")
        })
        .await;
    let refused = fleet.status("CSTL-U7", "failed").unwrap();
    assert_eq!(
        refused["reason"],
        "manifest sequence 1 is not newer than the installed 2"
    );
    stop.notify_one();
    agent.await.unwrap().unwrap();
}
