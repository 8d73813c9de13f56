//! `castellan token show | verify`: PSA initial attestation tokens (RFC 9783).
//!
//! `show` decodes without checking anything and says so; `verify` checks the signature (or MAC),
//! the nonce and, given reference values, the claims, and exits 1 with the typed reason when the
//! token is refused.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_attest::{ReferenceValues, VerificationKey, appraise, decode_token, verify_token};
use clap::{Args, Subcommand};

use super::{read_binary_or_hex, read_text};

/// `castellan token …`
#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Decode a token and print its claims WITHOUT verifying it.
    Show(ShowArgs),
    /// Verify a token's signature, nonce and (optionally) claims against reference values.
    Verify(VerifyArgs),
}

/// Arguments of `castellan token show`.
#[derive(Args)]
pub(crate) struct ShowArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Token file: raw CBOR, or hex text.
    token: PathBuf,
}

/// Arguments of `castellan token verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// Attestation public key: P-256 SubjectPublicKeyInfo PEM.
    #[arg(short, long, value_name = "FILE", conflicts_with = "hmac_key")]
    key: Option<PathBuf>,
    /// HMAC-SHA256 key (hex) for COSE_Mac0 tokens.
    #[arg(long, value_name = "HEX")]
    hmac_key: Option<String>,
    /// The nonce the token must answer (hex). Without it only the signature is checked.
    #[arg(long, value_name = "HEX")]
    nonce: Option<String>,
    /// Reference values (JSON: accepted_profiles, accepted_lifecycles, implementation_id,
    /// components, allow_unlisted_components). Needs --nonce.
    #[arg(long, value_name = "FILE", requires = "nonce")]
    reference: Option<PathBuf>,
    /// Token file: raw CBOR, or hex text.
    token: PathBuf,
}

/// Run a token subcommand.
pub(crate) fn run(c: TokenCommand) -> anyhow::Result<ExitCode> {
    match c {
        TokenCommand::Show(a) => show(a),
        TokenCommand::Verify(a) => verify(a),
    }
}

fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let token = read_binary_or_hex(&a.token)?;
    let decoded = match decode_token(&token) {
        Ok(d) => d,
        Err(e) => bail!("{}: not a PSA attestation token: {e}", a.token.display()),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&decoded.claims)?);
    } else {
        println!(
            "UNVERIFIED token ({:?}); use `castellan token verify` before trusting it",
            decoded.protection
        );
        println!("{}", decoded.claims);
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let token = read_binary_or_hex(&a.token)?;
    let key = match (&a.key, &a.hmac_key) {
        (Some(path), None) => VerificationKey::p256_from_pem(&read_text(path)?)
            .with_context(|| format!("{}: not a P-256 public key", path.display()))?,
        (None, Some(h)) => {
            VerificationKey::hmac_sha256(&hex::decode(h).context("--hmac-key is not hex")?)?
        }
        _ => bail!("give the attestation key: --key PUBKEY.pem (ES256) or --hmac-key HEX (Mac0)"),
    };
    let result = match &a.nonce {
        None => verify_token(&token, &key),
        Some(n) => {
            let nonce = hex::decode(n).context("--nonce is not hex")?;
            let reference = match &a.reference {
                Some(path) => serde_json::from_str::<ReferenceValues>(&read_text(path)?)
                    .with_context(|| format!("{}: not valid reference values", path.display()))?,
                // Without reference values: signature and nonce only, any profile or state.
                None => {
                    use castellan_attest::{Lifecycle as L, Profile as P};
                    ReferenceValues {
                        accepted_profiles: vec![P::Rfc9783, P::PsaV2, P::PsaIotProfile1],
                        accepted_lifecycles: vec![
                            L::Unknown,
                            L::AssemblyAndTest,
                            L::PsaRotProvisioning,
                            L::Secured,
                            L::NonPsaRotDebug,
                            L::RecoverablePsaRotDebug,
                            L::Decommissioned,
                        ],
                        allow_unlisted_components: true,
                        ..ReferenceValues::default()
                    }
                }
            };
            appraise(&token, &key, &nonce, &reference)
        }
    };
    match result {
        Ok(claims) => {
            println!(
                "{}: valid token, profile {}, lifecycle {:#06x}, {} software component(s)",
                a.token.display(),
                claims.profile,
                claims.lifecycle,
                claims.software_components.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}: refused: {e}", a.token.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
