//! The manifest processor: rollback check, then the command sequences of a procedure run on an
//! abstract machine (component index, per-component parameters, soft-failure) as
//! draft-ietf-suit-manifest-34 section 6 describes.
//!
//! ```text
//!  Procedure::Update = payload-fetch, install, validate     each preceded by the shared
//!  Procedure::Invoke = validate, load, invoke               sequence, parameters cleared
//! ```
//!
//! Commands are executed strictly in order (always allowed; strict-order = false only permits
//! parallelism). Everything runs on the stack: parameters for at most
//! [`MAX_COMPONENTS`](crate::MAX_COMPONENTS) components, nesting of try-each / run-sequence at
//! most [`MAX_NESTING`]. The machine itself is in `machine.rs`.

mod machine;

use machine::Machine;

use crate::command::Section;
use crate::digest::SuitDigest;
use crate::envelope::AuthenticatedManifest;
use crate::error::SuitError;
use crate::manifest::Member;
use crate::platform::Platform;

/// Deepest nesting of try-each / run-sequence.
pub const MAX_NESTING: u8 = 6;

/// CBOR tag of a CBOR PEN vendor identifier.
const TAG_CBOR_PEN: u64 = 112;

/// A SUIT procedure: which sequences run, in which order.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Procedure {
    /// Update procedure: payload-fetch, install, validate.
    Update,
    /// Invocation procedure (secure boot): validate, load, invoke.
    Invoke,
}

impl Procedure {
    /// The sequences of the procedure, in order.
    pub fn sections(self) -> &'static [Section] {
        match self {
            Procedure::Update => &[Section::PayloadFetch, Section::Install, Section::Validate],
            Procedure::Invoke => &[Section::Validate, Section::Load, Section::Invoke],
        }
    }
}

/// Runs authenticated manifests against a device.
pub struct Processor<'p, P: Platform + ?Sized> {
    platform: &'p mut P,
    last_sequence_number: u64,
}

impl<'p, P: Platform + ?Sized> Processor<'p, P> {
    /// A processor for a device whose last accepted manifest had `last_sequence_number`.
    pub fn new(platform: &'p mut P, last_sequence_number: u64) -> Self {
        Processor {
            platform,
            last_sequence_number,
        }
    }

    /// Runs a procedure. On success the caller stores `manifest.sequence_number()`.
    pub fn process(
        &mut self,
        manifest: &AuthenticatedManifest<'_>,
        procedure: Procedure,
    ) -> Result<(), SuitError> {
        self.run_sections(manifest, procedure.sections())
    }

    /// Runs the given sequences in order, each preceded by the shared sequence. Absent sequences
    /// are skipped (if none is present, the shared sequence still runs once, so compatibility is
    /// always checked); a severed one is an error.
    pub fn run_sections(
        &mut self,
        manifest: &AuthenticatedManifest<'_>,
        sections: &[Section],
    ) -> Result<(), SuitError> {
        manifest.check_rollback(self.last_sequence_number)?;
        let mut machine = Machine::new(&mut *self.platform, manifest)?;
        let mut ran = false;
        for &section in sections {
            match manifest.manifest().section(section) {
                Member::Present(seq) if section != Section::Shared => {
                    machine.run_top(section, Some(seq))?;
                    ran = true;
                }
                Member::Severed => return Err(SuitError::SeveredMemberMissing(section)),
                _ => {}
            }
        }
        if !ran {
            machine.run_top(Section::Shared, None)?;
        }
        Ok(())
    }
}

/// The parameters the shared sequence leaves for one component: what a device needs to know
/// about the payload before it downloads a byte (its size, to refuse endless data; its digest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharedParameters<'a> {
    /// image-digest, when set.
    pub image_digest: Option<SuitDigest<'a>>,
    /// image-size, when set.
    pub image_size: Option<u64>,
    /// uri, when set.
    pub uri: Option<&'a str>,
    /// component-slot, when set.
    pub component_slot: Option<u64>,
}

impl<'p, P: Platform + ?Sized> Processor<'p, P> {
    /// Runs only the shared sequence, the compatibility check of every procedure: the rollback
    /// check, every listed component known to the platform, and the shared sequence's conditions
    /// (vendor and class identifiers, ...). Nothing is fetched or written. Returns the parameters
    /// it left for component `index`.
    ///
    /// A device calls this when a manifest is offered, to refuse it before a byte of the payload
    /// is transferred, and to learn the payload's size and digest.
    pub fn run_shared<'a>(
        &mut self,
        manifest: &AuthenticatedManifest<'a>,
        index: usize,
    ) -> Result<SharedParameters<'a>, SuitError> {
        manifest.check_rollback(self.last_sequence_number)?;
        let mut machine = Machine::new(&mut *self.platform, manifest)?;
        machine.run_top(Section::Shared, None)?;
        let p = machine.params(index)?;
        if index >= machine.count {
            return Err(SuitError::InvalidComponentIndex(index as u64));
        }
        Ok(SharedParameters {
            image_digest: p.digest,
            image_size: p.size,
            uri: p.uri,
            component_slot: p.slot,
        })
    }
}

/// Verifies, authenticates and runs `envelope` in one call; returns the manifest's sequence
/// number for the caller to store once it succeeded.
pub fn process<P: Platform + ?Sized>(
    envelope: &[u8],
    anchors: &[crate::TrustAnchor],
    last_sequence_number: u64,
    procedure: Procedure,
    platform: &mut P,
) -> Result<u64, SuitError> {
    let manifest = crate::authenticate(envelope, anchors)?;
    Processor::new(platform, last_sequence_number).process(&manifest, procedure)?;
    Ok(manifest.sequence_number())
}
