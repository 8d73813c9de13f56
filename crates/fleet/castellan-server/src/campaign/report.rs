//! Why a device's update message (status, fetch, evidence) was ignored: a typed refusal with a
//! stable code, logged and audited (`update.report`, `update.fetch`) with the code.

use castellan_store::DeviceUpdateState;

use crate::core::Core;

/// Why an update message of a device changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportRefusal {
    /// The payload is not the message.
    #[error("malformed {message}: {source}")]
    Malformed {
        /// `"status"`, `"fetch"` or `"evidence"`.
        message: &'static str,
        /// What the JSON reader said.
        source: serde_json::Error,
    },
    /// The device is in no running or paused campaign.
    #[error("{what} for campaign {campaign}, but the device is in no running or paused campaign")]
    NoCampaign {
        /// The message (`"status report"`, `"evidence"`).
        what: &'static str,
        /// The campaign it names.
        campaign: String,
    },
    /// The message names another campaign than the device's current one.
    #[error(
        "{what} for campaign {campaign}, which is not the device's current campaign ({current})"
    )]
    NotCurrent {
        /// The message.
        what: &'static str,
        /// The campaign it names.
        campaign: String,
        /// The device's current campaign.
        current: String,
    },
    /// The device already finished in the campaign.
    #[error("{what} for campaign {campaign}, where the device is already {state}")]
    Finished {
        /// The message.
        what: &'static str,
        /// The campaign.
        campaign: String,
        /// Its final state.
        state: DeviceUpdateState,
    },
    /// The campaign has not offered the device its release yet.
    #[error("{what} for campaign {campaign}, which has not offered the device its release yet")]
    NotOffered {
        /// The message.
        what: &'static str,
        /// The campaign.
        campaign: String,
    },
    /// A status report names another release than the campaign's.
    #[error(
        "status report for release {release} in campaign {campaign}, which rolls out {rolls_out}"
    )]
    WrongRelease {
        /// The release reported.
        release: String,
        /// The campaign.
        campaign: String,
        /// The campaign's release.
        rolls_out: String,
    },
    /// Evidence before the device said it confirmed.
    #[error("evidence for campaign {campaign} before the device confirmed (it is {state})")]
    NotConfirmed {
        /// The campaign.
        campaign: String,
        /// The device's state.
        state: DeviceUpdateState,
    },
    /// A fetch of another release than the device's campaign's.
    #[error(
        "fetch of release {release}, but the device's campaign {campaign} rolls out {rolls_out}"
    )]
    FetchWrongRelease {
        /// The release asked for.
        release: String,
        /// The device's campaign.
        campaign: String,
        /// Its release.
        rolls_out: String,
    },
    /// A fetch while the device is not downloading.
    #[error("fetch of release {release} while the device is {state} in campaign {campaign}")]
    FetchNotInProgress {
        /// The release asked for.
        release: String,
        /// The device's state.
        state: DeviceUpdateState,
        /// The campaign.
        campaign: String,
    },
    /// A fetch by a device in no campaign.
    #[error("fetch of release {release}, but the device is in no running or paused campaign")]
    FetchNoCampaign {
        /// The release asked for.
        release: String,
    },
    /// A fetch past the end of the image.
    #[error("fetch at offset {offset} is past the end of release {release} ({size} bytes)")]
    PastEnd {
        /// The offset asked for.
        offset: u64,
        /// The release.
        release: String,
        /// The image's size.
        size: u64,
    },
}

impl ReportRefusal {
    /// The stable machine code of the refusal (audit log).
    pub fn code(&self) -> &'static str {
        match self {
            ReportRefusal::Malformed { .. } => "update.malformed",
            ReportRefusal::NoCampaign { .. } | ReportRefusal::FetchNoCampaign { .. } => {
                "update.no_campaign"
            }
            ReportRefusal::NotCurrent { .. } => "update.not_current_campaign",
            ReportRefusal::Finished { .. } => "update.already_finished",
            ReportRefusal::NotOffered { .. } => "update.not_offered",
            ReportRefusal::WrongRelease { .. } | ReportRefusal::FetchWrongRelease { .. } => {
                "update.wrong_release"
            }
            ReportRefusal::NotConfirmed { .. } => "update.not_confirmed",
            ReportRefusal::FetchNotInProgress { .. } => "update.not_downloading",
            ReportRefusal::PastEnd { .. } => "update.past_end",
        }
    }
}

/// Log and audit a refused update message of device `id` (`action` on `target`).
pub(super) async fn refuse(
    core: &Core,
    id: &str,
    action: &str,
    target: &str,
    refusal: &ReportRefusal,
) {
    log::warn!("{id}: {action} {target} ignored: {refusal}");
    core.auditor
        .append_coded(
            id,
            action,
            target,
            false,
            Some(refusal.code()),
            &refusal.to_string(),
        )
        .await;
}
