//! A published TUF repository for the server's tests, with every key that signed it.

use castellan_tuf::repo::{Envelope, InitOptions, Policy, Repository, RoleSigner};

/// A published repository and its offline keys.
pub struct Published {
    pub repo: Repository,
    /// The two root keys (threshold 2).
    pub root: [RoleSigner; 2],
    /// The release manager's targets key.
    pub targets: RoleSigner,
    /// The `sensor-v1` team's key.
    pub team: RoleSigner,
}

impl Published {
    /// Sign the staged `role` with `keys` and import it into `repo` (which may carry online
    /// signers the fixture's own handle does not).
    pub fn sign(&self, repo: &Repository, role: &str, keys: &[&RoleSigner]) {
        let mut staged: Envelope = repo.staged(role).unwrap().unwrap();
        for k in keys {
            staged.sign(k).unwrap();
        }
        repo.import(role, &staged, jiff::Timestamp::now()).unwrap();
    }
}

/// A repository in `dir` listing `sensor-v1/fw.suit`.
pub fn published(dir: &std::path::Path) -> Published {
    let now = jiff::Timestamp::now();
    let key = || RoleSigner::generate().unwrap();
    let (root, targets, team) = ([key(), key()], key(), key());
    let options = InitOptions {
        root_keys: root.iter().map(|k| k.public().clone()).collect(),
        root_threshold: 2,
        targets_keys: vec![targets.public().clone()],
        targets_threshold: 1,
        policy: Policy::default(),
    };
    let repo = Repository::init(dir, &options, now).unwrap();
    let p = Published {
        repo: repo.clone(),
        root,
        targets,
        team,
    };
    p.sign(&repo, "root", &[&p.root[0], &p.root[1]]);
    p.sign(&repo, "targets", &[&p.targets]);
    repo.delegate("sensor-v1", vec![p.team.public().clone()], 1, now)
        .unwrap();
    p.sign(&repo, "targets", &[&p.targets]);
    repo.add_target("sensor-v1", "fw.suit", b"envelope", None, now)
        .unwrap();
    p.sign(&repo, "sensor-v1", &[&p.team]);
    p
}
