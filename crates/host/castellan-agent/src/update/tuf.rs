//! The TUF check of an offer: before the secure services see a manifest, the agent refreshes
//! the fleet's TUF metadata and checks that the offered SUIT envelope is byte for byte the one
//! the device class's targets role lists for the release (`<class>/<release>.suit`). A refusal
//! is reported `failed` with the reason, before any byte of the image moves.
//!
//! ```text
//!  offer ─▶ TUF refresh (root chain, timestamp, snapshot, targets, <class>) ─▶ envelope listed?
//!             └─ no, or stale / rolled back / badly signed metadata ─▶ failed (reason)
//!                 yes ─▶ update_begin (SUIT in the secure services) ─▶ …
//! ```
//!
//! The trusted metadata lives in `identity/tuf/` (its `root.json` is the device's TUF trust
//! anchor, from the factory). The repository is reached over HTTPS (verified against the
//! fleet's CA bundle) when a metadata URL is given, else over the session's MQTT connection
//! (`dev/<id>/{up,down}/tuf/…`, see `tuf_mqtt`), each fetch bounded alike.
//!
//! This is the one TUF check of every fleet device: the agent's update client and the QEMU
//! device's host bridge (`castellan-bridge`, through the same [`crate::update::Updater`]) both
//! hold a [`TufCheck`] made from the device's trusted root, a transport (HTTPS or the device's
//! MQTT session) and its class, and ask it about each offered envelope; the answer is
//! accepted or a typed [`TufRefusal`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use castellan_tuf::client::{self, DeviceClient, FetchLimits};

use crate::agent::Logger;
use crate::error::AgentError;
use crate::mqtt::MqttConnection;

/// Where the fleet's TUF repository is, and the root to trust on first use.
#[derive(Debug, Clone, Default)]
pub struct TufSettings {
    /// Base URL of the metadata (`https://host:port/tuf/metadata`); `None`: over MQTT.
    pub metadata_url: Option<String>,
    /// The root to trust when `identity/tuf/root.json` does not exist yet (the factory's).
    pub root: Option<PathBuf>,
    /// Time limits on each fetch (over HTTPS or MQTT).
    pub limits: FetchLimits,
}

/// How the check reaches the repository.
enum Transport {
    /// `metadata_url` over HTTPS.
    Https {
        metadata_url: String,
        http: reqwest::Client,
    },
    /// The session's MQTT connection.
    Mqtt,
}

/// Why the TUF check refused an offer: the repository could not be reached or refreshed
/// (unreachable, slow, stale, rolled back or badly signed metadata), or the envelope is not
/// the one the class's targets role lists (length and SHA-256). Its text is the `failed`
/// report's reason (`TUF: …`), the same for every device.
#[derive(Debug)]
pub struct TufRefusal(pub castellan_tuf::TufError);

impl std::fmt::Display for TufRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TUF: {}", self.0)
    }
}

impl std::error::Error for TufRefusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The check, ready for offers (the agent's and the QEMU bridge's).
pub struct TufCheck {
    dir: PathBuf,
    class: String,
    device_id: String,
    transport: Transport,
    limits: FetchLimits,
}

impl TufCheck {
    /// The check for device `device_id` of `class` whose identity is in `identity_dir`.
    pub fn new(
        settings: &TufSettings,
        identity_dir: &Path,
        (device_id, class): (&str, &str),
        ca_pem: &str,
    ) -> Result<TufCheck, AgentError> {
        let dir = identity_dir.join("tuf");
        // (`IdentityFiles::tuf_root` is `dir/ROOT_FILE`.)
        if !dir.join(client::ROOT_FILE).exists() {
            let Some(root) = &settings.root else {
                return Err(AgentError::NotProvisioned(format!(
                    "no TUF root in {}: give the factory's root.json",
                    dir.display()
                )));
            };
            let bytes = std::fs::read(root).map_err(|e| AgentError::Io {
                path: root.clone(),
                source: e,
            })?;
            client::init(&dir, &bytes).map_err(|e| {
                AgentError::InvalidInput(format!("the TUF root {}: {e}", root.display()))
            })?;
        }
        let limits = settings.limits;
        let transport = match &settings.metadata_url {
            Some(url) => Transport::Https {
                metadata_url: url.clone(),
                http: reqwest::Client::builder()
                    .tls_backend_preconfigured(crate::tls::server_only_config(ca_pem)?)
                    .connect_timeout(limits.connect)
                    .read_timeout(limits.read)
                    .timeout(limits.total)
                    .build()
                    .map_err(|e| AgentError::tls("TUF HTTPS client", e))?,
            },
            None => Transport::Mqtt,
        };
        Ok(TufCheck {
            dir,
            class: class.to_owned(),
            device_id: device_id.to_owned(),
            transport,
            limits,
        })
    }

    /// The topic filter the session subscribes to for the repository's answers, if the check
    /// goes over MQTT.
    pub fn filter(&self) -> Option<String> {
        matches!(self.transport, Transport::Mqtt)
            .then(|| castellan_protocol::topics::tuf_response(&self.device_id))
    }

    /// Check the offer of `release` in `campaign`, logging the outcome; the refusal (its text
    /// is the `failed` report's reason) if it is refused.
    pub async fn judge(
        &self,
        conn: &mut MqttConnection,
        log: &Logger,
        campaign: &str,
        release: &str,
        envelope: &[u8],
    ) -> Result<(), TufRefusal> {
        match self.check(conn, release, envelope).await {
            Ok(took) => {
                log(&format!(
                    "update {release} of campaign {campaign}: the envelope is the one TUF lists \
                     for the class (refresh {} ms)",
                    took.as_millis()
                ));
                Ok(())
            }
            Err(why) => {
                log(&format!(
                    "update {release} of campaign {campaign} refused before download: {why}"
                ));
                Err(why)
            }
        }
    }

    /// Refresh the trusted metadata (over `conn` when the check goes over MQTT) and check that
    /// `envelope` is what the class's targets role lists for `release`; how long it took, or
    /// why it is refused.
    pub async fn check(
        &self,
        conn: &mut MqttConnection,
        release: &str,
        envelope: &[u8],
    ) -> Result<Duration, TufRefusal> {
        let started = Instant::now();
        let why = TufRefusal;
        let now = jiff::Timestamp::now();
        match &self.transport {
            Transport::Https { metadata_url, http } => {
                let mut tuf =
                    DeviceClient::open_with_http(&self.dir, metadata_url, None, http.clone())
                        .map_err(why)?;
                tuf.check_release(&self.class, release, envelope, now)
                    .await
                    .map_err(why)?;
            }
            Transport::Mqtt => {
                let (repository, requests) = castellan_tuf::mqtt::channel();
                let mut tuf = DeviceClient::open(&self.dir, repository).map_err(why)?;
                let checked = async move {
                    // The client (and with it the channel) is dropped when the check ends,
                    // which ends the transport.
                    tuf.check_release(&self.class, release, envelope, now).await
                };
                let carried =
                    super::tuf_mqtt::serve(conn, &self.device_id, requests, self.limits.total);
                let (outcome, ()) = tokio::join!(checked, carried);
                outcome.map_err(why)?;
            }
        }
        Ok(started.elapsed())
    }
}
