//! The service's front door under attack: a certificate with a device's CN and serial minted
//! by another CA the broker trusts, and the descriptor-exhaustion scenario (hundreds of idle
//! TLS connections on the MQTT port, idle connections on the API port) after which a device
//! still connects and the API still answers. Loopback only, bounded in count and time.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use castellan_server::{FrontDoorLimits, Server, ServerConfig};
use castellan_store::testing::{TestStore, each_backend};
use castellan_testkit::mqtt_client::tls_config;
use castellan_testkit::sockets::{closed_by_peer, tcp_from};
use castellan_testkit::test_pki::{ClientCertOptions, TestPki};
use common::*;

const SEC: Duration = Duration::from_secs(1);

/// The big-endian bytes of a registry serial (lowercase hex, leading zeros trimmed).
fn serial_bytes(hex_serial: &str) -> Vec<u8> {
    let padded = if hex_serial.len() % 2 == 1 {
        format!("0{hex_serial}")
    } else {
        hex_serial.to_string()
    };
    hex::decode(padded).unwrap()
}

/// `mosquitto_pub` of `payload` to `dev/<id>/status` with this certificate and key: (success,
/// output).
async fn publish_status(
    server: &castellan_server::ServerHandle,
    cert: &std::path::Path,
    key: &std::path::Path,
    id: &str,
    payload: &str,
) -> (bool, String) {
    peers::mosquitto_pub(
        server.mqtt_addr().port(),
        &server.paths().ca_bundle,
        Some((cert, key)),
        id,
        &format!("dev/{id}/status"),
        payload,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_certificate_with_the_devices_cn_and_serial_minted_by_another_trusted_ca_refused() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let id = "CSTL-0601";
        let dev = enrolled(&server, &api, &admin, id, 71, tmp.path()).await;
        let device = server.store().device(id).await.unwrap().unwrap();
        // The issuing CAs are in the broker's client trust bundle: an attacker who can have one
        // sign (a factory station's key, a leaked or rotated-out operational CA key) mints
        // look-alikes of the device's identities that pass the CA-role check (same CN, serial,
        // OU or subject serialNumber, from the CA that may issue that role).
        let pki = &server.paths().pki_dir;
        let ca = |kind: &str| {
            TestPki::from_ca_files(
                &tmp.path().join(format!("forged-{kind}")),
                "forged",
                &pki.join(format!("{kind}-ca.pem")),
                &pki.join(format!("{kind}-ca.key.pem")),
            )
            .unwrap()
        };
        let copies = [
            (
                "ldevid",
                ca("operational"),
                ClientCertOptions {
                    serial: Some(serial_bytes(device.ldevid_serial.as_deref().unwrap())),
                    organizational_unit: Some("device".into()),
                    file_suffix: Some("-ldevid".into()),
                    ..Default::default()
                },
            ),
            (
                "idevid",
                ca("manufacturer"),
                ClientCertOptions {
                    serial: Some(serial_bytes(&device.idevid_serial)),
                    subject_serial: Some(device.serial.clone()),
                    organizational_unit: Some(device.device_class.clone()),
                    file_suffix: Some("-idevid".into()),
                    ..Default::default()
                },
            ),
        ];
        for (which, issuer, opts) in &copies {
            let forged = issuer.issue_client_with(id, opts).unwrap();
            let (ok, out) = publish_status(&server, &forged.cert, &forged.key, id, "{}").await;
            assert!(!ok, "forged copy of the {which} accepted: {out}");
        }
        assert!(
            audit_has_refusal(
                &server,
                "mqtt.connect",
                "is not the certificate onboarding issued"
            )
            .await
        );
        assert!(
            audit_has_refusal(
                &server,
                "mqtt.connect",
                "is not the certificate the factory issued"
            )
            .await
        );
        // The genuine LDevID still connects.
        let (ok, out) =
            publish_status(&server, &dev.cert("ldevid"), &dev.key("ldevid"), id, "{}").await;
        assert!(ok, "the genuine LDevID: {out}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_hundreds_of_idle_tls_connections_leave_devices_and_the_api_working() {
    let tmp = tempdir();
    castellan_testkit::fleet::hand_over_pki(&state_dir(&tmp));
    let mut config = ServerConfig::new(state_dir(&tmp)).with_ephemeral_ports();
    config.front_door = FrontDoorLimits {
        mqtt_connect_timeout: 3 * SEC,
        mqtt_max_connections_per_address: 200,
        // One stolen certificate opens them all here, to exercise the address cap and the
        // timeouts (the per-certificate cap has its own test in the broker).
        mqtt_max_connections_per_certificate: 1_000,
        api_max_connections_per_address: 100,
        api_tls_timeout: 3 * SEC,
        ..FrontDoorLimits::default()
    };
    let server = Server::start(config).await.unwrap();
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let ca = server.paths().ca_bundle.clone();
    let victim = enrolled(&server, &api, &admin, "CSTL-0701", 81, tmp.path()).await;
    let stolen = enrolled(&server, &api, &admin, "CSTL-0702", 82, tmp.path()).await;
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-0702/revoke",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // 300 TLS connections with the revoked certificate from one address, never a CONNECT.
    let flooder: IpAddr = "127.0.0.2".parse().unwrap();
    let cfg = tls_config(&ca, &stolen.cert("ldevid"), &stolen.key("ldevid")).unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        let Ok(tcp) = tcp_from(flooder, server.mqtt_addr()).await else {
            refused += 1;
            continue;
        };
        match tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
            .connect(name.clone(), tcp)
            .await
        {
            Ok(s) => held.push(s),
            Err(_) => refused += 1,
        }
    }
    // 300 idle connections to the API from another address, not even a TLS ClientHello.
    let api_flooder: IpAddr = "127.0.0.3".parse().unwrap();
    let mut api_idle = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = tcp_from(api_flooder, server.api_addr()).await {
            api_idle.push(s);
        }
    }

    // Meanwhile a device connects and publishes, and the API answers.
    let (ok, out) = publish_status(
        &server,
        &victim.cert("ldevid"),
        &victim.key("ldevid"),
        "CSTL-0701",
        "{\"online\": true}",
    )
    .await;
    assert!(
        ok,
        "a legitimate device could not connect during the flood: {out}"
    );
    let (status, body) = api.call("GET", "/api/v1/health", None, None).await;
    assert_eq!(status, 200, "{body}");

    // The caps held: beyond 200 from the flooding address, connections were closed at once
    // (the TLS handshake of most of the 100 refused ones fails; some complete on the client
    // side and see the close on their first read below).
    let mut closed = refused;
    for s in &mut held {
        if closed_by_peer(s, Duration::from_millis(10)).await {
            closed += 1;
        }
    }
    assert!(closed >= 100, "only {closed} of 300 refused");
    // Every idle connection is closed after the connect timeout (3 s), the API's too.
    for s in &mut held {
        assert!(
            closed_by_peer(s, 15 * SEC).await,
            "an idle MQTT connection stayed open"
        );
    }
    for s in &mut api_idle {
        assert!(
            closed_by_peer(s, 15 * SEC).await,
            "an idle API connection stayed open"
        );
    }
    // The idle connections with the revoked certificate never reached CONNECT: the audit log
    // holds TLS-layer and connect refusals aggregated, not one entry per attempt.
    let entries = audit(&server).await;
    let from_flood = entries
        .iter()
        .filter(|e| e.reason.contains("from 127.0.0.2"))
        .count();
    assert!(from_flood <= 4, "{from_flood} entries for one flood");
    // The API's refusals too: the cap and the TLS timeout, once each for the 300 sockets.
    let api_refusals: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "api.connect" && e.reason.contains("from 127.0.0.3"))
        .collect();
    assert!(
        api_refusals.iter().any(|e| e
            .reason
            .starts_with("too many open API connections from this address")),
        "{api_refusals:?}"
    );
    assert!(
        api_refusals
            .iter()
            .any(|e| e.reason.starts_with("TLS handshake timed out")),
        "{api_refusals:?}"
    );
    assert!(api_refusals.len() <= 3, "{api_refusals:?}");
    server.shutdown().await;
}

/// A TLS connection to the API from `from`, trusting the service's CA bundle.
async fn api_tls_from(
    server: &castellan_server::ServerHandle,
    from: IpAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tcp_from(from, server.api_addr()).await.unwrap();
    tokio_rustls::TlsConnector::from(Api::new(server).tls())
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_slow_loris_headers_and_bodies_on_the_api_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let tmp = tempdir();
    castellan_testkit::fleet::hand_over_pki(&state_dir(&tmp));
    let mut config = ServerConfig::new(state_dir(&tmp)).with_ephemeral_ports();
    config.front_door = FrontDoorLimits {
        api_header_timeout: 2 * SEC,
        api_body_timeout: 2 * SEC,
        api_max_header_bytes: 8 * 1024,
        ..FrontDoorLimits::default()
    };
    let server = Server::start(config).await.unwrap();
    let admin = server.admin_token().unwrap().to_string();
    let from: IpAddr = "127.0.0.5".parse().unwrap();

    // Headers trickled in and never finished: the connection is closed after 2 s.
    let mut slow_head = api_tls_from(&server, from).await;
    slow_head
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nhost: localhost\r\nx-slow: ")
        .await
        .unwrap();
    assert!(
        closed_by_peer(&mut slow_head, 15 * SEC).await,
        "slow head kept open"
    );

    // A body announced at 1,000 bytes of which 10 arrive: cut off after 2 s with an error
    // answer, not held open.
    let mut slow_body = api_tls_from(&server, from).await;
    let head = format!(
        "POST /api/v1/operators HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {admin}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"name\": "
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(15 * SEC, slow_body.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        read.is_ok() && (answer.starts_with("HTTP/1.1 4") || answer.is_empty()),
        "slow body: {read:?} {answer}"
    );

    // An oversize request head is refused (and audited), and the API still answers.
    let mut big = api_tls_from(&server, from).await;
    let huge = format!(
        "GET /api/v1/health HTTP/1.1\r\nhost: localhost\r\nx-big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = big.write_all(huge.as_bytes()).await;
    assert!(closed_by_peer(&mut big, 15 * SEC).await || big.read(&mut [0u8; 16]).await.is_ok());
    let (status, _) = Api::new(&server)
        .call("GET", "/api/v1/health", None, None)
        .await;
    assert_eq!(status, 200);
    assert!(audit_has_refusal(&server, "api.connect", "request head too large").await);
    server.shutdown().await;
}
