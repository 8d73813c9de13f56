//! Firmware update service: the PSA FWU state machine end to end over `castellan-boot` on a
//! simulated device (ROM stage, bootloader, swap with scratch): write, verify, install, trial,
//! accept or revert at the next reset; refused candidates; misuse of the state machine.

use castellan_boot::{
    BootConfig, BootReport, FlashLayout, InstallKind, UpgradeAction, program_root_key_hash,
};
use castellan_devkit::DeviceSpec;
use castellan_devkit::sim_services::{SimPlatform, sim_platform};
use castellan_hal::{Flash, Partition};
use castellan_image::{
    KeyType, PublicKeyFormat, SignOptions, SigningKey, TrustedKey, Version, sign_image, signer_id,
};
use castellan_services::fwu::COMPONENT_APPLICATION as APP;
use castellan_services::{
    FwuConfig, FwuState, InstallStatus, ItsConfig, SecureServices, ServiceError, ServicesConfig,
    psa, status_of,
};
use castellan_sim::SimDevice;

/// The device the tests run on: the catalog's `services-fwu`.
const DEVICE: DeviceSpec = castellan_devkit::SERVICES_FWU;
const SECTOR: u32 = DEVICE.sector_size;

type Services<'a> = SecureServices<
    &'a mut castellan_sim::SimFlash,
    castellan_services::OtpCounterMap<&'a mut castellan_sim::SimOtp>,
    &'a mut castellan_sim::SimRng,
>;

/// A device with bootloader, primary, secondary, scratch, status and trusted-storage areas.
fn device(write_size: u32) -> SimDevice {
    SimDevice::new(DEVICE.config(DEVICE.flash(write_size, 0xFF)), 2024).unwrap()
}

fn key(seed: u8) -> SigningKey {
    let mut scalar = [seed; 32];
    scalar[0] = 0x11;
    SigningKey::P256(p256::ecdsa::SigningKey::from_slice(&scalar).unwrap())
}

fn image(signer: &SigningKey, payload: &[u8], version: Version, write_size: u32) -> Vec<u8> {
    let opts = SignOptions {
        version,
        align: write_size,
        public_key_format: PublicKeyFormat::Full,
        pad_header: true,
        ..SignOptions::default()
    };
    sign_image(payload, signer, &opts).unwrap()
}

/// The application component is in `state` with `version`; returns its info.
#[track_caller]
fn assert_app(
    svc: &Services<'_>,
    state: FwuState,
    version: Version,
) -> castellan_services::ComponentInfo {
    let info = svc.fwu_query(APP).unwrap();
    assert_eq!((info.state, info.version), (state, version));
    info
}

/// The boot installed an image of `kind` (not resumed after a cut).
#[track_caller]
fn assert_installed(report: &BootReport, kind: InstallKind) {
    assert_eq!(
        report.upgrade,
        UpgradeAction::Installed {
            kind,
            resumed: false
        }
    );
}

struct Rig {
    dev: SimDevice,
    layout: FlashLayout,
    root_hash: [u8; 32],
    signer: SigningKey,
}

impl Rig {
    /// Boots, uploads v2.0.0 (security counter 2) and installs it: staged for the next reset.
    fn stage_v2(&mut self) {
        let v2 = self.signed(2, Version::new(2, 0, 0, 0));
        let report = self.boot();
        let mut svc = self.services(&report);
        upload(&mut svc, &v2).unwrap();
        svc.fwu_install().unwrap();
    }

    /// Provisioned device running application v1.0.0.
    fn new(write_size: u32) -> Rig {
        let mut dev = device(write_size);
        let signer = key(7);
        assert_eq!(signer.key_type(), KeyType::EcdsaP256);
        let root_hash = signer_id(&signer.public_spki_der());
        program_root_key_hash(&mut dev.otp, &root_hash).unwrap();
        let layout = FlashLayout::from_table(|n| dev.partition(n)).unwrap();
        let bl = image(&signer, &[0xB0; 700], Version::new(1, 0, 0, 0), write_size);
        let app = image(
            &signer,
            &app_payload(1),
            Version::new(1, 0, 0, 0),
            write_size,
        );
        write_raw(&mut dev, layout.bootloader, &bl);
        write_raw(&mut dev, layout.primary, &app);
        Rig {
            dev,
            layout,
            root_hash,
            signer,
        }
    }

    /// Power cycle, then ROM stage and bootloader.
    fn boot(&mut self) -> BootReport {
        self.dev.power_cycle();
        castellan_boot::boot(
            &mut self.dev.flash,
            &mut self.dev.otp,
            &mut self.dev.uds,
            &self.layout,
            &BootConfig::default(),
        )
        .unwrap()
    }

    fn services(&mut self, report: &BootReport) -> Services<'_> {
        let fwu = FwuConfig::new(self.layout, TrustedKey::Sha256OfSpki(self.root_hash), true);
        let its = ItsConfig::new(
            self.dev.partition("its").unwrap(),
            self.dev.partition("its-key").unwrap(),
        );
        let config = ServicesConfig::new(its, [0xA1; 32]).with_fwu(fwu);
        let p: SimPlatform<'_> = sim_platform(&mut self.dev).unwrap();
        SecureServices::from_boot_report(p, config, report).unwrap()
    }

    fn signed(&self, generation: u8, version: Version) -> Vec<u8> {
        image(
            &self.signer,
            &app_payload(generation),
            version,
            self.dev.flash.write_size() as u32,
        )
    }
}

fn app_payload(generation: u8) -> Vec<u8> {
    (0..3000u32)
        .map(|i| (i as u8) ^ generation.wrapping_mul(31))
        .collect()
}

fn write_raw(dev: &mut SimDevice, part: Partition, bytes: &[u8]) {
    use castellan_hal::NorFlash;
    let ws = dev.flash.write_size();
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().div_ceil(ws) * ws, 0xFF);
    dev.flash.write(part.offset, &padded).unwrap();
}

/// Streams `img` through start / write (odd-sized blocks) / finish.
fn upload(svc: &mut Services<'_>, img: &[u8]) -> Result<(), ServiceError> {
    svc.fwu_start(APP, &[])?;
    let mut offset = 0;
    for block in img.chunks(333) {
        svc.fwu_write(APP, offset, block)?;
        offset += block.len();
    }
    svc.fwu_finish(APP)
}

fn token_app_version(svc: &mut Services<'_>) -> String {
    let nonce = [1u8; 32];
    let mut t = vec![0u8; svc.attest_token_size(32).unwrap()];
    svc.attest_token(&nonce, -1, &mut t).unwrap();
    let claims = castellan_attest::decode_token(&t).unwrap().claims;
    claims.software_components[1].version.clone().unwrap()
}

#[test]
fn update_installs_for_trial_and_stays_once_accepted() {
    for &ws in DEVICE.write_sizes {
        let mut rig = Rig::new(ws);
        let v2 = rig.signed(2, Version::new(2, 0, 0, 0));
        let report = rig.boot();
        let mut svc = rig.services(&report);
        let info = assert_app(&svc, FwuState::Ready, Version::new(1, 0, 0, 0));
        assert!(
            (7 * SECTOR..8 * SECTOR).contains(&info.max_size),
            "{}",
            info.max_size
        );
        svc.its_set(1, b"sealed by v1", castellan_services::ItsFlags::NONE)
            .unwrap();
        let iak_v1 = svc.attestation_public_key();
        upload(&mut svc, &v2).unwrap();
        let info = svc.fwu_query(APP).unwrap();
        assert_eq!(info.state, FwuState::Candidate);
        assert_eq!(info.candidate_version, Some(Version::new(2, 0, 0, 0)));
        let status = svc.fwu_install().unwrap();
        assert_eq!(status, InstallStatus::RebootRequired);
        assert_eq!(status.psa_status(), 1, "PSA_SUCCESS_REBOOT");
        assert_eq!(svc.fwu_query(APP).unwrap().state, FwuState::Staged);
        svc.fwu_request_reboot().unwrap();
        assert!(svc.fwu_reboot_requested());
        drop(svc);

        let report = rig.boot();
        assert_installed(&report, InstallKind::Test);
        let mut svc = rig.services(&report);
        assert_app(&svc, FwuState::Trial, Version::new(2, 0, 0, 0));
        assert_eq!(
            token_app_version(&mut svc),
            "2.0.0+0",
            "the token measures the trial image"
        );
        // The IAK (from CDI_Seal) is the one registered for v1: the registry's key verifies
        // the token of the updated device, and the token reports the new measurement.
        assert_eq!(svc.attestation_public_key(), iak_v1);
        let nonce = [9u8; 32];
        let mut t = vec![0u8; svc.attest_token_size(32).unwrap()];
        let n = svc.attest_token(&nonce, -1, &mut t).unwrap();
        let key = castellan_attest::VerificationKey::p256_from_sec1(&iak_v1).unwrap();
        let claims = castellan_attest::verify_token(&t[..n], &key).unwrap();
        assert_eq!(
            claims.software_components[1].version.as_deref(),
            Some("2.0.0+0")
        );
        let mut out = [0u8; 32];
        let n = svc.its_get(1, 0, &mut out).unwrap();
        assert_eq!(&out[..n], b"sealed by v1");
        svc.fwu_accept().unwrap();
        assert_eq!(svc.fwu_query(APP).unwrap().state, FwuState::Updated);
        drop(svc);

        let report = rig.boot();
        assert!(report.confirmed);
        let mut svc = rig.services(&report);
        assert_app(&svc, FwuState::Ready, Version::new(2, 0, 0, 0));
        assert_eq!(token_app_version(&mut svc), "2.0.0+0");
    }
}

#[test]
fn trial_image_not_accepted_reverts_at_the_next_reset() {
    let mut rig = Rig::new(4);
    rig.stage_v2();
    let report = rig.boot();
    let svc = rig.services(&report);
    assert_eq!(svc.fwu_query(APP).unwrap().state, FwuState::Trial);
    drop(svc); // reset without accept
    let report = rig.boot();
    assert_installed(&report, InstallKind::Revert);
    let mut svc = rig.services(&report);
    let info = assert_app(&svc, FwuState::Failed, Version::new(1, 0, 0, 0));
    assert_ne!(info.error, 0, "the rollback is reported");
    assert_eq!(token_app_version(&mut svc), "1.0.0+0");
    svc.fwu_clean(APP).unwrap();
    assert_eq!(svc.fwu_query(APP).unwrap().state, FwuState::Ready);
}

#[test]
fn rejected_trial_reverts_and_reports_the_clients_error() {
    let mut rig = Rig::new(8);
    rig.stage_v2();
    let report = rig.boot();
    let mut svc = rig.services(&report);
    assert_eq!(svc.fwu_reject(-4242), Ok(InstallStatus::RebootRequired));
    let info = svc.fwu_query(APP).unwrap();
    assert_eq!((info.state, info.error), (FwuState::Rejected, -4242));
    assert_eq!(
        status_of(&svc.fwu_accept()),
        psa::ERROR_BAD_STATE,
        "no accept after reject"
    );
    drop(svc);
    let report = rig.boot();
    let svc = rig.services(&report);
    assert_app(&svc, FwuState::Failed, Version::new(1, 0, 0, 0));
}

#[test]
fn staged_install_can_be_withdrawn_before_the_reboot() {
    let mut rig = Rig::new(4);
    let v2 = rig.signed(2, Version::new(2, 0, 0, 0));
    let report = rig.boot();
    let mut svc = rig.services(&report);
    upload(&mut svc, &v2).unwrap();
    svc.fwu_install().unwrap();
    assert_eq!(svc.fwu_reject(0), Ok(InstallStatus::Done));
    assert_eq!(svc.fwu_query(APP).unwrap().state, FwuState::Failed);
    drop(svc);
    let report = rig.boot();
    assert_eq!(report.upgrade, UpgradeAction::None);
    let svc = rig.services(&report);
    assert_eq!(
        svc.fwu_query(APP).unwrap().version,
        Version::new(1, 0, 0, 0)
    );
}

#[test]
fn attack_candidates_that_do_not_verify_are_refused_before_install() {
    let mut rig = Rig::new(4);
    let report = rig.boot();
    let layout = rig.layout;
    let wrong_key = image(&key(9), &app_payload(2), Version::new(2, 0, 0, 0), 4);
    let mut tampered = rig.signed(2, Version::new(2, 0, 0, 0));
    tampered[100] ^= 0x01;
    let downgrade = rig.signed(0, Version::new(0, 9, 0, 0));
    let cases: [(&[u8], i32); 3] = [
        (&wrong_key, psa::ERROR_INVALID_SIGNATURE),
        (&tampered, psa::ERROR_INVALID_SIGNATURE),
        (&downgrade, psa::ERROR_NOT_PERMITTED),
    ];
    let mut svc = rig.services(&report);
    for (img, status) in cases {
        let e = upload(&mut svc, img).unwrap_err();
        assert_eq!(e.psa_status(), status, "{e}");
        let info = svc.fwu_query(APP).unwrap();
        assert_eq!((info.state, info.error), (FwuState::Failed, status));
        assert_eq!(status_of(&svc.fwu_install()), psa::ERROR_BAD_STATE);
        svc.fwu_clean(APP).unwrap();
    }
    // Swapped after finish, before install: install verifies again and refuses.
    let good = rig_signed(&svc, 3);
    upload(&mut svc, &good).unwrap();
    {
        let flash = &mut svc.platform_mut().flash;
        let at = (layout.secondary.offset + 200) as usize;
        flash.contents_mut()[at] ^= 0x80;
    }
    let e = svc.fwu_install().unwrap_err();
    assert_eq!(e.psa_status(), psa::ERROR_INVALID_SIGNATURE);
    assert_eq!(svc.fwu_query(APP).unwrap().state, FwuState::Failed);
    drop(svc);
    // Nothing was requested: the bootloader has nothing to do.
    let report = rig.boot();
    assert_eq!(report.upgrade, UpgradeAction::None);
}

/// A good v3 image, signed with the rig's key (the rig is borrowed by the services).
fn rig_signed(svc: &Services<'_>, generation: u8) -> Vec<u8> {
    let ws = svc.platform().flash.write_size() as u32;
    image(
        &key(7),
        &app_payload(generation),
        Version::new(3, 0, 0, 0),
        ws,
    )
}

#[test]
fn state_machine_misuse_is_refused_with_psa_codes() {
    let mut rig = Rig::new(4);
    let v2 = rig.signed(2, Version::new(2, 0, 0, 0));
    let report = rig.boot();
    let mut svc = rig.services(&report);
    let bad_state = psa::ERROR_BAD_STATE;
    assert_eq!(status_of(&svc.fwu_write(APP, 0, &v2[..10])), bad_state);
    assert_eq!(status_of(&svc.fwu_finish(APP)), bad_state);
    assert_eq!(status_of(&svc.fwu_install()), bad_state);
    assert_eq!(status_of(&svc.fwu_accept()), bad_state);
    assert_eq!(status_of(&svc.fwu_reject(0)), bad_state);
    assert_eq!(status_of(&svc.fwu_clean(APP)), bad_state);
    assert_eq!(status_of(&svc.fwu_cancel(APP)), bad_state);
    assert_eq!(status_of(&svc.fwu_query(1)), psa::ERROR_DOES_NOT_EXIST);
    assert_eq!(status_of(&svc.fwu_start(1, &[])), psa::ERROR_DOES_NOT_EXIST);
    assert_eq!(
        status_of(&svc.fwu_start(APP, b"manifest")),
        psa::ERROR_NOT_SUPPORTED
    );
    svc.fwu_start(APP, &[]).unwrap();
    assert_eq!(status_of(&svc.fwu_start(APP, &[])), bad_state);
    svc.fwu_write(APP, 0, &v2[..100]).unwrap();
    assert_eq!(
        status_of(&svc.fwu_write(APP, 50, &v2[50..60])),
        psa::ERROR_INVALID_ARGUMENT
    );
    assert_eq!(
        status_of(&svc.fwu_write(APP, 100, &[])),
        psa::ERROR_INVALID_ARGUMENT
    );
    let max = svc.fwu_query(APP).unwrap().max_size as usize;
    assert_eq!(
        status_of(&svc.fwu_write(APP, 100, &vec![0u8; max])),
        psa::ERROR_INVALID_ARGUMENT
    );
    svc.fwu_cancel(APP).unwrap();
    assert_eq!(svc.fwu_query(APP).unwrap().state, FwuState::Failed);
    svc.fwu_clean(APP).unwrap();
    // A started upload does not survive a reset (reboot = cancel + clean).
    svc.fwu_start(APP, &[]).unwrap();
    svc.fwu_write(APP, 0, &v2[..1000]).unwrap();
    drop(svc);
    let report = rig.boot();
    assert_eq!(report.upgrade, UpgradeAction::None);
    let svc = rig.services(&report);
    assert_eq!(svc.fwu_query(APP).unwrap().state, FwuState::Ready);
}
