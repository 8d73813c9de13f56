//! The signed reboot-and-reattest of a device whose measurement was always good, after a
//! run-time compromise (`docs/response.md`, "Reboot and re-attest").
//!
//! ```text
//!  server ── dev/<id>/down/lifecycle/reattest  ReattestCommand ──▶ device
//!            {device_id, nonce, issued_at, expires_at, signer_cert, signature}
//!            signature: operational CA key over SignedCommand::signed_bytes, domain
//!            "castellan/reattest/v1"
//!  device: the same checks as a decommission command ─▶ reboot (what ran in RAM is gone)
//!  device ── dev/<id>/up/lifecycle/reattested  ReattestEvidence {nonce, token} ──▶ server
//!            token: attestation token over the command's nonce, from the fresh boot
//! ```

use serde::{Deserialize, Serialize};

use crate::decommission::signed_command;

/// The domain tag that starts every signed reattest command: never a decommission command's
/// bytes (another tag), never DER (0x30).
pub const REATTEST_DOMAIN: &str = "castellan/reattest/v1";

/// The server's signed order to reboot and attest over a fresh nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReattestCommand {
    /// The device this command is for (a command for another device is refused).
    pub device_id: String,
    /// 32 bytes, hex: the token after the reboot must be over it.
    pub nonce: String,
    /// When the server signed it (Unix seconds).
    pub issued_at: i64,
    /// After this the device refuses it (Unix seconds).
    pub expires_at: i64,
    /// The signing CA's certificate, DER, hex (the operational CA).
    pub signer_cert: String,
    /// ECDSA P-256 over SHA-256 of the signed bytes, `r || s`, hex.
    pub signature: String,
}

signed_command!(ReattestCommand, REATTEST_DOMAIN);

/// The device's answer after the reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReattestEvidence {
    /// The command's nonce, hex.
    pub nonce: String,
    /// The attestation token (PSA, COSE_Sign1), hex, over the nonce.
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decommission::SignedCommand as _;
    use crate::{DecommissionCommand, WireMessage as _};

    fn command() -> ReattestCommand {
        ReattestCommand {
            device_id: "CSTL-1".into(),
            nonce: "ab".repeat(32),
            issued_at: 1_700_000_000,
            expires_at: 1_700_000_300,
            signer_cert: "3082".into(),
            signature: "00".repeat(64),
        }
    }

    #[test]
    fn attack_reattest_signature_is_never_a_decommission_signature() {
        let r = command();
        let d = DecommissionCommand {
            device_id: r.device_id.clone(),
            nonce: r.nonce.clone(),
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            signer_cert: r.signer_cert.clone(),
            signature: r.signature.clone(),
        };
        let b = r.signed_bytes();
        assert!(b.starts_with(b"castellan/reattest/v1\n"));
        assert_ne!(b, d.signed_bytes(), "same fields, another domain");
        assert_ne!(b.first(), Some(&0x30), "never DER");
        let later = ReattestCommand {
            expires_at: 1_800_000_000,
            ..command()
        };
        assert_ne!(later.signed_bytes(), b);
    }

    #[test]
    fn hostile_payloads_are_refused_without_panic() {
        assert!(ReattestCommand::parse(b"").is_err());
        assert!(ReattestCommand::parse(b"{\"device_id\":[]}").is_err());
        assert!(ReattestEvidence::parse(&[0xff; 64]).is_err());
        let c = command();
        assert_eq!(ReattestCommand::parse(&c.to_payload()).unwrap(), c);
    }
}
