//! Signed commands to a device that wait for its answer, and requests that wait for a second
//! operator's approval: kept in the store so that a restart of the service, or another
//! instance of it, finds them again (`docs/response.md`, "Decommission" and "Reboot and
//! re-attest").
//!
//! ```text
//!  request (first operator) ─▶ command_requests (device, kind, requested_by)
//!  approval (another one)   ─▶ taken from command_requests
//!  command sent             ─▶ pending_commands (device, kind, nonce, deadline, actor)
//!  the device's answer      ─▶ taken only with the same nonce (once: a replay finds none)
//!  the deadline passed      ─▶ taken whatever the nonce
//! ```
//!
//! One of each per device and kind: a second pending command of a kind is refused (`false`).

use crate::registry::finish;
use crate::{Store, StoreError};

/// A command waiting for the device's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCommand {
    /// The device.
    pub device_id: String,
    /// `decommission` or `reattest`.
    pub kind: String,
    /// The nonce the answer must be over, hex.
    pub nonce: String,
    /// After this (Unix seconds) the command is given up.
    pub deadline: i64,
    /// Who sent it (the audit actor, `A+B` for two operators).
    pub actor: String,
    /// When it was sent (Unix seconds).
    pub created_at: i64,
}

fn pending_of(r: &crate::db::Row) -> Result<PendingCommand, StoreError> {
    Ok(PendingCommand {
        device_id: r.text(0)?,
        kind: r.text(1)?,
        nonce: r.text(2)?,
        deadline: r.int(3)?,
        actor: r.text(4)?,
        created_at: r.int(5)?,
    })
}

impl Store {
    /// Record `c` as waiting; `false` when a command of its kind waits for the device already.
    pub async fn insert_pending_command(&self, c: &PendingCommand) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let r = s
            .exec(
                "INSERT INTO pending_commands (device_id, kind, nonce, deadline, actor, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    c.device_id.as_str().into(),
                    c.kind.as_str().into(),
                    c.nonce.as_str().into(),
                    c.deadline.into(),
                    c.actor.as_str().into(),
                    c.created_at.into(),
                ],
            )
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(StoreError::Constraint { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The command of `kind` waiting for `device_id`, if any.
    pub async fn pending_command(
        &self,
        device_id: &str,
        kind: &str,
    ) -> Result<Option<PendingCommand>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT device_id, kind, nonce, deadline, actor, created_at FROM \
                 pending_commands WHERE device_id = $1 AND kind = $2",
                vec![device_id.into(), kind.into()],
            )
            .await?;
        row.as_ref().map(pending_of).transpose()
    }

    /// Every waiting command, by deadline.
    pub async fn pending_commands(&self) -> Result<Vec<PendingCommand>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                "SELECT device_id, kind, nonce, deadline, actor, created_at FROM \
                 pending_commands ORDER BY deadline, device_id, kind",
                vec![],
            )
            .await?;
        rows.iter().map(pending_of).collect()
    }

    /// Take the command of `kind` waiting for `device_id` if its nonce is `nonce` (hex): `true`
    /// once, `false` for another nonce or none waiting.
    pub async fn take_pending_command_matching(
        &self,
        device_id: &str,
        kind: &str,
        nonce: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "DELETE FROM pending_commands WHERE device_id = $1 AND kind = $2 AND nonce = $3",
                vec![device_id.into(), kind.into(), nonce.into()],
            )
            .await?;
        Ok(n > 0)
    }

    /// Take the command of `kind` waiting for `device_id` whatever its nonce: `true` when one
    /// was waiting (the deadline passed, or it could not be sent).
    pub async fn take_pending_command(
        &self,
        device_id: &str,
        kind: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "DELETE FROM pending_commands WHERE device_id = $1 AND kind = $2",
                vec![device_id.into(), kind.into()],
            )
            .await?;
        Ok(n > 0)
    }

    /// An operator asks for a command of `kind` to `device_id` that needs a second operator.
    /// Returns who asked first: `operator` when this request is the first (now recorded),
    /// another name when that one's request waits (it is taken: this request approves it).
    /// The same operator asking again finds their own name and changes nothing.
    pub async fn request_command(
        &self,
        device_id: &str,
        kind: &str,
        operator: &str,
        at: i64,
    ) -> Result<String, StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            // Two first requests at once on PostgreSQL: the second waits and finds the first.
            s.lock_table("command_requests").await?;
            let first = s
                .query_opt(
                    "SELECT requested_by FROM command_requests WHERE device_id = $1 AND kind = $2",
                    vec![device_id.into(), kind.into()],
                )
                .await?
                .map(|r| r.text(0))
                .transpose()?;
            match first {
                Some(first) if first != operator => {
                    s.exec(
                        "DELETE FROM command_requests WHERE device_id = $1 AND kind = $2",
                        vec![device_id.into(), kind.into()],
                    )
                    .await?;
                    Ok(first)
                }
                Some(first) => Ok(first),
                None => {
                    s.exec(
                        "INSERT INTO command_requests (device_id, kind, requested_by, \
                         requested_at) VALUES ($1, $2, $3, $4)",
                        vec![device_id.into(), kind.into(), operator.into(), at.into()],
                    )
                    .await?;
                    Ok(operator.to_owned())
                }
            }
        }
        .await;
        finish(&mut s, r).await
    }

    /// Who asked for a command of `kind` to `device_id` that waits for its approval.
    pub async fn command_request(
        &self,
        device_id: &str,
        kind: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut s = self.session().await?;
        s.query_opt(
            "SELECT requested_by FROM command_requests WHERE device_id = $1 AND kind = $2",
            vec![device_id.into(), kind.into()],
        )
        .await?
        .map(|r| r.text(0))
        .transpose()
    }
}
