//! TrustZone-M on the AN505: the secure partition's split of memory (SAU, MPCs, NSCCFG), fault
//! reporting registers, the start of the non-secure world, and the TT-based checks that every
//! pointer coming from the non-secure side goes through before the secure side touches it.
//!
//! ```text
//!  SAU region 0  0x0020_0000..0x003F_FFFF  non-secure code   (MPC0 LUT words 64..127 = NS)
//!  SAU region 1  0x2820_0000..0x283F_FFFF  non-secure RAM    (MPC2 LUT words 0..63  = NS)
//!  SAU region 2  veneer page (1 KiB)         non-secure callable (NSCCFG.CODENSC = 1)
//!  SAU region 3  0x4200_0000..0x4200_00FF  LAN9118 Ethernet  (AHB expansion PPC 0 port 5 = NS)
//!  SAU region 4  0x4008_0000..0x4008_0FFF  the security controller's non-secure privilege
//!                                          registers (the application opens its own
//!                                          unprivileged access to the Ethernet port there)
//!  everything else: secure (no SAU region; the IDAU's secure half)
//! ```
//!
//! The Ethernet controller is the only peripheral given to the non-secure world: its network
//! stack drives it (docs/firmware.md, "Network path"). Every other peripheral stays behind its
//! PPC's reset state (secure).

use core::arch::asm;

use crate::map::{NS_CODE_END, NS_CODE_START, NS_RAM_END, NS_RAM_START, VENEER_BASE, VENEER_SIZE};

const SAU_CTRL: *mut u32 = 0xE000_EDD0 as *mut u32;
const SAU_RNR: *mut u32 = 0xE000_EDD8 as *mut u32;
const SAU_RBAR: *mut u32 = 0xE000_EDDC as *mut u32;
const SAU_RLAR: *mut u32 = 0xE000_EDE0 as *mut u32;
const SFSR: *mut u32 = 0xE000_EDE4 as *mut u32;
const SFAR: *const u32 = 0xE000_EDE8 as *const u32;
const SHCSR: *mut u32 = 0xE000_ED24 as *mut u32;
const CFSR: *mut u32 = 0xE000_ED28 as *mut u32;
const HFSR: *mut u32 = 0xE000_ED2C as *mut u32;
const AIRCR: *mut u32 = 0xE000_ED0C as *mut u32;
const VTOR_NS: *mut u32 = 0xE002_ED08 as *mut u32;
const MPU_CTRL_NS: *const u32 = 0xE002_ED94 as *const u32;
const NSCCFG: *mut u32 = 0x5008_0014 as *mut u32;
/// AHBNSPPCEXP0: bit n makes port n of AHB expansion PPC 0 non-secure.
const AHBNSPPCEXP0: *mut u32 = 0x5008_0060 as *mut u32;
/// The LAN9118's port on AHB expansion PPC 0.
const ETHERNET_PPC_PORT: u32 = 5;
/// The LAN9118's register window (non-secure alias).
const ETHERNET: (u32, u32) = (0x4200_0000, 0x100);
/// The security controller's non-secure privilege control page.
const NS_PRIV_CTRL: (u32, u32) = (0x4008_0000, 0x1000);
const MPC0: usize = 0x5800_7000;
const MPC2: usize = 0x5800_9000;

/// Programs MPC LUT words `first..=last` to all ones (every 1 KiB block non-secure).
///
/// # Safety
/// `mpc` must be one of the board's MPC base addresses.
unsafe fn mpc_set_nonsecure(mpc: usize, first: u32, last: u32) {
    // Safety: MPC registers (CTRL +0x00, BLK_IDX +0x18, BLK_LUT +0x1C) of a valid MPC.
    unsafe {
        let ctrl = mpc as *mut u32;
        let idx = (mpc + 0x18) as *mut u32;
        let lut = (mpc + 0x1c) as *mut u32;
        // Auto-increment off: set the index for every word.
        let c = core::ptr::read_volatile(ctrl);
        core::ptr::write_volatile(ctrl, c & !(1 << 8));
        for w in first..=last {
            core::ptr::write_volatile(idx, w);
            core::ptr::write_volatile(lut, 0xffff_ffff);
        }
    }
}

/// Configures the split (SAU, MPC0, MPC2, NSCCFG, the Ethernet controller's PPC port), enables SecureFault, keeps HardFault, NMI
/// and BusFault secure and lets only the secure side request a system reset.
pub fn configure() {
    // Safety: architectural (SAU, SCB) and board (MPC, NSCCFG) registers; the secure partition
    // owns them and configures them once, before any non-secure code runs.
    unsafe {
        mpc_set_nonsecure(MPC0, 64, 127);
        mpc_set_nonsecure(MPC2, 0, 63);
        core::ptr::write_volatile(NSCCFG, 1);
        let p = core::ptr::read_volatile(AHBNSPPCEXP0);
        core::ptr::write_volatile(AHBNSPPCEXP0, p | (1 << ETHERNET_PPC_PORT));
        let regions = [
            (NS_CODE_START, NS_CODE_END - 1, 0b01u32),
            (NS_RAM_START, NS_RAM_END - 1, 0b01),
            (VENEER_BASE, VENEER_BASE + VENEER_SIZE - 1, 0b11),
            (ETHERNET.0, ETHERNET.0 + ETHERNET.1 - 1, 0b01),
            (NS_PRIV_CTRL.0, NS_PRIV_CTRL.0 + NS_PRIV_CTRL.1 - 1, 0b01),
        ];
        for (i, (base, limit, flags)) in regions.iter().enumerate() {
            core::ptr::write_volatile(SAU_RNR, i as u32);
            core::ptr::write_volatile(SAU_RBAR, base & !0x1f);
            core::ptr::write_volatile(SAU_RLAR, (limit & !0x1f) | flags);
        }
        core::ptr::write_volatile(SAU_CTRL, 1);
        // SHCSR.SECUREFAULTENA
        let s = core::ptr::read_volatile(SHCSR);
        core::ptr::write_volatile(SHCSR, s | (1 << 19));
        // AIRCR: VECTKEY, BFHFNMINS = 0 (faults stay secure), SYSRESETREQS = 1.
        let a = core::ptr::read_volatile(AIRCR) & 0x0000_ffff;
        let a = (a & !(1 << 13)) | (1 << 3);
        core::ptr::write_volatile(AIRCR, 0x05fa_0000 | a);
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
    }
}

/// Starts the non-secure application whose vector table is at `vectors` (non-secure alias),
/// in unprivileged thread mode. Never returns: the secure side runs again only through the
/// veneers and its exception handlers.
///
/// # Safety
/// [`configure`] must have run and a verified application must be loaded at `vectors`.
pub unsafe fn start_nonsecure(vectors: u32) -> ! {
    // Safety: reading the NS vector table through its NS alias (MPC0 marks it non-secure) and
    // writing the banked NS registers, as the architecture intends for the secure side.
    unsafe {
        core::ptr::write_volatile(VTOR_NS, vectors);
        let msp = core::ptr::read_volatile(vectors as *const u32);
        let reset = core::ptr::read_volatile((vectors + 4) as *const u32);
        asm!("msr msp_ns, {0}", in(reg) msp);
        // CONTROL_NS.nPRIV = 1: the application's thread mode is unprivileged.
        asm!("msr control_ns, {0}", in(reg) 1u32);
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
        let entry: extern "cmse-nonsecure-call" fn() -> ! = core::mem::transmute::<
            usize,
            extern "cmse-nonsecure-call" fn() -> !,
        >((reset & !1) as usize);
        entry()
    }
}

/// Asks for a system reset (AIRCR.SYSRESETREQ).
pub fn system_reset() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}

/// The fault status of the moment, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultStatus {
    /// SecureFault status register.
    pub sfsr: u32,
    /// SecureFault address register (valid when SFSR.SFARVALID, bit 6).
    pub sfar: u32,
    /// Configurable fault status register.
    pub cfsr: u32,
    /// HardFault status register.
    pub hfsr: u32,
    /// The non-secure main stack pointer.
    pub msp_ns: u32,
    /// The PC the non-secure side faulted at (from its exception frame, MSP_NS + 24).
    pub ns_pc: u32,
}

impl FaultStatus {
    /// Reads the fault registers and the non-secure exception frame.
    pub fn read() -> Self {
        let msp_ns: u32;
        // Safety: reading banked stack pointers and fault registers has no side effect.
        unsafe {
            asm!("mrs {0}, msp_ns", out(reg) msp_ns);
        }
        let frame_ok = (NS_RAM_START..NS_RAM_END - 32).contains(&msp_ns);
        // Safety: fault status registers are architectural; the NS frame is read only when
        // MSP_NS points into non-secure RAM.
        unsafe {
            FaultStatus {
                sfsr: core::ptr::read_volatile(SFSR),
                sfar: core::ptr::read_volatile(SFAR),
                cfsr: core::ptr::read_volatile(CFSR),
                hfsr: core::ptr::read_volatile(HFSR),
                msp_ns,
                ns_pc: if frame_ok {
                    core::ptr::read_volatile((msp_ns + 24) as *const u32)
                } else {
                    0
                },
            }
        }
    }

    /// Names the SecureFault cause bits that are set.
    pub fn sfsr_causes(&self) -> SfsrCauses {
        SfsrCauses(self.sfsr)
    }
}

/// Display of SFSR's cause bits.
#[derive(Clone, Copy, Debug)]
pub struct SfsrCauses(pub u32);

impl castellan_text::Describe for SfsrCauses {
    fn describe(
        &self,
        out: &mut dyn castellan_text::Sink,
    ) -> Result<(), castellan_text::TextError> {
        const NAMES: [&str; 8] = [
            "INVEP (invalid secure entry point)",
            "INVIS (invalid integrity signature)",
            "INVER (invalid exception return)",
            "AUVIOL (attribution unit violation: non-secure access to secure memory)",
            "INVTRAN (invalid transition)",
            "LSPERR",
            "SFARVALID",
            "LSERR",
        ];
        let mut first = true;
        for (i, n) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    out.put(", ")?;
                }
                out.put(n)?;
                first = false;
            }
        }
        if first {
            out.put("none")?;
        }
        Ok(())
    }
}

impl core::fmt::Display for SfsrCauses {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        castellan_text::display(self, f)
    }
}

/// Clears the SecureFault and configurable fault status (write-one-to-clear).
pub fn clear_fault_status() {
    // Safety: W1C fault status registers.
    unsafe {
        core::ptr::write_volatile(SFSR, 0xff);
        core::ptr::write_volatile(CFSR, 0xffff_ffff);
        core::ptr::write_volatile(HFSR, 0xffff_ffff);
    }
}

/// `TTAT` of `addr`: the attributes the non-secure, unprivileged view has of it.
#[inline]
fn ttat(addr: u32) -> u32 {
    let r: u32;
    // Safety: TTAT only queries the security and MPU attribution of an address.
    unsafe {
        asm!("ttat {0}, {1}", out(reg) r, in(reg) addr, options(nomem, nostack, preserves_flags));
    }
    r
}

const TT_SRVALID: u32 = 1 << 17;
const TT_MRVALID: u32 = 1 << 16;
const TT_NSR: u32 = 1 << 20;
const TT_NSRW: u32 = 1 << 21;

/// Access a non-secure pointer is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The secure side will read the range.
    Read,
    /// The secure side will write the range.
    Write,
}

/// True when the whole range `addr..addr + len` is memory the non-secure side may access
/// (`access`) unprivileged: what `cmse_check_address_range` with `CMSE_NONSECURE |
/// CMSE_MPU_UNPRIV` establishes. Both ends are queried with `TTAT`; they must give the same
/// answer (same SAU, IDAU and MPU region, so the range does not cross into another region) with
/// the SAU region valid and the non-secure read (or read-write) permission set. An empty range
/// is accepted (nothing is touched); a range that wraps around is refused.
pub fn ns_range_ok(addr: u32, len: u32, access: Access) -> bool {
    if len == 0 {
        return true;
    }
    let Some(last) = addr.checked_add(len - 1) else {
        return false;
    };
    let a = ttat(addr);
    let b = ttat(last);
    if a != b || a & TT_SRVALID == 0 {
        return false;
    }
    // With the non-secure MPU on, an address outside every MPU region says nothing about the
    // regions between the two ends: refuse.
    // Safety: reading MPU_CTRL_NS has no side effect.
    let mpu_on = unsafe { core::ptr::read_volatile(MPU_CTRL_NS) } & 1 != 0;
    if mpu_on && a & TT_MRVALID == 0 {
        return false;
    }
    let need = match access {
        Access::Read => TT_NSR,
        Access::Write => TT_NSRW,
    };
    a & need != 0
}
