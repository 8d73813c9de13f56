//! The secure partition's state, reached by the veneers one at a time.
//!
//! A veneer that finds the state busy (a non-secure interrupt handler calling the gate while
//! another call is in progress) gets `BAD_STATE` instead of a second mutable reference.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use castellan_gate::status;
use castellan_platform_an505::handoff::Handoff;
use castellan_platform_an505::HostFlash;

use crate::attest::AttestationKey;
use crate::fwu::Fwu;

/// Everything the services own.
pub struct Services {
    /// The flash (update slots, trailers).
    pub flash: HostFlash,
    /// The attestation key (derived from CDI_Attest).
    pub key: AttestationKey,
    /// The bootloader's hand-off, CDIs wiped.
    pub boot: Handoff,
    /// Boot seed for attestation tokens (fresh at each boot).
    pub boot_seed: [u8; 32],
    /// Whether the running image is confirmed (changes when the application accepts it).
    pub confirmed: bool,
    /// The operator command for this run.
    pub command: [u8; 200],
    /// Its length.
    pub command_len: usize,
    /// Firmware-update state.
    pub fwu: Fwu,
}

struct Slot(UnsafeCell<Option<Services>>);

// Safety: access goes through `with`, which admits one borrower at a time (BUSY flag).
unsafe impl Sync for Slot {}

static SLOT: Slot = Slot(UnsafeCell::new(None));
static BUSY: AtomicBool = AtomicBool::new(false);

/// Installs the state (once, before the non-secure side starts).
pub fn init(s: Services) {
    if BUSY.swap(true, Ordering::Acquire) {
        return;
    }
    // Safety: BUSY is held, so no other reference exists.
    unsafe {
        *SLOT.0.get() = Some(s);
    }
    BUSY.store(false, Ordering::Release);
}

/// Runs `f` on the state, or returns `BAD_STATE` when it is busy or not initialised.
pub fn with<R>(f: impl FnOnce(&mut Services) -> Result<R, i32>) -> Result<R, i32> {
    if BUSY.swap(true, Ordering::Acquire) {
        return Err(status::BAD_STATE);
    }
    // Safety: BUSY is held: this is the only live reference until it is released below.
    let r = match unsafe { (*SLOT.0.get()).as_mut() } {
        Some(s) => f(s),
        None => Err(status::BAD_STATE),
    };
    BUSY.store(false, Ordering::Release);
    r
}
