//! The operational link: the bridge connects with the device's LDevID and carries the update
//! protocol (fleet protocol, "Over-the-air updates") between the server and the QEMU device.
//!
//! ```text
//!  server ── down/update/offer ──▶ bridge ── `ota check` (envelope) ──▶ secure partition
//!                                         ◀── accepted | refused: <device's reason>
//!         ◀── up/update/status accepted | failed
//!  server ◀── up/update/fetch {offset, length} ── bridge      (repeated; progress every 10 %)
//!  server ── down/update/chunk/<release> offset ‖ bytes ──▶ bridge (staged in a host file)
//!         ◀── up/update/status downloading … downloaded
//!  bridge ── `ota install` (envelope + image) ──▶ secure partition: SUIT digest and size,
//!         MCUboot verification, install for trial → reset → bootloader swaps, verifies →
//!         trial boot → self-test → FWU accept
//!         ◀── up/update/status installing, rebooting, confirmed | failed | reverted
//!  server ── down/update/challenge {nonce} ──▶ bridge ── `attest <nonce>` ──▶ token (IAK)
//!         ◀── up/update/evidence {token}      ◀── down/update/result {updated, reason}
//! ```
//!
//! The bridge is not trusted with the update: it never decides whether a manifest or an image
//! is acceptable. Staged bytes are kept per release in `<state dir>/update/`, so a download
//! resumes at the stored offset after a disconnect or a restart of the bridge, when the offer
//! names the same manifest.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::protocol::{
    Cancel, Fetch, Offer, Status, UpdateChallenge, UpdateEvidence, UpdateResult, UpdateState,
    WireMessage as _, decode_chunk, topics,
};
use castellan_agent::identity::{IdentityFiles, open_key};
use castellan_agent::mqtt::{ConnectOptions, Message, MqttConnection};
use castellan_agent::{Backoff, Endpoint};
use tokio::time::Instant;

use crate::Logger;
use crate::device::{InstallEvent, InstallOutcome, QemuDevice};
use crate::error::{BridgeError, read_text, write};

/// How long the bridge waits for one chunk before asking again.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times it asks for the same chunk.
const CHUNK_RETRIES: u32 = 3;

/// Settings of the operational link.
#[derive(Clone)]
pub struct SessionConfig {
    /// The broker.
    pub mqtt: Endpoint,
    /// The bridge's state directory for the device (identity files, staged downloads).
    pub state_dir: PathBuf,
    /// Where progress goes.
    pub log: Logger,
    /// Set to stop the session (checked every half second).
    pub stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("mqtt", &self.mqtt)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// What a session did (for tests and the demo).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// MQTT connections made.
    pub connections: u32,
    /// Offers received.
    pub offers: u32,
    /// Every status the bridge reported, in order (`state` or `state: reason`).
    pub statuses: Vec<String>,
    /// Post-update tokens sent.
    pub evidence_sent: u32,
    /// The server's verdicts: (campaign, updated, reason).
    pub results: Vec<(String, bool, Option<String>)>,
}

/// Runs the operational link until `cfg.stop` is set, reconnecting with backoff when the
/// server or the network goes away. Returns what happened, or the first error that retrying
/// cannot fix.
pub async fn run(cfg: &SessionConfig, device: &QemuDevice) -> Result<SessionReport, BridgeError> {
    let mut report = SessionReport::default();
    let mut backoff = Backoff::protocol_default();
    while !cfg.stop.load(Ordering::SeqCst) {
        match session(cfg, device, &mut report, &mut backoff).await {
            Ok(()) => return Ok(report),
            Err(e) if e.is_transient() => {
                let delay = backoff.next_delay();
                (cfg.log)(&format!(
                    "link: {e}; reconnecting in {:.1} s",
                    delay.as_secs_f64()
                ));
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

async fn session(
    cfg: &SessionConfig,
    device: &QemuDevice,
    report: &mut SessionReport,
    backoff: &mut Backoff,
) -> Result<(), BridgeError> {
    let files = IdentityFiles::of(&cfg.state_dir);
    let record = files.record()?;
    if !files.is_onboarded() {
        return Err(BridgeError::InvalidInput(format!(
            "{} has no LDevID: onboard the device first",
            cfg.state_dir.display()
        )));
    }
    let id = record.serial.clone();
    let key = open_key(&record, &files, None, true)?;
    let chain = format!(
        "{}\n{}",
        read_text(&files.ldevid())?,
        read_text(&files.ldevid_chain())?
    );
    let tls = castellan_agent::tls::client_config(&read_text(&files.mqtt_ca())?, &chain, key)?;
    let offline = Message {
        topic: topics::status(&id),
        payload: br#"{"online":false}"#.to_vec(),
        qos: 1,
        retain: true,
    };
    // QEMU runs block the link for seconds at a time: a long keep-alive.
    let opts = ConnectOptions {
        client_id: id.clone(),
        keep_alive_secs: 600,
        will: Some(offline.clone()),
        connect_timeout: Duration::from_secs(10),
    };
    let mut conn = MqttConnection::connect(&cfg.mqtt, tls, &opts).await?;
    report.connections += 1;
    backoff.reset();
    (cfg.log)(&format!(
        "link: connected to {} with the LDevID as {id}",
        cfg.mqtt
    ));
    conn.subscribe(&topics::update_down_filter(&id), 1).await?;
    conn.publish(&Message {
        payload: br#"{"online":true}"#.to_vec(),
        ..offline.clone()
    })
    .await?;
    let mut link = Link {
        cfg,
        device,
        id,
        conn,
        report,
    };
    loop {
        if cfg.stop.load(Ordering::SeqCst) {
            let _ = link.conn.publish(&offline).await;
            link.conn.disconnect().await;
            return Ok(());
        }
        let Some(m) = link.conn.recv(Duration::from_millis(500)).await? else {
            continue;
        };
        link.dispatch(m).await?;
    }
}

/// One connection and what it serves.
struct Link<'a> {
    cfg: &'a SessionConfig,
    device: &'a QemuDevice,
    id: String,
    conn: MqttConnection,
    report: &'a mut SessionReport,
}

impl Link<'_> {
    fn log(&self, msg: &str) {
        (self.cfg.log)(msg);
    }

    async fn dispatch(&mut self, m: Message) -> Result<(), BridgeError> {
        let id = self.id.clone();
        if m.topic == topics::update_offer(&id) {
            let offer = Offer::parse(&m.payload)?;
            self.report.offers += 1;
            self.offer(&offer).await
        } else if m.topic == topics::update_challenge(&id) {
            let c = UpdateChallenge::parse(&m.payload)?;
            self.challenge(&c).await
        } else if m.topic == topics::update_result(&id) {
            let r = UpdateResult::parse(&m.payload)?;
            self.log(&format!(
                "update: the server says campaign {}: {}{}",
                r.campaign_id,
                if r.updated { "updated" } else { "NOT updated" },
                r.reason
                    .as_deref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            ));
            self.report
                .results
                .push((r.campaign_id, r.updated, r.reason));
            Ok(())
        } else if m.topic == topics::update_cancel(&id) {
            let c = Cancel::parse(&m.payload)?;
            self.log(&format!(
                "update: campaign {} cancelled (nothing in progress)",
                c.campaign_id
            ));
            Ok(())
        } else {
            Ok(())
        }
    }

    async fn status(
        &mut self,
        offer: &Offer,
        state: UpdateState,
        offset: u64,
        reason: Option<String>,
    ) -> Result<(), BridgeError> {
        let s = Status {
            campaign_id: offer.campaign_id.clone(),
            release_id: offer.release_id.clone(),
            state,
            offset,
            reason: reason.clone(),
        };
        self.conn
            .publish(&Message::qos1(
                topics::update_status(&self.id),
                s.to_payload(),
            ))
            .await?;
        let text = match &reason {
            Some(r) => format!("{}: {r}", state.as_str()),
            None => state.as_str().to_string(),
        };
        if state == UpdateState::Downloading && offer.image_size > 0 {
            self.log(&format!(
                "update: reported downloading {offset} of {} bytes ({}%)",
                offer.image_size,
                offset * 100 / offer.image_size
            ));
        } else {
            self.log(&format!("update: reported {text}"));
        }
        self.report.statuses.push(text);
        Ok(())
    }

    async fn offer(&mut self, offer: &Offer) -> Result<(), BridgeError> {
        self.log(&format!(
            "update: offer of release {} ({}, {} bytes) in campaign {}",
            offer.release_id, offer.version, offer.image_size, offer.campaign_id
        ));
        let envelope = match offer.manifest_bytes() {
            Ok(e) => e,
            Err(e) => {
                return self
                    .status(offer, UpdateState::Failed, 0, Some(e.to_string()))
                    .await;
            }
        };
        // The secure partition authenticates the manifest before a byte is downloaded.
        let d = self.device.clone();
        let env = envelope.clone();
        let verdict = tokio::task::spawn_blocking(move || d.update_check(&env))
            .await
            .map_err(|e| BridgeError::Protocol(format!("the QEMU run failed: {e}")))??;
        let accepted = match verdict {
            Ok(a) => a,
            Err(why) if already_installed(&why) => {
                // The device runs this release already (its earlier report was lost, or the
                // bridge restarted before the post-update attestation): say so; the server
                // believes only the attestation that follows.
                Staged::remove(&self.cfg.state_dir, &offer.release_id);
                return self
                    .status(
                        offer,
                        UpdateState::Confirmed,
                        offer.image_size,
                        Some(format!("already installed ({why})")),
                    )
                    .await;
            }
            Err(why) => {
                return self.status(offer, UpdateState::Failed, 0, Some(why)).await;
            }
        };
        self.log(&format!(
            "update: the secure partition accepted manifest sequence {} ({} bytes)",
            accepted.sequence, accepted.size
        ));
        let staged = Staged::open(&self.cfg.state_dir, &offer.release_id, &envelope)?;
        let resumed = staged.len();
        self.status(
            offer,
            UpdateState::Accepted,
            resumed,
            (resumed > 0).then(|| format!("resuming at byte {resumed}")),
        )
        .await?;
        let Some(image) = self.download(offer, staged, accepted.size).await? else {
            return Ok(());
        };
        self.status(offer, UpdateState::Downloaded, image.len() as u64, None)
            .await?;
        self.install(offer, &envelope, image).await
    }

    /// Downloads the image over MQTT chunks; `None` when the download was abandoned (cancel,
    /// or a failure already reported).
    async fn download(
        &mut self,
        offer: &Offer,
        mut staged: Staged,
        size: u64,
    ) -> Result<Option<Vec<u8>>, BridgeError> {
        // The manifest's size is the limit (the device would refuse more anyway).
        if offer.image_size != size {
            self.log(&format!(
                "update: the offer says {} bytes, the authenticated manifest {size}: using the manifest's",
                offer.image_size
            ));
        }
        let chunk_topic = topics::update_chunk(&self.id, &offer.release_id);
        let want = offer.chunk_size.max(1);
        let step = (size / 10).max(1);
        let mut next_report = staged.len() - staged.len() % step + step;
        while staged.len() < size {
            let offset = staged.len();
            let length = u32::try_from((size - offset).min(u64::from(want))).unwrap_or(want);
            let mut got = None;
            for _ in 0..CHUNK_RETRIES {
                let fetch = Fetch {
                    release_id: offer.release_id.clone(),
                    offset,
                    length,
                };
                self.conn
                    .publish(&Message::qos1(
                        topics::update_fetch(&self.id),
                        fetch.to_payload(),
                    ))
                    .await?;
                match self.wait_chunk(offer, &chunk_topic, offset).await? {
                    ChunkWait::Bytes(b) => {
                        got = Some(b);
                        break;
                    }
                    ChunkWait::Cancelled => {
                        self.log("update: campaign cancelled during the download; stopped");
                        return Ok(None);
                    }
                    ChunkWait::TimedOut => {}
                }
            }
            let Some(bytes) = got else {
                self.status(
                    offer,
                    UpdateState::Failed,
                    offset,
                    Some(format!("no chunk at offset {offset} from the server")),
                )
                .await?;
                return Ok(None);
            };
            if bytes.is_empty() {
                self.status(
                    offer,
                    UpdateState::Failed,
                    offset,
                    Some(format!(
                        "the server's image ends at {offset} bytes; the manifest names {size}"
                    )),
                )
                .await?;
                return Ok(None);
            }
            let room = (size - offset) as usize;
            staged.append(&bytes[..bytes.len().min(room)])?;
            if staged.len() >= next_report && staged.len() < size {
                let n = staged.len();
                self.status(offer, UpdateState::Downloading, n, None)
                    .await?;
                next_report = n - n % step + step;
            }
        }
        Ok(Some(staged.into_bytes()?))
    }

    async fn wait_chunk(
        &mut self,
        offer: &Offer,
        chunk_topic: &str,
        offset: u64,
    ) -> Result<ChunkWait, BridgeError> {
        let deadline = Instant::now() + CHUNK_TIMEOUT;
        let cancel_topic = topics::update_cancel(&self.id);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(ChunkWait::TimedOut);
            }
            let Some(m) = self.conn.recv(left).await? else {
                continue;
            };
            if m.topic == chunk_topic {
                match decode_chunk(&m.payload) {
                    Some((o, bytes)) if o == offset => return Ok(ChunkWait::Bytes(bytes.to_vec())),
                    // A late answer to an earlier request: ignore it.
                    _ => continue,
                }
            }
            if m.topic == cancel_topic
                && Cancel::parse(&m.payload).is_ok_and(|c| c.campaign_id == offer.campaign_id)
            {
                return Ok(ChunkWait::Cancelled);
            }
            // Anything else during a download (a second offer, say) waits for the next one.
        }
    }

    async fn install(
        &mut self,
        offer: &Offer,
        envelope: &[u8],
        image: Vec<u8>,
    ) -> Result<(), BridgeError> {
        self.status(offer, UpdateState::Installing, image.len() as u64, None)
            .await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let d = self.device.clone();
        let env = envelope.to_vec();
        let size = image.len() as u64;
        let mut job = tokio::task::spawn_blocking(move || {
            d.update_install(&env, &image, &mut |e| {
                let _ = tx.send(e);
            })
        });
        let outcome = loop {
            tokio::select! {
                r = &mut job => {
                    break r.map_err(|e| BridgeError::Protocol(format!("the QEMU run failed: {e}")))??;
                }
                Some(e) = rx.recv() => match e {
                    InstallEvent::Rebooting => {
                        self.status(offer, UpdateState::Rebooting, size, None).await?;
                    }
                    InstallEvent::Trial { version } => {
                        self.log(&format!("update: the device runs {version} on trial (self-test)"));
                    }
                    InstallEvent::Writing => {}
                },
            }
        };
        // Events the run sent just before it ended.
        while let Ok(e) = rx.try_recv() {
            if e == InstallEvent::Rebooting {
                self.status(offer, UpdateState::Rebooting, size, None)
                    .await?;
            }
        }
        match outcome {
            InstallOutcome::Confirmed { version } => {
                Staged::remove(&self.cfg.state_dir, &offer.release_id);
                self.status(
                    offer,
                    UpdateState::Confirmed,
                    size,
                    Some(format!("running {version}")),
                )
                .await
            }
            InstallOutcome::Refused(why) => {
                Staged::remove(&self.cfg.state_dir, &offer.release_id);
                self.status(offer, UpdateState::Failed, size, Some(why))
                    .await
            }
            InstallOutcome::Reverted(why) => {
                Staged::remove(&self.cfg.state_dir, &offer.release_id);
                self.status(offer, UpdateState::Reverted, size, Some(why))
                    .await
            }
        }
    }

    async fn challenge(&mut self, c: &UpdateChallenge) -> Result<(), BridgeError> {
        let nonce = c.nonce_bytes()?;
        let d = self.device.clone();
        let token = tokio::task::spawn_blocking(move || d.attest(&nonce))
            .await
            .map_err(|e| BridgeError::Protocol(format!("the QEMU run failed: {e}")))??;
        let ev = UpdateEvidence {
            campaign_id: c.campaign_id.clone(),
            token: hex::encode(&token),
        };
        self.conn
            .publish(&Message::qos1(
                topics::update_evidence(&self.id),
                ev.to_payload(),
            ))
            .await?;
        self.report.evidence_sent += 1;
        self.log(&format!(
            "update: post-update token ({} bytes, made by the secure partition over the server's nonce) sent",
            token.len()
        ));
        Ok(())
    }
}

/// True when the device refused a manifest because it is the release it already runs
/// (`manifest sequence N is not newer than the installed N`).
fn already_installed(reason: &str) -> bool {
    let Some(rest) = reason.strip_prefix("manifest sequence ") else {
        return false;
    };
    match rest.split_once(" is not newer than the installed ") {
        Some((offered, installed)) => offered == installed && !offered.is_empty(),
        None => false,
    }
}

enum ChunkWait {
    Bytes(Vec<u8>),
    Cancelled,
    TimedOut,
}

/// The bytes of one release staged on the host while they download: `<state>/update/<release>.
/// part`, with the envelope they belong to beside it (`.suit`): a different manifest under the
/// same release id starts over.
struct Staged {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Staged {
    fn paths(state_dir: &std::path::Path, release_id: &str) -> (PathBuf, PathBuf) {
        let safe: String = release_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = state_dir.join("update");
        (
            dir.join(format!("{safe}.part")),
            dir.join(format!("{safe}.suit")),
        )
    }

    fn open(
        state_dir: &std::path::Path,
        release_id: &str,
        envelope: &[u8],
    ) -> Result<Staged, BridgeError> {
        let (part, suit) = Self::paths(state_dir, release_id);
        let same = std::fs::read(&suit).is_ok_and(|e| e == envelope);
        let bytes = if same {
            std::fs::read(&part).unwrap_or_default()
        } else {
            write(&suit, envelope)?;
            write(&part, &[])?;
            Vec::new()
        };
        Ok(Staged { path: part, bytes })
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn append(&mut self, data: &[u8]) -> Result<(), BridgeError> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|source| BridgeError::Io {
                path: self.path.clone(),
                source,
            })?;
        f.write_all(data).map_err(|source| BridgeError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    fn into_bytes(self) -> Result<Vec<u8>, BridgeError> {
        Ok(self.bytes)
    }

    fn remove(state_dir: &std::path::Path, release_id: &str) {
        let (part, suit) = Self::paths(state_dir, release_id);
        let _ = std::fs::remove_file(part);
        let _ = std::fs::remove_file(suit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_download_resumes_only_for_the_same_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Staged::open(dir.path(), "an505-v1-2", b"env-a").unwrap();
        assert_eq!(s.len(), 0);
        s.append(b"hello").unwrap();
        // The bridge restarts: the same manifest resumes at the stored offset.
        let s = Staged::open(dir.path(), "an505-v1-2", b"env-a").unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s.into_bytes().unwrap(), b"hello");
        // Another manifest under the same release id starts over.
        let s = Staged::open(dir.path(), "an505-v1-2", b"env-b").unwrap();
        assert_eq!(s.len(), 0);
        Staged::remove(dir.path(), "an505-v1-2");
        assert!(!dir.path().join("update/an505-v1-2.part").exists());
    }

    #[test]
    fn only_the_installed_release_counts_as_already_installed() {
        assert!(already_installed(
            "manifest sequence 4 is not newer than the installed 4"
        ));
        // An older release (a replayed offer) is a refusal, not a success.
        assert!(!already_installed(
            "manifest sequence 3 is not newer than the installed 4"
        ));
        assert!(!already_installed(
            "the manifest is for another device class"
        ));
    }

    #[test]
    fn release_ids_cannot_escape_the_state_directory() {
        let (part, _) = Staged::paths(std::path::Path::new("/s"), "../../etc/passwd");
        assert_eq!(part, PathBuf::from("/s/update/.._.._etc_passwd.part"));
    }
}
