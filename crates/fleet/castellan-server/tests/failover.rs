//! Two service instances on one database (SQLite and PostgreSQL): the campaign engine runs on
//! the instance that holds its lease; when that instance dies mid-campaign (no clean shutdown,
//! its lease left to expire), the other takes the lease over with a higher epoch and finishes
//! the campaign, and the audit log stays one verifiable chain written by both.

mod common;

use castellan_store::testing::{TestStore, each_backend};
use common::cluster::another_instance;
use common::update::*;
use common::*;

/// `(new holder, reason)` of every takeover of the campaign engine's lease, in order.
async fn campaign_lease_takeovers(t: &TestStore) -> Vec<(String, String)> {
    t.store
        .audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "lease.takeover" && e.target == "campaigns")
        .map(|e| (e.actor, e.reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_survives_the_death_of_the_instance_that_runs_it() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let first = f.server.instance_name().to_string();
        let mut a = f.enroll("HA-A", 80).await;
        let mut b = f.enroll("HA-B", 81).await;
        let (rid, _) = f.release(2, v(2, 0, 0), 1).await;

        // A second instance on the same database, configured like the first.
        let (second, tmp2) = another_instance(&t.location, &f.tmp).await;
        assert_ne!(second.instance_name(), first);
        assert_eq!(
            campaign_lease_takeovers(t).await,
            vec![],
            "the second instance took the campaign engine while the first held it"
        );

        let mut ua = Updater::connect(&f.server, &a).await;
        let mut ub = Updater::connect(&f.server, &b).await;
        let (id, offer_b) = f.campaign_midway(&rid, &mut ua, &mut a, &mut ub).await;
        ua.quit().await;
        ub.quit().await;

        // The first instance dies holding the lease.
        let Fleet {
            server,
            kit,
            rm,
            admin,
            tmp,
            ..
        } = f;
        server.abandon().await;
        let f = Fleet {
            api: Api::new(&second),
            server: second,
            kit,
            rm,
            admin,
            tmp: tmp2,
        };
        // The devices' key files live in the first instance's directory: keep it.
        let _devices = tmp;

        // B reconnects to the survivor, which takes the engine over and finishes the campaign.
        let mut ub = Updater::connect(&f.server, &b).await;
        let again = ub.expect_offer().await;
        assert_eq!(
            (again.campaign_id.as_str(), again.manifest.as_str()),
            (id.as_str(), offer_b.manifest.as_str())
        );
        assert!(ub.complete(&mut b, &again).await.updated);
        let c = f.wait(&id, 20, |c| c.state == "completed").await;
        assert_eq!(c.counts.updated, 2);
        assert_eq!(
            campaign_lease_takeovers(t).await,
            vec![(
                f.server.instance_name().to_string(),
                format!("epoch 2 taken over from {first} (epoch 1), which let it expire")
            )]
        );
        ub.quit().await;
        // One chain, written by both instances, verified by the survivor (admin may).
        f.audit_intact().await;
        f.server.shutdown().await;
    })
    .await;
}
