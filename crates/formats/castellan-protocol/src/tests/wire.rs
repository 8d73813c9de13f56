//! Golden tests: every message written as the bytes that travel today, and read back. A
//! renamed field, a reordered one, an optional field now written as `null` (or left out where
//! it was written) fails here before it fails between a server and a device in the field.

use crate as p;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// `v` is written exactly as `json`, and `json` reads back as `v`.
fn golden<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T, json: &str) {
    assert_eq!(serde_json::to_string(v).unwrap(), json);
    assert_eq!(&serde_json::from_str::<T>(json).unwrap(), v);
}

fn measurement() -> p::MeasurementJson {
    p::MeasurementJson {
        mtype: "SPE+NSPE".into(),
        digest: "00ff".into(),
        signer_id: "11".into(),
        version: "1.0.0+0".into(),
    }
}

const MEASUREMENT: &str =
    r#"{"type":"SPE+NSPE","digest":"00ff","signer_id":"11","version":"1.0.0+0"}"#;

#[test]
fn factory_registration_is_written_as_on_the_wire() {
    let mut req = p::FactoryRequest {
        serial: "CSTL-0001".into(),
        device_class: "sensor-v1".into(),
        csr: "3082".into(),
        iak_public_key: "04ab".into(),
        firmware_version: Some("1.0.0".into()),
        reference_measurements: vec![measurement()],
        tags: vec!["lab".into()],
    };
    golden(
        &req,
        &format!(
            r#"{{"serial":"CSTL-0001","device_class":"sensor-v1","csr":"3082","iak_public_key":"04ab","firmware_version":"1.0.0","reference_measurements":[{MEASUREMENT}],"tags":["lab"]}}"#
        ),
    );
    req.firmware_version = None;
    req.tags.clear();
    golden(
        &req,
        &format!(
            r#"{{"serial":"CSTL-0001","device_class":"sensor-v1","csr":"3082","iak_public_key":"04ab","firmware_version":null,"reference_measurements":[{MEASUREMENT}],"tags":[]}}"#
        ),
    );
    let mut resp = p::FactoryResponse {
        device_id: "CSTL-0001".into(),
        idevid_pem: "I".into(),
        chain_pem: "C".into(),
        mqtt_ca_pem: "M".into(),
        release_public_key: Some("04cd".into()),
        mqtt: None,
        tuf_root: None,
    };
    golden(
        &resp,
        r#"{"device_id":"CSTL-0001","idevid_pem":"I","chain_pem":"C","mqtt_ca_pem":"M","release_public_key":"04cd"}"#,
    );
    resp.release_public_key = None;
    golden(
        &resp,
        r#"{"device_id":"CSTL-0001","idevid_pem":"I","chain_pem":"C","mqtt_ca_pem":"M"}"#,
    );
    resp.tuf_root = Some("{\"signed\":{}}".into());
    golden(
        &resp,
        r#"{"device_id":"CSTL-0001","idevid_pem":"I","chain_pem":"C","mqtt_ca_pem":"M","tuf_root":"{\"signed\":{}}"}"#,
    );
}

#[test]
fn onboarding_messages_are_written_as_on_the_wire() {
    golden(&p::Challenge { nonce: "aa".into() }, r#"{"nonce":"aa"}"#);
    golden(
        &p::Evidence {
            token: "d2".into(),
            csr: "30".into(),
        },
        r#"{"token":"d2","csr":"30"}"#,
    );
    golden(
        &p::OnboardResult {
            accepted: true,
            ldevid_pem: Some("L".into()),
            chain_pem: Some("C".into()),
            policy: Some(p::PolicyJson {
                publish: vec!["dev/x/telemetry".into()],
                subscribe: vec!["dev/x/down/update/#".into()],
            }),
            reason: None,
            code: None,
        },
        r#"{"accepted":true,"ldevid_pem":"L","chain_pem":"C","policy":{"publish":["dev/x/telemetry"],"subscribe":["dev/x/down/update/#"]}}"#,
    );
    let mut refused = p::OnboardResult {
        accepted: false,
        ldevid_pem: None,
        chain_pem: None,
        policy: None,
        reason: Some("token nonce mismatch".into()),
        code: None,
    };
    golden(
        &refused,
        r#"{"accepted":false,"reason":"token nonce mismatch"}"#,
    );
    refused.code = Some("attestation.nonce_mismatch".into());
    golden(
        &refused,
        r#"{"accepted":false,"reason":"token nonce mismatch","code":"attestation.nonce_mismatch"}"#,
    );
}

#[test]
fn release_bodies_are_written_as_on_the_wire() {
    golden(
        &p::ReleaseKeyRequest {
            public_key: "04".into(),
        },
        r#"{"public_key":"04"}"#,
    );
    golden(
        &p::ReleaseRequest {
            device_class: "sensor-v1".into(),
            version: "2.0.0".into(),
            image: "AAEC".into(),
            manifest: "2GtB".into(),
            notes: None,
        },
        r#"{"device_class":"sensor-v1","version":"2.0.0","image":"AAEC","manifest":"2GtB","notes":null}"#,
    );
    let mut rel = p::ReleaseJson {
        release_id: "sensor-v1-2".into(),
        device_class: "sensor-v1".into(),
        version: "2.0.0".into(),
        sequence: 2,
        image_size: 12,
        image_sha256: "ab".into(),
        security_counter: 3,
        signer_id: "cd".into(),
        measurement: measurement(),
        notes: Some("n".into()),
        expires_at: Some(1_700_000_000),
        created_at: 1,
        created_by: "rm".into(),
    };
    golden(
        &rel,
        &format!(
            r#"{{"release_id":"sensor-v1-2","device_class":"sensor-v1","version":"2.0.0","sequence":2,"image_size":12,"image_sha256":"ab","security_counter":3,"signer_id":"cd","measurement":{MEASUREMENT},"notes":"n","expires_at":1700000000,"created_at":1,"created_by":"rm"}}"#
        ),
    );
    rel.notes = None;
    rel.expires_at = None;
    golden(
        &rel,
        &format!(
            r#"{{"release_id":"sensor-v1-2","device_class":"sensor-v1","version":"2.0.0","sequence":2,"image_size":12,"image_sha256":"ab","security_counter":3,"signer_id":"cd","measurement":{MEASUREMENT},"created_at":1,"created_by":"rm"}}"#
        ),
    );
}

#[test]
fn campaign_bodies_are_written_as_on_the_wire() {
    let req = p::CampaignRequest::new("sensor-v1-2", "sensor-v1");
    golden(
        &req,
        r#"{"release_id":"sensor-v1-2","device_class":"sensor-v1","tags":[],"canary":1,"waves":["100%"],"device_timeout_s":600,"max_failures":3,"max_failure_rate":20,"min_sample":5,"on_threshold":"pause"}"#,
    );
    golden(
        &p::RollbackRequest {
            release_id: "sensor-v1-3".into(),
        },
        r#"{"release_id":"sensor-v1-3"}"#,
    );
    let campaign = p::CampaignJson {
        campaign_id: "cmp-1".into(),
        release_id: "sensor-v1-2".into(),
        device_class: "sensor-v1".into(),
        tags: vec!["lab".into()],
        state: "paused".into(),
        wave: 1,
        waves: vec!["25%".into(), "100%".into()],
        canary: 1,
        counts: p::CampaignCounts {
            pending: 1,
            offered: 2,
            downloading: 3,
            installing: 4,
            rebooting: 5,
            confirming: 6,
            updated: 7,
            failed: 1,
        },
        failure_rate: 12.5,
        reason: Some("1 of 8 failed".into()),
        rollback_of: None,
        device_timeout_s: 600,
        max_failures: 3,
        max_failure_rate: 20,
        min_sample: 5,
        on_threshold: p::OnThreshold::Abort,
        created_at: 10,
        created_by: "rm".into(),
        updated_at: 11,
        devices: vec![p::CampaignDeviceJson {
            device_id: "CSTL-0001".into(),
            state: "failed".into(),
            wave: 0,
            reason: Some("reverted".into()),
            offset: 4096,
            updated_at: 11,
        }],
    };
    golden(
        &campaign,
        r#"{"campaign_id":"cmp-1","release_id":"sensor-v1-2","device_class":"sensor-v1","tags":["lab"],"state":"paused","wave":1,"waves":["25%","100%"],"canary":1,"counts":{"pending":1,"offered":2,"downloading":3,"installing":4,"rebooting":5,"confirming":6,"updated":7,"failed":1},"failure_rate":12.5,"reason":"1 of 8 failed","device_timeout_s":600,"max_failures":3,"max_failure_rate":20,"min_sample":5,"on_threshold":"abort","created_at":10,"created_by":"rm","updated_at":11,"devices":[{"device_id":"CSTL-0001","state":"failed","wave":0,"reason":"reverted","offset":4096,"updated_at":11}]}"#,
    );
}

#[test]
fn device_update_messages_are_written_as_on_the_wire() {
    let mut offer = p::Offer {
        campaign_id: "cmp-1".into(),
        release_id: "sensor-v1-2".into(),
        version: "2.0.0".into(),
        manifest: "d86b".into(),
        image_size: 287_314,
        chunk_size: 16_384,
        https: Some(p::HttpsSource {
            url: "https://x/api/v1/updates/cmp-1/image".into(),
            token: "t".into(),
        }),
    };
    golden(
        &offer,
        r#"{"campaign_id":"cmp-1","release_id":"sensor-v1-2","version":"2.0.0","manifest":"d86b","image_size":287314,"chunk_size":16384,"https":{"url":"https://x/api/v1/updates/cmp-1/image","token":"t"}}"#,
    );
    offer.https = None;
    golden(
        &offer,
        r#"{"campaign_id":"cmp-1","release_id":"sensor-v1-2","version":"2.0.0","manifest":"d86b","image_size":287314,"chunk_size":16384,"https":null}"#,
    );
    let mut status = p::Status {
        campaign_id: "cmp-1".into(),
        release_id: "sensor-v1-2".into(),
        state: p::UpdateState::Downloading,
        offset: 5,
        reason: None,
    };
    golden(
        &status,
        r#"{"campaign_id":"cmp-1","release_id":"sensor-v1-2","state":"downloading","offset":5}"#,
    );
    status.state = p::UpdateState::Failed;
    status.reason = Some("manifest sequence 3 is not newer than the installed 4".into());
    golden(
        &status,
        r#"{"campaign_id":"cmp-1","release_id":"sensor-v1-2","state":"failed","offset":5,"reason":"manifest sequence 3 is not newer than the installed 4"}"#,
    );
    golden(
        &p::Fetch {
            release_id: "sensor-v1-2".into(),
            offset: 8,
            length: 4,
        },
        r#"{"release_id":"sensor-v1-2","offset":8,"length":4}"#,
    );
    golden(
        &p::UpdateChallenge {
            campaign_id: "cmp-1".into(),
            nonce: "00ff".into(),
        },
        r#"{"campaign_id":"cmp-1","nonce":"00ff"}"#,
    );
    golden(
        &p::UpdateEvidence {
            campaign_id: "cmp-1".into(),
            token: "d2".into(),
        },
        r#"{"campaign_id":"cmp-1","token":"d2"}"#,
    );
    let mut result = p::UpdateResult {
        campaign_id: "cmp-1".into(),
        updated: true,
        reason: None,
        code: None,
    };
    golden(&result, r#"{"campaign_id":"cmp-1","updated":true}"#);
    result.updated = false;
    result.reason = Some("the measurement is not the release's".into());
    golden(
        &result,
        r#"{"campaign_id":"cmp-1","updated":false,"reason":"the measurement is not the release's"}"#,
    );
    result.code = Some("attestation.not_the_release".into());
    golden(
        &result,
        r#"{"campaign_id":"cmp-1","updated":false,"reason":"the measurement is not the release's","code":"attestation.not_the_release"}"#,
    );
    golden(
        &p::Cancel {
            campaign_id: "cmp-1".into(),
        },
        r#"{"campaign_id":"cmp-1"}"#,
    );
}

#[test]
fn tuf_messages_are_written_as_on_the_wire() {
    golden(
        &p::TufRequest {
            request_id: 7,
            kind: p::TufFileKind::Metadata,
            name: "2.root.json".into(),
            max_length: 512_000,
        },
        r#"{"request_id":7,"kind":"metadata","name":"2.root.json","max_length":512000}"#,
    );
    let found = p::TufResponse::found(7, b"{}");
    golden(&found, r#"{"request_id":7,"answer":"found","data":"7b7d"}"#);
    assert_eq!(found.data_bytes().unwrap(), b"{}");
    golden(
        &p::TufResponse::refused(8, p::TufAnswer::NotFound),
        r#"{"request_id":8,"answer":"not_found"}"#,
    );
    golden(
        &p::TufResponse::refused(9, p::TufAnswer::TooLarge),
        r#"{"request_id":9,"answer":"too_large"}"#,
    );
    let not_hex = p::TufResponse {
        request_id: 1,
        answer: p::TufAnswer::Found,
        data: "zz".into(),
    };
    assert!(not_hex.data_bytes().is_err());
}

#[test]
fn every_update_state_has_its_lowercase_wire_name() {
    for (state, name) in [
        (p::UpdateState::Accepted, "accepted"),
        (p::UpdateState::Downloading, "downloading"),
        (p::UpdateState::Downloaded, "downloaded"),
        (p::UpdateState::Installing, "installing"),
        (p::UpdateState::Rebooting, "rebooting"),
        (p::UpdateState::Confirmed, "confirmed"),
        (p::UpdateState::Failed, "failed"),
        (p::UpdateState::Reverted, "reverted"),
    ] {
        golden(&state, &format!("\"{name}\""));
        assert_eq!(state.as_str(), name);
    }
    golden(&p::OnThreshold::Pause, r#""pause""#);
    golden(&p::OnThreshold::Abort, r#""abort""#);
}

#[test]
fn chunk_is_the_offset_big_endian_then_the_bytes() {
    let c = p::encode_chunk(0x0102_0304_0506_0708, b"abc");
    assert_eq!(c, [1, 2, 3, 4, 5, 6, 7, 8, b'a', b'b', b'c']);
    assert_eq!(
        p::decode_chunk(&c),
        Some((0x0102_0304_0506_0708, &b"abc"[..]))
    );
    // The end of the image: the header alone.
    assert_eq!(p::encode_chunk(12, b"").len(), p::CHUNK_HEADER_LEN);
    assert_eq!(
        p::decode_chunk(&p::encode_chunk(12, b"")),
        Some((12, &b""[..]))
    );
}

#[test]
fn topics_are_the_documented_ones() {
    let id = "CSTL-0001";
    for (got, want) in [
        (p::topics::hello(id), "dev/CSTL-0001/up/onboard/hello"),
        (
            p::topics::challenge(id),
            "dev/CSTL-0001/down/onboard/challenge",
        ),
        (p::topics::evidence(id), "dev/CSTL-0001/up/onboard/evidence"),
        (p::topics::result(id), "dev/CSTL-0001/down/onboard/result"),
        (
            p::topics::onboard_down_filter(id),
            "dev/CSTL-0001/down/onboard/#",
        ),
        (p::topics::telemetry(id), "dev/CSTL-0001/telemetry"),
        (p::topics::status(id), "dev/CSTL-0001/status"),
        (
            p::topics::update_offer(id),
            "dev/CSTL-0001/down/update/offer",
        ),
        (
            p::topics::update_status(id),
            "dev/CSTL-0001/up/update/status",
        ),
        (p::topics::update_fetch(id), "dev/CSTL-0001/up/update/fetch"),
        (
            p::topics::update_chunk(id, "sensor-v1-2"),
            "dev/CSTL-0001/down/update/chunk/sensor-v1-2",
        ),
        (
            p::topics::update_challenge(id),
            "dev/CSTL-0001/down/update/challenge",
        ),
        (
            p::topics::update_evidence(id),
            "dev/CSTL-0001/up/update/evidence",
        ),
        (
            p::topics::update_result(id),
            "dev/CSTL-0001/down/update/result",
        ),
        (
            p::topics::update_cancel(id),
            "dev/CSTL-0001/down/update/cancel",
        ),
        (
            p::topics::update_down_filter(id),
            "dev/CSTL-0001/down/update/#",
        ),
    ] {
        assert_eq!(got, want);
    }
}
