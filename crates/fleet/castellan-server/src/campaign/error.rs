//! Why a campaign could not be created, changed, read or advanced: the engine's own error type,
//! free of HTTP (the operator API maps it to a status in `api/error.rs`, in one place).

use castellan_store::StoreError;

/// Why a campaign request was refused or the engine failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// The campaign's settings are invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A tag is not a valid name.
    #[error("{what} must be 1 to 64 of A-Z a-z 0-9 . _ - (not starting with . or -)")]
    InvalidName {
        /// What the name is (`"tag"`).
        what: &'static str,
    },
    /// No campaign has this id.
    #[error("no campaign {id:?}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// No such operator action on campaigns.
    #[error("no campaign action {action:?}")]
    UnknownAction {
        /// The action asked for.
        action: String,
    },
    /// The action does not fit the campaign's state.
    #[error("campaign {id} is {state}: cannot {action} it")]
    WrongState {
        /// The campaign.
        id: String,
        /// Its state.
        state: String,
        /// The action.
        action: String,
    },
    /// A campaign of the class is running or paused already.
    #[error(
        "campaign {active} of class {class} is running or paused: finish, abort or roll it back \
         first"
    )]
    AlreadyActive {
        /// The active campaign.
        active: String,
        /// The device class.
        class: String,
    },
    /// The release does not exist.
    #[error("no release {id:?}")]
    NoRelease {
        /// The id asked for.
        id: String,
    },
    /// The release is for another device class.
    #[error("release {release} is for class {class}, not {requested}")]
    WrongClass {
        /// The release.
        release: String,
        /// Its class.
        class: String,
        /// The class asked for.
        requested: String,
    },
    /// The release expired: devices refuse it.
    #[error("release {release} expired at {at} (now {now}): devices refuse it")]
    Expired {
        /// The release.
        release: String,
        /// Its expiry (Unix seconds).
        at: i64,
        /// Now (Unix seconds).
        now: i64,
    },
    /// No device is in the cohort.
    #[error(
        "no device is eligible: none of class {class}{tags} is onboarded, not quarantined or \
         revoked, and not already running release {release}"
    )]
    NoEligibleDevice {
        /// The class.
        class: String,
        /// `" with tags a, b"`, or empty.
        tags: String,
        /// The release.
        release: String,
    },
    /// A rollback release of another class than the campaign's.
    #[error("release {release} is for class {class}, campaign {campaign} for {campaign_class}")]
    RollbackClass {
        /// The rollback release.
        release: String,
        /// Its class.
        class: String,
        /// The campaign rolled back.
        campaign: String,
        /// The campaign's class.
        campaign_class: String,
    },
    /// A rollback release whose sequence is not above the campaign's release.
    #[error(
        "release {release} (sequence {sequence}) is not newer than the campaign's release \
         {source_release} (sequence {source_sequence}): devices would refuse it"
    )]
    RollbackNotNewer {
        /// The rollback release.
        release: String,
        /// Its sequence.
        sequence: u64,
        /// The campaign's release.
        source_release: String,
        /// Its sequence.
        source_sequence: u64,
    },
    /// No earlier release of the class was deployed.
    #[error(
        "no release of class {class} before {release} was deployed by a campaign: nothing to roll \
         back to"
    )]
    NothingToRollBackTo {
        /// The class.
        class: String,
        /// The campaign's release.
        release: String,
    },
    /// The rollback release does not carry the previous release's image.
    #[error(
        "the image of release {release} (SHA-256 {sha256}) is not the image of the previous \
         release {previous} (SHA-256 {previous_sha256})"
    )]
    RollbackImage {
        /// The rollback release.
        release: String,
        /// Its image's SHA-256.
        sha256: String,
        /// The previous release.
        previous: String,
        /// Its image's SHA-256.
        previous_sha256: String,
    },
    /// A heal targets a quarantined device.
    #[error("device {device} is not quarantined: nothing to heal (quarantine it first)")]
    NotQuarantined {
        /// The device.
        device: String,
    },
    /// No release of the class ever updated a device: nothing is known good.
    #[error("no release of class {class} has updated a device yet: no release is known good")]
    NoGoodRelease {
        /// The class.
        class: String,
    },
    /// The device attests the good release's measurement already.
    #[error(
        "device {device} runs the measurement of the last good release {release} already (a \
         run-time compromise, not a bad image): reboot it and have it attest again"
    )]
    AlreadyGood {
        /// The device.
        device: String,
        /// The last good release.
        release: String,
    },
    /// The campaign updated no device.
    #[error("campaign {id} updated no device: nothing to roll back")]
    NothingUpdated {
        /// The campaign.
        id: String,
    },
    /// A campaign's stored settings cannot be read.
    #[error("campaign {id}: stored settings unreadable: {source}")]
    StoredSpec {
        /// The campaign.
        id: String,
        /// What the JSON reader said.
        source: serde_json::Error,
    },
    /// The settings could not be written.
    #[error("campaign settings: {0}")]
    WriteSpec(serde_json::Error),
    /// The campaign's release is gone from the store.
    #[error("release {id} is missing")]
    ReleaseMissing {
        /// The release.
        id: String,
    },
    /// A just-created campaign is not in the store.
    #[error("the new campaign vanished")]
    Vanished,
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
    /// The store failed (or refused: not found, already exists).
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl CampaignError {
    /// The stable machine code of the error (API answer, audit log).
    pub fn code(&self) -> &'static str {
        match self {
            CampaignError::Spec(e) => e.code(),
            CampaignError::InvalidName { .. } => "campaign.invalid_name",
            CampaignError::NotFound { .. } => "campaign.not_found",
            CampaignError::UnknownAction { .. } => "campaign.unknown_action",
            CampaignError::WrongState { .. } => "campaign.wrong_state",
            CampaignError::AlreadyActive { .. } => "campaign.already_active",
            CampaignError::NoRelease { .. } => "campaign.no_release",
            CampaignError::WrongClass { .. } => "campaign.wrong_class",
            CampaignError::Expired { .. } => "campaign.release_expired",
            CampaignError::NoEligibleDevice { .. } => "campaign.no_eligible_device",
            CampaignError::RollbackClass { .. } => "campaign.rollback_wrong_class",
            CampaignError::RollbackNotNewer { .. } => "campaign.rollback_not_newer",
            CampaignError::NothingToRollBackTo { .. } => "campaign.nothing_to_roll_back_to",
            CampaignError::RollbackImage { .. } => "campaign.rollback_image_mismatch",
            CampaignError::NothingUpdated { .. } => "campaign.nothing_updated",
            CampaignError::NotQuarantined { .. } => "heal.not_quarantined",
            CampaignError::NoGoodRelease { .. } => "heal.no_good_release",
            CampaignError::AlreadyGood { .. } => "heal.measurement_already_good",
            CampaignError::StoredSpec { .. } => "campaign.stored_settings_unreadable",
            CampaignError::WriteSpec(_) => "campaign.settings_unwritable",
            CampaignError::ReleaseMissing { .. } => "campaign.release_missing",
            CampaignError::Vanished => "campaign.vanished",
            CampaignError::Random => "campaign.random_failed",
            CampaignError::Store(_) => "campaign.store",
        }
    }
}

/// Why a campaign's settings are invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A wave ending in `%` is not 1 % to 100 %.
    #[error("wave {0:?}: a share is 1% to 100%")]
    Share(String),
    /// A wave is neither a share nor a positive count.
    #[error("wave {0:?} is neither a share (\"25%\") nor a count (\"10\")")]
    Wave(String),
    /// More than 100 waves.
    #[error("at most 100 waves")]
    TooManyWaves,
    /// `max_failure_rate` above 100.
    #[error("max_failure_rate is a percentage (0 to 100)")]
    FailureRate,
    /// `device_timeout_s` of 0 or above 30 days.
    #[error("device_timeout_s must be 1 s to 30 days")]
    DeviceTimeout,
}

impl SpecError {
    /// The stable machine code of the error (API answer, audit log).
    pub fn code(&self) -> &'static str {
        match self {
            SpecError::Share(_) => "campaign.invalid_share",
            SpecError::Wave(_) => "campaign.invalid_wave",
            SpecError::TooManyWaves => "campaign.too_many_waves",
            SpecError::FailureRate => "campaign.invalid_failure_rate",
            SpecError::DeviceTimeout => "campaign.invalid_device_timeout",
        }
    }
}
