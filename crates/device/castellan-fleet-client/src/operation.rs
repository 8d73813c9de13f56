//! Operation with the LDevID (`docs/fleet-protocol.md`, "Operation"): once onboarding has
//! stored the LDevID, the device reconnects with it, subscribes to its operational topics and
//! publishes its telemetry. This module holds the topics and builds the messages in fixed
//! buffers; the caller moves the bytes, as for [`crate::Onboarding`].
//!
//! ```text
//!  SUBSCRIBE  dev/<id>/cmd/#  dev/<id>/down/update/#  dev/<id>/down/lifecycle/#   QoS 1
//!  PUBLISH    dev/<id>/status     {"online":true}
//!  PUBLISH    dev/<id>/telemetry  {"uptime_s":n,"boot_count":n,"firmware":"a.b.c",
//!                                  "messages_sent":n}
//! ```

use crate::{FleetError, Topic, put, valid_id};

/// Longest telemetry message built.
pub const TELEMETRY_MAX: usize = 192;

/// What the device reports in one telemetry message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Telemetry {
    /// Seconds since reset.
    pub uptime_s: u64,
    /// Boots counted in trusted storage.
    pub boot_count: u32,
    /// The running image's version (major, minor, revision).
    pub firmware: [u32; 3],
    /// Messages published in this session before this one.
    pub messages_sent: u32,
}

/// A device's operational topics.
pub struct Operation {
    subscriptions: [Topic; 3],
    telemetry: Topic,
    status: Topic,
}

impl Operation {
    /// The topics of device `id`.
    pub fn new(id: &str) -> Result<Operation, FleetError> {
        if !valid_id(id) {
            return Err(FleetError::BadId);
        }
        Ok(Operation {
            subscriptions: [
                Topic::of(id, "cmd/#")?,
                Topic::of(id, "down/update/#")?,
                Topic::of(id, "down/lifecycle/#")?,
            ],
            telemetry: Topic::of(id, "telemetry")?,
            status: Topic::of(id, "status")?,
        })
    }

    /// The filters an LDevID session subscribes to: commands, updates, lifecycle.
    pub fn subscriptions(&self) -> [&str; 3] {
        let [a, b, c] = &self.subscriptions;
        [a.as_str(), b.as_str(), c.as_str()]
    }

    /// `dev/<id>/telemetry`.
    pub fn telemetry_topic(&self) -> &str {
        self.telemetry.as_str()
    }

    /// `dev/<id>/status`.
    pub fn status_topic(&self) -> &str {
        self.status.as_str()
    }
}

/// The status message of a live session.
pub const ONLINE: &[u8] = b"{\"online\":true}";

/// Writes `n` in decimal at `at`; the new end.
fn decimal(out: &mut [u8], at: usize, n: u64) -> Result<usize, FleetError> {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    put(out, at, digits.get(i..).unwrap_or(&[]))
}

impl Telemetry {
    /// The telemetry message as the fleet stores it (a JSON object), in `out`; its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, FleetError> {
        let [major, minor, rev] = self.firmware;
        let mut at = put(out, 0, b"{\"uptime_s\":")?;
        at = decimal(out, at, self.uptime_s)?;
        at = put(out, at, b",\"boot_count\":")?;
        at = decimal(out, at, u64::from(self.boot_count))?;
        at = put(out, at, b",\"firmware\":\"")?;
        at = decimal(out, at, u64::from(major))?;
        at = put(out, at, b".")?;
        at = decimal(out, at, u64::from(minor))?;
        at = put(out, at, b".")?;
        at = decimal(out, at, u64::from(rev))?;
        at = put(out, at, b"\",\"messages_sent\":")?;
        at = decimal(out, at, u64::from(self.messages_sent))?;
        put(out, at, b"}")
    }
}
