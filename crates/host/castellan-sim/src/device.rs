//! A whole simulated MCU: flash, OTP fuses, UDS and RNG on one power rail, with its
//! configuration, cheap snapshots for the power-loss harness, and power cycling.
//!
//! ```text
//!  SimDevice ── rail: PowerRail (fault plan, op count) ──┬── flash: SimFlash
//!                                                        ├── otp:   SimOtp   (counters: OtpCounter)
//!                                                        ├── uds:   SimUds
//!                                                        └── rng:   SimRng
//! ```
//!
//! The parts are public fields so that code can borrow them separately, e.g.
//! `boot(&mut dev.flash, &mut dev.otp, &mut dev.uds, &mut dev.rng)`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use castellan_hal::{Partition, UDS_LEN};
use serde::{Deserialize, Serialize};

use crate::flash::{FlashConfig, FlashSnapshot, SimFlash};
use crate::otp::{OtpConfig, SimOtp};
use crate::pages::Page;
use crate::power::{FaultPlan, PowerRail};
use crate::prng::SplitMix64;
use crate::secret::{SimRng, SimUds};
use crate::{SimError, persist};

/// A named flash partition (slot) of a device layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartitionDesc {
    /// Name the boot code and the CLI look it up by (e.g. "primary", "secondary", "scratch").
    pub name: String,
    /// Start in the flash, in bytes (sector-aligned).
    pub offset: u32,
    /// Length in bytes (a multiple of the sector size).
    pub size: u32,
}

impl PartitionDesc {
    /// The partition as the HAL type.
    pub fn partition(&self) -> Partition {
        Partition::new(self.offset, self.size)
    }
}

/// What a simulated device is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    /// Flash geometry.
    pub flash: FlashConfig,
    /// Fuse bank size (default when absent from JSON).
    #[serde(default)]
    pub otp: OtpConfig,
    /// Flash layout: named, sector-aligned, non-overlapping partitions (may be empty).
    #[serde(default)]
    pub partitions: Vec<PartitionDesc>,
}

impl Default for DeviceConfig {
    /// 1 MiB of flash in 4 KiB sectors, write size 4, erased 0xFF; default OTP; no partitions.
    fn default() -> Self {
        DeviceConfig::new(FlashConfig::new(1 << 20, 4096, 4, 0xFF))
    }
}

impl DeviceConfig {
    /// A device with this flash, the default OTP bank and no partitions.
    pub fn new(flash: FlashConfig) -> Self {
        DeviceConfig {
            flash,
            otp: OtpConfig::default(),
            partitions: Vec::new(),
        }
    }

    /// Adds a partition (checked by [`DeviceConfig::validate`]).
    pub fn with_partition(mut self, name: &str, offset: u32, size: u32) -> Self {
        self.partitions.push(PartitionDesc {
            name: name.to_owned(),
            offset,
            size,
        });
        self
    }

    /// The partition called `name`.
    pub fn partition(&self, name: &str) -> Option<Partition> {
        self.partitions
            .iter()
            .find(|p| p.name == name)
            .map(PartitionDesc::partition)
    }

    /// Checks geometry and layout: partitions inside the flash, sector-aligned, disjoint, with
    /// distinct non-empty names.
    pub fn validate(&self) -> Result<(), SimError> {
        self.flash.validate()?;
        self.otp.validate()?;
        let ss = self.flash.sector_size;
        for (i, p) in self.partitions.iter().enumerate() {
            let end = p.offset.checked_add(p.size);
            let rule = if p.name.is_empty() {
                "partition names must not be empty"
            } else if p.size == 0 || p.offset % ss != 0 || p.size % ss != 0 {
                "partitions must be non-empty and sector-aligned"
            } else if end.is_none_or(|e| e > self.flash.size) {
                "partitions must lie inside the flash"
            } else if self.partitions.iter().skip(i + 1).any(|q| {
                let (ps, pe) = (u64::from(p.offset), u64::from(p.offset) + u64::from(p.size));
                let (qs, qe) = (u64::from(q.offset), u64::from(q.offset) + u64::from(q.size));
                q.name == p.name || (qs < pe && ps < qe)
            }) {
                "partitions must have distinct names and must not overlap"
            } else {
                continue;
            };
            return Err(SimError::InvalidConfig(rule));
        }
        Ok(())
    }
}

/// Saved non-volatile state of a [`SimDevice`] (flash, fuses, RNG position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSnapshot {
    flash: FlashSnapshot,
    otp_words: Vec<u32>,
    otp_locked: Vec<bool>,
    rng: Option<u64>,
}

/// A simulated MCU. See the module doc.
#[derive(Debug)]
pub struct SimDevice {
    /// The NOR flash.
    pub flash: SimFlash,
    /// The OTP fuses (anti-rollback counters live here through `castellan_hal::OtpCounter`).
    pub otp: SimOtp,
    /// The hardware unique secret.
    pub uds: SimUds,
    /// The random source.
    pub rng: SimRng,
    config: DeviceConfig,
    rail: PowerRail,
    dir: Option<PathBuf>,
    /// The flash's pages as last saved to the page journal (what the next save compares with).
    saved: Mutex<Option<Vec<Page>>>,
}

impl SimDevice {
    /// A blank device held in memory, fully determined by `seed` (UDS and RNG stream).
    pub fn new(config: DeviceConfig, seed: u64) -> Result<Self, SimError> {
        let mut g = SplitMix64::new(seed ^ 0x5544_5321_u64);
        let mut uds = [0u8; UDS_LEN];
        g.fill(&mut uds);
        let rng = SimRng::seeded(g.next_u64());
        Self::assemble(config, uds, rng)
    }

    /// A blank device held in memory with a UDS and RNG from the operating system.
    pub fn new_random(config: DeviceConfig) -> Result<Self, SimError> {
        let mut uds = [0u8; UDS_LEN];
        getrandom::fill(&mut uds).map_err(|e| SimError::Io {
            path: PathBuf::from("<os random>"),
            source: std::io::Error::other(e.to_string()),
        })?;
        Self::assemble(config, uds, SimRng::from_os())
    }

    fn assemble(config: DeviceConfig, uds: [u8; UDS_LEN], rng: SimRng) -> Result<Self, SimError> {
        config.validate()?;
        let flash = SimFlash::new(config.flash)?;
        let otp = SimOtp::new(config.otp)?;
        Ok(Self::from_parts(config, flash, otp, SimUds::new(uds), rng))
    }

    pub(crate) fn from_parts(
        config: DeviceConfig,
        flash: SimFlash,
        otp: SimOtp,
        uds: SimUds,
        rng: SimRng,
    ) -> Self {
        let mut dev = SimDevice {
            flash,
            otp,
            uds,
            rng,
            config,
            rail: PowerRail::new(),
            dir: None,
            saved: Mutex::new(None),
        };
        dev.attach_rail();
        dev
    }

    /// Puts every part on the device's rail.
    fn attach_rail(&mut self) {
        self.flash.set_rail(self.rail.clone());
        self.otp.set_rail(self.rail.clone());
        self.uds.set_rail(self.rail.clone());
        self.rng.set_rail(self.rail.clone());
    }

    /// Creates a blank device (OS-random UDS and RNG) in `dir` (made if missing) and saves it.
    /// Fails with [`SimError::AlreadyExists`] if `dir` already holds a device.
    pub fn create(dir: &Path, config: DeviceConfig) -> Result<Self, SimError> {
        let mut dev = SimDevice::new_random(config)?;
        persist::create_dir(dir)?;
        dev.persist_to(dir)?;
        Ok(dev)
    }

    /// Opens the device saved in `dir`, powered up (UDS unlocked, no fault plan).
    pub fn open(dir: &Path) -> Result<Self, SimError> {
        let mut dev = persist::load(dir)?;
        dev.dir = Some(dir.to_path_buf());
        Ok(dev)
    }

    /// Saves flash.bin, otp.bin and device.json to the device's directory, each atomically
    /// (temporary file + rename). The saved state is what the chips hold now, torn data
    /// included; volatile state (power, fault plan, UDS lock) is not saved.
    pub fn save(&self) -> Result<(), SimError> {
        let dir = self.dir.as_deref().ok_or(SimError::NotPersistent)?;
        persist::save(self, dir)
    }

    /// Saves the device to `dir` (which must exist) and makes it the device's directory.
    pub fn persist_to(&mut self, dir: &Path) -> Result<(), SimError> {
        persist::save(self, dir)?;
        self.dir = Some(dir.to_path_buf());
        Ok(())
    }

    /// Saves the flash as a page journal from now on (`flash.pages`, replacing `flash.bin`):
    /// each later save appends only the pages that changed, where a save of `flash.bin` writes
    /// the whole flash. For fleets of simulated devices that save after every secure call.
    pub fn use_page_journal(&mut self) -> Result<(), SimError> {
        let dir = self.dir.clone().ok_or(SimError::NotPersistent)?;
        persist::save(self, &dir)?;
        persist::use_page_journal(self, &dir)
    }

    pub(crate) fn saved_pages(&self) -> MutexGuard<'_, Option<Vec<Page>>> {
        self.saved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The directory the device is saved in, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// The partition called `name` in the configured layout.
    pub fn partition(&self, name: &str) -> Option<Partition> {
        self.config.partition(name)
    }

    /// The power rail shared by all parts.
    pub fn rail(&self) -> &PowerRail {
        &self.rail
    }

    /// Arms a power cut (see [`PowerRail::arm`]): the operation count restarts at 0.
    pub fn arm(&self, plan: FaultPlan) {
        self.rail.arm(plan);
    }

    /// Mutating operations since power-on or arming (see [`PowerRail::ops`]).
    pub fn ops(&self) -> u64 {
        self.rail.ops()
    }

    /// True while the device has power.
    pub fn is_powered(&self) -> bool {
        self.rail.is_on()
    }

    /// Turns the device off and on: power back, fault plan cleared, op count 0, UDS unlocked.
    /// Flash and fuses keep what they hold, torn data included.
    pub fn power_cycle(&mut self) {
        self.rail.power_on();
        self.uds.reset();
    }

    /// Saves the non-volatile state (flash, fuses, RNG position) in memory.
    pub fn snapshot(&self) -> DeviceSnapshot {
        let (otp_words, otp_locked) = self.otp.state();
        DeviceSnapshot {
            flash: self.flash.snapshot(),
            otp_words,
            otp_locked,
            rng: self.rng.seeded_state(),
        }
    }

    /// Puts back a snapshot and powers the device up fresh (as [`SimDevice::power_cycle`]).
    /// Copies into the existing buffers: no allocation.
    pub fn restore(&mut self, snap: &DeviceSnapshot) -> Result<(), SimError> {
        self.flash.restore(&snap.flash)?;
        self.otp.set_state(&snap.otp_words, &snap.otp_locked)?;
        if snap.rng.is_some() {
            self.rng.restore_state(snap.rng);
        }
        self.power_cycle();
        Ok(())
    }
}

impl Clone for SimDevice {
    /// A deep copy on a rail of its own (same power state and plan): the copy and the original
    /// share nothing.
    fn clone(&self) -> Self {
        let mut dev = SimDevice {
            flash: self.flash.clone(),
            otp: self.otp.clone(),
            uds: self.uds.clone(),
            rng: self.rng.clone(),
            config: self.config.clone(),
            rail: self.rail.fork(),
            dir: self.dir.clone(),
            saved: Mutex::new(None),
        };
        dev.attach_rail();
        dev
    }
}
