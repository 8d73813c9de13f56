//! Every text the secure partition can produce from a service error, byte for byte: each
//! error's description and the reason a refusal line prints after "refused: ", compared with
//! `tests/descriptions.txt`; each description is also written through `castellan-text` (the
//! device's route) and must equal its `Display`. The file was written from the `core::fmt` `Display` impls before
//! the descriptions moved to `castellan-text`, so a change of any word or figure fails here.
//! `UPDATE_GOLDEN=1 cargo test -p castellan-services --test descriptions` rewrites it (review
//! the diff: it is the device's output).

use castellan_attest::{Error as TokenError, ShortText};
use castellan_gate_api::{Fault, Refusal};
use castellan_hal::HalError;
use castellan_image::{Algorithm, HashAlg, ImageError, KeyType, TlvArea, Version};
use castellan_services::{ServiceError, UpdateRefusal};
use castellan_suit::{Condition, Directive, Parameter, Part, PlatformError, Section, SuitError};
use castellan_text::{Describe, TextBuf};

const GOLDEN: &str = include_str!("descriptions.txt");

fn suit_errors() -> Vec<SuitError> {
    use SuitError as S;
    let mut v = Vec::new();
    for p in [
        Part::Envelope,
        Part::AuthenticationWrapper,
        Part::Cose,
        Part::Digest,
        Part::Manifest,
        Part::Common,
        Part::Components,
        Part::Sequence,
        Part::Parameters,
        Part::Text,
    ] {
        v.push(S::Malformed(p));
        v.push(S::LimitExceeded(p));
    }
    v.extend([
        S::Unauthenticated,
        S::ManifestDigestMismatch,
        S::UnsupportedDigestAlgorithm(-44),
        S::UnsupportedDigestAlgorithm(i64::MIN),
        S::UnsupportedVersion(u64::MAX),
        S::RolledBack {
            stored: 18_446_744_073_709_551_615,
            offered: 0,
        },
    ]);
    for s in [
        Section::Shared,
        Section::PayloadFetch,
        Section::Install,
        Section::Validate,
        Section::Load,
        Section::Invoke,
        Section::Text,
        Section::Common,
    ] {
        v.push(S::SeverableDigestMismatch(s));
        v.push(S::SeveredMemberMissing(s));
        v.push(S::UnsupportedFeature(s));
        v.push(S::MissingComponentIndex(s));
    }
    v.extend([
        S::UnsupportedComponent { index: 7 },
        S::InvalidComponentIndex(4_294_967_296),
        S::UnsupportedCommand(-1),
        S::UnsupportedParameter(i64::MAX),
        S::SoftFailureNotAllowed,
    ]);
    for c in [
        Condition::VendorIdentifier,
        Condition::ClassIdentifier,
        Condition::ImageMatch,
        Condition::ComponentSlot,
        Condition::CheckContent,
        Condition::Abort,
        Condition::DeviceIdentifier,
    ] {
        v.push(S::ConditionFailed {
            condition: c,
            component: 1,
        });
    }
    let directives = [
        Directive::SetComponentIndex,
        Directive::TryEach,
        Directive::Write,
        Directive::SetParameters,
        Directive::OverrideParameters,
        Directive::Fetch,
        Directive::Copy,
        Directive::Invoke,
        Directive::Swap,
        Directive::RunSequence,
    ];
    let parameters = [
        Parameter::VendorId,
        Parameter::ClassId,
        Parameter::ImageDigest,
        Parameter::ComponentSlot,
        Parameter::StrictOrder,
        Parameter::SoftFailure,
        Parameter::ImageSize,
        Parameter::Content,
        Parameter::Uri,
        Parameter::SourceComponent,
        Parameter::InvokeArgs,
        Parameter::DeviceId,
    ];
    for (i, p) in parameters.into_iter().enumerate() {
        let d = directives[i % directives.len()];
        v.push(S::MissingParameter {
            directive: d,
            parameter: p,
            component: i,
        });
    }
    v.extend([
        S::DigestMismatch { component: 0 },
        S::SizeMismatch {
            component: 0,
            expected: 262_144,
            actual: 262_145,
        },
        S::PayloadTooLarge {
            component: 2,
            limit: 1_048_576,
        },
        S::BufferTooSmall,
    ]);
    for (i, e) in [
        PlatformError::Unsupported,
        PlatformError::FetchFailed,
        PlatformError::Storage,
        PlatformError::InvokeFailed,
        PlatformError::ContractViolation,
        PlatformError::Other(0),
        PlatformError::Other(u32::MAX),
    ]
    .into_iter()
    .enumerate()
    {
        v.push(S::Platform {
            directive: directives[i],
            component: i,
            error: e,
        });
    }
    v
}

fn image_errors() -> Vec<ImageError> {
    use ImageError as I;
    let mut v = vec![
        I::Read,
        I::TooShortForHeader { len: 31 },
        I::BadMagic { found: 0 },
        I::BadMagic { found: 0x96f3_b83c },
        I::HeaderSizeTooSmall { hdr_size: 0x1f },
        I::SizeOutOfBounds {
            end: 0x1_0000_0000,
            len: 0x400,
        },
        I::EncryptedNotSupported,
        I::ProtectedSizeMismatch {
            header: 0x10,
            info: 0,
        },
    ];
    for area in [TlvArea::Protected, TlvArea::Unprotected] {
        v.extend([
            I::BadTlvInfoMagic { area, found: 0x12 },
            I::TlvAreaTooSmall { area, len: 3 },
            I::TlvOutOfBounds {
                area,
                offset: 0xffff_ffff,
            },
            I::UnknownTlv { area, kind: 0xabcd },
            I::TlvInWrongArea {
                kind: 0x50,
                found: area,
            },
        ]);
    }
    v.extend([
        I::DuplicateTlv { kind: 0x10 },
        I::BadTlvLength {
            kind: 0x22,
            len: 65,
        },
        I::UnsupportedTlv { kind: 0 },
        I::TooManyDependencies,
        I::MissingHash,
        I::HashMismatch,
        I::MissingKey,
        I::KeyMismatch,
        I::MissingSignature,
        I::AlgorithmMismatch,
        I::BadSignature,
        I::BadPublicKey,
        I::BadTrailer,
        I::TooLargeForSlot {
            needed: 0x4_0001,
            slot_size: 0x4_0000,
        },
    ]);
    for a in [
        Algorithm::Signature(KeyType::Ed25519),
        Algorithm::Signature(KeyType::EcdsaP256),
        Algorithm::Signature(KeyType::EcdsaP384),
        Algorithm::Hash(HashAlg::Sha256),
        Algorithm::Hash(HashAlg::Sha384),
        Algorithm::Hash(HashAlg::Sha512),
    ] {
        v.push(I::UnsupportedAlgorithm(a));
    }
    v
}

fn token_errors() -> Vec<TokenError> {
    use TokenError as T;
    let long = ShortText::new(&"ü".repeat(40));
    let mut v = vec![
        T::BufferTooSmall {
            needed: 600,
            available: 512,
        },
        T::InvalidNonceLength(0),
        T::InvalidClaim("the boot seed"),
        T::UnsupportedProfile,
        T::SignerFailed(-135),
        T::SignerFailed(i32::MIN),
        T::Malformed("claims"),
        T::MissingClaim("nonce"),
        T::UnsupportedAlgorithm(-7),
        T::UnsupportedAlgorithm(i64::MIN),
        T::KeyMismatch,
        T::InvalidKey("not a P-256 point"),
        T::BadSignature,
        T::NonceMismatch,
        T::UnknownProfile(ShortText::new("tag:example.com,2025:x")),
        T::UnknownProfile(long),
        T::ImplementationIdMismatch,
    ];
    for found in [
        0x0000, 0x1000, 0x2000, 0x3000, 0x3001, 0x4000, 0x5000, 0x6000, 0xffff,
    ] {
        v.push(T::LifecycleNotAllowed { found });
    }
    for c in [ShortText::new("BL"), ShortText::index(3), long] {
        v.extend([
            T::UnexpectedMeasurement { component: c },
            T::UnexpectedSigner { component: c },
            T::VersionTooOld { component: c },
            T::MissingComponent { component: c },
            T::UnknownComponent { component: c },
        ]);
    }
    v
}

fn update_refusals() -> Vec<UpdateRefusal> {
    use UpdateRefusal as U;
    let mut v = vec![
        U::NoTrustAnchor,
        U::EnvelopeTooLarge {
            len: 4097,
            max: 4096,
        },
        U::NotNewer {
            offered: 3,
            installed: 5,
        },
        U::NotNewer {
            offered: u64::MAX,
            installed: u64::MAX,
        },
        U::OlderThanPending {
            offered: 9,
            pending: 10,
        },
        U::Expired {
            expires: 1_700_000_000,
            now: 1_800_000_000,
        },
        U::NoImageSize,
        U::NoImageDigest,
        U::ImageTooLarge {
            size: 10_000_000_000,
            max: 262_144,
        },
        U::EndlessData {
            image_size: 1000,
            end: 1024,
        },
        U::OutOfOrder {
            expected: 1024,
            offset: 4096,
        },
        U::Incomplete {
            received: 0,
            image_size: 1,
        },
        U::NothingInProgress,
        U::InstallInProgress,
    ];
    v.extend(suit_errors().into_iter().map(U::Manifest));
    v
}

fn service_errors() -> Vec<ServiceError> {
    use ServiceError as E;
    let mut v = vec![
        E::InvalidArgument("key id 0"),
        E::NotPermitted("the key may not sign"),
        E::NotSupported("key type"),
        E::DoesNotExist,
        E::AlreadyExists,
        E::BufferTooSmall { needed: 64 },
        E::BadState("no update staged"),
        E::AssetTooLarge {
            size: 2049,
            max: 2048,
        },
        E::TooManyAssets { max: 32 },
        E::StorageFull,
        E::KeySlotsFull,
        E::CounterExhausted,
        E::InvalidSignature,
        E::StorageCorrupt("record tag"),
        E::StorageRollback {
            stored: 7,
            hardware: u32::MAX,
        },
        E::StorageKeyInvalid,
        E::Crypto("AES-GCM"),
    ];
    v.extend(
        [
            HalError::NotAligned,
            HalError::OutOfBounds,
            HalError::NotErased,
            HalError::PowerLoss,
            HalError::WouldClearBit,
            HalError::Locked,
            HalError::Rollback,
            HalError::CounterExhausted,
            HalError::UdsLocked,
            HalError::RngFailure,
            HalError::Hardware,
        ]
        .map(E::Hardware),
    );
    v.extend(token_errors().into_iter().map(E::Token));
    v.extend(image_errors().into_iter().map(E::CandidateRejected));
    v.extend(update_refusals().into_iter().map(E::UpdateRefused));
    v
}

/// `value`'s description written as the secure partition writes it.
fn described(value: &dyn Describe) -> String {
    let mut buf = [0u8; 512];
    let mut t = TextBuf::new(&mut buf);
    value
        .describe(&mut t)
        .expect("a description fits 512 bytes");
    t.as_str().to_owned()
}

/// The text of every case: the description, the refusal reason and the refusal record's text.
fn texts() -> String {
    let mut out = String::new();
    for e in service_errors() {
        let text = e.to_string();
        // The device's route: `Describe` into a fixed buffer, no `core::fmt`.
        assert_eq!(described(&e), text, "{e:?}");
        let reason = described(e.reason());
        out.push_str(&format!("{text}\n  reason: {reason}\n"));
        let r = Refusal::of(&e);
        out.push_str(&format!("  record: {} | {}\n", r.text(), r.reason()));
    }
    for v in [
        Version {
            major: 0,
            minor: 0,
            revision: 0,
            build: 0,
        },
        Version {
            major: 255,
            minor: 255,
            revision: 65535,
            build: u32::MAX,
        },
    ] {
        assert_eq!(described(&v), v.to_string());
        out.push_str(&format!("version: {v}\n"));
    }
    out
}

#[test]
fn every_description_is_unchanged() {
    let now = texts();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/descriptions.txt");
        std::fs::write(path, &now).expect("write the golden file");
        return;
    }
    for (i, (a, b)) in now.lines().zip(GOLDEN.lines()).enumerate() {
        assert_eq!(a, b, "line {} of tests/descriptions.txt", i + 1);
    }
    assert_eq!(now.lines().count(), GOLDEN.lines().count());
    assert_eq!(now, GOLDEN);
}
