//! A stand-in for the fleet server's MQTT side: the real broker (rmqtt, mutual TLS) with a
//! server certificate from the fleet PKI, allowing every client whose certificate verifies, so
//! that a test can script the server's half of the protocol on the broker's events.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use castellan_broker::{AllowAllVerified, Broker, BrokerConfig, BrokerHandle, NoAudit};
use castellan_pki::Pki;

/// Start the broker on a free local port, its TLS files written under `dir` (`server.pem`,
/// `server.key`, `clients.pem`).
pub async fn stand_in_broker(dir: &Path, pki: &Pki) -> BrokerHandle {
    let server = pki.issue_server_cert(&["localhost", "127.0.0.1"]).unwrap();
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let clients = dir.join("clients.pem");
    std::fs::write(
        &cert,
        format!("{}{}", server.certificate.pem, server.chain_pem),
    )
    .unwrap();
    std::fs::write(&key, server.key_pem.as_bytes()).unwrap();
    std::fs::write(&clients, pki.client_ca_bundle_pem()).unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Broker::start(BrokerConfig::new(
        listen,
        cert,
        key,
        clients,
        Arc::new(AllowAllVerified),
        Arc::new(NoAudit),
    ))
    .await
    .unwrap()
}
