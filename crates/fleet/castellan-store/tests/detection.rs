//! Schema 11: detection reports on SQLite and on PostgreSQL: stored in counter order, a
//! replayed or older counter refused, skipped counters kept as the report's gap.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{NewDetection, StoreError};

fn report(device: &str, counter: u64) -> NewDetection {
    NewDetection {
        device_id: device.into(),
        counter,
        received_at: 1_700_000_000 + (counter % 1000) as i64,
        first_event: counter.wrapping_mul(100) % 1_000_000,
        events: 100,
        score_milli: 250,
        alarm_milli: 1000,
        crossed: counter == 5,
        counters: "[1,2,3,4,5,6,7,8]".into(),
        model_digest: "ab".repeat(32),
        report: vec![0xd2, counter as u8],
    }
}

#[tokio::test]
async fn reports_are_kept_in_order_with_their_gaps_and_replays_refused() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        assert_eq!(s.record_detection(&report("dev-a", 1)).await.unwrap(), 0);
        assert_eq!(s.record_detection(&report("dev-a", 2)).await.unwrap(), 0);
        // Reports 3 and 4 never arrived: the gap is evidence.
        assert_eq!(s.record_detection(&report("dev-a", 5)).await.unwrap(), 2);
        for replay in [5, 4, 1] {
            assert_eq!(
                s.record_detection(&report("dev-a", replay)).await,
                Err(StoreError::ReportNotNewer {
                    offered: replay,
                    latest: 5
                })
            );
        }
        // Counters are per device.
        assert_eq!(s.record_detection(&report("dev-b", 1)).await.unwrap(), 0);
        let list = s.detections("dev-a", 10).await.unwrap();
        let counters: Vec<u64> = list.iter().map(|r| r.report.counter).collect();
        assert_eq!(counters, [5, 2, 1]);
        assert_eq!(list[0].gap, 2);
        assert_eq!(list[0].report, report("dev-a", 5));
        assert_eq!(s.detections("dev-a", 1).await.unwrap().len(), 1);
        assert!(s.detections("dev-c", 10).await.unwrap().is_empty());
        // A counter beyond the database's integers is refused, not wrapped.
        assert!(matches!(
            s.record_detection(&report("dev-a", u64::MAX)).await,
            Err(StoreError::Corrupt { .. })
        ));
    })
    .await;
}
