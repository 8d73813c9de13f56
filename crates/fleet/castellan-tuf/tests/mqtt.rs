//! TUF over MQTT, both ends without a broker: the server's answer from the repository
//! directory (found, not found, too large, nothing outside the repository) and what the
//! client's transport makes of an answer (endless data refused, the end of the root chain).

mod common;

use castellan_protocol::{MAX_TUF_FILE, TufAnswer, TufFileKind, TufRequest, TufResponse};
use castellan_tuf::mqtt::{answer, read_response};
use common::*;

fn request(kind: TufFileKind, name: &str, max_length: u64) -> TufRequest {
    TufRequest {
        request_id: 42,
        kind,
        name: name.into(),
        max_length,
    }
}

#[test]
fn the_repository_answers_each_file_as_https_serves_it() {
    let fleet = Fleet::new();
    let dir = fleet.repo.metadata_dir();
    let dir = dir.parent().unwrap();
    let found = answer(
        dir,
        &request(TufFileKind::Metadata, "timestamp.json", 1 << 16),
    );
    assert_eq!(found.request_id, 42);
    assert_eq!(found.answer, TufAnswer::Found);
    assert_eq!(found.data_bytes().unwrap(), fleet.file("timestamp.json"));
    let end_of_chain = answer(dir, &request(TufFileKind::Metadata, "2.root.json", 1 << 16));
    assert_eq!(end_of_chain.answer, TufAnswer::NotFound);
    assert_eq!(
        read_response(
            &request(TufFileKind::Metadata, "2.root.json", 1 << 16),
            &end_of_chain
        )
        .unwrap(),
        None
    );
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        b"release 1 manifest",
    ));
    let target = format!("{CLASS}/{digest}.fw-1.suit");
    let found = answer(dir, &request(TufFileKind::Target, &target, 1 << 16));
    assert_eq!(found.data_bytes().unwrap(), b"release 1 manifest");
}

#[test]
fn attack_path_traversal_over_mqtt_reads_nothing_outside_the_repository() {
    let fleet = Fleet::new();
    let dir = fleet.repo.metadata_dir();
    let dir = dir.parent().unwrap();
    for (kind, name) in [
        (TufFileKind::Metadata, "../metadata/timestamp.json"),
        (TufFileKind::Metadata, ".staged"),
        (TufFileKind::Target, "../metadata/timestamp.json"),
        (TufFileKind::Target, "sensor-v1/../../metadata/root.json"),
        (TufFileKind::Target, "/etc/passwd"),
        (TufFileKind::Target, "sensor-v1"),
    ] {
        let refused = answer(dir, &request(kind, name, 1 << 16));
        assert_eq!(refused.answer, TufAnswer::NotFound, "{name}");
        assert!(refused.data.is_empty());
    }
}

#[test]
fn attack_endless_data_over_mqtt_is_refused_at_both_ends() {
    let fleet = Fleet::new();
    let dir = fleet.repo.metadata_dir();
    let dir = dir.parent().unwrap();
    // The server does not send more than the device accepts.
    let small = request(TufFileKind::Metadata, "timestamp.json", 10);
    let too_large = answer(dir, &small);
    assert_eq!(too_large.answer, TufAnswer::TooLarge);
    assert!(too_large.data.is_empty());
    assert!(read_response(&small, &too_large).is_err());
    // A forged answer longer than asked for is refused by the device.
    let endless = TufResponse::found(42, &[b' '; 11]);
    let refused = read_response(&small, &endless).unwrap_err();
    assert!(refused.to_string().contains("endless data"), "{refused}");
    // And the wire never asks for more than one message carries.
    let (_, mut requests) = castellan_tuf::mqtt::channel();
    assert!(requests.try_recv().is_err());
    let wire = castellan_tuf::mqtt::FileRequest {
        kind: TufFileKind::Metadata,
        name: "snapshot.json".into(),
        max_length: u64::MAX,
        reply: tokio::sync::oneshot::channel().0,
    }
    .to_wire(1);
    assert_eq!(wire.max_length, MAX_TUF_FILE);
}
