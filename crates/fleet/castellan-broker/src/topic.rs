//! Topic layout and the least-privilege topic policy: which topics an identity may publish to and
//! which topic filters it may subscribe to, decided by small pure functions.
//!
//! # Topic layout
//!
//! Everything a device owns lives under `dev/<id>/`, where `<id>` is the certificate CN:
//!
//! | topic                    | direction        | device | onboarding          | quarantined          | service (`svc:*`)       |
//! |--------------------------|------------------|--------|---------------------|----------------------|-------------------------|
//! | `dev/<id>/telemetry`     | device → server  | pub    | –                   | –                    | sub `dev/+/telemetry`   |
//! | `dev/<id>/events`        | device → server  | pub    | –                   | –                    | sub `dev/+/events`      |
//! | `dev/<id>/status`        | device → server  | pub    | –                   | pub                  | sub `dev/+/status`      |
//! | `dev/<id>/up/#`          | device → server  | pub    | pub `up/onboard/#`  | pub `up/update/#`    | sub `dev/+/up/#`        |
//! | `dev/<id>/cmd/#`         | server → device  | sub    | –                   | –                    | pub `dev/+/cmd/#`       |
//! | `dev/<id>/down/#`        | server → device  | sub    | sub `down/onboard/#`| sub `down/update/#`  | pub `dev/+/down/#`      |
//! | `dev/<id>/up/tuf/request`| device → server  | (up/#) | –                   | pub                  | (sub `dev/+/up/#`)      |
//! | `dev/<id>/down/tuf/response` | server → device | (down/#) | –             | sub                  | (pub `dev/+/down/#`)    |
//! | `dev/<id>/down/lifecycle/#` | server → device | (down/#) | –              | sub                  | (pub `dev/+/down/#`)    |
//! | `dev/<id>/up/lifecycle/#`   | device → server | (up/#) | –                | pub                  | (sub `dev/+/up/#`)      |
//! | `dev/<id>/up/detect/report` | device → server | (up/#) | –                | pub                  | (sub `dev/+/up/#`)      |
//! | `fleet/alerts`           | server → services | –     | –                   | –                    | sub                     |
//!
//! TUF metadata over MQTT is a request on the device's own `up/tuf/request` and an answer on its
//! own `down/tuf/response`: no device can ask in another's name or read another's answers. A
//! quarantined device keeps exactly this pair beside the update channel, since an update's TUF
//! check needs it, and its lifecycle channel (the signed decommission and its proof of erasure).
//! It also keeps publishing its signed detection reports: containment must not blind the fleet
//! to what the device's detector sees.
//!
//! # Rules
//!
//! * A publish to topic `T` is allowed iff some publish pattern of the policy matches `T`.
//! * A subscription to filter `F` is allowed iff some subscribe pattern `P` *covers* `F`: every topic
//!   that `F` can match is matched by `P` ([`filter_covers`]). So `dev/#`, `dev/+/cmd/#`, `#` or
//!   `+/+/cmd/x` are refused to a device whose pattern is `dev/<id>/cmd/#`, while `dev/<id>/cmd/reboot`
//!   and `dev/<id>/cmd/+` are allowed.
//! * Hardening beyond MQTT's syntax: empty levels (`dev//x`), `.`/`..` levels, levels that start
//!   with `$` (`$SYS`, `$share`), control characters, more than [`MAX_LEVELS`] levels or more than
//!   [`MAX_TOPIC_LEN`] bytes are refused for everyone. Device ids are restricted to
//!   `[A-Za-z0-9._-]{1,128}` (no `.`/`..`), so an id can never inject a wildcard or a level.

use crate::error::BrokerError;

/// Longest topic or filter accepted, in bytes.
pub const MAX_TOPIC_LEN: usize = 1024;
/// Most levels a topic or filter may have.
pub const MAX_LEVELS: usize = 16;
/// Longest device or service id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// CN prefix that marks a service/operator identity instead of a device.
pub const SERVICE_PREFIX: &str = "svc:";

/// The set of topics an identity may publish to and the filters it may subscribe to.
///
/// Patterns are MQTT topic filters (`+` and `#` allowed); they are validated when the policy is
/// built, so a policy value is always well formed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TopicPolicy {
    publish: Vec<String>,
    subscribe: Vec<String>,
}

impl TopicPolicy {
    /// The default policy of an onboarded device `id`: publish its telemetry, events, status and
    /// `up/#`; subscribe to its `cmd/#` and `down/#`.
    pub fn device(id: &str) -> Result<Self, BrokerError> {
        validate_id(id)?;
        Ok(Self {
            publish: vec![
                format!("dev/{id}/telemetry"),
                format!("dev/{id}/events"),
                format!("dev/{id}/status"),
                format!("dev/{id}/up/#"),
            ],
            subscribe: vec![format!("dev/{id}/cmd/#"), format!("dev/{id}/down/#")],
        })
    }

    /// The policy of a device that connects with its factory identity (IDevID) to onboard: only
    /// the onboarding exchange (`up/onboard/#` and `down/onboard/#`).
    pub fn onboarding(id: &str) -> Result<Self, BrokerError> {
        validate_id(id)?;
        Ok(Self {
            publish: vec![format!("dev/{id}/up/onboard/#")],
            subscribe: vec![format!("dev/{id}/down/onboard/#")],
        })
    }

    /// The policy of a quarantined device: only the update channel (`up/update/#` and
    /// `down/update/#`), its TUF request/response pair, the lifecycle channel
    /// (`down/lifecycle/#`, `up/lifecycle/#`), so it can still be healed by an update or a
    /// reattest, or decommissioned, its signed detection reports (`up/detect/report`), and its
    /// own `status` (the online flag and last will, which carries no data: without it a device
    /// with a last will could not connect at all).
    pub fn quarantined(id: &str) -> Result<Self, BrokerError> {
        validate_id(id)?;
        Ok(Self {
            publish: vec![
                format!("dev/{id}/status"),
                format!("dev/{id}/up/update/#"),
                format!("dev/{id}/up/tuf/request"),
                format!("dev/{id}/up/lifecycle/#"),
                format!("dev/{id}/up/detect/report"),
            ],
            subscribe: vec![
                format!("dev/{id}/down/update/#"),
                format!("dev/{id}/down/tuf/response"),
                format!("dev/{id}/down/lifecycle/#"),
            ],
        })
    }

    /// The policy of a service/operator identity (CN `svc:<name>`): send commands and downlink
    /// messages to any device, read every device's uplink.
    pub fn service() -> Self {
        Self {
            publish: vec!["dev/+/cmd/#".into(), "dev/+/down/#".into()],
            subscribe: vec![
                "dev/+/telemetry".into(),
                "dev/+/events".into(),
                "dev/+/status".into(),
                "dev/+/up/#".into(),
                // The fleet's alerts, as the service raises them (integrations).
                "fleet/alerts".into(),
            ],
        }
    }

    /// A policy that allows nothing.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// A custom policy from pattern lists; every pattern must be a valid filter under the
    /// hardening rules of this module.
    pub fn custom(publish: Vec<String>, subscribe: Vec<String>) -> Result<Self, BrokerError> {
        for p in publish.iter().chain(subscribe.iter()) {
            validate_filter(p)?;
        }
        Ok(Self { publish, subscribe })
    }

    /// Publish patterns.
    pub fn publish_patterns(&self) -> &[String] {
        &self.publish
    }

    /// Subscribe patterns.
    pub fn subscribe_patterns(&self) -> &[String] {
        &self.subscribe
    }

    /// Whether a publish to `topic` is allowed (the topic must also be a valid topic name).
    pub fn may_publish(&self, topic: &str) -> bool {
        validate_topic_name(topic).is_ok() && self.publish.iter().any(|p| filter_matches(p, topic))
    }

    /// Whether a subscription to `filter` is allowed: some pattern covers every topic it matches.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        validate_filter(filter).is_ok() && self.subscribe.iter().any(|p| filter_covers(p, filter))
    }

    /// Whether every pattern of this policy stays inside `dev/<id>/#` (the namespace of device
    /// `id`). The broker refuses a device connection whose policy escapes its namespace.
    pub fn confined_to_device(&self, id: &str) -> bool {
        let ns = format!("dev/{id}/#");
        validate_id(id).is_ok()
            && self
                .publish
                .iter()
                .chain(self.subscribe.iter())
                .all(|p| filter_covers(&ns, p))
    }
}

/// Checks that `id` may be used as a device id (one topic level, conservative charset).
pub fn validate_id(id: &str) -> Result<(), BrokerError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(BrokerError::InvalidId)
    }
}

/// Checks a topic name used in a PUBLISH (no wildcards) under the hardening rules.
pub fn validate_topic_name(topic: &str) -> Result<(), BrokerError> {
    validate_levels(topic, false)
}

/// Checks a topic filter used in a SUBSCRIBE under the hardening rules.
pub fn validate_filter(filter: &str) -> Result<(), BrokerError> {
    validate_levels(filter, true)
}

fn validate_levels(s: &str, wildcards: bool) -> Result<(), BrokerError> {
    if s.is_empty() || s.len() > MAX_TOPIC_LEN {
        return Err(BrokerError::InvalidTopic);
    }
    let levels: Vec<&str> = s.split('/').collect();
    if levels.len() > MAX_LEVELS {
        return Err(BrokerError::InvalidTopic);
    }
    let last = levels.len() - 1;
    for (i, level) in levels.iter().enumerate() {
        let bad = level.is_empty()
            || *level == "."
            || *level == ".."
            || level.starts_with('$')
            || level.chars().any(|c| c.is_control());
        if bad {
            return Err(BrokerError::InvalidTopic);
        }
        let has_wild = level.contains('+') || level.contains('#');
        if has_wild {
            let well_formed = wildcards && (*level == "+" || (*level == "#" && i == last));
            if !well_formed {
                return Err(BrokerError::InvalidTopic);
            }
        }
    }
    Ok(())
}

/// Whether MQTT topic filter `filter` matches topic name `topic` (MQTT 3.1.1 §4.7 semantics:
/// `+` matches one level, a trailing `#` matches the parent level and any number of levels).
///
/// Pure syntax: callers validate both strings first.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether `pattern` covers `filter`: every topic that `filter` can match is also matched by
/// `pattern` (filter inclusion). A concrete topic is covered iff the pattern matches it.
///
/// Level by level: a `#` in the pattern covers the rest; a `#` in the filter needs a `#` in the
/// pattern; a `+` in the filter needs `+` or `#`; a literal needs the same literal, `+` or `#`;
/// a filter that ends where the pattern continues is covered only by a final `#` (`a/#` matches
/// `a`).
pub fn filter_covers(pattern: &str, filter: &str) -> bool {
    let mut p = pattern.split('/');
    let mut f = filter.split('/');
    loop {
        match (p.next(), f.next()) {
            (Some("#"), _) => return true,
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(_), Some("+")) => return false,
            (Some(pl), Some(fl)) if pl == fl => {}
            (Some(_), Some(_)) => return false,
            (None, None) => return true,
            (None, Some(_)) => return false,
            (Some(_), None) => return false,
        }
    }
}

/// What a certificate CN names: a device or a service/operator identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A device, named by its id.
    Device(String),
    /// A service or operator tool, named after the `svc:` prefix.
    Service(String),
}

impl Identity {
    /// Parses a certificate CN: `svc:<name>` is a service, anything else a device id. Both names
    /// must pass [`validate_id`].
    pub fn from_common_name(cn: &str) -> Result<Self, BrokerError> {
        if let Some(name) = cn.strip_prefix(SERVICE_PREFIX) {
            validate_id(name)?;
            Ok(Identity::Service(name.to_owned()))
        } else {
            validate_id(cn)?;
            Ok(Identity::Device(cn.to_owned()))
        }
    }
}
