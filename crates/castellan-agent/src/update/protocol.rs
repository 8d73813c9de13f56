//! The device's side of the update messages (`docs/fleet-protocol.md`, "Over-the-air
//! updates"): JSON bodies with hex binary fields, and the binary chunk. The agent declares its
//! own types (it does not depend on the server); unknown fields are ignored, so the server may
//! add some.
//!
//! ```text
//!  down/update/offer       Offer        up/update/status    Status
//!  down/update/chunk/<r>   u64 BE ‖ b   up/update/fetch     Fetch
//!  down/update/challenge   Challenge    up/update/evidence  Evidence
//!  down/update/result      UpdateResult
//!  down/update/cancel      Cancel
//! ```

use serde::{Deserialize, Serialize};

/// Where and how the image may be downloaded over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsSource {
    /// `https://<server>:<port>/api/v1/updates/<campaign_id>/image`.
    pub url: String,
    /// Bearer token for this device and campaign.
    pub token: String,
}

/// `down/update/offer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The campaign.
    pub campaign_id: String,
    /// The release (`<device_class>-<sequence>`).
    pub release_id: String,
    /// The release's version (informational: the manifest decides).
    #[serde(default)]
    pub version: String,
    /// The SUIT envelope, hex.
    pub manifest: String,
    /// Image size in bytes (informational: the manifest decides).
    #[serde(default)]
    pub image_size: u64,
    /// Largest chunk the server sends over MQTT.
    pub chunk_size: u32,
    /// The HTTPS download, when offered.
    #[serde(default)]
    pub https: Option<HttpsSource>,
}

/// The states a device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The manifest authenticated; the download starts (or resumes at `offset`).
    Accepted,
    /// Downloading, `offset` bytes so far (at least every 10 %).
    Downloading,
    /// The whole image is staged.
    Downloaded,
    /// Being verified and installed for trial.
    Installing,
    /// Rebooting into the trial image.
    Rebooting,
    /// The trial image passed its self-test and was accepted.
    Confirmed,
    /// The update failed (`reason`).
    Failed,
    /// The trial image was not accepted; the previous image runs again.
    Reverted,
}

/// `up/update/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The campaign.
    pub campaign_id: String,
    /// The release.
    pub release_id: String,
    /// The state.
    pub state: State,
    /// Bytes downloaded so far.
    pub offset: u64,
    /// Why it failed, or a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `up/update/fetch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// The release.
    pub release_id: String,
    /// First byte wanted.
    pub offset: u64,
    /// How many bytes.
    pub length: u32,
}

/// `down/update/challenge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The campaign.
    pub campaign_id: String,
    /// The nonce, hex.
    pub nonce: String,
}

/// `up/update/evidence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The campaign.
    pub campaign_id: String,
    /// PSA attestation token over the nonce, hex.
    pub token: String,
}

/// `down/update/result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResult {
    /// The campaign.
    pub campaign_id: String,
    /// Whether the device counts as updated.
    pub updated: bool,
    /// Why not, or a note.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `down/update/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// The campaign.
    pub campaign_id: String,
}

/// Splits a chunk payload (`offset` u64 big-endian, then the bytes); `None` when shorter than
/// the header.
pub fn decode_chunk(payload: &[u8]) -> Option<(u64, &[u8])> {
    let (head, bytes) = payload.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), bytes))
}

/// A chunk payload (what the server sends; for tests and tools).
pub fn encode_chunk(offset: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = offset.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_examples_parse() {
        let o: Offer = serde_json::from_str(
            r#"{"campaign_id":"c1","release_id":"sensor-v1-2","version":"2.0.0",
                "manifest":"d86b","image_size":12,"chunk_size":4096,"https":null,
                "future_field":1}"#,
        )
        .unwrap();
        assert_eq!((o.chunk_size, o.https), (4096, None));
        let s = Status {
            campaign_id: "c1".into(),
            release_id: "r".into(),
            state: State::Reverted,
            offset: 3,
            reason: None,
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "reverted");
        assert!(v.get("reason").is_none());
        assert_eq!(decode_chunk(&encode_chunk(7, b"ab")), Some((7, &b"ab"[..])));
        assert_eq!(decode_chunk(&[0; 7]), None);
    }
}
