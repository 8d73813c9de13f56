//! Analyse, then respond: every `analysis_window` the signals counted for each device
//! (`signals`) are compared with its peers' (`castellan_analysis`), and what stands out is
//! raised as an alert with its evidence and answered as the device class's response policy says
//! (`act`).
//!
//! ```text
//!  broker decisions ─▶ Tap ─┐                       every analysis_window:
//!  router (messages) ───────┴▶ SignalCounters ─drain─▶ observations of every onboarded device
//!                                                      not quarantined, revoked or decommissioned
//!                                                      (cohort: class + firmware version; an idle
//!                                                      device counts zeros)
//!      analyze ─┬─ DeviceFinding ─▶ alert (raised, or the open one updated), audit "alert.raise"
//!               │                   high + policy auto_quarantine + under the hourly cap:
//!               │                     quarantine (session closed: the broker re-checks it at once),
//!               │                     audit "response.quarantine" with the alert and its evidence
//!               │                   over the cap: audit the refusal, alert only
//!               └─ CohortShift  ───▶ cohort alert, running campaigns of that release paused
//!  healed devices whose probation ended ─▶ quarantine lifted, alert resolved (`heal`)
//!  a detection report during probation: alarm, gap or replay ─▶ probation failed (`probation`)
//!  heal, measurement always good (run-time compromise) ─▶ signed reboot-and-reattest command,
//!     fresh token appraised ─▶ probation; failed or unanswered ─▶ heal campaign (`reattest`)
//!  two decommissioners ─▶ signed command, proof of erasure, revoked for good (`decommission`)
//!  commands waiting for a device's answer: in the store, deadlines watched (`pending`),
//!     sent again when an offline device comes back (`redeliver`)
//!  every alert ─▶ MQTT fleet/alerts and the signed webhook (`notify`, `webhook`)
//! ```

mod act;
pub(crate) mod decommission;
pub(crate) mod heal;
mod notify;
mod pending;
pub(crate) mod probation;
pub(crate) mod reattest;
mod redeliver;
pub(crate) mod signals;
pub mod webhook;

pub(crate) use act::default_policy;
pub use decommission::{
    DecommissionError, Requested as DecommissionRequested, Started as DecommissionStarted,
};
pub(crate) use heal::{Healing, heal, start_probation};
pub(crate) use notify::alert_json;
pub(crate) use pending::run as run_pending;
pub use reattest::{ReattestError, Started as ReattestStarted};
pub use webhook::{AlertWebhook, WebhookError};

use std::collections::BTreeMap;
use std::sync::Arc;

use castellan_analysis::{Baseline, Cohort, Observation, Signal, analyze};
use castellan_store::Device;
use tokio::sync::watch;

use crate::core::Core;

/// The signals every observed device carries a value for (zero when nothing was counted).
const OBSERVED: [Signal; 3] = [
    Signal::Messages,
    Signal::Connections,
    Signal::RefusedPublishes,
];

/// Run the analysis every `analysis_window` until stopped.
pub(crate) async fn run(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let mut baseline = Baseline::default();
    let mut responder = act::Responder::default();
    let mut tick = tokio::time::interval(core.config.analysis_window);
    tick.tick().await; // the first tick is immediate: start counting from here
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let analysed = window(&core, &mut baseline, &mut responder);
                let on_duty = crate::lease::on_duty(&core, crate::lease::Duty::Analysis, analysed);
                if let Some(Err(e)) = on_duty.await {
                    log::warn!("fleet analysis: {e}");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// One window: drain the counters, analyse, respond.
async fn window(
    core: &Core,
    baseline: &mut Baseline,
    responder: &mut act::Responder,
) -> Result<(), castellan_store::StoreError> {
    let counted = core.signals.drain();
    let devices = core.store.list_devices().await?;
    let observations: Vec<Observation> = devices
        .iter()
        .filter(|d| observed(core, d))
        .map(|d| observation(d, counted.get(&d.id)))
        .collect();
    let findings = analyze(&observations, baseline, &core.config.analysis_policy);
    for finding in &findings.devices {
        responder.device(core, finding).await?;
    }
    for shift in &findings.shifts {
        responder.shift(core, shift).await?;
    }
    heal::release_ended_probations(core).await
}

/// Devices the analysis looks at: onboarded, not contained already, not at the end of life.
fn observed(core: &Core, d: &Device) -> bool {
    crate::campaign::eligible(core, d)
}

fn observation(d: &Device, counted: Option<&BTreeMap<Signal, f64>>) -> Observation {
    let values = OBSERVED
        .iter()
        .map(|s| (*s, counted.and_then(|c| c.get(s)).copied().unwrap_or(0.0)))
        .collect();
    Observation {
        device: d.id.clone(),
        cohort: Cohort {
            device_class: d.device_class.clone(),
            release: d
                .firmware_version
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        },
        values,
    }
}
#[cfg(test)]
mod webhook_tests;
