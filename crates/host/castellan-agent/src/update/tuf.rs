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
//! anchor, from the factory); HTTPS is verified against the fleet's CA bundle.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use castellan_tuf::client::{self, DeviceClient, FetchLimits};

use crate::agent::Logger;
use crate::error::AgentError;

/// Where the fleet's TUF repository is, and the root to trust on first use.
#[derive(Debug, Clone)]
pub struct TufSettings {
    /// Base URL of the metadata (`https://host:port/tuf/metadata`).
    pub metadata_url: String,
    /// The root to trust when `identity/tuf/root.json` does not exist yet (the factory's).
    pub root: Option<PathBuf>,
}

/// The check, ready for offers.
pub(crate) struct TufCheck {
    dir: PathBuf,
    metadata_url: String,
    class: String,
    http: reqwest::Client,
}

impl TufCheck {
    /// The check for a device of `class` whose identity is in `identity_dir`.
    pub(crate) fn new(
        settings: &TufSettings,
        identity_dir: &Path,
        class: &str,
        ca_pem: &str,
    ) -> Result<TufCheck, AgentError> {
        let dir = identity_dir.join("tuf");
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
        let limits = FetchLimits::default();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::tls::server_only_config(ca_pem)?)
            .connect_timeout(limits.connect)
            .read_timeout(limits.read)
            .timeout(limits.total)
            .build()
            .map_err(|e| AgentError::tls("TUF HTTPS client", e))?;
        Ok(TufCheck {
            dir,
            metadata_url: settings.metadata_url.clone(),
            class: class.to_owned(),
            http,
        })
    }

    /// Check the offer of `release` in `campaign`, logging the outcome; the reason for the
    /// `failed` report if it is refused.
    pub(crate) async fn judge(
        &self,
        log: &Logger,
        campaign: &str,
        release: &str,
        envelope: &[u8],
    ) -> Result<(), String> {
        match self.check(release, envelope).await {
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

    /// Refresh and check `envelope` for `release`; how long it took, or why it is refused.
    async fn check(&self, release: &str, envelope: &[u8]) -> Result<Duration, String> {
        let started = Instant::now();
        let mut tuf =
            DeviceClient::open_with_http(&self.dir, &self.metadata_url, None, self.http.clone())
                .map_err(|e| format!("TUF: {e}"))?;
        tuf.check_release(&self.class, release, envelope, jiff::Timestamp::now())
            .await
            .map_err(|e| format!("TUF: {e}"))?;
        Ok(started.elapsed())
    }
}
