//! The seam between the manifest processor and the device: the [`Platform`] trait.
//!
//! ```text
//!   Processor ── conditions ──▶ identifier_matches, component_slot, read_component
//!             ── fetch ──────▶ fetch (pull, chunk by chunk) ─┐ hashed, size-limited,
//!             ── copy/write ─▶ read_component / content  ────┴▶ begin/write/commit_write
//!             ── swap, invoke ▶ swap, invoke
//!             ── every condition and action ▶ record
//! ```
//!
//! Payload bytes are *pulled* by the processor in chunks it sizes itself, hashed, counted and
//! only then handed to [`Platform::write_component`]. The platform therefore never receives more
//! bytes than the image size allows, and a payload is committed only after its size and digest
//! were checked.

use crate::command::{Command, Section};
use crate::error::{PlatformError, SuitError};
use crate::manifest::ComponentId;

/// A component as the processor hands it to the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component<'a> {
    /// Index in the manifest's component list.
    pub index: usize,
    /// The component identifier.
    pub id: ComponentId<'a>,
    /// The component-slot parameter, when set (A/B images).
    pub slot: Option<u64>,
}

/// An identifier checked by the vendor/class/device identifier conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identifier<'a> {
    /// Vendor ID as a UUID (16 bytes).
    VendorUuid(&'a [u8]),
    /// Vendor ID as a CBOR PEN (relative OID bytes under tag 112).
    VendorPen(&'a [u8]),
    /// Class ID (UUID).
    Class(&'a [u8]),
    /// Device ID (UUID).
    Device(&'a [u8]),
}

/// The identifiers a simple device matches, for implementing
/// [`Platform::identifier_matches`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceIdentity<'a> {
    /// Vendor UUIDs the device accepts.
    pub vendor_ids: &'a [&'a [u8]],
    /// Vendor PENs (relative OIDs) the device accepts.
    pub vendor_pens: &'a [&'a [u8]],
    /// Class UUIDs the device belongs to.
    pub class_ids: &'a [&'a [u8]],
    /// The device's own UUID, if it has one.
    pub device_id: Option<&'a [u8]>,
}

impl DeviceIdentity<'_> {
    /// True when `id` is one of the device's identifiers.
    pub fn matches(&self, id: Identifier<'_>) -> bool {
        match id {
            Identifier::VendorUuid(v) => self.vendor_ids.contains(&v),
            Identifier::VendorPen(v) => self.vendor_pens.contains(&v),
            Identifier::Class(v) => self.class_ids.contains(&v),
            Identifier::Device(v) => self.device_id == Some(v),
        }
    }
}

/// The result of one command, for the platform's reporting engine (and for tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The top-level sequence being run.
    pub section: Section,
    /// The condition or directive.
    pub command: Command,
    /// The component it applied to.
    pub component: usize,
    /// The command's reporting policy bits.
    pub reporting_policy: u64,
    /// Its outcome.
    pub result: Result<(), SuitError>,
}

/// What the device provides to the manifest processor.
pub trait Platform {
    /// True when the device has the component `id`. Checked for every listed component before any
    /// sequence runs; a manifest naming an unknown component is refused.
    fn has_component(&self, id: &ComponentId<'_>) -> bool;

    /// True when the device (for this component) has the identifier `id`.
    fn identifier_matches(&self, component: &Component<'_>, id: Identifier<'_>) -> bool;

    /// The slot the component currently occupies, for condition-component-slot.
    fn component_slot(&self, component: &Component<'_>) -> Option<u64> {
        let _ = component;
        None
    }

    /// Largest number of bytes the component can hold (limits fetches without an image size).
    fn capacity(&self, component: &Component<'_>) -> u64;

    /// Reads the component's current content from `offset`; returns the number of bytes placed
    /// at the start of `buf`, 0 at the end of the content.
    fn read_component(
        &mut self,
        component: &Component<'_>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, PlatformError>;

    /// Prepares the component to receive new content (e.g. erases a slot).
    fn begin_write(&mut self, component: &Component<'_>) -> Result<(), PlatformError>;

    /// Writes `data` at `offset` of the component being written.
    fn write_component(
        &mut self,
        component: &Component<'_>,
        offset: u64,
        data: &[u8],
    ) -> Result<(), PlatformError>;

    /// Called once the whole payload (`len` bytes) passed its size and digest checks.
    fn commit_write(&mut self, component: &Component<'_>, len: u64) -> Result<(), PlatformError>;

    /// Called instead of `commit_write` when the payload was refused; the content written so far
    /// must not be used.
    fn abort_write(&mut self, component: &Component<'_>) {
        let _ = component;
    }

    /// Reads the resource at `uri` from `offset` into `buf`; returns the number of bytes placed at
    /// the start of `buf`, 0 at the end of the resource. Never return more than `buf.len()`.
    fn fetch(&mut self, uri: &str, offset: u64, buf: &mut [u8]) -> Result<usize, PlatformError>;

    /// Exchanges the content of `component` and `source`.
    fn swap(
        &mut self,
        component: &Component<'_>,
        source: &Component<'_>,
    ) -> Result<(), PlatformError> {
        let _ = (component, source);
        Err(PlatformError::Unsupported)
    }

    /// Transfers execution to the component (may not return on a device).
    fn invoke(
        &mut self,
        component: &Component<'_>,
        args: Option<&[u8]>,
    ) -> Result<(), PlatformError>;

    /// Receives the outcome of each condition and action.
    fn record(&mut self, record: &Record) {
        let _ = record;
    }
}
