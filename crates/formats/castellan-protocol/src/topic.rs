//! The MQTT topics of the protocol as a type: every topic a device or the server publishes on
//! is a [`Topic`], read from its text once ([`Topic::parse`], hostile input) and written back
//! with `Display` (the builders of [`crate::topics`] are this, as strings).
//!
//! ```text
//!  dev/<id>/up/onboard/{hello,evidence}        Topic::Onboard   (up)
//!  dev/<id>/down/onboard/{challenge,result}    Topic::Onboard   (down)
//!  dev/<id>/telemetry                          Topic::Telemetry (up)
//!  dev/<id>/status                             Topic::Status    (up)
//!  dev/<id>/events                             Topic::Events    (up)
//!  dev/<id>/up/update/{status,fetch,evidence}  Topic::UpdateUp  (up)
//!  dev/<id>/down/update/{offer,challenge,result,cancel}
//!                                              Topic::UpdateDown (down)
//!  dev/<id>/down/update/chunk/<release_id>     Topic::UpdateChunk (down)
//!  dev/<id>/up/tuf/request                     Topic::TufRequest  (up)
//!  dev/<id>/down/tuf/response                  Topic::TufResponse (down)
//!  dev/<id>/down/lifecycle/decommission        Topic::Decommission (down)
//!  dev/<id>/up/lifecycle/erased                Topic::Erased      (up)
//!  dev/<id>/up/detect/report                   Topic::DetectReport (up)
//!  dev/<id>/down/lifecycle/reattest            Topic::Reattest    (down)
//!  dev/<id>/up/lifecycle/reattested            Topic::Reattested  (up)
//! ```
//!
//! Ids (the device id, a release id) are one topic level of 1 to [`MAX_ID_LEN`] bytes of
//! `A-Z a-z 0-9 . _ -`, never `.` or `..`: the same rule the broker applies to certificate
//! names, so a parsed topic never holds a wildcard, an empty level or a path step.

use std::fmt;

/// Longest id (device or release) a topic level may carry, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest topic [`Topic::parse`] reads, in bytes.
pub const MAX_TOPIC_LEN: usize = 1024;

/// Who publishes on a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The device publishes, the server subscribes.
    Up,
    /// The server publishes, the device subscribes.
    Down,
}

/// The onboarding exchange's topics (`up/onboard/…` and `down/onboard/…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnboardKind {
    /// `up/onboard/hello`: the device asks for a challenge.
    Hello,
    /// `down/onboard/challenge`: the server's nonce.
    Challenge,
    /// `up/onboard/evidence`: the device's token and CSR.
    Evidence,
    /// `down/onboard/result`: the verdict.
    Result,
}

/// What a device publishes under `up/update/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateUpKind {
    /// `up/update/status`: progress ([`crate::Status`]).
    Status,
    /// `up/update/fetch`: a request for bytes ([`crate::Fetch`]).
    Fetch,
    /// `up/update/evidence`: the post-update token ([`crate::UpdateEvidence`]).
    Evidence,
}

/// What the server publishes under `down/update/` (chunks aside: [`Topic::UpdateChunk`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateDownKind {
    /// `down/update/offer` ([`crate::Offer`]).
    Offer,
    /// `down/update/challenge` ([`crate::UpdateChallenge`]).
    Challenge,
    /// `down/update/result` ([`crate::UpdateResult`]).
    Result,
    /// `down/update/cancel` ([`crate::Cancel`]).
    Cancel,
}

/// One MQTT topic of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Topic {
    /// `dev/<id>/{up,down}/onboard/<kind>`.
    Onboard {
        /// The device.
        id: String,
        /// Which message (its direction follows from it).
        kind: OnboardKind,
    },
    /// `dev/<id>/telemetry`: free-form JSON the server stores.
    Telemetry {
        /// The device.
        id: String,
    },
    /// `dev/<id>/status`: the device's presence (free-form JSON).
    Status {
        /// The device.
        id: String,
    },
    /// `dev/<id>/events`: free-form device events.
    Events {
        /// The device.
        id: String,
    },
    /// `dev/<id>/up/update/<kind>`.
    UpdateUp {
        /// The device.
        id: String,
        /// Which message.
        kind: UpdateUpKind,
    },
    /// `dev/<id>/down/update/<kind>`.
    UpdateDown {
        /// The device.
        id: String,
        /// Which message.
        kind: UpdateDownKind,
    },
    /// `dev/<id>/down/update/chunk/<release_id>`: bytes of a release's image.
    UpdateChunk {
        /// The device.
        id: String,
        /// The release the bytes are of.
        release: String,
    },
    /// `dev/<id>/up/tuf/request`: the device asks for a file of the TUF repository
    /// ([`crate::TufRequest`]).
    TufRequest {
        /// The device.
        id: String,
    },
    /// `dev/<id>/down/tuf/response`: the server's answer ([`crate::TufResponse`]).
    TufResponse {
        /// The device.
        id: String,
    },
    /// `dev/<id>/down/lifecycle/decommission`: the signed decommission command
    /// ([`crate::DecommissionCommand`]).
    Decommission {
        /// The device.
        id: String,
    },
    /// `dev/<id>/up/lifecycle/erased`: the final attestation token, proof of erasure
    /// ([`crate::ErasureEvidence`]).
    Erased {
        /// The device.
        id: String,
    },
    /// `dev/<id>/up/detect/report`: a signed detection report, its `COSE_Sign1` bytes as the
    /// payload (`castellan-detect-report`).
    DetectReport {
        /// The device.
        id: String,
    },
    /// `dev/<id>/down/lifecycle/reattest`: the signed reboot-and-reattest command
    /// ([`crate::ReattestCommand`]).
    Reattest {
        /// The device.
        id: String,
    },
    /// `dev/<id>/up/lifecycle/reattested`: the token after the reboot, over the command's
    /// nonce ([`crate::ReattestEvidence`]).
    Reattested {
        /// The device.
        id: String,
    },
}

/// Why a topic is not one of the protocol's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// Longer than [`MAX_TOPIC_LEN`] bytes.
    TooLong {
        /// Its length.
        len: usize,
    },
    /// Not under `dev/<id>/`.
    NotDevice,
    /// An id level is empty, too long, `.`/`..`, or has a byte outside `A-Z a-z 0-9 . _ -`
    /// (wildcards and empty levels included).
    BadId,
    /// A well-formed device namespace, but no topic of the protocol in it.
    Unknown {
        /// The device whose namespace it is.
        id: String,
    },
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::TooLong { len } => {
                write!(f, "the topic has {len} bytes (at most {MAX_TOPIC_LEN})")
            }
            TopicError::NotDevice => f.write_str("the topic is not under dev/<id>/"),
            TopicError::BadId => f.write_str("the topic's id level is not a valid id"),
            TopicError::Unknown { id } => {
                write!(f, "no protocol topic of this name under dev/{id}/")
            }
        }
    }
}

impl std::error::Error for TopicError {}

/// Whether `s` is a valid id level (device or release id).
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Topic {
    /// Reads a topic name (no wildcards). Never panics.
    pub fn parse(topic: &str) -> Result<Topic, TopicError> {
        if topic.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong { len: topic.len() });
        }
        let rest = topic.strip_prefix("dev/").ok_or(TopicError::NotDevice)?;
        let (id, rest) = rest.split_once('/').ok_or(TopicError::NotDevice)?;
        if !is_valid_id(id) {
            return Err(TopicError::BadId);
        }
        let id = id.to_string();
        let levels: Vec<&str> = rest.split('/').collect();
        let topic = match levels.as_slice() {
            ["telemetry"] => Topic::Telemetry { id },
            ["status"] => Topic::Status { id },
            ["events"] => Topic::Events { id },
            ["up", "onboard", "hello"] => Topic::onboard(id, OnboardKind::Hello),
            ["up", "onboard", "evidence"] => Topic::onboard(id, OnboardKind::Evidence),
            ["down", "onboard", "challenge"] => Topic::onboard(id, OnboardKind::Challenge),
            ["down", "onboard", "result"] => Topic::onboard(id, OnboardKind::Result),
            ["up", "update", "status"] => Topic::update_up(id, UpdateUpKind::Status),
            ["up", "update", "fetch"] => Topic::update_up(id, UpdateUpKind::Fetch),
            ["up", "update", "evidence"] => Topic::update_up(id, UpdateUpKind::Evidence),
            ["down", "update", "offer"] => Topic::update_down(id, UpdateDownKind::Offer),
            ["down", "update", "challenge"] => Topic::update_down(id, UpdateDownKind::Challenge),
            ["down", "update", "result"] => Topic::update_down(id, UpdateDownKind::Result),
            ["down", "update", "cancel"] => Topic::update_down(id, UpdateDownKind::Cancel),
            ["down", "update", "chunk", release] if is_valid_id(release) => Topic::UpdateChunk {
                id,
                release: (*release).to_string(),
            },
            ["down", "update", "chunk", _] => return Err(TopicError::BadId),
            ["up", "tuf", "request"] => Topic::TufRequest { id },
            ["down", "tuf", "response"] => Topic::TufResponse { id },
            ["down", "lifecycle", "decommission"] => Topic::Decommission { id },
            ["up", "lifecycle", "erased"] => Topic::Erased { id },
            ["up", "detect", "report"] => Topic::DetectReport { id },
            ["down", "lifecycle", "reattest"] => Topic::Reattest { id },
            ["up", "lifecycle", "reattested"] => Topic::Reattested { id },
            _ => return Err(TopicError::Unknown { id }),
        };
        Ok(topic)
    }

    /// The device whose namespace the topic is in.
    pub fn device_id(&self) -> &str {
        match self {
            Topic::Onboard { id, .. }
            | Topic::Telemetry { id }
            | Topic::Status { id }
            | Topic::Events { id }
            | Topic::UpdateUp { id, .. }
            | Topic::UpdateDown { id, .. }
            | Topic::UpdateChunk { id, .. }
            | Topic::TufRequest { id }
            | Topic::TufResponse { id }
            | Topic::Decommission { id }
            | Topic::Erased { id }
            | Topic::DetectReport { id }
            | Topic::Reattest { id }
            | Topic::Reattested { id } => id,
        }
    }

    /// Who publishes on it.
    pub fn direction(&self) -> Direction {
        match self {
            Topic::Onboard {
                kind: OnboardKind::Hello | OnboardKind::Evidence,
                ..
            }
            | Topic::Telemetry { .. }
            | Topic::Status { .. }
            | Topic::Events { .. }
            | Topic::UpdateUp { .. }
            | Topic::TufRequest { .. }
            | Topic::Erased { .. }
            | Topic::DetectReport { .. }
            | Topic::Reattested { .. } => Direction::Up,
            Topic::Onboard {
                kind: OnboardKind::Challenge | OnboardKind::Result,
                ..
            }
            | Topic::UpdateDown { .. }
            | Topic::UpdateChunk { .. }
            | Topic::TufResponse { .. }
            | Topic::Decommission { .. }
            | Topic::Reattest { .. } => Direction::Down,
        }
    }

    fn onboard(id: String, kind: OnboardKind) -> Topic {
        Topic::Onboard { id, kind }
    }

    fn update_up(id: String, kind: UpdateUpKind) -> Topic {
        Topic::UpdateUp { id, kind }
    }

    fn update_down(id: String, kind: UpdateDownKind) -> Topic {
        Topic::UpdateDown { id, kind }
    }
}

impl OnboardKind {
    /// The last level (`hello`, `challenge`, `evidence`, `result`).
    pub fn as_str(self) -> &'static str {
        match self {
            OnboardKind::Hello => "hello",
            OnboardKind::Challenge => "challenge",
            OnboardKind::Evidence => "evidence",
            OnboardKind::Result => "result",
        }
    }
}

impl UpdateUpKind {
    /// The last level (`status`, `fetch`, `evidence`).
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateUpKind::Status => "status",
            UpdateUpKind::Fetch => "fetch",
            UpdateUpKind::Evidence => "evidence",
        }
    }
}

impl UpdateDownKind {
    /// The last level (`offer`, `challenge`, `result`, `cancel`).
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateDownKind::Offer => "offer",
            UpdateDownKind::Challenge => "challenge",
            UpdateDownKind::Result => "result",
            UpdateDownKind::Cancel => "cancel",
        }
    }
}

impl Direction {
    /// `up` or `down`, as the topic level reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = self.direction().as_str();
        match self {
            Topic::Onboard { id, kind } => write!(f, "dev/{id}/{dir}/onboard/{}", kind.as_str()),
            Topic::Telemetry { id } => write!(f, "dev/{id}/telemetry"),
            Topic::Status { id } => write!(f, "dev/{id}/status"),
            Topic::Events { id } => write!(f, "dev/{id}/events"),
            Topic::UpdateUp { id, kind } => write!(f, "dev/{id}/up/update/{}", kind.as_str()),
            Topic::UpdateDown { id, kind } => write!(f, "dev/{id}/down/update/{}", kind.as_str()),
            Topic::UpdateChunk { id, release } => write!(f, "dev/{id}/down/update/chunk/{release}"),
            Topic::TufRequest { id } => write!(f, "dev/{id}/up/tuf/request"),
            Topic::TufResponse { id } => write!(f, "dev/{id}/down/tuf/response"),
            Topic::Decommission { id } => write!(f, "dev/{id}/down/lifecycle/decommission"),
            Topic::Erased { id } => write!(f, "dev/{id}/up/lifecycle/erased"),
            Topic::DetectReport { id } => write!(f, "dev/{id}/up/detect/report"),
            Topic::Reattest { id } => write!(f, "dev/{id}/down/lifecycle/reattest"),
            Topic::Reattested { id } => write!(f, "dev/{id}/up/lifecycle/reattested"),
        }
    }
}
