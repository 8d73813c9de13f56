//! The broker's connect-time decision, from the registry: who the certificate belongs to
//! (IDevID, LDevID or service identity), whether it is revoked, and which topic policy it gets.
//!
//! ```text
//!  PeerCert {CN, serial, DER, SHA-256} ─▶ revoked serial? ─▶ refuse
//!                                      ─▶ issuer may not issue this role (ca_roles) ─▶ refuse
//!                                      ─▶ CN svc:<name> from the service CA ─▶ TopicPolicy::service
//!                                      ─▶ registry[CN]: unknown / decommissioned ─▶ refuse
//!                                         manufacturer CA, SHA-256 = issued IDevID ─▶ onboarding
//!                                         operational CA, SHA-256 = current LDevID ─▶ device (or quarantined)
//!                                         any other certificate ─▶ refuse (see `cert_binding`)
//! ```
//!
//! The certificate chain was already verified by TLS against the issuing CAs (never the root);
//! [`crate::ca_roles`] then finds which of them signed the leaf and grants only the role that CA
//! may issue. The broker reports the SHA-256 of the certificate this connection verified, and
//! the registry holds the SHA-256 of each certificate it issued (`cert_binding`): a certificate
//! with a device's CN and serial minted by another trusted CA is refused. Revocation is checked
//! in memory ([`RevocationSet`], no I/O); the registry lookup runs on the blocking thread the
//! broker calls this from.

use castellan_broker::{Authorizer, Decision, Identity, PeerCert, TopicPolicy};
use castellan_pki::RevocationSet;
use castellan_store::{Store, unix_now};

use crate::ca_roles::IssuedRole;
use crate::cert_binding::{self, BoundCert};

/// PSA lifecycle "decommissioned".
pub(crate) const LIFECYCLE_DECOMMISSIONED: u32 = 0x6000;

/// The store-backed [`Authorizer`].
pub(crate) struct StoreAuthorizer {
    /// The issuing CAs: which of them issued a certificate decides the role it may have.
    pub(crate) pki: std::sync::Arc<castellan_pki::Pki>,
    pub(crate) store: Store,
    pub(crate) revocations: RevocationSet,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl Authorizer for StoreAuthorizer {
    fn authenticate(&self, cert: &PeerCert) -> Decision {
        let serial = normalize_serial(&cert.serial_hex);
        if let Some(entry) = serial_bytes(&serial).and_then(|s| self.revocations.get(&s)) {
            return Decision::refuse(format!(
                "certificate {serial} is revoked ({})",
                entry.reason
            ));
        }
        let identity = match Identity::from_common_name(&cert.common_name) {
            Ok(i) => i,
            Err(e) => return Decision::refuse(e.to_string()),
        };
        let role = match crate::ca_roles::issued_role(&self.pki, cert, &identity) {
            Ok(role) => role,
            Err(reason) => return Decision::refuse(reason),
        };
        let id = match identity {
            Identity::Service(_) => return Decision::allow(TopicPolicy::service()),
            Identity::Device(id) => id,
        };
        // Called on a blocking thread (spawn_blocking), where blocking on the runtime is allowed.
        let device = match self.runtime.block_on(self.store.device(&id)) {
            Ok(Some(d)) => d,
            Ok(None) => return Decision::refuse(format!("unknown device {id}")),
            Err(e) => return Decision::refuse(format!("registry unavailable: {e}")),
        };
        if device.lifecycle == LIFECYCLE_DECOMMISSIONED {
            return Decision::refuse(format!("device {id} is decommissioned"));
        }
        // The session is bound to the exact certificate the registry issued (`cert_binding`),
        // and that certificate must come from the CA that may issue its role (`ca_roles`).
        let policy = match (cert_binding::bind(&device, cert, &serial), role) {
            (Ok(BoundCert::Idevid), IssuedRole::Factory) => TopicPolicy::onboarding(&id),
            (Ok(BoundCert::Ldevid), IssuedRole::Operational) if device.quarantined => {
                TopicPolicy::quarantined(&id)
            }
            (Ok(BoundCert::Ldevid), IssuedRole::Operational) => TopicPolicy::device(&id),
            (Ok(bound), role) => {
                return Decision::refuse(format!(
                    "certificate {serial} is device {id}'s {bound:?} but was issued by a CA for \
                     the {role:?} role"
                ));
            }
            (Err(reason), _) => return Decision::refuse(reason),
        };
        match policy {
            Ok(p) => {
                let _ = self
                    .runtime
                    .block_on(self.store.touch_device(&id, unix_now()));
                Decision::allow(p)
            }
            Err(e) => Decision::refuse(e.to_string()),
        }
    }
}

/// Lowercase hex without leading zeros (both the broker's and the store's spelling map to it).
pub(crate) fn normalize_serial(s: &str) -> String {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
}

/// The big-endian bytes of a hex serial (odd lengths padded).
pub(crate) fn serial_bytes(hex_serial: &str) -> Option<Vec<u8>> {
    if hex_serial.len() % 2 == 1 {
        hex::decode(format!("0{hex_serial}")).ok()
    } else {
        hex::decode(hex_serial).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_in_one_spelling() {
        assert_eq!(normalize_serial("004AbC"), "4abc");
        assert_eq!(normalize_serial("0"), "0");
        assert_eq!(serial_bytes("abc"), Some(vec![0x0a, 0xbc]));
    }
}
