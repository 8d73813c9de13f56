//! Faults while the non-secure world runs: the secure side handles and reports them, then stops
//! the non-secure world (ends the run). A non-secure access to secure memory is a SecureFault
//! (SFSR.AUVIOL); QEMU 7.2 leaves SFAR unset for it, so the report takes the faulting
//! non-secure PC from the non-secure exception frame (MSP_NS + 24).

use core::sync::atomic::{AtomicBool, Ordering};

use castellan_platform_an505::tz::{self, FaultStatus};
use castellan_platform_an505::{EXIT_NS_FAULT, EXIT_SECURE_ERROR, println, semihosting};
use cortex_m_rt::{ExceptionFrame, exception};

static NS_RUNNING: AtomicBool = AtomicBool::new(false);
static IN_GATE: AtomicBool = AtomicBool::new(false);

/// Called just before the non-secure world starts.
pub fn ns_started() {
    NS_RUNNING.store(true, Ordering::SeqCst);
}

/// Marks secure code running on behalf of a gate call (a fault then is the secure side's own).
pub fn enter_gate() {
    IN_GATE.store(true, Ordering::SeqCst);
}

/// Marks the end of a gate call.
pub fn leave_gate() {
    IN_GATE.store(false, Ordering::SeqCst);
}

fn from_nonsecure() -> bool {
    NS_RUNNING.load(Ordering::SeqCst) && !IN_GATE.load(Ordering::SeqCst)
}

#[exception]
fn SecureFault() -> ! {
    let f = FaultStatus::read();
    if from_nonsecure() {
        println!(
            "[secure] SecureFault from the non-secure side: SFSR={:#04x} ({}), SFAR={}, non-secure PC {:#010x}",
            f.sfsr,
            f.sfsr_causes(),
            if f.sfsr & (1 << 6) != 0 {
                "valid"
            } else {
                "not recorded"
            },
            f.ns_pc
        );
        println!("[secure] non-secure world stopped");
        tz::clear_fault_status();
        semihosting::exit(EXIT_NS_FAULT)
    }
    println!(
        "[secure] SecureFault in secure code: SFSR={:#04x} ({})",
        f.sfsr,
        f.sfsr_causes()
    );
    semihosting::exit(EXIT_SECURE_ERROR)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let f = FaultStatus::read();
    if from_nonsecure() {
        println!(
            "[secure] HardFault from the non-secure side: HFSR={:#010x} CFSR={:#010x} SFSR={:#04x}, non-secure PC {:#010x}",
            f.hfsr, f.cfsr, f.sfsr, f.ns_pc
        );
        println!("[secure] non-secure world stopped");
        semihosting::exit(EXIT_NS_FAULT)
    }
    println!(
        "[secure] HardFault in secure code: HFSR={:#010x} CFSR={:#010x} PC {:#010x}",
        f.hfsr,
        f.cfsr,
        frame.pc()
    );
    semihosting::exit(EXIT_SECURE_ERROR)
}
