//! Host tests over a simulated LAN9118 register file: bring-up, receive, transmit, errors.

extern crate std;

use std::cell::Cell;
use std::collections::VecDeque;
use std::vec::Vec;

use core::task::{Context, Waker};

use embassy_net_driver::{Driver, HardwareAddress, LinkState, RxToken as _, TxToken as _};

use super::*;

/// A register-level model of the controller (the behaviour the driver relies on).
#[derive(Default)]
struct Sim {
    byte_test: Option<u32>,
    id_rev: Option<u32>,
    srst_stuck: bool,
    mac_stuck: bool,
    hw_cfg: u32,
    int_en: u32,
    tx_cfg: u32,
    mac_cmd: u32,
    mac_data: u32,
    mac_cr: u32,
    mac_addr: [u8; 6],
    mii_acc: u32,
    mii_data: u32,
    phy_bcr_writes: Vec<u32>,
    link: bool,
    rx_status: VecDeque<u32>,
    rx_data: VecDeque<u32>,
    tx_words: Vec<u32>,
    tx_frames: Vec<Vec<u8>>,
    tx_status: VecDeque<u32>,
    tx_fail: bool,
    tx_free: Option<u32>,
}

impl Sim {
    fn new() -> Self {
        Sim {
            mac_cr: reg::MAC_CR_PRMS,
            mac_addr: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            link: true,
            ..Sim::default()
        }
    }

    /// Queues `frame` as the controller receives it: data words plus the FCS word, and a
    /// status word whose length counts the FCS.
    fn inject(&mut self, frame: &[u8], status_bits: u32) {
        let mut bytes = frame.to_vec();
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        for c in bytes.chunks(4) {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            self.rx_data.push_back(u32::from_le_bytes(w));
        }
        self.rx_status
            .push_back(((bytes.len() as u32) << 16) | status_bits);
    }

    fn phy_read(&self, r: u32) -> u32 {
        match r {
            0 => self.phy_bcr_writes.last().copied().unwrap_or(0x3000),
            1 => 0x7809 | if self.link { 0x24 } else { 0 },
            _ => 0,
        }
    }

    fn tx_push(&mut self, v: u32) {
        self.tx_words.push(v);
        let a = self.tx_words[0];
        let len = (a & 0x7ff) as usize;
        if self.tx_words.len() >= 2 && self.tx_words.len() == 2 + len.div_ceil(4) {
            let mut bytes: Vec<u8> = self.tx_words[2..]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            bytes.truncate(len);
            self.tx_frames.push(bytes);
            let tag = self.tx_words[1] & 0xffff_0000;
            self.tx_status
                .push_back(tag | if self.tx_fail { reg::TXS_ERROR } else { 0 });
            self.tx_words.clear();
        }
    }
}

impl Regs for Sim {
    fn read(&mut self, offset: u32) -> u32 {
        match offset {
            reg::RX_DATA_FIFO => self.rx_data.pop_front().unwrap_or(0),
            reg::RX_STATUS_FIFO => self.rx_status.pop_front().unwrap_or(0),
            reg::TX_STATUS_FIFO => self.tx_status.pop_front().unwrap_or(0),
            reg::ID_REV => self.id_rev.unwrap_or(0x0118_0001),
            reg::BYTE_TEST => self.byte_test.unwrap_or(reg::BYTE_TEST_VALUE),
            reg::HW_CFG => self.hw_cfg,
            reg::PMT_CTRL => u32::from(self.hw_cfg & reg::HW_CFG_SRST == 0),
            reg::RX_FIFO_INF => {
                (self.rx_status.len() as u32) << 16 | (self.rx_data.len() as u32 * 4)
            }
            reg::TX_FIFO_INF => (self.tx_status.len() as u32) << 16 | self.tx_free.unwrap_or(4608),
            reg::TX_CFG => self.tx_cfg,
            reg::MAC_CSR_CMD => self.mac_cmd,
            reg::MAC_CSR_DATA => self.mac_data,
            other => panic!("read of an unmodelled register {other:#x}"),
        }
    }

    fn write(&mut self, offset: u32, value: u32) {
        match offset {
            reg::TX_DATA_FIFO => self.tx_push(value),
            reg::HW_CFG => {
                if value & reg::HW_CFG_SRST != 0 {
                    self.mac_cr = reg::MAC_CR_PRMS;
                    self.hw_cfg = if self.srst_stuck { reg::HW_CFG_SRST } else { 0 };
                }
            }
            reg::INT_EN => self.int_en = value,
            reg::RX_CFG => {
                if value & reg::RX_CFG_DUMP != 0 {
                    self.rx_status.clear();
                    self.rx_data.clear();
                }
            }
            reg::TX_CFG => self.tx_cfg = value,
            reg::MAC_CSR_DATA => self.mac_data = value,
            reg::MAC_CSR_CMD => {
                if self.mac_stuck {
                    self.mac_cmd = value | reg::CSR_BUSY;
                    return;
                }
                self.mac_cmd = value & !reg::CSR_BUSY;
                let index = value & 0xf;
                if value & reg::CSR_READ != 0 {
                    self.mac_data = match index {
                        reg::MAC_CR => self.mac_cr,
                        reg::MAC_ADDRH => {
                            u32::from(self.mac_addr[4]) | u32::from(self.mac_addr[5]) << 8
                        }
                        reg::MAC_ADDRL => u32::from_le_bytes([
                            self.mac_addr[0],
                            self.mac_addr[1],
                            self.mac_addr[2],
                            self.mac_addr[3],
                        ]),
                        reg::MAC_MII_ACC => self.mii_acc,
                        reg::MAC_MII_DATA => self.mii_data,
                        other => panic!("MAC read of an unmodelled register {other}"),
                    };
                } else {
                    let v = self.mac_data;
                    match index {
                        reg::MAC_CR => self.mac_cr = v,
                        reg::MAC_ADDRH => self.mac_addr[4..].copy_from_slice(&v.to_le_bytes()[..2]),
                        reg::MAC_ADDRL => self.mac_addr[..4].copy_from_slice(&v.to_le_bytes()),
                        reg::MAC_MII_DATA => self.mii_data = v,
                        reg::MAC_MII_ACC => {
                            self.mii_acc = v & !reg::MII_BUSY;
                            let phy_reg = (v >> 6) & 0x1f;
                            assert_eq!((v >> 11) & 0x1f, reg::PHY_ADDR, "PHY address");
                            if v & reg::MII_WRITE != 0 {
                                if phy_reg == reg::PHY_BCR {
                                    self.phy_bcr_writes.push(self.mii_data);
                                }
                            } else {
                                self.mii_data = self.phy_read(phy_reg);
                            }
                        }
                        other => panic!("MAC write of an unmodelled register {other}"),
                    }
                }
            }
            other => panic!("write of an unmodelled register {other:#x}"),
        }
    }
}

std::thread_local! {
    static PARKED: Cell<u32> = const { Cell::new(0) };
}

fn park(_: &Waker) {
    PARKED.with(|p| p.set(p.get() + 1));
}

fn parked() -> u32 {
    PARKED.with(Cell::get)
}

fn up(sim: Sim) -> Lan9118<Sim> {
    Lan9118::new(sim, None, park).expect("bring-up")
}

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

#[test]
fn bring_up_enables_mac_without_promiscuous_mode_and_resets_the_phy() {
    let dev = up(Sim::new());
    let sim = &dev.regs;
    assert_eq!(
        sim.mac_cr,
        reg::MAC_CR_TXEN | reg::MAC_CR_RXEN | reg::MAC_CR_FDPX
    );
    assert_eq!(sim.mac_cr & reg::MAC_CR_PRMS, 0);
    assert_eq!(sim.tx_cfg & reg::TX_CFG_TX_ON, reg::TX_CFG_TX_ON);
    assert_eq!(sim.int_en, 0, "the driver polls: no interrupt enabled");
    assert_eq!(sim.phy_bcr_writes, [reg::BCR_RESET, reg::BCR_AUTONEG]);
}

#[test]
fn mac_address_is_the_controllers_unless_one_is_given() {
    let dev = up(Sim::new());
    assert_eq!(dev.mac_address(), [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    assert_eq!(
        dev.hardware_address(),
        HardwareAddress::Ethernet([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
    );
    let given = [0x02, 1, 2, 3, 4, 5];
    let dev = Lan9118::new(Sim::new(), Some(given), park).unwrap();
    assert_eq!(dev.mac_address(), given);
    assert_eq!(dev.regs.mac_addr, given, "written to ADDRL/ADDRH");
}

#[test]
fn zero_or_multicast_controller_address_falls_back() {
    let mut sim = Sim::new();
    sim.mac_addr = [0; 6];
    assert_eq!(up(sim).mac_address(), FALLBACK_MAC);
    let mut sim = Sim::new();
    sim.mac_addr = [0x01, 0, 0x5e, 0, 0, 1];
    let dev = up(sim);
    assert_eq!(dev.mac_address(), FALLBACK_MAC);
    assert_eq!(dev.regs.mac_addr, FALLBACK_MAC);
}

#[test]
fn absent_controller_is_refused() {
    let mut sim = Sim::new();
    sim.byte_test = Some(0);
    assert_eq!(
        Lan9118::new(sim, None, park).err(),
        Some(Error::NotPresent { byte_test: 0 })
    );
}

#[test]
fn other_chip_is_refused() {
    let mut sim = Sim::new();
    sim.id_rev = Some(0x9220_0000);
    assert_eq!(
        Lan9118::new(sim, None, park).err(),
        Some(Error::UnknownChip {
            id_rev: 0x9220_0000
        })
    );
}

#[test]
fn reset_that_never_finishes_times_out() {
    let mut sim = Sim::new();
    sim.srst_stuck = true;
    assert_eq!(
        Lan9118::new(sim, None, park).err(),
        Some(Error::ResetTimeout)
    );
}

#[test]
fn mac_register_stuck_busy_times_out() {
    let mut sim = Sim::new();
    sim.mac_stuck = true;
    assert_eq!(Lan9118::new(sim, None, park).err(), Some(Error::MacBusy));
}

#[test]
fn received_frames_come_out_whole_without_fcs() {
    let mut dev = up(Sim::new());
    let even = frame(60, 1);
    let odd = frame(343, 2);
    dev.regs.inject(&even, 0);
    dev.regs.inject(&odd, 0);
    for want in [&even, &odd] {
        let mut c = cx();
        let (rx, _tx) = dev.receive(&mut c).expect("a frame");
        let got = rx.consume(|b| b.to_vec());
        assert_eq!(&got, want);
    }
    assert_eq!(dev.stats().rx_frames, 2);
    assert!(
        dev.regs.rx_data.is_empty(),
        "every word of both frames read"
    );
}

#[test]
fn frames_with_the_error_bit_are_drained_and_counted() {
    let mut dev = up(Sim::new());
    dev.regs.inject(&frame(100, 3), reg::RXS_ERROR);
    let good = frame(64, 4);
    dev.regs.inject(&good, 0);
    let (rx, _) = dev.receive(&mut cx()).expect("the good frame");
    assert_eq!(rx.consume(|b| b.to_vec()), good);
    assert_eq!(dev.stats().rx_dropped, 1);
    assert_eq!(dev.stats().rx_frames, 1);
}

#[test]
fn runts_and_oversized_frames_are_drained_and_counted() {
    let mut dev = up(Sim::new());
    dev.regs.inject(&frame(6, 5), 0);
    dev.regs.inject(&frame(1515, 7), 0);
    let good = frame(1514, 6);
    dev.regs.inject(&good, 0);
    let (rx, _) = dev.receive(&mut cx()).expect("the good frame");
    assert_eq!(rx.consume(|b| b.to_vec()), good);
    assert_eq!(dev.stats().rx_dropped, 2);
    assert!(dev.regs.rx_data.is_empty());
}

#[test]
fn length_past_the_fifo_dumps_it_and_the_driver_resynchronises() {
    let mut dev = up(Sim::new());
    // A status claiming 16383 bytes with four words behind it, then a good frame: reading
    // 4096 words would swallow that frame and misalign every later one.
    dev.regs.rx_status.push_back(0x3fff << 16);
    dev.regs.rx_data.extend([1, 2, 3, 4]);
    dev.regs.inject(&frame(60, 12), 0);
    assert!(dev.receive(&mut cx()).is_none());
    assert_eq!(dev.stats().rx_dropped, 2);
    assert!(dev.regs.rx_data.is_empty() && dev.regs.rx_status.is_empty());
    let good = frame(80, 13);
    dev.regs.inject(&good, 0);
    let (rx, _) = dev.receive(&mut cx()).expect("the next frame");
    assert_eq!(rx.consume(|b| b.to_vec()), good);
}

#[test]
fn empty_receive_fifo_parks_the_task() {
    let mut dev = up(Sim::new());
    let before = parked();
    assert!(dev.receive(&mut cx()).is_none());
    assert_eq!(parked(), before + 1);
}

#[test]
fn transmitted_frames_reach_the_fifo_with_their_commands() {
    let mut dev = up(Sim::new());
    let out = frame(42, 8);
    let tx = dev.transmit(&mut cx()).expect("room");
    tx.consume(out.len(), |b| b.copy_from_slice(&out));
    assert_eq!(dev.regs.tx_frames[0], out);
    let odd = frame(61, 9);
    let tx = dev.transmit(&mut cx()).expect("room");
    tx.consume(odd.len(), |b| b.copy_from_slice(&odd));
    assert_eq!(dev.regs.tx_frames[1], odd);
    assert_eq!(dev.stats().tx_frames, 2);
    assert!(dev.regs.tx_status.is_empty(), "statuses collected");
}

#[test]
fn answer_through_the_receive_pairs_transmit_token() {
    let mut dev = up(Sim::new());
    dev.regs.inject(&frame(60, 10), 0);
    let (rx, tx) = dev.receive(&mut cx()).expect("a frame");
    let echoed = rx.consume(|b| b.to_vec());
    tx.consume(echoed.len(), |b| b.copy_from_slice(&echoed));
    assert_eq!(dev.regs.tx_frames, [frame(60, 10)]);
}

#[test]
fn full_transmit_fifo_parks_instead_of_overrunning() {
    let mut dev = up(Sim::new());
    dev.regs.tx_free = Some(100);
    let before = parked();
    assert!(dev.transmit(&mut cx()).is_none());
    dev.regs.inject(&frame(60, 11), 0);
    assert!(dev.receive(&mut cx()).is_none());
    assert_eq!(parked(), before + 2);
    assert!(dev.regs.tx_words.is_empty());
}

#[test]
fn transmit_errors_are_counted() {
    let mut dev = up(Sim::new());
    dev.regs.tx_fail = true;
    let tx = dev.transmit(&mut cx()).expect("room");
    tx.consume(60, |b| b.fill(0xaa));
    assert_eq!(dev.stats().tx_errors, 1);
}

#[test]
fn link_state_follows_the_phy() {
    let mut dev = up(Sim::new());
    assert!(matches!(dev.link_state(&mut cx()), LinkState::Up));
    dev.regs.link = false;
    let before = parked();
    assert!(matches!(dev.link_state(&mut cx()), LinkState::Down));
    assert_eq!(parked(), before + 1, "a down link is polled again");
}

#[test]
fn capabilities_name_the_ethernet_mtu() {
    let dev = up(Sim::new());
    assert_eq!(dev.capabilities().max_transmission_unit, 1514);
}
