//! Who a client certificate belongs to, and whether its issuer may issue that role.
//!
//! ```text
//!  issuer (signature checked)      role it may issue          subject it must carry
//!  manufacturer CA            ──▶  factory identity (IDevID)  serialNumber (onboarding only)
//!  operational CA (+ rotated) ──▶  device (LDevID), operator  OU=device / OU=operator
//!  service CA                 ──▶  service identity           CN=svc:<name>, OU=service
//!  root CA, anything else     ──▶  refused                    (the root is no client anchor)
//! ```
//!
//! The role comes from the issuing CA first and the subject second: a manufacturer-CA
//! certificate is a factory identity whatever its subject says, so a factory key cannot mint a
//! service or an operational identity.

use crate::x509::{ParsedCertificate, parse_certificate, verify_signed_by};
use crate::{CaKind, PkiError};

use super::{
    ClientIdentity, ClientRole, OU_DEVICE, OU_OPERATOR, OU_SERVICE, Pki, SERVICE_CN_PREFIX,
};

impl Pki {
    /// Verify a client certificate (DER, as the broker or the TLS layer hands it over) against
    /// this PKI at time `now` (Unix seconds) and say whose it is: the issuing CA is found by
    /// name and its signature checked, then the role is the one that CA may issue. Revocation
    /// is not checked here: ask the [`crate::RevocationSet`] with `identity.certificate.serial`.
    pub fn identify_client(&self, der: &[u8], now: i64) -> Result<ClientIdentity, PkiError> {
        let cert = parse_certificate(der)?;
        let issuer = self.issuer_of(&cert)?;
        cert.check_validity(now)?;
        if cert.is_ca || !cert.client_auth {
            return Err(PkiError::WrongKeyUsage {
                required: "TLS client authentication",
            });
        }
        let role = match issuer {
            CaKind::Manufacturer => ClientRole::Factory {
                serial: cert.subject_serial_number.clone().ok_or(
                    PkiError::RoleNotIssuedBy {
                        role: "client roles other than factory identities (IDevIDs with a serialNumber)",
                        ca: issuer,
                    },
                )?,
                device_class: cert.subject_organizational_unit.clone(),
            },
            CaKind::Operational => {
                let cn = common_name(&cert)?;
                match cert.subject_organizational_unit.as_deref() {
                    Some(OU_DEVICE) => ClientRole::Device { device_id: cn },
                    Some(OU_OPERATOR) => ClientRole::Operator { name: cn },
                    _ => {
                        return Err(PkiError::RoleNotIssuedBy {
                            role: "client roles other than device and operator",
                            ca: issuer,
                        });
                    }
                }
            }
            CaKind::Service => {
                let cn = common_name(&cert)?;
                match (
                    cn.strip_prefix(SERVICE_CN_PREFIX),
                    cert.subject_organizational_unit.as_deref(),
                ) {
                    (Some(name), Some(OU_SERVICE)) if !name.is_empty() => ClientRole::Service {
                        name: name.to_string(),
                    },
                    _ => {
                        return Err(PkiError::RoleNotIssuedBy {
                            role: "client roles other than service identities",
                            ca: issuer,
                        });
                    }
                }
            }
            CaKind::Root => {
                return Err(PkiError::RoleNotIssuedBy {
                    role: "client",
                    ca: issuer,
                });
            }
        };
        Ok(ClientIdentity {
            role,
            issuer,
            certificate: cert,
        })
    }

    /// The issuing CA of `cert`, its signature checked: the manufacturer, operational (current
    /// or rotated out) or service CA. The root is not looked at: it signs CAs only.
    fn issuer_of(&self, cert: &ParsedCertificate) -> Result<CaKind, PkiError> {
        let current = [&self.manufacturer, &self.operational, &self.service]
            .into_iter()
            .map(|ca| (ca.kind, &ca.cert));
        let previous = self
            .previous_operational
            .iter()
            .map(|c| (CaKind::Operational, c));
        let mut named = current
            .chain(previous)
            .filter(|(_, ca)| ca.subject_der == cert.issuer_der)
            .peekable();
        if named.peek().is_none() {
            return Err(PkiError::UnknownIssuer);
        }
        // Several CAs may carry the same name (an operational CA and the one it replaced):
        // the one whose key signed the certificate is the issuer.
        let mut last_error = PkiError::SignatureInvalid;
        for (kind, ca) in named {
            match verify_signed_by(cert, ca) {
                Ok(()) => return Ok(kind),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

fn common_name(cert: &ParsedCertificate) -> Result<String, PkiError> {
    cert.subject_common_name.clone().ok_or(PkiError::Malformed {
        what: "client certificate",
        reason: "no subject CN",
    })
}
