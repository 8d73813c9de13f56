//! The SUIT envelope and its authentication: the only way to obtain an
//! [`AuthenticatedManifest`].
//!
//! ```text
//!  envelope bytes ──parse──▶ Envelope (outer map only: key 2, key 3, severable bstrs)
//!        │
//!        └─authenticate──▶ COSE_Sign1 over the SUIT_Digest (trusted key)
//!                          └─ SUIT_Digest == digest(bstr-wrapped manifest)
//!                             └─ only now: Manifest::parse ──▶ AuthenticatedManifest
//! ```
//!
//! Nothing inside the manifest bstr is read before the signature and the manifest digest have
//! been checked. The [`AuthenticatedManifest`] borrows the envelope bytes immutably, so the bytes
//! that are processed are exactly the bytes that were authenticated: they cannot change while it
//! exists. A device that keeps envelopes in storage another party can write (external flash) uses
//! [`authenticate_copy`] to authenticate and process a private RAM copy.
//!
//! ```compile_fail
//! # let anchors: [castellan_suit::TrustAnchor; 0] = [];
//! let mut envelope = std::vec::Vec::<u8>::new();
//! let authenticated = castellan_suit::authenticate(&envelope, &anchors);
//! envelope[0] ^= 1; // refused by the compiler: the authenticated bytes are borrowed
//! drop(authenticated);
//! ```

use crate::cbor::{MAJOR_NINT, MAJOR_TAG, MAJOR_TEXT, MAJOR_UINT, Reader};
use crate::command::{Directive, ENVELOPE_AUTH, ENVELOPE_MANIFEST, Section, TAG_ENVELOPE, key};
use crate::cose::{self, BlockOutcome, SignatureAlgorithm, TrustAnchor};
use crate::digest::SuitDigest;
use crate::error::{Part, SuitError};
use crate::manifest::{ComponentId, Manifest, Member};

/// Most entries accepted in the envelope map (bounds the work done before authentication).
pub const MAX_ENVELOPE_ENTRIES: u64 = 32;
/// Most COSE authentication blocks accepted (bounds signature verifications).
pub const MAX_AUTH_BLOCKS: u64 = 4;

/// One bstr element of the envelope: its complete encoding (which severable digests cover) and
/// its content.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Element<'a> {
    pub(crate) encoded: &'a [u8],
    pub(crate) content: &'a [u8],
}

/// The outer structure of a SUIT envelope. Holds slices; the manifest is not interpreted.
#[derive(Clone, Debug)]
pub struct Envelope<'a> {
    bytes: &'a [u8],
    entries_start: usize,
    entries: u64,
    pub(crate) auth: Option<&'a [u8]>,
    pub(crate) manifest: Option<Element<'a>>,
    payload_fetch: Option<Element<'a>>,
    install: Option<Element<'a>>,
    text: Option<Element<'a>>,
}

impl<'a> Envelope<'a> {
    /// Parses the envelope map (tag 107 optional). Only the outer map is read.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, SuitError> {
        let mut r = Reader::new(bytes, Part::Envelope);
        if r.peek_major()? == MAJOR_TAG && r.tag()? != TAG_ENVELOPE {
            return Err(SuitError::Malformed(Part::Envelope));
        }
        let entries = r.map()?;
        if entries > MAX_ENVELOPE_ENTRIES {
            return Err(SuitError::LimitExceeded(Part::Envelope));
        }
        let mut env = Envelope {
            bytes,
            entries_start: r.position(),
            entries,
            auth: None,
            manifest: None,
            payload_fetch: None,
            install: None,
            text: None,
        };
        for _ in 0..entries {
            match r.peek_major()? {
                MAJOR_UINT | MAJOR_NINT => {
                    let k = r.int()?;
                    let el = read_element(&mut r)?;
                    let slot = match k {
                        ENVELOPE_AUTH => {
                            set_once(&mut env.auth, el.content)?;
                            continue;
                        }
                        ENVELOPE_MANIFEST => &mut env.manifest,
                        key::PAYLOAD_FETCH => &mut env.payload_fetch,
                        key::INSTALL => &mut env.install,
                        key::TEXT => &mut env.text,
                        _ => continue, // extensions (delegation, ...) are not used
                    };
                    set_once(slot, el)?;
                }
                MAJOR_TEXT => {
                    r.text()?;
                    read_element(&mut r)?; // integrated payload; uniqueness checked on lookup
                }
                _ => return Err(SuitError::Malformed(Part::Envelope)),
            }
        }
        r.finish()?;
        Ok(env)
    }

    /// Authenticates the manifest with the trusted keys, then (and only then) decodes it.
    pub fn authenticate(
        &self,
        anchors: &[TrustAnchor],
    ) -> Result<AuthenticatedManifest<'a>, SuitError> {
        let auth = self.auth.ok_or(SuitError::Unauthenticated)?;
        let manifest = self.manifest.ok_or(SuitError::Malformed(Part::Envelope))?;

        let mut r = Reader::new(auth, Part::AuthenticationWrapper);
        let n = r.array()?;
        if n == 0 {
            return Err(SuitError::Malformed(Part::AuthenticationWrapper));
        }
        if n > 1 + MAX_AUTH_BLOCKS {
            return Err(SuitError::LimitExceeded(Part::AuthenticationWrapper));
        }
        let digest_encoded = r.bytes()?;
        let digest = SuitDigest::decode(digest_encoded)?;
        let mut algorithm = None;
        for _ in 1..n {
            let block = r.bytes()?;
            if let BlockOutcome::Verified(alg) = cose::verify_block(block, digest_encoded, anchors)?
            {
                algorithm.get_or_insert(alg);
            }
        }
        r.finish()?;
        let algorithm = algorithm.ok_or(SuitError::Unauthenticated)?;
        if !digest.matches(manifest.encoded) {
            return Err(SuitError::ManifestDigestMismatch);
        }
        // Authentic: the manifest may now be interpreted.
        let parsed = Manifest::parse(manifest, self)?;
        Ok(AuthenticatedManifest {
            envelope: self.clone(),
            manifest: parsed,
            algorithm,
            digest,
        })
    }

    /// The content of the severable element (payload-fetch, install or text) carried in the
    /// envelope, not yet checked against the manifest's digest.
    pub fn severable_element(&self, section: Section) -> Option<&'a [u8]> {
        self.severable(section).map(|e| e.content)
    }

    /// The severable element stored in the envelope under the key of `section`.
    pub(crate) fn severable(&self, section: Section) -> Option<Element<'a>> {
        match section {
            Section::PayloadFetch => self.payload_fetch,
            Section::Install => self.install,
            Section::Text => self.text,
            _ => None,
        }
    }

    /// The text keys of the envelope (integrated payloads) with their sizes.
    #[cfg(feature = "std")]
    pub(crate) fn integrated_names(&self) -> std::vec::Vec<(&'a str, usize)> {
        let mut out = std::vec::Vec::new();
        let Some(tail) = self.bytes.get(self.entries_start..) else {
            return out;
        };
        let mut r = Reader::new(tail, Part::Envelope);
        for _ in 0..self.entries {
            if r.peek_major() == Ok(MAJOR_TEXT) {
                if let (Ok(k), Ok(el)) = (r.text(), read_element(&mut r)) {
                    out.push((k, el.content.len()));
                }
            } else if r.skip().and_then(|_| r.skip()).is_err() {
                break;
            }
        }
        out
    }

    /// An integrated payload: the envelope entry whose text key equals `uri`.
    ///
    /// A key present twice is refused rather than guessed at.
    pub fn integrated_payload(&self, uri: &str) -> Result<Option<&'a [u8]>, SuitError> {
        let Some(tail) = self.bytes.get(self.entries_start..) else {
            return Ok(None);
        };
        let mut r = Reader::new(tail, Part::Envelope);
        let mut found = None;
        for _ in 0..self.entries {
            if r.peek_major()? == MAJOR_TEXT {
                let k = r.text()?;
                let el = read_element(&mut r)?;
                if k == uri && found.replace(el.content).is_some() {
                    return Err(SuitError::Malformed(Part::Envelope));
                }
            } else {
                r.skip()?;
                r.skip()?;
            }
        }
        Ok(found)
    }
}

fn read_element<'a>(r: &mut Reader<'a>) -> Result<Element<'a>, SuitError> {
    let encoded = r.raw_item()?;
    let content = Reader::new(encoded, Part::Envelope).bytes()?;
    Ok(Element { encoded, content })
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), SuitError> {
    if slot.replace(value).is_some() {
        Err(SuitError::Malformed(Part::Envelope))
    } else {
        Ok(())
    }
}

/// Parses `envelope` and authenticates it with `anchors` (see [`Envelope::authenticate`]).
pub fn authenticate<'a>(
    envelope: &'a [u8],
    anchors: &[TrustAnchor],
) -> Result<AuthenticatedManifest<'a>, SuitError> {
    Envelope::parse(envelope)?.authenticate(anchors)
}

/// Copies `source` (for example an envelope in external flash) into the device-private `ram`
/// buffer first, then authenticates the copy. Later changes to `source` cannot affect what is
/// processed: the result borrows only `ram`, immutably.
pub fn authenticate_copy<'r>(
    source: &[u8],
    ram: &'r mut [u8],
    anchors: &[TrustAnchor],
) -> Result<AuthenticatedManifest<'r>, SuitError> {
    let dst = ram
        .get_mut(..source.len())
        .ok_or(SuitError::BufferTooSmall)?;
    dst.copy_from_slice(source);
    let copy: &'r [u8] = dst;
    authenticate(copy, anchors)
}

/// A manifest whose signature and digest were verified. Only [`Envelope::authenticate`] creates
/// one, and the processor accepts nothing else.
#[derive(Clone, Debug)]
pub struct AuthenticatedManifest<'a> {
    envelope: Envelope<'a>,
    manifest: Manifest<'a>,
    algorithm: SignatureAlgorithm,
    digest: SuitDigest<'a>,
}

impl<'a> AuthenticatedManifest<'a> {
    /// The manifest sequence number (anti-rollback counter).
    pub fn sequence_number(&self) -> u64 {
        self.manifest.sequence_number
    }

    /// The authenticated manifest digest (`SUIT_Digest` of the bstr-wrapped manifest).
    pub fn manifest_digest(&self) -> SuitDigest<'a> {
        self.digest
    }

    /// The algorithm of the signature that verified.
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The exact bytes that were authenticated (the bstr-wrapped manifest).
    pub fn manifest_bytes(&self) -> &'a [u8] {
        self.manifest.encoded
    }

    /// `suit-reference-uri`, if present.
    pub fn reference_uri(&self) -> Option<&'a str> {
        self.manifest.reference_uri
    }

    /// Number of components the manifest lists.
    pub fn component_count(&self) -> usize {
        self.manifest.component_count
    }

    /// The identifier of component `index`.
    pub fn component_id(&self, index: usize) -> Option<ComponentId<'a>> {
        self.manifest.component_id(index)
    }

    /// True when the manifest contains the command sequence (inline or as a verified severable
    /// element present in the envelope).
    pub fn has_section(&self, section: Section) -> bool {
        self.manifest.section(section).is_present()
    }

    /// True when the section's digest is in the manifest but the element was severed.
    pub fn is_severed(&self, section: Section) -> bool {
        matches!(self.manifest.section(section), Member::Severed)
    }

    /// The CBOR `SUIT_Text_Map`, when present and verified against its digest.
    pub fn text(&self) -> Option<&'a [u8]> {
        match self.manifest.text {
            Member::Present(t) => Some(t),
            _ => None,
        }
    }

    /// The value (raw CBOR item) of the custom parameter `code` (below -256) as the shared
    /// sequence's top-level set-parameters / override-parameters leave it: override replaces an
    /// earlier value, set keeps the first. `None` when the shared sequence does not set it.
    ///
    /// The processor itself ignores custom parameters, as the draft allows; this accessor is how
    /// a device reads one it defines (Castellan's release expiry,
    /// [`CUSTOM_PARAMETER_EXPIRES`](crate::CUSTOM_PARAMETER_EXPIRES)). Only the shared sequence is
    /// read: it runs before every procedure, so a parameter there applies to the whole manifest.
    pub fn custom_parameter(&self, code: i64) -> Result<Option<&'a [u8]>, SuitError> {
        let Some(shared) = self.manifest.shared else {
            return Ok(None);
        };
        let mut r = Reader::new(shared, Part::Sequence);
        let n = r.array()?;
        if n % 2 != 0 {
            return Err(SuitError::Malformed(Part::Sequence));
        }
        let mut found = None;
        for _ in 0..n / 2 {
            let command = r.int()?;
            let set = command == Directive::SetParameters.code();
            if !set && command != Directive::OverrideParameters.code() {
                r.skip()?;
                continue;
            }
            let mut map = Reader::new(r.raw_item()?, Part::Parameters);
            for _ in 0..map.map()? {
                let key = map.int()?;
                let value = map.raw_item()?;
                if key == code && (!set || found.is_none()) {
                    found = Some(value);
                }
            }
            map.finish()?;
        }
        r.finish()?;
        Ok(found)
    }

    /// Castellan's release expiry: the unsigned integer of custom parameter
    /// [`CUSTOM_PARAMETER_EXPIRES`](crate::CUSTOM_PARAMETER_EXPIRES) ("castellan-expires", unix
    /// seconds) in the shared sequence, `None` when the manifest does not expire. A value that
    /// is not an unsigned integer is [`SuitError::Malformed`] (`Part::Parameters`).
    ///
    /// The manifest is authenticated, so the date is the release authority's; a device that
    /// knows the time refuses a manifest at or after it (freeze attacks, RFC 9124 §4.2.4).
    pub fn expires(&self) -> Result<Option<u64>, SuitError> {
        let Some(raw) = self.custom_parameter(crate::CUSTOM_PARAMETER_EXPIRES)? else {
            return Ok(None);
        };
        let mut r = Reader::new(raw, Part::Parameters);
        if r.peek_major()? != MAJOR_UINT {
            return Err(SuitError::Malformed(Part::Parameters));
        }
        let v = r.uint()?;
        r.finish()?;
        Ok(Some(v))
    }

    /// Refuses a manifest older than the device's stored sequence number.
    pub fn check_rollback(&self, stored: u64) -> Result<(), SuitError> {
        let offered = self.sequence_number();
        if offered < stored {
            Err(SuitError::RolledBack { stored, offered })
        } else {
            Ok(())
        }
    }

    pub(crate) fn manifest(&self) -> &Manifest<'a> {
        &self.manifest
    }

    pub(crate) fn envelope(&self) -> &Envelope<'a> {
        &self.envelope
    }
}
