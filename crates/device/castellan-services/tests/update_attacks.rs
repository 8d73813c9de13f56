//! Attacks on over-the-air updates at the device (RFC 9124 threats), each named after its
//! attack. Every test asserts the refusal and its reason, and that the image running before
//! (A, or B once B was installed) is still the one that boots, confirmed.

mod update_rig;

use castellan_hal::NorFlash;
use castellan_image::Version;
use castellan_services::{ServiceError, UpdateRefusal, UpdateState};
use castellan_suit::{Condition, SuitError};
use update_rig::*;

fn refusal(r: Result<impl std::fmt::Debug, ServiceError>) -> UpdateRefusal {
    match r {
        Err(ServiceError::UpdateRefused(why)) => why,
        other => panic!("not refused by the update client: {other:?}"),
    }
}

#[test]
fn attack_rollback_older_sequence_refused() {
    let mut rig = Rig::new();
    let b = rig.image_b();
    rig.install(5, &b);
    // A validly signed manifest with an older sequence number (for a newer-looking image).
    let c = rig.image(b"application C", Version::new(1, 2, 0, 0), 1);
    let old = rig.release(4, &c);
    let (_, mut svc) = rig.power_on();
    let why = refusal(svc.update_begin(&old, None));
    assert_eq!(
        why,
        UpdateRefusal::NotNewer {
            offered: 4,
            installed: 5
        }
    );
    assert_eq!(
        why.to_string(),
        "manifest sequence 4 is not newer than the installed 5"
    );
    assert_eq!(svc.update_status().unwrap().state, UpdateState::Idle);
    drop(svc);
    rig.assert_runs(&b, "B");
}

#[test]
fn attack_freeze_expired_release_refused() {
    let mut rig = Rig::new();
    let b = rig.image_b();
    let env = rig.release_with(1, &b, |m| m.expires(1_700_000_000));
    let (_, mut svc) = rig.power_on();
    let why = refusal(svc.update_begin(&env, Some(1_800_000_000)));
    assert_eq!(
        why,
        UpdateRefusal::Expired {
            expires: 1_700_000_000,
            now: 1_800_000_000
        }
    );
    assert!(why.to_string().contains("expired"), "{why}");
    // Refused before a byte is downloaded: there is nothing to write into.
    assert_eq!(
        refusal(svc.update_write(0, &b[..64])),
        UpdateRefusal::NothingInProgress
    );
    drop(svc);
    let a = rig.app_a.clone();
    rig.assert_runs(&a, "A");
}

#[test]
fn attack_wrong_device_class_refused() {
    let mut rig = Rig::new();
    let b = rig.image_b();
    let other = castellan_suit::ids::class_id(&rig.ids.vendor_id, "sensor-v2");
    let env = rig.release_with(1, &b, |_| {
        castellan_suit::builder::ManifestBuilder::new(1, &rig.ids.vendor_id, &other).image(
            castellan_suit::builder::ImageSpec::new(&castellan_services::update::COMPONENT, &b),
        )
    });
    let (_, mut svc) = rig.power_on();
    let why = refusal(svc.update_begin(&env, None));
    assert_eq!(
        why,
        UpdateRefusal::Manifest(SuitError::ConditionFailed {
            condition: Condition::ClassIdentifier,
            component: 0
        })
    );
    assert_eq!(why.to_string(), "the manifest is for another device class");
    drop(svc);
    let a = rig.app_a.clone();
    rig.assert_runs(&a, "A");
}

#[test]
fn attack_tampered_payload_refused() {
    let mut rig = Rig::new();
    let b = rig.image_b();
    let env = rig.release(1, &b);
    let mut tampered = b.clone();
    tampered[1500] ^= 0x01;
    let (_, mut svc) = rig.power_on();
    let why = refusal(download(&mut svc, &env, &tampered, None));
    assert_eq!(
        why,
        UpdateRefusal::Manifest(SuitError::DigestMismatch { component: 0 })
    );
    assert!(
        why.to_string().contains("does not match its digest"),
        "{why}"
    );
    // The download is dropped: nothing is installed, nothing pending.
    assert_eq!(svc.update_status().unwrap().state, UpdateState::Idle);
    drop(svc);
    let a = rig.app_a.clone();
    rig.assert_runs(&a, "A");
}

#[test]
fn attack_tampered_manifest_refused() {
    let mut rig = Rig::new();
    let b = rig.image_b();
    let mut env = rig.release(1, &b);
    // Raise the sequence number inside the signed manifest (1 → 9, one CBOR byte).
    let at = env
        .windows(2)
        .position(|w| w == [0x02, 0x01])
        .expect("sequence number in the manifest");
    env[at + 1] = 0x09;
    // Signed by another key: not authenticated.
    let genuine = rig.release_key.clone();
    rig.release_key = p256::ecdsa::SigningKey::from_slice(&[0x33; 32]).unwrap();
    let forged = rig.release(1, &b);
    rig.release_key = genuine;
    let (_, mut svc) = rig.power_on();
    let why = refusal(svc.update_begin(&env, None));
    assert_eq!(
        why,
        UpdateRefusal::Manifest(SuitError::ManifestDigestMismatch)
    );
    assert!(why.to_string().contains("modified after signing"), "{why}");
    let why = refusal(svc.update_begin(&forged, None));
    assert_eq!(why, UpdateRefusal::Manifest(SuitError::Unauthenticated));
    drop(svc);
    let a = rig.app_a.clone();
    rig.assert_runs(&a, "A");
}

#[test]
fn attack_payload_substituted_after_verification_refused() {
    let mut rig = Rig::new();
    let b = rig.image_b();
    let env = rig.release(1, &b);
    let (_, mut svc) = rig.power_on();
    download(&mut svc, &env, &b, None).unwrap();
    assert_eq!(svc.update_status().unwrap().state, UpdateState::Staged);
    drop(svc);
    // After the checks, a byte of the staged payload changes (an attacker who can write the
    // secondary slot): erase its sector and program it back with one bit flipped.
    let sec = rig.layout.secondary;
    let at = (sec.offset + 1500) as usize;
    let sector = (at / SECTOR as usize) * SECTOR as usize;
    let mut content = rig.dev.flash.contents()[sector..sector + SECTOR as usize].to_vec();
    content[at - sector] ^= 0x01;
    rig.dev.power_cycle();
    rig.dev
        .flash
        .erase(sector as u32, sector as u32 + SECTOR)
        .unwrap();
    rig.dev.flash.write(sector as u32, &content).unwrap();
    // The bootloader verifies again and refuses; A keeps running.
    let (report, mut svc) = rig.power_on();
    assert!(
        matches!(
            report.upgrade,
            castellan_boot::UpgradeAction::Refused(castellan_boot::UpgradeRefusal::Invalid(
                castellan_image::ImageError::HashMismatch
            ))
        ),
        "{:?}",
        report.upgrade
    );
    let status = svc.update_status().unwrap();
    assert_eq!(
        status.state,
        UpdateState::Failed {
            error: castellan_services::psa::ERROR_INVALID_SIGNATURE
        }
    );
    assert_eq!(status.installed_sequence, 0);
    drop(svc);
    let a = rig.app_a.clone();
    rig.assert_runs(&a, "A");
}

#[test]
fn attack_endless_data_refused() {
    let mut rig = Rig::new();
    let b = rig.image_b();
    let env = rig.release(1, &b);
    let (_, mut svc) = rig.power_on();
    svc.update_begin(&env, None).unwrap();
    send(&mut svc, &b[..1000], 0, 1000).unwrap();
    // A block that runs past the image size: refused whole, nothing written.
    let mut long = b[1000..].to_vec();
    long.extend_from_slice(&[0xEE; 64]);
    let why = refusal(svc.update_write(1000, &long));
    assert_eq!(
        why,
        UpdateRefusal::EndlessData {
            image_size: b.len() as u32,
            end: (b.len() + 64) as u64
        }
    );
    assert!(why.to_string().contains("endless data"), "{why}");
    // The rest of the image, then one more byte.
    send(&mut svc, &b, 1000, 4096).unwrap();
    let why = refusal(svc.update_write(b.len() as u64, &[0xEE]));
    assert!(matches!(why, UpdateRefusal::EndlessData { .. }), "{why:?}");
    drop(svc);
    let a = rig.app_a.clone();
    rig.assert_runs(&a, "A");
}

#[test]
fn attack_replayed_offer_of_earlier_campaign_refused() {
    let mut rig = Rig::new();
    let b = rig.image_b();
    let first = rig.install(1, &b);
    let c = rig.image(b"application C", Version::new(1, 2, 0, 0), 1);
    let current = rig.install(2, &c);
    let (_, mut svc) = rig.power_on();
    // The offer of campaign 1 replayed, and the current campaign's offer replayed.
    let why = refusal(svc.update_begin(&first, None));
    assert_eq!(
        why,
        UpdateRefusal::NotNewer {
            offered: 1,
            installed: 2
        }
    );
    assert_eq!(
        refusal(svc.update_begin(&current, None)),
        UpdateRefusal::NotNewer {
            offered: 2,
            installed: 2
        }
    );
    drop(svc);
    rig.assert_runs(&c, "C");
}
