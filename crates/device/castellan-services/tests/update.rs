//! The SUIT update client end to end on a simulated device (ROM stage, bootloader with swap,
//! secure services): a release is checked before its download, streamed in blocks, processed
//! by the SUIT processor over the staged slot, verified and installed for trial, accepted, and
//! its sequence number stored; downloads resume after a reboot; a trial image that is not
//! accepted is reverted and can be retried; the trust anchor is write-once and private.

mod update_rig;

use castellan_boot::{DowngradePolicy, UpgradeAction};
use castellan_image::Version;
use castellan_services::update::ITS_UID_TRUST_ANCHOR;
use castellan_services::{
    FwuState, InstallStatus, ServiceError, UpdateRefusal, UpdateState, fwu::COMPONENT_APPLICATION,
};
use update_rig::*;

#[test]
fn a_release_is_checked_downloaded_installed_accepted_and_its_sequence_stored() {
    for &ws in DEVICE.write_sizes {
        let mut rig = Rig::with_write_size(ws);
        let b = rig.image_b();
        let env = rig.release_with(1, &b, |m| m.expires(2_000_000_000));
        let (_, mut svc) = rig.power_on();
        assert_eq!(svc.update_status().unwrap().installed_sequence, 0);
        let plan = svc.update_begin(&env, Some(1_800_000_000)).unwrap();
        assert_eq!(plan.sequence, 1);
        assert_eq!(plan.image_size as usize, b.len());
        assert_eq!(plan.resume_offset, 0);
        assert_eq!(plan.expires, Some(2_000_000_000));
        assert_eq!(
            plan.digest.as_slice(),
            <sha2::Sha256 as sha2::Digest>::digest(&b).as_slice()
        );
        assert_eq!(send(&mut svc, &b, 0, 333).unwrap() as usize, b.len());
        assert_eq!(
            svc.update_status().unwrap().state,
            UpdateState::Downloading {
                received: b.len() as u32,
                image_size: b.len() as u32
            }
        );
        assert_eq!(svc.update_finish().unwrap(), InstallStatus::RebootRequired);
        let status = svc.update_status().unwrap();
        assert_eq!(
            (status.state, status.sequence),
            (UpdateState::Staged, Some(1))
        );
        drop(svc);

        // The bootloader swaps B in for a trial run; the client sees it.
        let env2 = rig.release(2, &b);
        let (report, mut svc) = rig.power_on();
        assert!(!report.confirmed);
        assert_eq!(svc.update_status().unwrap().state, UpdateState::Trial);
        // Another offer waits for the trial's outcome.
        assert_eq!(
            svc.update_begin(&env2, None),
            Err(ServiceError::UpdateRefused(
                UpdateRefusal::InstallInProgress
            ))
        );
        svc.fwu_accept().unwrap();
        let status = svc.update_status().unwrap();
        assert_eq!(
            (status.state, status.sequence, status.installed_sequence),
            (UpdateState::Idle, None, 1)
        );
        drop(svc);
        rig.assert_runs(&b, "B");
    }
}

#[test]
fn a_download_resumes_after_a_reboot_from_the_stored_sector() {
    let mut rig = Rig::new();
    let (b, env) = rig.release_b();
    let (_, mut svc) = rig.power_on();
    svc.update_begin(&env, None).unwrap();
    // 2500 bytes: two sectors are complete, the progress stands at 2048.
    send(&mut svc, &b[..2500], 0, 500).unwrap();
    drop(svc); // power cut

    let (_, mut svc) = rig.power_on();
    assert_eq!(
        svc.fwu_query(COMPONENT_APPLICATION).unwrap().state,
        FwuState::Ready
    );
    assert_eq!(
        svc.update_status().unwrap().state,
        UpdateState::Downloading {
            received: 2 * SECTOR,
            image_size: b.len() as u32
        }
    );
    let plan = svc.update_begin(&env, None).unwrap();
    assert_eq!(plan.resume_offset, 2 * SECTOR);
    // A block that does not start where the download stands is refused.
    assert_eq!(
        svc.update_write(0, &b[..10]),
        Err(ServiceError::UpdateRefused(UpdateRefusal::OutOfOrder {
            expected: 2 * SECTOR,
            offset: 0
        }))
    );
    send(&mut svc, &b, plan.resume_offset, 700).unwrap();
    svc.update_finish().unwrap();
    drop(svc);
    let (_, mut svc) = rig.power_on();
    svc.fwu_accept().unwrap();
    assert_eq!(svc.update_installed_sequence().unwrap(), 1);
    drop(svc);
    rig.assert_runs(&b, "B");
}

#[test]
fn the_same_offer_again_in_the_same_session_continues_where_the_download_stands() {
    let mut rig = Rig::new();
    let (b, env) = rig.release_b();
    let (_, mut svc) = rig.power_on();
    svc.update_begin(&env, None).unwrap();
    send(&mut svc, &b[..1234], 0, 617).unwrap();
    // The transport reconnected and the offer came again.
    assert_eq!(svc.update_begin(&env, None).unwrap().resume_offset, 1234);
    send(&mut svc, &b, 1234, 1000).unwrap();
    svc.update_finish().unwrap();
    assert_eq!(svc.update_status().unwrap().state, UpdateState::Staged);
}

#[test]
fn a_trial_image_that_is_not_accepted_is_reverted_and_the_update_can_be_retried() {
    let mut rig = Rig::new();
    let (b, env) = rig.release_b();
    let (_, mut svc) = rig.power_on();
    download(&mut svc, &env, &b, None).unwrap();
    drop(svc);
    let (_, mut svc) = rig.power_on();
    assert_eq!(svc.update_status().unwrap().state, UpdateState::Trial);
    drop(svc); // the self-test failed: no accept, reboot
    let (report, mut svc) = rig.power_on();
    assert!(matches!(report.upgrade, UpgradeAction::Installed { .. }));
    let status = svc.update_status().unwrap();
    assert_eq!(
        (status.state, status.installed_sequence),
        (UpdateState::Reverted, 0)
    );
    // The outcome survives another reboot until the update is cancelled or replaced.
    drop(svc);
    let (_, mut svc) = rig.power_on();
    assert_eq!(svc.update_status().unwrap().state, UpdateState::Reverted);
    svc.update_cancel().unwrap();
    assert_eq!(svc.update_status().unwrap().state, UpdateState::Idle);
    drop(svc);
    rig.assert_runs(&rig.app_a.clone(), "A");
    // The same release again (a power cut had stopped the self-test): it installs.
    let (_, mut svc) = rig.power_on();
    download(&mut svc, &env, &b, None).unwrap();
    drop(svc);
    let (_, mut svc) = rig.power_on();
    svc.fwu_accept().unwrap();
    assert_eq!(svc.update_installed_sequence().unwrap(), 1);
}

#[test]
fn cancel_abandons_a_download_and_withdraws_a_staged_install() {
    let mut rig = Rig::new();
    let (b, env) = rig.release_b();
    let (_, mut svc) = rig.power_on();
    svc.update_begin(&env, None).unwrap();
    send(&mut svc, &b[..1000], 0, 500).unwrap();
    svc.update_cancel().unwrap();
    assert_eq!(svc.update_status().unwrap().state, UpdateState::Idle);
    assert_eq!(
        svc.update_write(1000, &b[1000..1100]),
        Err(ServiceError::UpdateRefused(
            UpdateRefusal::NothingInProgress
        ))
    );
    download(&mut svc, &env, &b, None).unwrap();
    svc.update_cancel().unwrap();
    drop(svc);
    rig.assert_runs(&rig.app_a.clone(), "A");
}

#[test]
fn finish_before_the_whole_image_is_refused() {
    let mut rig = Rig::new();
    let (b, env) = rig.release_b();
    let (_, mut svc) = rig.power_on();
    svc.update_begin(&env, None).unwrap();
    send(&mut svc, &b[..100], 0, 100).unwrap();
    assert_eq!(
        svc.update_finish(),
        Err(ServiceError::UpdateRefused(UpdateRefusal::Incomplete {
            received: 100,
            image_size: b.len() as u32
        }))
    );
}

#[test]
fn the_trust_anchor_is_write_once_private_and_required() {
    let mut rig = Rig::new();
    let anchor = rig.release_key.verifying_key().to_sec1_point(false);
    let (_, mut svc) = rig.power_on();
    assert_eq!(
        svc.update_trust_anchor().unwrap().unwrap().as_slice(),
        anchor.as_bytes()
    );
    // The same key again is fine (a factory run repeated); another is refused.
    svc.update_provision_trust_anchor(anchor.as_bytes())
        .unwrap();
    let other = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let other = other.verifying_key().to_sec1_point(false);
    assert!(matches!(
        svc.update_provision_trust_anchor(other.as_bytes()),
        Err(ServiceError::NotPermitted(_))
    ));
    assert!(matches!(
        svc.update_provision_trust_anchor(&[4; 65]),
        Err(ServiceError::InvalidArgument(_))
    ));
    // Not reachable through psa_its_* (another namespace): a caller cannot plant its own key.
    let mut buf = [0u8; 65];
    assert_eq!(
        svc.its_get(ITS_UID_TRUST_ANCHOR, 0, &mut buf),
        Err(ServiceError::DoesNotExist)
    );
}

#[test]
fn a_device_without_a_trust_anchor_refuses_every_update() {
    let mut rig = Rig::new_without_anchor();
    let (_, env) = rig.release_b();
    let (_, mut svc) = rig.power_on();
    let err = svc.update_begin(&env, None).unwrap_err();
    assert_eq!(
        err,
        ServiceError::UpdateRefused(UpdateRefusal::NoTrustAnchor)
    );
    assert!(err.to_string().contains("no release trust anchor"), "{err}");
}

#[test]
fn security_counter_policy_lets_a_campaign_roll_back_to_the_previous_release() {
    let mut rig = Rig::new();
    rig.downgrade = DowngradePolicy::SecurityCounter;
    rig.install(1, &rig.image_b());
    // Roll back: the previous image (A, v1.0.0, same counter) under a newer manifest.
    let a_image = rig.app_a.clone();
    let env = rig.release(2, &a_image);
    let (_, mut svc) = rig.power_on();
    download(&mut svc, &env, &a_image, None).unwrap();
    drop(svc);
    let (report, mut svc) = rig.power_on();
    assert_eq!(report.application.version, Version::new(1, 0, 0, 0));
    svc.fwu_accept().unwrap();
    assert_eq!(svc.update_installed_sequence().unwrap(), 2);

    // Under the version policy the same rollback is refused by the update service.
    let mut rig = Rig::new();
    rig.install(1, &rig.image_b());
    let env = rig.release(2, &a_image);
    let (_, mut svc) = rig.power_on();
    let err = download(&mut svc, &env, &a_image, None).unwrap_err();
    assert!(err.to_string().contains("downgrade"), "{err}");
}
