//! Update campaigns and their devices (schema 3): what the campaign engine persists so that a
//! restarted server resumes every running campaign where it was.
//!
//! ```text
//!  campaign:  running ⇄ paused ─▶ completed | aborted          (wave 0 = canary, then 1, 2, …)
//!  device:    pending ─▶ offered ─▶ downloading ─▶ installing ─▶ rebooting ─▶ confirming
//!                 └────────────┴───────────┴────────────┴────────────┴──────────┴─▶ updated | failed
//! ```
//!
//! This file holds the types and the campaigns themselves; at most one campaign per device class
//! is running or paused at a time (checked under the table's write lock). The per-device
//! operations are in `campaign_devices.rs`.

use crate::db::Row;
use crate::registry::finish;
use crate::{Store, StoreError};

/// Prefix of per-device download tokens (HTTPS range downloads).
pub const DOWNLOAD_TOKEN_PREFIX: &str = "cdl_";

/// The state of a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CampaignState {
    /// Offering the release wave by wave.
    Running,
    /// No new offers until resumed; devices in progress continue.
    Paused,
    /// Every wave finished.
    Completed,
    /// Stopped for good (by an operator, a threshold or a rollback).
    Aborted,
}

impl CampaignState {
    /// The state's name ("running", "paused", "completed", "aborted").
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Completed => "completed",
            CampaignState::Aborted => "aborted",
        }
    }

    /// The state with this name.
    pub fn parse(s: &str) -> Option<CampaignState> {
        Some(match s {
            "running" => CampaignState::Running,
            "paused" => CampaignState::Paused,
            "completed" => CampaignState::Completed,
            "aborted" => CampaignState::Aborted,
            _ => return None,
        })
    }

    /// Running or paused: the campaign has not ended.
    pub fn is_active(self) -> bool {
        matches!(self, CampaignState::Running | CampaignState::Paused)
    }
}

impl core::fmt::Display for CampaignState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a device is in a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceUpdateState {
    /// In the cohort, not offered yet.
    Pending,
    /// Offered, no report yet.
    Offered,
    /// Accepted the manifest; downloading or downloaded.
    Downloading,
    /// Installing for trial.
    Installing,
    /// Rebooting into the trial image.
    Rebooting,
    /// Confirmed the image; the post-update attestation is pending.
    Confirming,
    /// Attested the release's measurement.
    Updated,
    /// Failed (the reason is stored beside it).
    Failed,
}

impl DeviceUpdateState {
    /// Every state, in the order of the flow.
    pub const ALL: [DeviceUpdateState; 8] = [
        DeviceUpdateState::Pending,
        DeviceUpdateState::Offered,
        DeviceUpdateState::Downloading,
        DeviceUpdateState::Installing,
        DeviceUpdateState::Rebooting,
        DeviceUpdateState::Confirming,
        DeviceUpdateState::Updated,
        DeviceUpdateState::Failed,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceUpdateState::Pending => "pending",
            DeviceUpdateState::Offered => "offered",
            DeviceUpdateState::Downloading => "downloading",
            DeviceUpdateState::Installing => "installing",
            DeviceUpdateState::Rebooting => "rebooting",
            DeviceUpdateState::Confirming => "confirming",
            DeviceUpdateState::Updated => "updated",
            DeviceUpdateState::Failed => "failed",
        }
    }

    /// The state with this name.
    pub fn parse(s: &str) -> Option<DeviceUpdateState> {
        DeviceUpdateState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    /// Updated or failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, DeviceUpdateState::Updated | DeviceUpdateState::Failed)
    }

    /// Offered and not finished.
    pub fn is_in_progress(self) -> bool {
        !self.is_terminal() && self != DeviceUpdateState::Pending
    }
}

impl core::fmt::Display for DeviceUpdateState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A campaign to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCampaign {
    /// The campaign id.
    pub id: String,
    /// The release it rolls out.
    pub release_id: String,
    /// The device class.
    pub device_class: String,
    /// The request's settings (cohort, waves, thresholds), opaque to the store (JSON).
    pub spec: String,
    /// The campaign it rolls back, if any.
    pub rollback_of: Option<String>,
    /// Who created it.
    pub created_by: String,
}

/// A stored campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    /// The campaign id.
    pub id: String,
    /// The release.
    pub release_id: String,
    /// The device class.
    pub device_class: String,
    /// The settings, as given at creation.
    pub spec: String,
    /// The state.
    pub state: CampaignState,
    /// The current wave (0 = canary).
    pub wave: u32,
    /// Why it paused, aborted or completed.
    pub reason: Option<String>,
    /// The campaign it rolls back.
    pub rollback_of: Option<String>,
    /// Failed devices when it was last resumed (thresholds count failures after it).
    pub baseline_failed: u32,
    /// Updated devices when it was last resumed.
    pub baseline_updated: u32,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Last change of state or wave (Unix seconds).
    pub updated_at: i64,
}

/// One device of a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignDevice {
    /// The campaign.
    pub campaign_id: String,
    /// The device.
    pub device_id: String,
    /// Its wave.
    pub wave: u32,
    /// Its state.
    pub state: DeviceUpdateState,
    /// Download offset last reported.
    pub offset: u64,
    /// Why it failed, or a note.
    pub reason: Option<String>,
    /// When it was last offered the release (Unix seconds).
    pub offered_at: Option<i64>,
    /// Last progress or change (Unix seconds).
    pub updated_at: i64,
    /// The outstanding post-update nonce, if a challenge was sent.
    pub nonce: Option<Vec<u8>>,
    /// Whether a download token is outstanding.
    pub has_download_token: bool,
}

macro_rules! campaign_select {
    ($where:literal) => {
        concat!(
            "SELECT id, release_id, device_class, spec, state, wave, reason, rollback_of, ",
            "baseline_failed, baseline_updated, created_at, created_by, updated_at FROM campaigns ",
            $where
        )
    };
}

pub(crate) fn small(r: &Row, i: usize, what: &'static str) -> Result<u32, StoreError> {
    let v = r.int(i)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        value: v.to_string(),
    })
}

pub(crate) fn campaign_from_row(r: &Row) -> Result<Campaign, StoreError> {
    let state = r.text(4)?;
    Ok(Campaign {
        id: r.text(0)?,
        release_id: r.text(1)?,
        device_class: r.text(2)?,
        spec: r.text(3)?,
        state: CampaignState::parse(&state).ok_or(StoreError::Corrupt {
            what: "campaign state",
            value: state,
        })?,
        wave: small(r, 5, "campaign wave")?,
        reason: r.opt_text(6)?,
        rollback_of: r.opt_text(7)?,
        baseline_failed: small(r, 8, "failure baseline")?,
        baseline_updated: small(r, 9, "update baseline")?,
        created_at: r.int(10)?,
        created_by: r.text(11)?,
        updated_at: r.int(12)?,
    })
}

pub(crate) fn member_from_row(r: &Row, first: usize) -> Result<CampaignDevice, StoreError> {
    let state = r.text(first + 3)?;
    let offset = r.int(first + 4)?;
    let nonce = r
        .opt_text(first + 8)?
        .map(|h| {
            hex::decode(&h).map_err(|_| StoreError::Corrupt {
                what: "update nonce",
                value: h,
            })
        })
        .transpose()?;
    Ok(CampaignDevice {
        campaign_id: r.text(first)?,
        device_id: r.text(first + 1)?,
        wave: small(r, first + 2, "device wave")?,
        state: DeviceUpdateState::parse(&state).ok_or(StoreError::Corrupt {
            what: "device update state",
            value: state,
        })?,
        offset: u64::try_from(offset).unwrap_or(0),
        reason: r.opt_text(first + 5)?,
        offered_at: r.opt_int(first + 6)?,
        updated_at: r.int(first + 7)?,
        nonce,
        has_download_token: r.opt_text(first + 9)?.is_some(),
    })
}

impl Store {
    /// Create a running campaign at wave 0 with its initial `members` (device id, wave), all
    /// pending. Fails with [`StoreError::AlreadyExists`] when another campaign of the class is
    /// running or paused (its id is the error's key) or the id is taken.
    pub async fn create_campaign(
        &self,
        c: &NewCampaign,
        members: &[(String, u32)],
        at: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            s.lock_table("campaigns").await?;
            let active = s
                .query_opt(
                    "SELECT id FROM campaigns WHERE device_class = $1 AND state IN ('running', 'paused')",
                    vec![c.device_class.as_str().into()],
                )
                .await?;
            if let Some(row) = active {
                return Err(StoreError::AlreadyExists {
                    what: "running or paused campaign of the class",
                    key: row.text(0)?,
                });
            }
            s.exec(
                "INSERT INTO campaigns (id, release_id, device_class, spec, state, wave, reason, \
                 rollback_of, baseline_failed, baseline_updated, created_at, created_by, updated_at) \
                 VALUES ($1, $2, $3, $4, 'running', 0, NULL, $5, 0, 0, $6, $7, $6)",
                vec![
                    c.id.as_str().into(),
                    c.release_id.as_str().into(),
                    c.device_class.as_str().into(),
                    c.spec.as_str().into(),
                    c.rollback_of.clone().into(),
                    at.into(),
                    c.created_by.as_str().into(),
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Constraint { .. } => StoreError::AlreadyExists {
                    what: "campaign",
                    key: c.id.clone(),
                },
                other => other,
            })?;
            for (device, wave) in members {
                crate::campaign_devices::insert_member(&mut s, &c.id, device, *wave, at).await?;
            }
            Ok(())
        }
        .await;
        finish(&mut s, r).await
    }

    /// The campaign with this id.
    pub async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(campaign_select!("WHERE id = $1"), vec![id.into()])
            .await?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    /// Every campaign, oldest first.
    pub async fn list_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(campaign_select!("ORDER BY created_at, id"), vec![])
            .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    /// The running and paused campaigns, oldest first (what the engine resumes).
    pub async fn active_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                campaign_select!("WHERE state IN ('running', 'paused') ORDER BY created_at, id"),
                vec![],
            )
            .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    /// Move a campaign to `to` with `reason` if its state is one of `from`. Returns the state it
    /// was in; `Ok(None)` when it was in none of `from` (nothing changed).
    pub async fn transition_campaign(
        &self,
        id: &str,
        from: &[CampaignState],
        to: CampaignState,
        reason: Option<&str>,
        at: i64,
    ) -> Result<Option<CampaignState>, StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            s.lock_table("campaigns").await?;
            let row = s
                .query_opt("SELECT state FROM campaigns WHERE id = $1", vec![id.into()])
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: "campaign",
                    key: id.into(),
                })?;
            let text = row.text(0)?;
            let current = CampaignState::parse(&text).ok_or(StoreError::Corrupt {
                what: "campaign state",
                value: text,
            })?;
            if !from.contains(&current) {
                return Ok(None);
            }
            s.exec(
                "UPDATE campaigns SET state = $2, reason = $3, updated_at = $4 WHERE id = $1",
                vec![id.into(), to.as_str().into(), reason.into(), at.into()],
            )
            .await?;
            Ok(Some(current))
        }
        .await;
        finish(&mut s, r).await
    }

    /// Set the current wave.
    pub async fn set_campaign_wave(&self, id: &str, wave: u32, at: i64) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE campaigns SET wave = $2, updated_at = $3 WHERE id = $1",
                vec![id.into(), i64::from(wave).into(), at.into()],
            )
            .await?;
        campaign_found(n, id)
    }

    /// Record the failed and updated counts at a resume: thresholds count from there.
    pub async fn set_campaign_baseline(
        &self,
        id: &str,
        failed: u32,
        updated: u32,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE campaigns SET baseline_failed = $2, baseline_updated = $3 WHERE id = $1",
                vec![
                    id.into(),
                    i64::from(failed).into(),
                    i64::from(updated).into(),
                ],
            )
            .await?;
        campaign_found(n, id)
    }
}

fn campaign_found(n: u64, id: &str) -> Result<(), StoreError> {
    if n == 0 {
        Err(StoreError::NotFound {
            what: "campaign",
            key: id.into(),
        })
    } else {
        Ok(())
    }
}
