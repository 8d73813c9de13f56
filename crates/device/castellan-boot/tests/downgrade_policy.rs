//! The downgrade policy (`BootConfig::downgrade`): by default a lower version is refused; with
//! `DowngradePolicy::SecurityCounter` (MCUboot's hardware rollback protection, as TF-M ships
//! it) a fleet may roll back to an older release as long as its security counter is not below
//! the OTP counter, and blocks vulnerable releases by raising the counter.

mod common;

use castellan_boot::{DowngradePolicy, UpgradeAction, UpgradeRefusal};
use castellan_image::Version;
use common::*;

/// Provisioned with A (v1.0.0, counter 1), booted, under `policy`.
fn device(policy: DowngradePolicy) -> Dev {
    let mut d = Dev::installed(geometry(4, 0xFF), &image_a());
    d.config.downgrade = policy;
    d.boot().unwrap();
    d
}

#[test]
fn the_default_policy_is_the_version() {
    assert_eq!(
        castellan_boot::BootConfig::default().downgrade,
        DowngradePolicy::Version
    );
    let mut d = device(DowngradePolicy::Version);
    let older = image(&root_key(), Version::new(0, 9, 0, 0), 1, 1000, 0x09);
    d.stage(&older, true);
    let r = d.boot().unwrap();
    assert!(
        matches!(
            r.upgrade,
            UpgradeAction::Refused(UpgradeRefusal::Downgrade { .. })
        ),
        "{:?}",
        r.upgrade
    );
    assert_eq!(r.application.digest.as_bytes(), digest_of(&image_a()));
}

#[test]
fn security_counter_policy_installs_an_older_version_with_the_same_counter() {
    let mut d = device(DowngradePolicy::SecurityCounter);
    let older = image(&root_key(), Version::new(0, 9, 0, 0), 1, 1000, 0x09);
    d.stage(&older, false);
    let r = d.boot().unwrap();
    assert!(
        matches!(r.upgrade, UpgradeAction::Installed { .. }),
        "{:?}",
        r.upgrade
    );
    assert_eq!(r.application.digest.as_bytes(), digest_of(&older));
    assert_eq!(r.application.version, Version::new(0, 9, 0, 0));
    // Confirmed, it stays; the counter does not move.
    d.confirm();
    let r = d.boot().unwrap();
    assert_eq!(r.application.digest.as_bytes(), digest_of(&older));
    assert_eq!(d.counter(), 1);
}

#[test]
fn attack_rollback_below_the_counter_is_refused_under_the_security_counter_policy() {
    // B (v1.1.0, counter 2) fixes a vulnerability of A: once confirmed, A cannot come back,
    // whatever the policy, even with a newer manifest behind it.
    let mut d = device(DowngradePolicy::SecurityCounter);
    d.stage(&image_b(), true);
    d.boot().unwrap();
    assert_eq!(d.counter(), 2);
    d.stage(&image_a(), true);
    let r = d.boot().unwrap();
    assert_eq!(
        r.upgrade,
        UpgradeAction::Refused(UpgradeRefusal::Rollback {
            candidate: 1,
            stored: 2
        })
    );
    assert_eq!(r.application.digest.as_bytes(), digest_of(&image_b()));
}
