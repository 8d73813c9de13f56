//! Campaign actions (pause, resume, abort, rollback) and alert actions (acknowledge, resolve),
//! through the shared action flow ([`crate::action_flow`]): a confirmation page naming the
//! consequence, then a POST that must carry the session's CSRF token and be allowed to the
//! operator's role by the API's own table. Each action, and each refusal, is audited.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use crate::action_flow::{allowed, checked, confirm_page, finish};
use crate::layout::error_page;
use crate::session::Authed;
use crate::{AlertAction, CampaignAction, Console, Fleet};

/// An action's POST body.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// The release that puts the previous image back (rollback only).
    #[serde(default)]
    release_id: Option<String>,
}

/// `GET /console/campaigns/{id}/{action}`: the confirmation.
pub(crate) async fn campaign_confirm<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
) -> Response {
    let fleet = &*console.fleet;
    let action: CampaignAction = match allowed(fleet, &who, &id, &slug).await {
        Ok(a) => a,
        Err(r) => return r,
    };
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
    let context = html! {
        p #subject { "Campaign " (c.campaign_id) " (release " (c.release_id) ", " (c.devices.len())
            " devices) is " (c.state) "." }
        @if action == CampaignAction::Rollback {
            label for="release_id" { "Release with the previous image" }
            select #release_id name="release_id" {
                @for r in &rollbacks { option value=(r) { (r) } }
            }
        }
    };
    confirm_page(
        fleet,
        &who,
        action,
        &id,
        context,
        &format!("/console/campaigns/{id}"),
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
    let action: CampaignAction = match checked(fleet, &who, &id, &slug, &form.csrf).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let done = fleet
        .act_on_campaign(&id, action, form.release_id.as_deref(), &who.operator.name)
        .await
        .map(|(c, note)| (note, format!("/console/campaigns/{}", c.campaign_id)));
    finish(fleet, &who, action, &id, done).await
}

/// `GET /console/alerts/{id}/{action}`: the confirmation.
pub(crate) async fn alert_confirm<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
) -> Response {
    let fleet = &*console.fleet;
    let action: AlertAction = match allowed(fleet, &who, &id, &slug).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    confirm_page(fleet, &who, action, &id, html! {}, "/console/alerts")
}

/// `POST /console/alerts/{id}/{action}`.
pub(crate) async fn alert_take<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let fleet = &*console.fleet;
    let action: AlertAction = match checked(fleet, &who, &id, &slug, &form.csrf).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let done = fleet
        .act_on_alert(&id, action, &who.operator.name)
        .await
        .map(|(_, note)| (note, "/console/alerts".to_string()));
    finish(fleet, &who, action, &id, done).await
}
