//! The alert webhook against a loopback HTTPS receiver (certificate from a test PKI, trusted
//! through `--alert-webhook-ca` alone): the receiver checks the signature; a failing receiver
//! gets three attempts, one refused audit entry, and never makes the alert pipeline wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use castellan_pki::{KeyBackend, Pki};
use castellan_store::testing::TestStore;
use castellan_store::{AuditFilter, Decision};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

use super::webhook::{AlertWebhook, SIGNATURE_HEADER, sign, start};
use crate::audit::Auditor;

const SECRET: &[u8] = b"shared-webhook-secret";

/// One loopback HTTPS receiver answering `status`; counts requests and signature checks that
/// passed.
struct Receiver {
    url: String,
    ca_pem: String,
    requests: Arc<AtomicUsize>,
    verified: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

async fn receiver(status: u16) -> Receiver {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(&dir.path().join("pki"), KeyBackend::Files).unwrap();
    let creds = pki.issue_server_cert(&["127.0.0.1"]).unwrap();
    let cert = dir.path().join("hook.pem");
    let key = dir.path().join("hook.key");
    std::fs::write(
        &cert,
        format!("{}{}", creds.certificate.pem, creds.chain_pem),
    )
    .unwrap();
    std::fs::write(&key, creds.key_pem.as_bytes()).unwrap();
    let acceptor = crate::https::acceptor(&cert, &key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let verified = Arc::new(AtomicUsize::new(0));
    let (r, v) = (requests.clone(), verified.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then the body by its content-length.
            let (head, body) = loop {
                let n = tls.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = header(&head, "content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let n = tls.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[end + 4..].to_vec());
                }
            };
            r.fetch_add(1, Ordering::SeqCst);
            if let Some(sig) = header(&head, SIGNATURE_HEADER) {
                let (t, v1) = sig.split_once(",v1=").unwrap_or_default();
                let t: i64 = t
                    .strip_prefix("t=")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let fresh = (castellan_store::unix_now() - t).abs() < 300;
                if fresh && sign(SECRET, t, &body) == v1 && body.starts_with(b"{") {
                    v.fetch_add(1, Ordering::SeqCst);
                }
            }
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    Receiver {
        url: format!("https://127.0.0.1:{port}/castellan"),
        ca_pem: pki.root_pem(),
        requests,
        verified,
        _dir: dir,
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

async fn webhook_entries(t: &TestStore) -> Vec<castellan_store::AuditEntry> {
    let filter = AuditFilter {
        action: Some("alert.webhook".into()),
        limit: 100,
        ..AuditFilter::default()
    };
    t.store.search_audit(&filter).await.unwrap()
}

async fn wait_entries(t: &TestStore, n: usize) -> Vec<castellan_store::AuditEntry> {
    for _ in 0..200 {
        let e = webhook_entries(t).await;
        if e.len() >= n {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("alert.webhook entries: {:#?}", webhook_entries(t).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivers_the_alert_signed_and_audits_it() {
    let t = TestStore::sqlite().await;
    let (auditor, _writer) = Auditor::start(t.store.clone());
    let rx = receiver(200).await;
    let hook = AlertWebhook::new(&rx.url, SECRET, Some(rx.ca_pem.clone())).unwrap();
    let (_stop, stop_rx) = watch::channel(false);
    let (deliveries, _task) = start(hook, auditor, stop_rx);
    assert!(deliveries.offer("alr-1", br#"{"alert_id":"alr-1"}"#.to_vec()));
    let entries = wait_entries(&t, 1).await;
    assert_eq!(entries[0].target, "alr-1");
    assert_eq!(entries[0].decision, Decision::Allowed, "{:?}", entries[0]);
    assert!(
        entries[0].reason.contains("HTTP 200, attempt 1"),
        "{:?}",
        entries[0]
    );
    assert_eq!(rx.requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        rx.verified.load(Ordering::SeqCst),
        1,
        "the signature did not verify"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_webhook_receiver_with_another_ca_gets_nothing() {
    // A receiver whose certificate the configured CA did not issue (a man in the middle):
    // nothing is sent to it, and the failure is audited.
    let t = TestStore::sqlite().await;
    let (auditor, _writer) = Auditor::start(t.store.clone());
    let rx = receiver(200).await;
    let other = receiver(200).await;
    let mut hook = AlertWebhook::new(&rx.url, SECRET, Some(other.ca_pem.clone())).unwrap();
    hook.backoff = Duration::from_millis(10);
    let (_stop, stop_rx) = watch::channel(false);
    let (deliveries, _task) = start(hook, auditor, stop_rx);
    assert!(deliveries.offer("alr-3", b"{}".to_vec()));
    let entries = wait_entries(&t, 1).await;
    assert_eq!(entries[0].decision, Decision::Refused);
    assert_eq!(rx.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_webhook_is_retried_three_times_audited_and_never_blocks_alerts() {
    let t = TestStore::sqlite().await;
    let (auditor, _writer) = Auditor::start(t.store.clone());
    let rx = receiver(500).await;
    let mut hook = AlertWebhook::new(&rx.url, SECRET, Some(rx.ca_pem.clone())).unwrap();
    hook.backoff = Duration::from_millis(50);
    let (_stop, stop_rx) = watch::channel(false);
    let (deliveries, _task) = start(hook, auditor, stop_rx);
    // Handing alerts over never waits for the receiver.
    let began = Instant::now();
    for i in 0..3 {
        assert!(deliveries.offer(&format!("alr-f{i}"), b"{}".to_vec()));
    }
    assert!(
        began.elapsed() < Duration::from_millis(100),
        "{:?}",
        began.elapsed()
    );
    let entries = wait_entries(&t, 3).await;
    for e in &entries {
        assert_eq!(e.decision, Decision::Refused, "{e:?}");
        assert!(e.reason.contains("3 attempts failed"), "{e:?}");
        assert!(e.reason.contains("HTTP 500"), "{e:?}");
    }
    assert_eq!(rx.requests.load(Ordering::SeqCst), 9);
}
