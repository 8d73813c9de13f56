//! Several instances on one database, each with its own embedded broker: a message for a device
//! reaches it whichever instance holds its session, and a revocation, quarantine or policy
//! change made on one instance re-checks the device's open session on every instance. The store
//! carries both (no cluster protocol between instances; see `docs/scale.md`).
//!
//! ```text
//!  Core::deliver(D, topic, payload)
//!     D live on this broker ─▶ publish
//!     presence(D) = other instance, fresh ─▶ store outbox ─(NOTIFY / poll)─▶ that instance
//!     nobody ─▶ publish (lost unless D is subscribed, as on a single instance)
//!
//!  run(), every cluster_poll or at a NOTIFY:
//!     presence: rows of the devices live here (new: insert; gone: delete), then this
//!               instance's one heartbeat row, which keeps all of them fresh
//!     outbox:   rows of the devices live here ─▶ publish once subscribed ─▶ delete
//!     session events after the cursor (not our own) ─▶ reload revocations ─▶ kick D if here
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use castellan_broker::BrokerError;
use castellan_store::unix_now_ms;
use tokio::sync::watch;

use crate::core::Core;

/// Audit action of a session closed here at another instance's request.
pub(crate) const ACTION_RECHECK: &str = "session.recheck";

/// Outbox rows handled per pass (more wait for the next pass, which follows at once).
const OUTBOX_BATCH: i64 = 256;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Core {
    /// The instance holding `device_id`'s session when it is another one (fresh presence row).
    pub(crate) async fn remote_presence(&self, device_id: &str) -> Option<String> {
        let fresh_after = unix_now_ms().saturating_sub(ms(self.config.presence_ttl));
        match self.store.presence_of(device_id, fresh_after).await {
            Ok(Some(i)) if i != self.leases.instance() => Some(i),
            Ok(_) => None,
            Err(e) => {
                log::warn!("presence of {device_id}: {e}");
                None
            }
        }
    }

    /// Publish `payload` on `topic` (QoS 1) to `device_id` wherever its session is: on this
    /// broker, or through the store's outbox to the instance that holds it.
    pub(crate) async fn deliver(
        &self,
        device_id: &str,
        topic: &str,
        payload: Vec<u8>,
    ) -> Result<(), BrokerError> {
        if self.is_connected(device_id).await {
            return self.publish(topic, payload).await;
        }
        match self.remote_presence(device_id).await {
            Some(other) => {
                let seq = self
                    .store
                    .enqueue_outbox(device_id, topic, &payload, unix_now_ms())
                    .await
                    .map_err(|e| BrokerError::Publish(format!("outbox: {e}")))?;
                log::debug!("{device_id} is on {other}: {topic} queued (outbox {seq})");
                Ok(())
            }
            None => self.publish(topic, payload).await,
        }
    }

    /// Close `device_id`'s MQTT session wherever it is, so that the broker decides again at its
    /// reconnection (revocation, quarantine, policy change): here at once, on the other
    /// instances through a session event. Returns whether a session was known to exist.
    pub(crate) async fn kick(&self, device_id: &str) -> Result<bool, BrokerError> {
        let local = match self.broker.read().await.as_ref() {
            Some(b) => b.kick(device_id).await?,
            None => return Err(BrokerError::NotRunning),
        };
        let remote = self.remote_presence(device_id).await.is_some();
        // Posted even without a presence row: the device may have connected elsewhere within
        // the last presence refresh.
        if let Err(e) = self
            .store
            .post_session_event(device_id, "recheck", self.leases.instance(), unix_now_ms())
            .await
        {
            log::warn!("{device_id}: cannot ask the other instances to re-check it: {e}");
        }
        Ok(local || remote)
    }
}

/// What one instance remembers between passes.
struct Cluster {
    /// Devices whose presence row this instance wrote.
    present: HashSet<String>,
    /// The last session event read.
    cursor: i64,
    passes: u64,
}

/// Keep presence, deliver the outbox and apply session events until stopped.
pub(crate) async fn run(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let mut state = Cluster {
        present: HashSet::new(),
        cursor: core.store.last_session_event().await.unwrap_or(0),
        passes: 0,
    };
    let mut wake = listen(&core).await;
    let mut tick = tokio::time::interval(core.config.cluster_poll.max(Duration::from_millis(20)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            got = recv(&mut wake) => {
                if got.is_none() {
                    // The listening connection was lost: poll, and listen again next pass.
                    wake = None;
                }
            }
            _ = stop.changed() => return,
        }
        if wake.is_none() && state.passes.is_multiple_of(10) {
            wake = listen(&core).await;
        }
        pass(&core, &mut state).await;
    }
}

async fn listen(core: &Core) -> Option<tokio::sync::mpsc::Receiver<String>> {
    match core.store.listen().await {
        Ok(w) => w,
        Err(e) => {
            log::warn!("cluster: cannot LISTEN (polling instead): {e}");
            None
        }
    }
}

async fn recv(wake: &mut Option<tokio::sync::mpsc::Receiver<String>>) -> Option<String> {
    match wake {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn pass(core: &Core, state: &mut Cluster) {
    state.passes = state.passes.wrapping_add(1);
    sync_presence(core, state).await;
    deliver_outbox(core).await;
    apply_session_events(core, state).await;
    if state.passes % 60 == 1 {
        let before = unix_now_ms().saturating_sub(ms(core.config.outbox_ttl));
        if let Err(e) = core.store.purge_cluster(before).await {
            log::warn!("cluster: purge: {e}");
        }
    }
}

async fn sync_presence(core: &Core, state: &mut Cluster) {
    let me = core.leases.instance();
    let live: HashSet<String> = match core.broker.read().await.as_ref() {
        Some(b) => b
            .connected_clients()
            .await
            .into_iter()
            .filter(|id| !id.starts_with("svc:"))
            .collect(),
        None => return,
    };
    let now = unix_now_ms();
    for id in live.difference(&state.present).cloned().collect::<Vec<_>>() {
        match core.store.set_presence(&id, me, now).await {
            Ok(()) => {
                state.present.insert(id);
            }
            Err(e) => log::warn!("presence of {id}: {e}"),
        }
    }
    for id in state.present.difference(&live).cloned().collect::<Vec<_>>() {
        match core.store.clear_presence(&id, me).await {
            Ok(()) => {
                state.present.remove(&id);
            }
            Err(e) => log::warn!("presence of {id}: {e}"),
        }
    }
    // One row, whatever the number of devices: their presence is fresh while it is.
    if let Err(e) = core.store.refresh_presence(me, now).await {
        log::warn!("presence heartbeat: {e}");
    }
}

async fn deliver_outbox(core: &Core) {
    let me = core.leases.instance();
    loop {
        let fresh_after = unix_now_ms().saturating_sub(ms(core.config.presence_ttl));
        let rows = match core.store.outbox_for(me, fresh_after, OUTBOX_BATCH).await {
            Ok(r) => r,
            Err(e) => {
                log::warn!("outbox: {e}");
                return;
            }
        };
        let full = rows.len() as i64 == OUTBOX_BATCH;
        let mut delivered = 0usize;
        // A device's messages go out in order: once one must wait, the rest of its wait too.
        let mut waiting: HashSet<String> = HashSet::new();
        for m in rows {
            if waiting.contains(&m.device_id) || !core.is_subscribed(&m.device_id, &m.topic).await {
                waiting.insert(m.device_id);
                continue;
            }
            match core.publish(&m.topic, m.payload).await {
                Ok(()) => {
                    delivered += 1;
                    if let Err(e) = core.store.delete_outbox(m.seq).await {
                        log::warn!("outbox {}: delivered, not deleted: {e}", m.seq);
                    }
                }
                Err(e) => {
                    log::warn!("outbox {} to {}: {e}", m.seq, m.device_id);
                    waiting.insert(m.device_id);
                }
            }
        }
        if !full || delivered == 0 {
            return;
        }
    }
}

async fn apply_session_events(core: &Core, state: &mut Cluster) {
    let me = core.leases.instance();
    let events = match core.store.session_events_after(state.cursor, 256).await {
        Ok(e) => e,
        Err(e) => {
            log::warn!("session events: {e}");
            return;
        }
    };
    let mut reloaded = false;
    for e in events {
        state.cursor = e.seq;
        if e.origin == me {
            continue;
        }
        // A revocation must be known here before the device can reconnect here.
        if !reloaded {
            if let Err(err) = core.reload_revocations().await {
                log::warn!("revocation reload: {err}");
            }
            reloaded = true;
        }
        if !core.is_connected(&e.device_id).await {
            continue;
        }
        let closed = match core.broker.read().await.as_ref() {
            Some(b) => b.kick(&e.device_id).await.unwrap_or(false),
            None => false,
        };
        let waited = unix_now_ms().saturating_sub(e.created_at);
        core.auditor
            .append(
                me,
                ACTION_RECHECK,
                &e.device_id,
                closed,
                &format!(
                    "{} at the request of {} ({}, {waited} ms after it): the broker decides \
                     again at its reconnection",
                    if closed {
                        "session closed"
                    } else {
                        "no session to close"
                    },
                    e.origin,
                    e.kind
                ),
            )
            .await;
    }
}
