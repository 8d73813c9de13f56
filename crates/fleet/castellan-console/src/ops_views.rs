//! Campaign actions (pause, resume, abort, rollback) and alert actions (acknowledge, resolve):
//! a confirmation page naming the consequence, then a POST that must carry the session's CSRF
//! token and be allowed to the operator's role by the API's own table. Each action, and each
//! refusal, is audited.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::layout::{error_page, page};
use crate::session::{Authed, token_matches};
use crate::{AlertAction, CampaignAction, Console, Fleet, FleetError};

/// An action's POST body.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// The release that puts the previous image back (rollback only).
    #[serde(default)]
    release_id: Option<String>,
}

/// What both kinds of action share.
struct Act {
    audit: &'static str,
    route: (&'static str, &'static str),
}

/// Refuse (audited) unless the role may take the action.
async fn role_check<F: Fleet>(
    fleet: &F,
    who: &Authed,
    act: &Act,
    target: &str,
) -> Result<(), Response> {
    let (method, route) = act.route;
    if who.may(fleet, method, route) {
        return Ok(());
    }
    let reason = format!(
        "role {} may not do this (the API's {method} {route})",
        who.operator.role
    );
    fleet
        .audit(&who.operator.name, act.audit, target, false, &reason)
        .await;
    Err(error_page(StatusCode::FORBIDDEN, &reason))
}

fn status_of(e: &FleetError) -> StatusCode {
    match e {
        FleetError::NotFound(_) => StatusCode::NOT_FOUND,
        FleetError::Refused(_) => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn campaign_act(slug: &str) -> Option<(CampaignAction, Act)> {
    let a = CampaignAction::parse(slug)?;
    Some((
        a,
        Act {
            audit: a.audit_action(),
            route: a.api_route(),
        },
    ))
}

fn alert_act(slug: &str) -> Option<(AlertAction, Act)> {
    let a = AlertAction::parse(slug)?;
    Some((
        a,
        Act {
            audit: a.audit_action(),
            route: a.api_route(),
        },
    ))
}

/// `GET /console/campaigns/{id}/{action}`: the confirmation.
pub(crate) async fn campaign_confirm<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
) -> Response {
    let fleet = &*console.fleet;
    let Some((action, act)) = campaign_act(&slug) else {
        return error_page(StatusCode::NOT_FOUND, "No such action.");
    };
    let target = format!("/console/campaigns/{id}/{slug}");
    if let Err(r) = role_check(fleet, &who, &act, &target).await {
        return r;
    }
    let c = match fleet.campaign(&id).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("No campaign {id:?}.")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    // A rollback names the release that puts the previous image back: newer ones of the class.
    let rollbacks: Vec<String> = if action == CampaignAction::Rollback {
        fleet
            .releases()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.device_class == c.device_class && r.release_id != c.release_id)
            .map(|r| r.release_id)
            .rev()
            .collect()
    } else {
        Vec::new()
    };
    let body = html! {
        p.notice #consequence { (action.consequence()) }
        p { "Campaign " (c.campaign_id) " (release " (c.release_id) ", " (c.devices.len())
            " devices) is " (c.state) "." }
        form method="post" action={"/console/campaigns/" (id) "/" (action.slug())} {
            input type="hidden" name="csrf" value=(who.csrf_token);
            @if action == CampaignAction::Rollback {
                label for="release_id" { "Release with the previous image" }
                select #release_id name="release_id" {
                    @for r in &rollbacks { option value=(r) { (r) } }
                }
            }
            div.actions {
                button #confirm class=[matches!(action, CampaignAction::Abort | CampaignAction::Rollback).then_some("danger")]
                    type="submit" { (action.label()) " campaign " (id) }
                a href={"/console/campaigns/" (id)} { "Cancel" }
            }
        }
    };
    page(
        fleet,
        &who,
        &format!("{} campaign {id}?", action.label()),
        body,
    )
}

/// `POST /console/campaigns/{id}/{action}`.
pub(crate) async fn campaign_take<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let fleet = &*console.fleet;
    let target = format!("/console/campaigns/{id}/{slug}");
    let actor = who.operator.name.as_str();
    if !token_matches(&who.csrf_token, &form.csrf) {
        let reason = "CSRF token missing or wrong: request refused";
        let audit = CampaignAction::parse(&slug).map_or("console.campaign", |a| a.audit_action());
        fleet.audit(actor, audit, &target, false, reason).await;
        return error_page(StatusCode::FORBIDDEN, reason);
    }
    let Some((action, act)) = campaign_act(&slug) else {
        return error_page(StatusCode::NOT_FOUND, "No such action.");
    };
    if let Err(r) = role_check(fleet, &who, &act, &target).await {
        return r;
    }
    match fleet
        .act_on_campaign(&id, action, form.release_id.as_deref(), actor)
        .await
    {
        Ok((c, note)) => {
            fleet.audit(actor, act.audit, &target, true, &note).await;
            Redirect::to(&format!("/console/campaigns/{}", c.campaign_id)).into_response()
        }
        Err(e) => {
            fleet
                .audit(actor, act.audit, &target, false, &e.to_string())
                .await;
            error_page(status_of(&e), &e.to_string())
        }
    }
}

/// `GET /console/alerts/{id}/{action}`: the confirmation.
pub(crate) async fn alert_confirm<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
) -> Response {
    let fleet = &*console.fleet;
    let Some((action, act)) = alert_act(&slug) else {
        return error_page(StatusCode::NOT_FOUND, "No such action.");
    };
    let target = format!("/console/alerts/{id}/{slug}");
    if let Err(r) = role_check(fleet, &who, &act, &target).await {
        return r;
    }
    let body = html! {
        p.notice #consequence { (action.consequence()) }
        form method="post" action={"/console/alerts/" (id) "/" (action.slug())} {
            input type="hidden" name="csrf" value=(who.csrf_token);
            div.actions {
                button #confirm type="submit" { (action.label()) " alert " (id) }
                a href="/console/alerts" { "Cancel" }
            }
        }
    };
    page(
        fleet,
        &who,
        &format!("{} alert {id}?", action.label()),
        body,
    )
}

/// `POST /console/alerts/{id}/{action}`.
pub(crate) async fn alert_take<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let fleet = &*console.fleet;
    let target = format!("/console/alerts/{id}/{slug}");
    let actor = who.operator.name.as_str();
    if !token_matches(&who.csrf_token, &form.csrf) {
        let reason = "CSRF token missing or wrong: request refused";
        let audit = AlertAction::parse(&slug).map_or("console.alert", |a| a.audit_action());
        fleet.audit(actor, audit, &target, false, reason).await;
        return error_page(StatusCode::FORBIDDEN, reason);
    }
    let Some((action, act)) = alert_act(&slug) else {
        return error_page(StatusCode::NOT_FOUND, "No such action.");
    };
    if let Err(r) = role_check(fleet, &who, &act, &target).await {
        return r;
    }
    match fleet.act_on_alert(&id, action, actor).await {
        Ok((_, note)) => {
            fleet.audit(actor, act.audit, &target, true, &note).await;
            Redirect::to("/console/alerts").into_response()
        }
        Err(e) => {
            fleet
                .audit(actor, act.audit, &target, false, &e.to_string())
                .await;
            error_page(status_of(&e), &e.to_string())
        }
    }
}
