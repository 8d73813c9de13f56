//! The device agent (`castellan agent`): boots the simulated device, onboards it when it has
//! no LDevID yet, then stays connected with the LDevID: telemetry every interval, status with a
//! last will, commands, over-the-air updates ([`crate::update`]: offers, downloads, the trial
//! image's self-test and acceptance, attestation of the result), and reconnection with
//! exponential backoff and jitter when the server or the network goes away. An update never
//! onboards the device again: its LDevID stays valid, and the attestation key survives updates
//! signed by the same authority.
//!
//! ```text
//!  power on ─▶ onboarded? ──no──▶ onboard (IDevID) ──refused──▶ stop with the server's reason
//!                 │yes               │accepted
//!                 ▼                  ▼
//!  connect (LDevID, will: status offline) ─▶ status online ─▶ telemetry … ─▶ count reached: stop
//!      ▲ backoff 1 s → 60 s + jitter        │ connection lost                │ cmd/reboot,
//!      └────────────────────────────────────┘                                 │ update installed
//!                                                                             └─▶ power cycle
//! ```
//!
//! Several brokers (the service's instances): the agent holds a list of endpoints and stays on
//! the one that works. When a connection fails or is lost it moves to the next endpoint at
//! once, and backs off only after every endpoint of the list failed in a row. A download in
//! progress continues on the new connection at the offset the secure services kept.
//!
//! ```text
//!  endpoints [B, A]:  B ──lost──▶ A (at once) ──refused──▶ B (at once) ──lost──▶ backoff ─▶ …
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::error::{AgentError, read_text};
use crate::identity::{DeviceRecord, IdentityFiles, open_key};
use crate::mqtt::{ConnectOptions, Endpoint, Message, MqttConnection};
use crate::onboard::onboard;
use crate::secure::SecureWorld;
use crate::update::tuf::TufSettings;
use crate::update::{Next, Updater};

/// Where the agent logs its steps (one line each).
pub type Logger = Arc<dyn Fn(&str) + Send + Sync>;

/// A logger that prints `HH:MM:SS prefix message` on standard output.
pub fn stdout_logger(prefix: &str) -> Logger {
    let prefix = prefix.to_string();
    Arc::new(move |line: &str| {
        let s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        println!(
            "{:02}:{:02}:{:02} {prefix}{line}",
            (s / 3600) % 24,
            (s / 60) % 60,
            s % 60
        );
    })
}

/// ITS asset holding the device's boot counter (u64, little-endian).
pub const ITS_UID_BOOT_COUNT: u64 = 0xca57_0001;

/// How an agent runs.
#[derive(Clone)]
pub struct AgentConfig {
    /// The simulated device's directory (with its `identity/`).
    pub device_dir: PathBuf,
    /// The broker (the first endpoint tried).
    pub mqtt: Endpoint,
    /// Further brokers of the same fleet (other service instances), tried in order when the
    /// current one fails.
    pub mqtt_fallbacks: Vec<Endpoint>,
    /// Time between telemetry messages.
    pub interval: Duration,
    /// Stop after this many telemetry messages (None: run until stopped).
    pub count: Option<u64>,
    /// Time between signed detection reports (`dev/<id>/up/detect/report`); a report also
    /// goes out as soon as the detector's alarm threshold is crossed. `None`: no reports.
    pub detect_interval: Option<Duration>,
    /// Reconnection schedule.
    pub backoff: Backoff,
    /// How long onboarding may wait for the server's answers.
    pub onboard_timeout: Duration,
    /// Give up after this many consecutive failed connection attempts (None: never).
    pub max_failures: Option<u32>,
    /// Where the steps are logged.
    pub log: Logger,
    /// Stops the agent gracefully when notified (the device is saved; a later run continues
    /// where this one stopped, an update download included).
    pub stop: Option<Arc<tokio::sync::Notify>>,
    /// The fleet's TUF repository: offers are checked against it before the secure services
    /// see them. `None`: SUIT alone.
    pub tuf: Option<crate::update::tuf::TufSettings>,
    /// A staged run-time compromise of the application (tests, benchmarks, demos): `None`
    /// for a device that only does its job.
    pub compromise: Option<Arc<crate::compromise::Compromise>>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("device_dir", &self.device_dir)
            .field("mqtt", &self.mqtt)
            .field("mqtt_fallbacks", &self.mqtt_fallbacks)
            .field("interval", &self.interval)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    /// Every broker endpoint, the first one first.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        std::iter::once(self.mqtt.clone())
            .chain(self.mqtt_fallbacks.iter().cloned())
            .collect()
    }

    /// Defaults of the protocol: telemetry every 5 s, run forever, backoff 1 s → 60 s.
    pub fn new(device_dir: impl Into<PathBuf>, mqtt: Endpoint, log: Logger) -> AgentConfig {
        AgentConfig {
            device_dir: device_dir.into(),
            mqtt,
            mqtt_fallbacks: Vec::new(),
            interval: Duration::from_secs(5),
            count: None,
            detect_interval: Some(Duration::from_secs(60)),
            backoff: Backoff::protocol_default(),
            onboard_timeout: Duration::from_secs(30),
            max_failures: None,
            log,
            stop: None,
            tuf: None,
            compromise: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentReport {
    /// The device id.
    pub device_id: String,
    /// True when this run onboarded the device.
    pub onboarded_now: bool,
    /// Telemetry messages published (acknowledged by the broker).
    pub messages_sent: u64,
    /// Successful LDevID connections.
    pub connections: u32,
    /// Connections lost or refused, then retried.
    pub reconnects: u32,
    /// Reboots done (on command, or into and out of an update's trial image).
    pub reboots: u32,
    /// Updates whose trial image passed its self-test and was accepted.
    pub updates_confirmed: u32,
    /// Updates refused or failed (reported `failed`).
    pub updates_failed: u32,
    /// Updates whose trial image was reverted (reported `reverted`).
    pub updates_reverted: u32,
    /// The device was decommissioned on a verified command (keys and assets crypto-erased).
    pub decommissioned: bool,
    /// Signed detection reports published.
    pub detection_reports: u64,
    /// Reboots on a verified reattest command (each answered with a fresh token).
    pub reattests: u32,
}

/// Why an operational session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    /// The telemetry count was reached, or the agent was told to stop.
    Done,
    /// The server asked for a reboot.
    Reboot,
    /// An update needs a power cycle (into the trial image, or to revert it).
    UpdateReboot,
    /// The device erased itself on the server's signed command: nothing boots any more.
    Decommissioned,
    /// The server's signed reattest command: reboot, then attest over its nonce.
    Reattest,
}

/// Runs the agent until its telemetry count is reached, onboarding is refused, or (with
/// `max_failures`) the server stays unreachable.
pub async fn run(cfg: AgentConfig) -> Result<AgentReport, AgentError> {
    let log = cfg.log.clone();
    let files = IdentityFiles::of(&cfg.device_dir);
    let record = files.record()?;
    let mut report = AgentReport {
        device_id: record.serial.clone(),
        ..AgentReport::default()
    };
    let mut world = power_on(&cfg, &log)?;
    let mut boot_count = count_boot(&world)?;
    let mut started = Instant::now();
    let mut backoff = cfg.backoff.clone();
    let ca_pem = read_text(&files.mqtt_ca()).unwrap_or_default();
    // A device given a TUF root (by the factory, or earlier with --tuf-root) checks every offer
    // against TUF: over HTTPS when a metadata URL is given, else over MQTT.
    let has_tuf_root = files.tuf_root().exists();
    let tuf = match cfg
        .tuf
        .clone()
        .or_else(|| has_tuf_root.then(TufSettings::default))
    {
        Some(settings) => Some(crate::update::tuf::TufCheck::new(
            &settings,
            files.dir(),
            (&record.serial, &record.device_class),
            &ca_pem,
        )?),
        None => None,
    };
    let mut updater =
        Updater::new(&record.serial, files.update_journal(), ca_pem, log.clone()).with_tuf(tuf);
    let endpoints = cfg.endpoints();
    let mut at = 0usize;
    // Failures in a row since the last successful connection, across endpoints.
    let mut failed_in_a_row = 0usize;
    // A verified reattest command's nonce, answered on the first connection after the reboot.
    let mut reattest: Option<String> = None;
    loop {
        let endpoint = &endpoints[at % endpoints.len()];
        let connections_before = report.connections;
        let attempt = async {
            if !files.is_onboarded() {
                log(&format!(
                    "no LDevID yet: onboarding with {} over {}",
                    files.idevid().display(),
                    endpoint
                ));
                onboard(
                    endpoint,
                    &files,
                    &record,
                    &world,
                    cfg.onboard_timeout,
                    &*log,
                )
                .await?;
                report.onboarded_now = true;
            }
            let mut session = Session {
                cfg: &cfg,
                endpoint,
                files: &files,
                record: &record,
                world: &world,
                report: &mut report,
                backoff: &mut backoff,
                updater: &mut updater,
                reattest: &mut reattest,
                boot_count,
                started,
                next_report: Instant::now(),
            };
            session.run().await
        };
        let outcome = attempt.await;
        if report.connections > connections_before {
            failed_in_a_row = 0;
        }
        report.updates_confirmed = updater.counts.confirmed;
        report.updates_failed = updater.counts.failed;
        report.updates_reverted = updater.counts.reverted;
        match outcome {
            Ok(end @ (SessionEnd::UpdateReboot | SessionEnd::Reboot | SessionEnd::Reattest)) => {
                log(match end {
                    SessionEnd::UpdateReboot => "rebooting for the update",
                    SessionEnd::Reattest => "rebooting to re-attest",
                    _ => "rebooting on command",
                });
                if end == SessionEnd::Reattest {
                    report.reattests += 1;
                }
                // What ran in RAM does not survive the reboot: a staged run-time compromise
                // ends here; a flashed one ends only when an update replaces the image.
                if let Some(c) = &cfg.compromise {
                    if end == SessionEnd::UpdateReboot {
                        c.replaced();
                    } else {
                        c.rebooted();
                    }
                }
                world.shut_down()?;
                updater.powered_off();
                world = power_on(&cfg, &log)?;
                boot_count = count_boot(&world)?;
                started = Instant::now();
                report.reboots += 1;
            }
            Ok(SessionEnd::Decommissioned) => {
                log("decommissioned: keys and assets crypto-erased; the device no longer boots");
                report.decommissioned = true;
                world.shut_down()?;
                return Ok(report);
            }
            Ok(SessionEnd::Done) => {
                log(&format!(
                    "done: {} telemetry message(s) sent",
                    report.messages_sent
                ));
                world.shut_down()?;
                return Ok(report);
            }
            Err(e) if e.is_transient() => {
                report.reconnects += 1;
                failed_in_a_row += 1;
                if endpoints.len() > 1 {
                    at = (at + 1) % endpoints.len();
                    if failed_in_a_row < endpoints.len() {
                        log(&format!(
                            "{e}; moving to the next broker, {}",
                            endpoints[at]
                        ));
                        continue;
                    }
                    failed_in_a_row = 0;
                }
                if cfg
                    .max_failures
                    .is_some_and(|m| backoff.attempts() + 1 >= m)
                {
                    log(&format!(
                        "giving up after {} attempts: {e}",
                        backoff.attempts() + 1
                    ));
                    world.shut_down()?;
                    return Err(e);
                }
                let delay = backoff.next_delay();
                log(&format!(
                    "{e}; retrying in {:.1} s (attempt {})",
                    delay.as_secs_f64(),
                    backoff.attempts()
                ));
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                log(&format!("stopping: {e}"));
                let _ = world.shut_down();
                return Err(e);
            }
        }
    }
}

/// Powers on an onboarded device and opens a bare MQTT connection with its LDevID (no will, no
/// subscription): for tools and tests that act as the device, e.g. to show that the broker
/// refuses a topic outside its policy. Keep the returned [`SecureWorld`] while connecting.
pub async fn connect_operational(
    device_dir: &std::path::Path,
    mqtt: &Endpoint,
) -> Result<(MqttConnection, SecureWorld), AgentError> {
    let files = IdentityFiles::of(device_dir);
    let record = files.record()?;
    if !files.is_onboarded() {
        return Err(AgentError::NotProvisioned(format!(
            "{} has no LDevID: run `castellan agent` first",
            device_dir.display()
        )));
    }
    let world = SecureWorld::power_on(device_dir)?;
    let key = open_key(&record, &files, Some(&world), true)?;
    let chain = format!(
        "{}\n{}",
        read_text(&files.ldevid())?,
        read_text(&files.ldevid_chain())?
    );
    let tls = crate::tls::client_config(&read_text(&files.mqtt_ca())?, &chain, key)?;
    let opts = ConnectOptions {
        client_id: record.serial.clone(),
        keep_alive_secs: 30,
        will: None,
        connect_timeout: Duration::from_secs(10),
    };
    let conn = MqttConnection::connect(mqtt, tls, &opts).await?;
    Ok((conn, world))
}

fn power_on(cfg: &AgentConfig, log: &Logger) -> Result<SecureWorld, AgentError> {
    let world = SecureWorld::power_on(&cfg.device_dir)?;
    let b = world.boot_info();
    log(&format!(
        "booted {}: lifecycle {:?}, {} measurement(s), firmware {}",
        cfg.device_dir.display(),
        b.lifecycle,
        b.measurements.len(),
        b.firmware_version()
    ));
    for m in &b.measurements {
        log(&format!("  measured {m}"));
    }
    Ok(world)
}

/// Completes when `stop` is notified (never without one).
async fn stopped(stop: Option<&tokio::sync::Notify>) {
    match stop {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// Increments the boot counter kept in trusted storage and returns it.
fn count_boot(world: &SecureWorld) -> Result<u64, AgentError> {
    use castellan_gate_api::{SecureGate as _, psa};
    let uid = ITS_UID_BOOT_COUNT as u32;
    world.with_gate(|g| {
        let mut buf = [0u8; 8];
        let n = match g.its_get(uid, &mut buf) {
            Ok(n) => n,
            Err(e) if e.status() == psa::ERROR_DOES_NOT_EXIST => 0,
            Err(e) => return Err(e),
        };
        let count = if n == 8 { u64::from_le_bytes(buf) } else { 0 } + 1;
        g.its_set(uid, &count.to_le_bytes())?;
        Ok(count)
    })
}

/// One connection with the LDevID.
struct Session<'a> {
    cfg: &'a AgentConfig,
    endpoint: &'a Endpoint,
    files: &'a IdentityFiles,
    record: &'a DeviceRecord,
    world: &'a SecureWorld,
    report: &'a mut AgentReport,
    backoff: &'a mut Backoff,
    updater: &'a mut Updater,
    reattest: &'a mut Option<String>,
    boot_count: u64,
    started: Instant,
    /// When the next periodic detection report is due.
    next_report: Instant,
}

impl Session<'_> {
    async fn run(&mut self) -> Result<SessionEnd, AgentError> {
        let id = self.record.serial.clone();
        let log = self.cfg.log.clone();
        let key = open_key(self.record, self.files, Some(self.world), true)?;
        let chain = format!(
            "{}\n{}",
            read_text(&self.files.ldevid())?,
            read_text(&self.files.ldevid_chain())?
        );
        let tls = crate::tls::client_config(&read_text(&self.files.mqtt_ca())?, &chain, key)?;
        let status = format!("dev/{id}/status");
        let offline = Message {
            topic: status.clone(),
            payload: br#"{"online":false}"#.to_vec(),
            qos: 1,
            retain: true,
        };
        let keep_alive = (self.cfg.interval.as_secs() * 3).clamp(30, 600) as u16;
        let opts = ConnectOptions {
            client_id: id.clone(),
            keep_alive_secs: keep_alive,
            will: Some(offline.clone()),
            connect_timeout: Duration::from_secs(10),
        };
        let mut conn = MqttConnection::connect(self.endpoint, tls, &opts).await?;
        self.report.connections += 1;
        self.backoff.reset();
        log(&format!(
            "connected to {} with the LDevID as {id} (last will: offline)",
            self.endpoint
        ));
        // A quarantined device's policy refuses the command channel (and would close the
        // session at its first telemetry): it keeps only its update and lifecycle channels, to
        // be healed or decommissioned, until the service releases it (and closes the session).
        let quarantined = match conn.subscribe(&format!("dev/{id}/cmd/#"), 1).await {
            Ok(_) => false,
            Err(AgentError::Mqtt(crate::error::MqttError::SubscribeRefused(_))) => {
                log("quarantined: command channel refused; no telemetry until released");
                true
            }
            Err(e) => return Err(e),
        };
        conn.subscribe(&self.updater.filter(), 1).await?;
        conn.subscribe(&castellan_protocol::topics::lifecycle_down_filter(&id), 1)
            .await?;
        if let Some(filter) = self.updater.tuf_filter() {
            conn.subscribe(&filter, 1).await?;
        }
        conn.publish(&Message {
            payload: br#"{"online":true}"#.to_vec(),
            ..offline.clone()
        })
        .await?;
        // Rebooted on a reattest command: the fresh token first.
        if let Some(nonce) = self.reattest.take() {
            if let Err(e) = crate::reattest::answer(&mut conn, self.world, &id, &nonce).await {
                *self.reattest = Some(nonce);
                return Err(e);
            }
            log("rebooted on the reattest command: fresh attestation token sent");
        }
        // Connected again: the self-test of a trial image passes its first half here.
        if self.updater.on_connect(&mut conn, self.world).await? == Next::Reboot {
            conn.publish(&offline).await?;
            conn.disconnect().await;
            return Ok(SessionEnd::UpdateReboot);
        }
        let stop = self.cfg.stop.clone();
        let cmd_prefix = format!("dev/{id}/cmd/");
        loop {
            if self
                .cfg
                .count
                .is_some_and(|c| self.report.messages_sent >= c)
            {
                conn.publish(&offline).await?;
                conn.disconnect().await;
                return Ok(SessionEnd::Done);
            }
            if !quarantined {
                let sent = self.report.messages_sent + 1;
                let telemetry = self.telemetry(sent);
                conn.publish(&Message::qos1(
                    format!("dev/{id}/telemetry"),
                    telemetry.to_string(),
                ))
                .await?;
                self.report.messages_sent = sent;
                log(&format!("telemetry #{sent} sent: {telemetry}"));
                self.misbehave(&mut conn, &id).await?;
                if self.cfg.count.is_some_and(|c| sent >= c) {
                    continue;
                }
            }
            let next = Instant::now() + self.cfg.interval;
            loop {
                let left = next.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                // Come back often enough to drive a download (HTTPS ranges, fetch timeouts).
                let wait = if self.updater.busy() {
                    Duration::ZERO
                } else {
                    left.min(Duration::from_millis(500))
                };
                let received = tokio::select! {
                    r = conn.recv(wait) => r?,
                    () = stopped(stop.as_deref()) => {
                        log("stopping on request");
                        conn.publish(&offline).await?;
                        conn.disconnect().await;
                        return Ok(SessionEnd::Done);
                    }
                };
                let mut end = None;
                if let Some(m) = received {
                    if m.topic.starts_with(&cmd_prefix) {
                        end = self.command(&mut conn, &id, &m).await?;
                    } else if m.topic == castellan_protocol::topics::decommission(&id) {
                        end = self.decommission(&mut conn, &id, &m.payload).await?;
                    } else if m.topic == castellan_protocol::topics::reattest(&id) {
                        end = self.reattest_command(&id, &m.payload);
                    } else if self
                        .cfg
                        .compromise
                        .as_ref()
                        .is_some_and(|c| c.refuses_updates())
                        && self.updater.refuse_offer(&mut conn, &m).await?
                    {
                        log("update offer refused by the application");
                    } else if self.updater.on_message(&mut conn, self.world, &m).await?
                        == Next::Reboot
                    {
                        end = Some(SessionEnd::UpdateReboot);
                    }
                }
                if end.is_none() && self.updater.tick(&mut conn, self.world).await? == Next::Reboot
                {
                    end = Some(SessionEnd::UpdateReboot);
                }
                if end.is_none() {
                    self.detect(&mut conn, &id).await?;
                }
                if let Some(end) = end {
                    conn.publish(&offline).await?;
                    conn.disconnect().await;
                    return Ok(end);
                }
            }
        }
    }

    /// What a compromised application does besides its job (see `compromise`).
    async fn misbehave(&self, conn: &mut MqttConnection, id: &str) -> Result<(), AgentError> {
        use crate::compromise::{Behaviour, EXFILTRATED, PROBES};
        match self.cfg.compromise.as_ref().map(|c| c.get()) {
            Some(Behaviour::ProbeTopics) => {
                for i in 0..PROBES {
                    // Refused by the broker's topic policy; the session stays up.
                    let _ = conn
                        .subscribe(&format!("dev/{id}-neighbour-{i}/telemetry"), 1)
                        .await;
                }
            }
            Some(Behaviour::Exfiltrate) => {
                for i in 0..EXFILTRATED {
                    conn.publish(&Message::qos1(
                        format!("dev/{id}/telemetry"),
                        format!("{{\"chunk\":{i}}}"),
                    ))
                    .await?;
                }
            }
            Some(Behaviour::Healthy) | None => {}
        }
        Ok(())
    }

    /// Sends a signed detection report when one is due or the detector's alarm threshold was
    /// crossed since the last one.
    async fn detect(&mut self, conn: &mut MqttConnection, id: &str) -> Result<(), AgentError> {
        let Some(every) = self.cfg.detect_interval else {
            return Ok(());
        };
        let due = Instant::now() >= self.next_report;
        let crossed = match self.world.detect_status()? {
            None => return Ok(()),
            Some(s) => s.crossed(),
        };
        if !due && !crossed {
            return Ok(());
        }
        let report = self.world.detect_report()?;
        conn.publish(&Message::qos1(
            castellan_protocol::topics::detect_report(id),
            report,
        ))
        .await?;
        self.next_report = Instant::now() + every;
        self.report.detection_reports += 1;
        (self.cfg.log)(&format!(
            "detection report #{} sent{}",
            self.report.detection_reports,
            if crossed {
                " (alarm threshold crossed)"
            } else {
                ""
            }
        ));
        Ok(())
    }

    fn telemetry(&self, n: u64) -> serde_json::Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let uptime = self.started.elapsed().as_secs();
        // A plausible sensor: a slow daily swing plus a wobble, one decimal.
        let t = 21.0
            + 3.0 * ((now % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin()
            + 0.3 * ((n as f64) * 0.7).sin();
        serde_json::json!({
            "ts": now,
            "uptime_s": uptime,
            "boot_count": self.boot_count,
            "firmware": self.world.boot_info().firmware_version(),
            "temperature_c": (t * 10.0).round() / 10.0,
            "messages_sent": n,
        })
    }

    /// Handles a command; `Some` when the session must end.
    async fn command(
        &mut self,
        conn: &mut MqttConnection,
        id: &str,
        m: &Message,
    ) -> Result<Option<SessionEnd>, AgentError> {
        let prefix = format!("dev/{id}/cmd/");
        let Some(name) = m.topic.strip_prefix(&prefix) else {
            return Ok(None);
        };
        let log = self.cfg.log.clone();
        log(&format!("command {name} received"));
        let (answer, end) = match name {
            "reboot" => (
                serde_json::json!({"ok": true, "rebooting": true}),
                Some(SessionEnd::Reboot),
            ),
            "ping" => (serde_json::json!({"ok": true, "pong": true}), None),
            "attest" => (self.attest(&m.payload), None),
            other => (
                serde_json::json!({"ok": false, "error": format!("unknown command {other}")}),
                None,
            ),
        };
        conn.publish(&Message::qos1(
            format!("dev/{id}/up/{name}"),
            answer.to_string(),
        ))
        .await?;
        Ok(end)
    }

    /// The signed decommission: verified against the factory root, then the secure services
    /// erase the device and the final token answers the command's nonce.
    async fn decommission(
        &mut self,
        conn: &mut MqttConnection,
        id: &str,
        payload: &[u8],
    ) -> Result<Option<SessionEnd>, AgentError> {
        use castellan_protocol::{DecommissionCommand, ErasureEvidence, WireMessage as _, topics};
        let log = self.cfg.log.clone();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let checked = DecommissionCommand::parse(payload)
            .map_err(|_| {
                crate::decommission::CommandRefusal::Malformed("not a decommission command")
            })
            .and_then(|cmd| crate::decommission::verify(&cmd, id, self.files, now).map(|()| cmd));
        let cmd = match checked {
            Ok(cmd) => cmd,
            Err(refusal) => {
                log(&format!("decommission command refused: {refusal}"));
                return Ok(None);
            }
        };
        log("decommission command verified (operational CA, factory root): erasing");
        self.world.service(|svc| svc.decommission())?;
        let nonce = hex::decode(&cmd.nonce).unwrap_or_default();
        let token = self.world.attest_token(&nonce)?;
        let evidence = ErasureEvidence {
            nonce: cmd.nonce,
            token: hex::encode(token),
        };
        conn.publish(&Message {
            topic: topics::erased(id),
            payload: evidence.to_payload(),
            qos: 1,
            retain: false,
        })
        .await?;
        log("final attestation token sent (lifecycle decommissioned)");
        Ok(Some(SessionEnd::Decommissioned))
    }

    /// The signed reattest command: verified as a decommission command is; `Some` (reboot)
    /// when it holds, its nonce kept for the token after the reboot.
    fn reattest_command(&mut self, id: &str, payload: &[u8]) -> Option<SessionEnd> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match crate::reattest::check(payload, id, self.files, now) {
            Ok(nonce) => {
                (self.cfg.log)("reattest command verified (operational CA, factory root)");
                *self.reattest = Some(nonce);
                Some(SessionEnd::Reattest)
            }
            Err(refusal) => {
                (self.cfg.log)(&format!("reattest command refused: {refusal}"));
                None
            }
        }
    }

    /// `cmd/attest {"nonce": hex}` → a fresh attestation token.
    fn attest(&self, payload: &[u8]) -> serde_json::Value {
        let nonce = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("nonce").and_then(|n| n.as_str()).map(str::to_string))
            .and_then(|n| hex::decode(n).ok());
        let Some(nonce) = nonce else {
            return serde_json::json!({"ok": false, "error": "attest needs {\"nonce\": hex}"});
        };
        let token = self.world.attest_token(&nonce);
        match token {
            Ok(t) => serde_json::json!({"ok": true, "token": hex::encode(t)}),
            Err(e) => serde_json::json!({"ok": false, "error": e.to_string()}),
        }
    }
}
