//! Schema 9: leases with fencing epochs, on SQLite and on PostgreSQL. Two instances are two
//! holder names on one database; a stalled instance is one whose lease expired.

use std::time::Duration;

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{
    Alert, AlertState, AuditRecord, Decision, Fence, LeaseAnswer, Store, StoreError, fenced,
};

const TTL: i64 = 60_000;

async fn hold(store: &Store, name: &str, holder: &str, held: Option<i64>, ttl: i64) -> Fence {
    match store.acquire_lease(name, holder, held, ttl).await.unwrap() {
        LeaseAnswer::Held { fence, .. } => fence,
        other => panic!("{holder} expected to hold {name}: {other:?}"),
    }
}

/// A lease that expires at once, then taken over by `b`: `a` is the stalled instance.
async fn stalled_a_and_current_b(store: &Store) -> (Fence, Fence) {
    let a = hold(store, "campaigns", "a", None, 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b = hold(store, "campaigns", "b", None, TTL).await;
    (a, b)
}

fn alert(id: &str) -> Alert {
    Alert {
        id: id.into(),
        device_id: Some("dev-1".into()),
        device_class: "an505".into(),
        release: "1.0.0".into(),
        kind: "device".into(),
        severity: "high".into(),
        state: AlertState::Open,
        summary: "deviates".into(),
        evidence: "{}".into(),
        raised_at: 1,
        updated_at: 1,
        updated_by: None,
        probation_until: None,
    }
}

fn record(reason: &str) -> AuditRecord<'_> {
    AuditRecord {
        actor: "system",
        action: "campaign.tick",
        target: "c1",
        decision: Decision::Allowed,
        reason,
        code: None,
    }
}

#[tokio::test]
async fn first_acquirer_holds_and_the_other_instance_is_told_who_does() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let answer = s.acquire_lease("campaigns", "a", None, TTL).await.unwrap();
        let LeaseAnswer::Held {
            fence,
            taken_over,
            previous: None,
            ..
        } = answer
        else {
            panic!("first acquisition refused: {answer:?}");
        };
        assert_eq!((fence.epoch, taken_over), (1, true));
        match s.acquire_lease("campaigns", "b", None, TTL).await.unwrap() {
            LeaseAnswer::HeldBy(l) => assert_eq!((l.holder.as_str(), l.epoch), ("a", 1)),
            other => panic!("b took a held lease: {other:?}"),
        }
        // Renewal keeps the epoch; other leases are independent.
        match s
            .acquire_lease("campaigns", "a", Some(1), TTL)
            .await
            .unwrap()
        {
            LeaseAnswer::Held {
                fence, taken_over, ..
            } => assert_eq!((fence.epoch, taken_over), (1, false)),
            other => panic!("renewal refused: {other:?}"),
        }
        assert_eq!(hold(s, "tuf", "b", None, TTL).await.epoch, 1);
        assert_eq!(s.leases().await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn expired_lease_is_taken_over_with_a_higher_epoch_and_the_old_holder_cannot_renew() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let (a, b) = stalled_a_and_current_b(s).await;
        assert_eq!((a.epoch, b.epoch), (1, 2));
        // The takeover names the holder it replaced.
        match s.acquire_lease("analysis", "a", None, 1).await.unwrap() {
            LeaseAnswer::Held { previous: None, .. } => {}
            other => panic!("a free lease reported a previous holder: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        match s.acquire_lease("analysis", "b", None, TTL).await.unwrap() {
            LeaseAnswer::Held {
                previous: Some(l), ..
            } => assert_eq!((l.holder.as_str(), l.epoch), ("a", 1)),
            other => panic!("takeover without the previous holder: {other:?}"),
        }
        match s
            .acquire_lease("campaigns", "a", Some(1), TTL)
            .await
            .unwrap()
        {
            LeaseAnswer::HeldBy(l) => assert_eq!((l.holder.as_str(), l.epoch), ("b", 2)),
            other => panic!("the stale holder renewed a lease taken over: {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn attack_stale_leaseholder_write_is_fenced() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let (a, b) = stalled_a_and_current_b(s).await;
        let before = s.audit_entries(0, 100).await.unwrap().len();
        // A single statement and a transaction, both refused, neither applied.
        let err = fenced(a.clone(), s.raise_alert(&alert("alr-stale")))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::Fenced {
                lease: "campaigns".into(),
                epoch: 1
            }
        );
        assert!(s.alert("alr-stale").await.unwrap().is_none());
        let err = fenced(a, s.append_audit(&record("stale"), 5))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Fenced { epoch: 1, .. }), "{err}");
        assert_eq!(s.audit_entries(0, 100).await.unwrap().len(), before);
        // The current holder writes.
        fenced(b.clone(), s.raise_alert(&alert("alr-current")))
            .await
            .unwrap();
        fenced(b, s.append_audit(&record("current"), 6))
            .await
            .unwrap();
        assert!(s.alert("alr-current").await.unwrap().is_some());
        assert_eq!(s.audit_entries(0, 100).await.unwrap().len(), before + 1);
    })
    .await;
}

#[tokio::test]
async fn an_expired_lease_nobody_took_fences_its_holder_until_renewed() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let a = hold(s, "analysis", "a", None, 1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = fenced(a.clone(), s.raise_alert(&alert("alr-late")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
        // Nobody acted meanwhile: renewing at the same epoch is safe.
        let renewed = hold(s, "analysis", "a", Some(a.epoch), TTL).await;
        assert_eq!(renewed, a);
        fenced(a, s.raise_alert(&alert("alr-late"))).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn restart_and_release_raise_the_epoch_so_old_fences_stay_dead() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let first = hold(s, "campaigns", "a", None, TTL).await;
        // The same instance restarted (it no longer knows its epoch): a new epoch.
        let restarted = hold(s, "campaigns", "a", None, TTL).await;
        assert_eq!(restarted.epoch, first.epoch + 1);
        assert!(
            fenced(first, s.raise_alert(&alert("alr-old")))
                .await
                .is_err()
        );
        // Given up at shutdown: another instance takes it at once, one epoch higher.
        assert!(s.release_lease(&restarted).await.unwrap());
        let b = hold(s, "campaigns", "b", None, TTL).await;
        assert_eq!(b.epoch, restarted.epoch + 1);
        assert!(!s.release_lease(&restarted).await.unwrap());
    })
    .await;
}
