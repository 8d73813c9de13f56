//! The repository attacks of TUF's threat model, each run against the repository
//! `castellan_tuf::repo` builds and the client devices run (`castellan_tuf::client`).

mod common;

use castellan_tuf::TufError;
use common::{CLASS, Fleet, Mirror, forge, later, signer, t0};

const FW1: &str = "sensor-v1/fw-1.suit";

#[test]
fn an_honest_repository_serves_the_listed_release() {
    let fleet = Fleet::new();
    let device = fleet.device();
    let bytes = device
        .fetch(Mirror::honest(&device), FW1, t0())
        .expect("fetch");
    assert_eq!(bytes, b"release 1 manifest");
    assert_eq!(device.trusted_version("sensor-v1"), Some(2));
}

#[test]
fn attack_arbitrary_software_is_refused() {
    let fleet = Fleet::new();
    let device = fleet.device();
    let tuf = device.refresh(t0()).expect("refresh");
    let info = tuf.trusted().targets_role(CLASS).map(|t| t.targets.len());
    assert_eq!(info, None, "class role is fetched on demand");
    // The mirror serves other bytes of the same length under the listed name.
    let digest = digest_of(&fleet, b"release 1 manifest");
    let mirror = Mirror::honest(&device).replace(
        &format!("targets/{CLASS}/{digest}.fw-1.suit"),
        b"RELEASE 1 MANIFEST".to_vec(),
    );
    let refused = device.fetch(mirror, FW1, t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    assert!(!client_holds(&device, FW1));
    // A class role signed by a key the delegation does not trust lists nothing.
    let attacker = signer();
    let forged = forge(&fleet.file("sensor-v1.json"), &[&attacker], |signed| {
        signed["targets"]["sensor-v1/evil.suit"] = serde_json::json!({"length": 4,
            "hashes": {"sha256": hex::encode(sha2_256(b"evil"))}});
        signed["version"] = serde_json::json!(3);
    });
    let fresh = fleet.device();
    let mirror = Mirror::honest(&fresh).replace("2.sensor-v1.json", forged);
    let refused = fresh.fetch(mirror, "sensor-v1/evil.suit", t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
}

#[test]
fn attack_rollback_of_metadata_is_refused() {
    let fleet = Fleet::new();
    let device = fleet.device();
    device.refresh(t0()).expect("refresh");
    let old_timestamp = fleet.file("timestamp.json");
    let old_snapshot_version = device.trusted_version("snapshot").expect("snapshot");
    fleet.release("fw-2.suit", b"release 2 manifest", &fleet.class_key);
    device.refresh(t0()).expect("refresh");
    assert!(device.trusted_version("snapshot") > Some(old_snapshot_version));
    let mirror = Mirror::honest(&device).replace("timestamp.json", old_timestamp);
    let refused = device.refresh_through(mirror, t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    assert!(device.trusted_version("snapshot") > Some(old_snapshot_version));
}

#[test]
fn attack_indefinite_freeze_is_refused_once_the_timestamp_expires() {
    let fleet = Fleet::new();
    let device = fleet.device();
    device.refresh(t0()).expect("refresh");
    // The server keeps serving the same, validly signed metadata: fine within a day ...
    device.refresh(later(20)).expect("still fresh");
    // ... refused once the timestamp's short life is over.
    let refused = device.refresh(later(25));
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    // An honest server re-signs in time, and the device accepts again.
    let resigned = fleet.repo.resign_due(later(24)).expect("re-sign");
    assert!(resigned.timestamp);
    device
        .refresh(later(25))
        .expect("re-signed timestamp accepted");
}

#[test]
fn attack_endless_data_is_cut_at_the_limit() {
    let fleet = Fleet::new();
    let device = fleet.device();
    // A timestamp far larger than any real one.
    let endless = vec![b' '; 1 << 20];
    let mirror = Mirror::honest(&device).replace("timestamp.json", endless);
    let refused = device.refresh_through(mirror, t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    // A target longer than its listed length.
    let digest = digest_of(&fleet, b"release 1 manifest");
    let mut long = b"release 1 manifest".to_vec();
    long.extend(std::iter::repeat_n(b'x', 1 << 20));
    let mirror =
        Mirror::honest(&device).replace(&format!("targets/{CLASS}/{digest}.fw-1.suit"), long);
    let refused = device.fetch(mirror, FW1, t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
}

#[test]
fn attack_extraneous_dependencies_are_not_installable() {
    let fleet = Fleet::new();
    let device = fleet.device();
    // The mirror offers a file the targets metadata does not list.
    let mirror =
        Mirror::honest(&device).replace(&format!("targets/{CLASS}/extra.suit"), b"extra".to_vec());
    let refused = device.fetch(mirror, "sensor-v1/extra.suit", t0());
    assert!(
        matches!(refused, Err(TufError::TargetNotFound(_))),
        "{refused:?}"
    );
    // A class's team cannot list software for another class: the repository refuses it,
    // and so does the device when a class role tries anyway.
    let forged = forge(
        &fleet.file("sensor-v1.json"),
        &[&fleet.class_key],
        |signed| {
            signed["targets"]["gateway-v1/fw.suit"] = serde_json::json!({"length": 2,
            "hashes": {"sha256": hex::encode(sha2_256(b"fw"))}});
        },
    );
    let envelope = castellan_tuf::repo::Envelope::from_bytes(&forged).expect("envelope");
    let refused = fleet.repo.import(CLASS, &envelope, t0());
    assert!(matches!(refused, Err(TufError::Policy(_))), "{refused:?}");
}

#[test]
fn attack_mix_and_match_is_refused() {
    let fleet = Fleet::new();
    let class_v2 = fleet.file("2.sensor-v1.json");
    fleet.release("fw-2.suit", b"release 2 manifest", &fleet.class_key);
    let device = fleet.device();
    // The current snapshot pins sensor-v1 v3; the mirror serves v2 under v3's name.
    let mirror = Mirror::honest(&device).replace("3.sensor-v1.json", class_v2);
    let refused = device.fetch(mirror, FW1, t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    // The matching set is accepted.
    let bytes = device
        .fetch(Mirror::honest(&device), FW1, t0())
        .expect("fetch");
    assert_eq!(bytes, b"release 1 manifest");
}

#[test]
fn attack_valid_but_old_metadata_from_a_compromised_server_is_refused() {
    let fleet = Fleet::new();
    // A compromised server keeps a complete, validly signed, consistent old set ...
    let old: Vec<(String, Vec<u8>)> = ["timestamp.json", "snapshot.json"]
        .iter()
        .map(|n| ((*n).to_owned(), fleet.file(n)))
        .collect();
    fleet.release("fw-2.suit", b"release 2 manifest", &fleet.class_key);
    let device = fleet.device();
    device.refresh(t0()).expect("refresh");
    let seen = device.trusted_version("timestamp");
    // ... and serves it to a device that has seen newer metadata: refused, nothing replaced.
    let mut mirror = Mirror::honest(&device);
    for (name, bytes) in old {
        mirror = mirror.replace(&name, bytes);
    }
    let refused = device.refresh_through(mirror, t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    assert_eq!(device.trusted_version("timestamp"), seen);
}

#[test]
fn attack_threshold_not_met_is_refused_by_repository_and_device() {
    let fleet = Fleet::new();
    let new_key = signer();
    fleet
        .repo
        .add_key("root", new_key.public().clone(), None, t0())
        .expect("stage");
    // One root signature of the two required: the repository does not publish it.
    let refused = fleet.try_sign_and_import("root", &[&fleet.root_keys[0]], t0());
    assert!(
        matches!(
            refused,
            Err(TufError::ThresholdNotMet {
                have: 1,
                need: 2,
                ..
            })
        ),
        "{refused:?}"
    );
    // Served anyway (a compromised server), the device refuses it and keeps root v1.
    let staged = fleet.repo.staged("root").expect("read").expect("staged");
    let mut one = staged.clone();
    one.sign(&fleet.root_keys[0]).expect("sign");
    let device = fleet.device();
    let mirror = Mirror::honest(&device).replace("2.root.json", one.to_bytes().expect("bytes"));
    let refused = device.refresh_through(mirror, t0());
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    assert_eq!(device.trusted_version("root"), Some(1));
}

#[test]
fn attack_slow_retrieval_is_cut_by_the_time_limit() {
    use std::time::Duration;
    // A repository that accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/metadata", listener.local_addr().expect("addr"));
    let stall = std::thread::spawn(move || {
        let held = listener.accept().map(|(socket, _)| socket);
        std::thread::sleep(Duration::from_secs(3));
        drop(held);
    });
    let fleet = Fleet::new();
    let device = fleet.device();
    let limits = castellan_tuf::client::FetchLimits {
        connect: Duration::from_secs(1),
        read: Duration::from_secs(1),
        total: Duration::from_secs(2),
    };
    let mut tuf =
        castellan_tuf::client::DeviceClient::open_http(device.dir.path(), &url, None, limits)
            .expect("client");
    let refused = common::Blocking::await_blocking(tuf.refresh(t0()));
    assert!(matches!(refused, Err(TufError::Refused(_))), "{refused:?}");
    stall.join().expect("stall thread");
}

/// Whether the device's trusted directory holds anything under the target's name.
fn client_holds(device: &common::Device, target: &str) -> bool {
    device.dir.path().join(target).exists()
}

fn sha2_256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).to_vec()
}

fn digest_of(_fleet: &Fleet, bytes: &[u8]) -> String {
    hex::encode(sha2_256(bytes))
}

#[test]
fn attack_suit_envelope_not_listed_for_its_class_is_refused() {
    let fleet = Fleet::new();
    fleet.release("r2.suit", b"envelope r2", &fleet.class_key);
    let device = fleet.device();
    let mut tuf = device.refresh(t0()).expect("refresh");
    let check = |tuf: &mut castellan_tuf::client::DeviceClient, release: &str, bytes: &[u8]| {
        common::Blocking::await_blocking(tuf.check_release(CLASS, release, bytes, t0()))
    };
    check(&mut tuf, "r2", b"envelope r2").expect("listed");
    // A validly signed envelope (a stolen release key) that TUF does not list for it.
    let refused = check(&mut tuf, "r2", b"envelope r2, other bytes");
    assert!(
        matches!(refused, Err(TufError::NotListed { .. })),
        "{refused:?}"
    );
    // A release TUF does not list at all, or lists for another class.
    let refused = check(&mut tuf, "r3", b"envelope r2");
    assert!(
        matches!(refused, Err(TufError::TargetNotFound(_))),
        "{refused:?}"
    );
    let refused = common::Blocking::await_blocking(tuf.check_release(
        "gateway-v1",
        "r2",
        b"envelope r2",
        t0(),
    ));
    assert!(
        matches!(refused, Err(TufError::TargetNotFound(_))),
        "{refused:?}"
    );
}
