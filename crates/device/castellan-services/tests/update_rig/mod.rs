//! A simulated device for the update client's tests: ROM stage and bootloader (swap with
//! scratch), secure services with trusted storage, the firmware update service and the update
//! client; signed images (the firmware key) and signed SUIT releases (the release key).
#![allow(dead_code)]

use castellan_boot::{BootConfig, BootReport, DowngradePolicy, FlashLayout, program_root_key_hash};
use castellan_devkit::DeviceSpec;
use castellan_devkit::sim_services::{SimPlatform, sim_platform};
use castellan_hal::{Flash, NorFlash, Partition};
use castellan_image::{
    PublicKeyFormat, SignOptions, SigningKey, TrustedKey, Version, sign_image, signer_id,
};
use castellan_services::update::COMPONENT;
use castellan_services::{
    FwuConfig, ItsConfig, SecureServices, ServiceError, ServicesConfig, UpdateConfig, UpdatePlan,
};
use castellan_sim::SimDevice;
use castellan_suit::builder::{ImageSpec, ManifestBuilder, Parameters, Sequence, Signer};
use castellan_suit::{Directive, Section};

/// The device the update client's tests run on: the catalog's `services-update`.
pub const DEVICE: DeviceSpec = castellan_devkit::SERVICES_UPDATE;
pub const SECTOR: u32 = DEVICE.sector_size;
pub const CLASS: &str = "sensor-v1";
pub const URI: &str = "castellan:release/r1";

pub type Services<'a> = SecureServices<
    &'a mut castellan_sim::SimFlash,
    castellan_services::OtpCounterMap<&'a mut castellan_sim::SimOtp>,
    &'a mut castellan_sim::SimRng,
>;

/// A device with bootloader, primary, secondary, scratch, status and trusted-storage areas.
pub fn device(write_size: u32) -> SimDevice {
    SimDevice::new(DEVICE.config(DEVICE.flash(write_size, 0xFF)), 77).unwrap()
}

fn key(seed: u8) -> p256::ecdsa::SigningKey {
    let mut scalar = [seed; 32];
    scalar[0] = 0x11;
    p256::ecdsa::SigningKey::from_slice(&scalar).unwrap()
}

pub struct Rig {
    pub dev: SimDevice,
    pub layout: FlashLayout,
    pub root_hash: [u8; 32],
    pub firmware_key: SigningKey,
    pub release_key: p256::ecdsa::SigningKey,
    pub ids: UpdateConfig,
    pub downgrade: DowngradePolicy,
    /// The factory application, v1.0.0, security counter 1.
    pub app_a: Vec<u8>,
}

impl Rig {
    /// A provisioned device running application A (v1.0.0, counter 1), with the release key's
    /// trust anchor stored.
    pub fn new() -> Rig {
        Self::with_write_size(4)
    }

    /// A device whose factory did not store a release trust anchor.
    pub fn new_without_anchor() -> Rig {
        Self::build(4, false)
    }

    pub fn with_write_size(write_size: u32) -> Rig {
        Self::build(write_size, true)
    }

    fn build(write_size: u32, anchor: bool) -> Rig {
        let mut dev = device(write_size);
        let firmware_key = SigningKey::P256(key(7));
        let root_hash = signer_id(&firmware_key.public_spki_der());
        program_root_key_hash(&mut dev.otp, &root_hash).unwrap();
        let layout = FlashLayout::from_table(|n| dev.partition(n)).unwrap();
        let mut rig = Rig {
            dev,
            layout,
            root_hash,
            firmware_key,
            release_key: key(9),
            ids: UpdateConfig::for_class("castellan", CLASS),
            downgrade: DowngradePolicy::Version,
            app_a: Vec::new(),
        };
        let bl = rig.image(b"bootloader", Version::new(1, 0, 0, 0), 1);
        rig.app_a = rig.image(b"application A", Version::new(1, 0, 0, 0), 1);
        let (bl_part, primary) = (rig.layout.bootloader, rig.layout.primary);
        write_raw(&mut rig.dev, bl_part, &bl);
        write_raw(&mut rig.dev, primary, &rig.app_a.clone());
        let report = rig.boot();
        let key = rig.release_key.verifying_key().to_sec1_point(false);
        let mut svc = rig.services(&report);
        if anchor {
            svc.update_provision_trust_anchor(key.as_bytes()).unwrap();
        }
        drop(svc);
        rig
    }

    /// A signed application image (`label` gives its bytes).
    pub fn image(&self, label: &[u8], version: Version, counter: u32) -> Vec<u8> {
        let payload: Vec<u8> = (0..2900u32)
            .map(|i| label[i as usize % label.len()] ^ (i as u8).wrapping_mul(13))
            .collect();
        let opts = SignOptions {
            version,
            align: self.dev.flash.write_size() as u32,
            public_key_format: PublicKeyFormat::Full,
            pad_header: true,
            security_counter: Some(counter),
            boot_record: Some("APP".into()),
            ..SignOptions::default()
        };
        sign_image(&payload, &self.firmware_key, &opts).unwrap()
    }

    /// Application B: v1.1.0, security counter 1.
    pub fn image_b(&self) -> Vec<u8> {
        self.image(b"application B", Version::new(1, 1, 0, 0), 1)
    }

    /// Application B ([`Rig::image_b`]) and its release, sequence 1.
    pub fn release_b(&self) -> (Vec<u8>, Vec<u8>) {
        let b = self.image_b();
        let env = self.release(1, &b);
        (b, env)
    }

    /// Power cycle, then ROM stage and bootloader.
    pub fn boot(&mut self) -> BootReport {
        self.dev.power_cycle();
        let config = BootConfig {
            downgrade: self.downgrade,
            ..BootConfig::default()
        };
        castellan_boot::boot(
            &mut self.dev.flash,
            &mut self.dev.otp,
            &mut self.dev.uds,
            &self.layout,
            &config,
        )
        .unwrap()
    }

    pub fn config(&self) -> ServicesConfig {
        let fwu = FwuConfig::new(self.layout, TrustedKey::Sha256OfSpki(self.root_hash), true)
            .with_downgrade(self.downgrade);
        let its = ItsConfig::new(
            self.dev.partition("its").unwrap(),
            self.dev.partition("its-key").unwrap(),
        );
        ServicesConfig::new(its, [0xA1; 32])
            .with_fwu(fwu)
            .with_update(self.ids)
    }

    pub fn services(&mut self, report: &BootReport) -> Services<'_> {
        let config = self.config();
        let p: SimPlatform<'_> = sim_platform(&mut self.dev).unwrap();
        SecureServices::from_boot_report(p, config, report).unwrap()
    }

    /// Boots and starts the services.
    pub fn power_on(&mut self) -> (BootReport, Services<'_>) {
        let report = self.boot();
        let svc = self.services(&report);
        (report, svc)
    }

    /// A release manifest as the fleet protocol describes it: vendor and class conditions,
    /// image digest and size (shared sequence), payload-fetch = fetch, no install sequence,
    /// validate = image-match.
    pub fn release(&self, sequence: u64, image: &[u8]) -> Vec<u8> {
        self.release_with(sequence, image, |b| b)
    }

    /// [`Rig::release`] with changes to the builder (class, expiry, ...).
    pub fn release_with(
        &self,
        sequence: u64,
        image: &[u8],
        f: impl FnOnce(ManifestBuilder) -> ManifestBuilder,
    ) -> Vec<u8> {
        let fetch = Sequence::new()
            .override_parameters(&Parameters::new().uri(URI))
            .directive(Directive::Fetch);
        let b = ManifestBuilder::new(sequence, &self.ids.vendor_id, &self.ids.class_id)
            .image(ImageSpec::new(&COMPONENT, image))
            .sequence(Section::PayloadFetch, fetch)
            .sequence(Section::Install, Sequence::new());
        f(b).build(&Signer::Es256(&self.release_key)).unwrap()
    }

    /// The measurement digest of image `img` as the bootloader reports it.
    pub fn digest_of(&self, img: &[u8]) -> Vec<u8> {
        castellan_image::verify(&mut &img[..], TrustedKey::Sha256OfSpki(self.root_hash))
            .unwrap()
            .digest
            .as_bytes()
            .to_vec()
    }

    /// Installs and accepts `image` with manifest sequence `seq` (download, trial reboot,
    /// accept); returns the release's envelope.
    pub fn install(&mut self, seq: u64, image: &[u8]) -> Vec<u8> {
        let env = self.release(seq, image);
        let (_, mut svc) = self.power_on();
        download(&mut svc, &env, image, None).unwrap();
        drop(svc);
        let (_, mut svc) = self.power_on();
        svc.fwu_accept().unwrap();
        assert_eq!(svc.update_installed_sequence().unwrap(), seq);
        drop(svc);
        env
    }

    /// Boots and checks that `img` runs, confirmed.
    pub fn assert_runs(&mut self, img: &[u8], what: &str) {
        let want = self.digest_of(img);
        let report = self.boot();
        assert_eq!(
            report.application.digest.as_bytes(),
            want.as_slice(),
            "{what} is not the image that runs"
        );
        assert!(report.confirmed, "{what} runs but is not confirmed");
    }
}

pub fn write_raw(dev: &mut SimDevice, part: Partition, bytes: &[u8]) {
    let ws = dev.flash.write_size();
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().div_ceil(ws) * ws, 0xFF);
    dev.flash.write(part.offset, &padded).unwrap();
}

/// Sends `image[from..]` in blocks of `block` bytes.
pub fn send(
    svc: &mut Services<'_>,
    image: &[u8],
    from: u32,
    block: usize,
) -> Result<u32, ServiceError> {
    let mut at = from as usize;
    let mut received = from;
    while at < image.len() {
        let end = (at + block).min(image.len());
        received = svc.update_write(at as u64, &image[at..end])?;
        at = end;
    }
    Ok(received)
}

/// begin + every block + finish.
pub fn download(
    svc: &mut Services<'_>,
    envelope: &[u8],
    image: &[u8],
    now: Option<u64>,
) -> Result<UpdatePlan, ServiceError> {
    let plan = svc.update_begin(envelope, now)?;
    send(svc, image, plan.resume_offset, 700)?;
    svc.update_finish()?;
    Ok(plan)
}
