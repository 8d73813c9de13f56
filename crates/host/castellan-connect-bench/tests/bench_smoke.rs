//! The connect benchmark on a small fleet: both brokers (ours as a child of the bench binary,
//! Mosquitto from the Debian package) accept every client and acknowledge every message, and the
//! report prints both columns.

use std::path::PathBuf;
use std::time::Duration;

use castellan_connect_bench::{BenchOptions, bench_connect_with};

#[test]
fn bench_connect_measures_both_brokers_on_a_small_fleet() {
    castellan_testkit::peers::mosquitto::require_broker();
    let opts = BenchOptions {
        clients: 20,
        msgs_per_client: 5,
        phase_timeout: Duration::from_secs(60),
        broker_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_castellan-broker-bench"))),
        ..BenchOptions::default()
    };
    let report = bench_connect_with(&opts).unwrap();
    for f in [&report.castellan, &report.mosquitto] {
        assert_eq!((f.connected, f.failed), (20, 0), "{f:?}");
        assert_eq!(f.messages, 100, "{f:?}");
        assert!(
            f.handshakes_per_sec > 0.0 && f.messages_per_sec > 0.0,
            "{f:?}"
        );
        assert!(f.rss_idle_kib > 0 && f.rss_connected_kib > 0, "{f:?}");
    }
    assert!(report.mosquitto.broker.starts_with("mosquitto "));
    let table = report.to_string();
    assert!(
        table.contains("handshakes/s") && table.contains("KiB per connection"),
        "{table}"
    );
}
