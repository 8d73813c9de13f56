//! The one flow of every console action (device, campaign, alert): the role check against the
//! API route that does the same, a confirmation page naming the consequence, then a POST that
//! must carry the session's CSRF token, is checked for the role again, takes the action through
//! the fleet and is audited whatever happens.
//!
//! ```text
//!  GET  /console/{kind}s/{id}/{slug} ─▶ parse ─▶ role (API table; refusal audited) ─▶ confirm
//!  POST /console/{kind}s/{id}/{slug} ─▶ CSRF token (refusal audited) ─▶ parse ─▶ role
//!        ─▶ the kind's own call (Fleet::act, act_on_campaign, act_on_alert)
//!        ─▶ audit (note or refusal) ─▶ redirect, or the error page with the refusal
//! ```

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use crate::layout::{error_page, page};
use crate::session::{Authed, token_matches};
use crate::{AlertAction, CampaignAction, DeviceAction, Fleet, FleetError};

/// An action an operator takes from the console.
pub(crate) trait ConsoleAction: Copy + Sized {
    /// What it acts on, as in the console's paths (`devices`, `campaigns`, `alerts`).
    const PATH: &'static str;
    /// What it acts on, for the operator (`device`).
    const NOUN: &'static str;
    /// The audit action of a refusal whose action could not be read.
    const AUDIT_PREFIX: &'static str;

    /// The action named `slug`.
    fn parse(slug: &str) -> Option<Self>;
    /// Its name in the paths.
    fn slug(self) -> &'static str;
    /// The button's label.
    fn label(self) -> &'static str;
    /// The API route whose roles are the action's.
    fn api_route(self) -> (&'static str, &'static str);
    /// Its audit action.
    fn audit_action(self) -> &'static str;
    /// What the confirmation page names.
    fn consequence(self) -> &'static str;
    /// Whether the button is marked as dangerous.
    fn danger(self) -> bool;
}

impl ConsoleAction for DeviceAction {
    const PATH: &'static str = "devices";
    const NOUN: &'static str = "device";
    const AUDIT_PREFIX: &'static str = "console.device";
    fn parse(slug: &str) -> Option<Self> {
        DeviceAction::parse(slug)
    }
    fn slug(self) -> &'static str {
        DeviceAction::slug(self)
    }
    fn label(self) -> &'static str {
        DeviceAction::label(self)
    }
    fn api_route(self) -> (&'static str, &'static str) {
        DeviceAction::api_route(self)
    }
    fn audit_action(self) -> &'static str {
        DeviceAction::audit_action(self)
    }
    fn consequence(self) -> &'static str {
        DeviceAction::consequence(self)
    }
    fn danger(self) -> bool {
        self.is_final()
    }
}

impl ConsoleAction for CampaignAction {
    const PATH: &'static str = "campaigns";
    const NOUN: &'static str = "campaign";
    const AUDIT_PREFIX: &'static str = "console.campaign";
    fn parse(slug: &str) -> Option<Self> {
        CampaignAction::parse(slug)
    }
    fn slug(self) -> &'static str {
        CampaignAction::slug(self)
    }
    fn label(self) -> &'static str {
        CampaignAction::label(self)
    }
    fn api_route(self) -> (&'static str, &'static str) {
        CampaignAction::api_route(self)
    }
    fn audit_action(self) -> &'static str {
        CampaignAction::audit_action(self)
    }
    fn consequence(self) -> &'static str {
        CampaignAction::consequence(self)
    }
    fn danger(self) -> bool {
        matches!(self, CampaignAction::Abort | CampaignAction::Rollback)
    }
}

impl ConsoleAction for AlertAction {
    const PATH: &'static str = "alerts";
    const NOUN: &'static str = "alert";
    const AUDIT_PREFIX: &'static str = "console.alert";
    fn parse(slug: &str) -> Option<Self> {
        AlertAction::parse(slug)
    }
    fn slug(self) -> &'static str {
        AlertAction::slug(self)
    }
    fn label(self) -> &'static str {
        AlertAction::label(self)
    }
    fn api_route(self) -> (&'static str, &'static str) {
        AlertAction::api_route(self)
    }
    fn audit_action(self) -> &'static str {
        AlertAction::audit_action(self)
    }
    fn consequence(self) -> &'static str {
        AlertAction::consequence(self)
    }
    fn danger(self) -> bool {
        false
    }
}

/// The console path of action `slug` on object `id`.
fn target<A: ConsoleAction>(id: &str, slug: &str) -> String {
    format!("/console/{}/{id}/{slug}", A::PATH)
}

/// The action named by the path, if the operator's role may take it (else the refusal, audited).
pub(crate) async fn allowed<F: Fleet, A: ConsoleAction>(
    fleet: &F,
    who: &Authed,
    id: &str,
    slug: &str,
) -> Result<A, Response> {
    let Some(action) = A::parse(slug) else {
        return Err(error_page(StatusCode::NOT_FOUND, "No such action."));
    };
    let (method, route) = action.api_route();
    if who.may(fleet, method, route) {
        return Ok(action);
    }
    let reason = format!(
        "role {} may not {} (the API's {method} {route})",
        who.operator.role,
        action.slug()
    );
    fleet
        .audit(
            &who.operator.name,
            action.audit_action(),
            &target::<A>(id, slug),
            false,
            &reason,
        )
        .await;
    Err(error_page(StatusCode::FORBIDDEN, &reason))
}

/// The confirmation page of `action` on `id`: the consequence, `context` (what the object is
/// now, fields the POST needs), the button and a way back.
pub(crate) fn confirm_page<F: Fleet, A: ConsoleAction>(
    fleet: &F,
    who: &Authed,
    action: A,
    id: &str,
    context: Markup,
    cancel: &str,
) -> Response {
    let body = html! {
        p.notice #consequence { (action.consequence()) }
        form method="post" action=(target::<A>(id, action.slug())) {
            input type="hidden" name="csrf" value=(who.csrf_token);
            (context)
            div.actions {
                button #confirm class=[action.danger().then_some("danger")] type="submit" {
                    (action.label()) " " (A::NOUN) " " (id)
                }
                a href=(cancel) { "Cancel" }
            }
        }
    };
    page(
        fleet,
        who,
        &format!("{} {} {id}?", action.label(), A::NOUN),
        body,
    )
}

/// The checks before a POST acts: the CSRF token, then the role. Every refusal is audited.
pub(crate) async fn checked<F: Fleet, A: ConsoleAction>(
    fleet: &F,
    who: &Authed,
    id: &str,
    slug: &str,
    csrf: &str,
) -> Result<A, Response> {
    if !token_matches(&who.csrf_token, csrf) {
        let reason = "CSRF token missing or wrong: request refused";
        let audit = A::parse(slug).map_or(A::AUDIT_PREFIX, |a| a.audit_action());
        fleet
            .audit(
                &who.operator.name,
                audit,
                &target::<A>(id, slug),
                false,
                reason,
            )
            .await;
        return Err(error_page(StatusCode::FORBIDDEN, reason));
    }
    allowed::<F, A>(fleet, who, id, slug).await
}

/// Audit what the action did (`Ok`: the note and where to go next) and answer.
pub(crate) async fn finish<F: Fleet, A: ConsoleAction>(
    fleet: &F,
    who: &Authed,
    action: A,
    id: &str,
    done: Result<(String, String), FleetError>,
) -> Response {
    let target = target::<A>(id, action.slug());
    let actor = who.operator.name.as_str();
    match done {
        Ok((note, next)) => {
            fleet
                .audit(actor, action.audit_action(), &target, true, &note)
                .await;
            Redirect::to(&next).into_response()
        }
        Err(e) => {
            let reason = e.to_string();
            fleet
                .audit(actor, action.audit_action(), &target, false, &reason)
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
