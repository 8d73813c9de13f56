//! Stolen keys: what each can do to a device, and recovery by rotation without touching the
//! devices' trust anchor (the root they were built with).

mod common;

use castellan_tuf::TufError;
use castellan_tuf::repo::key_id;
use common::{CLASS, Fleet, Mirror, forge, signer, t0};

#[test]
fn attack_fast_forward_recovered_by_rotating_the_timestamp_key() {
    let fleet = Fleet::new();
    let device = fleet.device();
    device.refresh(t0()).expect("refresh");
    // The thief of the timestamp key fast-forwards the device to version 1000 ...
    let stolen = fleet.online_key("timestamp");
    let forged = forge(&fleet.file("timestamp.json"), &[&stolen], |signed| {
        signed["version"] = serde_json::json!(1000);
    });
    let mirror = Mirror::honest(&device).replace("timestamp.json", forged.clone());
    device
        .refresh_through(mirror, t0())
        .expect("validly signed");
    assert_eq!(device.trusted_version("timestamp"), Some(1000));
    // ... so the honest timestamp now looks like a rollback.
    fleet.release("fw-2.suit", b"release 2 manifest", &fleet.class_key);
    assert!(matches!(device.refresh(t0()), Err(TufError::Refused(_))));
    // Recovery: the root keys replace the timestamp key; the device, seeing the rotation,
    // drops the fast-forwarded timestamp and follows the new key.
    rotate_online_keys(&fleet, &[("timestamp", &stolen)]);
    device.refresh(t0()).expect("refresh after rotation");
    assert_eq!(device.trusted_version("root"), Some(2));
    assert!(device.trusted_version("timestamp") < Some(1000));
    // The stolen key no longer signs anything the device accepts.
    let forged = forge(&fleet.file("timestamp.json"), &[&stolen], |signed| {
        signed["version"] = serde_json::json!(2000);
    });
    let mirror = Mirror::honest(&device).replace("timestamp.json", forged);
    assert!(matches!(
        device.refresh_through(mirror, t0()),
        Err(TufError::Refused(_))
    ));
}

#[test]
fn attack_compromised_snapshot_key_is_contained_and_rotated() {
    let fleet = Fleet::new();
    let device = fleet.device();
    device.refresh(t0()).expect("refresh");
    let snapshot_key = fleet.online_key("snapshot");
    let timestamp_key = fleet.online_key("timestamp");
    // With both online keys (a compromised server) the thief cannot roll a class back ...
    let version = device.trusted_version("snapshot").expect("snapshot");
    let forged_snapshot = forge(&fleet.file("snapshot.json"), &[&snapshot_key], |signed| {
        signed["version"] = serde_json::json!(version + 1);
        signed["meta"]["sensor-v1.json"]["version"] = serde_json::json!(1);
    });
    let forged_timestamp = timestamp_over(&fleet, &forged_snapshot, version + 1, &timestamp_key);
    let mirror = Mirror::honest(&device)
        .replace("timestamp.json", forged_timestamp)
        .replace(&format!("{}.snapshot.json", version + 1), forged_snapshot);
    let refused = device.fetch(mirror, "sensor-v1/fw-1.suit", t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    // ... and after both online keys are rotated (the server was compromised: both were
    // stolen) the stolen snapshot key signs nothing the device accepts.
    rotate_online_keys(
        &fleet,
        &[("snapshot", &snapshot_key), ("timestamp", &timestamp_key)],
    );
    device.refresh(t0()).expect("refresh after rotation");
    let next = device.trusted_version("snapshot").expect("snapshot") + 1;
    let forged_snapshot = forge(&fleet.file("snapshot.json"), &[&snapshot_key], |signed| {
        signed["version"] = serde_json::json!(next);
    });
    // Over it, a timestamp by the new timestamp key: only the snapshot key is the old one.
    let forged_timestamp = timestamp_over(
        &fleet,
        &forged_snapshot,
        next,
        &fleet.online_key("timestamp"),
    );
    let mirror = Mirror::honest(&device)
        .replace("timestamp.json", forged_timestamp)
        .replace(&format!("{next}.snapshot.json"), forged_snapshot);
    assert!(matches!(
        device.refresh_through(mirror, t0()),
        Err(TufError::Refused(_))
    ));
    assert_eq!(device.trusted_version("root"), Some(2));
}

/// The key-rotation drill: a class team's key is stolen; the release manager replaces it;
/// devices refuse what the stolen key signs and keep updating with the new one.
#[test]
fn attack_compromised_class_key_recovered_by_rotation() {
    let fleet = Fleet::new();
    let device = fleet.device();
    device.refresh(t0()).expect("refresh");
    let stolen = &fleet.class_key;
    let stolen_id = stolen.keyid().to_owned();
    let replacement = signer();
    fleet
        .repo
        .add_key(CLASS, replacement.public().clone(), None, t0())
        .expect("add");
    fleet
        .repo
        .remove_key(CLASS, &stolen_id, None, t0())
        .expect("remove");
    fleet.sign_and_import("targets", &[&fleet.targets_key]);
    // The class's role is re-signed by the new key, with the next release.
    fleet.release("fw-2.suit", b"release 2 manifest", &replacement);
    let bytes = device
        .fetch(Mirror::honest(&device), "sensor-v1/fw-2.suit", t0())
        .expect("release signed by the new key");
    assert_eq!(bytes, b"release 2 manifest");
    // The thief, holding the server's online keys too, lists a release signed with the old key.
    let evil = forge(&fleet.file("sensor-v1.json"), &[stolen], |signed| {
        signed["version"] = serde_json::json!(10);
        signed["targets"]["sensor-v1/evil.suit"] = serde_json::json!({"length": 4,
            "hashes": {"sha256": "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"}});
    });
    let mirror = served_with_online_keys(&fleet, &device, CLASS, 10, evil);
    let refused = device.fetch(mirror, "sensor-v1/evil.suit", t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    // The device's trust anchor never changed.
    assert_eq!(device.trusted_version("root"), Some(1));
    fleet
        .repo
        .edit_targets(CLASS, t0(), |_| Ok(()))
        .expect("stage");
    let importing = fleet.try_sign_and_import(CLASS, &[stolen], t0());
    assert!(
        importing.is_err(),
        "the repository refuses the stolen key too"
    );
}

#[test]
fn attack_compromised_targets_key_recovered_by_root_rotation() {
    let fleet = Fleet::new();
    let device = fleet.device();
    device.refresh(t0()).expect("refresh");
    let stolen = &fleet.targets_key;
    let new_targets_key = signer();
    fleet
        .repo
        .add_key("targets", new_targets_key.public().clone(), None, t0())
        .expect("add");
    fleet
        .repo
        .remove_key("targets", stolen.keyid(), None, t0())
        .expect("remove");
    fleet.sign_and_import("root", &[&fleet.root_keys[0], &fleet.root_keys[2]]);
    fleet
        .repo
        .edit_targets("targets", t0(), |_| Ok(()))
        .expect("stage targets");
    fleet.sign_and_import("targets", &[&new_targets_key]);
    device.refresh(t0()).expect("refresh after rotation");
    assert_eq!(device.trusted_version("root"), Some(2));
    // The thief re-delegates the class to a key of his own with the old targets key.
    let attacker = signer();
    let evil = forge(&fleet.file("targets.json"), &[stolen], |signed| {
        signed["version"] = serde_json::json!(10);
        let id = key_id(attacker.public()).expect("id");
        signed["delegations"]["keys"][&id] = serde_json::to_value(attacker.public()).expect("key");
        signed["delegations"]["roles"][0]["keyids"] = serde_json::json!([id]);
    });
    let mirror = served_with_online_keys(&fleet, &device, "targets", 10, evil);
    assert!(matches!(
        device.refresh_through(mirror, t0()),
        Err(TufError::Refused(_))
    ));
}

#[test]
fn root_rotation_across_several_versions_reaches_the_latest_root() {
    let fleet = Fleet::new();
    let device = fleet.device();
    let keys: Vec<_> = (0..4).map(|_| signer()).collect();
    let old = &fleet.root_keys;
    // v2 {old1, old2, k0}; v3 {old2, k0, k1}; v4 {k1, k2, k3}: none of v1's keys remain.
    let steps: [(
        Vec<&castellan_tuf::repo::RoleSigner>,
        Vec<&castellan_tuf::repo::RoleSigner>,
    ); 3] = [
        (vec![&old[1], &old[2], &keys[0]], vec![&old[1], &old[2]]),
        (vec![&old[2], &keys[0], &keys[1]], vec![&old[2], &keys[0]]),
        (
            vec![&keys[1], &keys[2], &keys[3]],
            vec![&keys[0], &keys[1], &keys[2]],
        ),
    ];
    for (members, signers) in steps {
        let public = members.iter().map(|k| k.public().clone()).collect();
        fleet.repo.rotate_root(public, 2, t0()).expect("stage");
        fleet.sign_and_import("root", &signers);
    }
    device.refresh(t0()).expect("refresh");
    assert_eq!(device.trusted_version("root"), Some(4));
    let bytes = device
        .fetch(Mirror::honest(&device), "sensor-v1/fw-1.suit", t0())
        .expect("fetch");
    assert_eq!(bytes, b"release 1 manifest");
}

#[test]
fn attack_root_signed_only_by_new_keys_is_refused() {
    let fleet = Fleet::new();
    let usurpers: Vec<_> = (0..2).map(|_| signer()).collect();
    let public = usurpers.iter().map(|k| k.public().clone()).collect();
    fleet.repo.rotate_root(public, 2, t0()).expect("stage");
    let refused = fleet.try_sign_and_import("root", &[&usurpers[0], &usurpers[1]], t0());
    assert!(
        matches!(refused, Err(TufError::ThresholdNotMet { .. })),
        "{refused:?}"
    );
    let mut root = fleet.repo.staged("root").expect("read").expect("staged");
    for key in &usurpers {
        root.sign(key).expect("sign");
    }
    let device = fleet.device();
    let mirror = Mirror::honest(&device).replace("2.root.json", root.to_bytes().expect("bytes"));
    assert!(matches!(
        device.refresh_through(mirror, t0()),
        Err(TufError::Refused(_))
    ));
    assert_eq!(device.trusted_version("root"), Some(1));
}

/// Replace stolen online keys: for each role a new key, the stolen one removed, in one new
/// root signed by two root keys and imported.
fn rotate_online_keys(fleet: &Fleet, stolen: &[(&str, &castellan_tuf::repo::RoleSigner)]) {
    for (role, key) in stolen {
        let fresh = fleet.repo.new_online_key().expect("new key");
        fleet.repo.add_key(role, fresh, None, t0()).expect("add");
        fleet
            .repo
            .remove_key(role, key.keyid(), None, t0())
            .expect("remove");
    }
    fleet.sign_and_import("root", &[&fleet.root_keys[1], &fleet.root_keys[2]]);
}

/// A timestamp over `snapshot` signed by `key`.
fn timestamp_over(
    fleet: &Fleet,
    snapshot: &[u8],
    snapshot_version: u64,
    key: &castellan_tuf::repo::RoleSigner,
) -> Vec<u8> {
    use sha2::Digest as _;
    forge(&fleet.file("timestamp.json"), &[key], |signed| {
        let version = signed["version"].as_u64().expect("version");
        signed["version"] = serde_json::json!(version + 1);
        signed["meta"]["snapshot.json"] = serde_json::json!({
            "version": snapshot_version, "length": snapshot.len(),
            "hashes": {"sha256": hex::encode(sha2::Sha256::digest(snapshot))}});
    })
}

/// A mirror serving `bytes` as version `version` of targets role `role`, with a snapshot and
/// timestamp the server's (current) online keys sign: a fully compromised server.
fn served_with_online_keys(
    fleet: &Fleet,
    device: &common::Device,
    role: &str,
    version: u64,
    bytes: Vec<u8>,
) -> Mirror {
    let next = device.trusted_version("snapshot").expect("snapshot") + 1;
    let snapshot = forge(
        &fleet.file("snapshot.json"),
        &[&fleet.online_key("snapshot")],
        |signed| {
            signed["version"] = serde_json::json!(next);
            signed["meta"][format!("{role}.json")]["version"] = serde_json::json!(version);
        },
    );
    let timestamp = timestamp_over(fleet, &snapshot, next, &fleet.online_key("timestamp"));
    Mirror::honest(device)
        .replace("timestamp.json", timestamp)
        .replace(&format!("{next}.snapshot.json"), snapshot)
        .replace(&format!("{version}.{role}.json"), bytes)
}
