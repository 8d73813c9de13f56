//! The operator console's view of the service ([`castellan_console::Fleet`]): the same
//! functions the API handlers call, the API's role table ([`crate::ROUTES`]) and the service's
//! auditor. A device reaches the console as the API's JSON shows it, so the browser sees
//! exactly what `GET /api/v1/devices/{id}` answers.

use std::sync::Arc;

use castellan_console::{
    AlertAction, CampaignAction, CertificateChain, CertificateChains, DeviceAction, DeviceView,
    Fleet, FleetError, ManifestCheck, TufRoleView,
};
use castellan_pki::RevocationReason;
use castellan_store::{AlertState, DeviceQuery, Role, Store, unix_now};

use crate::campaign::{self, CampaignError};
use crate::protocol::{AlertJson, CampaignJson, CampaignRequest, ReleaseJson};

use crate::api::DeviceJson;
use crate::api::devices::{
    decommission_device, heal_device, page, revoke_device, set_quarantine, to_json,
};
use crate::api::releases::release_json;
use crate::api::{ApiError, ROUTES};
use crate::console_evidence;
use crate::core::Core;

/// The console's handle on the service.
pub(crate) struct ConsoleFleet(pub(crate) Arc<Core>);

fn fleet_error(e: ApiError) -> FleetError {
    match e {
        ApiError::NotFound(what) => FleetError::NotFound(what),
        other => FleetError::Refused(other.to_string()),
    }
}

fn campaign_error(e: CampaignError) -> FleetError {
    match e {
        CampaignError::NotFound { id } => FleetError::NotFound(format!("campaign {id}")),
        other => FleetError::Refused(other.to_string()),
    }
}

/// The console's reading of the API's JSON of a device.
fn as_view(json: DeviceJson) -> Result<DeviceView, FleetError> {
    serde_json::to_value(json)
        .and_then(serde_json::from_value)
        .map_err(|e| FleetError::Refused(format!("device as the API shows it: {e}")))
}

impl Fleet for ConsoleFleet {
    fn store(&self) -> &Store {
        &self.0.store
    }

    fn may(&self, role: Role, method: &str, path: &str) -> bool {
        ROUTES
            .iter()
            .any(|r| r.method == method && r.path == path && r.roles.contains(&role))
    }

    async fn audit(&self, actor: &str, action: &str, target: &str, allowed: bool, reason: &str) {
        self.0
            .auditor
            .append(actor, action, target, allowed, reason)
            .await;
    }

    async fn device_page(&self, query: &DeviceQuery) -> Result<(u64, Vec<DeviceView>), FleetError> {
        let (total, devices) = page(&self.0, query).await.map_err(fleet_error)?;
        let views = devices
            .into_iter()
            .map(as_view)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((total, views))
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceView>, FleetError> {
        match self.0.store.device(id).await? {
            Some(d) => Ok(Some(as_view(to_json(&self.0, d).await)?)),
            None => Ok(None),
        }
    }

    async fn act(&self, id: &str, action: DeviceAction, actor: &str) -> Result<String, FleetError> {
        let core = &self.0;
        match action {
            DeviceAction::Quarantine | DeviceAction::Release => {
                let on = action == DeviceAction::Quarantine;
                let (note, _) = set_quarantine(core, id, on).await.map_err(fleet_error)?;
                Ok(note.0.0)
            }
            DeviceAction::Heal => {
                let (_, note, _) = heal_device(core, id, actor).await.map_err(fleet_error)?;
                Ok(note)
            }
            DeviceAction::Decommission => {
                let (_, note, _) = decommission_device(core, id, actor)
                    .await
                    .map_err(fleet_error)?;
                Ok(note)
            }
            DeviceAction::Revoke => {
                let (note, _) = revoke_device(core, id, RevocationReason::Unspecified)
                    .await
                    .map_err(fleet_error)?;
                Ok(note)
            }
            _ => Err(FleetError::Refused(format!(
                "{} is not available from the console",
                action.slug()
            ))),
        }
    }

    async fn certificate_chains(&self, id: &str) -> Result<CertificateChains, FleetError> {
        let core = &self.0;
        let d = core
            .store
            .device(id)
            .await?
            .ok_or_else(|| FleetError::NotFound(format!("device {id}")))?;
        let ldevid = match core.store.ldevid_der(id).await? {
            Some(der) => console_evidence::chain_of(core, &der),
            None => CertificateChain {
                note: Some(match d.ldevid_serial {
                    Some(serial) => format!(
                        "LDevID {serial} was issued before the service kept operational \
                         certificates: only its serial and SHA-256 are known (kept from the \
                         next onboarding on)."
                    ),
                    None => "No operational certificate yet (the device has not onboarded).".into(),
                }),
                ..CertificateChain::default()
            },
        };
        Ok(CertificateChains {
            idevid: console_evidence::chain_of(core, &d.idevid_der),
            ldevid,
        })
    }

    async fn tuf_roles(&self) -> Result<Option<Vec<TufRoleView>>, FleetError> {
        console_evidence::tuf_roles(&self.0).await
    }

    async fn releases(&self) -> Result<Vec<ReleaseJson>, FleetError> {
        Ok(self
            .0
            .store
            .list_releases()
            .await?
            .iter()
            .map(release_json)
            .collect())
    }

    async fn release(&self, id: &str) -> Result<Option<ReleaseJson>, FleetError> {
        Ok(self.0.store.release(id).await?.as_ref().map(release_json))
    }

    async fn check_release(&self, id: &str) -> Result<ManifestCheck, FleetError> {
        let core = &self.0;
        let release = core
            .store
            .release(id)
            .await?
            .ok_or_else(|| FleetError::NotFound(format!("release {id}")))?;
        let image = core
            .store
            .release_image(id)
            .await?
            .ok_or_else(|| FleetError::NotFound(format!("release {id}'s image")))?;
        let Some(key) = core.store.release_key().await? else {
            return Ok(ManifestCheck {
                verified: false,
                detail: "no release trust anchor is set".into(),
            });
        };
        let vendor = core.config.vendor.clone();
        let class = release.device_class.clone();
        let manifest = release.manifest.clone();
        let checked = tokio::task::spawn_blocking(move || {
            crate::release_check::check_release(
                &key.public_key,
                &vendor,
                &class,
                &image,
                &manifest,
                unix_now(),
            )
        })
        .await
        .map_err(|e| FleetError::Refused(format!("release check task: {e}")))?;
        Ok(match checked {
            Ok(c)
                if hex::encode(c.image_sha256) == release.image_sha256
                    && c.sequence == release.sequence =>
            {
                ManifestCheck {
                    verified: true,
                    detail: format!(
                        "the envelope authenticates with the release trust anchor, has not \
                         expired, names this image (SHA-256 and size) for class {}, and the \
                         image verifies with its own key (signer {})",
                        release.device_class,
                        hex::encode(c.signer_id)
                    ),
                }
            }
            Ok(_) => ManifestCheck {
                verified: false,
                detail: "the manifest no longer matches the stored release".into(),
            },
            Err(e) => ManifestCheck {
                verified: false,
                detail: e.to_string(),
            },
        })
    }

    async fn campaigns(&self) -> Result<Vec<CampaignJson>, FleetError> {
        let mut out = Vec::new();
        for c in self.0.store.list_campaigns().await? {
            out.push(
                campaign::campaign_json(&self.0, &c)
                    .await
                    .map_err(campaign_error)?,
            );
        }
        Ok(out)
    }

    async fn campaign(&self, id: &str) -> Result<Option<CampaignJson>, FleetError> {
        match campaign::view(&self.0, id).await {
            Ok(c) => Ok(Some(c)),
            Err(CampaignError::NotFound { .. }) => Ok(None),
            Err(e) => Err(campaign_error(e)),
        }
    }

    async fn preview_campaign(
        &self,
        req: &CampaignRequest,
    ) -> Result<Vec<(String, u32)>, FleetError> {
        crate::api::check_name("device class", &req.device_class).map_err(fleet_error)?;
        campaign::preview(&self.0, req)
            .await
            .map_err(campaign_error)
    }

    async fn create_campaign(
        &self,
        req: &CampaignRequest,
        actor: &str,
    ) -> Result<(CampaignJson, String), FleetError> {
        crate::api::check_name("device class", &req.device_class).map_err(fleet_error)?;
        let c = campaign::create(&self.0, req, actor)
            .await
            .map_err(campaign_error)?;
        let note = format!(
            "campaign {} created: release {} to {} devices of class {} (canary {}, waves {})",
            c.campaign_id,
            c.release_id,
            c.devices.len(),
            c.device_class,
            c.canary,
            c.waves.join(" ")
        );
        Ok((c, note))
    }

    async fn act_on_campaign(
        &self,
        id: &str,
        action: CampaignAction,
        rollback_release: Option<&str>,
        actor: &str,
    ) -> Result<(CampaignJson, String), FleetError> {
        let core = &self.0;
        if action == CampaignAction::Rollback {
            let release = rollback_release
                .ok_or_else(|| FleetError::Refused("a rollback needs a release".into()))?;
            let c = campaign::rollback(core, id, release, actor)
                .await
                .map_err(campaign_error)?;
            let note = format!(
                "campaign {id} rolled back by campaign {}: release {} to {} devices",
                c.campaign_id,
                c.release_id,
                c.devices.len()
            );
            return Ok((c, note));
        }
        let c = campaign::act(core, id, action.slug(), actor)
            .await
            .map_err(campaign_error)?;
        let note = format!("campaign {id}: {} (now {})", action.slug(), c.state);
        Ok((c, note))
    }

    async fn alerts(&self, state: Option<&str>, limit: u32) -> Result<Vec<AlertJson>, FleetError> {
        let state = match state {
            None => None,
            Some(s) => Some(
                AlertState::parse(s)
                    .ok_or_else(|| FleetError::Refused(format!("unknown alert state {s:?}")))?,
            ),
        };
        let alerts = self.0.store.alerts(state, limit.clamp(1, 1000)).await?;
        Ok(alerts
            .into_iter()
            .map(crate::response::alert_json)
            .collect())
    }

    async fn act_on_alert(
        &self,
        id: &str,
        action: AlertAction,
        actor: &str,
    ) -> Result<(AlertJson, String), FleetError> {
        let to = match action {
            AlertAction::Acknowledge => AlertState::Acknowledged,
            AlertAction::Resolve => AlertState::Resolved,
            _ => return Err(FleetError::Refused("unknown alert action".into())),
        };
        let op = self
            .0
            .store
            .operator(actor)
            .await?
            .ok_or_else(|| FleetError::Refused(format!("no operator {actor}")))?;
        let (note, json) = crate::api::alerts::move_alert(&self.0, &op, id, to)
            .await
            .map_err(fleet_error)?;
        Ok((json.0, note.0.0))
    }
}
