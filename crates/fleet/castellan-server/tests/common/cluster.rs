//! Several instances of the service on one database: another instance configured like a
//! running one, and a campaign brought to the point where the cluster tests disturb it (the
//! canary updated, a second device downloading in the next wave), and the audit chain they all
//! write, verified.

use castellan_server::ServerHandle;
use castellan_server::protocol::{CampaignRequest, Offer, UpdateState};

use super::update::{CLASS, Fleet, Updater, start_on, state_of};
use super::{TestDevice, state_dir, tempdir};

/// Another instance on the database at `location`, configured like the one whose state lives
/// in `like` (the same PKI and TLS files); returns it with its own temporary directory.
pub async fn another_instance(
    location: &str,
    like: &tempfile::TempDir,
) -> (ServerHandle, tempfile::TempDir) {
    let tmp = tempdir();
    castellan_testkit::fleet::pki::copy_tree(
        &state_dir(like).join("pki"),
        &state_dir(&tmp).join("pki"),
    );
    let server = start_on(location, &tmp).await;
    (server, tmp)
}

/// A campaign of `release` to every device of [`CLASS`]: a canary of one, then the rest in one
/// wave.
pub fn canary_of_one(release: &str) -> CampaignRequest {
    let mut r = CampaignRequest::new(release, CLASS);
    r.canary = 1;
    r.waves = vec!["100%".into()];
    r
}

impl Fleet {
    /// Starts a [`canary_of_one`] campaign of `release` over two connected devices and takes it
    /// midway: the canary (`canary`, whose device is `canary_dev`) offered and updated, then
    /// `second` offered and accepted, downloading in wave 1. Returns the campaign's id and the
    /// offer `second` holds.
    pub async fn campaign_midway(
        &self,
        release: &str,
        canary: &mut Updater,
        canary_dev: &mut TestDevice,
        second: &mut Updater,
    ) -> (String, Offer) {
        let id = self.campaign(&canary_of_one(release)).await.campaign_id;
        let offer = canary.expect_offer().await;
        assert!(canary.complete(canary_dev, &offer).await.updated);
        let offer2 = second.expect_offer().await;
        second
            .status(&id, release, UpdateState::Accepted, 0, None)
            .await;
        let downloading = second.id.clone();
        self.wait(&id, 10, |c| {
            c.wave == 1 && state_of(c, &downloading) == "downloading"
        })
        .await;
        (id, offer2)
    }

    /// Asks the service (as admin) to verify the audit chain, asserts that it is intact, and
    /// returns the answer.
    pub async fn audit_intact(&self) -> serde_json::Value {
        let (status, verify) = self
            .api
            .call("GET", "/api/v1/audit/verify", Some(&self.admin), None)
            .await;
        assert_eq!(status, 200, "{verify}");
        assert_eq!(verify["intact"], true, "{verify}");
        verify
    }
}
