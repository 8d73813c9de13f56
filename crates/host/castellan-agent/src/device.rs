//! The simulated device a factory station and an agent work on: its standard flash layout, a
//! firmware kit (signing key, bootloader and application images) to build one from scratch, the
//! boot chain, and the configuration its secure services start with. The `castellan sim`
//! commands use the same helpers, so every simulated device is built and booted one way.
//!
//! ```text
//!  FirmwareKit::load_or_create(dir)   signing-key.pem · bootloader.bin · app-<v>.bin
//!        │ build_device(dir, kit)
//!        ▼
//!  SimDevice: root-key hash in OTP, key fuses locked, lifecycle secured, images flashed
//!        │ boot_device()                      ROM stage → bootloader → BootReport
//!        ▼
//!  services_config() ─▶ SecureServices::from_boot_report (see `secure`)
//! ```

use std::path::{Path, PathBuf};

use castellan_boot::{
    BootConfig, BootReport, DowngradePolicy, FlashLayout, Lifecycle, UpgradeMode,
    advance_lifecycle, boot, lock_key_regions, program_root_key_hash, read_lifecycle,
    read_root_key_hash,
};
use castellan_hal::{Flash as _, Partition};
use castellan_image::{KeyType, PublicKeyFormat, SignOptions, SigningKey, Version, sign_image};
use castellan_services::{FwuConfig, ItsConfig, ServicesConfig, UpdateConfig};
use castellan_sim::{DeviceConfig, SimDevice};

use crate::error::{AgentError, read, read_text, write};

/// Implementation id reported by simulated devices (SHA-256 of "castellan-sim").
pub const SIM_IMPLEMENTATION_ID: [u8; 32] = [
    0x5c, 0x3e, 0x1b, 0x6a, 0x0d, 0x92, 0x47, 0x88, 0x21, 0x5f, 0xa0, 0x13, 0x77, 0xc4, 0x09, 0xe2,
    0x3b, 0x68, 0xd1, 0x4f, 0x90, 0x2a, 0xb5, 0x06, 0xee, 0x71, 0x38, 0xcd, 0x14, 0x5b, 0x82, 0xf9,
];

/// Size of each image slot of the standard layout.
pub const SLOT_SIZE: u32 = castellan_devkit::reference::SLOT_SIZE;
/// Size of the bootloader partition of the standard layout.
pub const BOOTLOADER_SIZE: u32 = castellan_devkit::reference::BOOTLOADER_SIZE;
/// Flash sector size of the standard layout.
pub const SECTOR_SIZE: u32 = castellan_devkit::reference::SECTOR_SIZE;
/// Flash write size of the standard layout.
pub const WRITE_SIZE: u32 = castellan_devkit::reference::WRITE_SIZE;

/// The standard layout (the catalog's reference device, what `castellan sim create` makes with
/// its defaults): bootloader, primary, secondary, scratch, status, and the trusted-storage key
/// area and banks.
pub fn standard_config() -> DeviceConfig {
    castellan_devkit::REFERENCE.device_config()
}

/// The standard layout with image slots of `slot` bytes (rounded up to whole sectors), for
/// devices that take larger releases (benchmarks).
pub fn standard_config_with_slot(slot: u32) -> DeviceConfig {
    castellan_devkit::ReferenceOptions::with_slot(slot).device_config()
}

/// The downgrade policy of simulated fleet devices, in the bootloader and the update service:
/// the security counter decides, so a campaign can roll back to the previous release (signed
/// again with a newer manifest) while releases below the counter stay refused.
pub const DOWNGRADE_POLICY: DowngradePolicy = DowngradePolicy::SecurityCounter;

/// Opens the device saved in `dir` and reads its flash layout.
pub fn open(dir: &Path) -> Result<(SimDevice, FlashLayout), AgentError> {
    let dev = SimDevice::open(dir).map_err(|e| {
        AgentError::device(
            format!(
                "{}: no simulated device here (create one with `castellan sim create` or \
                 `castellan factory provision --new`)",
                dir.display()
            ),
            e,
        )
    })?;
    let layout = FlashLayout::from_table(|n| dev.partition(n))
        .map_err(|e| AgentError::device(format!("{}: bad partition table", dir.display()), e))?;
    Ok((dev, layout))
}

/// The upgrade strategy a layout allows (overwrite-only without a scratch partition).
pub fn upgrade_mode(layout: &FlashLayout) -> UpgradeMode {
    if layout.scratch.is_some() {
        UpgradeMode::Swap
    } else {
        UpgradeMode::OverwriteOnly
    }
}

/// Powers the device off and on and runs the boot chain (ROM stage, bootloader).
pub fn boot_device(dev: &mut SimDevice, layout: &FlashLayout) -> Result<BootReport, AgentError> {
    dev.power_cycle();
    let config = BootConfig {
        upgrade: upgrade_mode(layout),
        downgrade: DOWNGRADE_POLICY,
        ..BootConfig::default()
    };
    boot(&mut dev.flash, &mut dev.otp, &mut dev.uds, layout, &config).map_err(AgentError::Boot)
}

/// The configuration the device's secure services start with: trusted storage in the `its` and
/// `its-key` partitions, the simulator's implementation id, the update service over the boot
/// slots with the root key, and — once the factory recorded the device's class beside it
/// (`identity/device.json`) — the update client for that class of the default vendor.
pub fn services_config(
    dev: &SimDevice,
    layout: &FlashLayout,
) -> Result<ServicesConfig, AgentError> {
    let class = dev
        .dir()
        .and_then(|d| crate::identity::IdentityFiles::of(d).record().ok())
        .map(|r| r.device_class);
    services_config_for(dev, layout, class.as_deref())
}

/// [`services_config`] for a device of class `class` (`None`: no update client).
pub fn services_config_for(
    dev: &SimDevice,
    layout: &FlashLayout,
    class: Option<&str>,
) -> Result<ServicesConfig, AgentError> {
    let part = |name: &str| {
        dev.partition(name).ok_or_else(|| {
            AgentError::device_state(format!("the device has no `{name}` partition"))
        })
    };
    let its = ItsConfig::new(part("its")?, part("its-key")?);
    let root = read_root_key_hash(&dev.otp)
        .map_err(|e| AgentError::device("cannot read the root-key hash", e))?
        .ok_or_else(|| AgentError::device_state("no root key provisioned"))?;
    let fwu = FwuConfig::new(
        *layout,
        castellan_image::TrustedKey::Sha256OfSpki(root),
        true,
    )
    .with_downgrade(DOWNGRADE_POLICY);
    let config = ServicesConfig::new(its, SIM_IMPLEMENTATION_ID).with_fwu(fwu);
    Ok(match class {
        Some(class) => config.with_update(update_ids(class)),
        None => config,
    })
}

/// The update identifiers of device class `class` of the fleet's default vendor
/// (`castellan_suit::ids`): what the release tool puts in the manifests of the class.
pub fn update_ids(class: &str) -> UpdateConfig {
    UpdateConfig::for_class(castellan_suit::ids::DEFAULT_VENDOR, class)
}

/// Erases a partition and writes `data` at its start (padded to the write size).
pub fn write_partition(
    dev: &mut SimDevice,
    part: Partition,
    data: &[u8],
) -> Result<(), AgentError> {
    if data.len() > part.size as usize {
        return Err(AgentError::InvalidInput(format!(
            "the image ({} bytes) is larger than the partition ({} bytes)",
            data.len(),
            part.size
        )));
    }
    let w = dev.flash.write_size();
    let mut buf = data.to_vec();
    buf.resize(data.len().div_ceil(w) * w, dev.flash.erased_value());
    let e = |e: castellan_hal::HalError| AgentError::device("flash", e);
    part.erase_all(&mut dev.flash).map_err(e)?;
    part.write(&mut dev.flash, 0, &buf).map_err(e)?;
    Ok(())
}

/// What a factory line needs to build simulated devices from scratch: the firmware signing key
/// (its hash becomes the root key in OTP) and the signed bootloader and application images.
pub struct FirmwareKit {
    /// Directory the kit is kept in.
    pub dir: PathBuf,
    /// The firmware signing key (ECDSA P-256).
    pub key: SigningKey,
    /// The signed bootloader (MCUboot format, boot-record type "BL").
    pub bootloader: Vec<u8>,
    /// The signed application (MCUboot format, type "APP", confirmed, padded to the slot).
    pub app: Vec<u8>,
    /// The application's version.
    pub app_version: Version,
}

impl std::fmt::Debug for FirmwareKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirmwareKit")
            .field("dir", &self.dir)
            .field("app_version", &self.app_version)
            .finish_non_exhaustive()
    }
}

/// The kit's file names.
const KIT_KEY: &str = "signing-key.pem";
const KIT_BOOTLOADER: &str = "bootloader.bin";

impl FirmwareKit {
    /// Loads the kit kept in `dir`, or creates it (a new signing key, bootloader 1.0.0 and
    /// application `app_version`) and saves it there. Devices built from one kit share their
    /// reference measurements.
    pub fn load_or_create(dir: &Path, app_version: Version) -> Result<FirmwareKit, AgentError> {
        let key_path = dir.join(KIT_KEY);
        let key = if key_path.exists() {
            SigningKey::from_pkcs8_pem(&read_text(&key_path)?)
                .map_err(|e| AgentError::pki(key_path.display().to_string(), e))?
        } else {
            let key = SigningKey::generate(KeyType::EcdsaP256);
            let pem = key
                .to_pkcs8_pem()
                .map_err(|e| AgentError::pki("cannot encode the firmware kit key", e))?;
            write(&key_path, pem.as_bytes())?;
            key
        };
        let bl_path = dir.join(KIT_BOOTLOADER);
        let bootloader = if bl_path.exists() {
            read(&bl_path)?
        } else {
            let image = sign_firmware(&key, "BL", Version::new(1, 0, 0, 0), b"bootloader")?;
            write(&bl_path, &image)?;
            image
        };
        let app_path = dir.join(format!("app-{app_version}.bin"));
        let app = if app_path.exists() {
            read(&app_path)?
        } else {
            let image = sign_firmware(&key, "APP", app_version, b"application")?;
            write(&app_path, &image)?;
            image
        };
        Ok(FirmwareKit {
            dir: dir.to_path_buf(),
            key,
            bootloader,
            app,
            app_version,
        })
    }

    /// A release image of the application (what `castellan release create` uploads): signed
    /// with the kit's key, not padded to the slot and not confirmed (it is installed for a
    /// trial run), version `version`, security counter `security_counter`, its payload derived
    /// from `label`. A label containing `CASTELLAN-SELFTEST-FAIL` makes firmware that fails the
    /// agent's self-test after the update.
    pub fn release_app(
        &self,
        version: Version,
        security_counter: u32,
        label: &[u8],
    ) -> Result<Vec<u8>, AgentError> {
        sign_release(&self.key, version, security_counter, label)
    }

    /// [`FirmwareKit::release_app`] (security counter 1) of about `image_size` bytes (at least
    /// the 12 KiB of a synthetic payload): for benchmarks of larger releases.
    pub fn release_image(
        &self,
        version: Version,
        image_size: usize,
        label: &[u8],
    ) -> Result<Vec<u8>, AgentError> {
        let small = self.release_app(version, 1, label)?;
        let overhead = small.len().saturating_sub(12 * 1024);
        let mut payload = synthetic_payload(label);
        let want = image_size.saturating_sub(overhead).max(payload.len());
        let mut x = payload.len() as u32 ^ 0x9e37_79b9;
        while payload.len() < want {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            payload.push(x as u8);
        }
        sign_app_payload(&self.key, version, 1, &payload)
    }

    /// An application image signed with the kit's key but with other contents (`variant`): what
    /// an attacker who obtained a validly signed build, or a stale one, would flash. It boots;
    /// its measurement differs from the reference.
    pub fn other_app(&self, variant: &[u8]) -> Result<Vec<u8>, AgentError> {
        sign_firmware(&self.key, "APP", self.app_version, variant)
    }
}

/// Signs a synthetic application image for an update (see [`FirmwareKit::release_app`]).
pub fn sign_release(
    key: &SigningKey,
    version: Version,
    security_counter: u32,
    label: &[u8],
) -> Result<Vec<u8>, AgentError> {
    sign_app_payload(key, version, security_counter, &synthetic_payload(label))
}

fn sign_app_payload(
    key: &SigningKey,
    version: Version,
    security_counter: u32,
    payload: &[u8],
) -> Result<Vec<u8>, AgentError> {
    let opts = SignOptions {
        version,
        pad_header: true,
        public_key_format: PublicKeyFormat::Full,
        security_counter: Some(security_counter),
        boot_record: Some("APP".into()),
        align: WRITE_SIZE,
        ..SignOptions::default()
    };
    sign_image(payload, key, &opts).map_err(|e| AgentError::pki("cannot sign", e))
}

/// 12 KiB of firmware bytes: a readable prefix with `label`, then bytes derived from it.
fn synthetic_payload(label: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(12 * 1024);
    payload.extend_from_slice(b"castellan simulated firmware: ");
    payload.extend_from_slice(label);
    let mut x: u32 = label.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    while payload.len() < 12 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        payload.push(x as u8);
    }
    payload
}

/// Signs a synthetic firmware image of type `sw_type` (12 KiB of bytes derived from `label`).
pub fn sign_firmware(
    key: &SigningKey,
    sw_type: &str,
    version: Version,
    label: &[u8],
) -> Result<Vec<u8>, AgentError> {
    let payload = synthetic_payload(label);
    let is_app = sw_type == "APP";
    let opts = SignOptions {
        version,
        pad_header: true,
        public_key_format: PublicKeyFormat::Full,
        security_counter: Some(1),
        boot_record: Some(sw_type.to_string()),
        slot_size: if is_app { SLOT_SIZE } else { 0 },
        align: WRITE_SIZE,
        pad: is_app,
        confirm: is_app,
        ..SignOptions::default()
    };
    sign_image(&payload, key, &opts).map_err(|e| AgentError::pki("cannot sign", e))
}

/// Builds a simulated device in `dir` (which must not hold one): the standard layout, the kit's
/// key hash as root key in OTP, key fuses locked, lifecycle secured, bootloader and application
/// flashed. The device then boots.
///
/// The lifecycle is secured before any key is generated on purpose: the DICE mode (and so
/// `CDI_Seal` and `CDI_Attest`) changes with it, so keys made earlier would be lost.
pub fn build_device(dir: &Path, kit: &FirmwareKit) -> Result<(), AgentError> {
    build_device_with_slot(dir, kit, SLOT_SIZE)
}

/// [`build_device`] with image slots of `slot` bytes ([`standard_config_with_slot`]).
pub fn build_device_with_slot(dir: &Path, kit: &FirmwareKit, slot: u32) -> Result<(), AgentError> {
    let mut dev = SimDevice::create(dir, standard_config_with_slot(slot))
        .map_err(|e| AgentError::device(format!("cannot create {}", dir.display()), e))?;
    let root = castellan_image::signer_id(&kit.key.public_spki_der());
    let b = |e: castellan_boot::BootError| AgentError::device("provisioning", e);
    program_root_key_hash(&mut dev.otp, &root).map_err(b)?;
    advance_lifecycle(&mut dev.otp, Lifecycle::PsaRotProvisioning).map_err(b)?;
    secure_lifecycle(&mut dev.otp)?;
    let layout = FlashLayout::from_table(|n| dev.partition(n)).map_err(b)?;
    write_partition(&mut dev, layout.bootloader, &kit.bootloader)?;
    write_partition(&mut dev, layout.primary, &kit.app)?;
    dev.save().map_err(|e| AgentError::device("cannot save", e))
}

/// Locks the key fuses and moves the lifecycle to secured, unless it is there already.
pub fn secure_lifecycle<O: castellan_hal::OtpFuses>(otp: &mut O) -> Result<bool, AgentError> {
    let b = |e: castellan_boot::BootError| AgentError::device("lifecycle", e);
    let lc = read_lifecycle(otp).map_err(b)?;
    match lc {
        Lifecycle::Secured => Ok(false),
        Lifecycle::AssemblyAndTest | Lifecycle::PsaRotProvisioning => {
            if lc == Lifecycle::AssemblyAndTest {
                advance_lifecycle(otp, Lifecycle::PsaRotProvisioning).map_err(b)?;
            }
            lock_key_regions(otp).map_err(b)?;
            advance_lifecycle(otp, Lifecycle::Secured).map_err(b)?;
            Ok(true)
        }
        other => Err(AgentError::device_state(format!(
            "lifecycle {other:?}: the device cannot be provisioned"
        ))),
    }
}

/// Moves the device in `dir` to secured (key fuses locked) with the device off, as a factory
/// programmer does before the first secured boot; `false` when it was secured already.
///
/// Do it before the secure services ever run: storage they format in an earlier lifecycle
/// state is sealed under that state's `CDI_Seal` (DICE mode "not configured") and bound to the
/// storage replay counters, so after the transition it neither mounts nor can be wiped and
/// formatted again (that would look like a rollback). Such a device reports why at its first
/// secured boot.
pub fn secure_offline(dir: &Path) -> Result<bool, AgentError> {
    let (mut dev, _) = open(dir)?;
    if !secure_lifecycle(&mut dev.otp)? {
        return Ok(false);
    }
    dev.save()
        .map_err(|e| AgentError::device("cannot save", e))?;
    Ok(true)
}

/// Replaces the application in the primary slot of the device in `dir` (tests and demo: the
/// "tampered firmware" device).
pub fn replace_app(dir: &Path, image: &[u8]) -> Result<(), AgentError> {
    let (mut dev, layout) = open(dir)?;
    write_partition(&mut dev, layout.primary, image)?;
    dev.save().map_err(|e| AgentError::device("cannot save", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_releases_fit_larger_slots_and_boot() {
        let t = tempfile::tempdir().unwrap();
        let kit =
            FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
        let image = kit
            .release_image(Version::new(2, 0, 0, 0), 200 * 1024, b"big")
            .unwrap();
        assert!(
            image.len().abs_diff(200 * 1024) < 64,
            "{} bytes for 200 KiB",
            image.len()
        );
        let root = castellan_image::signer_id(&kit.key.public_spki_der());
        let v = castellan_image::verify(
            &mut &image[..],
            castellan_image::TrustedKey::Sha256OfSpki(root),
        )
        .unwrap();
        assert_eq!(v.version(), Version::new(2, 0, 0, 0));

        let dir = t.path().join("dev");
        build_device_with_slot(&dir, &kit, 256 * 1024).unwrap();
        let (mut dev, layout) = open(&dir).unwrap();
        assert_eq!(layout.secondary.size, 256 * 1024);
        let report = boot_device(&mut dev, &layout).unwrap();
        assert!(report.confirmed);
        let config = services_config(&dev, &layout).unwrap();
        assert_eq!(
            config.update, None,
            "no device record yet: no update client"
        );
        let config = services_config_for(&dev, &layout, Some("bench-v1")).unwrap();
        assert_eq!(config.update, Some(update_ids("bench-v1")));
    }
}
