//! Leases with fencing epochs: the work that must happen once in a fleet of several service
//! instances (campaign ticks, TUF timestamp re-signing, the analysis window) runs only on the
//! instance that holds its lease, and every write it makes proves, inside the write's own
//! transaction, that the lease is still held.
//!
//! ```text
//!  instance A: acquire("campaigns") ─▶ epoch 1 ─▶ fenced(epoch 1, tick) ─▶ writes checked ✓
//!  A stalls past expires_at ······································ (lease expired)
//!  instance B: acquire("campaigns") ─▶ epoch 2 ─▶ fenced(epoch 2, tick) ─▶ writes checked ✓
//!  A wakes:    fenced(epoch 1, tick) ─▶ first write ─▶ StoreError::Fenced, nothing applied
//! ```
//!
//! The check runs at the start of every transaction (and around every single statement) that
//! a store operation makes inside [`fenced`]: it reads the lease row (locked `FOR UPDATE` on
//! PostgreSQL, so a takeover waits for the write to commit; SQLite serialises writers with
//! `BEGIN IMMEDIATE`) and refuses unless holder and epoch are the caller's and the lease has
//! not expired. Expiry compares Unix milliseconds from the instances' clocks: instances must
//! keep their clocks synchronised (NTP) to well within a lease's lifetime.
//!
//! The fence travels with the task (a Tokio task-local), so store operations need no extra
//! argument; work spawned onto other tasks from inside [`fenced`] is not fenced.

use core::future::Future;

use crate::db::Session;
use crate::registry::finish;
use crate::{Store, StoreError};

tokio::task_local! {
    static FENCE: Fence;
}

/// Proof that this instance held a lease at a given epoch: what fenced writes are checked
/// against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The lease's name.
    pub lease: String,
    /// This instance's name.
    pub holder: String,
    /// The epoch it holds.
    pub epoch: i64,
}

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name.
    pub name: String,
    /// The instance that holds (or last held) it.
    pub holder: String,
    /// Raised at every change of holder.
    pub epoch: i64,
    /// Until when it is held, Unix milliseconds (0 once given up).
    pub expires_at: i64,
}

/// The answer to [`Store::acquire_lease`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAnswer {
    /// The caller holds the lease until the returned expiry; `taken_over` when this call raised
    /// the epoch (first acquisition, takeover of an expired lease, or a restart of the holder).
    Held {
        /// The fence to write under.
        fence: Fence,
        /// Until when, Unix milliseconds.
        expires_at: i64,
        /// Whether the epoch changed in this call.
        taken_over: bool,
        /// The lease as it was when another instance held it (`None` when it was free, or
        /// this caller's): a failover when that holder had not given it up.
        previous: Option<Lease>,
    },
    /// Another instance holds it.
    HeldBy(Lease),
}

/// The current time in Unix milliseconds (the clock leases are measured with).
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Run `work` with every store write it makes fenced by `fence`: a write made after the lease
/// was lost fails with [`StoreError::Fenced`] and changes nothing.
pub async fn fenced<F: Future>(fence: Fence, work: F) -> F::Output {
    FENCE.scope(fence, work).await
}

/// The fence of the running task, if it runs inside [`fenced`].
pub(crate) fn current_fence() -> Option<Fence> {
    FENCE.try_with(Fence::clone).ok()
}

const SELECT_LEASE: &str = "SELECT holder, epoch, expires_at FROM leases WHERE name = $1";
const SELECT_LEASE_LOCKED: &str =
    "SELECT holder, epoch, expires_at FROM leases WHERE name = $1 FOR UPDATE";

/// Inside an open transaction: refuse unless `fence` is current.
pub(crate) async fn check_fence(s: &mut Session, fence: &Fence) -> Result<(), StoreError> {
    let sql = match s.backend() {
        crate::Backend::Postgres => SELECT_LEASE_LOCKED,
        crate::Backend::Sqlite => SELECT_LEASE,
    };
    let row = s.query_opt(sql, vec![fence.lease.as_str().into()]).await?;
    let current = match row {
        Some(r) => {
            r.text(0)? == fence.holder && r.int(1)? == fence.epoch && r.int(2)? > unix_now_ms()
        }
        None => false,
    };
    if current {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            lease: fence.lease.clone(),
            epoch: fence.epoch,
        })
    }
}

impl Store {
    /// Acquire or renew lease `name` for `holder` for `ttl_ms` milliseconds. `held` is the epoch
    /// the caller believes it holds (None when it holds nothing): the lease is renewed at that
    /// epoch only if it is still the caller's and unexpired, or expired with nobody taking it
    /// since. Otherwise a free or expired lease is taken with the epoch raised, and one held by
    /// another instance is reported.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        held: Option<i64>,
        ttl_ms: i64,
    ) -> Result<LeaseAnswer, StoreError> {
        let now = unix_now_ms();
        let expires_at = now.saturating_add(ttl_ms.max(1));
        let mut s = self.session().await?;
        s.begin_unfenced().await?;
        let r = async {
            s.lock_table("leases").await?;
            let row = s.query_opt(SELECT_LEASE, vec![name.into()]).await?;
            let current = match row {
                Some(r) => Some(Lease {
                    name: name.to_string(),
                    holder: r.text(0)?,
                    epoch: r.int(1)?,
                    expires_at: r.int(2)?,
                }),
                None => None,
            };
            let (epoch, taken_over) = match &current {
                None => {
                    s.exec(
                        "INSERT INTO leases (name, holder, epoch, expires_at) VALUES ($1, $2, 1, $3)",
                        vec![name.into(), holder.into(), expires_at.into()],
                    )
                    .await?;
                    (1, true)
                }
                Some(l) if l.holder == holder && held == Some(l.epoch) => (l.epoch, false),
                Some(l) if l.holder == holder || l.expires_at <= now => {
                    (l.epoch.saturating_add(1), true)
                }
                Some(l) => return Ok(LeaseAnswer::HeldBy(l.clone())),
            };
            if current.is_some() {
                s.exec(
                    "UPDATE leases SET holder = $2, epoch = $3, expires_at = $4 WHERE name = $1",
                    vec![name.into(), holder.into(), epoch.into(), expires_at.into()],
                )
                .await?;
            }
            Ok(LeaseAnswer::Held {
                fence: Fence {
                    lease: name.to_string(),
                    holder: holder.to_string(),
                    epoch,
                },
                expires_at,
                taken_over,
                previous: current.filter(|l| l.holder != holder),
            })
        }
        .await;
        finish(&mut s, r).await
    }

    /// Give a lease up (at shutdown), so another instance takes it at once. Does nothing if
    /// `fence` is no longer current. The row stays, with its epoch, so epochs only grow.
    pub async fn release_lease(&self, fence: &Fence) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND epoch = $3",
                vec![
                    fence.lease.as_str().into(),
                    fence.holder.as_str().into(),
                    fence.epoch.into(),
                ],
            )
            .await?;
        Ok(n > 0)
    }

    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let mut s = self.session().await?;
        s.query(
            "SELECT name, holder, epoch, expires_at FROM leases ORDER BY name",
            vec![],
        )
        .await?
        .into_iter()
        .map(|r| {
            Ok(Lease {
                name: r.text(0)?,
                holder: r.text(1)?,
                epoch: r.int(2)?,
                expires_at: r.int(3)?,
            })
        })
        .collect()
    }
}
