//! The driver proper: bring-up ([`Lan9118::new`]), frame receive and transmit through the FIFOs,
//! and `embassy-net-driver`'s [`Driver`] over them.

use core::task::{Context, Waker};

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState};

use crate::regs::{Regs, reg};
use crate::{Error, MTU};

/// Polls of a busy or reset bit before giving up.
const SPIN_LIMIT: u32 = 100_000;
/// Receive buffer: the largest frame plus its 4-byte FCS, in whole words.
const RX_BUF: usize = (MTU + 4).div_ceil(4) * 4;
/// A locally administered, unicast address for a controller that reports none.
pub const FALLBACK_MAC: [u8; 6] = [0x02, 0x43, 0x53, 0x4c, 0x00, 0x01];

/// Frame counters since bring-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to the stack.
    pub rx_frames: u32,
    /// Frames dropped: error bit in their status, or a length out of range.
    pub rx_dropped: u32,
    /// Frames written to the transmit FIFO.
    pub tx_frames: u32,
    /// Transmit status words with the error bit.
    pub tx_errors: u32,
}

/// A LAN9118 brought up and ready for the network stack.
pub struct Lan9118<R: Regs> {
    regs: R,
    mac: [u8; 6],
    rx_buf: [u8; RX_BUF],
    tx_buf: [u8; MTU],
    park: fn(&Waker),
    stats: Stats,
}

impl<R: Regs> Lan9118<R> {
    /// Identifies and resets the controller, sets its MAC address (`mac`, or the address the
    /// controller reports, or [`FALLBACK_MAC`] when that is zero or multicast), resets the PHY
    /// with autonegotiation, and turns the MAC's receiver and transmitter on. `park` is given
    /// the task's waker whenever the driver has nothing to do; it must wake it again later
    /// (e.g. at the next timer tick).
    pub fn new(mut regs: R, mac: Option<[u8; 6]>, park: fn(&Waker)) -> Result<Self, Error> {
        let byte_test = regs.read(reg::BYTE_TEST);
        if byte_test != reg::BYTE_TEST_VALUE {
            return Err(Error::NotPresent { byte_test });
        }
        let id_rev = regs.read(reg::ID_REV);
        if id_rev >> 16 != 0x0118 {
            return Err(Error::UnknownChip { id_rev });
        }
        regs.write(reg::HW_CFG, reg::HW_CFG_SRST);
        spin(|| {
            regs.read(reg::HW_CFG) & reg::HW_CFG_SRST == 0
                && regs.read(reg::PMT_CTRL) & reg::PMT_READY != 0
        })
        .ok_or(Error::ResetTimeout)?;
        regs.write(reg::INT_EN, 0);
        let mut dev = Lan9118 {
            regs,
            mac: [0; 6],
            rx_buf: [0; RX_BUF],
            tx_buf: [0; MTU],
            park,
            stats: Stats::default(),
        };
        let mac = match mac {
            Some(m) => m,
            None => {
                let lo = dev.mac_read(reg::MAC_ADDRL)?.to_le_bytes();
                let hi = dev.mac_read(reg::MAC_ADDRH)?.to_le_bytes();
                let m = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]];
                if m == [0; 6] || m[0] & 1 != 0 {
                    FALLBACK_MAC
                } else {
                    m
                }
            }
        };
        dev.mac_write(
            reg::MAC_ADDRL,
            u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        )?;
        dev.mac_write(reg::MAC_ADDRH, u32::from(mac[4]) | u32::from(mac[5]) << 8)?;
        dev.mac = mac;
        dev.mii_write(reg::PHY_BCR, reg::BCR_RESET)?;
        dev.mii_write(reg::PHY_BCR, reg::BCR_AUTONEG)?;
        // Own address and broadcast only (PRMS, set at reset, cleared).
        dev.mac_write(
            reg::MAC_CR,
            reg::MAC_CR_TXEN | reg::MAC_CR_RXEN | reg::MAC_CR_FDPX,
        )?;
        dev.regs
            .write(reg::TX_CFG, reg::TX_CFG_TX_ON | reg::TX_CFG_TXSAO);
        Ok(dev)
    }

    /// The MAC address in use.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// Frame counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// True when the PHY reports the link up.
    pub fn link_up(&mut self) -> Result<bool, Error> {
        Ok(self.mii_read(reg::PHY_BSR)? & reg::BSR_LINK != 0)
    }

    fn mac_wait(&mut self) -> Result<(), Error> {
        let regs = &mut self.regs;
        spin(|| regs.read(reg::MAC_CSR_CMD) & reg::CSR_BUSY == 0).ok_or(Error::MacBusy)
    }

    fn mac_read(&mut self, index: u32) -> Result<u32, Error> {
        self.mac_wait()?;
        self.regs
            .write(reg::MAC_CSR_CMD, reg::CSR_BUSY | reg::CSR_READ | index);
        self.mac_wait()?;
        Ok(self.regs.read(reg::MAC_CSR_DATA))
    }

    fn mac_write(&mut self, index: u32, value: u32) -> Result<(), Error> {
        self.mac_wait()?;
        self.regs.write(reg::MAC_CSR_DATA, value);
        self.regs.write(reg::MAC_CSR_CMD, reg::CSR_BUSY | index);
        self.mac_wait()
    }

    fn mii_wait(&mut self) -> Result<(), Error> {
        for _ in 0..SPIN_LIMIT {
            if self.mac_read(reg::MAC_MII_ACC)? & reg::MII_BUSY == 0 {
                return Ok(());
            }
        }
        Err(Error::MiiBusy)
    }

    fn mii_read(&mut self, phy_reg: u32) -> Result<u32, Error> {
        self.mii_wait()?;
        let acc = reg::PHY_ADDR << 11 | (phy_reg & 0x1f) << 6 | reg::MII_BUSY;
        self.mac_write(reg::MAC_MII_ACC, acc)?;
        self.mii_wait()?;
        Ok(self.mac_read(reg::MAC_MII_DATA)? & 0xffff)
    }

    fn mii_write(&mut self, phy_reg: u32, value: u32) -> Result<(), Error> {
        self.mii_wait()?;
        self.mac_write(reg::MAC_MII_DATA, value & 0xffff)?;
        let acc = reg::PHY_ADDR << 11 | (phy_reg & 0x1f) << 6 | reg::MII_WRITE | reg::MII_BUSY;
        self.mac_write(reg::MAC_MII_ACC, acc)?;
        self.mii_wait()
    }

    /// Takes the next good frame out of the receive FIFOs into `rx_buf`; returns its length
    /// (FCS removed). A frame with the error bit or a length out of range is drained and
    /// counted. A status whose length runs past the data the FIFO holds cannot be drained
    /// without losing the frames behind it: both FIFOs are dumped (`RX_CFG.RX_DUMP`) and every
    /// frame in them counted as dropped.
    fn rx_frame(&mut self) -> Option<usize> {
        loop {
            let inf = self.regs.read(reg::RX_FIFO_INF);
            let statuses = (inf >> 16) & 0xff;
            if statuses == 0 {
                return None;
            }
            let status = self.regs.read(reg::RX_STATUS_FIFO);
            let len = ((status >> reg::RXS_LEN_SHIFT) & reg::RXS_LEN_MASK) as usize;
            let words = len.div_ceil(4);
            if words > ((inf & 0xffff) / 4) as usize {
                self.regs.write(reg::RX_CFG, reg::RX_CFG_DUMP);
                self.stats.rx_dropped = self.stats.rx_dropped.wrapping_add(statuses);
                return None;
            }
            if status & reg::RXS_ERROR != 0 || !(14 + 4..=MTU + 4).contains(&len) {
                for _ in 0..words {
                    self.regs.read(reg::RX_DATA_FIFO);
                }
                self.stats.rx_dropped = self.stats.rx_dropped.wrapping_add(1);
                continue;
            }
            for chunk in self.rx_buf.chunks_exact_mut(4).take(words) {
                chunk.copy_from_slice(&self.regs.read(reg::RX_DATA_FIFO).to_le_bytes());
            }
            self.stats.rx_frames = self.stats.rx_frames.wrapping_add(1);
            return Some(len - 4);
        }
    }

    /// True when the transmit data FIFO has room for a full frame and its two command words.
    fn tx_ready(&mut self) -> bool {
        (self.regs.read(reg::TX_FIFO_INF) & 0xffff) as usize >= MTU + 8
    }
}

/// Polls `done` up to [`SPIN_LIMIT`] times.
fn spin(mut done: impl FnMut() -> bool) -> Option<()> {
    (0..SPIN_LIMIT).any(|_| done()).then_some(())
}

/// Writes one frame to the transmit FIFO (a single segment) and collects transmit statuses.
fn tx_frame<R: Regs>(regs: &mut R, frame: &[u8], stats: &mut Stats) {
    let len = frame.len() as u32 & 0x7ff;
    regs.write(reg::TX_DATA_FIFO, reg::TXA_FIRST | reg::TXA_LAST | len);
    regs.write(reg::TX_DATA_FIFO, len << 16 | len);
    for chunk in frame.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        regs.write(reg::TX_DATA_FIFO, u32::from_le_bytes(w));
    }
    stats.tx_frames = stats.tx_frames.wrapping_add(1);
    let pending = (regs.read(reg::TX_FIFO_INF) >> 16) & 0xff;
    for _ in 0..pending {
        if regs.read(reg::TX_STATUS_FIFO) & reg::TXS_ERROR != 0 {
            stats.tx_errors = stats.tx_errors.wrapping_add(1);
        }
    }
}

/// A received frame, lent to the stack.
pub struct RxToken<'a> {
    frame: &'a mut [u8],
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<T, F: FnOnce(&mut [u8]) -> T>(self, f: F) -> T {
        f(self.frame)
    }
}

/// Room for one frame to transmit.
pub struct TxToken<'a, R: Regs> {
    regs: &'a mut R,
    buf: &'a mut [u8; MTU],
    stats: &'a mut Stats,
}

impl<R: Regs> embassy_net_driver::TxToken for TxToken<'_, R> {
    fn consume<T, F: FnOnce(&mut [u8]) -> T>(self, len: usize, f: F) -> T {
        let frame = &mut self.buf[..len.min(MTU)];
        let r = f(frame);
        tx_frame(self.regs, frame, self.stats);
        r
    }
}

impl<R: Regs> Driver for Lan9118<R> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, R>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(RxToken<'_>, TxToken<'_, R>)> {
        if !self.tx_ready() {
            (self.park)(cx.waker());
            return None;
        }
        let Some(n) = self.rx_frame() else {
            (self.park)(cx.waker());
            return None;
        };
        let rx = RxToken {
            frame: &mut self.rx_buf[..n],
        };
        let tx = TxToken {
            regs: &mut self.regs,
            buf: &mut self.tx_buf,
            stats: &mut self.stats,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<TxToken<'_, R>> {
        if !self.tx_ready() {
            (self.park)(cx.waker());
            return None;
        }
        Some(TxToken {
            regs: &mut self.regs,
            buf: &mut self.tx_buf,
            stats: &mut self.stats,
        })
    }

    fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        if self.link_up().unwrap_or(false) {
            LinkState::Up
        } else {
            (self.park)(cx.waker());
            LinkState::Down
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::default();
        c.max_transmission_unit = MTU;
        c.max_burst_size = Some(1);
        c
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

#[cfg(test)]
mod tests;
