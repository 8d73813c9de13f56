//! PSA initial attestation token (RFC 9783): a `no_std`, heap-free encoder for the device's
//! secure partition, and (feature `std`) a verifier and appraiser for the fleet side.
//!
//! # The token
//!
//! A token is a tagged `COSE_Sign1` (tag 18) signed with ES256 (ECDSA P-256 + SHA-256):
//!
//! ```text
//! 18([ h'A10126',          ; protected header {1: -7} (alg ES256), as a byte string
//!      {},                 ; unprotected header
//!      h'<claims map>',    ; payload: the CBOR claims below
//!      h'<r‖s>' ])         ; 64-byte signature over the Sig_structure
//!
//! Sig_structure = ["Signature1", h'A10126', h'' (external_aad), h'<claims map>']
//! ```
//!
//! The device builds it in three steps, all into caller buffers ([`encode`]): write the claims
//! map, write the `Sig_structure`, hand it to the caller's [`TokenSigner`] (the attestation
//! private key lives in the crypto service and never leaves it; the encoder only ever sees
//! the 64-byte signature), then assemble the `COSE_Sign1`. [`encode_token`] does all three in
//! one buffer sized by [`token_len`].
//!
//! ```
//! use castellan_attest::{Profile, SwComponent, TokenClaims, encode_token, token_len};
//!
//! let nonce = [0xa5; 32];                 // the verifier's challenge
//! let instance_id = [0x01; 33];           // 0x01 ‖ SHA-256(attestation public key)
//! let components = [SwComponent {
//!     measurement_type: Some("SPE"),
//!     measurement_value: &[0x22; 32],     // SHA-256 of the secure image
//!     version: Some("1.0.0"),
//!     signer_id: &[0x5e; 32],             // SHA-256 of its signing key
//!     measurement_desc: Some("sha-256"),
//! }];
//! let claims = TokenClaims {
//!     profile: Profile::Rfc9783,
//!     nonce: &nonce,
//!     instance_id: &instance_id,
//!     implementation_id: &[0xaa; 32],
//!     lifecycle: 0x3000,                  // secured
//!     boot_seed: Some(&[0xbb; 32]),
//!     client_id: -1,                      // a non-secure caller
//!     software_components: &components,
//!     certification_reference: None,
//!     verification_service: None,
//! };
//! // The crypto service signs SHA-256(tbs) with the attestation key and returns r‖s;
//! // its error status comes back as Error::SignerFailed(status).
//! let mut sign = |tbs: &[u8]| -> Result<[u8; 64], i32> { let _ = tbs; Ok([0u8; 64]) };
//! let mut buf = [0u8; 512];
//! assert!(token_len(&claims)? <= buf.len());
//! let n = encode_token(&claims, &mut sign, &mut buf)?;
//! assert_eq!(&buf[..2], &[0xd2, 0x84]);  // tag 18, COSE_Sign1 array
//! # assert_eq!(n, token_len(&claims)?);
//! # Ok::<(), castellan_attest::Error>(())
//! ```
//!
//! # Claims (profile `tag:psacertified.org,2023:psa#tfm`)
//!
//! | key  | claim (EAT / PSA name)                      | type                          |
//! |------|---------------------------------------------|-------------------------------|
//! | 10   | nonce (`eat_nonce`)                         | bstr, 32/48/64 bytes          |
//! | 256  | instance id (`ueid`)                        | bstr, `0x01` + 32 bytes       |
//! | 265  | profile (`eat_profile`)                     | text                          |
//! | 268  | boot seed (`bootseed`)                      | bstr, 8..32 bytes, optional   |
//! | 2394 | client id (`psa-client-id`)                 | int (i32; < 0: non-secure)    |
//! | 2395 | security lifecycle                          | uint (u16, e.g. 0x3000)       |
//! | 2396 | implementation id                           | bstr, 32 bytes                |
//! | 2398 | certification reference                     | text EAN-13+5, optional       |
//! | 2399 | software components                         | array of maps, ≥ 1            |
//! | 2400 | verification service indicator              | text, optional                |
//!
//! Each software component is a map: 1 measurement type (text, e.g. `"PRoT"`), 2 measurement
//! value (bstr hash), 4 version (text), 5 signer id (bstr hash of the signing key),
//! 6 measurement description (text hash algorithm name, e.g. `"sha-256"`). Keys 2 and 5 are
//! mandatory. The encoder writes claims in ascending key order with shortest CBOR heads, which
//! is RFC 8949 deterministic encoding.
//!
//! RFC 9783 moved the boot seed to the EAT `bootseed` claim (268); the legacy
//! `http://arm.com/psa/2.0.0` profile has it under 2397 and `PSA_IOT_PROFILE_1` uses the Arm
//! private keys -75000..-75010 ([`keys::claim_p1`]). The verifier decodes all three; the
//! encoder writes RFC 9783 (or 2.0.0 on request).
//!
//! # Attestation key binding (decided by the secure-services crate)
//!
//! This crate is agnostic: it takes a signer. Two bindings fit Castellan:
//! - **Derived from DICE `CDI_Attest`**: the key pair is derived deterministically at each boot
//!   from the measurement-bound CDI, so a changed bootloader/firmware yields a different key and
//!   old tokens stop verifying; the verifier learns the key from a DICE certificate chain.
//! - **Generated at provisioning**: generated once inside the secure partition, its public key
//!   certified by the manufacturer CA (IDevID-like) and recorded in the registry; stable across
//!   updates, so measurements come only from the software-components claim.
//!
//! Either way the instance id is `0x01 ‖ SHA-256(attestation public key)` as in TF-M.
//!
//! # Verifier (`std`)
//!
//! [`decode_token`] parses without checking anything cryptographic (for display);
//! [`verify_token`] also checks the signature/MAC; [`appraise`] then checks the nonce, the
//! profile and the [`ReferenceValues`] and returns the [`Claims`] or a typed [`AppraisalError`]
//! naming what is wrong. Hostile input never panics (`fuzz/fuzz_targets/attest_token.rs`).
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod cbor;
pub mod encode;
mod error;
pub mod keys;

#[cfg(feature = "std")]
mod claims;
#[cfg(feature = "std")]
mod decode;
#[cfg(feature = "std")]
mod hex_serde;
#[cfg(feature = "std")]
mod verify;

pub use encode::{
    ES256_SIGNATURE_LEN, SignFn, SwComponent, TokenClaims, TokenSigner, assemble_sign1, claims_len,
    encode_claims, encode_token, sig_structure, token_len, validate_claims,
};
pub use error::{AppraisalError, Error, SHORT_TEXT_CAP, ShortText};
pub use keys::{Lifecycle, Profile};

#[cfg(feature = "std")]
pub use claims::{Claims, Component};
#[cfg(feature = "std")]
pub use decode::{DecodedToken, Protection, decode_token};
#[cfg(feature = "std")]
pub use verify::{ExpectedComponent, ReferenceValues, VerificationKey, appraise, verify_token};
