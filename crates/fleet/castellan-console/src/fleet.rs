//! What the console asks of the fleet service: the seam the server implements with the same
//! functions its API handlers call.

use castellan_protocol::{AlertJson, CampaignJson, CampaignRequest, ReleaseJson};
use castellan_store::{DeviceQuery, Role, Store, StoreError};
use serde::Deserialize;

use crate::evidence::{CertificateChains, ScorePoint, TufRoleView};
use crate::ops::{AlertAction, CampaignAction, ManifestCheck};

/// The fleet service, as the console uses it.
pub trait Fleet: Send + Sync + 'static {
    /// The service's store (accounts, sessions, counts, telemetry, audit entries).
    fn store(&self) -> &Store;

    /// Whether `role` may call the API route `method path` (the API's role table; `path` is a
    /// route pattern such as `/api/v1/devices/{id}/quarantine`).
    fn may(&self, role: Role, method: &str, path: &str) -> bool;

    /// Append to the audit log.
    fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        allowed: bool,
        reason: &str,
    ) -> impl Future<Output = ()> + Send;

    /// One page of devices as `GET /api/v1/devices/{id}` shows each, and how many match.
    fn device_page(
        &self,
        query: &DeviceQuery,
    ) -> impl Future<Output = Result<(u64, Vec<DeviceView>), FleetError>> + Send;

    /// One device as `GET /api/v1/devices/{id}` shows it.
    fn device(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<DeviceView>, FleetError>> + Send;

    /// Take `action` on device `id` for operator `actor` as its API route does; returns what
    /// was done (the audit note).
    fn act(
        &self,
        id: &str,
        action: DeviceAction,
        actor: &str,
    ) -> impl Future<Output = Result<String, FleetError>> + Send;

    /// The IDevID's and the LDevID's issuer chains up to the root, as the service's PKI holds
    /// them (the leaf first).
    fn certificate_chains(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<CertificateChains, FleetError>> + Send;

    /// The edge detector's scores of device `id` over time, oldest first, when the store keeps
    /// detection reports; `None` when it does not (the page then plots telemetry only).
    fn detector_scores(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Vec<ScorePoint>>, FleetError>> + Send {
        let _ = id;
        async { Ok(None) }
    }

    /// The TUF repository's roles as published (version, expiry), when the service serves
    /// one; `None` when it does not.
    fn tuf_roles(
        &self,
    ) -> impl Future<Output = Result<Option<Vec<TufRoleView>>, FleetError>> + Send;
    /// Every release, as `GET /api/v1/releases` shows them.
    fn releases(&self) -> impl Future<Output = Result<Vec<ReleaseJson>, FleetError>> + Send;

    /// One release as `GET /api/v1/releases/{id}` shows it.
    fn release(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ReleaseJson>, FleetError>> + Send;

    /// Release `id`'s SUIT envelope and image checked again, now, as an upload is checked
    /// (trust anchor, expiry, digest, size, the image's own signature).
    fn check_release(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ManifestCheck, FleetError>> + Send;

    /// Every campaign, as `GET /api/v1/campaigns` shows them.
    fn campaigns(&self) -> impl Future<Output = Result<Vec<CampaignJson>, FleetError>> + Send;

    /// One campaign, as `GET /api/v1/campaigns/{id}` shows it.
    fn campaign(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<CampaignJson>, FleetError>> + Send;

    /// The devices (with their wave) that `POST /api/v1/campaigns` with `req` would reach now,
    /// or its refusal; nothing is created.
    fn preview_campaign(
        &self,
        req: &CampaignRequest,
    ) -> impl Future<Output = Result<Vec<(String, u32)>, FleetError>> + Send;

    /// Create a campaign as `POST /api/v1/campaigns` does; returns it and the audit note.
    fn create_campaign(
        &self,
        req: &CampaignRequest,
        actor: &str,
    ) -> impl Future<Output = Result<(CampaignJson, String), FleetError>> + Send;

    /// Pause, resume, abort or roll back (with `rollback_release`) campaign `id` as the API's
    /// routes do; returns the campaign (the new one for a rollback) and the audit note.
    fn act_on_campaign(
        &self,
        id: &str,
        action: CampaignAction,
        rollback_release: Option<&str>,
        actor: &str,
    ) -> impl Future<Output = Result<(CampaignJson, String), FleetError>> + Send;

    /// Alerts, newest first, as `GET /api/v1/alerts?state=…&limit=…` shows them.
    fn alerts(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AlertJson>, FleetError>> + Send;

    /// Acknowledge or resolve alert `id` as the API's routes do; returns it and the audit note.
    fn act_on_alert(
        &self,
        id: &str,
        action: AlertAction,
        actor: &str,
    ) -> impl Future<Output = Result<(AlertJson, String), FleetError>> + Send;
}

/// Why the fleet could not answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// The store failed.
    Store(StoreError),
    /// No such device.
    NotFound(String),
    /// The service refused (the reason is for the operator).
    Refused(String),
}

impl core::fmt::Display for FleetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FleetError::Store(e) => write!(f, "store: {e}"),
            FleetError::NotFound(what) => write!(f, "not found: {what}"),
            FleetError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl std::error::Error for FleetError {}

impl From<StoreError> for FleetError {
    fn from(e: StoreError) -> Self {
        FleetError::Store(e)
    }
}

/// An action an operator takes on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceAction {
    /// Restrict the device to the update channel.
    Quarantine,
    /// Lift the quarantine.
    Release,
    /// Start a campaign of the last good release for it (quarantined devices).
    Heal,
    /// Send the signed decommission (erase, prove it, revoke).
    Decommission,
    /// Revoke its certificates.
    Revoke,
}

impl DeviceAction {
    /// Every action, in the device page's order.
    pub const ALL: [DeviceAction; 5] = [
        DeviceAction::Quarantine,
        DeviceAction::Release,
        DeviceAction::Heal,
        DeviceAction::Decommission,
        DeviceAction::Revoke,
    ];

    /// The action's name in the console's paths.
    pub fn slug(self) -> &'static str {
        match self {
            DeviceAction::Quarantine => "quarantine",
            DeviceAction::Release => "release",
            DeviceAction::Heal => "heal",
            DeviceAction::Decommission => "decommission",
            DeviceAction::Revoke => "revoke",
        }
    }

    /// The action with this name.
    pub fn parse(slug: &str) -> Option<DeviceAction> {
        DeviceAction::ALL.into_iter().find(|a| a.slug() == slug)
    }

    /// The API route that does the same (method, pattern): its roles are the action's.
    pub fn api_route(self) -> (&'static str, &'static str) {
        match self {
            DeviceAction::Quarantine => ("POST", "/api/v1/devices/{id}/quarantine"),
            DeviceAction::Release => ("DELETE", "/api/v1/devices/{id}/quarantine"),
            DeviceAction::Heal => ("POST", "/api/v1/devices/{id}/heal"),
            DeviceAction::Decommission => ("POST", "/api/v1/devices/{id}/decommission"),
            DeviceAction::Revoke => ("POST", "/api/v1/devices/{id}/revoke"),
        }
    }

    /// The audit log's name for the action taken from the console.
    pub fn audit_action(self) -> &'static str {
        match self {
            DeviceAction::Quarantine => "console.device.quarantine",
            DeviceAction::Release => "console.device.release",
            DeviceAction::Heal => "console.device.heal",
            DeviceAction::Decommission => "console.device.decommission",
            DeviceAction::Revoke => "console.device.revoke",
        }
    }

    /// What the operator is told before confirming.
    pub fn consequence(self) -> &'static str {
        match self {
            DeviceAction::Quarantine => {
                "Its MQTT session is closed now; when it reconnects it may only use the update \
                 channel (no telemetry, no other topics) until it is released."
            }
            DeviceAction::Release => {
                "Its MQTT session is closed now; when it reconnects it gets its normal topics \
                 back."
            }
            DeviceAction::Heal => {
                "If its last measurement is already the good one (a run-time compromise), a \
                 signed reboot-and-reattest command is sent: it must reboot and attest over a \
                 fresh nonce. Otherwise a campaign of the last good release of its class starts \
                 for this device alone; it must install it and attest the good measurement over \
                 a fresh nonce. Either way it then goes on probation, and it leaves quarantine \
                 by itself when the probation ends without a new finding."
            }
            DeviceAction::Decommission => {
                "A signed decommission command is sent: the device erases its keys and \
                 secrets and proves it with an attestation token; proof or not, its factory \
                 and operational certificates are then revoked and it can never connect or \
                 onboard again. Where a second operator must approve, this records your \
                 request and another decommissioner must ask too. This cannot be undone."
            }
            DeviceAction::Revoke => {
                "Its factory and operational certificates are revoked and its session is \
                 closed: it can never connect again with them. This cannot be undone."
            }
        }
    }

    /// Whether the action makes sense for `d` now (the page offers only those; the service
    /// decides).
    pub fn applies_to(self, d: &DeviceView) -> bool {
        let live = !d.revoked && d.lifecycle_name != "decommissioned";
        match self {
            DeviceAction::Quarantine => live && !d.quarantined,
            DeviceAction::Release => live && d.quarantined,
            DeviceAction::Heal => live && d.quarantined,
            DeviceAction::Decommission => live && d.onboarded_at.is_some(),
            DeviceAction::Revoke => !d.revoked,
        }
    }

    /// Whether it cannot be undone (its button is marked).
    pub fn is_final(self) -> bool {
        matches!(self, DeviceAction::Revoke | DeviceAction::Decommission)
    }

    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            DeviceAction::Quarantine => "Quarantine",
            DeviceAction::Release => "Release from quarantine",
            DeviceAction::Heal => "Heal",
            DeviceAction::Decommission => "Decommission",
            DeviceAction::Revoke => "Revoke certificates",
        }
    }
}

/// A reference measurement, as the API shows it.
#[derive(Clone, Debug, Deserialize)]
pub struct MeasurementView {
    /// Measurement type (component).
    #[serde(rename = "type")]
    pub mtype: String,
    /// Digest, hex.
    pub digest: String,
    /// Signer id, hex.
    pub signer_id: String,
    /// Version.
    pub version: String,
}

/// A device as `GET /api/v1/devices/{id}` shows it (the fields the console uses).
#[derive(Clone, Debug, Deserialize)]
pub struct DeviceView {
    /// Device id.
    pub id: String,
    /// Serial.
    pub serial: String,
    /// Class.
    pub device_class: String,
    /// Tags.
    pub tags: Vec<String>,
    /// PSA lifecycle name.
    pub lifecycle_name: String,
    /// Latest attestation result.
    pub attestation: String,
    /// Why the latest appraisal failed, or a note.
    pub attestation_reason: Option<String>,
    /// IDevID serial.
    pub idevid_serial: String,
    /// Current LDevID serial.
    pub ldevid_serial: Option<String>,
    /// Onboarded at (Unix seconds).
    pub onboarded_at: Option<i64>,
    /// Last seen (Unix seconds).
    pub last_seen: Option<i64>,
    /// Quarantined.
    pub quarantined: bool,
    /// A certificate of it is revoked.
    pub revoked: bool,
    /// Has a live MQTT connection.
    pub connected: bool,
    /// Reported firmware version.
    pub firmware_version: Option<String>,
    /// Reference measurements.
    pub reference_measurements: Vec<MeasurementView>,
    /// Registered at (Unix seconds).
    pub created_at: i64,
    /// The factory certificate, decoded.
    #[serde(default)]
    pub idevid: Option<CertificateView>,
}

/// A certificate, as the API shows it.
#[derive(Clone, Debug, Deserialize)]
pub struct CertificateView {
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// notBefore (Unix seconds).
    pub not_before: i64,
    /// notAfter (Unix seconds).
    pub not_after: i64,
}
