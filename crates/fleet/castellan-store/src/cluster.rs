//! What crosses service instances that each run their own MQTT broker on one database:
//! which instance holds each device's session (`presence`), messages for a device connected to
//! another instance (`device_outbox`), and requests to re-check a device's open session
//! wherever it is (`session_events`).
//!
//! ```text
//!  instance A (must publish to D)          store                      instance B (D's session)
//!  D's session local? ── yes ─▶ publish
//!        └─ no: presence(D) = B, fresh ─▶ device_outbox(seq, D, topic, payload)
//!                                          └─ NOTIFY castellan_outbox ─▶ wake (or poll)
//!                                                                       outbox_for(B) ─▶ publish
//!                                                                       delete_outbox(seq)
//!  revoke / quarantine D ─▶ session_events(seq, D, kind, A) ─ NOTIFY castellan_session ─▶
//!                                                    every instance: D's session local? ─▶ kick
//! ```
//!
//! PostgreSQL wakes the readers with `NOTIFY` ([`Store::listen`]); SQLite has no such channel
//! and the readers poll. Times are Unix milliseconds. Presence is kept fresh by one heartbeat
//! row per instance (`instance_heartbeats`, schema 14), not by rewriting the presence rows: a
//! row counts while it was written, or its instance's heartbeat renewed, within the caller's
//! TTL. Everything is bounded: stale presence is ignored, outbox rows and session events older than theirs
//! are purged ([`Store::purge_cluster`]), and a device's outbox keeps at most
//! [`OUTBOX_CAP_PER_DEVICE`] messages (the oldest are dropped first).

use tokio::sync::mpsc;

use crate::db::Session;
use crate::registry::finish;
use crate::{Backend, Store, StoreError};

/// The most messages kept in one device's outbox; older ones are dropped.
pub const OUTBOX_CAP_PER_DEVICE: i64 = 64;

/// The `NOTIFY` channel of new outbox rows (payload: the device id).
pub const CHANNEL_OUTBOX: &str = "castellan_outbox";
/// The `NOTIFY` channel of new session events (payload: the device id).
pub const CHANNEL_SESSION: &str = "castellan_session";

/// A message waiting in a device's outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Its order among all outbox rows.
    pub seq: i64,
    /// The device it is for.
    pub device_id: String,
    /// The MQTT topic to publish it on.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// When it was written, Unix milliseconds.
    pub created_at: i64,
}

/// A request that every instance re-checks a device's open session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEvent {
    /// Its order.
    pub seq: i64,
    /// The device.
    pub device_id: String,
    /// Why (`revoked`, `quarantined`, `released`, `policy`…).
    pub kind: String,
    /// The instance that wrote it.
    pub origin: String,
    /// When, Unix milliseconds.
    pub created_at: i64,
}

impl Store {
    /// Record that `device_id`'s session is on `instance` since `now` (ms).
    pub async fn set_presence(
        &self,
        device_id: &str,
        instance: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO presence (device_id, instance, connected_at, refreshed_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (device_id) DO UPDATE SET \
             instance = excluded.instance, connected_at = excluded.connected_at, \
             refreshed_at = excluded.refreshed_at",
            vec![device_id.into(), instance.into(), now.into()],
        )
        .await?;
        Ok(())
    }

    /// The heartbeat of `instance` at `now` (ms): every presence row naming it is fresh while
    /// this is (one row written, whatever the number of devices). Returns 1.
    pub async fn refresh_presence(&self, instance: &str, now: i64) -> Result<u64, StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO instance_heartbeats (instance, refreshed_at) VALUES ($1, $2) \
             ON CONFLICT (instance) DO UPDATE SET refreshed_at = excluded.refreshed_at",
            vec![instance.into(), now.into()],
        )
        .await
    }

    /// Forget `device_id`'s presence if it is still recorded on `instance` (a later
    /// connection to another instance is left alone).
    pub async fn clear_presence(&self, device_id: &str, instance: &str) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "DELETE FROM presence WHERE device_id = $1 AND instance = $2",
            vec![device_id.into(), instance.into()],
        )
        .await?;
        Ok(())
    }

    /// Forget every presence row of `instance` and its heartbeat (at a clean stop).
    pub async fn clear_instance_presence(&self, instance: &str) -> Result<u64, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "DELETE FROM presence WHERE instance = $1",
                vec![instance.into()],
            )
            .await?;
        s.exec(
            "DELETE FROM instance_heartbeats WHERE instance = $1",
            vec![instance.into()],
        )
        .await?;
        Ok(n)
    }

    /// The instance holding `device_id`'s session, if its row was written or that instance's
    /// heartbeat renewed after `fresh_after` (ms).
    pub async fn presence_of(
        &self,
        device_id: &str,
        fresh_after: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut s = self.session().await?;
        s.query_opt(
            "SELECT p.instance FROM presence p \
             LEFT JOIN instance_heartbeats h ON h.instance = p.instance \
             WHERE p.device_id = $1 AND (p.refreshed_at > $2 OR h.refreshed_at > $2)",
            vec![device_id.into(), fresh_after.into()],
        )
        .await?
        .map(|r| r.text(0))
        .transpose()
    }

    /// Queue a message for `device_id` (whose session is on another instance), wake the
    /// instances (PostgreSQL), and drop the device's oldest messages beyond
    /// [`OUTBOX_CAP_PER_DEVICE`]. Inside [`fenced`](crate::fenced), refused once the lease is
    /// lost. Returns the message's sequence number.
    pub async fn enqueue_outbox(
        &self,
        device_id: &str,
        topic: &str,
        payload: &[u8],
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            let seq = insert_returning_seq(
                &mut s,
                "INSERT INTO device_outbox (device_id, topic, payload, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING seq",
                vec![device_id.into(), topic.into(), payload.into(), now.into()],
            )
            .await?;
            s.exec(
                "DELETE FROM device_outbox WHERE device_id = $1 AND seq <= (SELECT seq FROM \
                 device_outbox WHERE device_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                vec![device_id.into(), OUTBOX_CAP_PER_DEVICE.into()],
            )
            .await?;
            notify(&mut s, CHANNEL_OUTBOX, device_id).await?;
            Ok(seq)
        }
        .await;
        finish(&mut s, r).await
    }

    /// Up to `limit` queued messages, oldest first, for the devices whose presence row names
    /// `instance`, when the row was written or the instance's heartbeat renewed after
    /// `fresh_after`.
    pub async fn outbox_for(
        &self,
        instance: &str,
        fresh_after: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut s = self.session().await?;
        s.query(
            "SELECT o.seq, o.device_id, o.topic, o.payload, o.created_at FROM device_outbox o \
             JOIN presence p ON p.device_id = o.device_id \
             LEFT JOIN instance_heartbeats h ON h.instance = p.instance \
             WHERE p.instance = $1 AND (p.refreshed_at > $2 OR h.refreshed_at > $2) \
             ORDER BY o.seq LIMIT $3",
            vec![instance.into(), fresh_after.into(), limit.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(OutboxMessage {
                seq: r.int(0)?,
                device_id: r.text(1)?,
                topic: r.text(2)?,
                payload: r.blob(3)?,
                created_at: r.int(4)?,
            })
        })
        .collect()
    }

    /// Delete a delivered message; whether it was still there (another instance may have
    /// delivered it first after the device moved).
    pub async fn delete_outbox(&self, seq: i64) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        Ok(
            s.exec("DELETE FROM device_outbox WHERE seq = $1", vec![seq.into()])
                .await?
                > 0,
        )
    }

    /// How many messages wait for `device_id`.
    pub async fn outbox_len(&self, device_id: &str) -> Result<i64, StoreError> {
        let mut s = self.session().await?;
        s.query_opt(
            "SELECT COUNT(*) FROM device_outbox WHERE device_id = $1",
            vec![device_id.into()],
        )
        .await?
        .map_or(Ok(0), |r| r.int(0))
    }

    /// Ask every instance to re-check `device_id`'s open session; returns the event's seq.
    pub async fn post_session_event(
        &self,
        device_id: &str,
        kind: &str,
        origin: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            let seq = insert_returning_seq(
                &mut s,
                "INSERT INTO session_events (device_id, kind, origin, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING seq",
                vec![device_id.into(), kind.into(), origin.into(), now.into()],
            )
            .await?;
            notify(&mut s, CHANNEL_SESSION, device_id).await?;
            Ok(seq)
        }
        .await;
        finish(&mut s, r).await
    }

    /// Session events after `seq`, oldest first, at most `limit`.
    pub async fn session_events_after(
        &self,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<SessionEvent>, StoreError> {
        let mut s = self.session().await?;
        s.query(
            "SELECT seq, device_id, kind, origin, created_at FROM session_events \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            vec![seq.into(), limit.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(SessionEvent {
                seq: r.int(0)?,
                device_id: r.text(1)?,
                kind: r.text(2)?,
                origin: r.text(3)?,
                created_at: r.int(4)?,
            })
        })
        .collect()
    }

    /// The last session event's seq (0 when none): where a starting instance begins reading.
    pub async fn last_session_event(&self) -> Result<i64, StoreError> {
        let mut s = self.session().await?;
        Ok(s.query_opt("SELECT MAX(seq) FROM session_events", vec![])
            .await?
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    }

    /// Delete outbox rows and session events written before `before` (ms), heartbeats not
    /// renewed since then and the presence rows of instances without a heartbeat left
    /// (written before `before`: a row written just before its instance's first heartbeat
    /// stays); returns how many rows went.
    pub async fn purge_cluster(&self, before: i64) -> Result<u64, StoreError> {
        let mut s = self.session().await?;
        let mut n = 0;
        for sql in [
            "DELETE FROM device_outbox WHERE created_at < $1",
            "DELETE FROM session_events WHERE created_at < $1",
            "DELETE FROM instance_heartbeats WHERE refreshed_at < $1",
            "DELETE FROM presence WHERE refreshed_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM instance_heartbeats h \
              WHERE h.instance = presence.instance AND h.refreshed_at >= $1)",
        ] {
            n += s.exec(sql, vec![before.into()]).await?;
        }
        Ok(n)
    }

    /// PostgreSQL: a dedicated connection `LISTEN`ing on [`CHANNEL_OUTBOX`] and
    /// [`CHANNEL_SESSION`]; each notification's channel name is sent on the returned channel,
    /// which closes when the connection is lost (the caller polls meanwhile and listens
    /// again). SQLite: `None` (poll).
    pub async fn listen(&self) -> Result<Option<mpsc::Receiver<String>>, StoreError> {
        let crate::db::Db::Postgres(pool) = &self.inner.db else {
            return Ok(None);
        };
        let (client, mut connection) = pool.connect_raw().await?;
        let (tx, rx) = mpsc::channel(256);
        let closed = tx.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    m = std::future::poll_fn(|cx| connection.poll_message(cx)) => m,
                    // The reader is gone: dropping the connection closes it.
                    () = tx.closed() => return,
                };
                match msg {
                    // A full channel already holds a wake-up: dropping this one loses nothing.
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                        let _ = tx.try_send(n.channel().to_string());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        client
            .batch_execute(&format!(
                "LISTEN {CHANNEL_OUTBOX}; LISTEN {CHANNEL_SESSION}"
            ))
            .await
            .map_err(crate::db::pg_err)?;
        // The client lives as long as the reader does.
        tokio::spawn(async move {
            closed.closed().await;
            drop(client);
        });
        Ok(Some(rx))
    }
}

/// PostgreSQL: `NOTIFY channel, payload` (delivered at commit); SQLite: nothing.
async fn notify(s: &mut Session, channel: &'static str, payload: &str) -> Result<(), StoreError> {
    if s.backend() == Backend::Postgres {
        s.exec(
            "SELECT pg_notify($1, $2)",
            vec![channel.into(), payload.into()],
        )
        .await?;
    }
    Ok(())
}

/// Insert one row with `sql` (ending in `RETURNING seq`) and read its sequence number.
async fn insert_returning_seq(
    s: &mut Session,
    sql: &'static str,
    params: Vec<crate::db::Value>,
) -> Result<i64, StoreError> {
    s.query_opt(sql, params)
        .await?
        .ok_or(StoreError::Decode {
            column: 0,
            expected: "the new row's seq",
        })?
        .int(0)
}
