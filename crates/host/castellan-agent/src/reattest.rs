//! The device's half of the signed reboot-and-reattest, after a run-time compromise: the
//! command is checked exactly as a decommission command is (`crate::decommission::verify`,
//! under its own domain tag), the device reboots — whatever ran in RAM is gone, the boot chain
//! measures the image again — and its first act on the new connection is a fresh attestation
//! token over the command's nonce.
//!
//! ```text
//!  dev/<id>/down/lifecycle/reattest  ReattestCommand ─▶ verify ─▶ nonce kept ─▶ reboot
//!  power on (measured boot) ─▶ connect ─▶ dev/<id>/up/lifecycle/reattested {nonce, token}
//! ```
//!
//! A refused command changes nothing; the refusal is logged.

use castellan_protocol::{ReattestCommand, ReattestEvidence, WireMessage as _, topics};

use crate::decommission::{CommandRefusal, verify};
use crate::error::AgentError;
use crate::identity::IdentityFiles;
use crate::mqtt::{Message, MqttConnection};
use crate::secure::SecureWorld;

/// Read and check a reattest command for `device_id` at `now`; `Ok` is its nonce (hex), to
/// answer after the reboot.
pub fn check(
    payload: &[u8],
    device_id: &str,
    files: &IdentityFiles,
    now: i64,
) -> Result<String, CommandRefusal> {
    let cmd = ReattestCommand::parse(payload)
        .map_err(|_| CommandRefusal::Malformed("not a reattest command"))?;
    verify(&cmd, device_id, files, now)?;
    Ok(cmd.nonce)
}

/// After the reboot: attest over `nonce` (hex, checked in [`check`]) and send the token.
pub(crate) async fn answer(
    conn: &mut MqttConnection,
    world: &SecureWorld,
    device_id: &str,
    nonce: &str,
) -> Result<(), AgentError> {
    let bytes = hex::decode(nonce).unwrap_or_default();
    let token = world.attest_token(&bytes)?;
    let evidence = ReattestEvidence {
        nonce: nonce.to_owned(),
        token: hex::encode(token),
    };
    conn.publish(&Message {
        topic: topics::reattested(device_id),
        payload: evidence.to_payload(),
        qos: 1,
        retain: false,
    })
    .await
}
