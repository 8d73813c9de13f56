//! The wire formats of `docs/fleet-protocol.md`, as the server speaks them: the shared crate
//! `castellan-protocol` (re-exported whole, so `castellan_server::protocol::Offer`,
//! `…::protocol::update::CampaignJson` and `…::protocol::topics` are the types devices and
//! the bridge use), plus the one conversion only the server needs: the broker's topic policy
//! into the [`PolicyJson`] an onboarded device receives.
//!
//! ```text
//!  castellan-protocol ──▶ castellan_server::protocol (this re-export) ──▶ API, onboarding,
//!                     ──▶ castellan-agent, castellan-bridge                campaign engine
//! ```

pub use castellan_protocol::*;

/// The topics a device may use with its LDevID, as the onboarding result carries them.
pub fn policy_json(p: &castellan_broker::TopicPolicy) -> PolicyJson {
    PolicyJson {
        publish: p.publish_patterns().to_vec(),
        subscribe: p.subscribe_patterns().to_vec(),
    }
}
