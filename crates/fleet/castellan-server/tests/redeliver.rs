//! A signed command issued while its device is offline is sent again when the device comes
//! back (subscribed to its lifecycle channel), with the same nonce: the device's answer to it
//! completes the step.

mod common;

use std::time::Duration;

use castellan_protocol::{ReattestCommand, ReattestEvidence, WireMessage as _, topics};
use castellan_store::testing::TestStore;
use common::update::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reattest_issued_while_offline_is_sent_again_when_the_device_comes_back() {
    let t = TestStore::sqlite().await;
    let f = fleet(&t).await;
    let mut dev = f.enroll("RDV-A", 95).await;
    let (status, _) = f
        .api
        .call(
            "POST",
            "/api/v1/devices/RDV-A/quarantine",
            Some(&f.admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Nobody listens on the device's lifecycle channel: the command is published into the void.
    let (status, h) = f
        .api
        .call("POST", "/api/v1/devices/RDV-A/heal", Some(&f.admin), None)
        .await;
    assert_eq!((status, h["heal"].as_str()), (202, Some("reattest")), "{h}");
    let nonce = h["nonce"].as_str().unwrap().to_string();
    // Offline for a while (the service looks every half second).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let filter = "dev/RDV-A/down/lifecycle/#".to_string();
    let (mut paho, codes) = ldevid_session(&f.server, &dev, &[filter.as_str()]).await;
    assert_eq!(codes, serde_json::json!([1]), "lifecycle channel refused");
    let got = paho
        .message_on(&topics::reattest("RDV-A"), Duration::from_secs(15))
        .await
        .expect("the command, sent again");
    let cmd = ReattestCommand::parse(got.as_bytes()).unwrap();
    assert_eq!(cmd.nonce, nonce, "the same command: the same nonce");
    assert_eq!(cmd.device_id, "RDV-A");

    // The device's answer to it puts it on probation.
    let ev = ReattestEvidence {
        nonce: nonce.clone(),
        token: hex::encode(dev.token(&hex::decode(&nonce).unwrap())),
    };
    paho.publish(
        &topics::reattested("RDV-A"),
        &String::from_utf8(ev.to_payload()).unwrap(),
    )
    .await;
    for _ in 0..80 {
        let entries = audit(&f.server).await;
        let resent = entries.iter().any(|e| {
            e.action == "response.reattest" && e.target == "RDV-A" && e.reason.contains("re-sent")
        });
        let reattested = entries.iter().any(|e| {
            e.action == "response.reattest"
                && e.target == "RDV-A"
                && e.reason.contains("re-attested after a reboot")
        });
        if resent && reattested {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("not re-sent and answered: {:#?}", audit(&f.server).await);
}
