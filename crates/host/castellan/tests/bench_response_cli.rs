//! `castellan bench response` at a small scale: ten simulated devices on the real broker, the
//! three cases of the issue (a run-time compromise healed by reboot-and-reattest, a validly
//! signed but unexpected build healed by the last good release, a device that refuses every
//! update decommissioned with proof of erasure). Outcomes are asserted, not times.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the three cases do not all end within the bench's timeout yet (docs/response.md, Not yet)"]
async fn three_compromises_are_contained_then_healed_or_decommissioned() {
    let t = tempfile::tempdir().unwrap();
    let o = output(castellan(
        t.path(),
        &[
            "bench",
            "response",
            "--devices",
            "10",
            "--soak",
            "10",
            "--window",
            "2",
            "--probation",
            "3",
            "--timeout",
            "300",
            "--json",
        ],
    ))
    .await;
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    let json = &out[out.find("\n{").expect("a JSON report") + 1..];
    let r: Value = serde_json::from_str(json).unwrap();
    assert_eq!(r["soak_alerts"], 0, "{r:#}");
    assert_eq!(r["soak_quarantines"], 0, "{r:#}");
    assert_eq!(r["peer_alerts"], 0, "{r:#}");
    assert_eq!(
        r["registry_devices"], 10,
        "nothing lost from the registry: {r:#}"
    );
    assert_eq!(r["audit_intact"], true, "{r:#}");
    assert_eq!(r["steps_audited"], true, "{r:#}");
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        assert!(c["alert_s"].is_number(), "{c:#}");
        assert!(c["contained_s"].is_number(), "{c:#}");
        assert_eq!(c["steps_missing"], serde_json::json!([]), "{c:#}");
    }
    // (a) and (b) are healed and released; (c) is not healed and is decommissioned.
    assert!(cases[0]["released_s"].is_number(), "{:#}", cases[0]);
    assert!(cases[1]["released_s"].is_number(), "{:#}", cases[1]);
    assert!(cases[2]["heal_failed_s"].is_number(), "{:#}", cases[2]);
    assert!(cases[2]["decommissioned_s"].is_number(), "{:#}", cases[2]);
    assert!(cases[2]["released_s"].is_null(), "{:#}", cases[2]);
}
