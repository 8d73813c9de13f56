//! Connection refusals in the audit log, aggregated so that a flood cannot flood the log.
//!
//! A refusal is keyed by (action, source address, certificate fingerprint, reason). The first
//! refusal of a key in a window is recorded at once, naming the certificate (serial, issuer,
//! SHA-256) and the source; further refusals of the same key in the window are only counted,
//! and one summary entry per key ("… 41 more times from 10.0.0.7 in the last 60 s") is written
//! when the window closes. At most [`MAX_KEYS_PER_WINDOW`] keys are itemised per window; refusals
//! beyond that are counted into a single overflow entry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::auth::AuditSink;
use crate::gate::VerifiedCert;

/// Audit action of refusals during the TLS handshake (and of the caps before it).
pub const ACTION_TLS: &str = "tls.handshake";

/// Distinct refusal keys itemised in one window.
pub const MAX_KEYS_PER_WINDOW: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    action: &'static str,
    source: IpAddr,
    sha256: Option<String>,
    reason: String,
}

struct Pending {
    actor: String,
    target: String,
    detail: String,
    repeats: u64,
}

#[derive(Default)]
struct Window {
    keys: HashMap<Key, Pending>,
    overflow: u64,
}

/// The aggregating refusal recorder. The broker keeps one for its listener; the fleet server
/// keeps another for its HTTPS API.
pub struct RefusalLog {
    audit: Arc<dyn AuditSink>,
    window: Duration,
    state: Mutex<Window>,
}

impl std::fmt::Debug for RefusalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalLog")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl RefusalLog {
    /// A recorder writing to `audit`, closing a window every `window`.
    pub fn new(audit: Arc<dyn AuditSink>, window: Duration) -> Arc<RefusalLog> {
        Arc::new(RefusalLog {
            audit,
            window,
            state: Mutex::new(Window::default()),
        })
    }

    /// Closes a window every `window` until the recorder is dropped (spawned on the runtime).
    pub fn spawn_flusher(log: &Arc<RefusalLog>) {
        let weak: Weak<RefusalLog> = Arc::downgrade(log);
        let period = log.window.max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                match weak.upgrade() {
                    Some(log) => log.flush(),
                    None => return,
                }
            }
        });
    }

    /// A refusal at the TLS layer (or by a cap before it) from `source`, with the certificate
    /// presented if any.
    pub fn note(
        &self,
        action: &'static str,
        source: IpAddr,
        cert: Option<&VerifiedCert>,
        reason: &str,
    ) {
        let actor = cert
            .and_then(|c| c.common_name.clone())
            .unwrap_or_else(|| "-".into());
        self.note_as(action, source, cert, reason, &actor, &source.to_string());
    }

    /// A refusal with an explicit actor and target (the CONNECT hook: CN and client id).
    pub(crate) fn note_as(
        &self,
        action: &'static str,
        source: IpAddr,
        cert: Option<&VerifiedCert>,
        reason: &str,
        actor: &str,
        target: &str,
    ) {
        let key = Key {
            action,
            source,
            sha256: cert.map(|c| c.sha256.clone()),
            reason: reason.to_owned(),
        };
        let detail = match cert {
            Some(c) => format!("{reason}; {}; from {source}", c.describe()),
            None => format!("{reason}; no certificate; from {source}"),
        };
        let first = {
            let mut w = lock(&self.state);
            if let Some(p) = w.keys.get_mut(&key) {
                p.repeats += 1;
                false
            } else if w.keys.len() >= MAX_KEYS_PER_WINDOW {
                w.overflow += 1;
                false
            } else {
                w.keys.insert(
                    key,
                    Pending {
                        actor: actor.to_owned(),
                        target: target.to_owned(),
                        detail: detail.clone(),
                        repeats: 0,
                    },
                );
                true
            }
        };
        if first {
            log::warn!("{action} {actor} -> {target}: refused ({detail})");
            self.audit.record(actor, action, target, false, &detail);
        }
    }

    /// Closes the window: one summary entry per key that repeated, one for the overflow.
    pub fn flush(&self) {
        let w = std::mem::take(&mut *lock(&self.state));
        let secs = self.window.as_secs_f64();
        for (key, p) in w.keys {
            if p.repeats > 0 {
                let reason = format!(
                    "{} (repeated {} more times in the last {secs:.0} s)",
                    p.detail, p.repeats
                );
                log::warn!(
                    "{} {} -> {}: refused ({reason})",
                    key.action,
                    p.actor,
                    p.target
                );
                self.audit
                    .record(&p.actor, key.action, &p.target, false, &reason);
            }
        }
        if w.overflow > 0 {
            let reason = format!(
                "{} further connection refusals in the last {secs:.0} s from sources or \
                 certificates beyond the {MAX_KEYS_PER_WINDOW} itemised",
                w.overflow
            );
            log::warn!("{reason}");
            self.audit.record("-", ACTION_TLS, "*", false, &reason);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
