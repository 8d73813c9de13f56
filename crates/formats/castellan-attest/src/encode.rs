//! Device-side token encoder (`no_std`, no heap): claims map → COSE `Sig_structure` → caller's
//! signer → tagged `COSE_Sign1`, all in caller-provided buffers.
//!
//! ```text
//!  TokenClaims ──encode_claims──▶ payload (CBOR map)
//!                                   │
//!                 sig_structure ──▶ ["Signature1", h'A10126', h'', payload]  ──▶ signer (ES256)
//!                                   │                                             │ r‖s (64 B)
//!                 assemble_sign1 ─▶ 18([h'A10126', {}, payload, r‖s])  ◀──────────┘
//! ```
//!
//! [`encode_token`] does the three steps in ONE buffer (the payload is written once, in place),
//! which is what a RAM-starved secure partition wants; the step functions are there for a
//! caller that keeps its own buffers or signs asynchronously.

use crate::cbor::{Writer, head_len};
use crate::keys::{claim, component, is_hash_len};
use crate::{Error, Lifecycle, Profile};

/// The protected header every token carries: `{1: -7}` (alg ES256), as encoded CBOR.
pub const PROTECTED_ES256: [u8; 3] = [0xa1, 0x01, 0x26];

/// CBOR tag of `COSE_Sign1`.
pub const TAG_COSE_SIGN1: u64 = 18;

/// Size of an ES256 signature (`r‖s`, 32 bytes each).
pub const ES256_SIGNATURE_LEN: usize = 64;

/// Fixed bytes of a `Sig_structure` before the payload's bstr head:
/// array(4), "Signature1", bstr(protected), bstr(external_aad = empty).
const TBS_FIXED: usize = 1 + 11 + 4 + 1;
/// Fixed bytes of a tagged `COSE_Sign1` before the payload's bstr head:
/// tag 18, array(4), bstr(protected), empty unprotected map.
const SIGN1_FIXED: usize = 1 + 1 + 4 + 1;
/// Bytes after the payload: bstr head (2) + 64-byte signature.
const SIGN1_TAIL: usize = 2 + ES256_SIGNATURE_LEN;

/// One measured software component (`psa-software-component`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwComponent<'a> {
    /// Key 1, `measurement-type`: short role name such as `"BL"`, `"PRoT"`, `"ARoT"`, `"NSPE"`.
    pub measurement_type: Option<&'a str>,
    /// Key 2, `measurement-value`: hash of the component image (32, 48 or 64 bytes).
    pub measurement_value: &'a [u8],
    /// Key 4, `version`: text such as `"1.3.5"`.
    pub version: Option<&'a str>,
    /// Key 5, `signer-id`: hash of the public key that signed the image (32, 48 or 64 bytes).
    pub signer_id: &'a [u8],
    /// Key 6, `measurement-desc`: hash algorithm name such as `"sha-256"`.
    pub measurement_desc: Option<&'a str>,
}

/// The claims the device puts in its token. Borrowed: nothing is copied until encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims<'a> {
    /// Profile to write: [`Profile::Rfc9783`] (or the legacy [`Profile::PsaV2`]).
    pub profile: Profile,
    /// Key 10: the verifier's challenge, 32, 48 or 64 bytes.
    pub nonce: &'a [u8],
    /// Key 256: UEID, `0x01` (RAND) followed by 32 bytes (TF-M: SHA-256 of the attestation key).
    pub instance_id: &'a [u8; 33],
    /// Key 2396: immutable PSA RoT implementation id.
    pub implementation_id: &'a [u8; 32],
    /// Key 2395: raw PSA security lifecycle, e.g. `0x3000` (secured).
    pub lifecycle: u16,
    /// Key 268 (2397 in the 2.0.0 profile): 8 to 32 bytes, new at each boot.
    pub boot_seed: Option<&'a [u8]>,
    /// Key 2394: the partition id of the caller that asked for the token (negative: non-secure).
    pub client_id: i32,
    /// Key 2399: at least one measured component.
    pub software_components: &'a [SwComponent<'a>],
    /// Key 2398: PSA Certified reference, EAN-13+5 (`"0604565272829-10010"`).
    pub certification_reference: Option<&'a str>,
    /// Key 2400: where a relying party finds a verifier for this device (usually a URL).
    pub verification_service: Option<&'a str>,
}

/// The holder of the attestation private key. It receives the complete COSE `Sig_structure`
/// (`tbs`), must sign SHA-256(`tbs`) with ECDSA P-256 and return `r‖s` (64 bytes, big-endian).
///
/// The key never leaves the implementor (the crypto service). On failure it returns its own
/// status code (for instance a `psa_status_t`), passed back as [`Error::SignerFailed`].
/// Any `FnMut(&[u8]) -> Result<[u8; 64], i32>` closure is a signer.
pub trait TokenSigner {
    /// Signs `tbs` with ES256.
    fn sign_es256(&mut self, tbs: &[u8]) -> Result<[u8; ES256_SIGNATURE_LEN], i32>;
}

/// A signer as a trait object: `&mut SignFn` is what a caller passes when it keeps the signing
/// closure behind dynamic dispatch.
pub type SignFn<'a> = dyn FnMut(&[u8]) -> Result<[u8; ES256_SIGNATURE_LEN], i32> + 'a;

impl<F> TokenSigner for F
where
    F: FnMut(&[u8]) -> Result<[u8; ES256_SIGNATURE_LEN], i32> + ?Sized,
{
    fn sign_es256(&mut self, tbs: &[u8]) -> Result<[u8; ES256_SIGNATURE_LEN], i32> {
        self(tbs)
    }
}

/// Checks the claims against RFC 9783 without writing anything.
pub fn validate_claims(claims: &TokenClaims<'_>) -> Result<(), Error> {
    if claims.profile == Profile::PsaIotProfile1 {
        return Err(Error::UnsupportedProfile);
    }
    if !is_hash_len(claims.nonce.len()) {
        return Err(Error::InvalidNonceLength(claims.nonce.len()));
    }
    if claims.instance_id.first() != Some(&0x01) {
        return Err(Error::InvalidClaim(
            "instance id must start with 0x01 (UEID type RAND)",
        ));
    }
    if Lifecycle::from_raw(claims.lifecycle).is_none() {
        return Err(Error::InvalidClaim(
            "lifecycle is outside the PSA lifecycle ranges",
        ));
    }
    if let Some(seed) = claims.boot_seed {
        if !(8..=32).contains(&seed.len()) {
            return Err(Error::InvalidClaim("boot seed must be 8 to 32 bytes"));
        }
    }
    if claims.software_components.is_empty() {
        return Err(Error::InvalidClaim(
            "software components: at least one is required",
        ));
    }
    for c in claims.software_components {
        if !is_hash_len(c.measurement_value.len()) {
            return Err(Error::InvalidClaim(
                "software component measurement value must be 32, 48 or 64 bytes",
            ));
        }
        if !is_hash_len(c.signer_id.len()) {
            return Err(Error::InvalidClaim(
                "software component signer id must be 32, 48 or 64 bytes",
            ));
        }
    }
    if let Some(r) = claims.certification_reference {
        if !is_ean13_plus5(r) {
            return Err(Error::InvalidClaim(
                "certification reference must be EAN-13+5 (13 digits, '-', 5 digits)",
            ));
        }
    }
    if claims.verification_service == Some("") {
        return Err(Error::InvalidClaim(
            "verification service indicator must not be empty",
        ));
    }
    Ok(())
}

/// Writes the claims map (the COSE payload) into `out`; returns its length.
/// On a short buffer returns [`Error::BufferTooSmall`] with the exact size needed.
pub fn encode_claims(claims: &TokenClaims<'_>, out: &mut [u8]) -> Result<usize, Error> {
    validate_claims(claims)?;
    let mut w = Writer::new(out);
    write_claims(claims, &mut w);
    w.finish()
}

/// Length of the claims map [`encode_claims`] would write.
pub fn claims_len(claims: &TokenClaims<'_>) -> Result<usize, Error> {
    validate_claims(claims)?;
    let mut w = Writer::new(&mut []);
    write_claims(claims, &mut w);
    Ok(w.len())
}

/// Size of the buffer [`encode_token`] needs (the finished token is this long too).
pub fn token_len(claims: &TokenClaims<'_>) -> Result<usize, Error> {
    Ok(sign1_len(claims_len(claims)?))
}

/// Writes the COSE `Sig_structure` for `payload` into `out` (the bytes the signer signs):
/// `["Signature1", h'A10126', h'', payload]`. Returns its length.
pub fn sig_structure(payload: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let mut w = Writer::new(out);
    write_tbs_prefix(&mut w, payload.len());
    w.raw(payload);
    w.finish()
}

/// Writes the tagged `COSE_Sign1` `18([h'A10126', {}, payload, signature])` into `out`.
/// Returns its length.
pub fn assemble_sign1(
    payload: &[u8],
    signature: &[u8; ES256_SIGNATURE_LEN],
    out: &mut [u8],
) -> Result<usize, Error> {
    let mut w = Writer::new(out);
    write_sign1_prefix(&mut w, payload.len());
    w.raw(payload);
    w.bytes(signature);
    w.finish()
}

/// Encodes, signs and assembles a token in `out` alone; returns the token's length.
///
/// `out` must hold [`token_len`] bytes. The claims are encoded once, straight into the
/// `Sig_structure`, signed, then moved 10 bytes left under the `COSE_Sign1` header.
pub fn encode_token<S: TokenSigner + ?Sized>(
    claims: &TokenClaims<'_>,
    signer: &mut S,
    out: &mut [u8],
) -> Result<usize, Error> {
    let payload_len = claims_len(claims)?;
    let total = sign1_len(payload_len);
    let tbs_len = tbs_len(payload_len);
    if out.len() < total.max(tbs_len) {
        return Err(Error::BufferTooSmall {
            needed: total.max(tbs_len),
            available: out.len(),
        });
    }
    let payload_head = head_len(payload_len as u64);
    let tbs_payload_at = TBS_FIXED + payload_head;
    let sign1_payload_at = SIGN1_FIXED + payload_head;

    // 1. Sig_structure, payload written in place.
    let tbs = out
        .get_mut(..tbs_len)
        .ok_or(Error::InvalidClaim("internal size"))?;
    let mut w = Writer::new(tbs);
    write_tbs_prefix(&mut w, payload_len);
    write_claims(claims, &mut w);
    if w.finish()? != tbs_len {
        return Err(Error::InvalidClaim("claims changed size between passes"));
    }

    // 2. The caller's key signs it.
    let tbs = out
        .get(..tbs_len)
        .ok_or(Error::InvalidClaim("internal size"))?;
    let signature = signer.sign_es256(tbs).map_err(Error::SignerFailed)?;

    // 3. Slide the payload under the COSE_Sign1 header, then header and signature around it.
    out.copy_within(
        tbs_payload_at..tbs_payload_at + payload_len,
        sign1_payload_at,
    );
    let head = out
        .get_mut(..sign1_payload_at)
        .ok_or(Error::InvalidClaim("internal size"))?;
    let mut w = Writer::new(head);
    write_sign1_prefix(&mut w, payload_len);
    w.finish()?;
    let tail = out
        .get_mut(sign1_payload_at + payload_len..total)
        .ok_or(Error::InvalidClaim("internal size"))?;
    let mut w = Writer::new(tail);
    w.bytes(&signature);
    w.finish()?;
    Ok(total)
}

// --- helpers -------------------------------------------------------------------------------

fn tbs_len(payload_len: usize) -> usize {
    TBS_FIXED + head_len(payload_len as u64) + payload_len
}

fn sign1_len(payload_len: usize) -> usize {
    SIGN1_FIXED + head_len(payload_len as u64) + payload_len + SIGN1_TAIL
}

fn write_tbs_prefix(w: &mut Writer<'_>, payload_len: usize) {
    w.array(4);
    w.text("Signature1");
    w.bytes(&PROTECTED_ES256);
    w.bytes(&[]);
    w.head(crate::cbor::Major::Bytes, payload_len as u64);
}

fn write_sign1_prefix(w: &mut Writer<'_>, payload_len: usize) {
    w.tag(TAG_COSE_SIGN1);
    w.array(4);
    w.bytes(&PROTECTED_ES256);
    w.map(0);
    w.head(crate::cbor::Major::Bytes, payload_len as u64);
}

/// Claims in ascending key order (= deterministic CBOR order for these keys).
fn write_claims(c: &TokenClaims<'_>, w: &mut Writer<'_>) {
    let boot_seed_key = match c.profile {
        Profile::PsaV2 => claim::BOOT_SEED_V2,
        _ => claim::BOOT_SEED,
    };
    let entries = 7
        + usize::from(c.boot_seed.is_some())
        + usize::from(c.certification_reference.is_some())
        + usize::from(c.verification_service.is_some());
    w.map(entries);
    w.int(claim::NONCE);
    w.bytes(c.nonce);
    w.int(claim::INSTANCE_ID);
    w.bytes(c.instance_id);
    w.int(claim::PROFILE);
    w.text(c.profile.as_str());
    if let (Some(seed), claim::BOOT_SEED) = (c.boot_seed, boot_seed_key) {
        w.int(claim::BOOT_SEED);
        w.bytes(seed);
    }
    w.int(claim::CLIENT_ID);
    w.int(i64::from(c.client_id));
    w.int(claim::LIFECYCLE);
    w.int(i64::from(c.lifecycle));
    w.int(claim::IMPLEMENTATION_ID);
    w.bytes(c.implementation_id);
    if let (Some(seed), claim::BOOT_SEED_V2) = (c.boot_seed, boot_seed_key) {
        w.int(claim::BOOT_SEED_V2);
        w.bytes(seed);
    }
    if let Some(r) = c.certification_reference {
        w.int(claim::CERTIFICATION_REFERENCE);
        w.text(r);
    }
    w.int(claim::SOFTWARE_COMPONENTS);
    w.array(c.software_components.len());
    for sc in c.software_components {
        write_component(sc, w);
    }
    if let Some(v) = c.verification_service {
        w.int(claim::VERIFICATION_SERVICE);
        w.text(v);
    }
}

fn write_component(sc: &SwComponent<'_>, w: &mut Writer<'_>) {
    let entries = 2
        + usize::from(sc.measurement_type.is_some())
        + usize::from(sc.version.is_some())
        + usize::from(sc.measurement_desc.is_some());
    w.map(entries);
    if let Some(t) = sc.measurement_type {
        w.int(component::MEASUREMENT_TYPE);
        w.text(t);
    }
    w.int(component::MEASUREMENT_VALUE);
    w.bytes(sc.measurement_value);
    if let Some(v) = sc.version {
        w.int(component::VERSION);
        w.text(v);
    }
    w.int(component::SIGNER_ID);
    w.bytes(sc.signer_id);
    if let Some(d) = sc.measurement_desc {
        w.int(component::MEASUREMENT_DESC);
        w.text(d);
    }
}

/// `[0-9]{13}-[0-9]{5}`.
pub(crate) fn is_ean13_plus5(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| {
            if i == 13 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}
