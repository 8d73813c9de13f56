//! Campaigns: the list and a campaign's page (settings, progress per wave and device phase,
//! a chart over time, failures with their reasons, and the actions the operator's role may
//! take). Everything comes from `GET /api/v1/campaigns[/{id}]`'s JSON; the live stream sends
//! the same [`Progress`] the page is drawn from.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use castellan_protocol::CampaignJson;
use maud::{Markup, html};

use crate::layout::{error_page, page, when};
use crate::progress::{CHART_H, CHART_W, PHASES, Progress};
use crate::session::Authed;
use crate::{CampaignAction, Console, Fleet};

/// The operator's role may read campaigns, else the refusal page.
pub(crate) fn may_read<F: Fleet>(fleet: &F, who: &Authed) -> Option<Response> {
    if who.may(fleet, "GET", "/api/v1/campaigns") {
        None
    } else {
        Some(error_page(
            StatusCode::FORBIDDEN,
            &format!("Role {} may not read campaigns.", who.operator.role),
        ))
    }
}

/// `GET /console/campaigns`.
pub(crate) async fn list<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
) -> Response {
    let fleet = &*console.fleet;
    if let Some(r) = may_read(fleet, &who) {
        return r;
    }
    let mut campaigns = match fleet.campaigns().await {
        Ok(c) => c,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    campaigns.reverse();
    let may_create = who.may(fleet, "POST", "/api/v1/campaigns");
    let body = html! {
        @if may_create {
            div.actions { a #new-campaign href="/console/campaigns/new" { "New campaign…" } }
        }
        @if campaigns.is_empty() { p.notice { "No campaign yet." } }
        table #campaigns {
            thead { tr { th { "Campaign" } th { "Release" } th { "Class" } th { "State" }
                         th { "Wave" } th { "Updated" } th { "Failed" } th { "Devices" }
                         th { "Created" } } }
            tbody {
                @for c in &campaigns {
                    @let p = Progress::of(c);
                    tr data-campaign=(c.campaign_id) {
                        td { a href={"/console/campaigns/" (c.campaign_id)} { (c.campaign_id) } }
                        td { (c.release_id) }
                        td { (c.device_class) }
                        td { span data-field="state" class={"state " (c.state)} { (c.state) } }
                        td data-field="wave" { (c.wave) }
                        td data-count="updated" { (p.counts[6]) }
                        td data-count="failed" { (p.counts[7]) }
                        td { (p.total) }
                        td { (when(Some(c.created_at))) " by " (c.created_by) }
                    }
                }
            }
        }
    };
    page(fleet, &who, "Campaigns", body)
}

/// `GET /console/campaigns/{id}`.
pub(crate) async fn show<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path(id): Path<String>,
) -> Response {
    let fleet = &*console.fleet;
    if let Some(r) = may_read(fleet, &who) {
        return r;
    }
    let c = match fleet.campaign(&id).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("No campaign {id:?}.")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let actions: Vec<CampaignAction> = CampaignAction::ALL
        .into_iter()
        .filter(|a| a.applies_to(&c.state))
        .filter(|a| {
            let (m, route) = a.api_route();
            who.may(fleet, m, route)
        })
        .collect();
    let body = html! {
        div #campaign data-campaign=(c.campaign_id) {
            (settings(&c))
            @if !actions.is_empty() {
                div.actions #campaign-actions {
                    @for a in &actions {
                        a id={"action-" (a.slug())}
                          class=[matches!(a, CampaignAction::Abort | CampaignAction::Rollback).then_some("danger")]
                          href={"/console/campaigns/" (c.campaign_id) "/" (a.slug())} { (a.label()) "…" }
                    }
                }
            }
            (progress(&Progress::of(&c), c.waves.len()))
        }
    };
    page(fleet, &who, &format!("Campaign {id}"), body)
}

fn settings(c: &CampaignJson) -> Markup {
    html! {
        table #settings {
            tr { th { "State" } td { span data-field="state" class={"state " (c.state)} { (c.state) } " "
                 span data-field="campaign-reason" { (c.reason.as_deref().unwrap_or("")) } } }
            tr { th { "Release" } td { a href={"/console/releases/" (c.release_id)} { (c.release_id) } } }
            tr { th { "Cohort" } td { "class " (c.device_class)
                 @if !c.tags.is_empty() { ", tags " (c.tags.join(", ")) } } }
            tr { th { "Waves" } td { "canary " (c.canary) ", then " (c.waves.join(", "))
                 " — current wave " span data-field="wave" { (c.wave) } } }
            tr { th { "Thresholds" } td { "stop (" (format!("{:?}", c.on_threshold).to_lowercase())
                 ") at " (c.max_failures) " failures, or " (c.max_failure_rate) " % of at least "
                 (c.min_sample) " finished; a device without progress for " (c.device_timeout_s)
                 " s fails" } }
            tr { th { "Failure rate" } td data-field="failure_rate" { (format!("{:.1} %", c.failure_rate)) } }
            @if let Some(r) = &c.rollback_of { tr { th { "Rolls back" } td {
                a href={"/console/campaigns/" (r)} { (r) } } } }
            tr { th { "Created" } td { (when(Some(c.created_at))) " by " (c.created_by) } }
        }
    }
}

/// The progress part of the page (also what the live script updates in place).
fn progress(p: &Progress, n_waves: usize) -> Markup {
    html! {
        h2 { "Devices by phase" }
        table #phases {
            thead { tr { th { "Wave" } @for ph in PHASES { th { (ph) } } } }
            tbody {
                @for w in 0..=n_waves {
                    tr data-wave=(w) {
                        td { @if w == 0 { "canary" } @else { (w) } }
                        @for (i, ph) in PHASES.iter().enumerate() {
                            td data-wave-count={(w) ":" (ph)} {
                                (p.waves.get(w).and_then(|r| r.get(i)).copied().unwrap_or(0)) }
                        }
                    }
                }
                tr.total {
                    td { "all" }
                    @for (i, ph) in PHASES.iter().enumerate() { td data-count=(ph) { (p.counts[i]) } }
                }
            }
        }
        h2 { "Over time" }
        svg #chart role="img" width=(CHART_W + 4) height=(CHART_H + 10) viewBox={"-2 -5 " (CHART_W + 4) " " (CHART_H + 10)} {
            title { "Devices updated (green) and failed (red) since the campaign started" }
            line x1="0" y1=(CHART_H) x2=(CHART_W) y2=(CHART_H) stroke="#9aa3b0" {}
            polyline data-series="updated" points=(p.updated_points) fill="none" stroke="#23703a" stroke-width="2" {}
            polyline data-series="failed" points=(p.failed_points) fill="none" stroke="#a4242e" stroke-width="2" {}
        }
        p.legend { "Cumulative devices updated (green) and failed (red), out of " (p.total) "." }
        h2 { "Devices" }
        @if p.total > p.devices.len() { p { "The first " (p.devices.len()) " of " (p.total) " (failed first)." } }
        table #campaign-devices {
            thead { tr { th { "Device" } th { "Wave" } th { "Phase" } th { "Reason" } } }
            tbody {
                @for d in &p.devices {
                    tr data-device=(d.device_id) {
                        td { a href={"/console/devices/" (d.device_id)} { (d.device_id) } }
                        td { (d.wave) }
                        td { span data-field="phase" class={"state " (d.phase)} { (d.phase) } }
                        td data-field="reason" { (d.reason) }
                    }
                }
            }
        }
    }
}
