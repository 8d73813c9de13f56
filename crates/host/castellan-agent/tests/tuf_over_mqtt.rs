//! A device that speaks only MQTT checks offers against TUF too: no metadata URL, only the TUF
//! root the factory installed in its identity; the client's fetches travel as requests
//! on the device's own `dev/<id>/up/tuf/request` and answers on `dev/<id>/down/tuf/response`,
//! answered from the repository directory as the fleet server does. A listed release goes on,
//! an unlisted one is refused before any byte moves, a repository that stalls is cut off.

mod update_fleet;

use std::path::Path;
use std::time::Duration;

use castellan_agent::FirmwareKit;
use castellan_agent::update::tuf::TufSettings;
use castellan_tuf::client::FetchLimits;
use update_fleet::*;

/// A fleet keeping a TUF repository (no release listed yet) and answering it over MQTT, and
/// a device `serial` provisioned by its factory, which installs the repository's root.
async fn mqtt_only_device(dir: &Path, serial: &str) -> (Fleet, FirmwareKit, Tuf) {
    let fleet = Fleet::start(dir).await;
    let tuf = Tuf::new(&dir.join("tuf"), &[]);
    fleet.state.lock().unwrap().tuf_repository = Some(dir.join("tuf"));
    let kit = device(&fleet, dir, serial).await;
    (fleet, kit, tuf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_unlisted_release_refused_by_a_device_that_fetches_tuf_over_mqtt() {
    let t = tempfile::tempdir().unwrap();
    let (fleet, kit, tuf) = mqtt_only_device(t.path(), "CSTL-M1").await;
    let listed = release_v1_1(&fleet, &kit, 1, b"listed");
    let unlisted = release_v1_1(&fleet, &kit, 2, b"unlisted");
    tuf.list(&[&listed], &tuf.team);
    let device_dir = t.path().join("CSTL-M1");
    // The factory installed the repository's root with the identity files.
    assert_eq!(
        std::fs::read(device_dir.join("identity/tuf/root.json")).unwrap(),
        std::fs::read(tuf.metadata().join("root.json")).unwrap()
    );
    // No TUF settings (no --tuf-url, no --tuf-root): the factory's root makes the agent check
    // offers, over MQTT.
    let (stop, agent) = spawn_agent_with(&fleet, &device_dir, |_| {});
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;

    offer_until(&fleet, "CSTL-M1", "camp-unlisted", &unlisted, "failed").await;
    let failed = fleet.status("CSTL-M1", "failed").unwrap();
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.starts_with("TUF: "), "{reason}");
    assert!(
        reason.contains("not listed") || reason.contains("not found"),
        "{reason}"
    );
    assert!(
        fleet.state.lock().unwrap().fetches.is_empty(),
        "no byte before the checks"
    );
    let asked = fleet.state.lock().unwrap().tuf_requests;
    assert!(
        asked >= 4,
        "root, timestamp, snapshot, targets over MQTT: {asked}"
    );

    offer_until(&fleet, "CSTL-M1", "camp-listed", &listed, "accepted").await;
    stop.notify_one();
    let report = agent.await.unwrap().unwrap();
    assert_eq!(report.updates_failed, 1);
    assert!(device_dir.join("identity/tuf/timestamp.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_slow_retrieval_over_mqtt_is_cut_off() {
    let t = tempfile::tempdir().unwrap();
    let (fleet, kit, tuf) = mqtt_only_device(t.path(), "CSTL-M2").await;
    let listed = release_v1_1(&fleet, &kit, 1, b"listed");
    tuf.list(&[&listed], &tuf.team);
    let device_dir = t.path().join("CSTL-M2");
    fleet.state.lock().unwrap().tuf_silent = true;
    let (stop, agent) = spawn_agent_with(&fleet, &device_dir, |cfg| {
        cfg.tuf = Some(TufSettings {
            limits: FetchLimits {
                connect: Duration::from_secs(1),
                read: Duration::from_secs(1),
                total: Duration::from_secs(1),
            },
            ..TufSettings::default()
        });
    });
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;
    offer_until(&fleet, "CSTL-M2", "camp-stalled", &listed, "failed").await;
    let failed = fleet.status("CSTL-M2", "failed").unwrap();
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("slow retrieval"), "{reason}");
    assert!(fleet.state.lock().unwrap().fetches.is_empty());

    // The repository answers again: the same device goes on.
    fleet.state.lock().unwrap().tuf_silent = false;
    offer_until(&fleet, "CSTL-M2", "camp-answered", &listed, "accepted").await;
    stop.notify_one();
    let report = agent.await.unwrap().unwrap();
    assert_eq!(report.updates_failed, 1);
}
