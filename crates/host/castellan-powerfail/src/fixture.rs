//! The simulated device every scenario starts from: flash geometry and partitions, keys,
//! signed images (bootloader, A = v1.0.0 counter 1, B = v1.1.0 counter 2), and a provisioned,
//! booted device.
//!
//! ```text
//!  flash (8 KiB, 512-byte sectors; castellan_devkit::BOOT_MATRIX)
//!  0x0000 bootloader (1 sector) · 0x0200 primary (4) · 0x0A00 secondary (4)
//!  0x1200 scratch (1) · 0x1400 status (1) · rest unused
//! ```

use castellan_boot::{
    BootConfig, BootError, BootReport, FlashLayout, Lifecycle, UpgradeMode, advance_lifecycle,
    program_root_key_hash,
};
use castellan_devkit::DeviceSpec;
use castellan_hal::{Flash, Partition};
use castellan_image::{
    ImageDigest, PublicKeyFormat, SignOptions, SigningKey, Version, sign_image, signer_id,
};
use castellan_sim::{DeviceConfig, FlashConfig, SimDevice};

/// The device every boot scenario runs on: the catalog's `boot-matrix` (8 KiB of flash in
/// 512-byte sectors, the boot partitions, every write size and erased value).
pub const DEVICE: DeviceSpec = castellan_devkit::BOOT_MATRIX;

/// The 8 geometries of the power-loss matrix (write size 1, 4, 8, 16 × erased 0xFF, 0x00).
pub fn geometries() -> Vec<FlashConfig> {
    DEVICE.geometries().collect()
}

/// The device description for a geometry, with the named partitions the bootloader uses.
pub fn device_config(flash: FlashConfig) -> DeviceConfig {
    DEVICE.config(flash)
}

/// The boot layout of a simulated device.
pub fn layout(dev: &SimDevice) -> Result<FlashLayout, BootError> {
    FlashLayout::from_table(|name| dev.partition(name))
}

/// A deterministic Ed25519 signing key.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
}

/// The key whose hash is burnt in OTP (signs the bootloader and the application images).
pub fn root_key() -> SigningKey {
    key(0x11)
}

/// Signs `payload_len` bytes (derived from `fill`) as an image with the full public key in it
/// (the device keeps only the key's hash).
pub fn signed_image(
    key: &SigningKey,
    version: Version,
    security_counter: Option<u32>,
    payload_len: usize,
    fill: u8,
) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len)
        .map(|i| fill.wrapping_add((i as u8).wrapping_mul(31)))
        .collect();
    let opts = SignOptions {
        version,
        pad_header: true,
        security_counter,
        public_key_format: PublicKeyFormat::Full,
        ..SignOptions::default()
    };
    // Signing a fixed payload with a valid key and default options cannot fail.
    sign_image(&payload, key, &opts).unwrap_or_default()
}

/// One image of a scenario, with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Short name ("A", "B").
    pub name: &'static str,
    /// The signed image.
    pub bytes: Vec<u8>,
    /// Its digest (what the boot report measures).
    pub digest: ImageDigest,
    /// Its security counter.
    pub counter: u32,
}

impl Image {
    fn new(name: &'static str, bytes: Vec<u8>, counter: u32) -> Self {
        let verified = castellan_image::verify(
            &mut bytes.as_slice(),
            castellan_image::TrustedKey::Sha256OfSpki(signer_id(&root_key().public_spki_der())),
        );
        let digest = match verified {
            Ok(v) => v.digest,
            Err(_) => castellan_image::HashAlg::Sha256.digest(&bytes),
        };
        Image {
            name,
            bytes,
            digest,
            counter,
        }
    }
}

/// The images of the harness.
#[derive(Debug, Clone)]
pub struct Images {
    /// The bootloader (verified by the ROM stage).
    pub bootloader: Vec<u8>,
    /// The factory application: v1.0.0, security counter 1.
    pub a: Image,
    /// The upgrade: v1.1.0, security counter 2.
    pub b: Image,
}

impl Images {
    /// Builds the images (three signatures).
    pub fn new() -> Self {
        let root = root_key();
        Images {
            bootloader: signed_image(&root, Version::new(1, 0, 0, 0), Some(1), 96, 0xB0),
            a: Image::new(
                "A",
                signed_image(&root, Version::new(1, 0, 0, 0), Some(1), 1300, 0x0A),
                1,
            ),
            b: Image::new(
                "B",
                signed_image(&root, Version::new(1, 1, 0, 0), Some(2), 1400, 0x0B),
                2,
            ),
        }
    }

    /// The image with this digest, if it is one of the authorized application images.
    pub fn by_digest(&self, d: &ImageDigest) -> Option<&Image> {
        [&self.a, &self.b].into_iter().find(|i| &i.digest == d)
    }
}

impl Default for Images {
    fn default() -> Self {
        Images::new()
    }
}

/// Erases `part` and writes `bytes` at its start (padded with erased bytes to the write size),
/// through the HAL, as a downloader would.
pub fn write_partition<F: Flash>(
    flash: &mut F,
    part: Partition,
    bytes: &[u8],
) -> Result<(), BootError> {
    part.erase_all(flash)?;
    let ws = flash.write_size();
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().div_ceil(ws) * ws, flash.erased_value());
    part.write(flash, 0, &padded)?;
    Ok(())
}

/// The boot configuration for a mode.
pub fn boot_config(mode: UpgradeMode) -> BootConfig<'static> {
    BootConfig {
        upgrade: mode,
        ..BootConfig::default()
    }
}

/// Boots a simulated device.
pub fn boot(dev: &mut SimDevice, config: &BootConfig<'_>) -> Result<BootReport, BootError> {
    let layout = layout(dev)?;
    castellan_boot::boot(&mut dev.flash, &mut dev.otp, &mut dev.uds, &layout, config)
}

/// A secured device with the root-key hash burnt, the bootloader and image A installed, booted
/// once (which raises both anti-rollback counters to 1).
pub fn provisioned_device(
    flash: FlashConfig,
    images: &Images,
    mode: UpgradeMode,
) -> Result<SimDevice, String> {
    let mut dev = SimDevice::new(device_config(flash), 7).map_err(|e| e.to_string())?;
    let l = layout(&dev).map_err(|e| e.to_string())?;
    let root_hash = signer_id(&root_key().public_spki_der());
    program_root_key_hash(&mut dev.otp, &root_hash).map_err(|e| e.to_string())?;
    advance_lifecycle(&mut dev.otp, Lifecycle::Secured).map_err(|e| e.to_string())?;
    write_partition(&mut dev.flash, l.bootloader, &images.bootloader).map_err(|e| e.to_string())?;
    write_partition(&mut dev.flash, l.primary, &images.a.bytes).map_err(|e| e.to_string())?;
    l.secondary
        .erase_all(&mut dev.flash)
        .map_err(|e| e.to_string())?;
    boot(&mut dev, &boot_config(mode)).map_err(|e| format!("first boot: {e}"))?;
    dev.power_cycle();
    Ok(dev)
}
