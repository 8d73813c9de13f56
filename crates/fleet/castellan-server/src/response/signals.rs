//! The per-device signals the fleet observes between two analyses: messages routed, MQTT
//! connections accepted, publishes and subscriptions the broker refused. The broker reports
//! its decisions to the audit trail; [`Tap`] sits on that path and counts them, so nothing in
//! the broker changes for the analysis.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use castellan_analysis::Signal;

use crate::audit::Auditor;

/// Counts per device and signal since the last [`SignalCounters::drain`].
#[derive(Debug, Default)]
pub(crate) struct SignalCounters {
    counts: Mutex<HashMap<String, BTreeMap<Signal, f64>>>,
}

impl SignalCounters {
    /// Count `n` of `signal` for `device`.
    pub(crate) fn add(&self, device: &str, signal: Signal, n: f64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts
            .entry(device.to_owned())
            .or_default()
            .entry(signal)
            .or_default() += n;
    }

    /// Everything counted since the last drain; the counters start again from zero.
    pub(crate) fn drain(&self) -> HashMap<String, BTreeMap<Signal, f64>> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The broker's audit sink: every record goes to the audit trail as before, and the ones that
/// are signals are counted for the device (the actor: the certificate's CN).
pub(crate) struct Tap {
    pub(crate) auditor: Auditor,
    pub(crate) counters: std::sync::Arc<SignalCounters>,
}

impl castellan_broker::AuditSink for Tap {
    fn record(&self, actor: &str, action: &str, target: &str, allowed: bool, reason: &str) {
        castellan_broker::AuditSink::record(&self.auditor, actor, action, target, allowed, reason);
        let signal = match (action, allowed) {
            ("mqtt.connect", true) => Some(Signal::Connections),
            ("mqtt.publish" | "mqtt.subscribe", false) => Some(Signal::RefusedPublishes),
            _ => None,
        };
        if let Some(signal) = signal {
            self.counters.add(actor, signal, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_device_and_start_again_after_a_drain() {
        let c = SignalCounters::default();
        c.add("CSTL-1", Signal::Messages, 1.0);
        c.add("CSTL-1", Signal::Messages, 1.0);
        c.add("CSTL-2", Signal::RefusedPublishes, 1.0);
        let d = c.drain();
        assert_eq!(d["CSTL-1"][&Signal::Messages], 2.0);
        assert_eq!(d["CSTL-2"][&Signal::RefusedPublishes], 1.0);
        assert!(c.drain().is_empty());
    }
}
