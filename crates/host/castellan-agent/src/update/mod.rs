//! The agent's update client (fleet protocol, "Over-the-air updates", device side): it moves
//! bytes; the secure services decide. Every check of the manifest and the payload happens in
//! the secure world (`castellan_services::update`); the agent carries offers, chunks and
//! reports, runs the self-test of a trial image, and reboots.
//!
//! ```text
//!  offer ─▶ update_begin ──refused──▶ status failed (reason) — before any byte moves
//!             │ accepted (resume offset)                 journal: identity/update.json
//!             ▼
//!  MQTT: fetch × window ─▶ chunk ─▶ update_write      HTTPS: GET Range ─▶ update_write
//!             │ downloading (every 10 %) · downloaded · installing
//!             ▼
//!  update_finish (SUIT + MCUboot + install) ─▶ rebooting ─▶ power cycle
//!  boot: trial image ─▶ connected again + payload self-test ─▶ fwu_accept ─▶ confirmed
//!                                   └─ fails: no accept, reboot ─▶ bootloader reverts ─▶ reverted
//!  challenge ─▶ evidence (token over the nonce) · result ─▶ logged · cancel ─▶ update_cancel
//! ```
//!
//! The download state lives in the secure services (trusted storage): after a disconnect or
//! a restart the same offer (the server offers again, or the journal's copy) continues at the
//! offset `update_begin` gives. The journal only remembers which campaign the device works for,
//! so that reports after a reboot name it.

pub mod device;
pub mod https;
mod journal;
pub mod protocol;
mod transfer;
pub mod tuf;
mod tuf_mqtt;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use device::{Installed, UpdateDevice, UpdateState};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::agent::Logger;
use crate::error::{AgentError, read_text, write};
use crate::mqtt::{Message, MqttConnection};
use crate::secure::Refused;
use https::RangeClient;
use protocol::{Cancel, Challenge, Evidence, Fetch, Offer, State, Status, UpdateResult};

/// Fetches in flight over MQTT.
pub const WINDOW: u64 = 4;
/// Bytes per HTTPS range request.
pub const HTTPS_RANGE: u64 = 64 * 1024;
/// A fetch window with no progress for this long is requested again.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The bytes an application image carries when its self-test must fail (tests and the demo
/// make a bad release this way).
pub const SELFTEST_FAIL_MARKER: &[u8] = b"CASTELLAN-SELFTEST-FAIL";

/// What the session must do after an update step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Carry on.
    Continue,
    /// Power cycle the device (into the trial image, or to revert it).
    Reboot,
}

/// A download in progress (this power-on).
#[derive(Debug)]
struct Download {
    offer: Offer,
    size: u64,
    /// Bytes the secure services accepted.
    written: u64,
    /// Next offset to ask for over MQTT.
    requested: u64,
    /// Chunks that arrived ahead of `written`.
    ahead: BTreeMap<u64, Vec<u8>>,
    last_progress: Instant,
    /// Last 10 % step reported.
    decile: u64,
    /// HTTPS is used while this is set (cleared on the first HTTPS failure: MQTT takes over).
    https: bool,
}

/// Outcomes counted for the agent's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Updates confirmed.
    pub confirmed: u32,
    /// Updates refused or failed.
    pub failed: u32,
    /// Updates reverted by the bootloader.
    pub reverted: u32,
    /// Offers received.
    pub offers: u32,
    /// Attestation tokens sent as evidence of an update.
    pub attested: u32,
}

/// The update client of one device run (the agent's, the QEMU bridge's).
pub struct Updater {
    device_id: String,
    journal: PathBuf,
    log: Logger,
    ca_pem: String,
    http: Option<RangeClient>,
    active: Option<Download>,
    /// Campaigns whose update was confirmed in this run, with their manifest (a late offer of
    /// the same is answered `confirmed` again, not refused).
    confirmed: Vec<(String, String)>,
    /// The TUF check of offers, when the fleet keeps a TUF repository.
    tuf: Option<tuf::TufCheck>,
    /// Outcomes so far.
    pub counts: Counts,
    /// Every status reported, in order (`state` or `state: reason`).
    pub reported: Vec<String>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The text a `failed` report carries: the secure services' typed refusal.
fn reason(r: &Refused) -> String {
    r.reason.clone()
}

impl Updater {
    /// The client of device `device_id`, its journal at `journal`, the fleet's CA bundle (for
    /// HTTPS downloads) `ca_pem`.
    pub fn new(device_id: &str, journal: PathBuf, ca_pem: String, log: Logger) -> Self {
        Updater {
            device_id: device_id.to_string(),
            journal,
            log,
            ca_pem,
            http: None,
            active: None,
            confirmed: Vec::new(),
            tuf: None,
            counts: Counts::default(),
            reported: Vec::new(),
        }
    }

    /// Check every new offer against the fleet's TUF metadata first.
    pub fn with_tuf(mut self, check: Option<tuf::TufCheck>) -> Self {
        self.tuf = check;
        self
    }

    /// The topic filter of the TUF repository's answers over MQTT, if offers are checked so.
    pub fn tuf_filter(&self) -> Option<String> {
        self.tuf.as_ref().and_then(tuf::TufCheck::filter)
    }

    /// The topic filter the session subscribes to.
    pub fn filter(&self) -> String {
        format!("dev/{}/down/update/#", self.device_id)
    }

    /// True while a transfer wants the session loop to come back at once.
    pub fn busy(&self) -> bool {
        self.active.as_ref().is_some_and(|d| d.https)
    }

    /// The device was power cycled: the services' RAM state of a download is gone (its stored
    /// progress is not).
    pub fn powered_off(&mut self) {
        self.active = None;
    }

    /// Right after (re)connecting, before other messages: finish what a reboot started (trial
    /// image: self-test, accept, `confirmed`; reverted or refused: report), or continue a
    /// download.
    pub async fn on_connect(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
    ) -> Result<Next, AgentError> {
        let status = world.update_status()?;
        let journal = self.load_journal();
        match status.state {
            UpdateState::Trial => {
                if let Err(why) = world.self_test() {
                    (self.log)(&format!(
                        "update: the trial image fails its self-test ({why}): not accepted, \
                         rebooting so that the bootloader reverts it"
                    ));
                    return Ok(Next::Reboot);
                }
                world.accept()?;
                // Remember the acceptance before reporting it: if the report is lost (the
                // connection drops), the next connection reports it again (Idle branch).
                if let Some(j) = &journal {
                    self.write_journal(&j.offer, "confirmed");
                }
                self.counts.confirmed += 1;
                (self.log)(&format!(
                    "update: trial image passed its self-test (connected, firmware {}); \
                     accepted, manifest sequence {} stored",
                    world.firmware_version(),
                    status.sequence.unwrap_or_default()
                ));
                if let Some(j) = journal {
                    let (c, r) = (j.offer.campaign_id, j.offer.release_id);
                    let size = j.offer.image_size;
                    self.report(conn, &c, &r, State::Confirmed, size, None)
                        .await?;
                    self.confirmed.push((c, j.offer.manifest));
                }
                self.clear_journal();
            }
            UpdateState::Reverted => {
                self.counts.reverted += 1;
                let why = "the new image was not accepted (its self-test failed or did not \
                           complete); the previous image runs again";
                self.close_failed(conn, world, journal.is_some(), State::Reverted, why)
                    .await?;
            }
            UpdateState::Failed { error } => {
                self.counts.failed += 1;
                let why = format!("the bootloader did not install the update (PSA status {error})");
                self.close_failed(conn, world, journal.is_some(), State::Failed, &why)
                    .await?;
            }
            UpdateState::Downloading { received, .. } => {
                if let Some(j) = journal {
                    (self.log)(&format!(
                        "update: resuming the download of {} at byte {received}",
                        j.offer.release_id
                    ));
                    return self.offer(conn, world, j.offer).await;
                }
            }
            UpdateState::Staged | UpdateState::Rejected => return Ok(Next::Reboot),
            UpdateState::Idle => {
                if let Some(j) = journal.filter(|j| j.phase == "confirmed") {
                    // Accepted on an earlier connection whose `confirmed` report may be lost.
                    let (c, r) = (j.offer.campaign_id, j.offer.release_id);
                    let size = j.offer.image_size;
                    self.report(conn, &c, &r, State::Confirmed, size, None)
                        .await?;
                    self.confirmed.push((c, j.offer.manifest));
                    self.clear_journal();
                } else if self.load_journal().is_some() {
                    self.clear_journal();
                }
            }
        }
        Ok(Next::Continue)
    }

    /// Reports how an installed update ended (`reverted`, or `failed` by the bootloader) for
    /// the journal's campaign, and forgets it.
    async fn close_failed(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
        report: bool,
        state: State,
        why: &str,
    ) -> Result<(), AgentError> {
        (self.log)(&format!("update: {why}"));
        if let (true, Some(j)) = (report, self.load_journal()) {
            let (c, r) = (j.offer.campaign_id, j.offer.release_id);
            self.report(conn, &c, &r, state, 0, Some(why.to_string()))
                .await?;
        }
        world.cancel()?.map_err(|r| r.to_error())?;
        self.clear_journal();
        Ok(())
    }

    /// A message on `dev/<id>/down/update/…`.
    pub async fn on_message(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
        m: &Message,
    ) -> Result<Next, AgentError> {
        let prefix = format!("dev/{}/down/update/", self.device_id);
        let Some(kind) = m.topic.strip_prefix(&prefix) else {
            return Ok(Next::Continue);
        };
        if let Some(release) = kind.strip_prefix("chunk/") {
            return self.on_chunk(conn, world, release, &m.payload).await;
        }
        let bad = |what: &str, e: serde_json::Error| {
            AgentError::protocol(format!("update {what} from the server"), e)
        };
        match kind {
            "offer" => match serde_json::from_slice::<Offer>(&m.payload) {
                Ok(offer) => {
                    self.counts.offers += 1;
                    self.offer(conn, world, offer).await
                }
                Err(e) => {
                    (self.log)(&bad("offer", e).to_string());
                    Ok(Next::Continue)
                }
            },
            "challenge" => {
                match serde_json::from_slice::<Challenge>(&m.payload) {
                    Ok(c) => self.challenge(conn, world, c).await?,
                    Err(e) => (self.log)(&bad("challenge", e).to_string()),
                }
                Ok(Next::Continue)
            }
            "result" => {
                match serde_json::from_slice::<UpdateResult>(&m.payload) {
                    Ok(r) => (self.log)(&format!(
                        "update result for campaign {}: {}{}",
                        r.campaign_id,
                        if r.updated { "updated" } else { "not updated" },
                        r.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                    )),
                    Err(e) => (self.log)(&bad("result", e).to_string()),
                }
                Ok(Next::Continue)
            }
            "cancel" => {
                match serde_json::from_slice::<Cancel>(&m.payload) {
                    Ok(c) => self.cancel(world, &c.campaign_id)?,
                    Err(e) => (self.log)(&bad("cancel", e).to_string()),
                }
                Ok(Next::Continue)
            }
            _ => Ok(Next::Continue),
        }
    }

    /// A compromised application's answer to an offer (`m`, when it is one): a failure
    /// reported without the secure services ever seeing it. True when `m` was an offer.
    pub(crate) async fn refuse_offer(
        &mut self,
        conn: &mut MqttConnection,
        m: &Message,
    ) -> Result<bool, AgentError> {
        if m.topic != format!("dev/{}/down/update/offer", self.device_id) {
            return Ok(false);
        }
        let Ok(offer) = serde_json::from_slice::<Offer>(&m.payload) else {
            return Ok(false);
        };
        self.counts.offers += 1;
        self.counts.failed += 1;
        let why = "refused by the application".to_string();
        self.report(
            conn,
            &offer.campaign_id,
            &offer.release_id,
            State::Failed,
            0,
            Some(why),
        )
        .await?;
        Ok(true)
    }

    /// Between messages: the next HTTPS range, or fetches again after a silent window.
    pub async fn tick(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
    ) -> Result<Next, AgentError> {
        let Some(d) = self.active.as_mut() else {
            return Ok(Next::Continue);
        };
        if d.https {
            let src = d.offer.https.clone();
            let (start, len) = (d.written, HTTPS_RANGE.min(d.size - d.written));
            let got = match (src, self.http.clone()) {
                (Some(src), Some(http)) => http.get(&src, start, len).await,
                _ => Err(AgentError::protocol_state("no HTTPS source")),
            };
            return match got {
                Ok(bytes) if !bytes.is_empty() => {
                    self.accept_bytes(conn, world, start, bytes).await
                }
                Ok(_) => self.https_failed(conn, "an empty range").await,
                Err(e) => self.https_failed(conn, &e.to_string()).await,
            };
        }
        if d.last_progress.elapsed() >= FETCH_TIMEOUT {
            d.requested = d.written;
            d.ahead.clear();
            d.last_progress = Instant::now();
            (self.log)(&format!(
                "update: no chunk for {} s, asking again from byte {}",
                FETCH_TIMEOUT.as_secs(),
                d.written
            ));
            self.request_more(conn).await?;
        }
        Ok(Next::Continue)
    }

    // --- steps ---------------------------------------------------------------------------

    async fn offer(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
        offer: Offer,
    ) -> Result<Next, AgentError> {
        if let Some(d) = self.active.as_mut()
            && d.offer.campaign_id == offer.campaign_id
            && d.offer.manifest == offer.manifest
        {
            // Offered again (a reconnect): a fresh token, and the window asked again.
            d.https = offer.https.is_some();
            d.offer = offer;
            d.requested = d.written;
            d.ahead.clear();
            d.last_progress = Instant::now();
            self.save_journal("downloading");
            return self.start_transfer(conn).await;
        }
        if self
            .confirmed
            .iter()
            .any(|(c, m)| *c == offer.campaign_id && *m == offer.manifest)
        {
            let (c, r) = (offer.campaign_id.clone(), offer.release_id.clone());
            self.report(conn, &c, &r, State::Confirmed, offer.image_size, None)
                .await?;
            return Ok(Next::Continue);
        }
        let (campaign, release) = (offer.campaign_id.clone(), offer.release_id.clone());
        let Ok(manifest) = hex::decode(offer.manifest.trim()) else {
            let why = "the offer's manifest is not hex".to_string();
            self.report(conn, &campaign, &release, State::Failed, 0, Some(why))
                .await?;
            return Ok(Next::Continue);
        };
        if let Some(check) = &self.tuf
            && let Err(why) = check
                .judge(conn, &self.log, &campaign, &release, &manifest)
                .await
        {
            // Refused before the secure services see the offer: no byte moves.
            self.counts.failed += 1;
            let why = why.to_string();
            self.report(conn, &campaign, &release, State::Failed, 0, Some(why))
                .await?;
            return Ok(Next::Continue);
        }
        let now = now_unix();
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        match world.begin(&manifest, now)? {
            Err(Refused {
                not_newer: Some((offered, installed)),
                ..
            }) if offered == installed => {
                // The device runs this release already (its report was lost, or the server
                // restarted): say so; the server's challenge and the measurement decide.
                (self.log)(&format!(
                    "update {release} of campaign {campaign}: manifest sequence {offered} is \
                     the installed one; reporting it confirmed"
                ));
                let why = format!("already installed (manifest sequence {offered})");
                self.report(
                    conn,
                    &campaign,
                    &release,
                    State::Confirmed,
                    offer.image_size,
                    Some(why),
                )
                .await?;
                Ok(Next::Continue)
            }
            Err(e) => {
                self.counts.failed += 1;
                let why = reason(&e);
                (self.log)(&format!(
                    "update {release} of campaign {campaign} refused before download: {why}"
                ));
                if self
                    .load_journal()
                    .is_some_and(|j| j.offer.campaign_id == campaign)
                {
                    self.clear_journal();
                }
                self.report(conn, &campaign, &release, State::Failed, 0, Some(why))
                    .await?;
                Ok(Next::Continue)
            }
            Ok(plan) => {
                (self.log)(&format!(
                    "update {release} (campaign {campaign}): manifest sequence {} accepted by \
                     the secure services, {} bytes, {} at byte {}{}",
                    plan.sequence,
                    plan.image_size,
                    if plan.resume_offset > 0 {
                        "resuming"
                    } else {
                        "starting"
                    },
                    plan.resume_offset,
                    if offer.https.is_some() {
                        " over HTTPS"
                    } else {
                        " over MQTT"
                    }
                ));
                let size = u64::from(plan.image_size);
                let written = u64::from(plan.resume_offset);
                self.active = Some(Download {
                    https: offer.https.is_some(),
                    offer,
                    size,
                    written,
                    requested: written,
                    ahead: BTreeMap::new(),
                    last_progress: Instant::now(),
                    decile: written * 10 / size.max(1),
                });
                self.save_journal("downloading");
                self.report(conn, &campaign, &release, State::Accepted, written, None)
                    .await?;
                if written >= size {
                    return self.finish(conn, world).await;
                }
                self.start_transfer(conn).await
            }
        }
    }

    /// The whole image is staged: verify and install it, then reboot into it.
    async fn finish(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
    ) -> Result<Next, AgentError> {
        let Some(d) = self.active.take() else {
            return Ok(Next::Continue);
        };
        let (c, r, size) = (
            d.offer.campaign_id.clone(),
            d.offer.release_id.clone(),
            d.size,
        );
        self.active = Some(d);
        self.report(conn, &c, &r, State::Downloaded, size, None)
            .await?;
        self.report(conn, &c, &r, State::Installing, size, None)
            .await?;
        match world.finish()? {
            Ok(Installed::Reboot) => {
                self.save_journal("rebooting");
                self.active = None;
                (self.log)(&format!(
                    "update {r}: verified (SUIT digest and size, MCUboot signature) and installed \
                     for a trial run; rebooting"
                ));
                self.report(conn, &c, &r, State::Rebooting, size, None)
                    .await?;
                Ok(Next::Reboot)
            }
            Ok(Installed::Confirmed { version }) => {
                // The device rebooted, tested and accepted the image on its own.
                let manifest = self.active.take().map(|d| d.offer.manifest);
                self.report(conn, &c, &r, State::Rebooting, size, None)
                    .await?;
                self.counts.confirmed += 1;
                (self.log)(&format!("update {r}: confirmed, the device runs {version}"));
                self.report(
                    conn,
                    &c,
                    &r,
                    State::Confirmed,
                    size,
                    Some(format!("running {version}")),
                )
                .await?;
                self.confirmed.extend(manifest.map(|m| (c, m)));
                self.clear_journal();
                Ok(Next::Continue)
            }
            Ok(Installed::Reverted(why)) => {
                self.active = None;
                self.counts.reverted += 1;
                (self.log)(&format!("update {r}: reverted: {why}"));
                self.report(conn, &c, &r, State::Reverted, size, Some(why))
                    .await?;
                self.clear_journal();
                Ok(Next::Continue)
            }
            Err(e) => {
                self.fail(conn, world, &reason(&e)).await?;
                Ok(Next::Continue)
            }
        }
    }

    /// Reports `failed`, drops the download in the secure services and the journal.
    async fn fail(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
        why: &str,
    ) -> Result<(), AgentError> {
        let Some(d) = self.active.take() else {
            return Ok(());
        };
        self.counts.failed += 1;
        (self.log)(&format!("update {} failed: {why}", d.offer.release_id));
        // The services dropped a refused payload already; a refused block leaves a download
        // to abandon.
        let _ = world.cancel();
        self.clear_journal();
        let (c, r) = (d.offer.campaign_id, d.offer.release_id);
        self.report(
            conn,
            &c,
            &r,
            State::Failed,
            d.written,
            Some(why.to_string()),
        )
        .await
    }

    fn cancel(&mut self, world: &impl UpdateDevice, campaign: &str) -> Result<(), AgentError> {
        let ours = self
            .active
            .as_ref()
            .is_some_and(|d| d.offer.campaign_id == campaign)
            || self
                .load_journal()
                .is_some_and(|j| j.offer.campaign_id == campaign);
        if !ours {
            return Ok(());
        }
        self.active = None;
        match world.cancel()? {
            Ok(()) => {
                self.clear_journal();
                (self.log)(&format!(
                    "update: campaign {campaign} cancelled by the server; download discarded"
                ));
            }
            Err(e) => (self.log)(&format!(
                "update: campaign {campaign} cancelled by the server, but: {}",
                reason(&e)
            )),
        }
        Ok(())
    }

    async fn challenge(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
        c: Challenge,
    ) -> Result<(), AgentError> {
        let Ok(nonce) = hex::decode(&c.nonce) else {
            (self.log)("update: the challenge nonce is not hex");
            return Ok(());
        };
        let token = world.attest(&nonce);
        let token = match token {
            Ok(t) => t,
            Err(e) => {
                (self.log)(&format!("update: no attestation token: {e}"));
                return Ok(());
            }
        };
        let evidence = Evidence {
            campaign_id: c.campaign_id.clone(),
            token: hex::encode(&token),
        };
        let body =
            serde_json::to_vec(&evidence).map_err(|e| AgentError::protocol("evidence", e))?;
        conn.publish(&Message::qos1(
            format!("dev/{}/up/update/evidence", self.device_id),
            body,
        ))
        .await?;
        self.counts.attested += 1;
        (self.log)(&format!(
            "update: attestation token ({} bytes) over the server's nonce sent for campaign {}",
            token.len(),
            c.campaign_id
        ));
        Ok(())
    }

    async fn report(
        &mut self,
        conn: &mut MqttConnection,
        campaign: &str,
        release: &str,
        state: State,
        offset: u64,
        reason: Option<String>,
    ) -> Result<(), AgentError> {
        self.reported.push(match &reason {
            Some(why) => format!("{}: {why}", state.as_str()),
            None => state.as_str().to_string(),
        });
        let status = Status {
            campaign_id: campaign.to_string(),
            release_id: release.to_string(),
            state,
            offset,
            reason,
        };
        let body = serde_json::to_vec(&status).map_err(|e| AgentError::protocol("status", e))?;
        conn.publish(&Message::qos1(
            format!("dev/{}/up/update/status", self.device_id),
            body,
        ))
        .await
    }
}
