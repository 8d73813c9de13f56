//! The bridge's copies of the fleet protocol messages read and write exactly what the server's
//! own types (`castellan_server::protocol`) do: every message is sent one way and read the
//! other, and the values must survive.

use castellan_bridge::protocol as b;
use castellan_server::protocol as s;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Serialises `v` with one side's type and reads it with the other's.
fn cross<A: Serialize, B: DeserializeOwned>(v: &A) -> B {
    let json = serde_json::to_string(v).unwrap();
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[test]
fn factory_request_from_the_bridge_is_what_the_server_accepts() {
    let req = b::FactoryRequest {
        serial: "an505-0001".into(),
        device_class: "an505-v1".into(),
        csr: "3082".into(),
        iak_public_key: "04ab".into(),
        firmware_version: Some("1.0.0+0".into()),
        reference_measurements: vec![b::MeasurementJson {
            mtype: "SPE+NSPE".into(),
            digest: "00".into(),
            signer_id: "11".into(),
            version: "1.0.0+0".into(),
        }],
        tags: vec!["lab".into()],
    };
    // The server denies unknown fields: this fails if the bridge sends one.
    let got: s::FactoryRequest = cross(&req);
    assert_eq!(got.serial, req.serial);
    assert_eq!(got.firmware_version, req.firmware_version);
    assert_eq!(got.reference_measurements[0].mtype, "SPE+NSPE");
    assert_eq!(got.tags, req.tags);
}

#[test]
fn factory_response_carries_the_release_key_to_the_bridge() {
    let resp = s::FactoryResponse {
        device_id: "an505-0001".into(),
        idevid_pem: "cert".into(),
        chain_pem: "chain".into(),
        mqtt_ca_pem: "ca".into(),
        release_public_key: Some("04cd".into()),
    };
    let got: b::FactoryResponse = cross(&resp);
    assert_eq!(got.release_public_key.as_deref(), Some("04cd"));
    let resp = s::FactoryResponse {
        release_public_key: None,
        ..resp
    };
    let got: b::FactoryResponse = cross(&resp);
    assert_eq!(got.release_public_key, None);
}

#[test]
fn onboarding_messages_cross() {
    let c: b::Challenge = cross(&s::Challenge { nonce: "aa".into() });
    assert_eq!(c.nonce, "aa");
    let e: s::Evidence = cross(&b::Evidence {
        token: "d2".into(),
        csr: "30".into(),
    });
    assert_eq!((e.token.as_str(), e.csr.as_str()), ("d2", "30"));
    let r: b::OnboardResult = cross(&s::OnboardResult {
        accepted: false,
        ldevid_pem: None,
        chain_pem: None,
        policy: None,
        reason: Some("token nonce mismatch".into()),
    });
    assert!(!r.accepted);
    assert_eq!(r.reason.as_deref(), Some("token nonce mismatch"));
}

#[test]
fn offer_and_chunks_from_the_server_are_read_by_the_bridge() {
    let offer = s::Offer {
        campaign_id: "cmp-1".into(),
        release_id: "an505-v1-1".into(),
        version: "2.0.0".into(),
        manifest: "d86b".into(),
        image_size: 287_314,
        chunk_size: 16_384,
        https: Some(s::HttpsSource {
            url: "https://x/api/v1/updates/cmp-1/image".into(),
            token: "t".into(),
        }),
    };
    let got: b::Offer = cross(&offer);
    assert_eq!(got.image_size, 287_314);
    assert_eq!(got.chunk_size, 16_384);
    assert_eq!(got.https.map(|h| h.token), Some("t".into()));
    let chunk = s::encode_chunk(4096, b"bytes");
    assert_eq!(b::decode_chunk(&chunk), Some((4096, &b"bytes"[..])));
    assert_eq!(b::decode_chunk(&chunk[..7]), None);
}

#[test]
fn every_status_the_bridge_reports_is_understood_by_the_server() {
    for (state, name) in [
        (b::UpdateState::Accepted, "accepted"),
        (b::UpdateState::Downloading, "downloading"),
        (b::UpdateState::Downloaded, "downloaded"),
        (b::UpdateState::Installing, "installing"),
        (b::UpdateState::Rebooting, "rebooting"),
        (b::UpdateState::Confirmed, "confirmed"),
        (b::UpdateState::Failed, "failed"),
        (b::UpdateState::Reverted, "reverted"),
    ] {
        let st = b::Status {
            campaign_id: "cmp-1".into(),
            release_id: "an505-v1-1".into(),
            state,
            offset: 10,
            reason: (state == b::UpdateState::Failed)
                .then(|| "the manifest is for another device class".into()),
        };
        let got: s::Status = cross(&st);
        assert_eq!(got.state.as_str(), name);
        assert_eq!(state.as_str(), name);
        assert_eq!(got.offset, 10);
        assert_eq!(got.reason, st.reason);
    }
    let f: s::Fetch = cross(&b::Fetch {
        release_id: "r".into(),
        offset: 8,
        length: 4,
    });
    assert_eq!((f.offset, f.length), (8, 4));
}

#[test]
fn post_update_attestation_and_cancel_cross() {
    let c: b::UpdateChallenge = cross(&s::UpdateChallenge {
        campaign_id: "cmp-1".into(),
        nonce: "00ff".into(),
    });
    assert_eq!(c.nonce, "00ff");
    let e: s::UpdateEvidence = cross(&b::UpdateEvidence {
        campaign_id: "cmp-1".into(),
        token: "d2".into(),
    });
    assert_eq!(e.token, "d2");
    let r: b::UpdateResult = cross(&s::UpdateResult {
        campaign_id: "cmp-1".into(),
        updated: true,
        reason: None,
    });
    assert!(r.updated);
    let x: b::Cancel = cross(&s::Cancel {
        campaign_id: "cmp-1".into(),
    });
    assert_eq!(x.campaign_id, "cmp-1");
}

#[test]
fn topics_are_the_servers() {
    let id = "an505-0001";
    assert_eq!(b::topics::hello(id), s::topics::hello(id));
    assert_eq!(b::topics::challenge(id), s::topics::challenge(id));
    assert_eq!(b::topics::evidence(id), s::topics::evidence(id));
    assert_eq!(b::topics::result(id), s::topics::result(id));
    assert_eq!(
        b::topics::onboard_down_filter(id),
        s::topics::onboard_down_filter(id)
    );
    assert_eq!(b::topics::status(id), s::topics::status(id));
    assert_eq!(b::topics::update_offer(id), s::topics::update_offer(id));
    assert_eq!(b::topics::update_status(id), s::topics::update_status(id));
    assert_eq!(b::topics::update_fetch(id), s::topics::update_fetch(id));
    assert_eq!(
        b::topics::update_chunk(id, "r"),
        s::topics::update_chunk(id, "r")
    );
    assert_eq!(
        b::topics::update_challenge(id),
        s::topics::update_challenge(id)
    );
    assert_eq!(
        b::topics::update_evidence(id),
        s::topics::update_evidence(id)
    );
    assert_eq!(b::topics::update_result(id), s::topics::update_result(id));
    assert_eq!(b::topics::update_cancel(id), s::topics::update_cancel(id));
    assert_eq!(
        b::topics::update_down_filter(id),
        s::topics::update_down_filter(id)
    );
}
