//! The operational link: the bridge connects with the device's LDevID and runs the fleet
//! client's one update client ([`castellan_agent::update::Updater`], fleet protocol,
//! "Over-the-air updates") for the QEMU device, whose secure side it reaches through QEMU runs
//! ([`crate::updates::QemuUpdates`]).
//!
//! ```text
//!  server ── down/update/offer ──▶ Updater ── TUF: envelope listed for the class? (if the
//!                                         identity holds a TUF root; over dev/<id>/…/tuf/…)
//!                                         no ─▶ up/update/status failed "TUF: …"
//!                                  Updater ── begin: `ota check` ──▶ secure partition
//!         ◀── up/update/status accepted | failed (the device's reason)
//!  server ◀── up/update/fetch × window ── Updater ◀── down/update/chunk/<release> (staged on
//!         ◀── up/update/status downloading … downloaded            the host, resumable)
//!  Updater ── finish: `ota install` (envelope + image) ──▶ secure partition: SUIT digest and
//!         size, MCUboot verification, trial install → reset → swap → trial boot → self-test
//!         → FWU accept          ◀── up/update/status installing, rebooting, confirmed | failed | reverted
//!  server ── down/update/challenge {nonce} ──▶ `attest <nonce>` ──▶ token (IAK)
//!         ◀── up/update/evidence {token}      ◀── down/update/result {updated, reason}
//! ```
//!
//! The bridge is not trusted with the update: it never decides whether a manifest or an image
//! is acceptable; the TUF check (the agent's, `castellan_agent::update::tuf`) can only refuse,
//! so that both chains must agree: the repository's targets for the class and the SUIT
//! manifest the secure partition authenticates.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use castellan_agent::identity::{IdentityFiles, open_key};
use castellan_agent::mqtt::{ConnectOptions, Message, MqttConnection};
use castellan_agent::update::Updater;
use castellan_agent::update::tuf::{TufCheck, TufSettings};
use castellan_agent::{Backoff, Endpoint};

use crate::Logger;
use crate::device::QemuDevice;
use crate::error::{BridgeError, read_text};
use crate::protocol::topics;
use crate::updates::QemuUpdates;

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
}

/// Runs the operational link until `cfg.stop` is set, reconnecting with backoff when the
/// server or the network goes away. Returns what happened, or the first error that retrying
/// cannot fix.
pub async fn run(cfg: &SessionConfig, device: &QemuDevice) -> Result<SessionReport, BridgeError> {
    let files = IdentityFiles::of(&cfg.state_dir);
    let record = files.record()?;
    if !files.is_onboarded() {
        return Err(BridgeError::InvalidInput(format!(
            "{} has no LDevID: onboard the device first",
            cfg.state_dir.display()
        )));
    }
    let ca_pem = read_text(&files.mqtt_ca())?;
    // A device whose factory stored the fleet's TUF root has every offer checked against TUF,
    // over its MQTT connection.
    let tuf = match files.tuf_root().exists() {
        true => Some(TufCheck::new(
            &TufSettings::default(),
            files.dir(),
            (&record.serial, &record.device_class),
            &ca_pem,
        )?),
        false => None,
    };
    let mut updater = Updater::new(
        &record.serial,
        files.update_journal(),
        ca_pem,
        cfg.log.clone(),
    )
    .with_tuf(tuf);
    let qemu = QemuUpdates::new(device.clone(), &cfg.state_dir, cfg.log.clone());
    let mut connections = 0;
    let mut backoff = Backoff::protocol_default();
    while !cfg.stop.load(Ordering::SeqCst) {
        match session(
            cfg,
            &files,
            &mut updater,
            &qemu,
            &mut connections,
            &mut backoff,
        )
        .await
        {
            Ok(()) => break,
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
    Ok(SessionReport {
        connections,
        offers: updater.counts.offers,
        statuses: updater.reported.clone(),
        evidence_sent: updater.counts.attested,
    })
}

/// One connection: online, the update client's messages until stopped or disconnected.
async fn session(
    cfg: &SessionConfig,
    files: &IdentityFiles,
    updater: &mut Updater,
    qemu: &QemuUpdates,
    connections: &mut u32,
    backoff: &mut Backoff,
) -> Result<(), BridgeError> {
    let record = files.record()?;
    let id = record.serial.clone();
    let key = open_key(&record, files, None, true)?;
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
    *connections += 1;
    backoff.reset();
    (cfg.log)(&format!(
        "link: connected to {} with the LDevID as {id}",
        cfg.mqtt
    ));
    conn.subscribe(&updater.filter(), 1).await?;
    if let Some(filter) = updater.tuf_filter() {
        conn.subscribe(&filter, 1).await?;
    }
    conn.publish(&Message {
        payload: br#"{"online":true}"#.to_vec(),
        ..offline.clone()
    })
    .await?;
    updater.on_connect(&mut conn, qemu).await?;
    loop {
        if cfg.stop.load(Ordering::SeqCst) {
            let _ = conn.publish(&offline).await;
            conn.disconnect().await;
            return Ok(());
        }
        let wait = if updater.busy() {
            Duration::ZERO
        } else {
            Duration::from_millis(500)
        };
        if let Some(m) = conn.recv(wait).await? {
            updater.on_message(&mut conn, qemu, &m).await?;
        }
        updater.tick(&mut conn, qemu).await?;
    }
}
