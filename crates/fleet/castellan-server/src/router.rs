//! The one inbound router: every message the broker accepted from a device is read once as a
//! [`Topic`] and handed, by variant, to the part of the service it is for.
//!
//! ```text
//!  broker ── DeviceMessage ──▶ Topic::parse ─┬─ Onboard hello / evidence ─▶ onboarding   (task each)
//!                                            ├─ Telemetry                ─▶ telemetry    (task each)
//!                                            ├─ Status, Events, unknown  ─▶ last seen    (task each)
//!                                            │  topic in its namespace
//!                                            ├─ UpdateUp status / fetch  ─▶ campaign engine
//!                                            │  / evidence                  (in order, one channel)
//!                                            ├─ TufRequest               ─▶ TUF over MQTT (task each)
//!                                            ├─ lifecycle/erased         ─▶ decommission's proof
//!                                            ├─ detect/report            ─▶ detection (task each)
//!                                            └─ another device's namespace, not a device topic:
//!                                               dropped (the broker's policy already refuses them)
//! ```
//!
//! Onboarding and telemetry run one task per message, so that an appraisal never holds up other
//! devices' telemetry; update messages keep their order (a device's reports must not overtake
//! each other).

use std::sync::Arc;

use castellan_broker::DeviceMessage;
use castellan_store::unix_now;
use tokio::sync::mpsc;

use crate::core::Core;
use crate::protocol::{OnboardKind, Topic, TopicError, UpdateUpKind};
use crate::{onboarding, telemetry, tuf_mqtt};

/// A device's update message, for the campaign engine.
#[derive(Debug)]
pub(crate) struct UpdateMessage {
    /// The publishing device.
    pub(crate) device_id: String,
    /// Which update message.
    pub(crate) kind: UpdateUpKind,
    /// The payload, as received.
    pub(crate) payload: Vec<u8>,
}

/// Where a device message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The onboarding exchange (hello, evidence).
    Onboard(OnboardKind),
    /// Telemetry, stored.
    Telemetry,
    /// Anything else in the device's namespace: the device was seen.
    Seen,
    /// The campaign engine.
    Update(UpdateUpKind),
    /// A file of the TUF repository.
    Tuf,
    /// The final token of a decommission (proof of erasure).
    Erased,
    /// A signed detection report.
    Detect,
    /// The token after a reboot-and-reattest.
    Reattested,
    /// Not the device's own namespace, or not a device topic.
    Drop,
}

/// Route each device message until the broker stops. Update messages go to the campaign engine
/// through `updates`, in order.
pub(crate) async fn run(
    core: Arc<Core>,
    mut rx: mpsc::Receiver<DeviceMessage>,
    updates: mpsc::Sender<UpdateMessage>,
) {
    while let Some(msg) = rx.recv().await {
        core.observed.messages.inc();
        core.signals
            .add(&msg.device_id, castellan_analysis::Signal::Messages, 1.0);
        let route = route(&msg.device_id, &msg.topic);
        match route {
            Route::Drop => {
                log::debug!(
                    "{}: message on {:?} dropped (not its namespace)",
                    msg.device_id,
                    msg.topic
                );
            }
            Route::Update(kind) => {
                let update = UpdateMessage {
                    device_id: msg.device_id,
                    kind,
                    payload: msg.payload.to_vec(),
                };
                if updates.send(update).await.is_err() {
                    log::warn!("campaign engine stopped: update message dropped");
                }
            }
            Route::Onboard(_)
            | Route::Telemetry
            | Route::Seen
            | Route::Tuf
            | Route::Erased
            | Route::Detect
            | Route::Reattested => {
                let core = core.clone();
                tokio::spawn(async move { serve(&core, route, msg).await });
            }
        }
    }
}

/// The route of a message `device_id` published on `topic`.
fn route(device_id: &str, topic: &str) -> Route {
    match Topic::parse(topic) {
        Ok(t) if t.device_id() != device_id => Route::Drop,
        Ok(Topic::Onboard {
            kind: kind @ (OnboardKind::Hello | OnboardKind::Evidence),
            ..
        }) => Route::Onboard(kind),
        Ok(Topic::Telemetry { .. }) => Route::Telemetry,
        Ok(Topic::UpdateUp { kind, .. }) => Route::Update(kind),
        Ok(Topic::TufRequest { .. }) => Route::Tuf,
        Ok(Topic::Erased { .. }) => Route::Erased,
        Ok(Topic::DetectReport { .. }) => Route::Detect,
        Ok(Topic::Reattested { .. }) => Route::Reattested,
        Ok(_) => Route::Seen,
        Err(TopicError::Unknown { id }) if id == device_id => {
            log::info!("{device_id}: message on unknown topic {topic:?}: only marks it seen");
            Route::Seen
        }
        Err(_) => Route::Drop,
    }
}

async fn serve(core: &Core, route: Route, msg: DeviceMessage) {
    let id = msg.device_id.as_str();
    let now = unix_now();
    match route {
        Route::Onboard(OnboardKind::Evidence) => {
            onboarding::evidence(core, id, &msg.payload, now).await;
        }
        Route::Onboard(_) => onboarding::hello(core, id, now).await,
        Route::Telemetry => telemetry::record(core, id, &msg.payload, now).await,
        Route::Tuf => tuf_mqtt::answer(core, id, &msg.payload).await,
        Route::Erased => crate::response::decommission::erased(core, id, &msg.payload).await,
        Route::Detect => crate::detection::record(core, id, &msg.payload, now).await,
        Route::Reattested => {
            crate::response::reattest::reattested(core, id, &msg.payload).await;
        }
        Route::Seen | Route::Update(_) | Route::Drop => {
            let _ = core.store.touch_device(id, now).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_device_topic_has_its_route() {
        let cases = [
            ("dev/d/up/onboard/hello", Route::Onboard(OnboardKind::Hello)),
            (
                "dev/d/up/onboard/evidence",
                Route::Onboard(OnboardKind::Evidence),
            ),
            ("dev/d/telemetry", Route::Telemetry),
            ("dev/d/status", Route::Seen),
            ("dev/d/events", Route::Seen),
            ("dev/d/up/other", Route::Seen),
            ("dev/d/up/update/unknown", Route::Seen),
            ("dev/d/down/onboard/result", Route::Seen),
            (
                "dev/d/up/update/status",
                Route::Update(UpdateUpKind::Status),
            ),
            ("dev/d/up/update/fetch", Route::Update(UpdateUpKind::Fetch)),
            (
                "dev/d/up/update/evidence",
                Route::Update(UpdateUpKind::Evidence),
            ),
            ("dev/d/up/tuf/request", Route::Tuf),
            ("dev/e/up/tuf/request", Route::Drop),
            ("dev/d/down/tuf/response", Route::Seen),
            ("dev/e/telemetry", Route::Drop),
            ("dev/e/up/update/status", Route::Drop),
            ("dev/e/whatever", Route::Drop),
            ("dev/../telemetry", Route::Drop),
            ("svc/d/telemetry", Route::Drop),
            ("", Route::Drop),
        ];
        for (topic, expected) in cases {
            assert_eq!(route("d", topic), expected, "{topic}");
        }
    }
}
