//! Device actions (quarantine, release, heal, decommission, revoke) through the shared action
//! flow ([`crate::action_flow`]): a confirmation page that names the consequence, then a POST
//! that must carry the session's CSRF token and be allowed to the operator's role by the API's
//! own table. The fleet takes the action exactly as its API route does; refusals and actions
//! are audited.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use crate::action_flow::{allowed, checked, confirm_page, finish};
use crate::devices::state_of;
use crate::layout::error_page;
use crate::login::CsrfForm;
use crate::session::Authed;
use crate::{Console, DeviceAction, Fleet};

/// `GET /console/devices/{id}/{action}`: the confirmation.
pub(crate) async fn confirm<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Path((id, slug)): Path<(String, String)>,
) -> Response {
    let fleet = &*console.fleet;
    let action: DeviceAction = match allowed(fleet, &who, &id, &slug).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let d = match fleet.device(&id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("No device {id:?}.")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let context = html! {
        p #subject { "Device " (d.id) " (serial " (d.serial) ", class " (d.device_class)
            ") is " (state_of(&d)) "." }
    };
    confirm_page(
        fleet,
        &who,
        action,
        &id,
        context,
        &format!("/console/devices/{id}"),
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
    let action: DeviceAction = match checked(fleet, &who, &id, &slug, &form.csrf).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let done = fleet
        .act(&id, action, &who.operator.name)
        .await
        .map(|note| (note, format!("/console/devices/{id}")));
    finish(fleet, &who, action, &id, done).await
}
