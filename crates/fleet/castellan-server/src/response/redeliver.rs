//! Commands for a device that was not listening: a signed reattest or decommission command is
//! published once, on a clean session, so a device offline at that moment never sees it. Each
//! instance looks at the pending commands (`pending`) as it watches their deadlines; a command
//! whose device was not subscribed to its topic at the last look and is now is signed again
//! with the same fields (nonce, issued and expiry times: the device's answer still matches the
//! stored command) and published again, and the re-sending is audited.
//!
//! ```text
//!  every CHECK, each pending command (device, kind):
//!    subscribed to dev/<id>/down/lifecycle/<kind> now?   (this instance's broker)
//!      first look: remembered (sent at issue if it listened then)
//!      was not, is now ─▶ re-signed, same nonce and times ─▶ published; audit "<kind> re-sent"
//! ```
//!
//! Per instance: a device whose session is on another instance's broker is re-sent to by that
//! instance (each watches its own sessions); two instances may both re-send, and the device
//! answers one nonce once.

use std::collections::HashMap;

use castellan_store::{PendingCommand, StoreError};

use crate::core::Core;
use crate::protocol::{
    DECOMMISSION_DOMAIN, DecommissionCommand, REATTEST_DOMAIN, ReattestCommand, WireMessage as _,
    topics,
};

use super::pending::{DECOMMISSION, REATTEST};

/// Whether each pending command's device listened at the last look.
#[derive(Debug, Default)]
pub(crate) struct Redeliver {
    listening: HashMap<(String, String), bool>,
}

impl Redeliver {
    /// One look at every pending command.
    pub(crate) async fn check(&mut self, core: &Core) -> Result<(), StoreError> {
        let pending = core.store.pending_commands().await?;
        self.listening
            .retain(|(d, k), _| pending.iter().any(|c| &c.device_id == d && &c.kind == k));
        for c in &pending {
            let Some(topic) = topic_of(c) else {
                continue;
            };
            let now = core.is_subscribed(&c.device_id, &topic).await;
            let key = (c.device_id.clone(), c.kind.clone());
            let before = self.listening.insert(key, now);
            if now && before == Some(false) {
                resend(core, c, &topic).await;
            }
        }
        Ok(())
    }
}

fn topic_of(c: &PendingCommand) -> Option<String> {
    match c.kind.as_str() {
        DECOMMISSION => Some(topics::decommission(&c.device_id)),
        REATTEST => Some(topics::reattest(&c.device_id)),
        _ => None,
    }
}

/// Sign `c` again with its own fields and publish it on `topic`.
async fn resend(core: &Core, c: &PendingCommand, topic: &str) {
    let domain = if c.kind == DECOMMISSION {
        DECOMMISSION_DOMAIN
    } else {
        REATTEST_DOMAIN
    };
    let id = c.device_id.as_str();
    let signed = match super::pending::sign_fields(
        core,
        id,
        c.nonce.clone(),
        (c.created_at, c.deadline),
        domain,
    ) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("{id}: {} command not re-sent: {e}", c.kind);
            return;
        }
    };
    let payload = if c.kind == DECOMMISSION {
        DecommissionCommand {
            device_id: id.into(),
            nonce: signed.nonce,
            issued_at: signed.issued_at,
            expires_at: signed.expires_at,
            signer_cert: signed.signer_cert,
            signature: signed.signature,
        }
        .to_payload()
    } else {
        ReattestCommand {
            device_id: id.into(),
            nonce: signed.nonce,
            issued_at: signed.issued_at,
            expires_at: signed.expires_at,
            signer_cert: signed.signer_cert,
            signature: signed.signature,
        }
        .to_payload()
    };
    let (allowed, reason) = match core.publish(topic, payload).await {
        Ok(()) => (
            true,
            format!(
                "{} command re-sent: the device came back before the deadline (nonce {})",
                c.kind, c.nonce
            ),
        ),
        Err(e) => (false, format!("{} command not re-sent: {e}", c.kind)),
    };
    let action = if c.kind == DECOMMISSION {
        super::decommission::ACTION
    } else {
        super::reattest::ACTION
    };
    core.auditor
        .append("system", action, id, allowed, &reason)
        .await;
}
