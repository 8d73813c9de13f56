//! The operator console's view of the service ([`castellan_console::Fleet`]): the same
//! functions the API handlers call, the API's role table ([`crate::ROUTES`]) and the service's
//! auditor. A device reaches the console as the API's JSON shows it, so the browser sees
//! exactly what `GET /api/v1/devices/{id}` answers.

use std::sync::Arc;

use castellan_console::{DeviceAction, DeviceView, Fleet, FleetError};
use castellan_pki::RevocationReason;
use castellan_store::{DeviceQuery, Role, Store};

use crate::api::DeviceJson;
use crate::api::devices::{page, revoke_device, set_quarantine, to_json};
use crate::api::{ApiError, ROUTES};
use crate::core::Core;

/// The console's handle on the service.
pub(crate) struct ConsoleFleet(pub(crate) Arc<Core>);

fn fleet_error(e: ApiError) -> FleetError {
    match e {
        ApiError::NotFound(what) => FleetError::NotFound(what),
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

    async fn act(&self, id: &str, action: DeviceAction) -> Result<String, FleetError> {
        let core = &self.0;
        match action {
            DeviceAction::Quarantine | DeviceAction::Release => {
                let on = action == DeviceAction::Quarantine;
                let (note, _) = set_quarantine(core, id, on).await.map_err(fleet_error)?;
                Ok(note.0.0)
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
}
