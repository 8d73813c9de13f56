//! A small simulated device for the onboarding tests: secure services (crypto, attestation) on
//! the host simulator, started by a ROM stage that derives the DICE CDIs from the bootloader
//! measurement, with the boot record a bootloader hands over. Its TLS identities (IDevID and
//! LDevID keys) are PEM files, as the protocol allows for interop tests, so that the real MQTT
//! peers (paho, mosquitto) can present them; its attestation key (IAK) lives in the services.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use castellan_devkit::sim_services::sim_platform;
use castellan_dice::{Mode, rom_stage_cdis};
use castellan_hal::{HardwareUniqueSecret, Partition};
use castellan_server::protocol::{FactoryRequest, MeasurementJson};
use castellan_services::{
    Algorithm, BootRecordEntry, ImageVersion, ItsConfig, KEY_ID_DEVICE_IDENTITY, Lifecycle,
    OtpCounterMap, SecureServices, ServicesConfig,
};
use castellan_sim::{DeviceConfig, FlashConfig, SimDevice, SimFlash, SimOtp, SimRng};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use sha2::{Digest as _, Sha256};

const SECTOR: u32 = 512;
const KEY_AREA: Partition = Partition::new(0, SECTOR);
const ITS_AREA: Partition = Partition::new(SECTOR, 4 * SECTOR);
/// Implementation id of the test device class.
pub const IMPLEMENTATION_ID: [u8; 32] = [0xA1; 32];
/// What the test bootloader measures.
pub const BL_HASH: [u8; 32] = [0xB1; 32];
/// The application image the device ships with.
pub const APP_HASH: [u8; 32] = [0xA9; 32];
/// Hash of the signing key of both images.
pub const SIGNER: [u8; 32] = [0x51; 32];

type Services<'a> = SecureServices<&'a mut SimFlash, OtpCounterMap<&'a mut SimOtp>, &'a mut SimRng>;

/// A simulated device and its files.
pub struct TestDevice {
    pub serial: String,
    pub dev: SimDevice,
    /// The application the device runs now (what its tokens report).
    pub app_hash: [u8; 32],
    /// The signer id of that application.
    pub app_signer: [u8; 32],
    /// Its version.
    pub app_version: ImageVersion,
    /// Where the device keeps its certificates and keys.
    pub dir: PathBuf,
}

impl TestDevice {
    /// A blank device (lifecycle assembly-and-test), `seed` gives it its own UDS.
    pub fn new(serial: &str, seed: u64, dir: &Path) -> TestDevice {
        let dev = SimDevice::new(
            DeviceConfig::new(FlashConfig::new(16 * SECTOR, SECTOR, 4, 0xFF)),
            seed,
        )
        .unwrap();
        let dir = dir.join(serial);
        std::fs::create_dir_all(&dir).unwrap();
        TestDevice {
            serial: serial.into(),
            dev,
            app_hash: APP_HASH,
            app_signer: SIGNER,
            app_version: ImageVersion::new(1, 2, 3, 0),
            dir,
        }
    }

    fn boot_record(&self) -> [BootRecordEntry; 2] {
        [
            BootRecordEntry::new("BL", BL_HASH, SIGNER, ImageVersion::new(1, 0, 0, 0)).unwrap(),
            BootRecordEntry::new("APP", self.app_hash, self.app_signer, self.app_version).unwrap(),
        ]
    }

    /// Power on: ROM stage (CDIs from the bootloader measurement), secure services.
    fn boot(&mut self) -> Services<'_> {
        let record = self.boot_record();
        self.dev.power_cycle();
        let mut uds = [0u8; 32];
        self.dev.uds.read(&mut uds).unwrap();
        self.dev.uds.lock();
        let cdis = rom_stage_cdis(&uds, &BL_HASH, &SIGNER, Mode::Normal).unwrap();
        let config = ServicesConfig::new(ItsConfig::new(ITS_AREA, KEY_AREA), IMPLEMENTATION_ID);
        SecureServices::new(sim_platform(&mut self.dev).unwrap(), config, &cdis, &record).unwrap()
    }

    /// Powers on with the edge detector (the catalog's model), plays `refused` gate calls with
    /// a pointer into secure memory and a few ordinary ones, and returns the detection report
    /// the secure side signs (its counter kept in the device's trusted storage).
    #[allow(dead_code)]
    pub fn detection_report(&mut self, refused: u32) -> Vec<u8> {
        use castellan_gate_api::{BootInfo, DETECT_REPORT_CAP, Op, SecureGate};
        use castellan_simgate::{SECURE_RAM, SimGate, SimNsMemory, SimSecure};
        let mut svc = self.boot();
        svc.install_detector(castellan_devkit::detect_model::config())
            .unwrap();
        let mut secure = SimSecure::new(svc, BootInfo::zeroed());
        let mut mem = SimNsMemory::new();
        for _ in 0..refused {
            secure.call(Op::ItsGet, [1, SECURE_RAM, 16, 0], &mut mem);
        }
        let mut gate = SimGate::new(&mut secure);
        for i in 0..8 {
            gate.its_set(i + 1, b"reading").unwrap();
        }
        let mut out = [0u8; DETECT_REPORT_CAP];
        let n = gate.detect_report(&mut out).unwrap();
        out[..n].to_vec()
    }

    /// The factory flow on the device side: provisioning lifecycle, identity key generated in
    /// the crypto service (its CSR is signed there too, and checked), the IAK, lifecycle
    /// secured. Returns the registration request. The TLS key of the IDevID used by the MQTT
    /// peers is `idevid.key` (see the module doc), certified by the CSR built here.
    pub fn factory_request(&mut self, class: &str) -> FactoryRequest {
        let serial = self.serial.clone();
        let mut svc = self.boot();
        svc.lifecycle_transition(Lifecycle::PsaRotProvisioning)
            .unwrap();
        let identity = svc.provision_identity_key().unwrap();
        let svc = RefCell::new(svc);
        // A CSR signed inside the crypto service: proves the service signs what build_csr asks.
        let in_service =
            castellan_pki::build_csr(&identity, &serial, Some(&serial), |msg: &[u8]| {
                let hash = Sha256::digest(msg);
                let mut sig = [0u8; 64];
                svc.borrow_mut()
                    .sign_hash(
                        KEY_ID_DEVICE_IDENTITY,
                        Algorithm::ECDSA_SHA_256,
                        &hash,
                        &mut sig,
                    )
                    .map(|_| sig)
                    .map_err(|e| e.to_string())
            })
            .unwrap();
        castellan_pki::verify_csr(&in_service).unwrap();
        let mut svc = svc.into_inner();
        let iak = svc.attestation_public_key();
        svc.lifecycle_transition(Lifecycle::Secured).unwrap();
        drop(svc);
        let csr = self.csr_for_new_key("idevid");
        FactoryRequest {
            serial,
            device_class: class.into(),
            csr: hex::encode(csr),
            iak_public_key: hex::encode(iak),
            firmware_version: Some("1.2.3".into()),
            reference_measurements: vec![
                measurement("BL", &BL_HASH, &SIGNER, "1.0.0+0"),
                measurement(
                    "APP",
                    &self.app_hash,
                    &self.app_signer,
                    &self.app_version.to_string(),
                ),
            ],
            tags: vec!["site-a".into()],
        }
    }

    /// A fresh P-256 key saved as `<name>.key` and a CSR for it.
    pub fn csr_for_new_key(&self, name: &str) -> Vec<u8> {
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        let key = {
            use p256::elliptic_curve::Generate as _;
            p256::ecdsa::SigningKey::generate_from_rng(&mut rng)
        };
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        std::fs::write(self.dir.join(format!("{name}.key")), pem.as_bytes()).unwrap();
        let public = key.verifying_key().to_sec1_point(false);
        castellan_pki::build_csr(public.as_bytes(), &self.serial, None, |msg: &[u8]| {
            use p256::ecdsa::signature::Signer as _;
            let sig: p256::ecdsa::Signature = key.sign(msg);
            let mut out = [0u8; 64];
            out.copy_from_slice(&sig.to_bytes());
            Ok::<_, String>(out)
        })
        .unwrap()
    }

    /// The secure services decommission the device (crypto-erase, lifecycle fuse); its later
    /// tokens show the decommissioned lifecycle.
    #[allow(dead_code)]
    pub fn erase(&mut self) {
        self.boot().decommission().unwrap();
    }

    /// A PSA attestation token over `nonce`, from the device's attestation service.
    pub fn token(&mut self, nonce: &[u8]) -> Vec<u8> {
        let mut svc = self.boot();
        let mut out = vec![0u8; svc.attest_token_size(nonce.len()).unwrap()];
        let n = svc.attest_token(nonce, -1, &mut out).unwrap();
        out.truncate(n);
        out
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }
}

fn measurement(
    mtype: &str,
    digest: &[u8; 32],
    signer: &[u8; 32],
    version: &str,
) -> MeasurementJson {
    MeasurementJson {
        mtype: mtype.into(),
        digest: hex::encode(digest),
        signer_id: hex::encode(signer),
        version: version.into(),
    }
}
