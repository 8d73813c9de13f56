//! Trusted storage under exhaustive power-loss injection: every flash and counter operation of
//! every set and remove of the scenario, cut before, torn and after, on all 8 flash geometries.

use castellan_powerfail::its::{default_scenario, its_power_loss_campaign};

#[test]
fn its_is_atomic_under_every_power_cut_on_every_geometry() {
    let report = its_power_loss_campaign();
    eprintln!(
        "{} geometries, {} recovery cuts among the injection points, {} compactions in the dry runs",
        report.geometries, report.recovery_injection_points, report.compactions
    );
    assert!(
        report.failure_details.is_empty(),
        "{report}\n{}",
        report.failure_details.join("\n")
    );
    assert_eq!(report.failures, 0);
    assert_eq!(report.geometries, 8);
    // Every step takes at least two operations (entry, commit), cut in three ways, on 8 flashes.
    assert!(report.injection_points >= 8 * 3 * 2 * default_scenario().len() as u64);
    // The scenario must exercise compaction, not only appends.
    assert!(report.compactions >= 8 * 2, "{report:?}");
}
