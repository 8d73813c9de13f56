//! Hostile input: what the other side (a compromised server or device, a broker in the middle)
//! may send instead of a message. Every case is refused with a reason that names the message
//! or the field, or read with the documented leniency, and nothing panics.

use crate::*;

fn malformed<T: WireMessage + std::fmt::Debug>(payload: &str) -> String {
    match T::parse(payload.as_bytes()) {
        Err(e @ ProtocolError::Malformed { message, .. }) => {
            assert_eq!(message, T::NAME);
            e.to_string()
        }
        other => panic!("{payload} read as {other:?}"),
    }
}

#[test]
fn attack_unknown_field_in_a_factory_request_is_refused() {
    let ok = r#"{"serial":"s","device_class":"c","csr":"30","iak_public_key":"04",
                 "reference_measurements":[]}"#;
    let req = FactoryRequest::parse(ok.as_bytes()).unwrap();
    assert_eq!(
        (req.firmware_version, req.tags),
        (None, Vec::<String>::new())
    );
    let extra = ok.replace("\"csr\"", "\"lifecycle\":\"provisioning\",\"csr\"");
    let why = malformed::<FactoryRequest>(&extra);
    assert!(
        why.starts_with("factory request: unknown field `lifecycle`"),
        "{why}"
    );
    // Also inside a measurement.
    let nested = ok.replace(
        "[]",
        r#"[{"type":"APP","digest":"00","signer_id":"11","version":"1","trusted":true}]"#,
    );
    assert!(malformed::<FactoryRequest>(&nested).contains("unknown field `trusted`"));
}

#[test]
fn attack_unknown_fields_in_operator_bodies_are_refused() {
    assert!(
        malformed::<ReleaseKeyRequest>(r#"{"public_key":"04","rotate":true}"#)
            .contains("unknown field `rotate`")
    );
    assert!(
        malformed::<ReleaseRequest>(
            r#"{"device_class":"c","version":"1","image":"","manifest":"","skip_checks":true}"#
        )
        .contains("unknown field `skip_checks`")
    );
    assert!(
        malformed::<CampaignRequest>(
            r#"{"release_id":"r","device_class":"c","include_quarantined":true}"#
        )
        .contains("unknown field `include_quarantined`")
    );
    assert!(
        malformed::<RollbackRequest>(r#"{"release_id":"r","force":1}"#)
            .contains("unknown field `force`")
    );
}

#[test]
fn device_side_messages_ignore_unknown_fields() {
    // A newer server may add fields; an older device still reads its offer.
    let o = Offer::parse(
        br#"{"campaign_id":"c1","release_id":"sensor-v1-2","version":"2.0.0",
             "manifest":"d86b","image_size":12,"chunk_size":4096,"https":null,
             "future_field":1}"#,
    )
    .unwrap();
    assert_eq!((o.chunk_size, o.https), (4096, None));
    let c = Challenge::parse(br#"{"nonce":"aa","expires":300}"#).unwrap();
    assert_eq!(c.nonce, "aa");
    let r = UpdateResult::parse(br#"{"campaign_id":"c","updated":false,"x":[]}"#).unwrap();
    assert_eq!((r.updated, r.reason), (false, None));
}

#[test]
fn offer_fields_the_manifest_decides_default_and_the_rest_are_required() {
    let o = Offer::parse(br#"{"campaign_id":"c","release_id":"r","manifest":"00","chunk_size":1}"#)
        .unwrap();
    assert_eq!((o.version.as_str(), o.image_size, o.https), ("", 0, None));
    let why = malformed::<Offer>(r#"{"campaign_id":"c","release_id":"r","chunk_size":1}"#);
    assert!(why.starts_with("offer: missing field `manifest`"), "{why}");
    let why = malformed::<Offer>(r#"{"campaign_id":"c","release_id":"r","manifest":"00"}"#);
    assert!(why.contains("missing field `chunk_size`"), "{why}");
}

#[test]
fn attack_huge_and_negative_offsets_and_sizes() {
    // A chunk at the largest offset is read as such: the caller compares it with its own
    // download offset (it never indexes with it).
    let c = encode_chunk(u64::MAX, b"x");
    assert_eq!(decode_chunk(&c), Some((u64::MAX, &b"x"[..])));
    // Beyond u64, negative, or fractional numbers are refused, not wrapped or truncated.
    let why = malformed::<Fetch>(r#"{"release_id":"r","offset":18446744073709551616,"length":1}"#);
    assert!(why.starts_with("fetch: "), "{why}");
    malformed::<Fetch>(r#"{"release_id":"r","offset":-1,"length":1}"#);
    malformed::<Fetch>(r#"{"release_id":"r","offset":0,"length":4294967296}"#);
    malformed::<Status>(
        r#"{"campaign_id":"c","release_id":"r","state":"downloading","offset":1.5}"#,
    );
    malformed::<Offer>(
        r#"{"campaign_id":"c","release_id":"r","manifest":"00","chunk_size":-4096}"#,
    );
    malformed::<Offer>(
        r#"{"campaign_id":"c","release_id":"r","manifest":"00","chunk_size":1,"image_size":1e30}"#,
    );
    let max = Offer::parse(
        br#"{"campaign_id":"c","release_id":"r","manifest":"00","chunk_size":4294967295,
             "image_size":18446744073709551615}"#,
    )
    .unwrap();
    assert_eq!((max.chunk_size, max.image_size), (u32::MAX, u64::MAX));
}

#[test]
fn attack_truncated_chunk_header_is_refused() {
    let full = encode_chunk(0x0102_0304_0506_0708, b"payload");
    for len in 0..CHUNK_HEADER_LEN {
        assert_eq!(decode_chunk(&full[..len]), None, "{len} bytes");
    }
    assert_eq!(
        decode_chunk(&full[..CHUNK_HEADER_LEN]),
        Some((0x0102_0304_0506_0708, &b""[..]))
    );
}

#[test]
fn attack_non_hex_fields_are_refused_with_the_field_named() {
    let not_hex = |nonce: &str| Challenge {
        nonce: nonce.into(),
    };
    for bad in ["zz", "abc", "0x00", "ａａ", "00 11"] {
        assert_eq!(
            not_hex(bad).nonce_bytes(),
            Err(ProtocolError::NotHex {
                field: "challenge nonce"
            }),
            "{bad}"
        );
    }
    assert_eq!(
        not_hex("zz").nonce_bytes().unwrap_err().to_string(),
        "the challenge nonce is not hex"
    );
    let offer =
        Offer::parse(br#"{"campaign_id":"c","release_id":"r","manifest":"d86g","chunk_size":1}"#)
            .unwrap();
    assert_eq!(
        offer.manifest_bytes().unwrap_err().to_string(),
        "the offer's manifest is not hex"
    );
    let uc = UpdateChallenge {
        campaign_id: "c".into(),
        nonce: "not hex at all".into(),
    };
    assert_eq!(
        uc.nonce_bytes().unwrap_err().to_string(),
        "the update challenge nonce is not hex"
    );
    let resp = FactoryResponse {
        device_id: "d".into(),
        idevid_pem: String::new(),
        chain_pem: String::new(),
        mqtt_ca_pem: String::new(),
        release_public_key: Some("04xx".into()),
        mqtt: None,
        tuf_root: None,
    };
    assert_eq!(
        resp.release_public_key_bytes(),
        Err(ProtocolError::NotHex {
            field: "release public key"
        })
    );
}

#[test]
fn attack_nonce_of_the_wrong_length_is_refused() {
    for n in [0usize, 1, 16, 31, 33, 47, 49, 63, 65, 1024] {
        let c = Challenge {
            nonce: "ab".repeat(n),
        };
        assert_eq!(
            c.nonce_bytes(),
            Err(ProtocolError::Length {
                field: "challenge nonce",
                len: n,
                expected: "32, 48 or 64"
            }),
            "{n}"
        );
    }
    for n in NONCE_LENGTHS {
        let c = UpdateChallenge {
            campaign_id: "c".into(),
            nonce: "cd".repeat(n),
        };
        assert_eq!(c.nonce_bytes().unwrap(), vec![0xcd; n]);
    }
    assert_eq!(
        Challenge {
            nonce: "ab".repeat(33)
        }
        .nonce_bytes()
        .unwrap_err()
        .to_string(),
        "the challenge nonce has 33 bytes (32, 48 or 64 expected)"
    );
}

#[test]
fn release_key_must_be_65_bytes() {
    let mut resp = FactoryResponse {
        device_id: "d".into(),
        idevid_pem: String::new(),
        chain_pem: String::new(),
        mqtt_ca_pem: String::new(),
        release_public_key: None,
        mqtt: None,
        tuf_root: None,
    };
    assert_eq!(resp.release_public_key_bytes(), Ok(None));
    resp.release_public_key = Some(format!("04{}", "11".repeat(64)));
    let key = resp.release_public_key_bytes().unwrap().unwrap();
    assert_eq!((key[0], key[64]), (0x04, 0x11));
    resp.release_public_key = Some("04".repeat(33));
    assert_eq!(
        resp.release_public_key_bytes().unwrap_err().to_string(),
        "the release public key has 33 bytes (65 expected)"
    );
}

#[test]
fn attack_wrong_types_and_non_json_are_refused() {
    assert!(malformed::<OnboardResult>(r#"{"accepted":"yes"}"#).starts_with("onboarding result: "));
    // A policy must be the two lists, not whatever the sender likes.
    malformed::<OnboardResult>(r##"{"accepted":true,"policy":"#"}"##);
    malformed::<OnboardResult>(r##"{"accepted":true,"policy":{"publish":"#"}}"##);
    malformed::<Status>(r#"{"campaign_id":"c","release_id":"r","state":"installed"}"#);
    malformed::<Status>(r#"{"campaign_id":"c","release_id":"r","state":"CONFIRMED"}"#);
    malformed::<Cancel>(r#""cmp-1""#);
    malformed::<Cancel>("[]");
    // serde's positional form of a struct is the same fields in order, checked the same way.
    assert_eq!(Cancel::parse(br#"["cmp-1"]"#).unwrap().campaign_id, "cmp-1");
    malformed::<Cancel>(r#"[1]"#);
    malformed::<Cancel>(r#"{"campaign_id":null}"#);
    malformed::<Cancel>("");
    malformed::<UpdateChallenge>("{\"campaign_id\":\"c\",\"nonce\":\"\u{0}");
    // Invalid UTF-8 inside a string.
    assert!(UpdateResult::parse(b"{\"campaign_id\":\"\xff\xfe\",\"updated\":true}").is_err());
    // Trailing bytes after the message.
    malformed::<Cancel>(r#"{"campaign_id":"c"} {"campaign_id":"d"}"#);
}

#[test]
fn attack_deep_nesting_does_not_exhaust_the_stack() {
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // In an unknown field it is skipped (without recursion); in a known one it is refused.
    let skipped = format!(
        r#"{{"campaign_id":"c","updated":true,"extra":{}}}"#,
        nest(100_000)
    );
    let r = UpdateResult::parse(skipped.as_bytes()).unwrap();
    assert!(r.updated);
    let typed = format!(
        r#"{{"campaign_id":"c","updated":true,"reason":{}}}"#,
        nest(100_000)
    );
    assert!(UpdateResult::parse(typed.as_bytes()).is_err());
    let unclosed = format!(
        r#"{{"campaign_id":"c","extra":{}"#,
        "{\"a\":".repeat(100_000)
    );
    assert!(UpdateResult::parse(unclosed.as_bytes()).is_err());
}

#[test]
fn duplicate_fields_are_refused() {
    // Two readers could otherwise disagree on which campaign a cancel is for.
    let why = malformed::<Cancel>(r#"{"campaign_id":"a","campaign_id":"b"}"#);
    assert!(why.contains("duplicate field `campaign_id`"), "{why}");
}

#[test]
fn what_is_written_is_read_back() {
    let status = Status {
        campaign_id: "c".into(),
        release_id: "r".into(),
        state: UpdateState::Reverted,
        offset: u64::MAX,
        reason: Some("self-test failed: \"quoted\" \u{1F4A5}".into()),
    };
    assert_eq!(Status::parse(&status.to_payload()).unwrap(), status);
    let req = CampaignRequest::new("sensor-v1-2", "sensor-v1");
    assert_eq!(
        CampaignRequest::parse(br#"{"release_id":"sensor-v1-2","device_class":"sensor-v1"}"#)
            .unwrap(),
        req
    );
    assert_eq!(CampaignRequest::parse(&req.to_payload()).unwrap(), req);
}
