//! The campaign and alert actions an operator takes from the console, each tied to the API
//! route that does the same (whose roles are the action's), its audit name and the consequence
//! the confirmation page names; and the result of checking a release's manifest again.

/// What an operator does to a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CampaignAction {
    /// Stop offering the release until resumed.
    Pause,
    /// Offer it again (thresholds count from here).
    Resume,
    /// End the campaign, cancelling devices in progress.
    Abort,
    /// A new campaign putting the previous image back on the devices this one updated.
    Rollback,
}

impl CampaignAction {
    /// Every action, in the campaign page's order.
    pub const ALL: [CampaignAction; 4] = [
        CampaignAction::Pause,
        CampaignAction::Resume,
        CampaignAction::Abort,
        CampaignAction::Rollback,
    ];

    /// The action's name in the console's paths (and the API's).
    pub fn slug(self) -> &'static str {
        match self {
            CampaignAction::Pause => "pause",
            CampaignAction::Resume => "resume",
            CampaignAction::Abort => "abort",
            CampaignAction::Rollback => "rollback",
        }
    }

    /// The action with this name.
    pub fn parse(slug: &str) -> Option<CampaignAction> {
        CampaignAction::ALL.into_iter().find(|a| a.slug() == slug)
    }

    /// The API route that does the same (method, pattern).
    pub fn api_route(self) -> (&'static str, &'static str) {
        match self {
            CampaignAction::Pause => ("POST", "/api/v1/campaigns/{id}/pause"),
            CampaignAction::Resume => ("POST", "/api/v1/campaigns/{id}/resume"),
            CampaignAction::Abort => ("POST", "/api/v1/campaigns/{id}/abort"),
            CampaignAction::Rollback => ("POST", "/api/v1/campaigns/{id}/rollback"),
        }
    }

    /// The audit log's name for it.
    pub fn audit_action(self) -> &'static str {
        match self {
            CampaignAction::Pause => "console.campaign.pause",
            CampaignAction::Resume => "console.campaign.resume",
            CampaignAction::Abort => "console.campaign.abort",
            CampaignAction::Rollback => "console.campaign.rollback",
        }
    }

    /// Whether the action makes sense for a campaign in `state` (the page offers only those;
    /// the service decides).
    pub fn applies_to(self, state: &str) -> bool {
        match self {
            CampaignAction::Pause => state == "running",
            CampaignAction::Resume => state == "paused",
            CampaignAction::Abort => state == "running" || state == "paused",
            CampaignAction::Rollback => true,
        }
    }

    /// What the operator is told before confirming.
    pub fn consequence(self) -> &'static str {
        match self {
            CampaignAction::Pause => {
                "No device is offered the release until the campaign is resumed; devices \
                 already downloading or installing carry on."
            }
            CampaignAction::Resume => {
                "Devices are offered the release again, wave by wave; the failure thresholds \
                 count from now."
            }
            CampaignAction::Abort => {
                "The campaign ends for good: devices in progress are told to cancel and are \
                 counted as failed, no further device is offered the release. This cannot be \
                 undone."
            }
            CampaignAction::Rollback => {
                "A new campaign starts that puts the previous image back (through the release \
                 named below) on every device this campaign updated; if this campaign is still \
                 active it is aborted first."
            }
        }
    }

    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            CampaignAction::Pause => "Pause",
            CampaignAction::Resume => "Resume",
            CampaignAction::Abort => "Abort",
            CampaignAction::Rollback => "Roll back",
        }
    }
}

/// What an operator does to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlertAction {
    /// Someone is looking at it.
    Acknowledge,
    /// Done with it (final).
    Resolve,
}

impl AlertAction {
    /// Both actions.
    pub const ALL: [AlertAction; 2] = [AlertAction::Acknowledge, AlertAction::Resolve];

    /// The action's name in the console's paths (and the API's).
    pub fn slug(self) -> &'static str {
        match self {
            AlertAction::Acknowledge => "acknowledge",
            AlertAction::Resolve => "resolve",
        }
    }

    /// The action with this name.
    pub fn parse(slug: &str) -> Option<AlertAction> {
        AlertAction::ALL.into_iter().find(|a| a.slug() == slug)
    }

    /// The API route that does the same.
    pub fn api_route(self) -> (&'static str, &'static str) {
        match self {
            AlertAction::Acknowledge => ("POST", "/api/v1/alerts/{id}/acknowledge"),
            AlertAction::Resolve => ("POST", "/api/v1/alerts/{id}/resolve"),
        }
    }

    /// The audit log's name for it.
    pub fn audit_action(self) -> &'static str {
        match self {
            AlertAction::Acknowledge => "console.alert.acknowledge",
            AlertAction::Resolve => "console.alert.resolve",
        }
    }

    /// Whether it makes sense for an alert in `state`.
    pub fn applies_to(self, state: &str) -> bool {
        match self {
            AlertAction::Acknowledge => state == "open",
            AlertAction::Resolve => state != "resolved",
        }
    }

    /// What the operator is told before confirming.
    pub fn consequence(self) -> &'static str {
        match self {
            AlertAction::Acknowledge => {
                "The alert is marked as being handled, under your name; it stays in the list \
                 until resolved."
            }
            AlertAction::Resolve => {
                "The alert is closed under your name; a resolved alert stays resolved (a new \
                 deviation raises a new alert)."
            }
        }
    }

    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            AlertAction::Acknowledge => "Acknowledge",
            AlertAction::Resolve => "Resolve",
        }
    }
}

/// A release's SUIT envelope and image checked again by the service, now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestCheck {
    /// Whether the envelope authenticates with the release trust anchor, has not expired and
    /// describes the stored image (digest, size), and the image verifies with its own key.
    pub verified: bool,
    /// What was checked, or why it failed.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_name_their_api_routes() {
        for a in CampaignAction::ALL {
            assert_eq!(CampaignAction::parse(a.slug()), Some(a));
            assert!(a.api_route().1.ends_with(a.slug()));
            assert!(a.audit_action().starts_with("console.campaign."));
        }
        for a in AlertAction::ALL {
            assert_eq!(AlertAction::parse(a.slug()), Some(a));
            assert!(a.api_route().1.ends_with(a.slug()));
        }
        assert_eq!(CampaignAction::parse("delete"), None);
        assert_eq!(AlertAction::parse("../x"), None);
    }

    #[test]
    fn only_meaningful_actions_are_offered() {
        assert!(CampaignAction::Pause.applies_to("running"));
        assert!(!CampaignAction::Pause.applies_to("paused"));
        assert!(CampaignAction::Resume.applies_to("paused"));
        assert!(!CampaignAction::Abort.applies_to("completed"));
        assert!(AlertAction::Acknowledge.applies_to("open"));
        assert!(!AlertAction::Acknowledge.applies_to("acknowledged"));
        assert!(!AlertAction::Resolve.applies_to("resolved"));
    }
}
