//! The device's side of the update messages (`docs/fleet-protocol.md`, "Over-the-air
//! updates"): the shared types of `castellan-protocol`, which the server uses too, under the
//! names the update client gives them. Device-side messages ignore unknown fields, so the
//! server may add some; the offer's manifest, not the offer, decides what is installed.
//!
//! ```text
//!  down/update/offer       Offer        up/update/status    Status {state: State}
//!  down/update/chunk/<r>   u64 BE ‖ b   up/update/fetch     Fetch
//!  down/update/challenge   Challenge    up/update/evidence  Evidence
//!  down/update/result      UpdateResult
//!  down/update/cancel      Cancel
//! ```

/// `down/update/challenge`: the post-update nonce.
pub use castellan_protocol::update::UpdateChallenge as Challenge;
/// `up/update/evidence`: the post-update token.
pub use castellan_protocol::update::UpdateEvidence as Evidence;
/// The states a device reports in [`Status`].
pub use castellan_protocol::update::UpdateState as State;
pub use castellan_protocol::update::{
    CHUNK_HEADER_LEN, Cancel, Fetch, HttpsSource, Offer, Status, UpdateResult, decode_chunk,
    encode_chunk,
};
