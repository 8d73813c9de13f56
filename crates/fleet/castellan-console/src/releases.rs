//! Releases: the list (`GET /api/v1/releases`) and a release's page, with its SUIT manifest as
//! the service decoded it at upload (digest, size, sequence number, expiry, signer) and the
//! envelope and image checked again when the page is shown.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use crate::layout::{error_page, page, when};
use crate::session::Authed;
use crate::{Console, EXPIRY_WARNING_DAYS, Expiry, Fleet, FleetError, TufRoleView};

/// The operator's role may read releases, else the refusal page.
fn may_read<F: Fleet>(fleet: &F, who: &Authed) -> Option<Response> {
    if who.may(fleet, "GET", "/api/v1/releases") {
        None
    } else {
        Some(error_page(
            StatusCode::FORBIDDEN,
            &format!("Role {} may not read releases.", who.operator.role),
        ))
    }
}

/// The TUF roles the service signs online and keeps fresh.
const ONLINE_ROLES: [&str; 2] = ["snapshot", "timestamp"];

/// The TUF repository's roles: version and expiry, flagged when expired or close to it (the
/// online roles are re-signed by the service; the offline ones need the key holders).
fn tuf_section(roles: Result<Option<Vec<TufRoleView>>, FleetError>) -> Markup {
    let now = castellan_store::unix_now();
    html! {
        h2 { "TUF repository" }
        @match roles {
            Ok(None) => p #tuf-none { "This service serves no TUF repository." },
            Err(e) => p.notice.error #tuf-error { "The repository could not be read: " (e) },
            Ok(Some(roles)) => table #tuf {
                tr { th { "Role" } th { "Version" } th { "Expires" } th { "" } }
                @for r in &roles {
                    // The service re-signs the online roles itself: flagged only once expired.
                    @let warn = if ONLINE_ROLES.contains(&r.name.as_str()) { 0 } else { EXPIRY_WARNING_DAYS };
                    @let exp = r.expires.map(|e| Expiry::within(e, now, warn));
                    tr id={"tuf-" (r.name)} class=[exp.map(Expiry::class)] {
                        td { (r.name) }
                        td { @if let Some(v) = r.version { (v) } @else { "not published" } }
                        td { (when(r.expires)) }
                        td { @if let Some(x) = exp { span class={"expiry " (x.class())} { (x.describe()) } } }
                    }
                }
            },
        }
    }
}

/// `GET /console/releases`.
pub(crate) async fn list<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
) -> Response {
    let fleet = &*console.fleet;
    if let Some(r) = may_read(fleet, &who) {
        return r;
    }
    let releases = match fleet.releases().await {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let tuf = fleet.tuf_roles().await;
    let body = html! {
        @if releases.is_empty() { p.notice { "No release has been uploaded yet." } }
        table #releases {
            thead { tr { th { "Release" } th { "Class" } th { "Version" } th { "Sequence" }
                         th { "Image" } th { "Expires" } th { "Uploaded" } } }
            tbody {
                @for r in &releases {
                    tr data-release=(r.release_id) {
                        td { a href={"/console/releases/" (r.release_id)} { (r.release_id) } }
                        td { (r.device_class) }
                        td { (r.version) }
                        td { (r.sequence) }
                        td { (r.image_size) " bytes" }
                        td { (when(r.expires_at)) }
                        td { (when(Some(r.created_at))) " by " (r.created_by) }
                    }
                }
            }
        }
        (tuf_section(tuf))
    };
    page(fleet, &who, "Releases", body)
}

/// `GET /console/releases/{id}`.
pub(crate) async fn show<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path(id): Path<String>,
) -> Response {
    let fleet = &*console.fleet;
    if let Some(r) = may_read(fleet, &who) {
        return r;
    }
    let r = match fleet.release(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("No release {id:?}.")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let check = fleet.check_release(&id).await;
    let may_campaign = who.may(fleet, "POST", "/api/v1/campaigns");
    let body = html! {
        @match &check {
            Ok(c) if c.verified => p.notice #signature.verified { "Signature verified: " (c.detail) }
            Ok(c) => p.notice.error #signature { "Signature check failed: " (c.detail) }
            Err(e) => p.notice.error #signature { "Signature not checked: " (e) }
        }
        h2 { "SUIT manifest" }
        table #manifest {
            tr { th { "Device class" } td { (r.device_class) } }
            tr { th { "Version" } td { (r.version) } }
            tr { th { "Sequence number" } td #sequence { (r.sequence) } }
            tr { th { "Image digest (SHA-256)" } td.mono #digest { (r.image_sha256) } }
            tr { th { "Image size" } td #size { (r.image_size) " bytes" } }
            tr { th { "Expires" } td #expiry { (when(r.expires_at)) } }
            tr { th { "Signer (SHA-256 of the image key)" } td.mono #signer { (r.signer_id) } }
            tr { th { "Security counter" } td { (r.security_counter) } }
            tr { th { "Measurement a device attests" } td.mono {
                (r.measurement.mtype) " " (r.measurement.version) " " (r.measurement.digest) } }
            tr { th { "Uploaded" } td { (when(Some(r.created_at))) " by " (r.created_by) } }
            @if let Some(n) = &r.notes { tr { th { "Notes" } td #notes { (n) } } }
        }
        @if may_campaign {
            div.actions { a #new-campaign href={"/console/campaigns/new?release_id=" (urlenc(&r.release_id))} {
                "Roll it out…" } }
        }
    };
    page(fleet, &who, &format!("Release {id}"), body)
}

/// `s` as one query-string value.
pub(crate) fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
