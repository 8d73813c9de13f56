//! Alerts and response policies, on SQLite and PostgreSQL: an alert moves open →
//! acknowledged → resolved and stays resolved; the analysis finds a device's unresolved alert
//! to update it; a class's policy is replaced, not duplicated.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{Alert, AlertState, ResponsePolicy};

fn alert(id: &str, device: Option<&str>, raised_at: i64) -> Alert {
    Alert {
        id: id.into(),
        device_id: device.map(str::to_owned),
        device_class: "sensor-v1".into(),
        release: "1.0.0".into(),
        kind: if device.is_some() { "device" } else { "cohort" }.into(),
        severity: "high".into(),
        state: AlertState::Open,
        summary: "refused_publishes 40 (peers 0)".into(),
        evidence: r#"[{"signal":"refused_publishes","value":40.0}]"#.into(),
        raised_at,
        updated_at: raised_at,
        updated_by: None,
        probation_until: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_move_forward_and_are_never_lost() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.raise_alert(&alert("alr-1", Some("CSTL-1"), 100))
            .await
            .unwrap();
        s.raise_alert(&alert("alr-2", None, 200)).await.unwrap();
        let all = s.alerts(None, 10).await.unwrap();
        assert_eq!(
            all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["alr-2", "alr-1"]
        );
        assert_eq!(all[1], alert("alr-1", Some("CSTL-1"), 100));
        assert_eq!(
            s.unresolved_alert_of("CSTL-1").await.unwrap().map(|a| a.id),
            Some("alr-1".into())
        );

        s.update_alert_evidence("alr-1", "medium", "less", "[]", 150)
            .await
            .unwrap();
        assert!(
            s.set_alert_state("alr-1", AlertState::Acknowledged, "ola", 160)
                .await
                .unwrap()
        );
        let a = s.alert("alr-1").await.unwrap().unwrap();
        assert_eq!(
            (
                a.state,
                a.severity.as_str(),
                a.updated_by.as_deref(),
                a.updated_at
            ),
            (AlertState::Acknowledged, "medium", Some("ola"), 160)
        );
        assert!(
            s.set_alert_state("alr-1", AlertState::Resolved, "ola", 170)
                .await
                .unwrap()
        );
        // Resolved stays resolved, and is no longer the device's unresolved alert.
        assert!(
            !s.set_alert_state("alr-1", AlertState::Open, "mallory", 180)
                .await
                .unwrap()
        );
        assert_eq!(
            s.alert("alr-1").await.unwrap().unwrap().state,
            AlertState::Resolved
        );
        assert!(s.unresolved_alert_of("CSTL-1").await.unwrap().is_none());
        assert!(
            !s.set_alert_state("alr-404", AlertState::Resolved, "ola", 1)
                .await
                .unwrap()
        );
        // Probation: due once its time has come; new evidence ends it.
        s.set_alert_probation("alr-2", 300).await.unwrap();
        assert!(s.probations_ended(299).await.unwrap().is_empty());
        assert_eq!(s.probations_ended(300).await.unwrap()[0].id, "alr-2");
        s.update_alert_evidence("alr-2", "high", "again", "[]", 301)
            .await
            .unwrap();
        assert!(s.probations_ended(400).await.unwrap().is_empty());
        let open = s.alerts(Some(AlertState::Open), 10).await.unwrap();
        assert_eq!(
            open.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["alr-2"]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_has_one_response_policy() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        assert!(s.response_policy("sensor-v1").await.unwrap().is_none());
        let mut p = ResponsePolicy {
            device_class: "sensor-v1".into(),
            auto_quarantine: true,
            max_quarantines_per_hour: 3,
            updated_at: 1,
            updated_by: "ann".into(),
        };
        s.set_response_policy(&p).await.unwrap();
        p.auto_quarantine = false;
        p.max_quarantines_per_hour = 0;
        s.set_response_policy(&p).await.unwrap();
        assert_eq!(s.response_policy("sensor-v1").await.unwrap(), Some(p));
    })
    .await;
}
