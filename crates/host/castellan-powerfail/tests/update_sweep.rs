//! The over-the-air update path under power loss, reduced for `cargo test`: one flash
//! geometry, a cut at every operation (every phase) of download, finish, install, the reboot
//! into the trial image, the acceptance and the counter-raising boot; after each cut the device
//! boots and settles with the update installed (resumed, or retried after a revert). The full
//! matrix is `cargo xtask powerfail`.

use castellan_powerfail::Nesting;
use castellan_powerfail::fixture::Images;
use castellan_powerfail::update::{
    UPDATE_DEVICE, UpdateFixture, recover_and_check_update, update_action, update_setup,
    update_sweep,
};
use castellan_sim::FlashConfig;

fn geometry() -> FlashConfig {
    UPDATE_DEVICE.flash(8, 0xFF)
}

#[test]
fn every_cut_of_the_update_path_recovers() {
    let fx = UpdateFixture::new(&Images::new());
    let t = std::time::Instant::now();
    let (st, paths) = update_sweep(geometry(), &fx, 1, Nesting::Off).unwrap();
    eprintln!(
        "{} ops, {} injection points, {} failures in {:.1} s; {paths:?}",
        st.ops,
        st.points,
        st.failures,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(st.failures, 0, "{:#?}", st.examples);
    assert_eq!(st.points, 3 * st.ops);
    // The path writes: storage records, the download, the swap, the confirmation, the counter.
    assert!(st.ops > 50, "only {} operations", st.ops);
    // The recoveries went through every path: resumed downloads, restarts, trial images
    // accepted after the cut, reverted trials retried. (A staged install is never seen after a
    // cut: the recovery boot swaps it in.)
    assert!(paths.resumed > 0, "{paths:?}");
    assert!(paths.restarted > 0, "{paths:?}");
    assert!(paths.trials > 0, "{paths:?}");
    assert!(paths.retried > 0, "{paths:?}");
}

#[test]
fn the_checker_rejects_a_device_left_on_the_old_image() {
    let fx = UpdateFixture::new(&Images::new());
    let mut dev = update_setup(geometry(), &fx).unwrap();
    // A device whose update client stores nothing: the release is never installed. Simulate by
    // checking the settled state of a device that never ran the update.
    let broken = UpdateFixture {
        envelope: Vec::new(),
        ..fx.clone()
    };
    let err =
        recover_and_check_update(&mut dev.clone(), &broken, &mut Default::default()).unwrap_err();
    assert!(err.contains("update_begin"), "{err}");
    // And the real action settles it.
    update_action(&mut dev, &fx).unwrap();
}

#[test]
fn a_second_cut_during_the_recovery_recovers_too() {
    // After each cut, a second one at every 9th operation of the recovery (resumed downloads,
    // accepted trials, retries): a double cut must not leave a download resumed into a slot
    // a swap has filled with the previous image.
    let fx = UpdateFixture::new(&Images::new());
    let t = std::time::Instant::now();
    let (st, paths) = update_sweep(geometry(), &fx, 1, Nesting::Every(9)).unwrap();
    eprintln!(
        "{} injection points, {} failures in {:.1} s; {paths:?}",
        st.points,
        st.failures,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(st.failures, 0, "{:#?}", st.examples);
    assert!(st.points > 3 * st.ops * 3, "only {} points", st.points);
}
