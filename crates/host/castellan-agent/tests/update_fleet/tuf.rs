//! The stand-in fleet's TUF side: a published repository with the device class delegated to a
//! release team's key, and offers timed until the device reports a state.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use castellan_tuf::repo::{Envelope, InitOptions, Policy, Repository, RoleSigner};

use castellan_agent::FirmwareKit;
use castellan_image::Version;

use super::{CLASS, Fleet, Release, State};

/// A published TUF repository with `CLASS` delegated to a release team's key.
pub struct Tuf {
    pub repo: Repository,
    pub targets: RoleSigner,
    pub team: RoleSigner,
}

impl Tuf {
    /// Created in `dir`, listing `releases` for `CLASS`.
    pub fn new(dir: &Path, releases: &[&Release]) -> Tuf {
        let key = || RoleSigner::generate().unwrap();
        let (root_a, root_b, targets, team) = (key(), key(), key(), key());
        let options = InitOptions {
            root_keys: vec![root_a.public().clone(), root_b.public().clone()],
            root_threshold: 2,
            targets_keys: vec![targets.public().clone()],
            targets_threshold: 1,
            policy: Policy::default(),
        };
        let repo = Repository::init(dir, &options, jiff::Timestamp::now()).unwrap();
        let tuf = Tuf {
            repo,
            targets,
            team,
        };
        tuf.sign("root", &[&root_a, &root_b]);
        tuf.sign("targets", &[&tuf.targets]);
        tuf.repo
            .delegate(
                CLASS,
                vec![tuf.team.public().clone()],
                1,
                jiff::Timestamp::now(),
            )
            .unwrap();
        tuf.sign("targets", &[&tuf.targets]);
        tuf.list(releases, &tuf.team);
        tuf
    }

    /// Sign the staged `role` with `keys` and import it.
    pub fn sign(&self, role: &str, keys: &[&RoleSigner]) {
        let mut staged: Envelope = self.repo.staged(role).unwrap().unwrap();
        for k in keys {
            staged.sign(k).unwrap();
        }
        self.repo
            .import(role, &staged, jiff::Timestamp::now())
            .unwrap();
    }

    /// List `releases` for the class, signed by `key`.
    pub fn list(&self, releases: &[&Release], key: &RoleSigner) {
        let now = jiff::Timestamp::now();
        for release in releases {
            let name = format!("{}.suit", release.id);
            self.repo
                .add_target(CLASS, &name, &release.envelope, None, now)
                .unwrap();
        }
        if releases.is_empty() {
            self.repo.edit_targets(CLASS, now, |_| Ok(())).unwrap();
        }
        self.sign(CLASS, &[key]);
    }

    pub fn metadata(&self) -> PathBuf {
        self.repo.metadata_dir()
    }

    pub fn root(&self) -> PathBuf {
        self.metadata().join("1.root.json")
    }
}

/// Offer `release` to `device` and wait for `state`; how long it took.
pub async fn offer_until(
    fleet: &Fleet,
    device: &str,
    campaign: &str,
    release: &Release,
    state: &str,
) -> std::time::Duration {
    let started = Instant::now();
    fleet.offer(device, campaign, release, None).await;
    // Polled every 2 ms (not `wait_for`'s 50 ms): the time is a measured figure.
    let reached = |s: &State| {
        s.statuses
            .iter()
            .any(|(d, v)| d == device && v["campaign_id"] == campaign && v["state"] == state)
    };
    while !reached(&fleet.state.lock().unwrap()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {state} for {campaign}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

/// Version 1.1 of `kit`'s application with payload `label`, in a manifest of `seq` signed with
/// the fleet's release key.
pub fn release_v1_1(fleet: &Fleet, kit: &FirmwareKit, seq: u64, label: &[u8]) -> Release {
    Release::new(
        kit,
        &fleet.release_key,
        seq,
        Version::new(1, 1, 0, 0),
        label,
        |b| b,
    )
}
