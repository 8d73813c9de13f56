//! Once-only duties among several service instances on one database: the campaign engine's
//! ticks, the TUF repository's re-signing and the fleet's analysis each run on the one instance
//! that holds the duty's lease in the store (`castellan_store::Store::acquire_lease`), and
//! every store write they make is fenced by the lease's epoch.
//!
//! ```text
//!  keep(): every lease_ttl / 3, for each duty ─▶ acquire or renew ─▶ Fence in `held`
//!  campaign::run / tuf_online::resign / response::run:
//!      fence(duty)? ─▶ castellan_store::fenced(fence, one tick) ─▶ writes checked in the store
//! ```
//!
//! An instance that dies (kill -9) keeps its leases until they expire: another instance takes
//! each one over within `lease_ttl` plus one renewal period, with the epoch raised. A stalled
//! instance that wakes after losing a lease still has the old fence in `held` until its next
//! renewal, but every write it attempts under it is refused by the store. At a clean shutdown
//! the leases are given up, so a peer (or the restarted instance) takes them at once. Every
//! takeover from an instance that let its lease expire is audited (`lease.takeover`), and so is
//! the loss of a lease to another instance (`lease.lost`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castellan_store::{Fence, LeaseAnswer};
use tokio::sync::watch;

use crate::core::Core;

/// Work that must happen once in the fleet, whatever the number of instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Duty {
    /// The campaign engine's ticks (offers, waves, timeouts, thresholds).
    Campaigns,
    /// Re-signing the TUF repository's snapshot and timestamp.
    TufResign,
    /// The fleet's analysis window and the automatic response.
    Analysis,
}

impl Duty {
    pub(crate) const ALL: [Duty; 3] = [Duty::Campaigns, Duty::TufResign, Duty::Analysis];

    /// The lease's name in the store.
    pub(crate) fn lease_name(self) -> &'static str {
        match self {
            Duty::Campaigns => "campaigns",
            Duty::TufResign => "tuf-resign",
            Duty::Analysis => "analysis",
        }
    }
}

/// The leases this instance holds.
#[derive(Debug)]
pub(crate) struct Leases {
    instance: String,
    ttl: Duration,
    held: Mutex<HashMap<Duty, Fence>>,
}

impl Leases {
    /// No lease held yet; `name` None: a fresh instance name.
    pub(crate) fn new(name: Option<String>, ttl: Duration) -> Leases {
        Leases {
            instance: name.unwrap_or_else(instance_name),
            ttl,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// This instance's name (the holder of its leases).
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// The fence to run `duty` under, if this instance holds its lease.
    pub(crate) fn fence(&self, duty: Duty) -> Option<Fence> {
        self.lock().get(&duty).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Duty, Fence>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Run one round of `duty`'s work if this instance holds its lease, its writes fenced.
/// Returns `None` when another instance holds the duty.
pub(crate) async fn on_duty<F: Future>(core: &Core, duty: Duty, work: F) -> Option<F::Output> {
    let fence = core.leases.fence(duty)?;
    Some(castellan_store::fenced(fence, work).await)
}

/// Acquire or renew every duty's lease once (at start, before the duties' loops run).
pub(crate) async fn refresh(core: &Core) {
    for duty in Duty::ALL {
        refresh_one(core, duty).await;
    }
}

async fn refresh_one(core: &Core, duty: Duty) {
    let leases = &core.leases;
    let name = duty.lease_name();
    let held = leases.fence(duty).map(|f| f.epoch);
    let answer = core
        .store
        .acquire_lease(name, &leases.instance, held, leases.ttl_ms())
        .await;
    match answer {
        Ok(LeaseAnswer::Held {
            fence,
            taken_over,
            previous,
            ..
        }) => {
            if taken_over {
                log::info!(
                    "lease {name}: held by {} at epoch {}",
                    leases.instance,
                    fence.epoch
                );
            }
            // A holder that did not give the lease up died or stalled: a failover, audited.
            if let Some(dead) = previous.filter(|l| taken_over && l.expires_at > 0) {
                log::warn!(
                    "lease {name}: taken over from {} (epoch {}), which let it expire",
                    dead.holder,
                    dead.epoch
                );
                core.auditor
                    .append(
                        &leases.instance,
                        "lease.takeover",
                        name,
                        true,
                        &format!(
                            "epoch {} taken over from {} (epoch {}), which let it expire",
                            fence.epoch, dead.holder, dead.epoch
                        ),
                    )
                    .await;
            }
            leases.lock().insert(duty, fence);
        }
        Ok(LeaseAnswer::HeldBy(other)) => {
            let lost = leases.lock().remove(&duty);
            if let Some(lost) = lost {
                log::warn!(
                    "lease {name}: lost at epoch {} to {} (epoch {}); this instance stops that duty",
                    lost.epoch,
                    other.holder,
                    other.epoch
                );
                core.auditor
                    .append(
                        &leases.instance,
                        "lease.lost",
                        name,
                        false,
                        &format!(
                            "epoch {} lost to {} at epoch {}",
                            lost.epoch, other.holder, other.epoch
                        ),
                    )
                    .await;
            }
        }
        Err(e) => {
            // Cannot reach the store: keep the fence; the store refuses writes under it once
            // it has expired, and the next renewal tells.
            log::warn!("lease {name}: cannot renew: {e}");
        }
    }
}

/// Renew the leases every third of their lifetime until stopped (the shutdown then gives them
/// up: [`release_all`]).
pub(crate) async fn keep(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let period = (core.leases.ttl / 3).max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => refresh(&core).await,
            _ = stop.changed() => return,
        }
    }
}

/// Give every held lease up, so another instance takes over at once.
pub(crate) async fn release_all(core: &Core) {
    let held: Vec<Fence> = core.leases.lock().drain().map(|(_, f)| f).collect();
    for fence in held {
        if let Err(e) = core.store.release_lease(&fence).await {
            log::warn!("lease {}: cannot give up: {e}", fence.lease);
        }
    }
}

/// `host-pid-random`: unique among the instances, readable in the audit log.
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "castellan".into());
    let mut r = [0u8; 3];
    let suffix = match getrandom::fill(&mut r) {
        Ok(()) => hex::encode(r),
        Err(_) => "000000".into(),
    };
    format!("{host}-{}-{suffix}", std::process::id())
}
