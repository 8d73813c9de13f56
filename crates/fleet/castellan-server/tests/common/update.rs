//! Over-the-air update fixtures: the release kit shared with the agent's tests
//! (`castellan_testkit::fleet`, re-exported here), a fleet with a release manager and enrolled
//! devices, and a scripted device speaking the update protocol over MQTT with its LDevID (a
//! real paho-mqtt peer).

use std::time::Duration;

use castellan_image::Version;
use castellan_server::protocol::{
    CampaignJson, CampaignRequest, Cancel, Fetch, Offer, Status, UpdateChallenge, UpdateEvidence,
    UpdateResult, UpdateState, decode_chunk, topics,
};
use castellan_server::{ServerConfig, ServerHandle};
use castellan_store::testing::TestStore;
pub use castellan_testkit::fleet::*;
use serde_json::{Value, json};

use super::{Api, EvidenceKind, Paho, TestDevice, ldevid_session, onboard, register};

/// A server with a release manager and the release trust anchor set.
pub struct Fleet {
    pub server: ServerHandle,
    pub api: Api,
    pub admin: String,
    /// The release manager's token.
    pub rm: String,
    pub kit: ReleaseKit,
    pub tmp: tempfile::TempDir,
}

/// Start a fleet (campaign tick 100 ms, 64-byte MQTT chunks) on the test store.
pub async fn fleet(t: &TestStore) -> Fleet {
    let tmp = super::tempdir();
    let server = start(t, &tmp).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    fleet_on(server, api, admin, tmp).await
}

/// A fleet on a running `server` whose API is reached through `api` (the server's own
/// listener, or a balancer in front of several instances): a release manager and the release
/// trust anchor set up with the `admin` token.
pub async fn fleet_on(
    server: ServerHandle,
    api: Api,
    admin: String,
    tmp: tempfile::TempDir,
) -> Fleet {
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/operators",
            Some(&admin),
            Some(&json!({"name": "rm", "role": "release-manager"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let rm = body["token"].as_str().unwrap().to_string();
    let kit = ReleaseKit::new();
    let (status, body) = api
        .call(
            "PUT",
            "/api/v1/release-key",
            Some(&admin),
            Some(&json!({"public_key": kit.release_public_key_hex()})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Fleet {
        server,
        api,
        admin,
        rm,
        kit,
        tmp,
    }
}

/// Start (or restart) the server of a fleet whose state lives in `tmp`.
pub async fn start(t: &TestStore, tmp: &tempfile::TempDir) -> ServerHandle {
    start_on(&t.location, tmp).await
}

/// [`start`] on the database at `location`.
pub async fn start_on(location: &str, tmp: &tempfile::TempDir) -> ServerHandle {
    castellan_testkit::fleet::hand_over_pki(&super::state_dir(tmp));
    castellan_server::Server::start(instance_config(location, &super::state_dir(tmp)))
        .await
        .unwrap()
}

/// The configuration every fleet test's instance runs with, its state in `state` and its
/// store at `location` (the PKI must already be handed over).
pub fn instance_config(location: &str, state: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::new(state)
        .with_ephemeral_ports()
        .with_database(location.to_string());
    config.campaign_tick = Duration::from_millis(100);
    config.update_chunk_size = 64;
    // Healing's probation and the analysis that ends it, short (heal.rs).
    config.analysis_window = Duration::from_secs(1);
    config.heal_probation = Duration::from_secs(1);
    // Another instance on the same database takes a dead one's duties within 3-4 s (failover.rs).
    config.lease_ttl = Duration::from_secs(3);
    config
}

impl Fleet {
    /// A device of [`CLASS`] whose application is signed with the kit's image key, registered
    /// at the factory (not onboarded).
    pub async fn register(&self, serial: &str, seed: u64) -> TestDevice {
        let mut dev = TestDevice::new(serial, seed, self.tmp.path());
        dev.app_signer = self.kit.signer_id();
        register(&self.api, &self.admin, &mut dev).await;
        dev
    }

    /// [`Fleet::register`], then onboarded.
    pub async fn enroll(&self, serial: &str, seed: u64) -> TestDevice {
        let mut dev = self.register(serial, seed).await;
        let r = onboard(&self.server, &mut dev, EvidenceKind::Honest).await;
        assert!(r.accepted, "onboarding {serial}: {:?}", r.reason);
        dev
    }

    /// Upload release `sequence` (image `version`, security `counter`); returns the answer and
    /// the image.
    pub async fn upload(
        &self,
        sequence: u64,
        version: Version,
        counter: u32,
    ) -> ((u16, Value), Vec<u8>) {
        let image = self
            .kit
            .image(version, counter, format!("release {sequence}").as_bytes());
        let manifest = self.kit.manifest(CLASS, sequence, &image);
        let body = release_body(CLASS, &version.to_string(), &image, &manifest);
        let r = self
            .api
            .call("POST", "/api/v1/releases", Some(&self.rm), Some(&body))
            .await;
        (r, image)
    }

    /// Upload a release that must be accepted; returns its id and image.
    pub async fn release(
        &self,
        sequence: u64,
        version: Version,
        counter: u32,
    ) -> (String, Vec<u8>) {
        let ((status, body), image) = self.upload(sequence, version, counter).await;
        assert_eq!(status, 201, "{body}");
        (body["release_id"].as_str().unwrap().to_string(), image)
    }

    /// Create a campaign that must be accepted.
    pub async fn campaign(&self, req: &CampaignRequest) -> CampaignJson {
        let (status, body) = self
            .api
            .call(
                "POST",
                "/api/v1/campaigns",
                Some(&self.rm),
                Some(&serde_json::to_value(req).unwrap()),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn get(&self, id: &str) -> CampaignJson {
        let (status, body) = self
            .api
            .call(
                "GET",
                &format!("/api/v1/campaigns/{id}"),
                Some(&self.rm),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Poll the campaign until `pred` holds (panics after `secs`).
    pub async fn wait(
        &self,
        id: &str,
        secs: u64,
        pred: impl Fn(&CampaignJson) -> bool,
    ) -> CampaignJson {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let c = self.get(id).await;
            if pred(&c) {
                return c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "campaign {id} did not reach the expected state: {c:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A release-manager action on a campaign.
    pub async fn act(&self, id: &str, action: &str, body: Option<&Value>) -> (u16, Value) {
        self.api
            .call(
                "POST",
                &format!("/api/v1/campaigns/{id}/{action}"),
                Some(&self.rm),
                body,
            )
            .await
    }
}

/// The state of `device` in a campaign view.
pub fn state_of<'a>(c: &'a CampaignJson, device: &str) -> &'a str {
    c.devices
        .iter()
        .find(|d| d.device_id == device)
        .map_or("absent", |d| d.state.as_str())
}

/// A device speaking the update protocol with its LDevID, through paho.
pub struct Updater {
    pub paho: Paho,
    pub id: String,
}

const WAIT: Duration = Duration::from_secs(15);

impl Updater {
    /// Connect with the LDevID and subscribe to `dev/<id>/down/update/#`.
    pub async fn connect(server: &ServerHandle, dev: &TestDevice) -> Updater {
        let filter = topics::update_down_filter(&dev.serial);
        let (paho, codes) = ldevid_session(server, dev, &[filter.as_str()]).await;
        assert_eq!(codes, json!([1]), "update topics refused");
        Updater {
            paho,
            id: dev.serial.clone(),
        }
    }

    pub async fn offer(&mut self, limit: Duration) -> Option<Offer> {
        let m = self
            .paho
            .message_on(&topics::update_offer(&self.id), limit)
            .await?;
        Some(serde_json::from_str(&m).unwrap())
    }

    pub async fn expect_offer(&mut self) -> Offer {
        self.offer(WAIT)
            .await
            .unwrap_or_else(|| panic!("{}: no offer: {:?}", self.id, self.paho.events))
    }

    pub async fn status(
        &mut self,
        campaign: &str,
        release: &str,
        state: UpdateState,
        offset: u64,
        reason: Option<&str>,
    ) {
        let s = Status {
            campaign_id: campaign.into(),
            release_id: release.into(),
            state,
            offset,
            reason: reason.map(str::to_string),
        };
        self.paho
            .publish(
                &topics::update_status(&self.id),
                &serde_json::to_string(&s).unwrap(),
            )
            .await;
    }

    pub async fn fetch(&mut self, release: &str, offset: u64, length: u32) {
        let f = Fetch {
            release_id: release.into(),
            offset,
            length,
        };
        self.paho
            .publish(
                &topics::update_fetch(&self.id),
                &serde_json::to_string(&f).unwrap(),
            )
            .await;
    }

    pub async fn chunk(&mut self, release: &str, limit: Duration) -> Option<(u64, Vec<u8>)> {
        let b = self
            .paho
            .bytes_on(&topics::update_chunk(&self.id, release), limit)
            .await?;
        let (off, bytes) = decode_chunk(&b).unwrap();
        Some((off, bytes.to_vec()))
    }

    /// Download the whole image over MQTT, chunk by chunk.
    pub async fn download(&mut self, offer: &Offer) -> Vec<u8> {
        let mut image = Vec::new();
        while (image.len() as u64) < offer.image_size {
            self.fetch(&offer.release_id, image.len() as u64, offer.chunk_size)
                .await;
            let (off, bytes) = self
                .chunk(&offer.release_id, WAIT)
                .await
                .unwrap_or_else(|| panic!("{}: no chunk at {}", self.id, image.len()));
            assert_eq!(off, image.len() as u64);
            assert!(!bytes.is_empty() && bytes.len() <= offer.chunk_size as usize);
            image.extend_from_slice(&bytes);
        }
        image
    }

    pub async fn challenge(&mut self, limit: Duration) -> Option<UpdateChallenge> {
        let m = self
            .paho
            .message_on(&topics::update_challenge(&self.id), limit)
            .await?;
        Some(serde_json::from_str(&m).unwrap())
    }

    pub async fn evidence(&mut self, campaign: &str, token: &[u8]) {
        let e = UpdateEvidence {
            campaign_id: campaign.into(),
            token: hex::encode(token),
        };
        self.paho
            .publish(
                &topics::update_evidence(&self.id),
                &serde_json::to_string(&e).unwrap(),
            )
            .await;
    }

    pub async fn result(&mut self) -> UpdateResult {
        let m = self
            .paho
            .message_on(&topics::update_result(&self.id), WAIT)
            .await
            .unwrap_or_else(|| panic!("{}: no result: {:?}", self.id, self.paho.events));
        serde_json::from_str(&m).unwrap()
    }

    pub async fn cancel(&mut self, limit: Duration) -> Option<Cancel> {
        let m = self
            .paho
            .message_on(&topics::update_cancel(&self.id), limit)
            .await?;
        Some(serde_json::from_str(&m).unwrap())
    }

    /// Everything up to the confirmation: accepted, MQTT download, installing, rebooting; the
    /// device now runs the downloaded image (returned).
    pub async fn install(&mut self, dev: &mut TestDevice, offer: &Offer) -> Vec<u8> {
        let (c, r) = (offer.campaign_id.clone(), offer.release_id.clone());
        self.status(&c, &r, UpdateState::Accepted, 0, None).await;
        let image = self.download(offer).await;
        self.status(&c, &r, UpdateState::Downloaded, image.len() as u64, None)
            .await;
        self.status(&c, &r, UpdateState::Installing, image.len() as u64, None)
            .await;
        self.status(&c, &r, UpdateState::Rebooting, image.len() as u64, None)
            .await;
        let (hash, signer, version) = measurement_of(&image);
        dev.app_hash = hash;
        dev.app_signer = signer;
        dev.app_version = version;
        image
    }

    /// Confirm and answer the challenge with an honest token.
    pub async fn confirm(&mut self, dev: &mut TestDevice, offer: &Offer) -> UpdateResult {
        let (c, r) = (offer.campaign_id.clone(), offer.release_id.clone());
        self.status(&c, &r, UpdateState::Confirmed, offer.image_size, None)
            .await;
        let ch = self
            .challenge(WAIT)
            .await
            .unwrap_or_else(|| panic!("{}: no challenge: {:?}", self.id, self.paho.events));
        assert_eq!(ch.campaign_id, c);
        let token = dev.token(&hex::decode(&ch.nonce).unwrap());
        self.evidence(&c, &token).await;
        self.result().await
    }

    /// The whole honest update.
    pub async fn complete(&mut self, dev: &mut TestDevice, offer: &Offer) -> UpdateResult {
        self.install(dev, offer).await;
        self.confirm(dev, offer).await
    }

    pub async fn quit(self) {
        self.paho.quit().await;
    }
}

/// The audit entry for `action` on `id` whose reason contains `needle`, once it is written
/// (up to 20 s).
pub async fn until_audited(
    f: &Fleet,
    action: &str,
    id: &str,
    needle: &str,
) -> castellan_store::AuditEntry {
    for _ in 0..80 {
        if let Some(e) = super::audit(&f.server)
            .await
            .into_iter()
            .find(|e| e.action == action && e.target == id && e.reason.contains(needle))
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "no {action} for {id} with {needle:?}: {:#?}",
        super::audit(&f.server).await
    );
}
