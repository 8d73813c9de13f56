//! `GET /api/v1/updates/{campaign_id}/image`: the HTTPS download of a campaign's image by a
//! device, authorised by the per-device, per-campaign bearer token of its offer (not an
//! operator token). Single byte ranges (`a-b`, `a-`, `-n`) answer `206`; no range, `200`.
//!
//! ```text
//!  Bearer token ─▶ SHA-256 ─▶ campaign device ─▶ same campaign, campaign running or paused,
//!                                               device in progress ─▶ image bytes
//!               ─▶ otherwise 401 (audited: a token that is wrong, or useless since the
//!                  campaign or the device finished)
//!  Range ─▶ outside the image, several ranges, malformed ─▶ 416, Content-Range: bytes */size
//! ```

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::RemoteAddr;
use crate::campaign::{ACTION_DOWNLOAD, image_of};
use crate::core::Core;

/// What a `Range` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// No range: the whole image.
    Whole,
    /// Bytes `first..=last`.
    Part(u64, u64),
    /// Not satisfiable (outside the image, several ranges, malformed).
    Unsatisfiable,
}

/// Parse a `Range` header against a resource of `size` bytes.
pub(crate) fn parse_range(value: Option<&str>, size: u64) -> ByteRange {
    let Some(v) = value else {
        return ByteRange::Whole;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return ByteRange::Unsatisfiable;
    };
    if spec.contains(',') || size == 0 {
        return ByteRange::Unsatisfiable;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Unsatisfiable;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), b.trim().is_empty()) {
        // "-n": the last n bytes.
        (true, false) => match num(b) {
            Some(n) if n > 0 => ByteRange::Part(size - n.min(size), size - 1),
            _ => ByteRange::Unsatisfiable,
        },
        // "a-": from a to the end.
        (false, true) => match num(a) {
            Some(first) if first < size => ByteRange::Part(first, size - 1),
            _ => ByteRange::Unsatisfiable,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(first), Some(last)) if first <= last && first < size => {
                ByteRange::Part(first, last.min(size - 1))
            }
            _ => ByteRange::Unsatisfiable,
        },
        (true, true) => ByteRange::Unsatisfiable,
    }
}

/// The handler.
#[utoipa::path(get, path = "/api/v1/updates/{campaign_id}/image", tag = "updates", operation_id = "api.update.image",
    params(("campaign_id" = String, Path, description = "The campaign of the device's offer"),
        ("range" = Option<String>, Header, description = "One byte range (`bytes=FIRST-[LAST]`), to resume")),
    security(("download_token" = [])),
    responses((status = 200, description = "The image", body = String, content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", body = String, content_type = "application/octet-stream"),
        (status = 401, description = "No or a wrong download token", body = super::openapi::ErrorJson),
        (status = 416, description = "Unsatisfiable range")))]
pub(crate) async fn image(
    State(core): State<Arc<Core>>,
    Path(campaign_id): Path<String>,
    remote: Option<Extension<RemoteAddr>>,
    headers: HeaderMap,
) -> Response {
    let target = format!("/api/v1/updates/{campaign_id}/image");
    let anonymous = format!(
        "anonymous@{}",
        remote.map_or_else(|| "?".into(), |r| r.0.0.to_string())
    );
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return unauthorized(&core, &anonymous, &target, "no download token").await;
    };
    let member = match core.store.campaign_device_by_download_token(token).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return unauthorized(
                &core,
                &anonymous,
                &target,
                "unknown or expired download token",
            )
            .await;
        }
        Err(e) => return internal(&format!("token check: {e}")),
    };
    let who = member.device_id.clone();
    if member.campaign_id != campaign_id {
        let reason = format!(
            "the download token is for campaign {}, not {campaign_id}",
            member.campaign_id
        );
        return unauthorized(&core, &who, &target, &reason).await;
    }
    let campaign = match core.store.campaign(&campaign_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return unauthorized(&core, &who, &target, "no such campaign").await,
        Err(e) => return internal(&format!("campaign: {e}")),
    };
    if !campaign.state.is_active() || !member.state.is_in_progress() {
        let reason = format!(
            "the download token expired: campaign {campaign_id} is {} and the device {}",
            campaign.state, member.state
        );
        return unauthorized(&core, &who, &target, &reason).await;
    }
    let img = match image_of(&core, &campaign.release_id).await {
        Ok(i) => i,
        Err(e) => return internal(&e.to_string()),
    };
    let size = img.len() as u64;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match parse_range(range, size) {
        ByteRange::Whole => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::ACCEPT_RANGES, "bytes".to_string()),
            ],
            img.as_ref().clone(),
        )
            .into_response(),
        ByteRange::Part(first, last) => {
            let bytes = usize::try_from(first)
                .ok()
                .zip(usize::try_from(last).ok())
                .and_then(|(a, b)| img.get(a..=b))
                .unwrap_or_default()
                .to_vec();
            (
                StatusCode::PARTIAL_CONTENT,
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::ACCEPT_RANGES, "bytes".to_string()),
                    (
                        header::CONTENT_RANGE,
                        format!("bytes {first}-{last}/{size}"),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        ByteRange::Unsatisfiable => {
            let reason = format!(
                "range {:?} is not one range inside the image ({size} bytes)",
                range.unwrap_or_default()
            );
            let mut resp = (
                StatusCode::RANGE_NOT_SATISFIABLE,
                axum::Json(json!({ "error": "range not satisfiable", "reason": reason })),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            resp
        }
    }
}

async fn unauthorized(core: &Core, actor: &str, target: &str, reason: &str) -> Response {
    core.auditor
        .append(actor, ACTION_DOWNLOAD, target, false, reason)
        .await;
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "error": "unauthenticated", "reason": reason })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn internal(detail: &str) -> Response {
    log::error!("download: {detail}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({ "error": "internal error", "reason": detail })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use ByteRange::*;
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Part(0, 3));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Part(5, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Part(8, 9));
        assert_eq!(parse_range(Some("bytes=-4"), 10), Part(6, 9));
        assert_eq!(parse_range(Some("bytes=-40"), 10), Part(0, 9));
        for bad in [
            "bytes=10-",
            "bytes=10-12",
            "bytes=4-3",
            "bytes=-0",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=5",
        ] {
            assert_eq!(parse_range(Some(bad), 10), Unsatisfiable, "{bad}");
        }
    }
}
