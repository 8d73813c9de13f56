//! Which CA may issue which client role: the broker's certificate (the leaf the TLS handshake
//! verified) is checked against the issuing CAs, and the identity it claims must be the role
//! its issuer may issue.
//!
//! ```text
//!  identity claimed (CN)   issuer (signature checked)          granted
//!  <device id>             manufacturer CA (IDevID)       ──▶  onboarding only
//!  <device id>             operational CA, OU=device       ──▶  device policy (or quarantine)
//!  svc:<name>              service CA, OU=service          ──▶  service policy
//!  anything else           (root, wrong CA for the role)   ──▶  refused, with the issuer named
//! ```
//!
//! The TLS layer already refuses a chain that ends at no issuing CA (the root is not in the
//! broker's client trust bundle); this check is what ties the role to the issuer, so a factory
//! CA's key cannot mint a service identity or a device's operational identity.

use castellan_broker::{Identity, PeerCert};
use castellan_pki::{ClientRole, Pki};
use castellan_store::unix_now;

/// The role a certificate may have, by its issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IssuedRole {
    /// An IDevID from the manufacturer CA: onboarding only.
    Factory,
    /// An LDevID from the operational CA (current or rotated out).
    Operational,
    /// A service identity from the service CA.
    Service,
}

/// The role `cert` may have as `identity`, or why not (for the refusal and the audit log).
pub(crate) fn issued_role(
    pki: &Pki,
    cert: &PeerCert,
    identity: &Identity,
) -> Result<IssuedRole, String> {
    if cert.der.is_empty() {
        return Err("the TLS layer did not provide the client certificate".into());
    }
    let client = pki
        .identify_client(&cert.der, unix_now())
        .map_err(|e| format!("certificate {}: {e}", cert.serial_hex))?;
    let issuer = client.issuer;
    match (identity, &client.role) {
        (Identity::Service(name), ClientRole::Service { name: issued }) if issued == name => {
            Ok(IssuedRole::Service)
        }
        (Identity::Device(id), ClientRole::Device { device_id }) if device_id == id => {
            Ok(IssuedRole::Operational)
        }
        (Identity::Device(id), ClientRole::Factory { serial, .. }) if serial == id => {
            Ok(IssuedRole::Factory)
        }
        (Identity::Service(name), role) => Err(format!(
            "service identity svc:{name} refused: its certificate was issued by the {issuer} as \
             a {} (only the service CA issues service identities)",
            role.name()
        )),
        (Identity::Device(id), role) => Err(format!(
            "device identity {id} refused: its certificate was issued by the {issuer} as a {} \
             for another name, or for a role devices do not have",
            role.name()
        )),
    }
}
