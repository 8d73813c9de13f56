//! Every alert the service raises, published for integrations on `fleet/alerts` (QoS 1), as
//! the API shows it: a service identity (`svc:…`, issued by the service CA) may subscribe; no
//! device may. With an alert webhook configured, the same body is queued for it (`webhook`).

use castellan_store::Alert;

use crate::core::Core;
use crate::protocol::{AlertJson, topics};

/// An alert as the API (and the notification) shows it.
pub(crate) fn alert_json(a: Alert) -> AlertJson {
    AlertJson {
        alert_id: a.id,
        kind: a.kind,
        device_id: a.device_id,
        device_class: a.device_class,
        release: a.release,
        severity: a.severity,
        state: a.state.as_str().into(),
        summary: a.summary,
        evidence: serde_json::from_str(&a.evidence).unwrap_or(serde_json::Value::Null),
        raised_at: a.raised_at,
        updated_at: a.updated_at,
        updated_by: a.updated_by,
    }
}

/// Publish `alert` on `fleet/alerts`; a failure is logged (the alert is stored and audited
/// already).
pub(crate) async fn publish(core: &Core, alert: &Alert) {
    let body = match serde_json::to_vec(&alert_json(alert.clone())) {
        Ok(b) => b,
        Err(e) => return log::warn!("alert {}: not published: {e}", alert.id),
    };
    if let Some(hook) = core.webhook.get()
        && !hook.offer(&alert.id, body.clone())
    {
        castellan_broker::AuditSink::record(
            &core.auditor,
            "system",
            "alert.webhook",
            &alert.id,
            false,
            "not queued: the webhook's delivery queue is full",
        );
    }
    if let Err(e) = core.publish(topics::FLEET_ALERTS, body).await {
        log::warn!(
            "alert {}: not published on {}: {e}",
            alert.id,
            topics::FLEET_ALERTS
        );
    }
}
