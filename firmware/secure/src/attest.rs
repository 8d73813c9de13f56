//! Initial attestation: the attestation key and PSA tokens (RFC 9783) over the boot record.
//!
//! The key is an ECDSA P-256 key derived at each boot from the DICE CDI_Attest the bootloader
//! handed over (HKDF-SHA256, label below): it changes whenever the measured bootloader or
//! image changes, and it never leaves the secure partition. The token's software components
//! are the hand-off measurements (bootloader "BL", combined image "SPE+NSPE"); its
//! implementation id is the SHA-256 of the ROM window (the immutable PSA RoT code).

use castellan_attest::{Profile, SwComponent, TokenClaims, encode_token};
use castellan_gate::status;
use castellan_platform_an505::handoff::MeasurementRecord;
use castellan_platform_an505::map::ROM_BASE;
use hkdf::Hkdf;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroize;

use crate::state::Services;

/// HKDF info of the attestation key derivation.
const KEY_LABEL: &[u8] = b"castellan attestation key p256 v1";
/// Size of the ROM window hashed into the implementation id.
pub const ROM_WINDOW: u32 = 0x4_0000;

/// The attestation key and what names it.
pub struct AttestationKey {
    signing: SigningKey,
    /// SEC1 uncompressed public key.
    pub public: [u8; 65],
    /// Instance id: 0x01 ‖ SHA-256(public key).
    pub instance_id: [u8; 33],
    /// Implementation id: SHA-256 of the ROM window.
    pub implementation_id: [u8; 32],
}

impl AttestationKey {
    /// Derives the key from CDI_Attest.
    pub fn derive(cdi_attest: &[u8; 32]) -> Option<Self> {
        let hk = Hkdf::<Sha256>::new(Some(b"castellan"), cdi_attest);
        let mut seed = [0u8; 32];
        let mut signing = None;
        for counter in 0u8..8 {
            let info = [KEY_LABEL, &[counter]];
            hk.expand_multi_info(&info, &mut seed).ok()?;
            if let Ok(k) = SigningKey::from_slice(&seed) {
                signing = Some(k);
                break;
            }
        }
        seed.zeroize();
        let signing = signing?;
        let point = signing.verifying_key().to_sec1_point(false);
        let mut public = [0u8; 65];
        if point.as_bytes().len() != public.len() {
            return None;
        }
        public.copy_from_slice(point.as_bytes());
        let mut instance_id = [0u8; 33];
        instance_id[0] = 0x01;
        instance_id[1..].copy_from_slice(&Sha256::digest(public));
        // Safety: the ROM window is secure code SRAM, loaded by QEMU and never written.
        let rom = unsafe { core::slice::from_raw_parts(ROM_BASE as *const u8, ROM_WINDOW as usize) };
        let implementation_id = Sha256::digest(rom).into();
        Some(AttestationKey {
            signing,
            public,
            instance_id,
            implementation_id,
        })
    }

    fn sign(&self, tbs: &[u8]) -> Result<[u8; 64], i32> {
        let digest = Sha256::digest(tbs);
        let sig: Signature = self
            .signing
            .sign_prehash(&digest)
            .map_err(|_| status::GENERIC_ERROR)?;
        Ok(sig.to_bytes().into())
    }
}

/// "major.minor.revision" of a measurement, into `buf`.
fn version_text<'a>(m: &MeasurementRecord, buf: &'a mut [u8; 24]) -> &'a str {
    struct W<'b>(&'b mut [u8; 24], usize);
    impl core::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            let d = self.0.get_mut(self.1..end).ok_or(core::fmt::Error)?;
            d.copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    let [major, minor, revision, _] = m.version;
    let mut w = W(buf, 0);
    let _ = core::fmt::write(&mut w, format_args!("{major}.{minor}.{revision}"));
    let n = w.1;
    core::str::from_utf8(buf.get(..n).unwrap_or(&[])).unwrap_or("")
}

/// Encodes and signs a token over `nonce` into `out`; returns its length.
pub fn token(s: &Services, nonce: &[u8], out: &mut [u8]) -> Result<usize, i32> {
    let records = s.boot.measurements();
    let mut versions = [[0u8; 24]; 4];
    let mut components: [Option<SwComponent<'_>>; 4] = [None; 4];
    for ((slot, m), vbuf) in components.iter_mut().zip(records).zip(versions.iter_mut()) {
        *slot = Some(SwComponent {
            measurement_type: Some(m.sw_type()),
            measurement_value: &m.digest,
            version: Some(version_text(m, vbuf)),
            signer_id: &m.signer_id,
            measurement_desc: Some("sha-256"),
        });
    }
    let mut list = [SwComponent {
        measurement_type: None,
        measurement_value: &[],
        version: None,
        signer_id: &[],
        measurement_desc: None,
    }; 4];
    let mut n = 0;
    for (d, c) in list.iter_mut().zip(components.iter().flatten()) {
        *d = *c;
        n += 1;
    }
    let claims = TokenClaims {
        profile: Profile::Rfc9783,
        nonce,
        instance_id: &s.key.instance_id,
        implementation_id: &s.key.implementation_id,
        lifecycle: s.boot.lifecycle as u16,
        boot_seed: Some(&s.boot_seed),
        client_id: -1,
        software_components: list.get(..n).unwrap_or(&[]),
        certification_reference: None,
        verification_service: None,
    };
    let mut signer = |tbs: &[u8]| s.key.sign(tbs);
    encode_token(&claims, &mut signer, out).map_err(|e| match e {
        castellan_attest::Error::BufferTooSmall { .. } => status::BUFFER_TOO_SMALL,
        castellan_attest::Error::InvalidNonceLength(_) => status::INVALID_ARGUMENT,
        _ => status::GENERIC_ERROR,
    })
}
