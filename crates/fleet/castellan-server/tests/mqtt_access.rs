//! Mutual-TLS MQTT access with real peers (mosquitto clients, paho-mqtt, openssl) against the
//! running server's PKI, on SQLite and PostgreSQL: no client certificate, a certificate from an
//! unknown CA and TLS 1.1 are refused; a revoked device is refused at its next connection and
//! its open session is closed; a device cannot publish or subscribe to another device's topics.

mod common;

use std::time::Duration;

use castellan_pki::{KeyBackend, Pki};
use castellan_store::testing::{TestStore, each_backend};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_tls_without_client_certificate_unknown_ca_or_tls_1_1_refused() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let dev = enrolled(&server, &api, &admin, "CSTL-0101", 11, tmp.path()).await;
        let port = server.mqtt_addr().port();
        let ca = &server.paths().ca_bundle;

        // Sanity: the device's own LDevID gets in.
        let (ok, out) = peers::mosquitto_pub(
            port,
            ca,
            Some((&dev.cert("ldevid"), &dev.key("ldevid"))),
            "CSTL-0101",
            "dev/CSTL-0101/status",
            r#"{"online":true}"#,
        )
        .await;
        assert!(ok, "{out}");

        // No client certificate.
        let (ok, out) =
            peers::mosquitto_pub(port, ca, None, "CSTL-0101", "dev/CSTL-0101/status", "{}").await;
        assert!(!ok, "connected without a client certificate: {out}");

        // A certificate for the same device id from a CA the server does not know.
        let rogue = Pki::init(&tmp.path().join("rogue-pki"), KeyBackend::Files).unwrap();
        let creds = rogue.issue_operator_client_cert("CSTL-0101").unwrap();
        let (cert, key) = (tmp.path().join("rogue.pem"), tmp.path().join("rogue.key"));
        std::fs::write(&cert, &creds.certificate.pem).unwrap();
        std::fs::write(&key, creds.key_pem.as_bytes()).unwrap();
        let (ok, out) = peers::mosquitto_pub(
            port,
            ca,
            Some((&cert, &key)),
            "CSTL-0101",
            "dev/CSTL-0101/status",
            "{}",
        )
        .await;
        assert!(
            !ok,
            "connected with a certificate from an unknown CA: {out}"
        );

        // TLS 1.1 is refused on the broker and on the API; TLS 1.2 and 1.3 are served.
        for p in [port, server.api_addr().port()] {
            // SECLEVEL=0 lets OpenSSL 3 really offer TLS 1.1, so the refusal is the server's.
            let (ok, out) = peers::s_client(p, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]).await;
            assert!(!ok, "TLS 1.1 handshake succeeded on {p}: {out}");
            assert!(
                out.contains("alert handshake failure") || out.contains("alert protocol version"),
                "TLS 1.1 on {p}: expected a fatal alert from the server: {out}"
            );
            for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
                let (_, out) = peers::s_client(
                    p,
                    &[
                        flag,
                        "-CAfile",
                        &peers::p(ca),
                        "-cert",
                        &peers::p(&dev.cert("ldevid")),
                        "-key",
                        &peers::p(&dev.key("ldevid")),
                    ],
                )
                .await;
                assert!(out.contains(version), "{version} not served on {p}: {out}");
            }
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_device_refused_and_its_open_session_closed() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let dev = enrolled(&server, &api, &admin, "CSTL-0201", 21, tmp.path()).await;
        let (mut session, codes) = ldevid_session(&server, &dev, &["dev/CSTL-0201/cmd/#"]).await;
        assert_eq!(codes, json!([1]));
        assert!(server.is_connected("CSTL-0201").await);

        let (status, body) = api
            .call(
                "POST",
                "/api/v1/devices/CSTL-0201/revoke",
                Some(&admin),
                Some(&json!({"reason": "keyCompromise"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["session_closed"], true);
        assert_eq!(body["revoked_serials"].as_array().unwrap().len(), 2);
        // The open session is closed.
        assert!(
            session
                .wait_event("disconnected", Duration::from_secs(10))
                .await
                .is_some(),
            "the revoked device's session stayed open: {:?}",
            session.events
        );
        session.quit().await;
        // And the next connections are refused, with the LDevID and with the IDevID.
        for name in ["ldevid", "idevid"] {
            let (ok, out) = peers::mosquitto_pub(
                server.mqtt_addr().port(),
                &server.paths().ca_bundle,
                Some((&dev.cert(name), &dev.key(name))),
                "CSTL-0201",
                "dev/CSTL-0201/status",
                "{}",
            )
            .await;
            assert!(!ok, "revoked {name} connected: {out}");
        }
        assert!(audit_has_refusal(&server, "mqtt.connect", "revoked (keyCompromise)").await);
        let log = audit(&server).await;
        assert!(log.iter().any(|e| e.action == "api.device.revoke"
            && e.actor == "admin"
            && e.reason.contains("open session closed")));
        let (_, d) = api
            .call("GET", "/api/v1/devices/CSTL-0201", Some(&admin), None)
            .await;
        assert_eq!(d["revoked"], true);
        assert_eq!(d["connected"], false);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_device_a_cannot_publish_or_subscribe_to_device_b_topics() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let a = enrolled(&server, &api, &admin, "DEV-A", 31, tmp.path()).await;
        let b = enrolled(&server, &api, &admin, "DEV-B", 32, tmp.path()).await;

        // B listens on its command topic.
        let (mut b_session, codes) = ldevid_session(&server, &b, &["dev/DEV-B/cmd/#"]).await;
        assert_eq!(codes, json!([1]));
        // A may not subscribe to B's commands, nor to everyone's, but may to its own.
        for (filter, granted) in [
            ("dev/DEV-B/cmd/#", false),
            ("dev/+/cmd/#", false),
            ("#", false),
            ("dev/DEV-A/cmd/#", true),
        ] {
            let (s, codes) = ldevid_session(&server, &a, &[filter]).await;
            let code = codes[0].as_u64().unwrap();
            assert_eq!(
                code < 0x80,
                granted,
                "A subscribing to {filter}: code {code}"
            );
            s.quit().await;
        }
        // A publishing to B's topics is refused (and the session dropped); B receives nothing.
        let (mut s, _) = ldevid_session(&server, &a, &["dev/DEV-A/cmd/#"]).await;
        s.publish("dev/DEV-B/cmd/reboot", "{}").await;
        assert!(
            s.wait_event("disconnected", Duration::from_secs(10))
                .await
                .is_some(),
            "{:?}",
            s.events
        );
        s.quit().await;
        let (ok, _) = peers::mosquitto_pub(
            server.mqtt_addr().port(),
            &server.paths().ca_bundle,
            Some((&a.cert("ldevid"), &a.key("ldevid"))),
            "DEV-A",
            "dev/DEV-B/telemetry",
            r#"{"temperature_c": -99}"#,
        )
        .await;
        let _ = ok;
        // A cannot pose as B by choosing B's client id.
        let (ok, out) = peers::mosquitto_pub(
            server.mqtt_addr().port(),
            &server.paths().ca_bundle,
            Some((&a.cert("ldevid"), &a.key("ldevid"))),
            "DEV-B",
            "dev/DEV-B/telemetry",
            "{}",
        )
        .await;
        assert!(!ok, "A connected with B's client id: {out}");
        assert!(
            b_session
                .message_on("dev/DEV-B/cmd/reboot", Duration::from_millis(500))
                .await
                .is_none()
        );
        b_session.quit().await;
        let (_, tel) = api
            .call("GET", "/api/v1/devices/DEV-B/telemetry", Some(&admin), None)
            .await;
        assert_eq!(tel, json!([]), "A's forged telemetry reached B's record");
        assert!(audit_has_refusal(&server, "mqtt.publish", "topic outside the topic policy").await);
        assert!(
            audit_has_refusal(&server, "mqtt.subscribe", "filter outside the topic policy").await
        );
        assert!(audit_has_refusal(&server, "mqtt.connect", "differs from certificate CN").await);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quarantined_device_is_restricted_to_the_update_channel_and_released() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let dev = enrolled(&server, &api, &admin, "CSTL-0301", 41, tmp.path()).await;
        let (mut s, _) = ldevid_session(&server, &dev, &["dev/CSTL-0301/cmd/#"]).await;
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/devices/CSTL-0301/quarantine",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            s.wait_event("disconnected", Duration::from_secs(10))
                .await
                .is_some()
        );
        s.quit().await;
        let (s, codes) = ldevid_session(
            &server,
            &dev,
            &["dev/CSTL-0301/cmd/#", "dev/CSTL-0301/down/update/#"],
        )
        .await;
        assert_eq!(
            codes,
            json!([128, 1]),
            "quarantine policy: commands refused, updates allowed"
        );
        s.quit().await;
        let (status, _) = api
            .call(
                "DELETE",
                "/api/v1/devices/CSTL-0301/quarantine",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let (s, codes) = ldevid_session(&server, &dev, &["dev/CSTL-0301/cmd/#"]).await;
        assert_eq!(codes, json!([1]));
        s.quit().await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_unknown_superseded_or_decommissioned_identities_refused() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let port = server.mqtt_addr().port();
        let ca = server.paths().ca_bundle.clone();
        let mut dev = enrolled(&server, &api, &admin, "CSTL-0401", 61, tmp.path()).await;

        // A valid certificate of our own CA for a device the registry does not know.
        let ghost = TestDevice::new("GHOST-1", 62, tmp.path());
        let csr = ghost.csr_for_new_key("ldevid");
        let cert = server
            .pki()
            .issue_ldevid(castellan_pki::LdevidKey::Csr(&csr), "GHOST-1")
            .unwrap();
        std::fs::write(ghost.cert("ldevid"), &cert.pem).unwrap();
        let (ok, out) = peers::mosquitto_pub(
            port,
            &ca,
            Some((&ghost.cert("ldevid"), &ghost.key("ldevid"))),
            "GHOST-1",
            "dev/GHOST-1/status",
            "{}",
        )
        .await;
        assert!(!ok, "unknown device connected: {out}");
        assert!(audit_has_refusal(&server, "mqtt.connect", "unknown device GHOST-1").await);

        // Re-onboarding supersedes the previous LDevID.
        std::fs::copy(dev.cert("ldevid"), dev.cert("old")).unwrap();
        std::fs::copy(dev.key("ldevid"), dev.key("old")).unwrap();
        let again = onboard(&server, &mut dev, EvidenceKind::Honest).await;
        assert!(again.accepted);
        let (ok, out) = peers::mosquitto_pub(
            port,
            &ca,
            Some((&dev.cert("old"), &dev.key("old"))),
            "CSTL-0401",
            "dev/CSTL-0401/status",
            "{}",
        )
        .await;
        assert!(!ok, "superseded LDevID connected: {out}");
        assert!(audit_has_refusal(&server, "mqtt.connect", "revoked (superseded)").await);
        let (ok, out) = peers::mosquitto_pub(
            port,
            &ca,
            Some((&dev.cert("ldevid"), &dev.key("ldevid"))),
            "CSTL-0401",
            "dev/CSTL-0401/status",
            "{}",
        )
        .await;
        assert!(ok, "the new LDevID: {out}");

        // A decommissioned device is refused whatever it presents.
        server
            .store()
            .set_lifecycle("CSTL-0401", 0x6000)
            .await
            .unwrap();
        let (ok, _) = peers::mosquitto_pub(
            port,
            &ca,
            Some((&dev.cert("ldevid"), &dev.key("ldevid"))),
            "CSTL-0401",
            "dev/CSTL-0401/status",
            "{}",
        )
        .await;
        assert!(!ok, "decommissioned device connected");
        assert!(audit_has_refusal(&server, "mqtt.connect", "decommissioned").await);
        server.shutdown().await;
    })
    .await;
}
