//! Host-side construction of signed SUIT envelopes (feature `std`).
//!
//! Two levels:
//! - [`ManifestBuilder`] + [`ImageSpec`]: the usual manifest (vendor/class check, image digest and
//!   size, optional URI download, validate, optional invoke) from a few facts, signed in one call.
//! - [`Sequence`], [`Parameters`] and [`seal`]: any command sequence (try-each, copy, swap, ...)
//!   and any manifest bytes, for tools and tests.
//!
//! All maps are written in deterministic order; signatures are COSE_Sign1 with a detached payload
//! (the bstr-wrapped `SUIT_Digest` of the bstr-wrapped manifest), as the processor verifies them.
//!
//! ```text
//!  sequence.rs  Parameters, Sequence: command sequences as CBOR
//!  mod.rs       ImageSpec + ManifestBuilder: the usual manifest from a few facts
//!  seal.rs      Signer, seal, to_be_signed: the COSE_Sign1 envelope around a manifest
//!  encode.rs    the deterministic CBOR writers they share
//! ```

mod encode;
mod seal;
mod sequence;

use std::string::String;
use std::vec::Vec;

use sha2::Digest as _;

use crate::cbor::MAJOR_ARRAY;
use crate::command::{Condition, Directive, Section, key};
use crate::error::{Part, SuitError};
use encode::{enc_bytes, enc_head, enc_int, enc_map, enc_text};

pub use encode::{component_id, sha256_suit_digest};
pub use seal::{
    Ed25519SigningKey, EnvelopeMember, P256SigningKey, Signer, seal, seal_with_signatures,
    to_be_signed,
};
pub use sequence::{Parameters, Sequence};

/// Reporting policy written for conditions (record and sysinfo on success and failure).
pub const CONDITION_POLICY: u64 = 15;
/// Reporting policy written for fetch/copy/write/invoke/swap (record on failure).
pub const DIRECTIVE_POLICY: u64 = 2;

/// One image of a [`ManifestBuilder`] manifest (one component).
#[derive(Clone, Debug)]
pub struct ImageSpec {
    id: Vec<Vec<u8>>,
    digest: [u8; 32],
    size: u64,
    uri: Option<String>,
    integrated: Option<Vec<u8>>,
    invoke: bool,
}

impl ImageSpec {
    /// An image for component `id`, with digest and size computed from `payload`.
    pub fn new(id: &[&[u8]], payload: &[u8]) -> Self {
        Self::with_digest(
            id,
            sha2::Sha256::digest(payload).into(),
            payload.len() as u64,
        )
    }

    /// An image for component `id` with a known SHA-256 digest and size.
    pub fn with_digest(id: &[&[u8]], digest: [u8; 32], size: u64) -> Self {
        ImageSpec {
            id: id.iter().map(|s| s.to_vec()).collect(),
            digest,
            size,
            uri: None,
            integrated: None,
            invoke: false,
        }
    }

    /// Installs the image by fetching `uri` (adds an install sequence).
    pub fn uri(mut self, uri: &str) -> Self {
        self.uri = Some(uri.into());
        self
    }

    /// Carries `payload` inside the envelope under the fragment URI `name` (e.g. `#app.bin`).
    pub fn integrated(mut self, name: &str, payload: &[u8]) -> Self {
        self.uri = Some(name.into());
        self.integrated = Some(payload.to_vec());
        self
    }

    /// Invokes the image in the invoke sequence.
    pub fn invoke(mut self) -> Self {
        self.invoke = true;
        self
    }
}

/// Builds the common manifest shapes of the draft's templates (compatibility check, download,
/// install, secure boot).
#[derive(Clone, Debug)]
pub struct ManifestBuilder {
    sequence_number: u64,
    vendor_id: Vec<u8>,
    class_id: Vec<u8>,
    images: Vec<ImageSpec>,
    reference_uri: Option<String>,
    description: Option<String>,
    sever: bool,
    overrides: Vec<(Section, Sequence)>,
    expires: Option<u64>,
}

impl ManifestBuilder {
    /// A manifest with `sequence_number` for devices of `vendor_id` / `class_id`.
    pub fn new(sequence_number: u64, vendor_id: &[u8], class_id: &[u8]) -> Self {
        ManifestBuilder {
            sequence_number,
            vendor_id: vendor_id.to_vec(),
            class_id: class_id.to_vec(),
            images: Vec::new(),
            reference_uri: None,
            description: None,
            sever: false,
            overrides: Vec::new(),
            expires: None,
        }
    }

    /// Adds an image (one component).
    pub fn image(mut self, image: ImageSpec) -> Self {
        self.images.push(image);
        self
    }

    /// Sets `suit-reference-uri`.
    pub fn reference_uri(mut self, uri: &str) -> Self {
        self.reference_uri = Some(uri.into());
        self
    }

    /// Adds a text section with an English manifest description.
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Makes the release expire at `unix` (seconds): a set-parameters with custom parameter
    /// [`CUSTOM_PARAMETER_EXPIRES`](crate::CUSTOM_PARAMETER_EXPIRES) is appended to the shared
    /// sequence (generated or given with [`ManifestBuilder::sequence`]), where
    /// [`AuthenticatedManifest::expires`](crate::AuthenticatedManifest::expires) reads it. A device
    /// that knows the time refuses the manifest from then on (freeze protection).
    pub fn expires(mut self, unix: u64) -> Self {
        self.expires = Some(unix);
        self
    }

    /// Makes payload-fetch, install and text severable (digest in the manifest, element in the
    /// envelope).
    pub fn severable(mut self, on: bool) -> Self {
        self.sever = on;
        self
    }

    /// Replaces the generated sequence of `section` (including `Section::Shared`); an empty
    /// sequence removes the section.
    pub fn sequence(mut self, section: Section, seq: Sequence) -> Self {
        self.overrides.retain(|(s, _)| *s != section);
        self.overrides.push((section, seq));
        self
    }

    fn select(&self, seq: Sequence, i: usize) -> Sequence {
        if self.images.len() > 1 {
            seq.set_component_index(i as u64)
        } else {
            seq
        }
    }

    fn generated(&self, section: Section) -> Option<Sequence> {
        if let Some((_, s)) = self.overrides.iter().find(|(s, _)| *s == section) {
            return (!s.is_empty()).then(|| s.clone());
        }
        let mut seq = Sequence::new();
        for (i, img) in self.images.iter().enumerate() {
            match section {
                Section::Shared => {
                    let p = Parameters::new()
                        .vendor_id(&self.vendor_id)
                        .class_id(&self.class_id)
                        .image_digest(-16, &img.digest)
                        .image_size(img.size);
                    seq = self
                        .select(seq, i)
                        .override_parameters(&p)
                        .condition(Condition::VendorIdentifier)
                        .condition(Condition::ClassIdentifier);
                }
                Section::Validate => {
                    seq = self.select(seq, i).condition(Condition::ImageMatch);
                }
                Section::Install => {
                    if let Some(uri) = &img.uri {
                        seq = self
                            .select(seq, i)
                            .override_parameters(&Parameters::new().uri(uri))
                            .directive(Directive::Fetch)
                            .condition(Condition::ImageMatch);
                    }
                }
                Section::Invoke if img.invoke => {
                    seq = self.select(seq, i).directive(Directive::Invoke);
                }
                _ => {}
            }
        }
        (!seq.is_empty()).then_some(seq)
    }

    /// The text map: `{"en": {1: description}}`.
    fn text(&self) -> Option<Vec<u8>> {
        let d = self.description.as_ref()?;
        let inner = enc_map(vec![(enc_int(1), enc_text(d))]);
        Some(enc_map(vec![(enc_text("en"), inner)]))
    }

    /// The manifest map and the severed elements that go into the envelope.
    pub fn build_manifest(&self) -> Result<BuiltManifest, SuitError> {
        if self.images.is_empty() {
            return Err(SuitError::Malformed(Part::Components));
        }
        let mut ids = enc_head(MAJOR_ARRAY, self.images.len() as u64);
        for img in &self.images {
            let segs: Vec<&[u8]> = img.id.iter().map(Vec::as_slice).collect();
            ids.extend(component_id(&segs));
        }
        let mut common = vec![(enc_int(key::COMPONENTS), ids)];
        let mut shared = self.generated(Section::Shared);
        if let Some(unix) = self.expires {
            let expiry = Parameters::new().expires(unix);
            shared = Some(shared.unwrap_or_default().set_parameters(&expiry));
        }
        if let Some(shared) = shared {
            common.push((enc_int(key::SHARED_SEQUENCE), enc_bytes(&shared.to_cbor())));
        }
        let mut m = vec![
            (enc_int(key::VERSION), enc_int(1)),
            (
                enc_int(key::SEQUENCE_NUMBER),
                enc_int(self.sequence_number as i64),
            ),
            (enc_int(key::COMMON), enc_bytes(&enc_map(common))),
        ];
        if let Some(uri) = &self.reference_uri {
            m.push((enc_int(key::REFERENCE_URI), enc_text(uri)));
        }
        for (section, k) in [
            (Section::Validate, key::VALIDATE),
            (Section::Load, key::LOAD),
            (Section::Invoke, key::INVOKE),
        ] {
            if let Some(seq) = self.generated(section) {
                m.push((enc_int(k), enc_bytes(&seq.to_cbor())));
            }
        }
        let mut severed = Vec::new();
        let severable = [
            (
                key::PAYLOAD_FETCH,
                self.generated(Section::PayloadFetch).map(|s| s.to_cbor()),
            ),
            (
                key::INSTALL,
                self.generated(Section::Install).map(|s| s.to_cbor()),
            ),
            (key::TEXT, self.text()),
        ];
        for (k, content) in severable {
            let Some(content) = content else { continue };
            if self.sever {
                m.push((enc_int(k), sha256_suit_digest(&enc_bytes(&content))));
                severed.push((k, content));
            } else {
                m.push((enc_int(k), enc_bytes(&content)));
            }
        }
        Ok(BuiltManifest {
            manifest: enc_map(m),
            severed,
        })
    }

    /// Builds and signs the envelope.
    pub fn build(&self, signer: &Signer<'_>) -> Result<Vec<u8>, SuitError> {
        let BuiltManifest { manifest, severed } = self.build_manifest()?;
        let integrated: Vec<(String, Vec<u8>)> = self
            .images
            .iter()
            .filter_map(|i| Some((i.uri.clone()?, i.integrated.clone()?)))
            .collect();
        let members: Vec<EnvelopeMember<'_>> = severed
            .iter()
            .map(|(k, c)| EnvelopeMember::Severable(*k, c))
            .chain(
                integrated
                    .iter()
                    .map(|(n, p)| EnvelopeMember::Integrated(n, p)),
            )
            .collect();
        Ok(seal(&manifest, &members, &[*signer]))
    }

    /// The severable and integrated members [`ManifestBuilder::build`] adds, for
    /// [`seal_with_signatures`] after an external signature.
    pub fn members<'a>(&'a self, built: &'a BuiltManifest) -> Vec<EnvelopeMember<'a>> {
        built
            .severed
            .iter()
            .map(|(k, c)| EnvelopeMember::Severable(*k, c))
            .chain(self.images.iter().filter_map(|i| {
                Some(EnvelopeMember::Integrated(
                    i.uri.as_deref()?,
                    i.integrated.as_deref()?,
                ))
            }))
            .collect()
    }
}

/// An unsigned manifest from [`ManifestBuilder::build_manifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltManifest {
    /// The encoded `SUIT_Manifest` map.
    pub manifest: Vec<u8>,
    /// Severed elements: envelope key and content (bstr-wrapped in the envelope).
    pub severed: Vec<(i64, Vec<u8>)>,
}
