//! Command sequences and parameter maps as CBOR: any sequence (try-each, copy, swap, ...) for
//! tools and tests, and the pieces [`super::ManifestBuilder`] assembles.

use std::vec::Vec;

use sha2::Digest as _;

use super::encode::{enc_bytes, enc_head, enc_int, enc_map, enc_text, enc_uint, suit_digest};
use super::{CONDITION_POLICY, DIRECTIVE_POLICY};
use crate::cbor::MAJOR_ARRAY;
use crate::command::{Condition, Directive, Parameter};

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
