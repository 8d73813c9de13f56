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

use std::string::String;
use std::vec::Vec;

use ed25519_dalek::Signer as _;
use sha2::Digest as _;

use crate::cbor::{self, MAJOR_ARRAY, MAJOR_MAP, MAJOR_TAG};
use crate::command::{Condition, Directive, Parameter, Section, TAG_COSE_SIGN1, TAG_ENVELOPE, key};
use crate::cose::{SignatureAlgorithm, TrustAnchor};
use crate::error::{Part, SuitError};

/// The P-256 signing key type [`Signer::Es256`] / [`Signer::Esp256`] take (re-exported so tools
/// use the same crate version).
pub use p256::ecdsa::SigningKey as P256SigningKey;

/// The Ed25519 signing key type [`Signer::EdDsa`] takes.
pub use ed25519_dalek::SigningKey as Ed25519SigningKey;

/// Reporting policy written for conditions (record and sysinfo on success and failure).
pub const CONDITION_POLICY: u64 = 15;
/// Reporting policy written for fetch/copy/write/invoke/swap (record on failure).
pub const DIRECTIVE_POLICY: u64 = 2;

/// A key that signs envelopes.
#[derive(Clone, Copy, Debug)]
pub enum Signer<'k> {
    /// P-256 labelled ES256 (-7). Signatures are deterministic (RFC 6979).
    Es256(&'k p256::ecdsa::SigningKey),
    /// P-256 labelled ESP256 (-9).
    Esp256(&'k p256::ecdsa::SigningKey),
    /// Ed25519 labelled EdDSA (-8).
    EdDsa(&'k ed25519_dalek::SigningKey),
}

impl Signer<'_> {
    /// The COSE algorithm written in the protected header.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Signer::Es256(_) => SignatureAlgorithm::Es256,
            Signer::Esp256(_) => SignatureAlgorithm::Esp256,
            Signer::EdDsa(_) => SignatureAlgorithm::EdDsa,
        }
    }

    /// The public key a device needs to trust these signatures.
    pub fn trust_anchor(&self) -> TrustAnchor {
        match self {
            Signer::Es256(k) | Signer::Esp256(k) => TrustAnchor::P256(*k.verifying_key()),
            Signer::EdDsa(k) => TrustAnchor::Ed25519(k.verifying_key()),
        }
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Signer::Es256(k) | Signer::Esp256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_bytes().to_vec()
            }
            Signer::EdDsa(k) => k.sign(msg).to_bytes().to_vec(),
        }
    }
}

// Writing into a `Vec` cannot fail, so the `Result`s of the cbor writers are ignored below.

fn enc_bytes(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len() + 9);
    let _ = cbor::put_bytes(&mut v, b);
    v
}

fn enc_int(i: i64) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = cbor::put_int(&mut v, i);
    v
}

fn enc_uint(v: u64) -> Vec<u8> {
    enc_head(crate::cbor::MAJOR_UINT, v)
}

fn enc_head(major: u8, n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = cbor::put_head(&mut v, major, n);
    v
}

fn enc_text(t: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = cbor::put_text(&mut v, t);
    v
}

/// A deterministic CBOR map from already-encoded keys and values (sorted bytewise by key).
fn enc_map(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut v = enc_head(MAJOR_MAP, entries.len() as u64);
    for (k, val) in entries {
        v.extend_from_slice(&k);
        v.extend_from_slice(&val);
    }
    v
}

/// Encodes a `SUIT_Digest` with SHA-256 over `data`.
pub fn sha256_suit_digest(data: &[u8]) -> Vec<u8> {
    suit_digest(-16, &sha2::Sha256::digest(data))
}

fn suit_digest(alg: i64, bytes: &[u8]) -> Vec<u8> {
    let mut v = enc_head(MAJOR_ARRAY, 2);
    v.extend(enc_int(alg));
    v.extend(enc_bytes(bytes));
    v
}

/// Encodes a component identifier (`[* bstr]`).
pub fn component_id(segments: &[&[u8]]) -> Vec<u8> {
    let mut v = enc_head(MAJOR_ARRAY, segments.len() as u64);
    for s in segments {
        v.extend(enc_bytes(s));
    }
    v
}

/// A `SUIT_Parameters` map for set/override-parameters.
#[derive(Clone, Debug, Default)]
pub struct Parameters {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Parameters {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter with an already-encoded CBOR value (replaces an earlier one).
    pub fn raw(mut self, code: i64, value_cbor: Vec<u8>) -> Self {
        let k = enc_int(code);
        self.entries.retain(|(key, _)| key != &k);
        self.entries.push((k, value_cbor));
        self
    }

    fn p(self, p: Parameter, v: Vec<u8>) -> Self {
        self.raw(p.code(), v)
    }

    /// vendor-id as a UUID.
    pub fn vendor_id(self, uuid: &[u8]) -> Self {
        self.p(Parameter::VendorId, enc_bytes(uuid))
    }

    /// class-id.
    pub fn class_id(self, uuid: &[u8]) -> Self {
        self.p(Parameter::ClassId, enc_bytes(uuid))
    }

    /// device-id.
    pub fn device_id(self, uuid: &[u8]) -> Self {
        self.p(Parameter::DeviceId, enc_bytes(uuid))
    }

    /// image-digest from a COSE hash algorithm id and digest bytes.
    pub fn image_digest(self, alg: i64, digest: &[u8]) -> Self {
        self.p(Parameter::ImageDigest, enc_bytes(&suit_digest(alg, digest)))
    }

    /// image-digest (SHA-256) and image-size of `payload`.
    pub fn image(self, payload: &[u8]) -> Self {
        self.image_digest(-16, &sha2::Sha256::digest(payload))
            .image_size(payload.len() as u64)
    }

    /// image-size.
    pub fn image_size(self, size: u64) -> Self {
        self.p(Parameter::ImageSize, enc_int(size as i64))
    }

    /// component-slot.
    pub fn component_slot(self, slot: u64) -> Self {
        self.p(Parameter::ComponentSlot, enc_int(slot as i64))
    }

    /// content (for write / check-content).
    pub fn content(self, content: &[u8]) -> Self {
        self.p(Parameter::Content, enc_bytes(content))
    }

    /// uri.
    pub fn uri(self, uri: &str) -> Self {
        self.p(Parameter::Uri, enc_text(uri))
    }

    /// source-component.
    pub fn source_component(self, index: u64) -> Self {
        self.p(Parameter::SourceComponent, enc_int(index as i64))
    }

    /// invoke-args.
    pub fn invoke_args(self, args: &[u8]) -> Self {
        self.p(Parameter::InvokeArgs, enc_bytes(args))
    }

    /// soft-failure (only valid inside try-each / run-sequence).
    pub fn soft_failure(self, on: bool) -> Self {
        self.p(Parameter::SoftFailure, vec![if on { 0xf5 } else { 0xf4 }])
    }

    /// Castellan's release expiry, custom parameter
    /// [`CUSTOM_PARAMETER_EXPIRES`](crate::CUSTOM_PARAMETER_EXPIRES) (unix seconds).
    pub fn expires(self, unix: u64) -> Self {
        self.raw(crate::CUSTOM_PARAMETER_EXPIRES, enc_uint(unix))
    }

    /// strict-order.
    pub fn strict_order(self, on: bool) -> Self {
        self.p(Parameter::StrictOrder, vec![if on { 0xf5 } else { 0xf4 }])
    }

    /// The encoded map.
    pub fn to_cbor(&self) -> Vec<u8> {
        enc_map(self.entries.clone())
    }
}

/// A `SUIT_Command_Sequence` under construction.
#[derive(Clone, Debug, Default)]
pub struct Sequence {
    items: u64,
    body: Vec<u8>,
}

impl Sequence {
    /// An empty sequence (a sequence must get at least one command before use).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a command code with an already-encoded argument.
    pub fn raw(mut self, code: i64, arg_cbor: &[u8]) -> Self {
        self.body.extend(enc_int(code));
        self.body.extend_from_slice(arg_cbor);
        self.items += 2;
        self
    }

    /// set-component-index to one component.
    pub fn set_component_index(self, index: u64) -> Self {
        self.raw(Directive::SetComponentIndex.code(), &enc_int(index as i64))
    }

    /// set-component-index = true (all components).
    pub fn set_component_all(self) -> Self {
        self.raw(Directive::SetComponentIndex.code(), &[0xf5])
    }

    /// set-component-index to a list of components.
    pub fn set_component_list(self, indices: &[u64]) -> Self {
        let mut arg = enc_head(MAJOR_ARRAY, indices.len() as u64);
        for i in indices {
            arg.extend(enc_int(*i as i64));
        }
        self.raw(Directive::SetComponentIndex.code(), &arg)
    }

    /// override-parameters.
    pub fn override_parameters(self, p: &Parameters) -> Self {
        self.raw(Directive::OverrideParameters.code(), &p.to_cbor())
    }

    /// set-parameters (sets only parameters not yet set).
    pub fn set_parameters(self, p: &Parameters) -> Self {
        self.raw(Directive::SetParameters.code(), &p.to_cbor())
    }

    /// A condition with the default reporting policy.
    pub fn condition(self, c: Condition) -> Self {
        self.raw(c.code(), &enc_int(CONDITION_POLICY as i64))
    }

    /// fetch / copy / write / invoke / swap with the default reporting policy.
    pub fn directive(self, d: Directive) -> Self {
        self.raw(d.code(), &enc_int(DIRECTIVE_POLICY as i64))
    }

    /// try-each over `sequences`; `then_nil` appends the empty sequence (continue if all fail).
    pub fn try_each(self, sequences: &[Sequence], then_nil: bool) -> Self {
        let n = sequences.len() as u64 + u64::from(then_nil);
        let mut arg = enc_head(MAJOR_ARRAY, n);
        for s in sequences {
            arg.extend(enc_bytes(&s.to_cbor()));
        }
        if then_nil {
            arg.push(0xf6);
        }
        self.raw(Directive::TryEach.code(), &arg)
    }

    /// run-sequence.
    pub fn run_sequence(self, inner: &Sequence) -> Self {
        self.raw(Directive::RunSequence.code(), &enc_bytes(&inner.to_cbor()))
    }

    /// The encoded sequence.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut v = enc_head(MAJOR_ARRAY, self.items);
        v.extend_from_slice(&self.body);
        v
    }

    /// True when no command was added.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }
}

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

/// An extra envelope element for [`seal`].
#[derive(Clone, Copy, Debug)]
pub enum EnvelopeMember<'a> {
    /// A severable element (key 16, 20 or 23) with its content (bstr-wrapped on output).
    Severable(i64, &'a [u8]),
    /// An integrated payload under a text key (a fragment URI such as `#app.bin`).
    Integrated(&'a str, &'a [u8]),
}

/// Wraps `manifest` (the encoded `SUIT_Manifest` map) in a signed envelope: SHA-256 manifest
/// digest, one COSE_Sign1 per signer, plus `members`.
pub fn seal(manifest: &[u8], members: &[EnvelopeMember<'_>], signers: &[Signer<'_>]) -> Vec<u8> {
    let signatures: Vec<(SignatureAlgorithm, Vec<u8>)> = signers
        .iter()
        .map(|s| {
            let tbs = to_be_signed(manifest, s.algorithm());
            (s.algorithm(), s.sign(&tbs))
        })
        .collect();
    seal_with_signatures(manifest, members, &signatures)
}

/// The bytes a signer using `algorithm` signs for `manifest` (the COSE `Sig_structure` over the
/// manifest digest): for keys that cannot be handed to [`Signer`] (PKCS#11 tokens, HSMs). Sign
/// them elsewhere (ES256/ESP256: SHA-256 then ECDSA, signature as `r ‖ s`; EdDSA: the bytes
/// themselves), then call [`seal_with_signatures`].
pub fn to_be_signed(manifest: &[u8], algorithm: SignatureAlgorithm) -> Vec<u8> {
    let digest = sha256_suit_digest(&enc_bytes(manifest));
    sig_structure(&protected_header(algorithm), &digest)
}

/// [`seal`] with signatures made elsewhere over [`to_be_signed`]'s bytes.
pub fn seal_with_signatures(
    manifest: &[u8],
    members: &[EnvelopeMember<'_>],
    signatures: &[(SignatureAlgorithm, Vec<u8>)],
) -> Vec<u8> {
    let manifest_bstr = enc_bytes(manifest);
    let digest = sha256_suit_digest(&manifest_bstr);
    let mut auth = enc_head(MAJOR_ARRAY, 1 + signatures.len() as u64);
    auth.extend(enc_bytes(&digest));
    for (alg, sig) in signatures {
        auth.extend(enc_bytes(&cose_sign1(*alg, sig)));
    }
    let mut entries = vec![
        (enc_int(crate::command::ENVELOPE_AUTH), enc_bytes(&auth)),
        (enc_int(crate::command::ENVELOPE_MANIFEST), manifest_bstr),
    ];
    for m in members {
        match m {
            EnvelopeMember::Severable(k, c) => entries.push((enc_int(*k), enc_bytes(c))),
            EnvelopeMember::Integrated(n, p) => entries.push((enc_text(n), enc_bytes(p))),
        }
    }
    let mut out = enc_head(MAJOR_TAG, TAG_ENVELOPE);
    out.extend(enc_map(entries));
    out
}

fn protected_header(algorithm: SignatureAlgorithm) -> Vec<u8> {
    enc_map(vec![(enc_int(1), enc_int(algorithm.cose_id()))])
}

/// The COSE `Sig_structure` of a COSE_Sign1 with a detached `payload`.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut msg = enc_head(MAJOR_ARRAY, 4);
    msg.extend(enc_text("Signature1"));
    msg.extend(enc_bytes(protected));
    msg.extend(enc_bytes(&[]));
    msg.extend(enc_bytes(payload));
    msg
}

/// A COSE_Sign1_Tagged with a detached payload and the signature `sig`.
fn cose_sign1(algorithm: SignatureAlgorithm, sig: &[u8]) -> Vec<u8> {
    let protected = protected_header(algorithm);
    let mut out = enc_head(MAJOR_TAG, TAG_COSE_SIGN1);
    out.extend(enc_head(MAJOR_ARRAY, 4));
    out.extend(enc_bytes(&protected));
    out.extend(enc_head(MAJOR_MAP, 0));
    out.push(0xf6);
    out.extend(enc_bytes(sig));
    out
}
