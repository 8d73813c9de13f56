//! The power-loss proof, reduced so that `cargo test` runs it quickly: one flash geometry,
//! every scenario, a cut at every operation in every phase (the full matrix with second cuts is
//! `cargo xtask powerfail`). Plus checks that the checker is not vacuous.

use castellan_boot::{CounterId, raise_security_counter};
use castellan_powerfail::check::recover_and_check;
use castellan_powerfail::fixture::{DEVICE, Images, layout, write_partition};
use castellan_powerfail::{Nesting, Scenario, sweep};
use castellan_sim::FlashConfig;

/// Write size 16 with erased 0x00: the geometry furthest from the usual NOR defaults.
fn geometry() -> FlashConfig {
    DEVICE.flash(16, 0x00)
}

/// Every cut (operation × phase) of one scenario; `cargo test` runs the scenarios in parallel.
fn every_single_cut(s: Scenario) {
    let st = sweep(geometry(), s, &Images::new(), Nesting::Off).unwrap();
    assert_eq!(st.failures, 0, "{s}: {:#?}", st.examples);
    assert_eq!(
        st.points,
        3 * st.ops,
        "{s}: one point per operation and phase"
    );
    assert!(st.ops >= 2, "{s}: the action must write something");
}

#[test]
fn every_cut_of_a_test_upgrade_recovers() {
    every_single_cut(Scenario::Upgrade);
}

#[test]
fn every_cut_of_a_revert_recovers() {
    every_single_cut(Scenario::Revert);
}

#[test]
fn every_cut_of_a_confirmation_recovers() {
    every_single_cut(Scenario::Confirm);
}

#[test]
fn every_cut_of_a_permanent_upgrade_recovers() {
    every_single_cut(Scenario::Permanent);
}

#[test]
fn every_cut_of_an_overwrite_upgrade_recovers() {
    every_single_cut(Scenario::Overwrite);
}

#[test]
fn cuts_during_the_recovery_boot_recover() {
    // After each cut of a confirmation, a second cut at every 10th operation of the recovery
    // boot (a revert when the confirmation did not take).
    let st = sweep(
        geometry(),
        Scenario::Confirm,
        &Images::new(),
        Nesting::Every(10),
    )
    .unwrap();
    assert_eq!(st.failures, 0, "{:#?}", st.examples);
    assert!(st.points > 3 * st.ops + 20, "only {} points", st.points);
}

#[test]
fn the_checker_rejects_a_device_that_cannot_boot() {
    let images = Images::new();
    let mut dev = Scenario::Upgrade.setup(geometry(), &images).unwrap();
    let expect = Scenario::Upgrade.expectation(&mut dev).unwrap();
    let l = layout(&dev).unwrap();
    l.primary.erase_all(&mut dev.flash).unwrap();
    l.secondary.erase_all(&mut dev.flash).unwrap();
    let err = recover_and_check(&mut dev, Scenario::Upgrade, &images, &expect, 1).unwrap_err();
    assert!(err.contains("failed"), "{err}");
}

#[test]
fn the_checker_rejects_a_lost_upgrade() {
    let images = Images::new();
    let mut dev = Scenario::Upgrade.setup(geometry(), &images).unwrap();
    let expect = Scenario::Upgrade.expectation(&mut dev).unwrap();
    // The request disappears (as if a cut had been taken for a refusal): A keeps running.
    let l = layout(&dev).unwrap();
    write_partition(&mut dev.flash, l.secondary, &images.b.bytes).unwrap();
    let err = recover_and_check(&mut dev, Scenario::Upgrade, &images, &expect, 1).unwrap_err();
    assert!(err.contains("expected one of [B]"), "{err}");
}

#[test]
fn the_checker_rejects_a_counter_above_the_running_image() {
    let images = Images::new();
    let mut dev = Scenario::Revert.setup(geometry(), &images).unwrap();
    let expect = Scenario::Revert.expectation(&mut dev).unwrap();
    raise_security_counter(&mut dev.otp, CounterId::Application, 2).unwrap();
    // A (counter 1) can no longer be reverted to; B keeps running unconfirmed.
    let err = recover_and_check(&mut dev, Scenario::Revert, &images, &expect, 1).unwrap_err();
    assert!(err.contains("expected one of [A]"), "{err}");
}
