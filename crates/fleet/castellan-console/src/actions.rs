//! Device actions: a confirmation page that names the consequence, then a POST that must carry
//! the session's CSRF token and be allowed to the operator's role by the API's own table. The
//! fleet takes the action exactly as its API route does; refusals and actions are audited.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::layout::{error_page, page};
use crate::login::CsrfForm;
use crate::session::{Authed, token_matches};
use crate::{Console, DeviceAction, Fleet, FleetError};

/// The action of the path, if the operator's role may take it (else the refusal, audited).
async fn allowed<F: Fleet>(
    fleet: &F,
    who: &Authed,
    id: &str,
    slug: &str,
) -> Result<DeviceAction, Response> {
    let Some(action) = DeviceAction::parse(slug) else {
        return Err(error_page(StatusCode::NOT_FOUND, "No such action."));
    };
    let (method, route) = action.api_route();
    if !who.may(fleet, method, route) {
        let reason = format!(
            "role {} may not {} (the API's {method} {route})",
            who.operator.role,
            action.slug()
        );
        let target = format!("/console/devices/{id}/{slug}");
        fleet
            .audit(
                &who.operator.name,
                action.audit_action(),
                &target,
                false,
                &reason,
            )
            .await;
        return Err(error_page(StatusCode::FORBIDDEN, &reason));
    }
    Ok(action)
}

/// `GET /console/devices/{id}/{action}`: the confirmation.
pub(crate) async fn confirm<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
) -> Response {
    let fleet = &*console.fleet;
    let action = match allowed(fleet, &who, &id, &slug).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match fleet.device(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("No device {id:?}.")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    let body = html! {
        p.notice #consequence { (action.consequence()) }
        form method="post" action={"/console/devices/" (id) "/" (action.slug())} {
            input type="hidden" name="csrf" value=(who.csrf_token);
            div.actions {
                button #confirm class=[(action == DeviceAction::Revoke).then_some("danger")] type="submit" {
                    (action.label()) " " (id)
                }
                a href={"/console/devices/" (id)} { "Cancel" }
            }
        }
    };
    page(
        fleet,
        &who,
        &format!("{} device {id}?", action.label()),
        body,
    )
}

/// `POST /console/devices/{id}/{action}`.
pub(crate) async fn take<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let fleet = &*console.fleet;
    let target = format!("/console/devices/{id}/{slug}");
    if !token_matches(&who.csrf_token, &form.csrf) {
        let reason = "CSRF token missing or wrong: request refused";
        let action = DeviceAction::parse(&slug).map_or("console.device", |a| a.audit_action());
        fleet
            .audit(&who.operator.name, action, &target, false, reason)
            .await;
        return error_page(StatusCode::FORBIDDEN, reason);
    }
    let action = match allowed(fleet, &who, &id, &slug).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match fleet.act(&id, action).await {
        Ok(note) => {
            fleet
                .audit(
                    &who.operator.name,
                    action.audit_action(),
                    &target,
                    true,
                    &note,
                )
                .await;
            Redirect::to(&format!("/console/devices/{id}")).into_response()
        }
        Err(e) => {
            let reason = e.to_string();
            fleet
                .audit(
                    &who.operator.name,
                    action.audit_action(),
                    &target,
                    false,
                    &reason,
                )
                .await;
            let status = match e {
                FleetError::NotFound(_) => StatusCode::NOT_FOUND,
                FleetError::Refused(_) => StatusCode::CONFLICT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            error_page(status, &reason)
        }
    }
}
