//! The decoded view of an authenticated `SUIT_Manifest`: critical metadata, the common section,
//! the command sequences (inline or severable) and component identifiers.
//!
//! Only [`Envelope::authenticate`](crate::Envelope::authenticate) calls [`Manifest::parse`], after
//! the signature and digest checks. Command sequences stay as borrowed CBOR and are decoded while
//! they run.

use crate::cbor::{MAJOR_ARRAY, MAJOR_BYTES, MAJOR_NINT, MAJOR_UINT, Reader};
use crate::command::{Section, key};
use crate::digest::SuitDigest;
use crate::envelope::{Element, Envelope};
use crate::error::{Part, SuitError};

/// Most components a manifest may list (parameter storage is a fixed array).
pub const MAX_COMPONENTS: usize = 8;
/// Most byte strings in one component identifier.
pub const MAX_COMPONENT_ID_SEGMENTS: u64 = 8;

/// A sequence or text that may be inline, severable-and-present, or severed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Member<'a> {
    /// Not in the manifest.
    Absent,
    /// Available: inline, or a severable element that matched its digest.
    Present(&'a [u8]),
    /// The manifest holds its digest but the envelope no longer carries it.
    Severed,
}

impl Member<'_> {
    pub(crate) fn is_present(&self) -> bool {
        matches!(self, Member::Present(_))
    }
}

/// A component identifier: an array of byte strings, e.g. `[h'00']` or `['usr','bin','env']`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentId<'a> {
    encoded: &'a [u8],
}

impl<'a> ComponentId<'a> {
    /// Its CBOR encoding (an array of bstr).
    pub fn encoded(&self) -> &'a [u8] {
        self.encoded
    }

    /// The byte-string segments.
    pub fn segments(&self) -> Segments<'a> {
        let mut r = Reader::new(self.encoded, Part::Components);
        let remaining = r.array().unwrap_or(0);
        Segments { r, remaining }
    }

    /// True when the segments equal `expected`.
    pub fn is(&self, expected: &[&[u8]]) -> bool {
        let mut it = self.segments();
        expected.iter().all(|e| it.next() == Some(*e)) && it.next().is_none()
    }
}

/// Iterator over the segments of a [`ComponentId`].
#[derive(Clone)]
pub struct Segments<'a> {
    r: Reader<'a>,
    remaining: u64,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.r.bytes().ok()
    }
}

/// The manifest fields the processor uses.
#[derive(Clone, Debug)]
pub(crate) struct Manifest<'a> {
    pub(crate) encoded: &'a [u8],
    pub(crate) sequence_number: u64,
    pub(crate) reference_uri: Option<&'a str>,
    components: &'a [u8],
    pub(crate) component_count: usize,
    pub(crate) shared: Option<&'a [u8]>,
    validate: Option<&'a [u8]>,
    load: Option<&'a [u8]>,
    invoke: Option<&'a [u8]>,
    payload_fetch: Member<'a>,
    install: Member<'a>,
    pub(crate) text: Member<'a>,
}

impl<'a> Manifest<'a> {
    /// Decodes an authenticated manifest element.
    pub(crate) fn parse(element: Element<'a>, envelope: &Envelope<'a>) -> Result<Self, SuitError> {
        let mut r = Reader::new(element.content, Part::Manifest);
        let n = r.map()?;
        let mut version = None;
        let mut sequence_number = None;
        let mut common = None;
        let mut m = Manifest {
            encoded: element.encoded,
            sequence_number: 0,
            reference_uri: None,
            components: &[],
            component_count: 0,
            shared: None,
            validate: None,
            load: None,
            invoke: None,
            payload_fetch: Member::Absent,
            install: Member::Absent,
            text: Member::Absent,
        };
        let mut seen_fetch = false;
        let mut seen_install = false;
        let mut seen_text = false;
        for _ in 0..n {
            if !matches!(r.peek_major()?, MAJOR_UINT | MAJOR_NINT) {
                return Err(SuitError::Malformed(Part::Manifest));
            }
            match r.int()? {
                key::VERSION => once(&mut version, r.uint()?)?,
                key::SEQUENCE_NUMBER => once(&mut sequence_number, r.uint()?)?,
                key::COMMON => once(&mut common, r.bytes()?)?,
                key::REFERENCE_URI => once(&mut m.reference_uri, r.text()?)?,
                key::VALIDATE => once(&mut m.validate, r.bytes()?)?,
                key::LOAD => once(&mut m.load, r.bytes()?)?,
                key::INVOKE => once(&mut m.invoke, r.bytes()?)?,
                key::PAYLOAD_FETCH => {
                    flag_once(&mut seen_fetch)?;
                    m.payload_fetch = severable(&mut r, envelope, Section::PayloadFetch)?;
                }
                key::INSTALL => {
                    flag_once(&mut seen_install)?;
                    m.install = severable(&mut r, envelope, Section::Install)?;
                }
                key::TEXT => {
                    flag_once(&mut seen_text)?;
                    m.text = severable(&mut r, envelope, Section::Text)?;
                }
                // Extensions (CoSWID, trust-domains members): informational here.
                _ => r.skip()?,
            }
        }
        r.finish()?;
        match version {
            Some(1) => {}
            Some(v) => return Err(SuitError::UnsupportedVersion(v)),
            None => return Err(SuitError::Malformed(Part::Manifest)),
        }
        m.sequence_number = sequence_number.ok_or(SuitError::Malformed(Part::Manifest))?;
        m.parse_common(common.ok_or(SuitError::Malformed(Part::Manifest))?)?;
        Ok(m)
    }

    fn parse_common(&mut self, common: &'a [u8]) -> Result<(), SuitError> {
        let mut r = Reader::new(common, Part::Common);
        let n = r.map()?;
        let mut components = None;
        for _ in 0..n {
            if !matches!(r.peek_major()?, MAJOR_UINT | MAJOR_NINT) {
                return Err(SuitError::Malformed(Part::Common));
            }
            match r.int()? {
                key::DEPENDENCIES => return Err(SuitError::UnsupportedFeature(Section::Common)),
                key::COMPONENTS => once(&mut components, r.raw_item()?)?,
                key::SHARED_SEQUENCE => once(&mut self.shared, r.bytes()?)?,
                _ => r.skip()?,
            }
        }
        r.finish()?;
        let components = components.ok_or(SuitError::Malformed(Part::Common))?;
        let mut c = Reader::new(components, Part::Components);
        let count = c.array()?;
        if count == 0 {
            return Err(SuitError::Malformed(Part::Components));
        }
        if count > MAX_COMPONENTS as u64 {
            return Err(SuitError::LimitExceeded(Part::Components));
        }
        for _ in 0..count {
            let segments = c.array()?;
            if segments > MAX_COMPONENT_ID_SEGMENTS {
                return Err(SuitError::LimitExceeded(Part::Components));
            }
            for _ in 0..segments {
                c.bytes()?;
            }
        }
        c.finish()?;
        self.components = components;
        self.component_count = count as usize;
        Ok(())
    }

    /// The identifier of component `index`.
    pub(crate) fn component_id(&self, index: usize) -> Option<ComponentId<'a>> {
        if index >= self.component_count {
            return None;
        }
        let mut r = Reader::new(self.components, Part::Components);
        r.array().ok()?;
        for _ in 0..index {
            r.skip().ok()?;
        }
        r.raw_item().ok().map(|encoded| ComponentId { encoded })
    }

    /// The command sequence (or text) of `section`.
    pub(crate) fn section(&self, section: Section) -> Member<'a> {
        let inline = |s: Option<&'a [u8]>| s.map_or(Member::Absent, Member::Present);
        match section {
            Section::Shared => inline(self.shared),
            Section::Validate => inline(self.validate),
            Section::Load => inline(self.load),
            Section::Invoke => inline(self.invoke),
            Section::PayloadFetch => self.payload_fetch,
            Section::Install => self.install,
            Section::Text => self.text,
            Section::Common => Member::Absent,
        }
    }
}

/// A severable member: inline bstr, or a `SUIT_Digest` of the envelope element.
fn severable<'a>(
    r: &mut Reader<'a>,
    envelope: &Envelope<'a>,
    section: Section,
) -> Result<Member<'a>, SuitError> {
    match r.peek_major()? {
        MAJOR_BYTES => Ok(Member::Present(r.bytes()?)),
        MAJOR_ARRAY => {
            let digest = SuitDigest::read(r)?;
            match envelope.severable(section) {
                Some(el) if digest.matches(el.encoded) => Ok(Member::Present(el.content)),
                Some(_) => Err(SuitError::SeverableDigestMismatch(section)),
                None => Ok(Member::Severed),
            }
        }
        _ => Err(SuitError::Malformed(Part::Manifest)),
    }
}

fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), SuitError> {
    if slot.replace(value).is_some() {
        Err(SuitError::Malformed(Part::Manifest))
    } else {
        Ok(())
    }
}

fn flag_once(flag: &mut bool) -> Result<(), SuitError> {
    if core::mem::replace(flag, true) {
        Err(SuitError::Malformed(Part::Manifest))
    } else {
        Ok(())
    }
}
