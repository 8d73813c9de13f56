//! The fleet overview: devices by state (each a link to the filtered list), and charts of the
//! fleet by class, firmware version and attestation result, from the store's counts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use crate::layout::{bar_chart, error_page};
use crate::session::Authed;
use crate::{Console, Fleet};

/// `GET /console/`.
pub(crate) async fn page<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
) -> Response {
    let fleet = &*console.fleet;
    let counts = match fleet.store().fleet_counts().await {
        Ok(c) => c,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}")),
    };
    let total: u64 = counts.by_state.iter().map(|(_, n)| n).sum();
    let body = html! {
        div.cards {
            div.card #total { div { "Devices" } div.n { (total) } }
            @for (state, n) in &counts.by_state {
                a.card id={"state-" (state)} href={"/console/devices?state=" (state)} {
                    div { (state) } div.n { (n) }
                }
            }
        }
        div.panels {
            div.panel { h2 { "By state" } (bar_chart("chart-state", &counts.by_state)) }
            div.panel { h2 { "Firmware versions" } (bar_chart("chart-firmware", &counts.by_firmware)) }
            div.panel { h2 { "Device classes" } (bar_chart("chart-class", &counts.by_class)) }
            div.panel { h2 { "Attestation" } (bar_chart("chart-attestation", &counts.by_attestation)) }
        }
    };
    crate::layout::page(fleet, &who, "Fleet overview", body)
}
