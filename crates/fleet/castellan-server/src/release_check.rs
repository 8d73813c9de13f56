//! What the server verifies about an uploaded release before storing it, independently of the
//! fleet's state (the API handler adds the checks against the registry and earlier releases).
//!
//! ```text
//!  envelope ─▶ castellan_suit::authenticate(release trust anchor)        (COSE_Sign1, digest)
//!           ─▶ not expired (castellan-expires, when present)
//!           ─▶ one component ["castellan", "app"]
//!           ─▶ the SUIT processor, the very one devices run, over the uploaded image with a
//!              checking Platform: vendor id and class id conditions, fetch (digest + size while
//!              streaming, commit), image-match; every one must have run and passed
//!  image    ─▶ castellan_image::verify with the key its PUBKEY TLV embeds
//!              → MCUboot measurement digest, signer id, version, security counter
//! ```
//!
//! Running the processor rather than reading parameters out of the manifest means the server
//! accepts exactly what a device of the class would accept from these bytes: a manifest whose
//! shared sequence skips the class check, overrides the digest later, or fetches another
//! payload cannot pass here and fail (or worse, pass) on the devices.

use std::cell::RefCell;

use castellan_suit::{
    Command, Component, ComponentId, Condition, Identifier, Platform, PlatformError, Procedure,
    Processor, Record, SuitError, TrustAnchor,
};
use sha2::{Digest as _, Sha256};

/// The SUIT component every release installs: the application's update slot.
pub(crate) const APP_COMPONENT: [&[u8]; 2] = [b"castellan", b"app"];

/// Why an uploaded release was refused (the operator API answers 422 with the text).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseRefusal {
    /// The stored release trust anchor is not a P-256 key.
    #[error("the stored release trust anchor is not a P-256 key")]
    Anchor,
    /// The envelope does not authenticate with the release trust anchor.
    #[error("the manifest does not authenticate with the release trust anchor: {0}")]
    NotAuthenticated(SuitError),
    /// The `castellan-expires` parameter is malformed.
    #[error("the manifest's expiry (castellan-expires) is malformed: {0}")]
    BadExpiry(SuitError),
    /// The manifest expired.
    #[error("the release expired at {at} (now {now}): devices refuse it")]
    Expired {
        /// Its expiry (Unix seconds).
        at: u64,
        /// Now (Unix seconds).
        now: i64,
    },
    /// The manifest does not name exactly the application component.
    #[error("the manifest must name exactly one component, [\"castellan\", \"app\"]")]
    Components,
    /// The vendor-id condition failed.
    #[error("the manifest's vendor id {seen} is not the fleet's ({expected}, vendor {vendor:?})")]
    Vendor {
        /// The manifest's vendor id, hex.
        seen: String,
        /// The fleet's, hex.
        expected: String,
        /// The fleet's vendor name.
        vendor: String,
    },
    /// The class-id condition failed.
    #[error("the manifest's class id {seen} is not the id of class {class} ({expected})")]
    Class {
        /// The manifest's class id, hex.
        seen: String,
        /// The class.
        class: String,
        /// The class's id, hex.
        expected: String,
    },
    /// The manifest has a device-id condition.
    #[error("the manifest is for one device (device-id condition): a release is for a class")]
    OneDevice,
    /// The image's digest is not the manifest's.
    #[error("the manifest's image digest is not the image's SHA-256 ({sha256}): {error}")]
    Digest {
        /// The image's SHA-256, hex.
        sha256: String,
        /// What the processor said.
        error: SuitError,
    },
    /// The image's size is not the manifest's.
    #[error("the manifest's image size {expected} is not the image's ({size} bytes)")]
    Size {
        /// The manifest's size.
        expected: u64,
        /// The image's.
        size: usize,
    },
    /// The processor refused for another reason.
    #[error("the manifest cannot be applied to the image: {0}")]
    Apply(SuitError),
    /// No vendor-id condition ran.
    #[error("the manifest does not check the vendor id")]
    NoVendorCheck,
    /// No class-id condition ran.
    #[error("the manifest does not check the class id")]
    NoClassCheck,
    /// The manifest does not install the uploaded image.
    #[error("the manifest does not install the uploaded image (SHA-256 {sha256}, {size} bytes)")]
    NotInstalled {
        /// The image's SHA-256, hex.
        sha256: String,
        /// The image's size.
        size: usize,
    },
    /// No image-match condition ran.
    #[error("the manifest does not check the image digest (image-match)")]
    NoImageMatch,
    /// The image does not verify with the key it embeds.
    #[error(transparent)]
    Image(castellan_release::ReleaseError),
}

impl ReleaseRefusal {
    /// The stable machine code of the refusal (API answer, audit log).
    pub fn code(&self) -> &'static str {
        match self {
            ReleaseRefusal::Anchor => "release.anchor_unusable",
            ReleaseRefusal::NotAuthenticated(_) => "release.not_authenticated",
            ReleaseRefusal::BadExpiry(_) => "release.bad_expiry",
            ReleaseRefusal::Expired { .. } => "release.expired",
            ReleaseRefusal::Components => "release.components",
            ReleaseRefusal::Vendor { .. } => "release.wrong_vendor",
            ReleaseRefusal::Class { .. } => "release.wrong_class",
            ReleaseRefusal::OneDevice => "release.for_one_device",
            ReleaseRefusal::Digest { .. } => "release.digest_mismatch",
            ReleaseRefusal::Size { .. } => "release.size_mismatch",
            ReleaseRefusal::Apply(_) => "release.not_applicable",
            ReleaseRefusal::NoVendorCheck => "release.no_vendor_check",
            ReleaseRefusal::NoClassCheck => "release.no_class_check",
            ReleaseRefusal::NotInstalled { .. } => "release.not_installed",
            ReleaseRefusal::NoImageMatch => "release.no_image_match",
            ReleaseRefusal::Image(_) => "release.image_unverified",
        }
    }
}

/// What the checks established about a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckedRelease {
    /// The manifest's sequence number.
    pub(crate) sequence: u64,
    /// SHA-256 of the image file.
    pub(crate) image_sha256: [u8; 32],
    /// The MCUboot hash (header, payload, protected TLVs): what the bootloader measures.
    pub(crate) measurement: [u8; 32],
    /// SHA-256 of the image key's SubjectPublicKeyInfo.
    pub(crate) signer_id: [u8; 32],
    /// The image version, `major.minor.revision+build`.
    pub(crate) image_version: String,
    /// The image's security counter (0 without one).
    pub(crate) security_counter: u32,
    /// When the manifest expires (Unix seconds), if it does.
    pub(crate) expires: Option<u64>,
}

/// Check `envelope` and `image` for devices of `device_class` of vendor `vendor`, with the
/// release trust anchor `anchor_sec1`, at time `now` (Unix seconds).
pub(crate) fn check_release(
    anchor_sec1: &[u8],
    vendor: &str,
    device_class: &str,
    image: &[u8],
    envelope: &[u8],
    now: i64,
) -> Result<CheckedRelease, ReleaseRefusal> {
    let anchor = TrustAnchor::p256_from_sec1(anchor_sec1).ok_or(ReleaseRefusal::Anchor)?;
    let manifest = castellan_suit::authenticate(envelope, &[anchor])
        .map_err(ReleaseRefusal::NotAuthenticated)?;
    let expires = manifest.expires().map_err(ReleaseRefusal::BadExpiry)?;
    if let Some(at) = expires
        && i64::try_from(at).is_ok_and(|at| at <= now)
    {
        return Err(ReleaseRefusal::Expired { at, now });
    }
    let only_app = manifest.component_count() == 1
        && manifest
            .component_id(0)
            .is_some_and(|id| id.is(&APP_COMPONENT));
    if !only_app {
        return Err(ReleaseRefusal::Components);
    }
    let vendor_id = castellan_suit::ids::vendor_id(vendor);
    let class_id = castellan_suit::ids::class_id(&vendor_id, device_class);
    let mut platform = CheckingPlatform::new(image, &vendor_id, &class_id);
    let processed = Processor::new(&mut platform, 0).process(&manifest, Procedure::Update);
    let checks = platform.verdict(processed, device_class, vendor, &vendor_id, &class_id);
    checks?;
    let facts = image_facts(image)?;
    Ok(CheckedRelease {
        sequence: manifest.sequence_number(),
        expires,
        ..facts
    })
}

/// Verify the MCUboot image with the key it embeds and read its measurement (the same reading
/// the release tool makes: `castellan_release::image_facts`).
fn image_facts(image: &[u8]) -> Result<CheckedRelease, ReleaseRefusal> {
    let facts = castellan_release::image_facts(image).map_err(ReleaseRefusal::Image)?;
    Ok(CheckedRelease {
        sequence: 0,
        image_sha256: facts.file_sha256,
        measurement: facts.measurement,
        signer_id: facts.signer_id,
        image_version: facts.version.to_string(),
        security_counter: facts.security_counter,
        expires: None,
    })
}

/// A device stand-in for the processor: it has the one component, belongs to the expected
/// vendor and class, fetches from the uploaded image, and remembers what happened.
struct CheckingPlatform<'a> {
    image: &'a [u8],
    vendor_id: &'a [u8; 16],
    class_id: &'a [u8; 16],
    written: Vec<u8>,
    committed: Option<u64>,
    vendor_seen: RefCell<Option<Vec<u8>>>,
    class_seen: RefCell<Option<Vec<u8>>>,
    device_condition: bool,
    passed: Vec<Condition>,
    fetched: bool,
}

impl<'a> CheckingPlatform<'a> {
    fn new(image: &'a [u8], vendor_id: &'a [u8; 16], class_id: &'a [u8; 16]) -> Self {
        CheckingPlatform {
            image,
            vendor_id,
            class_id,
            written: Vec::new(),
            committed: None,
            vendor_seen: RefCell::new(None),
            class_seen: RefCell::new(None),
            device_condition: false,
            passed: Vec::new(),
            fetched: false,
        }
    }

    /// The refusal, if any, after the processor ran.
    fn verdict(
        &self,
        processed: Result<(), SuitError>,
        device_class: &str,
        vendor: &str,
        vendor_id: &[u8; 16],
        class_id: &[u8; 16],
    ) -> Result<(), ReleaseRefusal> {
        let size = self.image.len();
        let sha256 = || hex::encode(Sha256::digest(self.image));
        let seen =
            |id: &RefCell<Option<Vec<u8>>>| hex::encode(id.borrow().as_deref().unwrap_or_default());
        if let Err(e) = processed {
            return Err(match e {
                SuitError::ConditionFailed {
                    condition: Condition::VendorIdentifier,
                    ..
                } => ReleaseRefusal::Vendor {
                    seen: seen(&self.vendor_seen),
                    expected: hex::encode(vendor_id),
                    vendor: vendor.to_string(),
                },
                SuitError::ConditionFailed {
                    condition: Condition::ClassIdentifier,
                    ..
                } => ReleaseRefusal::Class {
                    seen: seen(&self.class_seen),
                    class: device_class.to_string(),
                    expected: hex::encode(class_id),
                },
                SuitError::ConditionFailed {
                    condition: Condition::DeviceIdentifier,
                    ..
                } => ReleaseRefusal::OneDevice,
                SuitError::DigestMismatch { .. }
                | SuitError::ConditionFailed {
                    condition: Condition::ImageMatch,
                    ..
                } => ReleaseRefusal::Digest {
                    sha256: sha256(),
                    error: e,
                },
                SuitError::SizeMismatch { expected, .. } => ReleaseRefusal::Size { expected, size },
                SuitError::PayloadTooLarge { limit, .. } => ReleaseRefusal::Size {
                    expected: limit,
                    size,
                },
                other => ReleaseRefusal::Apply(other),
            });
        }
        if self.device_condition {
            return Err(ReleaseRefusal::OneDevice);
        }
        if !self.passed.contains(&Condition::VendorIdentifier) {
            return Err(ReleaseRefusal::NoVendorCheck);
        }
        if !self.passed.contains(&Condition::ClassIdentifier) {
            return Err(ReleaseRefusal::NoClassCheck);
        }
        if !self.fetched || self.committed != Some(size as u64) || self.written != self.image {
            return Err(ReleaseRefusal::NotInstalled {
                sha256: sha256(),
                size,
            });
        }
        if !self.passed.contains(&Condition::ImageMatch) {
            return Err(ReleaseRefusal::NoImageMatch);
        }
        Ok(())
    }
}

impl Platform for CheckingPlatform<'_> {
    fn has_component(&self, id: &ComponentId<'_>) -> bool {
        id.is(&APP_COMPONENT)
    }

    fn identifier_matches(&self, _component: &Component<'_>, id: Identifier<'_>) -> bool {
        match id {
            Identifier::VendorUuid(v) => {
                *self.vendor_seen.borrow_mut() = Some(v.to_vec());
                v == self.vendor_id
            }
            Identifier::Class(c) => {
                *self.class_seen.borrow_mut() = Some(c.to_vec());
                c == self.class_id
            }
            Identifier::VendorPen(_) | Identifier::Device(_) => false,
        }
    }

    fn capacity(&self, _component: &Component<'_>) -> u64 {
        // No slot limit here: the manifest's image size is what the payload is held to (and the
        // uploaded image is all a fetch can return).
        u64::MAX
    }

    fn read_component(
        &mut self,
        _component: &Component<'_>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, PlatformError> {
        if self.committed.is_none() {
            return Ok(0);
        }
        copy_from(&self.written, offset, buf)
    }

    fn begin_write(&mut self, _component: &Component<'_>) -> Result<(), PlatformError> {
        self.written.clear();
        self.committed = None;
        Ok(())
    }

    fn write_component(
        &mut self,
        _component: &Component<'_>,
        offset: u64,
        data: &[u8],
    ) -> Result<(), PlatformError> {
        if offset != self.written.len() as u64 {
            return Err(PlatformError::Storage);
        }
        self.written.extend_from_slice(data);
        Ok(())
    }

    fn commit_write(&mut self, _component: &Component<'_>, len: u64) -> Result<(), PlatformError> {
        self.committed = Some(len);
        Ok(())
    }

    fn abort_write(&mut self, _component: &Component<'_>) {
        self.written.clear();
        self.committed = None;
    }

    fn fetch(&mut self, _uri: &str, offset: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        self.fetched = true;
        copy_from(self.image, offset, buf)
    }

    fn invoke(
        &mut self,
        _component: &Component<'_>,
        _args: Option<&[u8]>,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Unsupported)
    }

    fn record(&mut self, record: &Record) {
        if let Command::Condition(c) = record.command {
            if c == Condition::DeviceIdentifier {
                self.device_condition = true;
            }
            if record.result.is_ok() {
                self.passed.push(c);
            }
        }
    }
}

/// Copy `src[offset..]` into `buf`; 0 at the end.
fn copy_from(src: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
    let start = usize::try_from(offset).map_err(|_| PlatformError::FetchFailed)?;
    let rest = src.get(start..).unwrap_or_default();
    let n = rest.len().min(buf.len());
    buf.get_mut(..n)
        .ok_or(PlatformError::ContractViolation)?
        .copy_from_slice(rest.get(..n).unwrap_or_default());
    Ok(n)
}
