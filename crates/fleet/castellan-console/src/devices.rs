//! The device list (search, filters, sort and paging done by the store: one page of rows per
//! request whatever the fleet's size) and the device page (identity, lifecycle, certificates,
//! attestation, reference measurements, latest telemetry, and the actions the operator's role
//! may take).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use castellan_store::{AuditFilter, DeviceQuery, DeviceSort, DeviceState};
use maud::{Markup, html};
use serde::Deserialize;

use crate::audit_view::entries_table;
use crate::layout::{error_page, page as shell, when};
use crate::session::Authed;
use crate::{CertificateView, Console, DeviceAction, DeviceView, Fleet};

/// Rows per page of the device list.
const PER_PAGE: u32 = 50;

/// The device list's query string.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListParams {
    q: String,
    class: String,
    firmware: String,
    state: String,
    sort: String,
    desc: bool,
    page: u64,
}

impl ListParams {
    fn query(&self) -> DeviceQuery {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        DeviceQuery {
            search: some(&self.q),
            device_class: some(&self.class),
            firmware_version: some(&self.firmware),
            state: DeviceState::parse(&self.state),
            sort: DeviceSort::parse(&self.sort).unwrap_or_default(),
            descending: self.desc,
            offset: self
                .page
                .saturating_sub(1)
                .saturating_mul(u64::from(PER_PAGE)),
            limit: PER_PAGE,
        }
    }

    /// This list's link with another page (and optionally another sort).
    fn link(&self, page: u64, sort: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &self.q),
            ("class", &self.class),
            ("firmware", &self.firmware),
            ("state", &self.state),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        match sort {
            Some(s) => {
                q.append_pair("sort", s);
                if s == self.sort && !self.desc {
                    q.append_pair("desc", "true");
                }
            }
            None => {
                if !self.sort.is_empty() {
                    q.append_pair("sort", &self.sort);
                }
                if self.desc {
                    q.append_pair("desc", "true");
                }
            }
        }
        q.append_pair("page", &page.to_string());
        format!("/console/devices?{}", q.finish())
    }
}

/// A device's state, in the store's precedence.
pub(crate) fn state_of(d: &DeviceView) -> &'static str {
    if d.lifecycle_name == "decommissioned" {
        "decommissioned"
    } else if d.revoked {
        "revoked"
    } else if d.quarantined {
        "quarantined"
    } else if d.onboarded_at.is_some() {
        "onboarded"
    } else {
        "pending"
    }
}

fn filters(p: &ListParams) -> Markup {
    html! {
        form.filters method="get" action="/console/devices" {
            input #search name="q" value=(p.q) placeholder="id or serial";
            input name="class" value=(p.class) placeholder="class";
            input name="firmware" value=(p.firmware) placeholder="firmware version";
            select name="state" {
                option value="" { "any state" }
                @for st in DeviceState::ALL {
                    option value=(st.as_str()) selected[p.state == st.as_str()] { (st.as_str()) }
                }
            }
            button #filter type="submit" { "Filter" }
        }
    }
}

/// `GET /console/devices`.
pub(crate) async fn list<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Query(p): Query<ListParams>,
) -> Response {
    let fleet = &*console.fleet;
    let (total, devices) = match fleet.device_page(&p.query()).await {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let page = p.page.max(1);
    let pages = total.div_ceil(u64::from(PER_PAGE)).max(1);
    let body = html! {
        (filters(&p))
        p #count { (total) " devices · page " (page) " of " (pages) }
        table #devices {
            thead { tr {
                th { a href=(p.link(1, Some("id"))) { "Device" } }
                th { "Serial" }
                th { a href=(p.link(1, Some("class"))) { "Class" } }
                th { "State" }
                th { a href=(p.link(1, Some("firmware"))) { "Firmware" } }
                th { "Attestation" }
                th { a href=(p.link(1, Some("last_seen"))) { "Last seen" } }
                th { "Online" }
            } }
            tbody {
                @for d in &devices {
                    tr {
                        td.mono { a href={"/console/devices/" (d.id)} { (d.id) } }
                        td.mono { (d.serial) }
                        td { (d.device_class) }
                        td { span class={"state " (state_of(d))} { (state_of(d)) } }
                        td { (d.firmware_version.as_deref().unwrap_or("unknown")) }
                        td { span class={"state " (d.attestation)} { (d.attestation) } }
                        td { (when(d.last_seen)) }
                        td { @if d.connected { "yes" } @else { "no" } }
                    }
                }
            }
        }
        div.pager {
            @if page > 1 { a #prev href=(p.link(page - 1, None)) { "← previous" } }
            @if page < pages { a #next href=(p.link(page + 1, None)) { "next →" } }
        }
    };
    shell(fleet, &who, "Devices", body)
}

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

fn certificate(c: &CertificateView) -> Markup {
    let now = castellan_store::unix_now();
    let validity = if now > c.not_after {
        "EXPIRED".to_string()
    } else {
        format!("expires in {} days", (c.not_after - now) / 86_400)
    };
    html! {
        table #idevid {
            tr { th { "Subject" } td.mono { (c.subject) } }
            tr { th { "Issuer" } td.mono { (c.issuer) } }
            tr { th { "Serial" } td.mono { (c.serial) } }
            tr { th { "Valid" } td { (when(Some(c.not_before))) " to " (when(Some(c.not_after)))
                " (" span #idevid-validity { (validity) } ")" } }
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
    let d = match fleet.device(&id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("No device {id:?}.")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let telemetry = if who.may(fleet, "GET", "/api/v1/devices/{id}/telemetry") {
        fleet.store().latest_telemetry(&id, 10).await.ok()
    } else {
        None
    };
    let trail = if who.may(fleet, "GET", "/api/v1/audit") {
        let filter = AuditFilter {
            device: Some(id.clone()),
            limit: 20,
            ..AuditFilter::default()
        };
        fleet.store().search_audit(&filter).await.ok()
    } else {
        None
    };
    let actions: Vec<DeviceAction> = DeviceAction::ALL
        .into_iter()
        .filter(|a| match a {
            DeviceAction::Quarantine => !d.quarantined && !d.revoked,
            DeviceAction::Release => d.quarantined && !d.revoked,
            _ => !d.revoked,
        })
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
                    a id={"action-" (a.slug())} class=[(*a == DeviceAction::Revoke).then_some("danger")]
                        href={"/console/devices/" (d.id) "/" (a.slug())} { (a.label()) }
                }
            }
        }
        h2 { "Identity" }
        (identity(&d))
        @if let Some(c) = &d.idevid {
            h2 { "Factory certificate (IDevID)" }
            (certificate(c))
        }
        h2 { "Reference measurements" }
        table #measurements {
            tr { th { "Component" } th { "Version" } th { "Digest" } th { "Signer" } }
            @for m in &d.reference_measurements {
                tr { td { (m.mtype) } td { (m.version) } td.mono { (m.digest) } td.mono { (m.signer_id) } }
            }
        }
        @if let Some(rows) = telemetry {
            h2 { "Latest telemetry" }
            table #telemetry {
                tr { th { "Received" } th { "Payload (as the device sent it)" } }
                @for t in &rows { tr { td { (when(Some(t.at))) } td.mono { (t.payload) } } }
            }
        }
        @if let Some(entries) = trail {
            h2 { "Audit trail (latest 20)" }
            (entries_table("device-audit", &entries))
            p { a href={"/console/audit?device=" (d.id)} { "Search the whole trail" } }
        }
    };
    shell(fleet, &who, &format!("Device {}", d.id), body)
}
