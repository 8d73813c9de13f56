//! Fuzz target for the TUF metadata Castellan takes from outside (`castellan-tuf` over
//! sigstore-tuf), on both sides:
//!
//! * the device: its trusted set, anchored on a real root (`fixtures/tuf/1.root.json`), loads
//!   the input as a new root, as a first root (`client::init`'s check), and, split at NUL
//!   bytes, as the chain a refresh fetches (timestamp, snapshot, targets, the class's
//!   delegated targets) at the fixture's time; the seeds are that repository's real files, so
//!   mutations reach past the signatures into the hash, length, version and expiry checks;
//! * the repository: `Envelope::from_bytes` (what `castellan repo import` reads), its
//!   accessors, its write-back (which must read again), and `Repository::import` as root,
//!   targets and a device class into a published repository whose keys the fuzzer cannot
//!   have, so nothing is ever accepted and the repository does not change between inputs.
//!
//! Nothing may panic.
#![no_main]

use std::sync::OnceLock;

use castellan_tuf::repo::{Envelope, InitOptions, Policy, Repository, RoleSigner};
use sigstore_tuf::TrustedMetadataSet;

/// The device's trust anchor: root v1 of the fixture repository (`fixtures/make-tuf.sh`).
const ROOT: &[u8] = include_bytes!("../fixtures/tuf/1.root.json");
/// When the fixture was made: every role is within its lifetime then.
const NOW: &str = include_str!("../fixtures/tuf/now");
/// The device class the fixture and the in-process repository delegate.
const CLASS: &str = "sensor-v1";

fn now() -> jiff::Timestamp {
    NOW.trim().parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn anchor() -> Option<&'static TrustedMetadataSet> {
    static SET: OnceLock<Option<TrustedMetadataSet>> = OnceLock::new();
    SET.get_or_init(|| TrustedMetadataSet::from_root(ROOT).ok())
        .as_ref()
}

/// A published repository (root, targets, one class delegated), made once per process with
/// fresh keys in a temporary directory.
fn repository() -> Option<&'static Repository> {
    static REPO: OnceLock<Option<Repository>> = OnceLock::new();
    REPO.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("castellan-fuzz-tuf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root_key = RoleSigner::generate().ok()?;
        let targets_key = RoleSigner::generate().ok()?;
        let class_key = RoleSigner::generate().ok()?;
        let options = InitOptions {
            root_keys: vec![root_key.public().clone()],
            root_threshold: 1,
            targets_keys: vec![targets_key.public().clone()],
            targets_threshold: 1,
            policy: Policy::default(),
        };
        let repo = Repository::init(&dir, &options, now()).ok()?;
        let sign_import = |role: &str, key: &RoleSigner| -> Option<()> {
            let mut envelope = repo.staged(role).ok()??;
            envelope.sign(key).ok()?;
            repo.import(role, &envelope, now()).ok()
        };
        sign_import("root", &root_key)?;
        sign_import("targets", &targets_key)?;
        repo.delegate(CLASS, vec![class_key.public().clone()], 1, now())
            .ok()?;
        sign_import("targets", &targets_key)?;
        sign_import(CLASS, &class_key)?;
        Some(repo)
    })
    .as_ref()
}

/// The device side: the input as roots, and as the chain of a refresh.
fn device(data: &[u8]) {
    let now = now();
    let _ = TrustedMetadataSet::from_root(data);
    let Some(anchor) = anchor() else {
        return;
    };
    let mut set = anchor.clone();
    let _ = set.update_root(data);

    let mut set = anchor.clone();
    let mut parts = data.split(|&b| b == 0);
    let chain = [parts.next(), parts.next(), parts.next(), parts.next()];
    let [Some(timestamp), snapshot, targets, class] = chain else {
        return;
    };
    if set.update_timestamp(timestamp, now).is_err() {
        return;
    }
    let Some(snapshot) = snapshot else { return };
    if set.update_snapshot(snapshot, now).is_err() {
        return;
    }
    let Some(targets) = targets else { return };
    let Ok(listed) = set.update_targets(targets, now) else {
        return;
    };
    let _ = listed.targets.len();
    let Some(class) = class else { return };
    if let Ok(listed) = set.update_delegated_targets(class, CLASS, "targets", now) {
        let _ = listed.targets.len();
        let _ = set.verify_delegated_targets(CLASS, "targets", now);
    }
}

/// The repository side: the input as a signed file handed to `castellan repo import`.
fn repository_import(data: &[u8]) {
    let Ok(envelope) = Envelope::from_bytes(data) else {
        return;
    };
    let _ = envelope.role_type();
    let _ = envelope.version();
    let _ = envelope.signers();
    let _ = envelope.payload::<sigstore_tuf::Root>();
    let _ = envelope.payload::<sigstore_tuf::Targets>();
    if let Ok(bytes) = envelope.to_bytes() {
        assert!(
            Envelope::from_bytes(&bytes).is_ok(),
            "a metadata file written back reads again"
        );
    }
    if let Some(repo) = repository() {
        for role in ["root", "targets", CLASS] {
            if repo.import(role, &envelope, now()).is_ok() {
                panic!("{role} imported without the repository's keys");
            }
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    device(data);
    repository_import(data);
});
