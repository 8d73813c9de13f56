//! `castellan serve --log-format json`: every line the service writes to standard error is one
//! JSON object, with the start event's addresses and each API request's method, route
//! pattern, status and duration as fields.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[test]
fn serve_with_json_logs_writes_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    castellan_testkit::fleet::hand_over_pki(&state);
    let mut child = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["serve", "--mqtt", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .args(["--log-format", "json"])
        .arg("--state-dir")
        .arg(&state)
        .env_remove("CASTELLAN_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Standard output: the banner, as before (read until it says how to stop).
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut api = None;
    for line in out.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("operator API ") {
            api = Some(url.trim().to_string());
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || out.for_each(drop));
    let api = api.expect("the banner names the API");
    let (tx, rx) = mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // One API request through the CLI's own client.
    let listed = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["alerts", "list", "--json", "--server", &api, "--token-file"])
        .arg(state.join("admin.token"))
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    let mut lines = Vec::new();
    let mut started = None;
    let mut request = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while (started.is_none() || request.is_none()) && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line:?}"));
        assert!(event.is_object(), "{line}");
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["target"].is_string(), "{line}");
        let fields = &event["fields"];
        if fields["message"] == "fleet service running" {
            started = Some(event.clone());
        }
        if fields["message"] == "http.request" && fields["route"] == "/api/v1/alerts" {
            request = Some(event.clone());
        }
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let started = started.unwrap_or_else(|| panic!("no start event in {lines:#?}"));
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["fields"]["api"], api.as_str());
    let request = request.unwrap_or_else(|| panic!("no request event in {lines:#?}"));
    assert_eq!(request["target"], "castellan::http");
    assert_eq!(request["fields"]["method"], "GET");
    assert_eq!(request["fields"]["status"], 200);
    assert!(request["fields"]["duration_ms"].as_f64().unwrap() >= 0.0);
}

#[test]
fn serve_refuses_an_unknown_log_format() {
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["serve", "--log-format", "xml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("text") && err.contains("json"), "{err}");
}
