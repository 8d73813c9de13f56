//! The detector behind a simulated device's gate: every gate entry is sensed by the secure
//! dispatcher, refused pointers and application-event floods are events, and the signed
//! detection reports verify with the attestation key and count up across a reboot.

use castellan_gate_api::{DetectStatus, Op, SecureGate, app_kind, psa};
use castellan_services::ServiceError;
use castellan_simgate::testing::{TestDevice, TestSecure as Secure};
use castellan_simgate::{SECURE_RAM, SimGate, SimNsMemory};

/// The gate tests' device with the edge detector (the catalog's model) installed.
fn secure() -> Secure {
    let mut svc = TestDevice::SMALL.services();
    svc.install_detector(castellan_devkit::detect_model::config())
        .unwrap();
    TestDevice::SMALL.secure_over(svc)
}

fn status(s: &mut Secure) -> DetectStatus {
    SimGate::new(s).detect_status().unwrap()
}

fn report(s: &mut Secure) -> Vec<u8> {
    let mut out = [0u8; castellan_gate_api::DETECT_REPORT_CAP];
    let n = SimGate::new(s).detect_report(&mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn every_gate_entry_is_an_event_and_normal_calls_stay_below_the_alarm() {
    let mut s = secure();
    let mut gate = SimGate::new(&mut s);
    for i in 0..20u32 {
        gate.its_set(i % 3 + 1, b"reading").unwrap();
        let mut buf = [0u8; 16];
        gate.its_get(i % 3 + 1, &mut buf).unwrap();
        gate.app_event(app_kind::SENSOR_READ, 2).unwrap();
    }
    let st = status(&mut s);
    // 40 gate entries and 20 application events, plus the status call itself.
    assert_eq!(st.counters.gate_entries, 40);
    assert_eq!(st.counters.app_events, 20);
    assert_eq!(st.events, 60);
    assert!(!st.crossed(), "{st:?}");
    assert_eq!(st.flags & DetectStatus::MODEL, DetectStatus::MODEL);
    assert_eq!(
        st.model_digest,
        castellan_detect::model_digest(castellan_devkit::detect_model::model())
    );
}

#[test]
fn a_refused_pointer_is_an_event_that_crosses_the_alarm() {
    let mut s = secure();
    let mut mem = SimNsMemory::new();
    let status_code = s.call(Op::ItsGet, [1, SECURE_RAM, 16, 0], &mut mem);
    assert_eq!(status_code, psa::ERROR_PROGRAMMER_ERROR);
    let st = status(&mut s);
    assert_eq!(st.counters.refused_pointers, 1);
    assert!(st.crossed(), "{st:?}");
    assert!(st.max_window_milli >= st.alarm_milli);
}

#[test]
fn attack_application_event_flood_is_itself_an_event() {
    let mut s = secure();
    let mut gate = SimGate::new(&mut s);
    for _ in 0..2000 {
        gate.app_event(app_kind::NET_SEND, 1200).unwrap();
    }
    // An unknown kind is refused and is itself a (refused) gate entry.
    assert_eq!(
        gate.app_event(99, 0).unwrap_err().status(),
        psa::ERROR_INVALID_ARGUMENT
    );
    let st = status(&mut s);
    let c = st.counters;
    assert_eq!(c.floods, 1, "{c:?}");
    assert_eq!(c.app_events + c.app_flooded, 2000);
    assert!(c.app_flooded >= 2000 - 64, "{c:?}");
    // The trace grew by the burst, one flood event and the refused call: not by 2000.
    assert!(st.events < 70, "{st:?}");
    assert!(
        st.crossed(),
        "the flood event is foreign to the model: {st:?}"
    );
}

#[test]
fn reports_verify_with_the_attestation_key_and_count_up_across_a_reboot() {
    let mut s = secure();
    let key = s.services().attestation_public_key();
    let instance = s.services().instance_id();
    let first = castellan_detect_report::verify_report(&report(&mut s), &key).unwrap();
    assert_eq!(first.counter, 1);
    assert_eq!(first.instance_id, instance);
    let mut mem = SimNsMemory::new();
    s.call(Op::ItsGet, [1, SECURE_RAM, 16, 0], &mut mem);
    let second = castellan_detect_report::verify_report(&report(&mut s), &key).unwrap();
    assert_eq!(second.counter, 2);
    assert!(second.crossed);
    assert_eq!(second.counters[1], 1, "one refused pointer");
    assert_eq!(second.first_event, first.first_event + first.events);
    // Reboot: the services restart over the same flash and fuses.
    let platform = s.into_services().into_platform();
    let mut svc = TestDevice::SMALL.services_on(platform);
    svc.install_detector(castellan_devkit::detect_model::config())
        .unwrap();
    let mut s = TestDevice::SMALL.secure_over(svc);
    let third = castellan_detect_report::verify_report(&report(&mut s), &key).unwrap();
    assert_eq!(third.counter, 3, "the counter survives the reboot");
    assert!(!third.crossed);
}

#[test]
fn a_model_with_another_digest_is_refused() {
    let mut svc = TestDevice::SMALL.services();
    let mut config = castellan_devkit::detect_model::config();
    config.expected_digest[0] ^= 1;
    assert_eq!(
        svc.install_detector(config).unwrap_err(),
        ServiceError::InvalidSignature
    );
    assert!(svc.detector().is_none());
    // Without a detector the detection operations are not supported.
    let mut s = TestDevice::SMALL.secure_over(svc);
    let mut gate = SimGate::new(&mut s);
    assert_eq!(
        gate.detect_status().unwrap_err().status(),
        psa::ERROR_NOT_SUPPORTED
    );
    assert_eq!(
        gate.app_event(app_kind::TOPIC, 1).unwrap_err().status(),
        psa::ERROR_NOT_SUPPORTED
    );
}
