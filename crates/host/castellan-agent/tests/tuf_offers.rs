//! The agent checks each offer against the fleet's TUF metadata (served over HTTPS with the
//! fleet's CA) before the secure services see it: a release validly signed with the release
//! key but not listed for the device's class is refused before any byte moves; a listed one
//! goes on. Also prints how long the TUF refresh adds to an offer (offer → `accepted`, against a
//! device without TUF in the same run; the figures are in docs/benchmarks.md).

mod update_fleet;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use castellan_agent::update::tuf::TufSettings;
use castellan_image::Version;
use castellan_tuf::repo::{Envelope, InitOptions, Policy, Repository, RoleSigner};
use update_fleet::*;

/// A published TUF repository listing `releases` for `CLASS`; its metadata directory and the
/// root devices trust.
fn tuf_repository(dir: &Path, releases: &[&Release]) -> (PathBuf, PathBuf) {
    let key = || RoleSigner::generate().unwrap();
    let (root_a, root_b, targets, team) = (key(), key(), key(), key());
    let now = jiff::Timestamp::now();
    let options = InitOptions {
        root_keys: vec![root_a.public().clone(), root_b.public().clone()],
        root_threshold: 2,
        targets_keys: vec![targets.public().clone()],
        targets_threshold: 1,
        policy: Policy::default(),
    };
    let repo = Repository::init(dir, &options, now).unwrap();
    let sign = |role: &str, keys: &[&RoleSigner]| {
        let mut staged: Envelope = repo.staged(role).unwrap().unwrap();
        for k in keys {
            staged.sign(k).unwrap();
        }
        repo.import(role, &staged, now).unwrap();
    };
    sign("root", &[&root_a, &root_b]);
    sign("targets", &[&targets]);
    repo.delegate(CLASS, vec![team.public().clone()], 1, now)
        .unwrap();
    sign("targets", &[&targets]);
    for release in releases {
        repo.add_target(
            CLASS,
            &format!("{}.suit", release.id),
            &release.envelope,
            None,
            now,
        )
        .unwrap();
    }
    sign(CLASS, &[&team]);
    let metadata = repo.metadata_dir();
    (metadata.clone(), metadata.join("1.root.json"))
}

/// Offer `release` to `device` and wait for `state`; how long it took.
async fn offer_until(
    fleet: &Fleet,
    device: &str,
    campaign: &str,
    release: &Release,
    state: &str,
) -> std::time::Duration {
    let started = Instant::now();
    fleet.offer(device, campaign, release, None).await;
    fleet
        .wait_for(state, |s| {
            s.statuses
                .iter()
                .any(|(d, v)| d == device && v["campaign_id"] == campaign && v["state"] == state)
        })
        .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_offer_of_a_release_tuf_does_not_list_is_refused_before_download() {
    let t = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(t.path()).await;
    let kit = device(&fleet, t.path(), "CSTL-T1").await;
    let plain_kit = device(&fleet, t.path(), "CSTL-T2").await;
    let release = |kit: &castellan_agent::FirmwareKit, seq: u64, label: &[u8]| {
        Release::new(
            kit,
            &fleet.release_key,
            seq,
            Version::new(1, 1, 0, 0),
            label,
            |b| b,
        )
    };
    let listed = release(&kit, 1, b"listed");
    // Signed with the release key (as a thief of it would), but not in TUF.
    let unlisted = release(&kit, 2, b"unlisted");
    let plain = release(&plain_kit, 1, b"listed");
    let (metadata, root) = tuf_repository(&t.path().join("tuf"), &[&listed]);
    let url = serve_dir(&fleet.pki, metadata).await;

    let stop = Arc::new(tokio::sync::Notify::new());
    let mut cfg = fleet.agent_config(&t.path().join("CSTL-T1"));
    cfg.stop = Some(stop.clone());
    cfg.tuf = Some(TufSettings {
        metadata_url: url,
        root: Some(root),
    });
    let agent = tokio::spawn(castellan_agent::run(cfg));
    let plain_stop = Arc::new(tokio::sync::Notify::new());
    let mut plain_cfg = fleet.agent_config(&t.path().join("CSTL-T2"));
    plain_cfg.stop = Some(plain_stop.clone());
    let plain_agent = tokio::spawn(castellan_agent::run(plain_cfg));
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
