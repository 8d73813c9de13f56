//! The secure partition's state, reached by the veneers one at a time.
//!
//! A veneer that finds the state busy (a non-secure interrupt handler calling the gate while
//! another call is in progress) gets `BAD_STATE` instead of a second mutable reference.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use castellan_gate::psa;
use castellan_platform_an505::handoff::Handoff;
use castellan_platform_an505::{DrbgRng, HostFlash, HostOtp};
use castellan_services::{OtpCounterMap, SecureServices};

use crate::fwu::Fwu;

/// The services of `castellan-services` on this board's parts.
pub type Services = SecureServices<HostFlash, OtpCounterMap<HostOtp>, DrbgRng>;

/// Everything the secure partition keeps between gate calls.
pub struct State {
    /// Crypto, trusted storage, attestation, lifecycle (they own flash, OTP counters, RNG).
    pub svc: Services,
    /// The bootloader's hand-off, CDIs wiped.
    pub boot: Handoff,
    /// Whether the running image is confirmed (changes when the application accepts it).
    pub confirmed: bool,
    /// The operator command for this run.
    pub command: [u8; 200],
    /// Its length.
    pub command_len: usize,
    /// Firmware-update state.
    pub fwu: Fwu,
}

impl State {
    /// The flash, shared by trusted storage and the update slots.
    pub fn flash(&mut self) -> &mut HostFlash {
        &mut self.svc.platform_mut().flash
    }
}

/// The state's storage. It starts uninitialised (in `.bss`, not `.data`: an `Option<State>`
/// initialised to `None` is not all zeroes, and would keep a 5 KiB image of itself in flash);
/// [`READY`] says whether [`init`] has written it.
struct Slot(UnsafeCell<MaybeUninit<State>>);

// Safety: access goes through `with`, which admits one borrower at a time (BUSY flag).
unsafe impl Sync for Slot {}

static SLOT: Slot = Slot(UnsafeCell::new(MaybeUninit::uninit()));
static BUSY: AtomicBool = AtomicBool::new(false);
/// Set once [`init`] has written [`SLOT`]; never cleared (the state lives until reset).
static READY: AtomicBool = AtomicBool::new(false);

/// Installs the state (once, before the non-secure side starts; a second call is ignored).
pub fn init(s: State) {
    if BUSY.swap(true, Ordering::Acquire) {
        return;
    }
    if !READY.load(Ordering::Acquire) {
        // Safety: BUSY is held, so no other reference exists; READY is clear, so the slot
        // holds no state that this write would leak.
        unsafe {
            (*SLOT.0.get()).write(s);
        }
        READY.store(true, Ordering::Release);
    }
    BUSY.store(false, Ordering::Release);
}

/// Runs `f` on the state, or returns `BAD_STATE` when it is busy or not initialised.
pub fn with<R>(f: impl FnOnce(&mut State) -> Result<R, i32>) -> Result<R, i32> {
    if BUSY.swap(true, Ordering::Acquire) {
        return Err(psa::ERROR_BAD_STATE);
    }
    let r = if READY.load(Ordering::Acquire) {
        // Safety: BUSY is held, so this is the only live reference until it is released
        // below, and READY says `init` wrote the slot.
        f(unsafe { (*SLOT.0.get()).assume_init_mut() })
    } else {
        Err(psa::ERROR_BAD_STATE)
    };
    BUSY.store(false, Ordering::Release);
    r
}
