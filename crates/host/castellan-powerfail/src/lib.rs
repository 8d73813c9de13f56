//! Castellan's exhaustive power-loss proof of the bootloader (`castellan-boot`) on the
//! simulated MCU (`castellan-sim`): for a test upgrade, a permanent upgrade, a revert, a
//! confirmation and an overwrite-only upgrade, the power is cut at every flash and fuse
//! operation (before it, in the middle of it — a torn write or erase — and after it), the device
//! reboots, and the recovery boot is itself cut at every operation; after each cut the device
//! must boot an authorized image, never one below the confirmed security counter, and settle in
//! the scenario's expected state (the upgrade completed or cleanly reverted, both images
//! intact). Every write size (1, 4, 8, 16) and erased value (0xFF, 0x00) is covered.
//!
//! ```text
//!  fixture   keys, images A (v1.0.0, counter 1) and B (v1.1.0, counter 2), provisioned device
//!  scenario  start state · action under cuts · acceptable outcomes
//!  sweep     every cut, then every second cut during recovery (snapshot/restore)
//!  check     the invariants, boot after boot, and the settled state
//!  update    the over-the-air update path (secure services' update client, reboot into the
//!            trial image, acceptance) cut at every operation, then driven as the agent does
//!  its       the same proof for the secure services' trusted storage (every set and remove)
//!  main      all geometries × scenarios on 2 threads; last line
//!            `power-loss: <P> injection points, <F> failures`
//! ```

pub mod check;
pub mod fixture;
pub mod its;
pub mod scenario;
pub mod sweep;
pub mod update;

pub use scenario::Scenario;
pub use sweep::{Nesting, SweepStats, sweep};
