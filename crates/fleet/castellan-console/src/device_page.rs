//! The device page: state and the actions the operator's role may take, identity, both
//! certificate chains with their expiry, the last attestation (claims decoded, each reference
//! component matched or not), telemetry and detector scores over time, connection and update
//! history, and the device's own audit trail. Each section is shown to the roles of the API
//! route that reads the same data.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use castellan_store::{AttestationRecord, AuditFilter, unix_now};
use maud::{Markup, html};

use crate::audit_view::entries_table;
use crate::devices::state_of;
use crate::evidence::{CertificateChain, ClaimsView, Expiry};
use crate::layout::{error_page, page as shell, when};
use crate::plots::{Series, plot, telemetry_series};
use crate::session::Authed;
use crate::{Console, DeviceAction, DeviceView, Fleet};

/// Telemetry records read for the plots (the store keeps 100 per device by default).
const TELEMETRY_PLOTTED: u32 = 100;
/// Rows of each history table.
const HISTORY_ROWS: i64 = 20;

fn identity(d: &DeviceView) -> Markup {
    let rows: [(&str, String); 11] = [
        ("Device id", d.id.clone()),
        ("Serial", d.serial.clone()),
        ("Class", d.device_class.clone()),
        ("Tags", d.tags.join(", ")),
        ("Lifecycle", d.lifecycle_name.clone()),
        (
            "Firmware",
            d.firmware_version
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("IDevID serial", d.idevid_serial.clone()),
        (
            "LDevID serial",
            d.ldevid_serial.clone().unwrap_or_else(|| "none yet".into()),
        ),
        ("Registered", when(Some(d.created_at))),
        ("Onboarded", when(d.onboarded_at)),
        ("Last seen", when(d.last_seen)),
    ];
    html! {
        table #identity { @for (k, v) in &rows { tr { th { (k) } td.mono { (v) } } } }
    }
}

/// A chain as a table, the leaf first; `name` is `idevid` or `ldevid`.
fn chain(name: &str, c: &CertificateChain, now: i64) -> Markup {
    html! {
        @if c.certificates.is_empty() {
            p #{(name) "-none"} { (c.note.as_deref().unwrap_or("No certificate.")) }
        } @else {
            table id=(name) class="chain" {
                tr { th { "" } th { "Subject" } th { "Issuer" } th { "Serial" } th { "Valid" } th { "Expiry" } }
                @for (i, cert) in c.certificates.iter().enumerate() {
                    @let exp = Expiry::of(cert.not_after, now);
                    @let role = if i == 0 { "device" } else if i + 1 == c.certificates.len() && c.complete { "root CA" } else { "issuing CA" };
                    tr class=(exp.class()) {
                        td { (role) }
                        td.mono { (cert.subject) }
                        td.mono { (cert.issuer) }
                        td.mono { (cert.serial) }
                        td { (when(Some(cert.not_before))) " to " (when(Some(cert.not_after))) }
                        td { @if i == 0 {
                            span id={(name) "-validity"} class={"expiry " (exp.class())} { (exp.describe()) }
                        } @else {
                            span class={"expiry " (exp.class())} { (exp.describe()) }
                        } }
                    }
                }
            }
            @if let Some(n) = &c.note { p.legend { (n) } }
        }
    }
}

fn attestation(d: &DeviceView, rec: Option<&AttestationRecord>) -> Markup {
    let Some(rec) = rec else {
        return html! {
            p #attestation-none { "No attestation token of this device has been kept yet (the \
                claims are kept from the next onboarding or post-update attestation on)." }
        };
    };
    let verdict = if rec.passed { "passed" } else { "failed" };
    let claims = ClaimsView::parse(&rec.claims_json);
    html! {
        p #attestation-last { "Last token (" (rec.context) ", " (when(Some(rec.appraised_at)))
            "): " span class={"state " (verdict)} { (verdict) }
            @if let Some(r) = &rec.reason { " — " (r) } }
        @if let Some(c) = claims {
            table #claims {
                tr { th { "Nonce" } td.mono { (c.nonce) } }
                tr { th { "Instance id" } td.mono { (c.instance_id) } }
                tr { th { "Implementation id" } td.mono { (c.implementation_id) } }
                tr { th { "Lifecycle" } td { (c.lifecycle.1) " (0x" (format!("{:04x}", c.lifecycle.0)) ")" } }
                tr { th { "Profile" } td.mono { (c.profile) } }
            }
            h3 { "Boot measurements against the reference values" }
            table #measurements {
                tr { th { "Component" } th { "Reference version" } th { "Reference digest" }
                     th { "Attested version" } th { "Attested digest" } th { "Result" } }
                @for m in c.compare(&d.reference_measurements) {
                    tr class=(m.verdict) {
                        td { (m.mtype) }
                        td { (m.expected.as_ref().map_or("—", |e| e.0.as_str())) }
                        td.mono { (m.expected.as_ref().map_or("—", |e| e.1.as_str())) }
                        td { (m.attested.as_ref().map_or("—", |a| a.0.as_str())) }
                        td.mono { (m.attested.as_ref().map_or("—", |a| a.1.as_str())) }
                        td { span class={"state " (m.verdict)} { (m.verdict) } }
                    }
                }
            }
        } @else {
            p.notice.error { "The kept claims do not read as an attestation token's claims." }
        }
    }
}

fn reference_only(d: &DeviceView) -> Markup {
    html! {
        table #measurements {
            tr { th { "Component" } th { "Version" } th { "Digest" } th { "Signer" } }
            @for m in &d.reference_measurements {
                tr { td { (m.mtype) } td { (m.version) } td.mono { (m.digest) } td.mono { (m.signer_id) } }
            }
        }
    }
}

const STROKES: [&str; 4] = ["#2455a4", "#23703a", "#a4242e", "#8a5a00"];

fn plots(telemetry: &[Series], scores: Option<&Series>) -> Markup {
    html! {
        div.plots #plots {
            @if let Some(s) = scores { (plot("plot-detector", s, "#a4242e")) }
            @for (i, s) in telemetry.iter().enumerate() {
                (plot(&format!("plot-{i}"), s, STROKES[i % STROKES.len()]))
            }
        }
        @if telemetry.is_empty() && scores.is_none() {
            p #plots-none { "No numeric telemetry to plot yet." }
        }
    }
}

/// `GET /console/devices/{id}`.
pub(crate) async fn page<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path(id): Path<String>,
) -> Response {
    let fleet = &*console.fleet;
    let store = fleet.store();
    let d = match fleet.device(&id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("No device {id:?}.")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let now = unix_now();
    let chains = fleet.certificate_chains(&id).await;
    let last = store.last_attestation(&id).await.ok().flatten();
    let reads_telemetry = who.may(fleet, "GET", "/api/v1/devices/{id}/telemetry");
    let telemetry = if reads_telemetry {
        store.latest_telemetry(&id, TELEMETRY_PLOTTED).await.ok()
    } else {
        None
    };
    let series = telemetry.as_ref().map(|rows| {
        let pairs: Vec<(i64, String)> = rows.iter().map(|t| (t.at, t.payload.clone())).collect();
        telemetry_series(&pairs)
    });
    let scores = if reads_telemetry {
        fleet
            .detector_scores(&id)
            .await
            .ok()
            .flatten()
            .map(|p| Series {
                name: "detector score".into(),
                points: p.iter().map(|s| (s.at, s.score)).collect(),
            })
    } else {
        None
    };
    let sessions = store.session_events_of(&id, HISTORY_ROWS).await.ok();
    let updates = if who.may(fleet, "GET", "/api/v1/campaigns") {
        store.device_updates(&id, HISTORY_ROWS).await.ok()
    } else {
        None
    };
    let audit_allowed = who.may(fleet, "GET", "/api/v1/audit");
    let (trail, broker) = if audit_allowed {
        let of = |action: Option<&str>| AuditFilter {
            device: Some(id.clone()),
            action: action.map(str::to_string),
            limit: 20,
            ..AuditFilter::default()
        };
        (
            store.search_audit(&of(None)).await.ok(),
            store.search_audit(&of(Some("mqtt."))).await.ok(),
        )
    } else {
        (None, None)
    };
    let actions: Vec<DeviceAction> = DeviceAction::ALL
        .into_iter()
        .filter(|a| a.applies_to(&d))
        .filter(|a| {
            let (method, path) = a.api_route();
            who.may(fleet, method, path)
        })
        .collect();
    let state = state_of(&d);
    let body = html! {
        p #device-state data-device=(d.id) { "State: " span #state class={"state " (state)} { (state) }
            " · attestation: " span #attestation class={"state " (d.attestation)} { (d.attestation) }
            @if let Some(r) = &d.attestation_reason { " (" (r) ")" }
            " · " span #online { @if d.connected { "online" } @else { "offline" } } }
        @if !actions.is_empty() {
            div.actions #actions {
                @for a in &actions {
                    a id={"action-" (a.slug())} class=[a.is_final().then_some("danger")]
                        href={"/console/devices/" (d.id) "/" (a.slug())} { (a.label()) }
                }
            }
        }
        h2 { "Identity" }
        (identity(&d))
        h2 { "Certificates" }
        @match &chains {
            Ok(c) => {
                h3 { "Factory certificate (IDevID) and its issuers" }
                (chain("idevid", &c.idevid, now))
                h3 { "Operational certificate (LDevID) and its issuers" }
                (chain("ldevid", &c.ldevid, now))
            }
            Err(e) => { p.notice.error #chains-error { "The chains could not be read: " (e) } }
        }
        h2 { "Attestation" }
        (attestation(&d, last.as_ref()))
        @if last.is_none() {
            h3 { "Reference measurements" }
            (reference_only(&d))
        }
        @if let Some(series) = &series {
            h2 { "Telemetry over time" }
            (plots(series, scores.as_ref()))
        }
        @if let Some(rows) = &telemetry {
            h2 { "Latest telemetry" }
            table #telemetry {
                tr { th { "Received" } th { "Payload (as the device sent it)" } }
                @for t in rows.iter().take(10) { tr { td { (when(Some(t.at))) } td.mono { (t.payload) } } }
            }
        }
        h2 { "Connection history" }
        (crate::history::sessions(sessions.as_deref(), broker.as_deref()))
        @if let Some(u) = &updates {
            h2 { "Update history" }
            (crate::history::updates(u))
        }
        @if let Some(entries) = trail {
            h2 { "Audit trail (latest 20)" }
            (entries_table("device-audit", &entries))
            p { a href={"/console/audit?device=" (d.id)} { "Search the whole trail" } }
        }
    };
    shell(fleet, &who, &format!("Device {}", d.id), body)
}
