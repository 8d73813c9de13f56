//! Getting every security decision into the store's hash-chained audit log.
//!
//! ```text
//!  broker hooks (sync, on broker tasks) ── AuditWriter::record ──▶ unbounded channel ──▶ task
//!  onboarding, operator API (async)      ── Auditor::append (awaited) ─────────────────▶ │
//!                                                                 Store::append_audit ◀──┘
//! ```
//!
//! The broker's sink must never block a broker thread, so its records go through a channel to
//! one writer task; [`Auditor::flush`] waits until everything sent before it is written (used at
//! shutdown, and by tests). The API and the onboarding service await their own appends, so an
//! answer is only sent once its decision is on disk.

use castellan_store::{AuditRecord, Decision, Store, unix_now};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

enum Msg {
    Record {
        actor: String,
        action: String,
        target: String,
        allowed: bool,
        reason: String,
    },
    Flush(oneshot::Sender<()>),
}

/// Appends audit records to the store: directly (awaited) or through the writer task.
#[derive(Clone)]
pub struct Auditor {
    store: Store,
    tx: mpsc::UnboundedSender<Msg>,
}

impl core::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Auditor").finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor over `store` and its writer task (spawned on the current runtime).
    pub(crate) fn start(store: Store) -> (Auditor, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let writer = store.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Record {
                        actor,
                        action,
                        target,
                        allowed,
                        reason,
                    } => {
                        let rec = AuditRecord {
                            actor: &actor,
                            action: &action,
                            target: &target,
                            decision: decision(allowed),
                            reason: &reason,
                            code: None,
                        };
                        write_with_retry(&writer, &rec).await;
                    }
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        (Auditor { store, tx }, task)
    }

    /// Append one record now and wait until it is stored.
    pub async fn append(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        allowed: bool,
        reason: &str,
    ) {
        self.append_coded(actor, action, target, allowed, None, reason)
            .await;
    }

    /// [`Auditor::append`] with the refusal's stable machine `code` beside its reason.
    pub async fn append_coded(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        allowed: bool,
        code: Option<&str>,
        reason: &str,
    ) {
        let rec = AuditRecord {
            actor,
            action,
            target,
            decision: decision(allowed),
            reason,
            code,
        };
        write_with_retry(&self.store, &rec).await;
    }

    /// Wait until every record sent through the broker's sink before this call is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

impl castellan_broker::AuditSink for Auditor {
    fn record(&self, actor: &str, action: &str, target: &str, allowed: bool, reason: &str) {
        let _ = self.tx.send(Msg::Record {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            allowed,
            reason: reason.into(),
        });
    }
}

fn decision(allowed: bool) -> Decision {
    if allowed {
        Decision::Allowed
    } else {
        Decision::Refused
    }
}

/// How long an append is retried before its record is given up (logged in full as lost): long
/// enough for a database restart or a failover of the PostgreSQL server, which must not cost
/// the log the decisions taken meanwhile (`tests/cluster_pg_restart.rs`). Records behind it
/// wait in order.
const RETRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);
/// The longest pause between two attempts.
const RETRY_MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Attempts at an append refused for another reason than an unreachable or failing database
/// (a constraint, a tampered chain, the anchor file): those do not heal by waiting.
const OTHER_ERROR_ATTEMPTS: u32 = 5;

/// An audit record that cannot be written is a serious fault: retry while the database is
/// unreachable or failing (busy, restarting) for up to [`RETRY_BUDGET`], any other error
/// [`OTHER_ERROR_ATTEMPTS`] times, then log it loudly with its content so that it is not lost
/// silently.
async fn write_with_retry(store: &Store, rec: &AuditRecord<'_>) {
    let started = std::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(50);
    for attempt in 1u32.. {
        match store.append_audit(rec, unix_now()).await {
            Ok(_) => {
                if attempt > 1 {
                    log::warn!("audit append succeeded at attempt {attempt}");
                }
                return;
            }
            Err(e)
                if started.elapsed() + delay > RETRY_BUDGET
                    || (!matches!(
                        e,
                        castellan_store::StoreError::Connect { .. }
                            | castellan_store::StoreError::Database { .. }
                    ) && attempt >= OTHER_ERROR_ATTEMPTS) =>
            {
                log::error!(
                    "audit record LOST ({e}): actor={} action={} target={} decision={:?} code={:?} \
                     reason={}",
                    rec.actor,
                    rec.action,
                    rec.target,
                    rec.decision,
                    rec.code,
                    rec.reason
                );
                return;
            }
            Err(e) => {
                if attempt == 1 || attempt % 10 == 0 {
                    log::warn!("audit append failed (attempt {attempt}), retrying: {e}");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX_DELAY);
            }
        }
    }
}
