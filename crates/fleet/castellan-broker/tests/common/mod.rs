//! Shared test fixtures: a throwaway PKI, a broker on 127.0.0.1:0 with a scriptable authorizer
//! and a recording audit sink, and runners for the real peers (mosquitto clients, openssl,
//! paho-mqtt) that fail with the install command when a tool is missing.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castellan_broker::{
    AuditSink, Authorizer, Broker, BrokerConfig, BrokerHandle, Decision, DeviceMessage, Identity,
    PeerCert, TopicPolicy,
};
use castellan_testkit::peers::{Recorded, mosquitto};
use castellan_testkit::test_pki::{CertFiles, ClientCertOptions, TestPki};
use tokio::io::AsyncRead;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Registry state the test authorizer answers from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Revoked,
    Quarantined,
    Onboarding,
}

/// An authorizer backed by a map CN → state; unknown CNs are refused.
#[derive(Default)]
pub struct TestAuthorizer {
    states: Mutex<HashMap<String, State>>,
    /// Certificates (by serial) refused whatever their CN's state: superseded ones, say.
    refused_serials: Mutex<Vec<String>>,
    pub seen: Mutex<Vec<PeerCert>>,
}

impl TestAuthorizer {
    pub fn set(&self, cn: &str, state: State) {
        self.states.lock().unwrap().insert(cn.to_owned(), state);
    }

    /// Refuses the certificate with this serial as superseded.
    pub fn refuse_serial(&self, serial_hex: &str) {
        self.refused_serials
            .lock()
            .unwrap()
            .push(serial_hex.to_owned());
    }
}

impl Authorizer for TestAuthorizer {
    fn authenticate(&self, cert: &PeerCert) -> Decision {
        self.seen.lock().unwrap().push(cert.clone());
        if self
            .refused_serials
            .lock()
            .unwrap()
            .contains(&cert.serial_hex)
        {
            return Decision::refuse("superseded certificate");
        }
        let state = self.states.lock().unwrap().get(&cert.common_name).copied();
        let identity = Identity::from_common_name(&cert.common_name).unwrap();
        match (state, identity) {
            (None, _) => Decision::refuse("unknown device"),
            (Some(State::Revoked), _) => Decision::refuse("revoked"),
            (Some(State::Active), Identity::Service(_)) => Decision::allow(TopicPolicy::service()),
            (Some(State::Active), Identity::Device(id)) => {
                Decision::allow(TopicPolicy::device(&id).unwrap())
            }
            (Some(State::Quarantined), Identity::Device(id)) => {
                Decision::allow(TopicPolicy::quarantined(&id).unwrap())
            }
            (Some(State::Onboarding), Identity::Device(id)) => {
                Decision::allow(TopicPolicy::onboarding(&id).unwrap())
            }
            (Some(_), Identity::Service(_)) => Decision::refuse("service cannot be quarantined"),
        }
    }
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub allowed: bool,
    pub reason: String,
}

#[derive(Default)]
pub struct RecordingAudit {
    pub records: Mutex<Vec<Record>>,
}

impl AuditSink for RecordingAudit {
    fn record(&self, actor: &str, action: &str, target: &str, allowed: bool, reason: &str) {
        self.records.lock().unwrap().push(Record {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            allowed,
            reason: reason.into(),
        });
    }
}

impl RecordingAudit {
    pub fn all(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// Waits up to 5 s for a record matching `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&Record) -> bool) -> Option<Record> {
        for _ in 0..100 {
            if let Some(r) = self.all().into_iter().find(|r| pred(r)) {
                return Some(r);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// A running broker with its PKI.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub pki: TestPki,
    pub handle: BrokerHandle,
    pub authz: Arc<TestAuthorizer>,
    pub audit: Arc<RecordingAudit>,
    certs: Mutex<HashMap<String, CertFiles>>,
}

impl Env {
    /// Starts a broker whose client CA is a fresh test CA; `active` CNs are registered Active.
    pub async fn start(active: &[&str]) -> Env {
        Env::start_with(active, |_| {}).await
    }

    /// [`Env::start`] with the broker configuration adjusted by `tune` (caps, timeouts).
    pub async fn start_with(active: &[&str], tune: impl FnOnce(&mut BrokerConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path(), "fleet").unwrap();
        let server = pki.issue_server("server").unwrap();
        let authz = Arc::new(TestAuthorizer::default());
        for cn in active {
            authz.set(cn, State::Active);
        }
        let audit = Arc::new(RecordingAudit::default());
        let mut config = BrokerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            &server.cert,
            &server.key,
            pki.ca_pem(),
            authz.clone(),
            audit.clone(),
        );
        tune(&mut config);
        let handle = Broker::start(config).await.unwrap();
        Env {
            dir,
            pki,
            handle,
            authz,
            audit,
            certs: Mutex::new(HashMap::new()),
        }
    }

    pub fn port(&self) -> u16 {
        self.handle.local_addr().port()
    }

    pub fn ca(&self) -> PathBuf {
        self.pki.ca_pem().to_owned()
    }

    /// The certificate of `cn` issued by the fleet test CA (made once).
    pub fn cert(&self, cn: &str) -> CertFiles {
        let mut certs = self.certs.lock().unwrap();
        certs
            .entry(cn.to_owned())
            .or_insert_with(|| self.pki.issue_client(cn).unwrap())
            .clone()
    }

    pub fn cert_with(&self, cn: &str, opts: &ClientCertOptions) -> CertFiles {
        self.pki.issue_client_with(cn, opts).unwrap()
    }

    /// Common mosquitto client arguments for `cn` (certificate) connecting as `client_id`.
    pub fn mosq_args(
        &self,
        files: Option<&CertFiles>,
        client_id: &str,
        version: &str,
    ) -> Vec<String> {
        let mut a = vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port().to_string(),
            "--cafile".into(),
            path(&self.ca()),
            "-i".into(),
            client_id.into(),
            "-V".into(),
            version.into(),
        ];
        if let Some(f) = files {
            a.extend(["--cert".into(), path(&f.cert), "--key".into(), path(&f.key)]);
        }
        a
    }

    /// `mosquitto_pub` as `cn` (its own certificate, client id = CN): returns (success, output).
    pub async fn publish_as(
        &self,
        cn: &str,
        topic: &str,
        payload: &str,
        version: &str,
    ) -> (bool, String) {
        self.publish_with(&self.cert(cn), cn, topic, payload, version)
            .await
    }

    /// `mosquitto_pub` with the certificate `files`, connecting as `client_id`: returns
    /// (success, output).
    pub async fn publish_with(
        &self,
        files: &CertFiles,
        client_id: &str,
        topic: &str,
        payload: &str,
        version: &str,
    ) -> (bool, String) {
        let mut args = self.mosq_args(Some(files), client_id, version);
        args.extend(mosquitto::qos1_message(topic, payload));
        mosquitto_pub(&args).await
    }

    /// A `mosquitto_sub -d -v` as `cn` on `filters`; waits for its SUBACK.
    pub async fn subscribe_as(&self, cn: &str, filters: &[&str], version: &str) -> Sub {
        let files = self.cert(cn);
        let mut args = self.mosq_args(Some(&files), cn, version);
        args.extend(["-d".into(), "-v".into(), "-q".into(), "1".into()]);
        for f in filters {
            args.extend(["-t".into(), (*f).into()]);
        }
        let mut sub = Sub::spawn(&args);
        assert!(
            sub.wait_line(|l| l.contains("SUBACK"), Duration::from_secs(10))
                .await
                .is_some(),
            "no SUBACK for {cn} on {filters:?}: {:?}",
            sub.lines
        );
        sub
    }
}

pub fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

pub use castellan_testkit::peers::mosquitto::require_clients as require_mosquitto_clients;

/// Runs `mosquitto_pub` (15 s limit); returns (exit success, stdout+stderr).
pub async fn mosquitto_pub(args: &[String]) -> (bool, String) {
    mosquitto::publish(args).await
}

/// Runs a command with a time limit; returns (exit success, stdout+stderr).
#[allow(unused_imports)] // used by the test binaries that run peers other than mosquitto
pub use castellan_testkit::peers::run;

/// A running `mosquitto_sub` whose output lines (stdout and stderr) are collected.
pub struct Sub {
    pub child: Child,
    pub lines: Recorded<String>,
}

impl Sub {
    pub fn spawn(args: &[String]) -> Sub {
        require_mosquitto_clients();
        // stdbuf: mosquitto_sub buffers its output fully when it is not a terminal.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "-eL", "mosquitto_sub"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out: Box<dyn AsyncRead + Unpin + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn AsyncRead + Unpin + Send> = Box::new(child.stderr.take().unwrap());
        Sub {
            child,
            lines: Recorded::lines(vec![out, err], Some),
        }
    }

    /// Waits for an output line matching `pred` (keeps every line read in `lines`).
    pub async fn wait_line(
        &mut self,
        pred: impl Fn(&str) -> bool,
        limit: Duration,
    ) -> Option<String> {
        self.lines.wait(|l| pred(l), limit).await
    }

    /// Reads whatever arrives for `d`.
    pub async fn drain(&mut self, d: Duration) {
        self.lines.drain(d).await;
    }

    /// Waits for the process to exit; returns whether it did within `limit`.
    pub async fn exited_within(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.child.wait()).await.is_ok()
    }
}

/// Receives device messages until one matches, for up to `limit`.
pub async fn next_event(
    rx: &mut mpsc::Receiver<DeviceMessage>,
    pred: impl Fn(&DeviceMessage) -> bool,
    limit: Duration,
) -> Option<DeviceMessage> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) if pred(&m) => return Some(m),
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

pub const VERSIONS: [&str; 2] = ["mqttv311", "mqttv5"];
