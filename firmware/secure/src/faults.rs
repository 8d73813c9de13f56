//! Faults while the non-secure world runs: the secure side handles and reports them, then stops
//! the non-secure world (ends the run). A non-secure access to secure memory is a SecureFault
//! (SFSR.AUVIOL); QEMU 7.2 leaves SFAR unset for it, so the report takes the faulting
//! non-secure PC from the non-secure exception frame (MSP_NS + 24). Each fault of the
//! non-secure world is scored by the detector before the world stops.

use core::sync::atomic::{AtomicBool, Ordering};

use castellan_gate::FaultKind;
use castellan_platform_an505::console::line;
use castellan_platform_an505::tz::{self, FaultStatus};
use castellan_platform_an505::{EXIT_NS_FAULT, EXIT_SECURE_ERROR, semihosting};
use castellan_text::Piece::{Hex, Str, Text};
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

/// Scores a fault of the non-secure world in the detector and says whether the alarm is set.
fn scored(kind: FaultKind) {
    #[cfg(not(feature = "detect"))]
    let _ = kind;
    #[cfg(feature = "detect")]
    let state = match crate::detect::fault(kind) {
        Some(true) => "alarm set",
        Some(false) => "no alarm",
        None => "not scored (state busy)",
    };
    #[cfg(feature = "detect")]
    line("[secure] detector: fault scored, {}", &[Str(state)]);
}

#[exception]
fn SecureFault() -> ! {
    let f = FaultStatus::read();
    if from_nonsecure() {
        line(
            "[secure] SecureFault from the non-secure side: SFSR={} ({}), SFAR={}, non-secure PC {}",
            &[
                Hex(f.sfsr.into(), 2),
                Text(&f.sfsr_causes()),
                Str(if f.sfsr & (1 << 6) != 0 {
                    "valid"
                } else {
                    "not recorded"
                }),
                Hex(f.ns_pc.into(), 8),
            ],
        );
        scored(FaultKind::Secure);
        line("[secure] non-secure world stopped", &[]);
        tz::clear_fault_status();
        semihosting::exit(EXIT_NS_FAULT)
    }
    line(
        "[secure] SecureFault in secure code: SFSR={} ({})",
        &[Hex(f.sfsr.into(), 2), Text(&f.sfsr_causes())],
    );
    semihosting::exit(EXIT_SECURE_ERROR)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let f = FaultStatus::read();
    if from_nonsecure() {
        line(
            "[secure] HardFault from the non-secure side: HFSR={} CFSR={} SFSR={}, non-secure PC {}",
            &[
                Hex(f.hfsr.into(), 8),
                Hex(f.cfsr.into(), 8),
                Hex(f.sfsr.into(), 2),
                Hex(f.ns_pc.into(), 8),
            ],
        );
        scored(FaultKind::Hard);
        line("[secure] non-secure world stopped", &[]);
        semihosting::exit(EXIT_NS_FAULT)
    }
    line(
        "[secure] HardFault in secure code: HFSR={} CFSR={} PC {}",
        &[
            Hex(f.hfsr.into(), 8),
            Hex(f.cfsr.into(), 8),
            Hex(frame.pc().into(), 8),
        ],
    );
    semihosting::exit(EXIT_SECURE_ERROR)
}
