//! Initial attestation after PSA Initial Attestation 1.0: the PSA attestation token (RFC 9783,
//! `COSE_Sign1` ES256) built by `castellan-attest`'s heap-free encoder and signed here with the
//! initial attestation key (IAK), which never leaves this module.
//!
//! ```text
//!  CDI_Seal ──HKDF──▶ IAK (P-256) ──▶ instance id = 0x01 ‖ SHA-256(IAK public, SEC1 uncompressed)
//!  boot record (bootloader) ──▶ software components {type, SHA-256 value, signer id, version}
//!  nonce (32/48/64) · lifecycle (OTP) · boot seed (random per boot) · implementation id (config)
//!        └──────────────▶ encode_token(claims, IAK signer) ──▶ COSE_Sign1 token
//! ```
//!
//! # How the attestation key is bound to the device
//!
//! Castellan derives the IAK from the DICE `CDI_Seal` the boot chain hands to the secure
//! partition (`kdf` module: HKDF-SHA-256 with its own label, to a P-256 scalar, retried on the
//! rare out-of-range value). `CDI_Seal` is a function of the UDS (unique to the chip, locked by
//! the ROM stage), of the signing authorities of the bootloader and of the application, and of
//! the DICE mode (lifecycle), so:
//! - the key is unique to the device and never stored: there is no key file to steal, and
//!   decommissioning needs no erase of it;
//! - it survives firmware updates signed by the same authority, so the public key the factory
//!   registers verifies every later token, after any number of updates (the property update
//!   campaigns need to check "the device attested the new measurement");
//! - firmware signed by another authority, or a device in debug mode, gets another key, so its
//!   tokens do not verify at all;
//! - what runs is reported by the software-components claim, built from the bootloader's boot
//!   record (the bootloader measured the image before it ran it); the verifier compares it with
//!   the reference values of the release it expects.
//!
//! The earlier choice, `CDI_Attest`, changes with every measurement, so the registered key
//! stopped verifying after the first update. The verifier learns the public key out of band: at
//! provisioning the factory reads [`crate::SecureServices::attestation_public_key`] (and the
//! instance id) for the registry.

use castellan_text::Piece::Dec;
use castellan_text::{Sink, TextError};

use castellan_attest::{Profile, SwComponent, TokenClaims, encode_token, token_len};
use castellan_hal::RandomSource;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::types::Algorithm;
use crate::crypto::{P256_PUBLIC_KEY_LEN, sign_p256};
use crate::{Platform, ServiceError, kdf};

/// Most boot-record entries (software components) a token carries.
pub const MAX_BOOT_RECORD_ENTRIES: usize = 4;
/// Longest measurement type text.
pub const MAX_MEASUREMENT_TYPE_LEN: usize = 16;
/// Length of the instance id claim.
pub const INSTANCE_ID_LEN: usize = 33;
/// Length of the boot seed claim.
pub const BOOT_SEED_LEN: usize = 32;

/// An image version as MCUboot's image header carries it (`major.minor.revision+build`).
pub use castellan_image::Version as ImageVersion;

/// One measured component of the boot chain, as the bootloader records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BootRecordEntry {
    measurement_type: [u8; MAX_MEASUREMENT_TYPE_LEN],
    measurement_type_len: u8,
    /// SHA-256 of the component image (the MCUboot image hash).
    pub measurement_value: [u8; 32],
    /// SHA-256 of the public key that signed it (MCUboot's key hash).
    pub signer_id: [u8; 32],
    /// The image version.
    pub version: ImageVersion,
}

impl BootRecordEntry {
    /// An empty entry (no type, zero hashes): a filler, never put in a token.
    pub(crate) const EMPTY: BootRecordEntry = BootRecordEntry {
        measurement_type: [0; MAX_MEASUREMENT_TYPE_LEN],
        measurement_type_len: 0,
        measurement_value: [0; 32],
        signer_id: [0; 32],
        version: ImageVersion::new(0, 0, 0, 0),
    };

    /// An entry named `measurement_type` (e.g. `"BL"`, `"SPE"`, `"NSPE"`; at most
    /// [`MAX_MEASUREMENT_TYPE_LEN`] bytes, else [`ServiceError::InvalidArgument`]).
    pub fn new(
        measurement_type: &str,
        measurement_value: [u8; 32],
        signer_id: [u8; 32],
        version: ImageVersion,
    ) -> Result<Self, ServiceError> {
        let mut t = [0u8; MAX_MEASUREMENT_TYPE_LEN];
        t.get_mut(..measurement_type.len())
            .ok_or(ServiceError::InvalidArgument(
                "measurement type is longer than 16 bytes",
            ))?
            .copy_from_slice(measurement_type.as_bytes());
        Ok(BootRecordEntry {
            measurement_type: t,
            measurement_type_len: measurement_type.len() as u8,
            measurement_value,
            signer_id,
            version,
        })
    }

    /// The entry for a measurement the boot stages made (`castellan-boot`). Fails for
    /// digests other than SHA-256 ([`ServiceError::NotSupported`]).
    pub fn from_measurement(m: &castellan_slots::Measurement) -> Result<Self, ServiceError> {
        let value: [u8; 32] = m
            .digest
            .as_bytes()
            .try_into()
            .map_err(|_| ServiceError::NotSupported("measurements other than SHA-256"))?;
        Self::new(m.sw_type.as_str(), value, m.signer_id, m.version)
    }

    /// The measurement type text.
    pub fn measurement_type(&self) -> &str {
        let b = self
            .measurement_type
            .get(..usize::from(self.measurement_type_len))
            .unwrap_or_default();
        core::str::from_utf8(b).unwrap_or("")
    }
}

/// The attestation service's state: the IAK and the claims fixed at boot.
pub(crate) struct Attestation {
    /// The IAK's private scalar (wiped on drop).
    iak: Zeroizing<[u8; kdf::KEY_LEN]>,
    iak_public: [u8; P256_PUBLIC_KEY_LEN],
    instance_id: [u8; INSTANCE_ID_LEN],
    implementation_id: [u8; 32],
    boot_seed: [u8; BOOT_SEED_LEN],
    components: [Option<BootRecordEntry>; MAX_BOOT_RECORD_ENTRIES],
    certification_reference: Option<&'static str>,
    verification_service: Option<&'static str>,
}

impl Attestation {
    /// Derives the IAK from `cdi_seal`, draws the boot seed, keeps the boot record.
    pub(crate) fn new<F, C, R: RandomSource>(
        cdi_seal: &[u8; kdf::KEY_LEN],
        implementation_id: [u8; 32],
        boot_record: &[BootRecordEntry],
        certification_reference: Option<&'static str>,
        verification_service: Option<&'static str>,
        p: &mut Platform<F, C, R>,
    ) -> Result<Self, ServiceError> {
        if boot_record.is_empty() || boot_record.len() > MAX_BOOT_RECORD_ENTRIES {
            return Err(ServiceError::InvalidArgument(
                "the boot record must hold 1 to 4 measured components",
            ));
        }
        let iak = kdf::attestation_key(cdi_seal)?;
        let iak_public: [u8; P256_PUBLIC_KEY_LEN] = crate::crypto::ecc::public_key(iak.as_slice())?;
        let mut instance_id = [0u8; INSTANCE_ID_LEN];
        let (kind, hash) = instance_id.split_at_mut(1);
        kind.copy_from_slice(&[0x01]);
        hash.copy_from_slice(&Sha256::digest(iak_public));
        let mut boot_seed = [0u8; BOOT_SEED_LEN];
        p.rng.fill(&mut boot_seed)?;
        let mut components = [None; MAX_BOOT_RECORD_ENTRIES];
        for (slot, entry) in components.iter_mut().zip(boot_record) {
            *slot = Some(*entry);
        }
        Ok(Attestation {
            iak,
            iak_public,
            instance_id,
            implementation_id,
            boot_seed,
            components,
            certification_reference,
            verification_service,
        })
    }

    pub(crate) fn public_key(&self) -> [u8; P256_PUBLIC_KEY_LEN] {
        self.iak_public
    }

    pub(crate) fn instance_id(&self) -> [u8; INSTANCE_ID_LEN] {
        self.instance_id
    }

    /// An ES256 signature (ECDSA P-256 over SHA-256 of `tbs`) with the IAK: for the
    /// detector's reports, whose own content type and domain tag keep them apart from tokens.
    #[cfg(feature = "detect")]
    pub(crate) fn sign_es256<F, C, R: RandomSource>(
        &self,
        tbs: &[u8],
        p: &mut Platform<F, C, R>,
    ) -> Result<[u8; 64], ServiceError> {
        let hash = Sha256::digest(tbs);
        sign_p256(self.iak.as_slice(), Algorithm::ECDSA_SHA_256, &hash, p)
    }

    /// Size of the token for a nonce of `nonce_len` bytes.
    pub(crate) fn token_size(
        &self,
        nonce_len: usize,
        lifecycle: u16,
    ) -> Result<usize, ServiceError> {
        let nonce = [0u8; 64];
        let nonce = nonce.get(..nonce_len).ok_or(ServiceError::InvalidArgument(
            "nonce must be 32, 48 or 64 bytes",
        ))?;
        let mut versions = [VersionText::default(); MAX_BOOT_RECORD_ENTRIES];
        let mut comps = [EMPTY_COMPONENT; MAX_BOOT_RECORD_ENTRIES];
        let n = self.fill_components(&mut versions, &mut comps);
        let claims = self.claims(nonce, lifecycle, 0, comps.get(..n).unwrap_or_default());
        Ok(token_len(&claims)?)
    }

    /// Builds and signs a token into `out`; returns its length.
    pub(crate) fn token<F, C, R: RandomSource>(
        &self,
        p: &mut Platform<F, C, R>,
        nonce: &[u8],
        lifecycle: u16,
        client_id: i32,
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        let mut versions = [VersionText::default(); MAX_BOOT_RECORD_ENTRIES];
        let mut comps = [EMPTY_COMPONENT; MAX_BOOT_RECORD_ENTRIES];
        let n = self.fill_components(&mut versions, &mut comps);
        let claims = self.claims(
            nonce,
            lifecycle,
            client_id,
            comps.get(..n).unwrap_or_default(),
        );
        let iak = &self.iak;
        let mut signer = |tbs: &[u8]| -> Result<[u8; 64], i32> {
            let hash = Sha256::digest(tbs);
            sign_p256(iak.as_slice(), Algorithm::ECDSA_SHA_256, &hash, p)
                .map_err(|e| e.psa_status())
        };
        Ok(encode_token(&claims, &mut signer, out)?)
    }

    fn claims<'a>(
        &'a self,
        nonce: &'a [u8],
        lifecycle: u16,
        client_id: i32,
        components: &'a [SwComponent<'a>],
    ) -> TokenClaims<'a> {
        TokenClaims {
            profile: Profile::Rfc9783,
            nonce,
            instance_id: &self.instance_id,
            implementation_id: &self.implementation_id,
            lifecycle,
            boot_seed: Some(&self.boot_seed),
            client_id,
            software_components: components,
            certification_reference: self.certification_reference,
            verification_service: self.verification_service,
        }
    }

    /// Fills `comps` from the boot record (versions rendered into `versions`); returns the count.
    fn fill_components<'a>(
        &'a self,
        versions: &'a mut [VersionText; MAX_BOOT_RECORD_ENTRIES],
        comps: &mut [SwComponent<'a>; MAX_BOOT_RECORD_ENTRIES],
    ) -> usize {
        let mut n = 0;
        for (entry, text) in self.components.iter().flatten().zip(versions.iter_mut()) {
            let v = entry.version;
            // Cannot overflow: the longest version is 25 bytes.
            let out: &mut dyn Sink = text;
            let _ = out.fill(
                "{}.{}.{}+{}",
                &[
                    Dec(v.major.into()),
                    Dec(v.minor.into()),
                    Dec(v.revision.into()),
                    Dec(v.build.into()),
                ],
            );
            n += 1;
        }
        for ((entry, text), comp) in self
            .components
            .iter()
            .flatten()
            .zip(versions.iter())
            .zip(comps.iter_mut())
        {
            *comp = SwComponent {
                measurement_type: Some(entry.measurement_type()),
                measurement_value: &entry.measurement_value,
                version: Some(text.as_str()),
                signer_id: &entry.signer_id,
                measurement_desc: Some("sha-256"),
            };
        }
        n
    }
}

const EMPTY_COMPONENT: SwComponent<'static> = SwComponent {
    measurement_type: None,
    measurement_value: &[],
    version: None,
    signer_id: &[],
    measurement_desc: None,
};

/// A version rendered as text without a heap ("255.255.65535+4294967295" fits).
#[derive(Clone, Copy, Default)]
struct VersionText {
    buf: [u8; 32],
    len: usize,
}

impl VersionText {
    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or("")
    }
}

impl Sink for VersionText {
    fn put(&mut self, s: &str) -> Result<(), TextError> {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(TextError::Overflow)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
