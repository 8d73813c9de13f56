//! Alert notifications to an integration's HTTPS endpoint (`castellan serve --alert-webhook`):
//! every alert the service raises is POSTed as the API shows it (`AlertJson`), signed so that
//! the receiver can tell it came from this service and was not replayed long after.
//!
//! ```text
//!  alert raised ─▶ try_send (bounded queue, never waits) ─▶ delivery task
//!                  queue full: audited as dropped             POST url, body = alert JSON
//!                                                              X-Castellan-Signature:
//!                                                                t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>
//!                                                              up to 3 attempts (backoff 0.5 s, 1 s)
//!                                                              audit "alert.webhook": delivered / failed
//! ```
//!
//! HTTPS only: a URL with any other scheme is refused when the configuration is read. The
//! receiver's certificate is checked against `--alert-webhook-ca` when given (only that CA),
//! otherwise against the platform's trust store. Redirects are not followed.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};
use zeroize::Zeroizing;

use crate::audit::Auditor;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Castellan-Signature";

/// Attempts per alert before the delivery is audited as failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// Alerts waiting for delivery at most; beyond it an alert's notification is dropped (and
/// audited), never the alert pipeline slowed.
const QUEUE: usize = 256;

/// Why a webhook configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// The URL is not `https://…` (alerts carry device evidence; they never travel in clear).
    #[error("alert webhook {0:?}: only https:// URLs are accepted")]
    NotHttps(String),
    /// The URL does not parse.
    #[error("alert webhook {url:?}: {detail}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The shared secret is empty (or only white space).
    #[error("the alert webhook's secret is empty")]
    EmptySecret,
    /// The CA bundle holds no usable certificate.
    #[error("alert webhook CA: {0}")]
    BadCa(String),
}

/// Where alerts are sent, and how they are signed.
#[derive(Clone)]
pub struct AlertWebhook {
    url: String,
    secret: Arc<Zeroizing<Vec<u8>>>,
    ca_pem: Option<String>,
    /// Pause before the second attempt (doubled before the third).
    pub backoff: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
}

impl std::fmt::Debug for AlertWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWebhook")
            .field("url", &self.url)
            .field("ca", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl AlertWebhook {
    /// A webhook to `url` (https only) signed with `secret` (surrounding white space, such as
    /// a file's final newline, is not part of it), its server checked against `ca_pem` when
    /// given.
    pub fn new(url: &str, secret: &[u8], ca_pem: Option<String>) -> Result<Self, WebhookError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| WebhookError::BadUrl {
            url: url.into(),
            detail: e.to_string(),
        })?;
        if parsed.scheme() != "https" {
            return Err(WebhookError::NotHttps(url.into()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(WebhookError::BadUrl {
                url: url.into(),
                detail: "no host".into(),
            });
        }
        let secret = secret.trim_ascii();
        if secret.is_empty() {
            return Err(WebhookError::EmptySecret);
        }
        if let Some(pem) = &ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| WebhookError::BadCa(e.to_string()))?;
            if certs.is_empty() {
                return Err(WebhookError::BadCa("no certificate in the PEM".into()));
            }
        }
        Ok(AlertWebhook {
            url: url.into(),
            secret: Arc::new(Zeroizing::new(secret.to_vec())),
            ca_pem,
            backoff: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(5),
        })
    }

    /// The URL alerts go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signature header's value for `body` sent at `t` (Unix seconds).
    pub fn signature(&self, t: i64, body: &[u8]) -> String {
        format!("t={t},v1={}", sign(&self.secret, t, body))
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.attempt_timeout);
        if let Some(pem) = &self.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| e.to_string())?;
            b = b.tls_certs_only(certs);
        }
        b.build().map_err(|e| e.to_string())
    }
}

/// `hex(HMAC-SHA256(secret, "<t>.<body>"))`: what a receiver recomputes and compares (in
/// constant time) with `v1`, after checking that `t` is recent.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The queue the alert pipeline hands notifications to.
#[derive(Debug, Clone)]
pub(crate) struct Deliveries {
    tx: mpsc::Sender<(String, Vec<u8>)>,
}

impl Deliveries {
    /// Queue `body` (alert `alert_id`) for delivery; `false` when the queue is full (the
    /// caller audits the dropped notification). Never waits.
    pub(crate) fn offer(&self, alert_id: &str, body: Vec<u8>) -> bool {
        self.tx.try_send((alert_id.to_owned(), body)).is_ok()
    }
}

/// The delivery task for `hook`: sends what is queued until `stop`, auditing each delivery.
pub(crate) fn start(
    hook: AlertWebhook,
    auditor: Auditor,
    mut stop: watch::Receiver<bool>,
) -> (Deliveries, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<(String, Vec<u8>)>(QUEUE);
    let task = tokio::spawn(async move {
        let client = match hook.client() {
            Ok(c) => Some(c),
            Err(e) => {
                log::warn!("alert webhook: no HTTPS client: {e}");
                None
            }
        };
        loop {
            let (alert_id, body) = tokio::select! {
                next = rx.recv() => match next { Some(n) => n, None => return },
                _ = stop.changed() => return,
            };
            let outcome = match &client {
                Some(c) => deliver(c, &hook, &body).await,
                None => Err("no HTTPS client".into()),
            };
            let (ok, reason) = match outcome {
                Ok((attempt, status)) => (
                    true,
                    format!(
                        "{alert_id} delivered to {} (HTTP {status}, attempt {attempt})",
                        hook.url
                    ),
                ),
                Err(e) => {
                    log::warn!("alert {alert_id}: webhook failed: {e}");
                    (
                        false,
                        format!("{alert_id} not delivered to {}: {e}", hook.url),
                    )
                }
            };
            auditor
                .append("system", "alert.webhook", &alert_id, ok, &reason)
                .await;
        }
    });
    (Deliveries { tx }, task)
}

/// Up to [`MAX_ATTEMPTS`] POSTs; the attempt and status of the first 2xx answer, or the last
/// error of each attempt.
async fn deliver(
    client: &reqwest::Client,
    hook: &AlertWebhook,
    body: &[u8],
) -> Result<(u32, u16), String> {
    let mut errors = Vec::new();
    let mut pause = hook.backoff;
    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
        let t = castellan_store::unix_now();
        let sent = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, hook.signature(t, body))
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok((attempt, r.status().as_u16())),
            Ok(r) => errors.push(format!("HTTP {}", r.status().as_u16())),
            Err(e) => errors.push(error_chain(&e)),
        }
    }
    Err(format!(
        "{MAX_ATTEMPTS} attempts failed ({})",
        errors.join("; ")
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_plain_http_webhook_url_refused() {
        assert_eq!(
            AlertWebhook::new("http://siem.example/hook", b"s", None).unwrap_err(),
            WebhookError::NotHttps("http://siem.example/hook".into())
        );
        assert!(matches!(
            AlertWebhook::new("not a url", b"s", None),
            Err(WebhookError::BadUrl { .. })
        ));
        assert_eq!(
            AlertWebhook::new("https://siem.example/hook", b" \n", None).unwrap_err(),
            WebhookError::EmptySecret
        );
        assert!(matches!(
            AlertWebhook::new("https://siem.example/hook", b"s", Some("nope".into())),
            Err(WebhookError::BadCa(_))
        ));
    }

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // The secret file's final newline is not part of the key.
        let hook = AlertWebhook::new("https://h.example/", b"key\n", None).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            hook.signature(1_700_000_000, b"{\"a\":1}"),
            format!("t=1700000000,v1={want}")
        );
        // A different time or body changes it.
        assert_ne!(sign(b"key", 1_700_000_001, b"{\"a\":1}"), want);
        assert_ne!(sign(b"key", 1_700_000_000, b"{\"a\":2}"), want);
    }
}
