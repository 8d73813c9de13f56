//! The hand-off page: what one secure stage leaves for the next in secure RAM (TF-M calls this
//! the shared boot data), plus the emulated UDS lock register.
//!
//! ```text
//!  0x381F_F000  Handoff (magic, writer, lifecycle, DICE mode, CDIs, measurements, boot summary)
//!  0x381F_FFFC  UDS lock word: "unlocked" only after the ROM stage opened it at reset, until it
//!               locks it again (fail closed: any other value reads as locked)
//! ```
//!
//! The page lies in secure RAM, which the non-secure side cannot reach (MPC1 stays secure, no
//! SAU region). The CDIs in it are secrets: each stage wipes them once it has taken its copy.

use core::ptr;

use crate::map::HANDOFF_ADDR;

/// "CSLH".
pub const HANDOFF_MAGIC: u32 = 0x484c_5343;
/// Written by the ROM stage for the bootloader.
pub const STAGE_ROM: u32 = 1;
/// Written by the bootloader for the secure partition.
pub const STAGE_BOOTLOADER: u32 = 2;
/// Measurements the page holds.
pub const MAX_MEASUREMENTS: usize = 4;
/// Bytes of refusal text kept.
pub const TEXT_CAP: usize = 192;

const UDS_LOCK_ADDR: u32 = HANDOFF_ADDR + 0xffc;
/// The only value that means "unlocked": anything else (a lock, garbage) reads as locked.
const UDS_UNLOCKED: u32 = 0x554e_4c4b;

/// One measured image, as attestation reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeasurementRecord {
    /// Measurement type (ASCII, `sw_type_len` bytes), e.g. "BL" or "SPE".
    pub sw_type: [u8; 12],
    /// Length of `sw_type`.
    pub sw_type_len: u32,
    /// SHA-256 of header, payload and protected TLVs.
    pub digest: [u8; 32],
    /// SHA-256 of the signing key's SubjectPublicKeyInfo.
    pub signer_id: [u8; 32],
    /// major, minor, revision, build.
    pub version: [u32; 4],
    /// Security counter (valid when `has_security_counter` is 1).
    pub security_counter: u32,
    /// 1 when the image carries a security counter.
    pub has_security_counter: u32,
}

impl MeasurementRecord {
    /// A record from a stage's measurement of an image.
    pub fn new(
        sw_type: &str,
        digest: &[u8],
        signer_id: &[u8; 32],
        version: castellan_image::Version,
        security_counter: Option<u32>,
    ) -> Self {
        let mut r = MeasurementRecord::default();
        r.sw_type_len = put_text(&mut r.sw_type, sw_type);
        for (d, s) in r.digest.iter_mut().zip(digest) {
            *d = *s;
        }
        r.signer_id = *signer_id;
        r.version = [
            u32::from(version.major),
            u32::from(version.minor),
            u32::from(version.revision),
            version.build,
        ];
        r.security_counter = security_counter.unwrap_or(0);
        r.has_security_counter = u32::from(security_counter.is_some());
        r
    }

    /// The image version.
    pub fn version(&self) -> castellan_image::Version {
        let [major, minor, revision, build] = self.version;
        castellan_image::Version::new(major as u8, minor as u8, revision as u16, build)
    }

    /// The measurement type as text.
    pub fn sw_type(&self) -> &str {
        let n = (self.sw_type_len as usize).min(self.sw_type.len());
        core::str::from_utf8(self.sw_type.get(..n).unwrap_or(&[])).unwrap_or("")
    }
}

/// What the bootloader did, for the secure services and the application.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootSummary {
    /// Upgrade action code (see `castellan-gate`'s `upgrade` constants).
    pub upgrade: u32,
    /// 1 when the action finished work a power cut interrupted.
    pub resumed: u32,
    /// 1 when the running image is confirmed.
    pub confirmed: u32,
    /// Application anti-rollback counter when the bootloader started.
    pub counter_before: u32,
    /// ... and when it handed over.
    pub counter_after: u32,
    /// Length of `text`.
    pub text_len: u32,
    /// Why an upgrade was refused (UTF-8), empty otherwise.
    pub text: [u8; TEXT_CAP],
}

impl Default for BootSummary {
    fn default() -> Self {
        BootSummary {
            upgrade: 0,
            resumed: 0,
            confirmed: 0,
            counter_before: 0,
            counter_after: 0,
            text_len: 0,
            text: [0; TEXT_CAP],
        }
    }
}

/// The hand-off record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    /// [`HANDOFF_MAGIC`] when valid.
    pub magic: u32,
    /// Which stage wrote it ([`STAGE_ROM`], [`STAGE_BOOTLOADER`]).
    pub stage: u32,
    /// PSA lifecycle value (0x1000, 0x2000, 0x3000, 0x6000).
    pub lifecycle: u32,
    /// DICE mode byte.
    pub dice_mode: u32,
    /// CDI_Attest for the next stage (secret).
    pub cdi_attest: [u8; 32],
    /// CDI_Seal for the next stage (secret).
    pub cdi_seal: [u8; 32],
    /// Measurements so far, in boot order.
    pub measurements: [MeasurementRecord; MAX_MEASUREMENTS],
    /// Number of valid measurements.
    pub measurement_count: u32,
    /// The bootloader's summary (zero when written by the ROM).
    pub boot: BootSummary,
}

impl Default for Handoff {
    fn default() -> Self {
        Handoff {
            magic: HANDOFF_MAGIC,
            stage: 0,
            lifecycle: 0,
            dice_mode: 0,
            cdi_attest: [0; 32],
            cdi_seal: [0; 32],
            measurements: [MeasurementRecord::default(); MAX_MEASUREMENTS],
            measurement_count: 0,
            boot: BootSummary::default(),
        }
    }
}

impl Handoff {
    /// The valid measurements.
    pub fn measurements(&self) -> &[MeasurementRecord] {
        let n = (self.measurement_count as usize).min(MAX_MEASUREMENTS);
        self.measurements.get(..n).unwrap_or(&[])
    }

    /// The refusal text of the boot summary.
    pub fn boot_text(&self) -> &str {
        let n = (self.boot.text_len as usize).min(TEXT_CAP);
        core::str::from_utf8(self.boot.text.get(..n).unwrap_or(&[])).unwrap_or("")
    }
}

/// Reads the page; `None` unless it holds a record written by `stage`.
pub fn read(stage: u32) -> Option<Handoff> {
    // Safety: the hand-off page is reserved secure RAM (outside every image's RAM region) and
    // `Handoff` is plain integers, valid for any bit pattern.
    let h: Handoff = unsafe { ptr::read_volatile(HANDOFF_ADDR as *const Handoff) };
    (h.magic == HANDOFF_MAGIC && h.stage == stage).then_some(h)
}

/// Writes the page.
pub fn write(h: &Handoff) {
    // Safety: see `read`; the page is large enough for `Handoff` (checked below at compile
    // time) and nothing else lives there but the UDS lock word at its end.
    unsafe { ptr::write_volatile(HANDOFF_ADDR as *mut Handoff, *h) }
}

/// Wipes the secrets (CDIs) from the page and invalidates it.
pub fn wipe() {
    let base = HANDOFF_ADDR as *mut u8;
    for i in 0..core::mem::size_of::<Handoff>() {
        // Safety: inside the reserved page (see `read`).
        unsafe { ptr::write_volatile(base.add(i), 0) }
    }
}

const _: () = assert!(core::mem::size_of::<Handoff>() < 0xffc);

/// Resets the emulated UDS lock register: only the ROM stage calls this, at reset.
pub fn reset_uds_lock() {
    // Safety: the lock word is reserved in the hand-off page.
    unsafe { ptr::write_volatile(UDS_LOCK_ADDR as *mut u32, UDS_UNLOCKED) }
}

/// Locks the UDS until the next reset.
pub fn lock_uds() {
    // Safety: as `reset_uds_lock`.
    unsafe { ptr::write_volatile(UDS_LOCK_ADDR as *mut u32, 0) }
}

/// True while the UDS is locked.
pub fn uds_locked() -> bool {
    // Safety: as `reset_uds_lock`.
    unsafe { ptr::read_volatile(UDS_LOCK_ADDR as *const u32) != UDS_UNLOCKED }
}

/// Copies `s` into a fixed text field, cut at a character boundary; returns the length.
pub fn put_text(dst: &mut [u8], s: &str) -> u32 {
    let mut n = s.len().min(dst.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    for (d, b) in dst.iter_mut().zip(s.as_bytes().iter().take(n)) {
        *d = *b;
    }
    n as u32
}
