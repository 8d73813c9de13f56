//! The device's half of the signed lifecycle commands: check the command (decommission, or
//! reboot-and-reattest: the same checks, each kind under its own signed domain tag), then have
//! the secure services crypto-erase every key and asset and answer with the final attestation
//! token, or reboot and answer with a fresh token (`crate::agent`).
//!
//! ```text
//!  dev/<id>/down/lifecycle/decommission  DecommissionCommand
//!    ├─ for this device, not expired (issued_at − 5 min ≤ now ≤ expires_at)
//!    ├─ signer_cert is a CA signed by the root of the factory chain (chain.pem)
//!    ├─ and has the name of the CA that issued this device's LDevID (the operational CA:
//!    │  not the factory's CA, not the service CA, whatever key the root gave them)
//!    └─ signature over DecommissionCommand::signed_bytes verifies with its key
//!  ─▶ secure services: decommission (crypto-erase, lifecycle fuse)
//!  ─▶ dev/<id>/up/lifecycle/erased  ErasureEvidence {nonce, token over the nonce}
//! ```
//!
//! A refused command changes nothing on the device; the refusal is logged.

use castellan_protocol::SignedCommand;
use castellan_x509::{
    ParsedCertificate, parse_certificate, parse_certificate_pem, verify_signed_by,
};

use crate::error::read_text;
use crate::identity::IdentityFiles;

/// How far in the future a command's `issued_at` may be (clock skew), seconds.
const SKEW: i64 = 300;

/// Why the device refused a signed lifecycle command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandRefusal {
    /// A field is not what the protocol says (hex, lengths).
    #[error("malformed command: {0}")]
    Malformed(&'static str),
    /// The command names another device.
    #[error("the command is for device {0}, not this one")]
    WrongDevice(String),
    /// Outside its validity window.
    #[error("the command is not valid now (issued {issued_at}, expires {expires_at}, now {now})")]
    NotValidNow {
        /// Its `issued_at`.
        issued_at: i64,
        /// Its `expires_at`.
        expires_at: i64,
        /// The device's clock.
        now: i64,
    },
    /// The device's own certificates (trust anchor, LDevID) cannot be read.
    #[error("no trust anchor: {0}")]
    NoTrustAnchor(String),
    /// The signer's certificate is not a CA certificate the factory root signed.
    #[error("the signer's certificate does not chain to the device's root")]
    SignerNotFromRoot,
    /// The signer is a CA of the root, but not the one that issued this device's LDevID.
    #[error("the signer ({0}) is not the CA that issued this device's operational identity")]
    SignerNotOperationalCa(String),
    /// The signature does not verify.
    #[error("the command's signature does not verify")]
    BadSignature,
}

/// Check `cmd` (a decommission or reattest command) for device `device_id` at `now` against
/// the trust anchor in `files`.
pub fn verify<C: SignedCommand>(
    cmd: &C,
    device_id: &str,
    files: &IdentityFiles,
    now: i64,
) -> Result<(), CommandRefusal> {
    if cmd.device_id() != device_id {
        return Err(CommandRefusal::WrongDevice(cmd.device_id().to_owned()));
    }
    if now < cmd.issued_at().saturating_sub(SKEW) || now > cmd.expires_at() {
        return Err(CommandRefusal::NotValidNow {
            issued_at: cmd.issued_at(),
            expires_at: cmd.expires_at(),
            now,
        });
    }
    let nonce = hex::decode(cmd.nonce()).map_err(|_| CommandRefusal::Malformed("nonce"))?;
    if nonce.len() != 32 {
        return Err(CommandRefusal::Malformed("nonce length"));
    }
    let root = factory_root(files)?;
    let der =
        hex::decode(cmd.signer_cert()).map_err(|_| CommandRefusal::Malformed("signer_cert"))?;
    let signer = parse_certificate(&der).map_err(|_| CommandRefusal::Malformed("signer_cert"))?;
    if !signer.is_ca || verify_signed_by(&signer, &root).is_err() || !signer.is_valid_at(now) {
        return Err(CommandRefusal::SignerNotFromRoot);
    }
    let ldevid = read_text(&files.ldevid())
        .ok()
        .and_then(|p| parse_certificate_pem(&p).ok())
        .ok_or_else(|| CommandRefusal::NoTrustAnchor("no readable LDevID".into()))?;
    if signer.subject_der != ldevid.issuer_der {
        return Err(CommandRefusal::SignerNotOperationalCa(signer.subject));
    }
    let key = signer
        .public_key_p256
        .ok_or(CommandRefusal::SignerNotFromRoot)?;
    let sig: [u8; 64] = hex::decode(cmd.signature())
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or(CommandRefusal::Malformed("signature"))?;
    castellan_x509::verify_raw(&key, &cmd.signed_bytes(), &sig)
        .map_err(|_| CommandRefusal::BadSignature)
}

/// The self-signed root at the end of the factory chain (`chain.pem`).
fn factory_root(files: &IdentityFiles) -> Result<ParsedCertificate, CommandRefusal> {
    let pem =
        read_text(&files.chain()).map_err(|e| CommandRefusal::NoTrustAnchor(e.to_string()))?;
    pem_blocks(&pem)
        .filter_map(|b| parse_certificate_pem(&b).ok())
        .find(|c| c.is_ca && c.subject_der == c.issuer_der && verify_signed_by(c, c).is_ok())
        .ok_or_else(|| CommandRefusal::NoTrustAnchor("no root in the factory chain".into()))
}

/// Each `CERTIFICATE` block of a PEM bundle.
fn pem_blocks(bundle: &str) -> impl Iterator<Item = String> + '_ {
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_splits_a_bundle() {
        let b = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n\
                 -----BEGIN CERTIFICATE-----\nBB==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_blocks(b).count(), 2);
        assert_eq!(pem_blocks("").count(), 0);
    }
}
