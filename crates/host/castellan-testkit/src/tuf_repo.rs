//! A published TUF repository for tests and examples (feature `tuf`), with every offline key
//! that signed it: root (two keys, threshold 2), targets, and one device class delegated to
//! its release team. Snapshot and timestamp are signed by the repository's online keys.

use std::path::Path;

use castellan_tuf::TufError;
use castellan_tuf::repo::{Envelope, InitOptions, Policy, Repository, RoleSigner};

/// A published repository and its offline keys.
pub struct PublishedRepo {
    /// The repository (online signers: its key files).
    pub repo: Repository,
    /// The two root keys (threshold 2).
    pub root: [RoleSigner; 2],
    /// The release manager's targets key.
    pub targets: RoleSigner,
    /// The delegated class's release team key.
    pub team: RoleSigner,
    /// The delegated device class.
    pub class: String,
}

impl PublishedRepo {
    /// A repository in `dir` delegating `class` to a release team key: root and targets signed
    /// and published, the class's role staged until the first `list`.
    pub fn publish(dir: &Path, class: &str) -> Result<PublishedRepo, TufError> {
        let now = jiff::Timestamp::now();
        let (root, targets, team) = (
            [RoleSigner::generate()?, RoleSigner::generate()?],
            RoleSigner::generate()?,
            RoleSigner::generate()?,
        );
        let options = InitOptions {
            root_keys: root.iter().map(|k| k.public().clone()).collect(),
            root_threshold: 2,
            targets_keys: vec![targets.public().clone()],
            targets_threshold: 1,
            policy: Policy::default(),
        };
        let repo = Repository::init(dir, &options, now)?;
        let p = PublishedRepo {
            repo: repo.clone(),
            root,
            targets,
            team,
            class: class.to_owned(),
        };
        p.sign(&repo, "root", &[&p.root[0], &p.root[1]])?;
        p.sign(&repo, "targets", &[&p.targets])?;
        repo.delegate(class, vec![p.team.public().clone()], 1, now)?;
        p.sign(&repo, "targets", &[&p.targets])?;
        // The class's role stays staged (version 1, empty): the first `list` publishes it.
        Ok(p)
    }

    /// Sign the staged `role` with `keys` and import it into `repo` (which may carry online
    /// signers this handle does not); snapshot and timestamp follow.
    pub fn sign(
        &self,
        repo: &Repository,
        role: &str,
        keys: &[&RoleSigner],
    ) -> Result<(), TufError> {
        let mut staged: Envelope = repo
            .staged(role)?
            .ok_or_else(|| TufError::Policy(format!("nothing staged for {role}")))?;
        for k in keys {
            staged.sign(k)?;
        }
        repo.import(role, &staged, jiff::Timestamp::now())
    }

    /// List `bytes` as target `name` of the delegated class, signed by its release team.
    pub fn list(&self, name: &str, bytes: &[u8]) -> Result<(), TufError> {
        self.repo
            .add_target(&self.class, name, bytes, None, jiff::Timestamp::now())?;
        self.sign(&self.repo, &self.class, &[&self.team])
    }
}
