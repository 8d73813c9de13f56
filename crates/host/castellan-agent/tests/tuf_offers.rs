//! The agent checks each offer against the fleet's TUF metadata (served over HTTPS with the
//! fleet's CA) before the secure services see it: a release validly signed with the release
//! key but not listed for the device's class is refused before any byte moves; a listed one
//! goes on. Also prints how long the TUF refresh adds to an offer (offer → `accepted`, against a
//! device without TUF in the same run; the figures are in docs/benchmarks.md).

mod update_fleet;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use castellan_agent::update::tuf::TufSettings;
use castellan_tuf::repo::{Envelope, RoleSigner};
use update_fleet::*;

/// An agent for `device` checking offers against the TUF repository at `url`.
fn spawn_tuf_agent(
    fleet: &Fleet,
    dir: &Path,
    url: &str,
    root: PathBuf,
) -> (Arc<tokio::sync::Notify>, AgentTask) {
    spawn_agent_with(fleet, dir, |cfg| {
        cfg.tuf = Some(TufSettings {
            metadata_url: Some(url.to_owned()),
            root: Some(root),
            ..TufSettings::default()
        });
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_offer_of_a_release_tuf_does_not_list_is_refused_before_download() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-T1").await;
    let plain_kit = device(&fleet, t.path(), "CSTL-T2").await;
    let release = |kit, seq, label| release_v1_1(&fleet, kit, seq, label);
    let listed = release(&kit, 1, b"listed");
    // Signed with the release key (as a thief of it would), but not in TUF.
    let unlisted = release(&kit, 2, b"unlisted");
    let plain = release(&plain_kit, 1, b"listed");
    let tuf = Tuf::new(&t.path().join("tuf"), &[&listed]);
    let url = serve_dir(&fleet.pki, tuf.metadata()).await;
    let (stop, agent) = spawn_tuf_agent(&fleet, &t.path().join("CSTL-T1"), &url, tuf.root());
    let (plain_stop, plain_agent) = spawn_agent_with(&fleet, &t.path().join("CSTL-T2"), |_| {});
    fleet
        .wait_for("telemetry of both", |s| {
            ["CSTL-T1", "CSTL-T2"]
                .iter()
                .all(|d| s.telemetry.iter().any(|(t, _)| t == d))
        })
        .await;

    offer_until(&fleet, "CSTL-T1", "camp-unlisted", &unlisted, "failed").await;
    let failed = fleet.status("CSTL-T1", "failed").unwrap();
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.starts_with("TUF: "), "{reason}");
    assert!(
        fleet.state.lock().unwrap().fetches.is_empty(),
        "no byte before the checks"
    );

    let with_tuf = offer_until(&fleet, "CSTL-T1", "camp-listed", &listed, "accepted").await;
    let without = offer_until(&fleet, "CSTL-T2", "camp-plain", &plain, "accepted").await;
    println!(
        "offer → accepted: {} ms with the TUF refresh, {} ms without (ratio {:.2})",
        with_tuf.as_millis(),
        without.as_millis(),
        with_tuf.as_secs_f64() / without.as_secs_f64().max(1e-6)
    );
    stop.notify_one();
    plain_stop.notify_one();
    let report = agent.await.unwrap().unwrap();
    assert_eq!(report.updates_failed, 1);
    let _ = plain_agent.await.unwrap();
    // The device's trusted TUF metadata is kept in its identity.
    let trusted = t.path().join("CSTL-T1/identity/tuf/timestamp.json");
    assert!(trusted.exists());
}

/// The key-rotation drill against a running device: the class team's key is stolen; the
/// release manager replaces it in the delegation (the devices' TUF root is not touched); the
/// thief, holding the server too, lists a release with the stolen key and the device refuses
/// it; the next release, signed by the new key, is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_stolen_class_key_rotated_out_while_the_device_runs() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-T3").await;
    let release = |seq, label| release_v1_1(&fleet, &kit, seq, label);
    let (first, evil, next) = (
        release(1, b"first"),
        release(2, b"evil"),
        release(3, b"next"),
    );
    let tuf = Tuf::new(&t.path().join("tuf"), &[&first]);
    let url = serve_dir(&fleet.pki, tuf.metadata()).await;

    // Rotation: the release manager trusts a new team key instead of the stolen one.
    let now = jiff::Timestamp::now();
    let new_team = RoleSigner::generate().unwrap();
    tuf.repo
        .add_key(CLASS, new_team.public().clone(), None, now)
        .unwrap();
    tuf.repo
        .remove_key(CLASS, tuf.team.keyid(), None, now)
        .unwrap();
    tuf.sign("targets", &[&tuf.targets]);
    tuf.list(&[], &new_team);

    let (stop, agent) = spawn_tuf_agent(&fleet, &t.path().join("CSTL-T3"), &url, tuf.root());
    fleet
        .wait_for("telemetry", |s| !s.telemetry.is_empty())
        .await;

    // The thief lists `evil` with the stolen key and, on the server, signs a snapshot and
    // timestamp over it with the online keys.
    let published = tuf.repo.published(CLASS).unwrap().unwrap();
    let mut signed: serde_json::Value = published.payload().unwrap();
    signed["version"] = serde_json::json!(published.version().unwrap() + 1);
    signed["targets"][format!("{CLASS}/{}.suit", evil.id)] = serde_json::json!({
        "length": evil.envelope.len(),
        "hashes": {"sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&evil.envelope))},
    });
    let mut forged = Envelope::unsigned(&signed).unwrap();
    forged.sign(&tuf.team).unwrap();
    let bytes = forged.to_bytes().unwrap();
    let version = forged.version().unwrap();
    std::fs::write(
        tuf.metadata().join(format!("{version}.{CLASS}.json")),
        &bytes,
    )
    .unwrap();
    std::fs::write(tuf.metadata().join(format!("{CLASS}.json")), &bytes).unwrap();
    tuf.repo.publish_online(jiff::Timestamp::now()).unwrap();
    offer_until(&fleet, "CSTL-T3", "camp-evil", &evil, "failed").await;
    let failed = fleet.status("CSTL-T3", "failed").unwrap();
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.starts_with("TUF: "), "{reason}");

    // The server is cleaned up; the next release, signed by the new key, goes through.
    tuf.list(&[&next], &new_team);
    offer_until(&fleet, "CSTL-T3", "camp-next", &next, "accepted").await;
    stop.notify_one();
    let report = agent.await.unwrap().unwrap();
    assert_eq!(report.updates_failed, 1);
    let trusted_root = std::fs::read(t.path().join("CSTL-T3/identity/tuf/root.json")).unwrap();
    assert_eq!(
        Envelope::from_bytes(&trusted_root)
            .unwrap()
            .version()
            .unwrap(),
        1
    );
}
