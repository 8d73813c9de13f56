//! Shared fixtures of the fleet server's tests: a server on a test store (SQLite or
//! PostgreSQL) with free loopback ports, an HTTPS client for the operator API, a simulated
//! device, the onboarding exchange through a real MQTT peer, and audit-log queries.

#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod console;
pub mod device;
pub mod peers;
pub mod tuf;
pub mod update;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use castellan_server::protocol::{Challenge, Evidence, FactoryResponse, OnboardResult, topics};
use castellan_server::{Server, ServerConfig, ServerHandle};
use castellan_store::testing::TestStore;
use castellan_store::{AuditEntry, Decision};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;

pub use device::TestDevice;
pub use peers::Paho;

/// Start a server whose state lives in `state` and whose store is the test store's database.
pub async fn start_server(t: &TestStore, state: &Path) -> ServerHandle {
    castellan_testkit::fleet::hand_over_pki(state);
    let config = ServerConfig::new(state)
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    Server::start(config)
        .await
        .unwrap_or_else(|e| panic!("server start: {e}"))
}

/// A client of the operator API that trusts the server's CA bundle.
#[derive(Clone)]
pub struct Api {
    pub addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Api {
    pub fn new(server: &ServerHandle) -> Api {
        Api::with_ca(server.api_addr(), &server.paths().ca_bundle)
    }

    pub fn with_ca(addr: std::net::SocketAddr, ca: &Path) -> Api {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Api {
            addr,
            tls: Arc::new(tls),
        }
    }

    /// The client TLS configuration (trusting the server's CA bundle), for raw connections.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// One request; returns the status and the body (JSON, or a string for other bodies).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(http_body_util::Full::new(bytes_of(body))).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }
}

impl Api {
    /// A GET with extra headers; returns the status, the headers and the raw body.
    pub async fn get_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, hyper::HeaderMap, Vec<u8>) {
        self.request_raw("GET", path, headers, Vec::new()).await
    }

    /// Any request with extra headers and a raw body; returns the status, the headers and the
    /// raw body.
    pub async fn request_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, hyper::HeaderMap, Vec<u8>) {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
    }
}

fn bytes_of(s: String) -> hyper::body::Bytes {
    hyper::body::Bytes::from(s)
}

/// Register `device` at the factory through the API; writes its IDevID to `idevid.pem`.
pub async fn register(api: &Api, token: &str, device: &mut TestDevice) -> FactoryResponse {
    let req = device.factory_request("sensor-v1");
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/factory/devices",
            Some(token),
            Some(&serde_json::to_value(&req).unwrap()),
        )
        .await;
    assert_eq!(status, 201, "factory registration: {body}");
    let resp: FactoryResponse = serde_json::from_value(body).unwrap();
    std::fs::write(device.cert("idevid"), &resp.idevid_pem).unwrap();
    resp
}

/// What the device sends as evidence.
pub enum EvidenceKind {
    /// A token over the server's nonce.
    Honest,
    /// A token over a nonce the server never issued.
    WrongNonce,
    /// A token over the server's nonce from another device (another attestation key).
    OtherKey(Box<TestDevice>),
    /// A token recorded earlier (a replay).
    Replay(Vec<u8>),
}

/// The onboarding exchange with the IDevID through paho: hello, challenge, evidence, result.
/// On success the LDevID is written to `ldevid.pem` (key `ldevid.key`).
pub async fn onboard(
    server: &ServerHandle,
    device: &mut TestDevice,
    kind: EvidenceKind,
) -> OnboardResult {
    onboard_with_token(server, device, kind).await.0
}

/// [`onboard`], also returning the token that was sent.
pub async fn onboard_with_token(
    server: &ServerHandle,
    device: &mut TestDevice,
    kind: EvidenceKind,
) -> (OnboardResult, Vec<u8>) {
    let id = device.serial.clone();
    let mut peer = Paho::connect(
        server.mqtt_addr().port(),
        &server.paths().ca_bundle,
        &device.cert("idevid"),
        &device.key("idevid"),
        &id,
        &[topics::onboard_down_filter(&id)],
    );
    let suback = peer.wait_event("suback", Duration::from_secs(15)).await;
    assert_eq!(
        suback.as_ref().map(|s| s["codes"].clone()),
        Some(serde_json::json!([1])),
        "IDevID session could not subscribe to its onboarding topics: {:?}",
        peer.events
    );
    peer.publish(&topics::hello(&id), "{}").await;
    let challenge = peer
        .message_on(&topics::challenge(&id), Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no challenge: {:?}", peer.events));
    let challenge: Challenge = serde_json::from_str(&challenge).unwrap();
    let nonce = hex::decode(&challenge.nonce).unwrap();
    assert_eq!(nonce.len(), 32);
    let token = match kind {
        EvidenceKind::Honest => device.token(&nonce),
        EvidenceKind::WrongNonce => device.token(&[0x5a; 32]),
        EvidenceKind::OtherKey(mut other) => other.token(&nonce),
        EvidenceKind::Replay(token) => token,
    };
    let csr = device.csr_for_new_key("ldevid");
    let evidence = Evidence {
        token: hex::encode(&token),
        csr: hex::encode(csr),
    };
    peer.publish(
        &topics::evidence(&id),
        &serde_json::to_string(&evidence).unwrap(),
    )
    .await;
    let result = peer
        .message_on(&topics::result(&id), Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no result: {:?}", peer.events));
    peer.quit().await;
    let result: OnboardResult = serde_json::from_str(&result).unwrap();
    if let Some(pem) = &result.ldevid_pem {
        std::fs::write(device.cert("ldevid"), pem).unwrap();
    }
    (result, token)
}

/// The whole audit log.
pub async fn audit(server: &ServerHandle) -> Vec<AuditEntry> {
    server.flush_audit().await;
    server.store().audit_entries(0, 100_000).await.unwrap()
}

/// Whether the audit log has a refused entry for `action` whose reason contains `needle`.
pub async fn audit_has_refusal(server: &ServerHandle, action: &str, needle: &str) -> bool {
    audit(server)
        .await
        .iter()
        .any(|e| e.decision == Decision::Refused && e.action == action && e.reason.contains(needle))
}

/// Whether the audit log has a refused entry for `action` with the stable `code` and exactly
/// `reason`.
pub async fn audit_has_coded_refusal(
    server: &ServerHandle,
    action: &str,
    code: &str,
    reason: &str,
) -> bool {
    audit(server).await.iter().any(|e| {
        e.decision == Decision::Refused
            && e.action == action
            && e.code.as_deref() == Some(code)
            && e.reason == reason
    })
}

/// A temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn state_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state")
}

/// A device registered at the factory and onboarded (IDevID and LDevID files written).
pub async fn enrolled(
    server: &ServerHandle,
    api: &Api,
    admin: &str,
    serial: &str,
    seed: u64,
    dir: &Path,
) -> TestDevice {
    let mut dev = TestDevice::new(serial, seed, dir);
    register(api, admin, &mut dev).await;
    let r = onboard(server, &mut dev, EvidenceKind::Honest).await;
    assert!(r.accepted, "onboarding {serial}: {:?}", r.reason);
    dev
}

/// A paho session of `dev` with its LDevID, subscribed to `subscribe`; waits for the SUBACK.
pub async fn ldevid_session(
    server: &ServerHandle,
    dev: &TestDevice,
    subscribe: &[&str],
) -> (Paho, Value) {
    let mut peer = Paho::connect(
        server.mqtt_addr().port(),
        &server.paths().ca_bundle,
        &dev.cert("ldevid"),
        &dev.key("ldevid"),
        &dev.serial,
        &subscribe.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    let suback = peer
        .wait_event("suback", Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no SUBACK: {:?}", peer.events));
    (peer, suback["codes"].clone())
}

/// Write a service identity `svc:<name>` issued by `pki`'s service CA; returns (cert, key).
pub fn service_identity(pki: &castellan_pki::Pki, name: &str, dir: &Path) -> (PathBuf, PathBuf) {
    let creds = pki.issue_service_client_cert(name).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(
        &cert,
        format!("{}{}", creds.certificate.pem, creds.chain_pem),
    )
    .unwrap();
    std::fs::write(&key, creds.key_pem.as_bytes()).unwrap();
    (cert, key)
}
