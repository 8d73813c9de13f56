//! The PKI's public types: where CA keys live, its settings, what it issues (certificates,
//! credentials, CRLs) and who a verified client certificate belongs to.

use std::sync::Arc;

use crate::pkcs11::Pkcs11Token;
use crate::x509::ParsedCertificate;

/// Where the CA private keys live.
#[derive(Clone, Debug)]
pub enum KeyBackend {
    /// PKCS#8 PEM files in the PKI directory (`<kind>-ca.key.pem`, mode 0600). The default.
    Files,
    /// A PKCS#11 token; the keys are labelled `castellan-<kind>-ca` and generated inside it.
    Pkcs11(Arc<Pkcs11Token>),
}

/// Settings of the PKI. [`PkiConfig::default`] is what `castellan serve` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiConfig {
    /// The organization (O=) in every subject.
    pub organization: String,
    /// Validity of an LDevID, days.
    pub ldevid_validity_days: u32,
    /// Validity of the service's TLS certificate, days.
    pub server_validity_days: u32,
    /// Validity of an operator client certificate, days.
    pub operator_validity_days: u32,
    /// Validity of a service identity's client certificate, days.
    pub service_validity_days: u32,
}

impl Default for PkiConfig {
    fn default() -> Self {
        PkiConfig {
            organization: "Castellan Fleet".into(),
            ldevid_validity_days: 365,
            server_validity_days: 365,
            operator_validity_days: 90,
            service_validity_days: 365,
        }
    }
}

/// A certificate this PKI issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// Serial number, big-endian (no leading zeros).
    pub serial: Vec<u8>,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

impl IssuedCertificate {
    /// The serial as lowercase hex (the registry's form).
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }
}

/// A certificate together with a freshly generated private key (service and operator
/// credentials, which are not produced inside a device).
#[derive(Debug)]
pub struct Credentials {
    /// The certificate.
    pub certificate: IssuedCertificate,
    /// The private key, PKCS#8 PEM (zeroized on drop).
    pub key_pem: zeroize::Zeroizing<String>,
    /// The issuing CA's certificate followed by the root, PEM: append to the leaf to present a
    /// full chain.
    pub chain_pem: String,
}

/// A CRL signed by one of the CAs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crl {
    /// DER.
    pub der: Vec<u8>,
    /// PEM (`X509 CRL`).
    pub pem: String,
}

/// The key an LDevID certifies: a CSR from the device (preferred: proves possession) or a bare
/// public key already proven by an attestation token.
#[derive(Clone, Copy, Debug)]
pub enum LdevidKey<'a> {
    /// A DER PKCS#10 request; its self-signature is verified.
    Csr(&'a [u8]),
    /// A P-256 public key, SEC1 or DER SubjectPublicKeyInfo.
    PublicKey(&'a [u8]),
}

/// Who a client certificate (from the broker or the HTTPS API) belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRole {
    /// A device presenting its factory identity (IDevID): only onboarding is allowed.
    Factory {
        /// The device serial (subject serialNumber).
        serial: String,
        /// The device class (subject OU), if present.
        device_class: Option<String>,
    },
    /// An onboarded device presenting its LDevID.
    Device {
        /// The device id (subject CN, the MQTT client id).
        device_id: String,
    },
    /// An operator with a client certificate.
    Operator {
        /// The operator's name (subject CN).
        name: String,
    },
    /// A service identity (`CN=svc:<name>, OU=service`) from the service CA: the fleet-wide
    /// MQTT role.
    Service {
        /// The name after `svc:`.
        name: String,
    },
}

impl ClientRole {
    /// A short name of the role, for refusals and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            ClientRole::Factory { .. } => "factory identity (IDevID)",
            ClientRole::Device { .. } => "device operational identity (LDevID)",
            ClientRole::Operator { .. } => "operator",
            ClientRole::Service { .. } => "service identity",
        }
    }
}

/// A client certificate that verified against this PKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Who it is.
    pub role: ClientRole,
    /// The CA that issued it (the role is the one this CA may issue).
    pub issuer: crate::CaKind,
    /// The certificate (its `serial` is what the revocation check needs).
    pub certificate: ParsedCertificate,
}
