//! TUF metadata over MQTT: the answer to a device's `dev/<id>/up/tuf/request`, read from the
//! same repository directory `/tuf/metadata/…` and `/tuf/targets/…` serve over HTTPS, and
//! published on the device's own `dev/<id>/down/tuf/response` (the broker lets a device read no
//! other device's answers).
//!
//! ```text
//!  device ── TufRequest {request_id, kind, name, max_length} ──▶ router ─▶ answer()
//!  device ◀─ TufResponse {request_id, found | not_found | too_large | unavailable, data} ──
//! ```
//!
//! A file over the request's `max_length` (or `MAX_TUF_FILE`) is answered `too_large` and not
//! sent (`castellan_tuf::mqtt::answer`). The device judges every byte with its own TUF root: this side only serves files.

use crate::core::Core;
use crate::protocol::{TufAnswer, TufRequest, TufResponse, WireMessage as _, topics};

/// Answer one request `device_id` published.
pub(crate) async fn answer(core: &Core, device_id: &str, payload: &[u8]) {
    let request = match TufRequest::parse(payload) {
        Ok(r) => r,
        Err(e) => {
            log::info!("{device_id}: TUF request refused: {e}");
            return;
        }
    };
    let response = match core.config.tuf_repository.clone() {
        Some(dir) => {
            let id = request.request_id;
            tokio::task::spawn_blocking(move || castellan_tuf::mqtt::answer(&dir, &request))
                .await
                .unwrap_or_else(|_| TufResponse::refused(id, TufAnswer::Unavailable))
        }
        None => TufResponse::refused(request.request_id, TufAnswer::Unavailable),
    };
    if let Err(e) = core
        .deliver(
            device_id,
            &topics::tuf_response(device_id),
            response.to_payload(),
        )
        .await
    {
        log::warn!("{device_id}: TUF response not sent: {e}");
    }
}
