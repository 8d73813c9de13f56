//! The non-secure world's small supervisor: the few privileged operations the unprivileged
//! application needs, behind `SVC`.
//!
//! The secure partition starts the application in unprivileged thread mode (CONTROL_NS.nPRIV),
//! and it must stay there: that is what keeps semihosting (host files) out of its reach (the
//! `ns-semihost` scenario). Yet an async runtime needs a tick (SysTick's registers are
//! privileged), critical sections (masking an interrupt is privileged) and, for the network,
//! unprivileged access to the Ethernet controller's peripheral protection port. The
//! non-secure `SVCall` handler runs privileged in the non-secure world and offers exactly
//! these operations, each a fixed action with no pointer argument:
//!
//! | op | what |
//! |---|---|
//! | [`Op::Start`] | exception priorities (SVC above SysTick), SysTick at the runtime's tick |
//! | [`Op::Mask`] / [`Op::Unmask`] | raise BASEPRI to SysTick's priority / restore it: critical sections |
//! | [`Op::OpenEthernet`] | lets unprivileged code reach the LAN9118's port (AHB expansion PPC 0) |
//!
//! Critical sections mask with BASEPRI rather than PRIMASK: an `SVC` taken while PRIMASK is set
//! escalates to HardFault, and leaving the section needs one more `SVC`. Inside an exception
//! handler (already privileged) the mask is written directly.

use core::arch::{asm, global_asm};

/// SysTick's exception priority; [`Op::Mask`] raises BASEPRI to it.
const TICK_PRIORITY: u32 = 0x80;
/// The core clock of mps2-an505 in QEMU, SysTick's clock source: 20 MHz (measured against
/// QEMU's virtual clock under `-icount`: with 25 MHz assumed, a tick lasted 1.25 ms).
pub const CORE_HZ: u32 = 20_000_000;

const SYST_CSR: *mut u32 = 0xE000_E010 as *mut u32;
const SYST_RVR: *mut u32 = 0xE000_E014 as *mut u32;
const SYST_CVR: *mut u32 = 0xE000_E018 as *mut u32;
const SHPR2: *mut u32 = 0xE000_ED1C as *mut u32;
const SHPR3: *mut u32 = 0xE000_ED20 as *mut u32;
/// AHBNSPPPCEXP0 in the non-secure view of the security controller: bit n lets unprivileged
/// non-secure code reach port n of AHB expansion PPC 0 (the secure side has made the port
/// non-secure with AHBNSPPCEXP0).
const AHBNSPPPCEXP0: *mut u32 = 0x4008_00A0 as *mut u32;
/// The LAN9118's port on AHB expansion PPC 0 (after the VGA port and GPIO 0..3).
pub const ETHERNET_PPC_PORT: u32 = 5;

/// The supervisor's operations (passed in r0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// Exception priorities, then SysTick running with the reload value in r1.
    Start = 0,
    /// Critical section entry: returns the previous BASEPRI.
    Mask = 1,
    /// Critical section exit: restores the BASEPRI in r1.
    Unmask = 2,
    /// Unprivileged access to the Ethernet controller's PPC port.
    OpenEthernet = 3,
}

global_asm!(
    ".section .text.SVCall,\"ax\",%progbits",
    ".global SVCall",
    ".type SVCall,%function",
    ".thumb_func",
    "SVCall:",
    // Thread mode runs on MSP_NS, so the exception frame (r0-r3, r12, lr, pc, xPSR) is at SP.
    "mov r0, sp",
    "b {dispatch}",
    dispatch = sym dispatch,
);

/// The `SVCall` handler's body: `frame` is the caller's exception frame; r0 holds the
/// operation and receives the result.
extern "C" fn dispatch(frame: *mut u32) {
    // Safety: `frame` is the stacked frame of the thread-mode caller (eight words on MSP_NS,
    // set up by the hardware on exception entry); r0 and r1 are its first two words.
    let (op, arg) = unsafe { (frame.read_volatile(), frame.add(1).read_volatile()) };
    let result = match op {
        0 => {
            // Safety: privileged handler mode; SHPR2/SHPR3 and SysTick are architectural
            // registers of this (non-secure) world, written once at start.
            unsafe {
                let shpr2 = SHPR2.read_volatile() & 0x00ff_ffff;
                SHPR2.write_volatile(shpr2); // SVCall priority 0 (highest)
                let shpr3 = SHPR3.read_volatile() & 0x00ff_ffff;
                SHPR3.write_volatile(shpr3 | (TICK_PRIORITY << 24));
                SYST_RVR.write_volatile(arg & 0x00ff_ffff);
                SYST_CVR.write_volatile(0);
                // ENABLE | TICKINT | CLKSOURCE (processor clock)
                SYST_CSR.write_volatile(0b111);
            }
            0
        }
        1 => mask_here(),
        2 => {
            unmask_here(arg);
            0
        }
        3 => {
            // Safety: privileged handler mode; the non-secure privilege control register of
            // the security controller, read-modify-write of one port bit.
            unsafe {
                let v = AHBNSPPPCEXP0.read_volatile();
                AHBNSPPPCEXP0.write_volatile(v | (1 << ETHERNET_PPC_PORT));
                AHBNSPPPCEXP0.read_volatile() >> ETHERNET_PPC_PORT & 1
            }
        }
        _ => u32::MAX,
    };
    // Safety: as above; r0 of the frame is what the caller's `svc` returns.
    unsafe { frame.write_volatile(result) };
}

/// Raises BASEPRI to the tick's priority; returns the previous value. Privileged only.
fn mask_here() -> u32 {
    let old: u32;
    // Safety: reading BASEPRI and raising it with BASEPRI_MAX; called in handler mode.
    unsafe {
        asm!("mrs {0}, basepri", out(reg) old, options(nomem, nostack, preserves_flags));
        asm!("msr basepri_max, {0}", in(reg) TICK_PRIORITY, options(nostack, preserves_flags));
    }
    old
}

/// Restores BASEPRI. Privileged only.
fn unmask_here(old: u32) {
    // Safety: writing BASEPRI back to the value `mask_here` returned; handler mode.
    unsafe { asm!("msr basepri, {0}", in(reg) old, options(nostack, preserves_flags)) };
}

/// Calls the supervisor.
pub fn call(op: Op, arg: u32) -> u32 {
    let r: u32;
    // Safety: `svc 0` enters `SVCall` above, which reads r0/r1 and writes r0 only.
    unsafe {
        asm!("svc 0", inout("r0") op as u32 => r, in("r1") arg, options(nostack));
    }
    r
}

/// True in handler mode (IPSR non-zero): already privileged.
fn in_handler() -> bool {
    let ipsr: u32;
    // Safety: reading IPSR has no side effect and is allowed unprivileged.
    unsafe { asm!("mrs {0}, ipsr", out(reg) ipsr, options(nomem, nostack, preserves_flags)) };
    ipsr & 0x1ff != 0
}

struct Sections;
critical_section::set_impl!(Sections);

// Safety: the section masks SysTick, the only interrupt this image enables (and the only code
// that runs concurrently with thread mode); BASEPRI is restored on release. The runtime is
// single-core.
unsafe impl critical_section::Impl for Sections {
    unsafe fn acquire() -> u32 {
        let old = if in_handler() {
            mask_here()
        } else {
            call(Op::Mask, 0)
        };
        compiler_fence();
        old
    }

    unsafe fn release(old: u32) {
        compiler_fence();
        if in_handler() {
            unmask_here(old)
        } else {
            call(Op::Unmask, old);
        }
    }
}

fn compiler_fence() {
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}
