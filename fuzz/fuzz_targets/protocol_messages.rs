//! Fuzz target for the fleet protocol's messages (`castellan-protocol`): arbitrary bytes go to
//! every parse a device makes of what the server sends (offer, update challenge, update result,
//! cancel, onboarding challenge and result, factory response, the binary chunk) and to the
//! hex field readers behind them, then to the server-side reads of device and operator
//! messages, and to the topic reader (`Topic::parse`) as text. Nothing may panic, what a device
//! reads must be written back as bytes that read as the same message (so the agent's journal and
//! the bridge's reports keep what came in), and a topic that reads is written back to the same
//! text, which reads as the same topic.
#![no_main]

use castellan_protocol::{
    CampaignJson, CampaignRequest, Cancel, Challenge, DecommissionCommand, ErasureEvidence,
    Evidence, FactoryRequest, FactoryResponse, Fetch, Offer, OnboardResult, PolicyJson,
    ReattestCommand, ReattestEvidence, ReleaseJson, ReleaseKeyRequest, ReleaseRequest,
    RollbackRequest, SignedCommand as _, Status, Topic, TufRequest, TufResponse, UpdateChallenge,
    UpdateEvidence, UpdateResult, WireMessage, decode_chunk, encode_chunk,
};

/// Parses `data` as `T`; when it reads, writing it and reading that again gives the same value.
fn round_trip<T: WireMessage + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let v = T::parse(data).ok()?;
    let again = T::parse(&v.to_payload());
    assert_eq!(again.as_ref(), Ok(&v), "{} does not read back", T::NAME);
    Some(v)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // What a device reads from the server.
    if let Some(offer) = round_trip::<Offer>(data) {
        let _ = offer.manifest_bytes();
    }
    if let Some(c) = round_trip::<UpdateChallenge>(data) {
        if let Ok(nonce) = c.nonce_bytes() {
            assert!(castellan_protocol::NONCE_LENGTHS.contains(&nonce.len()));
        }
    }
    if let Some(r) = round_trip::<UpdateResult>(data) {
        let _ = r.reason;
    }
    let _ = round_trip::<Cancel>(data);
    if let Some(r) = round_trip::<TufResponse>(data) {
        let _ = r.data_bytes();
    }
    let _ = round_trip::<TufRequest>(data);
    if let Some(c) = round_trip::<Challenge>(data) {
        if let Ok(nonce) = c.nonce_bytes() {
            assert!(castellan_protocol::NONCE_LENGTHS.contains(&nonce.len()));
        }
    }
    if let Some(r) = round_trip::<OnboardResult>(data) {
        let _ = r.reason_text();
    }
    let _ = round_trip::<PolicyJson>(data);
    // The signed lifecycle commands (checked by the device before it acts).
    if let Some(c) = round_trip::<DecommissionCommand>(data) {
        let _ = c.signed_bytes();
    }
    if let Some(c) = round_trip::<ReattestCommand>(data) {
        let _ = c.signed_bytes();
    }
    if let Some(resp) = round_trip::<FactoryResponse>(data) {
        let _ = resp.release_public_key_bytes();
    }
    if let Some((offset, bytes)) = decode_chunk(data) {
        assert_eq!(encode_chunk(offset, bytes), data);
    } else {
        assert!(data.len() < castellan_protocol::CHUNK_HEADER_LEN);
    }

    // What the server reads from devices and operators (no panic; the campaign view carries a
    // float, so it is only parsed).
    let _ = round_trip::<Status>(data);
    let _ = round_trip::<Fetch>(data);
    let _ = round_trip::<Evidence>(data);
    let _ = round_trip::<UpdateEvidence>(data);
    let _ = round_trip::<ErasureEvidence>(data);
    let _ = round_trip::<ReattestEvidence>(data);
    let _ = round_trip::<FactoryRequest>(data);
    let _ = round_trip::<ReleaseKeyRequest>(data);
    let _ = round_trip::<ReleaseRequest>(data);
    let _ = round_trip::<ReleaseJson>(data);
    let _ = round_trip::<CampaignRequest>(data);
    let _ = round_trip::<RollbackRequest>(data);
    let _ = CampaignJson::parse(data);

    // Topics (what the broker hands the server with each device message).
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(topic) = Topic::parse(text) {
            let again = topic.to_string();
            assert_eq!(again, text, "a topic is written back as it was read");
            assert_eq!(Topic::parse(&again).as_ref(), Ok(&topic));
        }
    }
});
