//! A driver for the SMSC LAN9118 Ethernet controller as QEMU's `mps2-an505` machine models it,
//! for the non-secure application's network stack (`embassy-net` over smoltcp).
//!
//! The controller is a 256-byte window of 32-bit registers: data and status FIFOs for receive
//! and transmit, system control and status registers (CSRs), and behind two of them the MAC's
//! own registers (`MAC_CSR_CMD`/`MAC_CSR_DATA`) and, behind the MAC's MII registers, the PHY.
//! Every access goes through the [`Regs`] trait: [`Mmio`] on the board (volatile loads and
//! stores at the non-secure alias of the controller, [`AN505_NS_BASE`]), a simulated register
//! file in the host tests.
//!
//! ```text
//!  smoltcp ─ embassy-net ─ Driver (this crate) ─ Regs ─ Mmio 0x4200_0000 ─ LAN9118 ─ QEMU net
//!                           receive: RX status FIFO → length → RX data FIFO → frame
//!                           transmit: TX cmd A, cmd B, frame words → TX data FIFO
//! ```
//!
//! What this first layer does: reset and identification (`BYTE_TEST`, `ID_REV`), MAC address,
//! MAC receive/transmit enable (promiscuous mode off: own address and broadcast), PHY reset with
//! autonegotiation and link state from the PHY's status register, one frame at a time each way.
//! It polls: when the receive FIFO is empty it hands the task's waker to a `park` function the
//! caller gives (the firmware wakes it at the next tick), rather than taking the controller's
//! interrupt. Hostile input (lengths in the status words, error bits) is checked: a bad frame
//! is drained and counted, never a panic.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

mod driver;
// The only unsafe code of the crate: the volatile loads and stores of `Mmio`.
#[allow(unsafe_code)]
mod regs;

pub use driver::{FALLBACK_MAC, Lan9118, RxToken, Stats, TxToken};
pub use regs::{AN505_NS_BASE, Mmio, Regs, reg};

/// Largest Ethernet frame the driver passes (no FCS): 1514 bytes, the stack's MTU.
pub const MTU: usize = 1514;

/// Why the controller could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// `BYTE_TEST` did not read `0x87654321`: no controller (or a bus that swaps bytes).
    NotPresent {
        /// What `BYTE_TEST` read.
        byte_test: u32,
    },
    /// `ID_REV` names another chip than the LAN9118 family (`0x0118`).
    UnknownChip {
        /// What `ID_REV` read.
        id_rev: u32,
    },
    /// The soft reset did not finish (`HW_CFG.SRST` stayed set or `PMT_CTRL.READY` stayed clear).
    ResetTimeout,
    /// A MAC register access stayed busy.
    MacBusy,
    /// A PHY register access (MII) stayed busy.
    MiiBusy,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NotPresent { byte_test } => {
                write!(f, "no LAN9118: BYTE_TEST reads {byte_test:#010x}")
            }
            Error::UnknownChip { id_rev } => write!(f, "not a LAN9118: ID_REV {id_rev:#010x}"),
            Error::ResetTimeout => f.write_str("LAN9118 soft reset did not complete"),
            Error::MacBusy => f.write_str("LAN9118 MAC register access stayed busy"),
            Error::MiiBusy => f.write_str("LAN9118 PHY (MII) access stayed busy"),
        }
    }
}

impl core::error::Error for Error {}
