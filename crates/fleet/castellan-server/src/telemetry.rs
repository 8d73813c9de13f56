//! Telemetry from onboarded devices (`dev/<id>/telemetry`): a JSON object, stored as it came;
//! its `firmware` field (when a short string) becomes the registry's firmware version.

use crate::core::Core;

/// Store one telemetry message of device `id` and mark it seen at `now`.
pub(crate) async fn record(core: &Core, id: &str, payload: &[u8], now: i64) {
    let value: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            log::warn!("telemetry from {id} is not a JSON object; dropped");
            let _ = core.store.touch_device(id, now).await;
            return;
        }
    };
    let text = value.to_string();
    if let Err(e) = core.store.record_telemetry(id, now, &text).await {
        log::warn!("telemetry from {id} not stored: {e}");
    }
    if let Some(fw) = value
        .get("firmware")
        .and_then(|f| f.as_str())
        .filter(|f| f.len() <= 64)
    {
        let _ = core.store.set_firmware_version(id, fw).await;
    }
    let _ = core.store.touch_device(id, now).await;
}
