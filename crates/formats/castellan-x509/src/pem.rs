//! PEM (RFC 7468) framing of DER certificates, CSRs and CRLs.

use crate::X509Error;

/// Encode DER as PEM with the given label.
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    pem_rfc7468_encode(label, der)
}

/// Decode the first PEM block with `label` to DER.
pub fn pem_to_der(label: &'static str, pem: &str) -> Result<Vec<u8>, X509Error> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or(X509Error::Malformed {
        what: label,
        reason: "no PEM block with this label",
    })?;
    let body_start = start + begin.len();
    let body = pem.get(body_start..).unwrap_or_default();
    let stop = body.find(&end).ok_or(X509Error::Malformed {
        what: label,
        reason: "unterminated PEM block",
    })?;
    let b64: String = body
        .get(..stop)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| X509Error::Malformed {
            what: label,
            reason: "bad base64 in PEM block",
        })
}

fn pem_rfc7468_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut line = String::new();
    for c in b64.chars() {
        line.push(c);
        if line.len() == 64 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
