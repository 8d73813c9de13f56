//! Test fixture: a simulated MCU with the Castellan layout, deterministic keys, signed images
//! and a provisioned device (root-key hash burnt, secured, bootloader and image A installed).

#![allow(dead_code)]

use castellan_boot::{
    BootConfig, BootError, BootReport, CounterId, FlashLayout, Geometry, Lifecycle, SlotTrailer,
    UpgradeMode, advance_lifecycle, program_root_key_hash, read_security_counter,
    read_slot_trailer,
};
use castellan_devkit::DeviceSpec;
use castellan_hal::{Flash, Partition};
use castellan_image::{PublicKeyFormat, SignOptions, SigningKey, Version, sign_image, signer_id};
use castellan_sim::{DeviceConfig, FlashConfig, SimDevice};

/// The device the tests run on: the catalog's `boot-matrix` (8 KiB of flash in 512-byte
/// sectors; bootloader 1 sector, slots 4, scratch 1, status 1).
pub const DEVICE: DeviceSpec = castellan_devkit::BOOT_MATRIX;
pub const SECTOR: u32 = DEVICE.sector_size;
/// Size of each image slot.
pub const SLOT: u32 = 4 * SECTOR;

pub fn device_config(flash: FlashConfig) -> DeviceConfig {
    DEVICE.config(flash)
}

pub fn geometry(write: u32, erased: u8) -> FlashConfig {
    DEVICE.flash(write, erased)
}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
}

pub fn root_key() -> SigningKey {
    key(0x11)
}

pub fn root_hash() -> [u8; 32] {
    signer_id(&root_key().public_spki_der())
}

pub fn payload(len: usize, fill: u8) -> Vec<u8> {
    (0..len)
        .map(|i| fill.wrapping_add((i as u8).wrapping_mul(31)))
        .collect()
}

/// Signs with the full public key in the image (the device keeps only its hash).
pub fn sign_with(key: &SigningKey, opts: SignOptions, len: usize, fill: u8) -> Vec<u8> {
    let opts = SignOptions {
        pad_header: true,
        ..opts
    };
    sign_image(&payload(len, fill), key, &opts).unwrap()
}

pub fn image(key: &SigningKey, version: Version, counter: u32, len: usize, fill: u8) -> Vec<u8> {
    sign_with(
        key,
        SignOptions {
            version,
            security_counter: Some(counter),
            public_key_format: PublicKeyFormat::Full,
            ..SignOptions::default()
        },
        len,
        fill,
    )
}

pub fn bootloader_image() -> Vec<u8> {
    image(&root_key(), Version::new(1, 0, 0, 0), 1, 96, 0xB0)
}

/// A: v1.0.0, counter 1.
pub fn image_a() -> Vec<u8> {
    image(&root_key(), Version::new(1, 0, 0, 0), 1, 1300, 0x0A)
}

/// B: v1.1.0, counter 2.
pub fn image_b() -> Vec<u8> {
    image(&root_key(), Version::new(1, 1, 0, 0), 2, 1400, 0x0B)
}

pub fn digest_of(img: &[u8]) -> Vec<u8> {
    castellan_image::verify(
        &mut &img[..],
        castellan_image::TrustedKey::Sha256OfSpki(root_hash()),
    )
    .map(|v| v.digest.as_bytes().to_vec())
    .unwrap_or_default()
}

/// Erases `part` and writes `bytes` at its start through the HAL.
pub fn write_partition<F: Flash>(flash: &mut F, part: Partition, bytes: &[u8]) {
    part.erase_all(flash).unwrap();
    let ws = flash.write_size();
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().div_ceil(ws) * ws, flash.erased_value());
    part.write(flash, 0, &padded).unwrap();
}

pub struct Dev {
    pub sim: SimDevice,
    pub layout: FlashLayout,
    pub config: BootConfig<'static>,
}

impl Dev {
    /// A blank device (nothing provisioned, nothing installed).
    pub fn blank(flash: FlashConfig) -> Self {
        let sim = SimDevice::new(device_config(flash), 7).unwrap();
        let layout = FlashLayout::from_table(|n| sim.partition(n)).unwrap();
        Dev {
            sim,
            layout,
            config: BootConfig::default(),
        }
    }

    /// Root-key hash burnt, lifecycle secured, bootloader and `primary` installed (not booted).
    pub fn installed(flash: FlashConfig, primary: &[u8]) -> Self {
        let mut d = Dev::blank(flash);
        program_root_key_hash(&mut d.sim.otp, &root_hash()).unwrap();
        advance_lifecycle(&mut d.sim.otp, Lifecycle::Secured).unwrap();
        write_partition(&mut d.sim.flash, d.layout.bootloader, &bootloader_image());
        write_partition(&mut d.sim.flash, d.layout.primary, primary);
        d
    }

    /// Provisioned with A, booted once (counters at 1).
    pub fn provisioned(flash: FlashConfig) -> Self {
        let mut d = Dev::installed(flash, &image_a());
        d.boot().unwrap();
        d
    }

    pub fn with_mode(mut self, mode: UpgradeMode) -> Self {
        self.config.upgrade = mode;
        self
    }

    /// Power cycle, then boot.
    pub fn boot(&mut self) -> Result<BootReport, BootError> {
        self.sim.power_cycle();
        castellan_boot::boot(
            &mut self.sim.flash,
            &mut self.sim.otp,
            &mut self.sim.uds,
            &self.layout,
            &self.config,
        )
    }

    /// Writes `img` into the secondary slot and requests the upgrade.
    pub fn stage(&mut self, img: &[u8], permanent: bool) {
        self.sim.power_cycle();
        write_partition(&mut self.sim.flash, self.layout.secondary, img);
        castellan_boot::request_upgrade(&mut self.sim.flash, &self.layout, permanent).unwrap();
    }

    pub fn confirm(&mut self) {
        castellan_boot::confirm_image(&mut self.sim.flash, &self.layout).unwrap();
    }

    pub fn counter(&mut self) -> u32 {
        self.sim.power_cycle();
        read_security_counter(&mut self.sim.otp, CounterId::Application).unwrap()
    }

    pub fn trailer(&mut self, part: Partition) -> SlotTrailer {
        let g = Geometry::of(&self.sim.flash).unwrap();
        read_slot_trailer(&mut self.sim.flash, &g, part).unwrap()
    }

    /// True when `part` starts with `bytes`.
    pub fn holds(&self, part: Partition, bytes: &[u8]) -> bool {
        let s = part.offset as usize;
        &self.sim.flash.contents()[s..s + bytes.len()] == bytes
    }

    /// Flips one byte of the flash behind the bootloader's back (an attacker with a probe).
    pub fn poke(&mut self, part: Partition, offset: u32, xor: u8) {
        self.sim.flash.contents_mut()[(part.offset + offset) as usize] ^= xor;
    }
}
