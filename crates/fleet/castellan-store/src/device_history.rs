//! What a device's page shows beyond its registry row (schema 13 and earlier tables): the
//! claims of its last verified attestation token, its LDevID's DER, the campaigns it was part
//! of, and the session re-checks posted for it.
//!
//! ```text
//!  appraisal (onboarding, post-update) ─▶ record_attestation ─▶ attestation_claims (one row
//!                                          per device, replaced by each newer token)
//!  onboarding ─▶ set_ldevid_der ─▶ devices.ldevid_der
//!  device page ◀─ last_attestation · ldevid_der · device_updates (campaign_devices ⋈
//!                 campaigns) · session_events_of (session_events, newest first)
//! ```

use crate::campaigns::DeviceUpdateState;
use crate::cluster::SessionEvent;
use crate::{Store, StoreError};

/// The longest claims JSON kept (a token is at most a few KiB; anything larger is refused).
pub const MAX_CLAIMS_JSON: usize = 64 * 1024;

/// The claims of a device's last attestation token that verified with its IAK, and the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationRecord {
    /// The device.
    pub device_id: String,
    /// When it was appraised (Unix seconds).
    pub appraised_at: i64,
    /// What asked for it (`onboarding`, `update campaign c-…`).
    pub context: String,
    /// The decoded claims, JSON (as `castellan_attest::Claims` serialises them).
    pub claims_json: String,
    /// Whether the appraisal passed.
    pub passed: bool,
    /// Why it failed, or a note.
    pub reason: Option<String>,
}

/// One campaign a device was part of, with its own phase in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceUpdate {
    /// The campaign.
    pub campaign_id: String,
    /// The release it rolled out.
    pub release_id: String,
    /// The campaign's state (`running`, `completed`, …).
    pub campaign_state: String,
    /// The device's wave.
    pub wave: u32,
    /// The device's phase.
    pub state: DeviceUpdateState,
    /// Why it failed, or a note.
    pub reason: Option<String>,
    /// The device's last change in it (Unix seconds).
    pub updated_at: i64,
}

impl Store {
    /// Keep `r` as the device's last attestation (replacing the previous one).
    pub async fn record_attestation(&self, r: &AttestationRecord) -> Result<(), StoreError> {
        if r.claims_json.len() > MAX_CLAIMS_JSON {
            return Err(StoreError::Corrupt {
                what: "attestation claims (too long)",
                value: format!("{} bytes", r.claims_json.len()),
            });
        }
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO attestation_claims (device_id, appraised_at, context, claims, passed, \
             reason) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id) DO UPDATE SET \
             appraised_at = excluded.appraised_at, context = excluded.context, \
             claims = excluded.claims, passed = excluded.passed, reason = excluded.reason",
            vec![
                r.device_id.as_str().into(),
                r.appraised_at.into(),
                r.context.as_str().into(),
                r.claims_json.as_str().into(),
                r.passed.into(),
                r.reason.as_deref().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// The device's last attestation, if one verified since schema 13.
    pub async fn last_attestation(
        &self,
        device_id: &str,
    ) -> Result<Option<AttestationRecord>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT device_id, appraised_at, context, claims, passed, reason \
                 FROM attestation_claims WHERE device_id = $1",
                vec![device_id.into()],
            )
            .await?;
        row.map(|r| {
            Ok(AttestationRecord {
                device_id: r.text(0)?,
                appraised_at: r.int(1)?,
                context: r.text(2)?,
                claims_json: r.text(3)?,
                passed: r.bool(4)?,
                reason: r.opt_text(5)?,
            })
        })
        .transpose()
    }

    /// Keep the DER of the LDevID just issued to `device_id`.
    pub async fn set_ldevid_der(&self, device_id: &str, der: &[u8]) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE devices SET ldevid_der = $2 WHERE id = $1",
                vec![device_id.into(), der.into()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "device",
                key: device_id.to_string(),
            });
        }
        Ok(())
    }

    /// The DER of the device's current LDevID, when it was onboarded since schema 13.
    pub async fn ldevid_der(&self, device_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT ldevid_der FROM devices WHERE id = $1",
                vec![device_id.into()],
            )
            .await?;
        Ok(row.map(|r| r.opt_blob(0)).transpose()?.flatten())
    }

    /// The campaigns `device_id` was part of, newest change first, at most `limit`.
    pub async fn device_updates(
        &self,
        device_id: &str,
        limit: i64,
    ) -> Result<Vec<DeviceUpdate>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                "SELECT d.campaign_id, c.release_id, c.state, d.wave, d.state, d.reason, \
                 d.updated_at FROM campaign_devices d JOIN campaigns c ON c.id = d.campaign_id \
                 WHERE d.device_id = $1 ORDER BY d.updated_at DESC, d.campaign_id DESC LIMIT $2",
                vec![device_id.into(), limit.clamp(1, 1000).into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let state = r.text(4)?;
                Ok(DeviceUpdate {
                    campaign_id: r.text(0)?,
                    release_id: r.text(1)?,
                    campaign_state: r.text(2)?,
                    wave: u32::try_from(r.int(3)?).unwrap_or(0),
                    state: DeviceUpdateState::parse(&state).ok_or(StoreError::Corrupt {
                        what: "device update state",
                        value: state,
                    })?,
                    reason: r.opt_text(5)?,
                    updated_at: r.int(6)?,
                })
            })
            .collect()
    }

    /// The session re-checks posted for `device_id` (revocation, quarantine, policy), newest
    /// first, at most `limit` (they are kept for the cluster's TTL only).
    pub async fn session_events_of(
        &self,
        device_id: &str,
        limit: i64,
    ) -> Result<Vec<SessionEvent>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                "SELECT seq, device_id, kind, origin, created_at FROM session_events \
                 WHERE device_id = $1 ORDER BY seq DESC LIMIT $2",
                vec![device_id.into(), limit.clamp(1, 1000).into()],
            )
            .await?;
        rows.iter()
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
}
