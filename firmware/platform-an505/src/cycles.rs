//! Counting instructions with SysTick under QEMU `-icount shift=0`.
//!
//! QEMU models no DWT cycle counter. With `-icount shift=0` every guest instruction advances
//! virtual time by exactly 1 ns, and SysTick (processor clock source) counts virtual time at the
//! board's clock, so SysTick ticks are instructions divided by a constant. [`calibrate`]
//! measures that constant with a loop of known length, so the result does not depend on QEMU's
//! clock setting: instructions = ticks × calibration. The figure counts instructions, not
//! cycles (QEMU does not model pipeline timing).
//!
//! Boot time (reset to the first non-secure instruction) is read from the board's FPGAIO
//! counter instead ([`board_counter`]): it starts at reset, so no stage has to start it.

use core::sync::atomic::{AtomicU32, Ordering};

const SYST_CSR: *mut u32 = 0xE000_E010 as *mut u32;
const SYST_RVR: *mut u32 = 0xE000_E014 as *mut u32;
const SYST_CVR: *mut u32 = 0xE000_E018 as *mut u32;
const RELOAD: u32 = 0x00ff_ffff;
/// The FPGAIO block's free-running `COUNTER` (secure alias of 0x4030_2000 + 0x18): zero at
/// reset (QEMU resets it with the machine, SYSRESETREQ included), counting at the prescale
/// clock while `PRESCALE` keeps its reset value 0.
const FPGAIO_COUNTER: *const u32 = 0x5030_2018 as *const u32;

/// SysTick wraps counted by the image's SysTick handler (it calls [`on_systick`]).
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// Call from the `SysTick` exception handler.
pub fn on_systick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Starts SysTick free-running on the processor clock with its interrupt enabled.
pub fn start() {
    // Safety: SysTick registers are architectural; this image owns SysTick.
    unsafe {
        core::ptr::write_volatile(SYST_CSR, 0);
        core::ptr::write_volatile(SYST_RVR, RELOAD);
        core::ptr::write_volatile(SYST_CVR, 0);
        // ENABLE | TICKINT | CLKSOURCE (processor clock)
        core::ptr::write_volatile(SYST_CSR, 0b111);
    }
}

/// Ticks since [`start`] (monotonic, 64-bit).
pub fn now() -> u64 {
    loop {
        let w1 = WRAPS.load(Ordering::Relaxed);
        // Safety: reading the SysTick current value register.
        let cvr = unsafe { core::ptr::read_volatile(SYST_CVR) };
        let w2 = WRAPS.load(Ordering::Relaxed);
        if w1 == w2 {
            return u64::from(w1) * u64::from(RELOAD + 1) + u64::from(RELOAD - cvr);
        }
    }
}

/// Ticks of the board counter since reset: with [`calibrate_board_counter`], the instructions
/// from reset to here (under `-icount shift=0`, where virtual time is instructions). Nothing
/// needs to start it, so it measures a whole boot chain across the stages' hand-offs.
pub fn board_counter() -> u32 {
    // Safety: a read of the FPGAIO counter register (secure alias, secure state).
    unsafe { core::ptr::read_volatile(FPGAIO_COUNTER) }
}

/// [`calibrate`] for the board counter: (instructions, board-counter ticks) of a known loop.
pub fn calibrate_board_counter(iterations: u32) -> (u64, u64) {
    calibrate_with(|| u64::from(board_counter()), iterations)
}

/// Runs a loop of exactly `2 * iterations + small` instructions and returns
/// (instructions, ticks) for it.
pub fn calibrate(iterations: u32) -> (u64, u64) {
    calibrate_with(now, iterations)
}

/// [`calibrate`] against any monotonic tick source.
fn calibrate_with(clock: impl Fn() -> u64, iterations: u32) -> (u64, u64) {
    let t0 = clock();
    // Safety: a register-only countdown loop: `subs` + `bne` per iteration.
    unsafe {
        core::arch::asm!(
            "1:",
            "subs {n}, {n}, #1",
            "bne 1b",
            n = inout(reg) iterations => _,
            options(nomem, nostack),
        );
    }
    let t1 = clock();
    (2 * u64::from(iterations), t1.saturating_sub(t0))
}
