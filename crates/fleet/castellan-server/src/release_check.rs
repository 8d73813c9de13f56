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
/// release trust anchor `anchor_sec1`, at time `now` (Unix seconds). `Err` is the refusal's
/// reason.
pub(crate) fn check_release(
    anchor_sec1: &[u8],
    vendor: &str,
    device_class: &str,
    image: &[u8],
    envelope: &[u8],
    now: i64,
) -> Result<CheckedRelease, String> {
    let anchor = TrustAnchor::p256_from_sec1(anchor_sec1)
        .ok_or_else(|| "the stored release trust anchor is not a P-256 key".to_string())?;
    let manifest = castellan_suit::authenticate(envelope, &[anchor]).map_err(|e| {
        format!("the manifest does not authenticate with the release trust anchor: {e}")
    })?;
    let expires = manifest
        .expires()
        .map_err(|e| format!("the manifest's expiry (castellan-expires) is malformed: {e}"))?;
    if let Some(at) = expires
        && i64::try_from(at).is_ok_and(|at| at <= now)
    {
        return Err(format!(
            "the release expired at {at} (now {now}): devices refuse it"
        ));
    }
    let only_app = manifest.component_count() == 1
        && manifest
            .component_id(0)
            .is_some_and(|id| id.is(&APP_COMPONENT));
    if !only_app {
        return Err(
            "the manifest must name exactly one component, [\"castellan\", \"app\"]".into(),
        );
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
fn image_facts(image: &[u8]) -> Result<CheckedRelease, String> {
    let facts = castellan_release::image_facts(image).map_err(|e| e.to_string())?;
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

    /// The refusal's reason, if any, after the processor ran.
    fn verdict(
        &self,
        processed: Result<(), SuitError>,
        device_class: &str,
        vendor: &str,
        vendor_id: &[u8; 16],
        class_id: &[u8; 16],
    ) -> Result<(), String> {
        let size = self.image.len();
        let sha = hex::encode(Sha256::digest(self.image));
        let wrong_vendor = || {
            format!(
                "the manifest's vendor id {} is not the fleet's ({}, vendor {vendor:?})",
                hex::encode(self.vendor_seen.borrow().as_deref().unwrap_or_default()),
                hex::encode(vendor_id)
            )
        };
        let wrong_class = || {
            format!(
                "the manifest's class id {} is not the id of class {device_class} ({})",
                hex::encode(self.class_seen.borrow().as_deref().unwrap_or_default()),
                hex::encode(class_id)
            )
        };
        if let Err(e) = processed {
            return Err(match e {
                SuitError::ConditionFailed {
                    condition: Condition::VendorIdentifier,
                    ..
                } => wrong_vendor(),
                SuitError::ConditionFailed {
                    condition: Condition::ClassIdentifier,
                    ..
                } => wrong_class(),
                SuitError::ConditionFailed {
                    condition: Condition::DeviceIdentifier,
                    ..
                } => "the manifest is for one device (device-id condition): a release is for a \
                      class"
                    .into(),
                SuitError::DigestMismatch { .. }
                | SuitError::ConditionFailed {
                    condition: Condition::ImageMatch,
                    ..
                } => format!("the manifest's image digest is not the image's SHA-256 ({sha}): {e}"),
                SuitError::SizeMismatch { expected, .. } => format!(
                    "the manifest's image size {expected} is not the image's ({size} bytes)"
                ),
                SuitError::PayloadTooLarge { limit, .. } => {
                    format!("the manifest's image size {limit} is not the image's ({size} bytes)")
                }
                other => format!("the manifest cannot be applied to the image: {other}"),
            });
        }
        if self.device_condition {
            return Err(
                "the manifest is for one device (device-id condition): a release is for a class"
                    .into(),
            );
        }
        if !self.passed.contains(&Condition::VendorIdentifier) {
            return Err("the manifest does not check the vendor id".into());
        }
        if !self.passed.contains(&Condition::ClassIdentifier) {
            return Err("the manifest does not check the class id".into());
        }
        if !self.fetched || self.committed != Some(size as u64) || self.written != self.image {
            return Err(format!(
                "the manifest does not install the uploaded image (SHA-256 {sha}, {size} bytes)"
            ));
        }
        if !self.passed.contains(&Condition::ImageMatch) {
            return Err("the manifest does not check the image digest (image-match)".into());
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
