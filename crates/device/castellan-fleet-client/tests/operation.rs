//! Operation with the LDevID: the topics parse as the fleet protocol's, the telemetry message is
//! the JSON object the service stores, and hostile sizes are typed errors.

use castellan_fleet_client::{FleetError, ONLINE, Operation, TELEMETRY_MAX, Telemetry};
use castellan_protocol::Topic;

#[test]
fn the_topics_are_the_protocols() {
    let op = Operation::new("an505-mqtt-0001").unwrap();
    assert_eq!(
        Topic::parse(op.telemetry_topic()).unwrap(),
        Topic::Telemetry {
            id: "an505-mqtt-0001".into()
        }
    );
    assert_eq!(op.status_topic(), "dev/an505-mqtt-0001/status");
    assert_eq!(
        op.subscriptions(),
        [
            "dev/an505-mqtt-0001/cmd/#",
            "dev/an505-mqtt-0001/down/update/#",
            "dev/an505-mqtt-0001/down/lifecycle/#",
        ]
    );
    assert_eq!(
        castellan_protocol::topics::update_down_filter("an505-mqtt-0001"),
        op.subscriptions()[1]
    );
    assert_eq!(
        castellan_protocol::topics::lifecycle_down_filter("an505-mqtt-0001"),
        op.subscriptions()[2]
    );
    let online: serde_json::Value = serde_json::from_slice(ONLINE).unwrap();
    assert_eq!(online["online"], true);
}

#[test]
fn telemetry_is_a_json_object_the_service_stores() {
    let t = Telemetry {
        uptime_s: 12,
        boot_count: 7,
        firmware: [1, 0, 0],
        messages_sent: 0,
    };
    let mut out = [0u8; TELEMETRY_MAX];
    let n = t.encode(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out[..n]).unwrap();
    assert_eq!(v["uptime_s"], 12);
    assert_eq!(v["boot_count"], 7);
    assert_eq!(v["firmware"], "1.0.0");
    assert_eq!(v["messages_sent"], 0);
}

#[test]
fn the_largest_telemetry_fits_its_buffer() {
    let t = Telemetry {
        uptime_s: u64::MAX,
        boot_count: u32::MAX,
        firmware: [u32::MAX; 3],
        messages_sent: u32::MAX,
    };
    let mut out = [0u8; TELEMETRY_MAX];
    let n = t.encode(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out[..n]).unwrap();
    assert_eq!(v["uptime_s"], u64::MAX);
    assert_eq!(v["firmware"], "4294967295.4294967295.4294967295");
}

#[test]
fn attack_small_buffer_and_bad_id_are_typed_errors() {
    let t = Telemetry {
        uptime_s: 1,
        boot_count: 1,
        firmware: [1, 2, 3],
        messages_sent: 1,
    };
    for len in 0..40 {
        let mut out = vec![0u8; len];
        assert_eq!(t.encode(&mut out), Err(FleetError::TooLarge), "{len}");
    }
    assert!(matches!(Operation::new("dev/+/#"), Err(FleetError::BadId)));
    assert!(matches!(Operation::new(""), Err(FleetError::BadId)));
    assert!(Operation::new(&"a".repeat(64)).is_ok());
}
