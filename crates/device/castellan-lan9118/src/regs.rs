//! Register access: the [`Regs`] seam, the board's [`Mmio`] implementation, and the register
//! map (offsets and bits as the LAN9118 data sheet and QEMU's model give them).

/// The LAN9118's base address in the AN505 memory map, non-secure alias (the secure alias is
/// `0x5200_0000`). It sits on port 5 of AHB expansion PPC 0; the secure partition opens that
/// port and an SAU region for it to the non-secure world.
pub const AN505_NS_BASE: usize = 0x4200_0000;

/// 32-bit register access at byte offsets `0..0x100` of the controller.
///
/// Reads of the FIFO ports have side effects (they pop a word): implementations must perform
/// exactly one access per call, in order.
pub trait Regs {
    /// Reads the register at `offset`.
    fn read(&mut self, offset: u32) -> u32;
    /// Writes `value` to the register at `offset`.
    fn write(&mut self, offset: u32, value: u32);
}

/// The controller's registers as memory-mapped I/O.
#[derive(Debug)]
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// Register access at `base`.
    ///
    /// # Safety
    /// `base` must be the base of a LAN9118's 256-byte register window that this code may
    /// access (mapped, non-secure and unprivileged-accessible where it runs), and no other
    /// [`Mmio`] may drive the same controller.
    pub const unsafe fn new(base: usize) -> Self {
        Mmio { base }
    }
}

impl Regs for Mmio {
    fn read(&mut self, offset: u32) -> u32 {
        let addr = self.base + (offset & 0xfc) as usize;
        // Safety: `Mmio::new`'s contract makes `base..base + 0x100` the controller's register
        // window; the offset is masked into it and word-aligned.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }

    fn write(&mut self, offset: u32, value: u32) {
        let addr = self.base + (offset & 0xfc) as usize;
        // Safety: as for `read`: a word-aligned register inside the controller's window.
        unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
    }
}

/// Register offsets and bits.
pub mod reg {
    /// Receive data FIFO port (read pops a word).
    pub const RX_DATA_FIFO: u32 = 0x00;
    /// Transmit data FIFO port (write pushes a word).
    pub const TX_DATA_FIFO: u32 = 0x20;
    /// Receive status FIFO port (read pops a status word).
    pub const RX_STATUS_FIFO: u32 = 0x40;
    /// Transmit status FIFO port (read pops a status word).
    pub const TX_STATUS_FIFO: u32 = 0x48;
    /// Chip id and revision (`0x0118` in the top half).
    pub const ID_REV: u32 = 0x50;
    /// Interrupt enables (all off: the driver polls).
    pub const INT_EN: u32 = 0x5c;
    /// Reads `0x87654321`.
    pub const BYTE_TEST: u32 = 0x64;
    /// Receive configuration (`RX_DUMP`).
    pub const RX_CFG: u32 = 0x6c;
    /// Transmit configuration.
    pub const TX_CFG: u32 = 0x70;
    /// Hardware configuration (soft reset).
    pub const HW_CFG: u32 = 0x74;
    /// Receive FIFO fill levels.
    pub const RX_FIFO_INF: u32 = 0x7c;
    /// Transmit FIFO free space and status count.
    pub const TX_FIFO_INF: u32 = 0x80;
    /// Power management (`READY`).
    pub const PMT_CTRL: u32 = 0x84;
    /// Free-running counter at 25 MHz (read-only, no side effect).
    pub const FREE_RUN: u32 = 0x9c;
    /// MAC register command.
    pub const MAC_CSR_CMD: u32 = 0xa4;
    /// MAC register data.
    pub const MAC_CSR_DATA: u32 = 0xa8;

    /// `BYTE_TEST`'s fixed value.
    pub const BYTE_TEST_VALUE: u32 = 0x8765_4321;
    /// `HW_CFG.SRST`: soft reset (self-clearing).
    pub const HW_CFG_SRST: u32 = 1;
    /// `PMT_CTRL.READY`.
    pub const PMT_READY: u32 = 1;
    /// `RX_CFG.RX_DUMP`: empty both receive FIFOs (self-clearing).
    pub const RX_CFG_DUMP: u32 = 1 << 15;
    /// `TX_CFG.TX_ON`: transmitter on.
    pub const TX_CFG_TX_ON: u32 = 1 << 1;
    /// `TX_CFG.TXSAO`: let the transmit status FIFO overrun (the driver does not need it).
    pub const TX_CFG_TXSAO: u32 = 1 << 2;
    /// `MAC_CSR_CMD.BUSY`.
    pub const CSR_BUSY: u32 = 1 << 31;
    /// `MAC_CSR_CMD.R/nW`: a read.
    pub const CSR_READ: u32 = 1 << 30;

    /// MAC register: control.
    pub const MAC_CR: u32 = 1;
    /// MAC register: address bytes 4-5.
    pub const MAC_ADDRH: u32 = 2;
    /// MAC register: address bytes 0-3.
    pub const MAC_ADDRL: u32 = 3;
    /// MAC register: MII (PHY) access.
    pub const MAC_MII_ACC: u32 = 6;
    /// MAC register: MII (PHY) data.
    pub const MAC_MII_DATA: u32 = 7;
    /// `MAC_CR.RXEN`.
    pub const MAC_CR_RXEN: u32 = 1 << 2;
    /// `MAC_CR.TXEN`.
    pub const MAC_CR_TXEN: u32 = 1 << 3;
    /// `MAC_CR.FDPX`: full duplex.
    pub const MAC_CR_FDPX: u32 = 1 << 20;
    /// `MAC_CR.PRMS`: promiscuous (set at reset; the driver clears it).
    pub const MAC_CR_PRMS: u32 = 1 << 18;
    /// `MII_ACC.MIIBZY`.
    pub const MII_BUSY: u32 = 1;
    /// `MII_ACC.MIIWnR`: a write.
    pub const MII_WRITE: u32 = 1 << 1;
    /// The internal PHY's address.
    pub const PHY_ADDR: u32 = 1;
    /// PHY basic control register.
    pub const PHY_BCR: u32 = 0;
    /// PHY basic status register.
    pub const PHY_BSR: u32 = 1;
    /// `BCR`: reset.
    pub const BCR_RESET: u32 = 1 << 15;
    /// `BCR`: autonegotiation enable.
    pub const BCR_AUTONEG: u32 = 1 << 12;
    /// `BSR`: link up.
    pub const BSR_LINK: u32 = 1 << 2;

    /// RX status: error summary.
    pub const RXS_ERROR: u32 = 1 << 15;
    /// RX status: packet length field (bits 29:16, FCS included).
    pub const RXS_LEN_SHIFT: u32 = 16;
    /// RX status: packet length mask (after shifting).
    pub const RXS_LEN_MASK: u32 = 0x3fff;
    /// TX command A: first segment.
    pub const TXA_FIRST: u32 = 1 << 13;
    /// TX command A: last segment.
    pub const TXA_LAST: u32 = 1 << 12;
    /// TX status: error summary.
    pub const TXS_ERROR: u32 = 1 << 15;
}
