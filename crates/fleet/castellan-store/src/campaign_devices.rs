//! The devices of a campaign (schema 3): membership, offers and download tokens, progress,
//! post-update nonces and final states. Writes that move a device are conditional on it not
//! being finished, so a late report can never resurrect a device the engine already decided
//! on; only the SHA-256 of a download token is stored; a nonce is used up by the first attempt.

use subtle::ConstantTimeEq as _;

use crate::campaigns::{Campaign, CampaignDevice, DOWNLOAD_TOKEN_PREFIX, DeviceUpdateState};
use crate::campaigns::{campaign_from_row, member_from_row};
use crate::db::Session;
use crate::registry::finish;
use crate::{Store, StoreError, sha256_hex};

macro_rules! member_select {
    ($where:literal) => {
        concat!(
            "SELECT campaign_id, device_id, wave, state, progress_offset, reason, offered_at, ",
            "updated_at, nonce, download_token_hash FROM campaign_devices ",
            $where
        )
    };
}

impl Store {
    /// The devices of a campaign, by id.
    pub async fn campaign_devices(
        &self,
        campaign_id: &str,
    ) -> Result<Vec<CampaignDevice>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                member_select!("WHERE campaign_id = $1 ORDER BY device_id"),
                vec![campaign_id.into()],
            )
            .await?;
        rows.iter().map(|r| member_from_row(r, 0)).collect()
    }

    /// One device of a campaign.
    pub async fn campaign_device(
        &self,
        campaign_id: &str,
        device_id: &str,
    ) -> Result<Option<CampaignDevice>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                member_select!("WHERE campaign_id = $1 AND device_id = $2"),
                vec![campaign_id.into(), device_id.into()],
            )
            .await?;
        row.as_ref().map(|r| member_from_row(r, 0)).transpose()
    }

    /// Add a pending device to a campaign (a late joiner). Returns false when it is already a
    /// member.
    pub async fn add_campaign_device(
        &self,
        campaign_id: &str,
        device_id: &str,
        wave: u32,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = insert_member(&mut s, campaign_id, device_id, wave, at).await?;
        Ok(n == 1)
    }

    /// Remove a device that was never offered the release (it left the cohort). Returns false
    /// when it is not a pending member.
    pub async fn remove_pending_campaign_device(
        &self,
        campaign_id: &str,
        device_id: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "DELETE FROM campaign_devices WHERE campaign_id = $1 AND device_id = $2 AND state = 'pending'",
                vec![campaign_id.into(), device_id.into()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Record an offer to a device that is not finished: a pending device becomes offered, one
    /// in progress keeps its state (a repeated offer after a reconnection); the offer time and
    /// the progress clock restart and a new download token replaces the previous one. Returns
    /// the token (only its SHA-256 is stored), or `None` when the device is not a member or is
    /// finished.
    pub async fn offer_campaign_device(
        &self,
        campaign_id: &str,
        device_id: &str,
        at: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| StoreError::Random)?;
        let token = format!("{DOWNLOAD_TOKEN_PREFIX}{}", hex::encode(secret));
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE campaign_devices SET state = CASE WHEN state = 'pending' THEN 'offered' ELSE state END, \
                 offered_at = $3, updated_at = $3, download_token_hash = $4 \
                 WHERE campaign_id = $1 AND device_id = $2 AND state NOT IN ('updated', 'failed')",
                vec![
                    campaign_id.into(),
                    device_id.into(),
                    at.into(),
                    sha256_hex(token.as_bytes()).into(),
                ],
            )
            .await?;
        Ok((n == 1).then_some(token))
    }

    /// Record a device's progress (`state` must not be terminal: use
    /// [`Store::finish_campaign_device`]). Returns false when the device is not a member or is
    /// already finished.
    pub async fn record_campaign_progress(
        &self,
        campaign_id: &str,
        device_id: &str,
        state: DeviceUpdateState,
        offset: u64,
        reason: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError> {
        if state.is_terminal() {
            return Err(StoreError::Corrupt {
                what: "progress state",
                value: state.as_str().into(),
            });
        }
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE campaign_devices SET state = $3, progress_offset = $4, reason = $5, updated_at = $6 \
                 WHERE campaign_id = $1 AND device_id = $2 AND state NOT IN ('updated', 'failed')",
                vec![
                    campaign_id.into(),
                    device_id.into(),
                    state.as_str().into(),
                    i64::try_from(offset).unwrap_or(i64::MAX).into(),
                    reason.into(),
                    at.into(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// The post-update nonce of a device that confirmed its image (it moves to confirming): the
    /// outstanding one if a challenge is still unanswered, so that a repeated `confirmed`
    /// report (a lost or late message) gets the same challenge again instead of invalidating
    /// the one the device is answering; else a fresh 32-byte nonce. `None` when the device is
    /// not a member or is finished.
    pub async fn issue_update_nonce(
        &self,
        campaign_id: &str,
        device_id: &str,
        at: i64,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|_| StoreError::Random)?;
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            let n = s
                .exec(
                    "UPDATE campaign_devices SET state = 'confirming', \
                     nonce = COALESCE(nonce, $3), updated_at = $4 \
                     WHERE campaign_id = $1 AND device_id = $2 \
                     AND state NOT IN ('updated', 'failed')",
                    vec![
                        campaign_id.into(),
                        device_id.into(),
                        hex::encode(fresh).into(),
                        at.into(),
                    ],
                )
                .await?;
            if n != 1 {
                return Ok(None);
            }
            let row = s
                .query_opt(
                    "SELECT nonce FROM campaign_devices WHERE campaign_id = $1 AND device_id = $2",
                    vec![campaign_id.into(), device_id.into()],
                )
                .await?;
            let stored = match row {
                Some(r) => r.opt_text(0)?,
                None => None,
            };
            let mut nonce = [0u8; 32];
            match stored.map(|t| hex::decode_to_slice(t, &mut nonce)) {
                Some(Ok(())) => Ok(Some(nonce)),
                _ => Ok(Some(fresh)),
            }
        }
        .await;
        finish(&mut s, r).await
    }

    /// Use up the device's outstanding post-update nonce if it is `nonce`. Whatever the
    /// outcome, the outstanding nonce is gone afterwards (one attempt per challenge). Returns
    /// whether it matched.
    pub async fn consume_update_nonce(
        &self,
        campaign_id: &str,
        device_id: &str,
        nonce: &[u8],
    ) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            let row = s
                .query_opt(
                    "SELECT nonce FROM campaign_devices WHERE campaign_id = $1 AND device_id = $2",
                    vec![campaign_id.into(), device_id.into()],
                )
                .await?;
            let stored = match row {
                Some(r) => r.opt_text(0)?,
                None => None,
            };
            let Some(stored) = stored else {
                return Ok(false);
            };
            s.exec(
                "UPDATE campaign_devices SET nonce = NULL WHERE campaign_id = $1 AND device_id = $2",
                vec![campaign_id.into(), device_id.into()],
            )
            .await?;
            Ok(bool::from(
                stored.as_bytes().ct_eq(hex::encode(nonce).as_bytes()),
            ))
        }
        .await;
        finish(&mut s, r).await
    }

    /// Finish a device: `Updated` or `Failed` with a reason. Its nonce and download token are
    /// dropped. Returns false when it is not a member or was already finished (the first
    /// decision stands).
    pub async fn finish_campaign_device(
        &self,
        campaign_id: &str,
        device_id: &str,
        state: DeviceUpdateState,
        reason: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError> {
        if !state.is_terminal() {
            return Err(StoreError::Corrupt {
                what: "final state",
                value: state.as_str().into(),
            });
        }
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE campaign_devices SET state = $3, reason = $4, updated_at = $5, nonce = NULL, \
                 download_token_hash = NULL \
                 WHERE campaign_id = $1 AND device_id = $2 AND state NOT IN ('updated', 'failed')",
                vec![
                    campaign_id.into(),
                    device_id.into(),
                    state.as_str().into(),
                    reason.into(),
                    at.into(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// The campaign device a presented download token belongs to (whatever its state: the
    /// caller checks that the campaign and device are still in progress).
    pub async fn campaign_device_by_download_token(
        &self,
        token: &str,
    ) -> Result<Option<CampaignDevice>, StoreError> {
        let hash = sha256_hex(token.as_bytes());
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                member_select!("WHERE download_token_hash = $1"),
                vec![hash.as_str().into()],
            )
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let stored = r.opt_text(9)?.unwrap_or_default();
        if !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(None);
        }
        member_from_row(&r, 0).map(Some)
    }

    /// The running or paused campaign `device_id` is a member of, with its membership (at most
    /// one: one active campaign per class).
    pub async fn active_campaign_of_device(
        &self,
        device_id: &str,
    ) -> Result<Option<(Campaign, CampaignDevice)>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT c.id, c.release_id, c.device_class, c.spec, c.state, c.wave, c.reason, \
                 c.rollback_of, c.baseline_failed, c.baseline_updated, c.created_at, c.created_by, \
                 c.updated_at, d.campaign_id, d.device_id, d.wave, d.state, d.progress_offset, \
                 d.reason, d.offered_at, d.updated_at, d.nonce, d.download_token_hash \
                 FROM campaign_devices d JOIN campaigns c ON c.id = d.campaign_id \
                 WHERE d.device_id = $1 AND c.state IN ('running', 'paused') \
                 ORDER BY c.created_at DESC, c.id DESC LIMIT 1",
                vec![device_id.into()],
            )
            .await?;
        match row {
            Some(r) => Ok(Some((campaign_from_row(&r)?, member_from_row(&r, 13)?))),
            None => Ok(None),
        }
    }
}

pub(crate) async fn insert_member(
    s: &mut Session,
    campaign_id: &str,
    device_id: &str,
    wave: u32,
    at: i64,
) -> Result<u64, StoreError> {
    s.exec(
        "INSERT INTO campaign_devices (campaign_id, device_id, wave, state, progress_offset, reason, \
         offered_at, updated_at, nonce, download_token_hash) \
         VALUES ($1, $2, $3, 'pending', 0, NULL, NULL, $4, NULL, NULL) \
         ON CONFLICT (campaign_id, device_id) DO NOTHING",
        vec![
            campaign_id.into(),
            device_id.into(),
            i64::from(wave).into(),
            at.into(),
        ],
    )
    .await
}
