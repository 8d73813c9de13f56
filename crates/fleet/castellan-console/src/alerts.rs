//! Alerts: newest first as `GET /api/v1/alerts` answers them, filtered by state, each with its
//! severity, state, summary and evidence (the signals and their peers' statistics, as the
//! analysis recorded them), and the acknowledge / resolve actions the operator's role may take.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use crate::layout::{error_page, page, when};
use crate::session::Authed;
use crate::{AlertAction, Console, Fleet};

/// At most this many alerts a page.
const LIMIT: u32 = 200;

/// The list's filter.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AlertFilter {
    #[serde(default)]
    state: Option<String>,
}

/// The evidence, as a small table of its fields (strings shown as text; nested values as
/// compact JSON, escaped like everything else).
fn evidence(v: &serde_json::Value) -> Markup {
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    html! {
        @match v {
            serde_json::Value::Object(m) => {
                dl.evidence { @for (k, v) in m { dt { (k) } dd.mono { (cell(v)) } } }
            }
            serde_json::Value::Array(items) => {
                @for item in items { (evidence(item)) }
            }
            other => span.mono { (cell(other)) }
        }
    }
}

/// `GET /console/alerts[?state=open|acknowledged|resolved]`.
pub(crate) async fn list<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Query(filter): Query<AlertFilter>,
) -> Response {
    let fleet = &*console.fleet;
    if !who.may(fleet, "GET", "/api/v1/alerts") {
        return error_page(
            StatusCode::FORBIDDEN,
            &format!("Role {} may not read alerts.", who.operator.role),
        );
    }
    let state = filter.state.as_deref().filter(|s| !s.is_empty());
    let alerts = match fleet.alerts(state, LIMIT).await {
        Ok(a) => a,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let actions: Vec<AlertAction> = AlertAction::ALL
        .into_iter()
        .filter(|a| {
            let (m, r) = a.api_route();
            who.may(fleet, m, r)
        })
        .collect();
    let body = html! {
        form.filters method="get" action="/console/alerts" {
            select name="state" {
                option value="" { "any state" }
                @for s in ["open", "acknowledged", "resolved"] {
                    option value=(s) selected[state == Some(s)] { (s) }
                }
            }
            button type="submit" { "Filter" }
        }
        @if alerts.is_empty() { p.notice #no-alerts { "No alert." } }
        p #new-alerts.notice hidden { "New alerts were raised: " a href="/console/alerts" { "reload the list" } "." }
        table #alerts {
            thead { tr { th { "Raised" } th { "Severity" } th { "State" } th { "Device / cohort" }
                         th { "Summary and evidence" } th { "" } } }
            tbody {
                @for a in &alerts {
                    tr data-alert=(a.alert_id) {
                        td { (when(Some(a.raised_at))) br; span.mono { (a.alert_id) } }
                        td { span class={"state " (a.severity)} { (a.severity) } }
                        td { span data-field="state" class={"state " (a.state)} { (a.state) }
                             @if let Some(by) = &a.updated_by { br; span data-field="by" { "by " (by) } } }
                        td {
                            @if let Some(d) = &a.device_id { a href={"/console/devices/" (d)} { (d) } br; }
                            (a.device_class) " · " (a.release)
                        }
                        td { div.summary { (a.summary) } (evidence(&a.evidence)) }
                        td.row-actions {
                            @for act in &actions {
                                @if act.applies_to(&a.state) {
                                    a data-action=(act.slug()) href={"/console/alerts/" (a.alert_id) "/" (act.slug())} { (act.label()) "…" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(fleet, &who, "Alerts", body)
}
