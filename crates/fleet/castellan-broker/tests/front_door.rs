//! The broker's front door under attack: refused connections that must not touch the live
//! session of the identity they claim, connections that never send CONNECT, connection floods
//! from one address or with one certificate, and floods of TLS refusals in the audit log. All on
//! loopback, bounded in count and time.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use castellan_testkit::mqtt_client::{MqttClient, tls_config};
use castellan_testkit::sockets::{closed_by_peer, tcp_from};
use castellan_testkit::test_pki::{CertFiles, ClientCertOptions, TestPki};
use common::*;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

const SEC: Duration = Duration::from_secs(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A client configuration trusting the broker, with `cert` as client certificate (or none).
fn client_tls(env: &Env, cert: Option<&CertFiles>) -> Arc<ClientConfig> {
    match cert {
        Some(c) => tls_config(&env.ca(), &c.cert, &c.key).unwrap(),
        None => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(env.ca()).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
            Arc::new(
                ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        }
    }
}

/// TCP from `from`, then the TLS handshake (client side); sends nothing else.
async fn tls_from(
    env: &Env,
    from: IpAddr,
    cfg: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = tcp_from(from, env.handle.local_addr()).await?;
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_refused_connect_with_victims_old_certificate_leaves_its_session_alone() {
    let env = Env::start(&["dev-b"]).await;
    let mut events = env.handle.subscribe_events();
    // B is online with its current certificate.
    let current = env.cert("dev-b");
    let mut b = MqttClient::connect(
        env.handle.local_addr(),
        tls_config(&env.ca(), &current.cert, &current.key).unwrap(),
        "dev-b",
        60,
    )
    .await
    .unwrap();
    b.publish_qos1("dev/dev-b/telemetry", b"before", 1)
        .await
        .unwrap();
    // An attacker holds one of B's earlier certificates (superseded: the authorizer refuses it)
    // and connects with it, claiming B's identity.
    let old = env.cert_with(
        "dev-b",
        &ClientCertOptions {
            file_suffix: Some("-superseded".into()),
            ..Default::default()
        },
    );
    env.authz.refuse_serial(&old.serial_hex);
    for v in VERSIONS {
        let (ok, out) = env
            .publish_with(&old, "dev-b", "dev/dev-b/telemetry", "x", v)
            .await;
        assert!(!ok, "superseded certificate accepted ({v}): {out}");
    }
    // B's session is untouched: still connected, and its next publish is accepted.
    assert!(env.handle.is_connected("dev-b").await);
    b.publish_qos1("dev/dev-b/telemetry", b"after", 3)
        .await
        .expect("the victim's live session was cut by a refused connection");
    assert!(
        next_event(&mut events, |m| m.payload.as_ref() == b"after", 5 * SEC)
            .await
            .is_some()
    );
    // The refusal names the refused certificate (serial, issuer), not only the CN.
    let refusal = env
        .audit
        .wait_for(|r| r.action == "mqtt.connect" && !r.allowed && r.actor == "dev-b")
        .await
        .unwrap();
    assert!(
        refusal
            .reason
            .contains(&format!("serial {}", old.serial_hex))
            && refusal.reason.contains("issued by CN=fleet test CA"),
        "{refusal:?}"
    );
    assert!(!refusal.reason.contains(&current.serial_hex), "{refusal:?}");
    b.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_idle_tls_connections_never_sending_connect_are_closed() {
    let env = Env::start_with(&["dev-a"], |c| {
        c.handshake_timeout = 2 * SEC;
    })
    .await;
    let idler = env.cert("dev-idle");
    let cfg = client_tls(&env, Some(&idler));
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tls_from(&env, ip("127.0.0.2"), cfg.clone()).await.unwrap());
    }
    // And one that never even starts TLS.
    let mut silent = tcp_from(ip("127.0.0.2"), env.handle.local_addr())
        .await
        .unwrap();
    // Completed TLS, never a CONNECT: each is closed after the connect timeout (2 s for the
    // first packet, bounded here by 15 s); the silent one after 2 s of TLS handshake, audited.
    assert!(closed_by_peer(&mut silent, 15 * SEC).await);
    assert!(
        env.audit
            .wait_for(|r| r.action == "tls.handshake"
                && r.reason
                    .starts_with("TLS handshake timed out; no certificate; from 127.0.0.2"))
            .await
            .is_some(),
        "{:?}",
        env.audit.all()
    );
    for s in &mut idle {
        assert!(
            closed_by_peer(s, 15 * SEC).await,
            "an idle TLS connection without CONNECT was kept open"
        );
    }
    // Their slots are released.
    for _ in 0..50 {
        if env.handle.connections_from(ip("127.0.0.2")) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(env.handle.connections_from(ip("127.0.0.2")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_connection_flood_capped_per_address_and_per_certificate() {
    let env = Env::start_with(&["dev-a", "dev-idle"], |c| {
        c.handshake_timeout = 3 * SEC;
        c.max_connections_per_address = 100;
        c.max_connections_per_certificate = 2;
    })
    .await;
    // 300 idle TCP connections from one address: 100 are held (until the TLS timeout), the
    // other 200 are closed at once.
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = tcp_from(ip("127.0.0.2"), env.handle.local_addr()).await {
            flood.push(s);
        }
    }
    assert!(env.handle.connections_from(ip("127.0.0.2")) <= 100);
    let mut closed_at_once = 0;
    for s in &mut flood {
        if closed_by_peer(s, Duration::from_millis(20)).await {
            closed_at_once += 1;
        }
    }
    assert!(closed_at_once >= 200, "only {closed_at_once} closed");
    // A device from another address still connects and publishes meanwhile.
    let a = env.cert("dev-a");
    let mut dev = MqttClient::connect(
        env.handle.local_addr(),
        tls_config(&env.ca(), &a.cert, &a.key).unwrap(),
        "dev-a",
        60,
    )
    .await
    .unwrap();
    dev.publish_qos1("dev/dev-a/telemetry", b"through the flood", 2)
        .await
        .unwrap();
    dev.disconnect().await.unwrap();
    // One certificate: two connections are held, the third is refused in the handshake.
    let cfg = client_tls(&env, Some(&env.cert("dev-idle")));
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(tls_from(&env, ip("127.0.0.3"), cfg.clone()).await.unwrap());
    }
    let third = tls_from(&env, ip("127.0.0.3"), cfg.clone()).await;
    if let Ok(mut s) = third {
        assert!(closed_by_peer(&mut s, 5 * SEC).await);
    }
    assert!(
        env.audit
            .wait_for(|r| r
                .reason
                .starts_with("too many connections with this certificate"))
            .await
            .is_some()
    );
    assert!(
        env.audit
            .wait_for(|r| r
                .reason
                .starts_with("too many connections from this address"))
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_flood_of_tls_refusals_is_aggregated_in_the_audit_log() {
    let env = Env::start(&["dev-a"]).await;
    let rogue = TestPki::new(&env.dir.path().join("rogue"), "rogue").unwrap();
    let forged = rogue.issue_client("dev-a").unwrap();
    let expired = env.cert_with(
        "dev-a",
        &ClientCertOptions {
            expired: true,
            file_suffix: Some("-expired".into()),
            ..Default::default()
        },
    );
    let attempts = [
        (None, "no client certificate"),
        (Some(&forged), "certificate from an unknown CA"),
        (Some(&expired), "certificate expired"),
    ];
    for (cert, _) in &attempts {
        let cfg = client_tls(&env, *cert);
        for _ in 0..40 {
            if let Ok(mut s) = tls_from(&env, ip("127.0.0.4"), cfg.clone()).await {
                assert!(closed_by_peer(&mut s, 5 * SEC).await);
            }
        }
    }
    for (cert, reason) in &attempts {
        let first = env
            .audit
            .wait_for(|r| r.action == "tls.handshake" && r.reason.starts_with(reason))
            .await
            .unwrap_or_else(|| panic!("no audit entry for {reason}: {:?}", env.audit.all()));
        assert!(first.reason.contains("from 127.0.0.4"), "{first:?}");
        if let Some(c) = cert {
            assert!(first.reason.contains(&c.serial_hex), "{first:?}");
        }
    }
    // 120 refused handshakes, 3 entries so far (one per source, certificate and reason)...
    let tls_entries = |env: &Env| {
        env.audit
            .all()
            .into_iter()
            .filter(|r| r.action == "tls.handshake")
            .collect::<Vec<_>>()
    };
    assert_eq!(tls_entries(&env).len(), 3, "{:?}", tls_entries(&env));
    // ...and one summary per key with the count when the window closes.
    env.handle.flush_refusals();
    let entries = tls_entries(&env);
    assert_eq!(entries.len(), 6, "{entries:?}");
    for (_, reason) in &attempts {
        assert!(
            entries
                .iter()
                .any(|r| r.reason.starts_with(reason) && r.reason.contains("39 more times")),
            "{entries:?}"
        );
    }
    // The genuine device is not affected.
    let (ok, out) = env
        .publish_as("dev-a", "dev/dev-a/telemetry", "genuine", "mqttv311")
        .await;
    assert!(ok, "{out}");
}
