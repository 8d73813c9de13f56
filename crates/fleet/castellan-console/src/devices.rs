//! The device list: search, filters, sort and paging done by the store, one page of rows per
//! request whatever the fleet's size. The device page is [`crate::device_page`].

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use castellan_store::{DeviceQuery, DeviceSort, DeviceState};
use maud::{Markup, html};
use serde::Deserialize;

use crate::layout::{error_page, page as shell, when};
use crate::session::Authed;
use crate::{Console, DeviceView, Fleet};

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
