//! The broker's connect-time decision, from the registry: who the certificate belongs to
//! (IDevID, LDevID or service identity), whether it is revoked, and which topic policy it gets.
//!
//! ```text
//!  PeerCert {CN, subject, serial} ─▶ revoked serial? ─▶ refuse
//!                                  ─▶ CN svc:<name> + OU=service ─▶ TopicPolicy::service
//!                                  ─▶ registry[CN]: unknown / decommissioned ─▶ refuse
//!                                     SHA-256 = issued IDevID ─▶ TopicPolicy::onboarding
//!                                     SHA-256 = current LDevID ─▶ device (or quarantined)
//!                                     any other certificate ─▶ refuse (see `cert_binding`)
//! ```
//!
//! The certificate chain was already verified by TLS against the manufacturer and operational
//! CAs; the broker reports the SHA-256 of the certificate this connection verified, and the
//! registry holds the SHA-256 of each certificate it issued (`cert_binding`): a certificate with
//! a device's CN and serial minted by another trusted CA is refused. Revocation is checked
//! in memory ([`RevocationSet`], no I/O); the registry lookup runs on the blocking thread the
//! broker calls this from.

use castellan_broker::{Authorizer, Decision, Identity, PeerCert, TopicPolicy};
use castellan_pki::RevocationSet;
use castellan_store::{Store, unix_now};

use crate::cert_binding::{self, BoundCert};

/// PSA lifecycle "decommissioned".
pub(crate) const LIFECYCLE_DECOMMISSIONED: u32 = 0x6000;

/// The store-backed [`Authorizer`].
pub(crate) struct StoreAuthorizer {
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
        let id = match identity {
            Identity::Service(name) => {
                return if subject_has(&cert.subject, "OU", "service") {
                    Decision::allow(TopicPolicy::service())
                } else {
                    Decision::refuse(format!(
                        "service identity svc:{name} is not an operational-CA service certificate"
                    ))
                };
            }
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
        // The session is bound to the exact certificate the registry issued (`cert_binding`).
        let policy = match cert_binding::bind(&device, cert, &serial) {
            Ok(BoundCert::Idevid) => TopicPolicy::onboarding(&id),
            Ok(BoundCert::Ldevid) if device.quarantined => TopicPolicy::quarantined(&id),
            Ok(BoundCert::Ldevid) => TopicPolicy::device(&id),
            Err(reason) => return Decision::refuse(reason),
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

/// Whether an x509-parser subject string (`CN=x, OU=y, O=z`) has attribute `key` = `value`.
fn subject_has(subject: &str, key: &str, value: &str) -> bool {
    subject
        .split(',')
        .filter_map(|part| part.trim().split_once('='))
        .any(|(k, v)| k.trim() == key && v.trim() == value)
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

    #[test]
    fn subject_attributes_are_matched_exactly() {
        let s = "CN=svc:ops, OU=service, O=Castellan Fleet";
        assert!(subject_has(s, "OU", "service"));
        assert!(!subject_has("CN=x, OU=services", "OU", "service"));
        assert!(!subject_has("CN=OU=service", "OU", "service"));
    }
}
