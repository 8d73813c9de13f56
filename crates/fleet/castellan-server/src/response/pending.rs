//! Signed commands waiting for the device's answer (decommission, reattest), kept in the store
//! (`castellan_store::PendingCommand`, migration 12) so that a restart of the service, or
//! another instance, finds them again. One task per instance watches the deadlines in the
//! store; the answer and the deadline both take the command with one atomic delete, so exactly
//! one of them acts, on one instance.
//!
//! ```text
//!  sent ─▶ store (device, kind, nonce, deadline)
//!  the device's answer ─▶ taken with its nonce (once: a replay finds nothing)
//!  every CHECK: deadlines passed ─▶ taken whatever the nonce ─▶ the kind's "unanswered" step
//!  a restart ─▶ nothing to re-arm: the store holds the deadlines
//!  the device not listening when it was sent, listening now ─▶ sent again (`redeliver`)
//! ```

use std::sync::Arc;
use std::time::Duration;

use castellan_store::{PendingCommand, StoreError, unix_now};
use tokio::sync::watch;

use crate::core::Core;

/// The kind of a decommission command.
pub(crate) const DECOMMISSION: &str = "decommission";
/// The kind of a reboot-and-reattest command.
pub(crate) const REATTEST: &str = "reattest";

/// How often the deadlines are looked at.
const CHECK: Duration = Duration::from_millis(500);

/// Store `c`; `false` when a command of its kind waits for the device already.
pub(crate) async fn insert(core: &Core, c: &PendingCommand) -> Result<bool, StoreError> {
    core.store.insert_pending_command(c).await
}

/// Give up the commands whose deadline passed, until stopped.
pub(crate) async fn run(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(CHECK);
    let mut redeliver = super::redeliver::Redeliver::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = expire_due(&core).await {
                    log::warn!("pending device commands: {e}");
                }
                if let Err(e) = redeliver.check(&core).await {
                    log::warn!("pending device commands, re-sending: {e}");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

async fn expire_due(core: &Core) -> Result<(), StoreError> {
    let now = unix_now();
    for c in core.store.pending_commands().await? {
        if c.deadline >= now {
            break; // by deadline
        }
        if !core
            .store
            .take_pending_command(&c.device_id, &c.kind)
            .await?
        {
            continue; // answered, or another instance took it
        }
        match c.kind.as_str() {
            DECOMMISSION => super::decommission::unanswered(core, &c.device_id).await,
            REATTEST => super::reattest::unanswered(core, &c.device_id).await,
            other => log::warn!(
                "{}: pending command of unknown kind {other} dropped",
                c.device_id
            ),
        }
    }
    Ok(())
}

/// A command's fields, signed: what both command types carry.
pub(crate) struct Signed {
    /// 32 random bytes, hex.
    pub(crate) nonce: String,
    /// Now (Unix seconds).
    pub(crate) issued_at: i64,
    /// Now plus the timeout: the command's expiry and the answer's deadline.
    pub(crate) expires_at: i64,
    /// The operational CA's certificate, DER, hex.
    pub(crate) signer_cert: String,
    /// The operational CA key's signature over the domain and the fields, hex.
    pub(crate) signature: String,
}

/// Sign a command of `domain` for `id`, valid for `timeout` seconds, with the operational CA's
/// key (`docs/response.md`: why that key). The error is the reason, for the kind's own error.
pub(crate) fn sign(core: &Core, id: &str, timeout: i64, domain: &str) -> Result<Signed, String> {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
    let issued_at = unix_now();
    let expires_at = issued_at.saturating_add(timeout);
    sign_fields(
        core,
        id,
        hex::encode(nonce),
        (issued_at, expires_at),
        domain,
    )
}

/// Sign the command of `domain` for `id` with these fields again (a re-sent command: the same
/// nonce and validity, so the device's answer matches the stored command).
pub(crate) fn sign_fields(
    core: &Core,
    id: &str,
    nonce: String,
    (issued_at, expires_at): (i64, i64),
    domain: &str,
) -> Result<Signed, String> {
    let bytes =
        castellan_protocol::decommission::signed_bytes(domain, id, &nonce, issued_at, expires_at);
    let signature = core.pki.sign_command(&bytes).map_err(|e| e.to_string())?;
    Ok(Signed {
        nonce,
        issued_at,
        expires_at,
        signer_cert: hex::encode(
            &core
                .pki
                .ca_certificate(castellan_pki::CaKind::Operational)
                .der,
        ),
        signature: hex::encode(signature),
    })
}
