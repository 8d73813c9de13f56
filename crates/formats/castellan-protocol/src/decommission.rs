//! The signed decommission and its proof of erasure (`docs/response.md`).
//!
//! ```text
//!  server ── dev/<id>/down/lifecycle/decommission  DecommissionCommand ──▶ device
//!            {device_id, nonce, issued_at, expires_at, signer_cert, signature}
//!            signature: operational CA key over DecommissionCommand::signed_bytes
//!  device: signer_cert chains to the factory root and is the CA that issued its LDevID,
//!          the signature verifies, the id is its own, the command has not expired
//!          ─▶ secure services crypto-erase keys and assets, lifecycle fuse decommissioned
//!  device ── dev/<id>/up/lifecycle/erased  ErasureEvidence {nonce, token} ──▶ server
//!            token: attestation token over the command's nonce, lifecycle decommissioned
//! ```

use serde::{Deserialize, Serialize};

/// The domain tag that starts every signed decommission command: a CA signature over these
/// bytes can never be one over a certificate or CRL (DER starts with 0x30).
pub const DECOMMISSION_DOMAIN: &str = "castellan/decommission/v1";

/// The server's signed order to erase the device for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecommissionCommand {
    /// The device this command is for (a command for another device is refused).
    pub device_id: String,
    /// 32 bytes, hex: the final attestation token must answer it.
    pub nonce: String,
    /// When the server signed it (Unix seconds).
    pub issued_at: i64,
    /// After this the device refuses it (Unix seconds).
    pub expires_at: i64,
    /// The signing CA's certificate, DER, hex (the operational CA).
    pub signer_cert: String,
    /// ECDSA P-256 over SHA-256 of [`DecommissionCommand::signed_bytes`], `r || s`, hex.
    pub signature: String,
}

impl DecommissionCommand {
    /// The bytes the signature covers: the domain tag and every field but the signature and
    /// the certificate, one per line (ids and hex never hold a newline).
    pub fn signed_bytes(&self) -> Vec<u8> {
        SignedCommand::signed_bytes(self)
    }
}

/// A command the server signs with the operational CA's key and the device checks before it
/// acts (decommission, reboot-and-reattest): the same fields, each kind under its own domain
/// tag, so that a signature over one kind is never one over another (nor over DER).
pub trait SignedCommand {
    /// The domain tag the signed bytes start with.
    const DOMAIN: &'static str;
    /// The device it is for.
    fn device_id(&self) -> &str;
    /// The nonce, hex (32 bytes).
    fn nonce(&self) -> &str;
    /// When it was signed (Unix seconds).
    fn issued_at(&self) -> i64;
    /// When it expires (Unix seconds).
    fn expires_at(&self) -> i64;
    /// The signer's certificate, DER, hex.
    fn signer_cert(&self) -> &str;
    /// The signature, `r || s`, hex.
    fn signature(&self) -> &str;
    /// The bytes the signature covers: the domain tag and every field but the signature and
    /// the certificate, one per line (ids and hex never hold a newline).
    fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(
            Self::DOMAIN,
            self.device_id(),
            self.nonce(),
            self.issued_at(),
            self.expires_at(),
        )
    }
}

/// The bytes a [`SignedCommand`] of domain `domain` signs: the tag and the fields, one per line.
pub fn signed_bytes(
    domain: &str,
    device_id: &str,
    nonce: &str,
    issued_at: i64,
    expires_at: i64,
) -> Vec<u8> {
    format!("{domain}\n{device_id}\n{nonce}\n{issued_at}\n{expires_at}\n").into_bytes()
}

/// The [`SignedCommand`] accessors of a command struct with the common fields.
macro_rules! signed_command {
    ($ty:ty, $domain:expr) => {
        impl $crate::decommission::SignedCommand for $ty {
            const DOMAIN: &'static str = $domain;
            fn device_id(&self) -> &str {
                &self.device_id
            }
            fn nonce(&self) -> &str {
                &self.nonce
            }
            fn issued_at(&self) -> i64 {
                self.issued_at
            }
            fn expires_at(&self) -> i64 {
                self.expires_at
            }
            fn signer_cert(&self) -> &str {
                &self.signer_cert
            }
            fn signature(&self) -> &str {
                &self.signature
            }
        }
    };
}
pub(crate) use signed_command;

signed_command!(DecommissionCommand, DECOMMISSION_DOMAIN);

/// The device's answer: the final attestation token, proof that it erased itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureEvidence {
    /// The command's nonce, hex (the token carries it too; this names the command answered).
    pub nonce: String,
    /// The attestation token (PSA, COSE_Sign1), hex, over the nonce, showing the lifecycle
    /// decommissioned.
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WireMessage as _;

    fn command() -> DecommissionCommand {
        DecommissionCommand {
            device_id: "CSTL-1".into(),
            nonce: "ab".repeat(32),
            issued_at: 1_700_000_000,
            expires_at: 1_700_000_300,
            signer_cert: "3082".into(),
            signature: "00".repeat(64),
        }
    }

    #[test]
    fn signed_bytes_start_with_the_domain_tag_and_cover_every_field() {
        let c = command();
        let b = c.signed_bytes();
        assert!(b.starts_with(b"castellan/decommission/v1\n"));
        assert_ne!(b.first(), Some(&0x30), "never DER");
        for changed in [
            DecommissionCommand {
                device_id: "CSTL-2".into(),
                ..command()
            },
            DecommissionCommand {
                nonce: "cd".repeat(32),
                ..command()
            },
            DecommissionCommand {
                issued_at: 1,
                ..command()
            },
            DecommissionCommand {
                expires_at: 1_800_000_000,
                ..command()
            },
        ] {
            assert_ne!(changed.signed_bytes(), b);
        }
        // The signature and the certificate are not signed over.
        let other_sig = DecommissionCommand {
            signature: "11".repeat(64),
            ..command()
        };
        assert_eq!(other_sig.signed_bytes(), b);
    }

    #[test]
    fn hostile_payloads_are_refused_without_panic() {
        assert!(DecommissionCommand::parse(b"").is_err());
        assert!(DecommissionCommand::parse(b"{\"device_id\":1}").is_err());
        assert!(ErasureEvidence::parse(&[0xff; 64]).is_err());
        let c = command();
        assert_eq!(DecommissionCommand::parse(&c.to_payload()).unwrap(), c);
    }
}
