//! Real peers: an interactive paho-mqtt device session (tests/peers/paho_device.py), mosquitto
//! clients and openssl. A missing tool fails the test with the command that installs it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

use castellan_testkit::peers::{Recorded, mosquitto, openssl, paho};

pub fn p(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// One paho-mqtt device session.
pub struct Paho {
    child: Child,
    stdin: ChildStdin,
    /// Every event read so far, and those still arriving.
    pub events: Recorded<Value>,
}

impl Paho {
    /// Connect as `client_id` with `cert`/`key`, subscribe to `subscribe`.
    pub fn connect(
        port: u16,
        ca: &Path,
        cert: &Path,
        key: &Path,
        client_id: &str,
        subscribe: &[String],
    ) -> Paho {
        paho::require();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/paho_device.py");
        let scenario = json!({
            "host": "127.0.0.1", "port": port, "ca": p(ca), "cert": p(cert), "key": p(key),
            "client_id": client_id, "version": "311", "subscribe": subscribe,
        });
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(script)
            .arg(scenario.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        Paho {
            child,
            stdin,
            events: Recorded::lines(vec![out], |l| serde_json::from_str(&l).ok()),
        }
    }

    /// The first event (already read or arriving within `limit`) matching `pred`.
    pub async fn wait(&mut self, pred: impl Fn(&Value) -> bool, limit: Duration) -> Option<Value> {
        self.events.wait(pred, limit).await
    }

    pub async fn wait_event(&mut self, name: &str, limit: Duration) -> Option<Value> {
        self.wait(|e| e["event"] == name, limit).await
    }

    /// The next message on `topic` not consumed yet.
    pub async fn message_on(&mut self, topic: &str, limit: Duration) -> Option<String> {
        let got = self
            .wait(
                |e| e["event"] == "message" && e["topic"] == topic && e["seen"].is_null(),
                limit,
            )
            .await?;
        if let Some(e) = self.events.iter_mut().find(|e| **e == got) {
            e["seen"] = json!(true);
        }
        got["payload"].as_str().map(str::to_owned)
    }

    /// The next message on `topic` not consumed yet, as bytes (binary payloads).
    pub async fn bytes_on(&mut self, topic: &str, limit: Duration) -> Option<Vec<u8>> {
        let got = self
            .wait(
                |e| e["event"] == "message" && e["topic"] == topic && e["seen"].is_null(),
                limit,
            )
            .await?;
        if let Some(e) = self.events.iter_mut().find(|e| **e == got) {
            e["seen"] = json!(true);
        }
        got["payload_hex"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
    }

    /// Every message received on `topic` so far (consumed or not).
    pub fn received_on(&self, topic: &str) -> usize {
        self.events
            .iter()
            .filter(|e| e["event"] == "message" && e["topic"] == topic)
            .count()
    }

    /// Read the events that arrived within `limit` (to count messages that should not come).
    pub async fn drain(&mut self, limit: Duration) {
        self.events.drain(limit).await;
    }

    pub async fn publish(&mut self, topic: &str, payload: &str) {
        let line = json!({ "publish": [topic, payload] }).to_string() + "\n";
        let _ = self.stdin.write_all(line.as_bytes()).await;
        let _ = self.stdin.flush().await;
    }

    pub async fn quit(mut self) {
        let _ = self.stdin.write_all(b"{\"quit\": true}\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Runs a command with a time limit; returns (exit success, stdout+stderr).
pub use castellan_testkit::peers::run;

/// `mosquitto_pub` of one QoS 1 message as `client_id`, with an optional client certificate.
pub async fn mosquitto_pub(
    port: u16,
    ca: &Path,
    cert_key: Option<(&Path, &Path)>,
    client_id: &str,
    topic: &str,
    payload: &str,
) -> (bool, String) {
    let mut args: Vec<String> = vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "--cafile".into(),
        p(ca),
        "-i".into(),
        client_id.into(),
    ];
    args.extend(mosquitto::qos1_message(topic, payload));
    if let Some((cert, key)) = cert_key {
        args.extend(["--cert".into(), p(cert), "--key".into(), p(key)]);
    }
    mosquitto::publish(&args).await
}

/// `openssl s_client` to `port` with `extra` arguments; returns (success, output).
pub async fn s_client(port: u16, extra: &[&str]) -> (bool, String) {
    openssl::require();
    let mut args: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        format!("127.0.0.1:{port}"),
        "-brief".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    // stdin closed: s_client ends right after the handshake.
    run("openssl", &args, Duration::from_secs(15)).await
}
