//! One named test per tampering of a signed image: each must be refused with the error that
//! names it, for both signature algorithms.

// Signing needs `std` (which brings every algorithm); tests/algorithms.rs covers the rest.
#![cfg(feature = "std")]

mod common;

use castellan_image::tlv::kind;
use castellan_image::{ImageError, KeyType, TlvArea, TrustedKey, verify};
use common::*;

const ALGS: [KeyType; 3] = [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::EcdsaP384];

fn check(img: &[u8], k: &castellan_image::SigningKey) -> Result<(), ImageError> {
    let spki = k.public_spki_der();
    verify(&mut &img[..], TrustedKey::Spki(&spki)).map(|_| ())
}

#[test]
fn untampered_image_verifies_with_every_algorithm() {
    for t in ALGS {
        let k = key(t);
        let img = signed(&k, 3000);
        let spki = k.public_spki_der();
        let v = verify(&mut &img[..], TrustedKey::Spki(&spki)).unwrap();
        assert_eq!(v.key_type, t);
        assert_eq!(v.security_counter, Some(7));
        assert_eq!(v.version().to_string(), "1.2.3+4");
        assert_eq!(v.signer_id, castellan_image::signer_id(&spki));
    }
}

#[test]
fn attack_flipped_payload_byte_refused() {
    for t in ALGS {
        let k = key(t);
        let mut img = signed(&k, 3000);
        img[0x200 + 1500] ^= 0x01;
        assert_eq!(check(&img, &k), Err(ImageError::HashMismatch), "{t}");
    }
}

#[test]
fn attack_flipped_header_byte_refused() {
    let k = key(KeyType::Ed25519);
    let mut img = signed(&k, 100);
    img[20] ^= 0x01; // version major: a "newer" version without a new signature
    assert_eq!(check(&img, &k), Err(ImageError::HashMismatch));
}

#[test]
fn attack_flipped_signature_byte_refused() {
    for (t, sig_kind) in [
        (KeyType::Ed25519, kind::ED25519),
        (KeyType::EcdsaP256, kind::ECDSA_SIG),
        (KeyType::EcdsaP384, kind::ECDSA_SIG),
    ] {
        let k = key(t);
        let img = signed(&k, 3000);
        let (off, len) = find_tlv(&img, sig_kind);
        // Flip a byte inside the signature value (past the DER header for ECDSA).
        let mut bad = img.clone();
        bad[off + len - 5] ^= 0x40;
        assert_eq!(check(&bad, &k), Err(ImageError::BadSignature), "{t}");
    }
}

#[test]
fn attack_wrong_key_refused() {
    for t in ALGS {
        let k = key(t);
        let other = key(t);
        let img = signed(&k, 3000);
        assert_eq!(check(&img, &other), Err(ImageError::KeyMismatch), "{t}");
    }
}

#[test]
fn attack_key_of_other_algorithm_refused() {
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    assert_eq!(
        check(&img, &key(KeyType::EcdsaP256)),
        Err(ImageError::KeyMismatch)
    );
}

#[test]
fn attack_truncated_file_refused_at_every_length() {
    let k = key(KeyType::EcdsaP256);
    let img = signed(&k, 700);
    for n in 0..img.len() {
        let r = check(&img[..n], &k);
        assert!(r.is_err(), "truncated to {n} bytes was accepted");
    }
    assert_eq!(
        check(&img[..10], &k),
        Err(ImageError::TooShortForHeader { len: 10 })
    );
    assert!(matches!(
        check(&img[..0x200 + 500], &k),
        Err(ImageError::SizeOutOfBounds { .. })
    ));
}

#[test]
fn attack_tlv_length_running_past_the_end_refused() {
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    let (off, _) = find_tlv(&img, kind::ED25519);
    let mut bad = img.clone();
    // The signature TLV's length field sits 2 bytes before its value.
    bad[off - 2..off].copy_from_slice(&0x4000u16.to_le_bytes());
    assert!(matches!(
        check(&bad, &k),
        Err(ImageError::TlvOutOfBounds {
            area: TlvArea::Unprotected,
            ..
        })
    ));
    // And the area length itself running past the end of the file.
    let l = layout(&img);
    let mut bad = img.clone();
    let s = l.unprotected.start as usize;
    bad[s + 2..s + 4].copy_from_slice(&0xfff0u16.to_le_bytes());
    assert!(matches!(
        check(&bad, &k),
        Err(ImageError::TlvOutOfBounds { .. })
    ));
}

#[test]
fn attack_image_size_pointing_past_the_end_refused() {
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    let mut bad = img.clone();
    bad[12..16].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(matches!(
        check(&bad, &k),
        Err(ImageError::SizeOutOfBounds { .. })
    ));
}

#[test]
fn attack_header_size_pointing_past_the_end_refused() {
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    let mut bad = img.clone();
    bad[8..10].copy_from_slice(&0xfff0u16.to_le_bytes());
    assert!(matches!(
        check(&bad, &k),
        Err(ImageError::SizeOutOfBounds { .. })
    ));
    bad[8..10].copy_from_slice(&0x10u16.to_le_bytes());
    assert_eq!(
        check(&bad, &k),
        Err(ImageError::HeaderSizeTooSmall { hdr_size: 0x10 })
    );
}

#[test]
fn attack_lying_protected_tlv_size_refused() {
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    let real = u16::from_le_bytes([img[10], img[11]]);
    assert_eq!(real, 12, "SEC_CNT area: info 4 + TLV 8");
    for lie in [4u16, 8, 16, 20] {
        let mut bad = img.clone();
        bad[10..12].copy_from_slice(&lie.to_le_bytes());
        let r = check(&bad, &k);
        assert!(r.is_err(), "lie {lie} accepted");
    }
    let mut bad = img.clone();
    bad[10..12].copy_from_slice(&20u16.to_le_bytes());
    assert!(matches!(
        check(&bad, &k),
        Err(ImageError::ProtectedSizeMismatch {
            header: 20,
            info: 12
        } | ImageError::BadTlvInfoMagic { .. })
    ));
    // The protected area's own length lying while the header tells the truth.
    let l = layout(&img);
    let p = l.protected.unwrap().start as usize;
    let mut bad = img.clone();
    bad[p + 2..p + 4].copy_from_slice(&8u16.to_le_bytes());
    assert_eq!(
        check(&bad, &k),
        Err(ImageError::ProtectedSizeMismatch {
            header: 12,
            info: 8
        })
    );
}

#[test]
fn attack_duplicate_signature_tlv_refused() {
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    let (off, len) = find_tlv(&img, kind::ED25519);
    let sig = img[off..off + len].to_vec();
    let bad = append_unprotected_tlv(&img, kind::ED25519, &sig);
    assert_eq!(
        check(&bad, &k),
        Err(ImageError::DuplicateTlv {
            kind: kind::ED25519
        })
    );
}

#[test]
fn attack_duplicate_hash_tlv_refused() {
    let k = key(KeyType::EcdsaP256);
    let img = signed(&k, 300);
    let bad = append_unprotected_tlv(&img, kind::SHA256, &[0u8; 32]);
    assert_eq!(
        check(&bad, &k),
        Err(ImageError::DuplicateTlv { kind: kind::SHA256 })
    );
}

#[test]
fn attack_unknown_tlv_refused() {
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    let bad = append_unprotected_tlv(&img, 0x99, b"evil");
    assert_eq!(
        check(&bad, &k),
        Err(ImageError::UnknownTlv {
            area: TlvArea::Unprotected,
            kind: 0x99
        })
    );
    // Vendor TLVs are only trusted where the signature covers them.
    let bad = append_unprotected_tlv(&img, 0x00a5, b"vendor");
    assert_eq!(
        check(&bad, &k),
        Err(ImageError::UnknownTlv {
            area: TlvArea::Unprotected,
            kind: 0xa5
        })
    );
}

#[test]
fn attack_security_counter_in_unprotected_area_refused() {
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    // An attacker adds a high security counter where the signature does not cover it.
    let bad = append_unprotected_tlv(&img, kind::SEC_CNT, &1000u32.to_le_bytes());
    assert_eq!(
        check(&bad, &k),
        Err(ImageError::TlvInWrongArea {
            kind: kind::SEC_CNT,
            found: TlvArea::Unprotected
        })
    );
}

#[test]
fn attack_hash_tlv_that_does_not_match_refused() {
    for t in ALGS {
        let k = key(t);
        let img = signed(&k, 300);
        let hash_kind = if t == KeyType::EcdsaP384 {
            kind::SHA384
        } else {
            kind::SHA256
        };
        let (off, _) = find_tlv(&img, hash_kind);
        let mut bad = img.clone();
        bad[off] ^= 0xff;
        assert_eq!(check(&bad, &k), Err(ImageError::HashMismatch), "{t}");
    }
}

#[test]
fn attack_bad_magic_refused() {
    let k = key(KeyType::Ed25519);
    let mut img = signed(&k, 300);
    img[0] = 0;
    assert!(matches!(check(&img, &k), Err(ImageError::BadMagic { .. })));
}

#[test]
fn attack_key_hash_only_device_rejects_image_without_full_key() {
    // A device holding only the hash of its key (OTP) needs the PUBKEY TLV.
    let k = key(KeyType::Ed25519);
    let img = signed(&k, 300);
    let h = castellan_image::signer_id(&k.public_spki_der());
    assert_eq!(
        verify(&mut &img[..], TrustedKey::Sha256OfSpki(h)).err(),
        Some(ImageError::MissingKey)
    );
}

#[test]
fn key_hash_only_device_accepts_image_with_full_key() {
    let k = key(KeyType::EcdsaP256);
    let opts = castellan_image::SignOptions {
        header_size: 0x20,
        pad_header: true,
        public_key_format: castellan_image::PublicKeyFormat::Full,
        ..Default::default()
    };
    let img = castellan_image::sign_image(b"payload", &k, &opts).unwrap();
    let h = castellan_image::signer_id(&k.public_spki_der());
    assert!(verify(&mut &img[..], TrustedKey::Sha256OfSpki(h)).is_ok());
    let other = castellan_image::signer_id(&key(KeyType::EcdsaP256).public_spki_der());
    assert_eq!(
        verify(&mut &img[..], TrustedKey::Sha256OfSpki(other)).err(),
        Some(ImageError::KeyMismatch)
    );
}
