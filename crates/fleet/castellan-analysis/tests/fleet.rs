//! The analysis on simulated fleets: a healthy fleet raises nothing, a device that deviates
//! from its peers is found with its evidence, a release that makes every device misbehave is a
//! cohort shift and not a hundred compromised devices.

use castellan_analysis::simulate::{Noise, fleet_window, healthy};
use castellan_analysis::{
    Baseline, Cohort, Findings, Observation, Policy, Severity, Signal, analyze,
};
use proptest::prelude::*;

fn cohort(class: &str, release: &str) -> Cohort {
    Cohort {
        device_class: class.into(),
        release: release.into(),
    }
}

fn learned(noise: &mut Noise, windows: usize) -> Baseline {
    let mut baseline = Baseline::default();
    for _ in 0..windows {
        let f = analyze(&fleet_window(noise), &mut baseline, &Policy::default());
        assert!(f.is_empty(), "{f:?}");
    }
    baseline
}

#[test]
fn a_healthy_fleet_of_100_devices_raises_nothing_in_1000_windows() {
    let mut noise = Noise::new(0x5eed_cafe);
    let mut baseline = Baseline::default();
    let mut found = Findings::default();
    for _ in 0..1000 {
        let f = analyze(&fleet_window(&mut noise), &mut baseline, &Policy::default());
        found.devices.extend(f.devices);
        found.shifts.extend(f.shifts);
    }
    assert!(found.is_empty(), "false alarms: {found:?}");
}

#[test]
fn attack_topic_probing_device_stands_out_from_its_peers() {
    let mut noise = Noise::new(7);
    let mut baseline = learned(&mut noise, 20);
    let mut window = fleet_window(&mut noise);
    let probe = &mut window[17];
    probe.values.insert(Signal::RefusedPublishes, 40.0);
    let f = analyze(&window, &mut baseline, &Policy::default());
    assert!(f.shifts.is_empty(), "{f:?}");
    assert_eq!(f.devices.len(), 1, "{f:?}");
    let d = &f.devices[0];
    assert_eq!(d.device, "sensor-v1-017");
    assert_eq!(d.severity, Severity::High);
    let e = &d.evidence[0];
    assert_eq!(
        (e.signal, e.value, e.peers),
        (Signal::RefusedPublishes, 40.0, 60)
    );
    assert!(e.peer_median < 1.0 && e.z > 12.0, "{e:?}");
}

#[test]
fn attack_exfiltration_flood_and_reconnect_storm_are_evidence_of_one_finding() {
    let mut noise = Noise::new(11);
    let mut baseline = learned(&mut noise, 20);
    let mut window = fleet_window(&mut noise);
    let d = window
        .iter_mut()
        .find(|o| o.device == "gateway-v2-005")
        .unwrap();
    d.values.insert(Signal::Messages, 600.0);
    d.values.insert(Signal::Connections, 30.0);
    let f = analyze(&window, &mut baseline, &Policy::default());
    assert_eq!(f.devices.len(), 1, "{f:?}");
    let signals: Vec<Signal> = f.devices[0].evidence.iter().map(|e| e.signal).collect();
    assert_eq!(signals, [Signal::Messages, Signal::Connections]);
    assert_eq!(f.devices[0].severity, Severity::High);
}

#[test]
fn a_release_that_makes_every_device_misbehave_is_a_cohort_shift_not_sixty_compromises() {
    let mut noise = Noise::new(3);
    let mut baseline = learned(&mut noise, 20);
    // The sensors move to 1.1.0, which is refused a few publishes by every device.
    let mut window = fleet_window(&mut noise);
    for o in window
        .iter_mut()
        .filter(|o| o.cohort.device_class == "sensor-v1")
    {
        o.cohort.release = "1.1.0".into();
        o.values.insert(
            Signal::RefusedPublishes,
            8.0 + noise.normal(0.0, 1.0).round(),
        );
    }
    let f = analyze(&window, &mut baseline, &Policy::default());
    assert!(
        f.devices.is_empty(),
        "no device stands out of its cohort: {f:?}"
    );
    assert_eq!(f.shifts.len(), 1, "{f:?}");
    let s = &f.shifts[0];
    assert_eq!(s.cohort, cohort("sensor-v1", "1.1.0"));
    assert_eq!((s.signal, s.devices), (Signal::RefusedPublishes, 60));
    assert!(s.baseline_median < 1.0 && s.median >= 6.0, "{s:?}");
    // A shifted cohort is not learned: the next window says the same.
    let again = analyze(&window, &mut baseline, &Policy::default());
    assert_eq!(again.shifts.len(), 1);
    // Once an operator accepts the release's behaviour, its cohort learns its own normal.
    baseline.forget(&cohort("sensor-v1", "1.1.0"));
    let mut noise2 = Noise::new(5);
    for _ in 0..10 {
        let mut w = healthy(&mut noise2, "sensor-v1", "1.1.0", 60);
        for o in &mut w {
            o.values.insert(Signal::RefusedPublishes, 8.0);
        }
        let _ = analyze(
            &w,
            &mut baseline,
            &Policy {
                min_windows: 1_000, // judge nothing while learning
                ..Policy::default()
            },
        );
    }
    let mut w = healthy(&mut noise2, "sensor-v1", "1.1.0", 60);
    for o in &mut w {
        o.values.insert(Signal::RefusedPublishes, 8.0);
    }
    assert!(analyze(&w, &mut baseline, &Policy::default()).is_empty());
}

#[test]
fn a_cohort_too_small_for_peers_is_judged_against_its_class_baseline() {
    let mut noise = Noise::new(13);
    let mut baseline = learned(&mut noise, 20);
    // Three canary devices on a new release: too few to be each other's peers.
    let mut canaries = healthy(&mut noise, "sensor-v1", "1.2.0-canary", 3);
    canaries[1].values.insert(Signal::RefusedHandshakes, 25.0);
    let f = analyze(&canaries, &mut baseline, &Policy::default());
    assert_eq!(f.devices.len(), 1, "{f:?}");
    assert_eq!(f.devices[0].device, "sensor-v1-001");
    assert_eq!(f.devices[0].evidence[0].peers, 0, "the baseline stood in");
    assert!(f.shifts.is_empty(), "three devices are not a cohort shift");
}

proptest! {
    #[test]
    fn hostile_values_never_panic(values in prop::collection::vec(
        (0usize..6, any::<f64>()), 0..200)) {
        let mut baseline = Baseline::default();
        let window: Vec<Observation> = values
            .iter()
            .enumerate()
            .map(|(i, (c, v))| Observation {
                device: format!("d{i}"),
                cohort: cohort("c", &c.to_string()),
                values: Signal::ALL.iter().map(|s| (*s, *v)).collect(),
            })
            .collect();
        for _ in 0..3 {
            let f = analyze(&window, &mut baseline, &Policy::default());
            for d in &f.devices {
                prop_assert!(d.evidence.iter().all(|e| e.z.is_finite()));
            }
        }
    }
}
