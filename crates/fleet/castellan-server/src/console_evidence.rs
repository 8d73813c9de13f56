//! What the console's device and release pages need from the service beyond the API's JSON:
//! a device's IDevID and LDevID chains built up to the root from the CA certificates the
//! service's PKI holds, and the TUF repository's published roles with their expiry.
//!
//! A chain is built by issuer name and then checked by signature: each link's issuer is the
//! CA certificate whose subject (DER) is the link's issuer and whose key verifies the link's
//! signature. The walk stops at a self-signed certificate (complete) or where no CA of the
//! service matches (incomplete, and the page says so); it never loops (at most the number of
//! CA certificates plus one links).

use castellan_console::{CertificateChain, ChainCertificate, FleetError, TufRoleView};
use castellan_pki::CaKind;
use castellan_x509::ParsedCertificate;

use crate::core::Core;

fn link(c: &ParsedCertificate) -> ChainCertificate {
    ChainCertificate {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        serial: c.serial_hex(),
        not_before: c.not_before,
        not_after: c.not_after,
    }
}

/// Every CA certificate the service holds (the root, the issuing CAs, the operational CAs
/// rotated out but still trusted).
fn authorities(core: &Core) -> Vec<&ParsedCertificate> {
    let pki = &core.pki;
    let mut cas: Vec<&ParsedCertificate> = [
        CaKind::Manufacturer,
        CaKind::Operational,
        CaKind::Service,
        CaKind::Root,
    ]
    .into_iter()
    .map(|k| pki.ca_certificate(k))
    .collect();
    cas.extend(pki.previous_operational_cas());
    cas
}

/// The chain of the certificate `der` (a device's), up to the service's root.
pub(crate) fn chain_of(core: &Core, der: &[u8]) -> CertificateChain {
    let leaf = match castellan_x509::parse_certificate(der) {
        Ok(c) => c,
        Err(e) => {
            return CertificateChain {
                note: Some(format!("The stored certificate does not parse: {e}")),
                ..CertificateChain::default()
            };
        }
    };
    let cas = authorities(core);
    let mut certificates = vec![link(&leaf)];
    let mut current: &ParsedCertificate = &leaf;
    let mut complete = false;
    for _ in 0..=cas.len() {
        if current.is_ca && current.subject_der == current.issuer_der {
            complete = true;
            break;
        }
        let issuer = cas.iter().find(|ca| {
            ca.subject_der == current.issuer_der
                && castellan_x509::verify_signed_by(current, ca).is_ok()
        });
        match issuer {
            Some(ca) => {
                certificates.push(link(ca));
                current = ca;
            }
            None => break,
        }
    }
    let note = (!complete).then(|| {
        format!(
            "No CA of this service issued {} (issuer {}): the chain ends here.",
            if certificates.len() == 1 {
                "this certificate"
            } else {
                "the last certificate shown"
            },
            current.issuer
        )
    });
    CertificateChain {
        certificates,
        complete,
        note,
    }
}

/// The TUF repository's roles as published, when the service serves one.
pub(crate) async fn tuf_roles(core: &Core) -> Result<Option<Vec<TufRoleView>>, FleetError> {
    let Some(dir) = core.config.tuf_repository.clone() else {
        return Ok(None);
    };
    let status = tokio::task::spawn_blocking(move || {
        castellan_tuf::repo::Repository::open(&dir).and_then(|r| r.status())
    })
    .await
    .map_err(|e| FleetError::Refused(format!("TUF status task: {e}")))?
    .map_err(|e| FleetError::Refused(format!("TUF repository: {e}")))?;
    Ok(Some(
        status
            .roles
            .into_iter()
            .map(|r| TufRoleView {
                expires: r
                    .expires
                    .as_deref()
                    .and_then(|e| e.parse::<jiff::Timestamp>().ok())
                    .map(|t| t.as_second()),
                name: r.name,
                version: r.version,
            })
            .collect(),
    ))
}
