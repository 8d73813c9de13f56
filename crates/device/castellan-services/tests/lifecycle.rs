//! PSA lifecycle: one-way transitions in OTP, and decommissioning as a verified crypto-erase
//! (the raw flash is read afterwards) that a final token still reports.

mod common;

use castellan_attest::{Lifecycle, ReferenceValues, VerificationKey, appraise};
use castellan_services::{
    Algorithm, ItsFlags, KeyAttributes, KeyType, KeyUsage, LIFECYCLE_WORD, ServiceError, psa,
    status_of,
};
use common::*;

#[test]
fn lifecycle_moves_one_way_and_lives_in_otp() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    assert_eq!(svc.lifecycle(), Ok(Lifecycle::AssemblyAndTest));
    let skip = svc.lifecycle_transition(Lifecycle::Secured);
    assert_eq!(status_of(&skip), psa::ERROR_BAD_STATE);
    svc.lifecycle_transition(Lifecycle::PsaRotProvisioning)
        .unwrap();
    svc.lifecycle_transition(Lifecycle::Secured).unwrap();
    assert_eq!(svc.lifecycle(), Ok(Lifecycle::Secured));
    for back in [
        Lifecycle::AssemblyAndTest,
        Lifecycle::PsaRotProvisioning,
        Lifecycle::Secured,
    ] {
        assert_eq!(
            status_of(&svc.lifecycle_transition(back)),
            psa::ERROR_BAD_STATE
        );
    }
    assert_eq!(
        status_of(&svc.lifecycle_transition(Lifecycle::NonPsaRotDebug)),
        psa::ERROR_NOT_SUPPORTED
    );
    // Formatting storage is a factory operation only.
    assert_eq!(status_of(&svc.its_format()), psa::ERROR_BAD_STATE);
    drop(svc);
    // The state is the OTP thermometer word castellan-boot reads.
    assert_eq!(dev.otp.contents()[LIFECYCLE_WORD], 0b11);
    dev.power_cycle();
    let svc = boot(&mut dev);
    assert_eq!(svc.lifecycle(), Ok(Lifecycle::Secured));
}

#[test]
fn its_format_at_the_factory_starts_over() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    svc.its_set(1, b"test data", ItsFlags::WRITE_ONCE).unwrap();
    svc.its_format().unwrap();
    assert_eq!(svc.its_get_info(1), Err(ServiceError::DoesNotExist));
    svc.its_set(1, b"production data", ItsFlags::WRITE_ONCE)
        .unwrap();
}

const SCALAR: [u8; 32] = [
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
    0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f,
];
const AES_KEY: [u8; 16] = *b"volatile AES key";
const SECRET_ASSET: &[u8] = b"wifi-password=correct horse battery staple";
const CLEAR_ASSET: &[u8] = b"-----BEGIN CERTIFICATE----- device cert";

#[test]
fn decommission_crypto_erases_every_key_and_asset() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    svc.lifecycle_transition(Lifecycle::PsaRotProvisioning)
        .unwrap();
    let identity_public = svc.provision_identity_key().unwrap();
    svc.lifecycle_transition(Lifecycle::Secured).unwrap();
    svc.its_set(1, SECRET_ASSET, ItsFlags::NONE).unwrap();
    svc.its_set(2, CLEAR_ASSET, ItsFlags::NO_CONFIDENTIALITY)
        .unwrap();
    svc.its_set(3, b"serial", ItsFlags::WRITE_ONCE).unwrap();
    let persistent = KeyAttributes::new(KeyType::ECC_KEY_PAIR_SECP_R1)
        .with_usage(KeyUsage::SIGN_HASH)
        .with_algorithm(Algorithm::ECDSA_SHA_256)
        .persistent(0x77);
    svc.import_key(&persistent, &SCALAR).unwrap();
    let volatile = svc
        .import_key(
            &KeyAttributes::new(KeyType::AES)
                .with_usage(KeyUsage::ENCRYPT)
                .with_algorithm(Algorithm::GCM),
            &AES_KEY,
        )
        .unwrap();
    let iak_public = svc.attestation_public_key();
    // Before: the storage holds the clear asset and a key record.
    assert!(contains(dev_flash(&svc), CLEAR_ASSET));
    let key_area_before =
        dev_flash(&svc)[key_area().offset as usize..][..key_area().size as usize].to_vec();
    assert!(key_area_before.iter().any(|b| *b != 0xFF));

    svc.decommission().unwrap();
    assert_eq!(svc.lifecycle(), Ok(Lifecycle::Decommissioned));

    // Every service that touches keys or assets now refuses.
    let mut out = [0u8; 128];
    let refused = [
        status_of(&svc.its_get(1, 0, &mut out)),
        status_of(&svc.its_set(4, b"x", ItsFlags::NONE)),
        status_of(&svc.export_public_key(castellan_services::KEY_ID_DEVICE_IDENTITY, &mut out)),
        status_of(&svc.sign_hash(0x77, Algorithm::ECDSA_SHA_256, &[0; 32], &mut out)),
        status_of(&svc.aead_encrypt(volatile, Algorithm::GCM, &[0; 12], b"", b"x", &mut out)),
        status_of(&svc.generate_key(&persistent)),
        status_of(&svc.lifecycle_transition(Lifecycle::Decommissioned)),
    ];
    assert_eq!(refused, [psa::ERROR_BAD_STATE; 7]);

    // A final token still verifies and reports the decommissioned state.
    let nonce = [0xDEu8; 32];
    let mut token = vec![0u8; svc.attest_token_size(32).unwrap()];
    svc.attest_token(&nonce, -1, &mut token).unwrap();
    drop(svc);
    let refs = ReferenceValues {
        accepted_lifecycles: vec![Lifecycle::Decommissioned],
        allow_unlisted_components: true,
        ..ReferenceValues::default()
    };
    let key = VerificationKey::p256_from_sec1(&iak_public).unwrap();
    let claims = appraise(&token, &key, &nonce, &refs).unwrap();
    assert_eq!(claims.lifecycle, 0x6000);

    // The raw flash: key area and storage banks erased; no asset, no key material anywhere.
    let flash = dev.flash.contents();
    let area =
        |p: castellan_hal::Partition| &flash[p.offset as usize..(p.offset + p.size) as usize];
    assert!(
        area(key_area()).iter().all(|b| *b == 0xFF),
        "key area not erased"
    );
    assert!(
        area(its_area()).iter().all(|b| *b == 0xFF),
        "storage not erased"
    );
    for secret in [
        SECRET_ASSET,
        CLEAR_ASSET,
        &SCALAR[..],
        &AES_KEY[..],
        &key_area_before[8..60],
    ] {
        assert!(!contains(flash, secret));
    }
    assert!(!contains(flash, &identity_public[1..33]));
    assert_eq!(dev.otp.contents()[LIFECYCLE_WORD], 0b111);

    // After a reset (were the ROM to boot it), storage stays closed and tokens still work.
    dev.power_cycle();
    let mut svc = boot(&mut dev);
    assert_eq!(status_of(&svc.its_get_info(1)), psa::ERROR_BAD_STATE);
    assert_eq!(svc.lifecycle(), Ok(Lifecycle::Decommissioned));
    let n = svc.attest_token(&nonce, -1, &mut token).unwrap();
    let claims = appraise(&token[..n], &key, &nonce, &refs).unwrap();
    assert_eq!(claims.lifecycle_state(), Some(Lifecycle::Decommissioned));
}

fn dev_flash<'a>(svc: &'a Services<'_>) -> &'a [u8] {
    svc.platform().flash.contents()
}

#[test]
fn decommission_cut_by_a_power_loss_never_leaves_data_behind_an_unbootable_device() {
    use castellan_sim::{FaultPhase, FaultPlan};
    // Count the operations of a decommission, then cut at each one.
    let prepare = || {
        let mut dev = device(4, 0xFF);
        let mut svc = boot(&mut dev);
        svc.its_set(1, SECRET_ASSET, ItsFlags::NO_CONFIDENTIALITY)
            .unwrap();
        drop(svc);
        dev.power_cycle();
        dev
    };
    let mut dev = prepare();
    let mut svc = boot(&mut dev);
    svc.platform().flash.rail().reset_ops();
    svc.decommission().unwrap();
    let ops = svc.platform().flash.rail().ops();
    drop(svc);
    for at in 0..ops {
        for phase in FaultPhase::ALL {
            let mut dev = prepare();
            let mut svc = boot(&mut dev);
            svc.platform().flash.rail().arm(FaultPlan::new(at, phase));
            assert!(svc.decommission().unwrap_err().is_power_loss());
            drop(svc);
            let otp = dev.otp.contents()[LIFECYCLE_WORD];
            let decommissioned = otp >= 0b100;
            let key_area_erased = dev.flash.contents()[..key_area().size as usize]
                .iter()
                .all(|b| *b == 0xFF);
            // Once the fuse says decommissioned, the storage key is already gone.
            assert!(!decommissioned || key_area_erased, "cut {at} {phase:?}");
            if decommissioned {
                assert!(!contains(dev.flash.contents(), SECRET_ASSET));
            }
        }
    }
}
