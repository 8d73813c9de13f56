//! Nothing in clear on the wire: a capture of the loopback traffic (tshark) while a device is
//! registered at the factory, onboards with its IDevID, publishes with its LDevID and an
//! operator reads the registry shows only TLS records on the MQTT and API ports.

mod common;

use castellan_store::testing::{TestStore, each_backend};
use castellan_testkit::peers::tshark;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capture_shows_only_tls_records_on_the_mqtt_and_api_ports() {
    tshark::require();
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let ports = [server.mqtt_addr().port(), server.api_addr().port()];
        let file = tmp.path().join("wire.pcapng");
        let capture = tshark::Capture::start(&file, &ports);

        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let dev = enrolled(&server, &api, &admin, "CSTL-0701", 71, tmp.path()).await;
        let (ok, out) = peers::mosquitto_pub(
            ports[0],
            &server.paths().ca_bundle,
            Some((&dev.cert("ldevid"), &dev.key("ldevid"))),
            "CSTL-0701",
            "dev/CSTL-0701/telemetry",
            r#"{"temperature":21.5,"secret":"in-clear?"}"#,
        )
        .await;
        assert!(ok, "{out}");
        let (status, body) = api
            .call("GET", "/api/v1/devices/CSTL-0701", Some(&admin), None)
            .await;
        assert_eq!(status, 200, "{body}");

        let file = tokio::task::spawn_blocking(move || capture.stop())
            .await
            .unwrap();
        let report = tshark::analyse(&file, &ports);
        assert_eq!(
            report.ports_seen,
            {
                let mut p = ports.to_vec();
                p.sort_unstable();
                p
            },
            "the capture missed a port: {report:?}"
        );
        assert!(report.tls_frames > 0, "no TLS at all: {report:?}");
        assert!(
            report.clear_frames.is_empty(),
            "payloads in clear on the MQTT or API port: {:?}",
            report.clear_frames
        );
        // And the payload's words are nowhere in the capture's bytes.
        let bytes = std::fs::read(&file).unwrap();
        for needle in [
            &b"in-clear?"[..],
            b"dev/CSTL-0701/telemetry",
            b"Authorization",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{:?} found in clear in the capture",
                String::from_utf8_lossy(needle)
            );
        }

        // The check sees clear text when there is some: plain bytes sent to the API port.
        let file = tmp.path().join("clear.pcapng");
        let capture = tshark::Capture::start(&file, &ports);
        {
            use std::io::Write as _;
            let mut plain = std::net::TcpStream::connect(server.api_addr()).unwrap();
            plain
                .write_all(b"GET /api/v1/health HTTP/1.1\r\n\r\n")
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let file = tokio::task::spawn_blocking(move || capture.stop())
            .await
            .unwrap();
        let report = tshark::analyse(&file, &ports);
        assert!(
            !report.clear_frames.is_empty(),
            "plain HTTP was not flagged: {report:?}"
        );
        server.shutdown().await;
    })
    .await;
}
