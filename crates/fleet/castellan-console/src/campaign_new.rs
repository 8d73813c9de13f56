//! Creating a campaign: a form (release, cohort tags, canary, waves, thresholds, timeout), a
//! preview that lists the devices it would reach now and in which wave (the service's own
//! cohort rules, nothing stored), then a POST carrying the CSRF token that creates it as
//! `POST /api/v1/campaigns` does.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use castellan_protocol::{CampaignRequest, OnThreshold};
use maud::{Markup, html};
use serde::Deserialize;

use crate::layout::{error_page, page};
use crate::session::{Authed, token_matches};
use crate::{Console, Fleet};

const CREATE: (&str, &str) = ("POST", "/api/v1/campaigns");
const AUDIT: &str = "console.campaign.create";

/// The form's fields, as text (parsed into a [`CampaignRequest`] with a message per field).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct CampaignForm {
    #[serde(default)]
    release_id: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    canary: String,
    #[serde(default)]
    waves: String,
    #[serde(default)]
    device_timeout_s: String,
    #[serde(default)]
    max_failures: String,
    #[serde(default)]
    max_failure_rate: String,
    #[serde(default)]
    min_sample: String,
    #[serde(default)]
    on_threshold: String,
    #[serde(default)]
    csrf: String,
}

fn number<T: std::str::FromStr>(name: &str, text: &str, default: T) -> Result<T, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(default);
    }
    t.parse()
        .map_err(|_| format!("{name} must be a whole number, not {t:?}"))
}

impl CampaignForm {
    /// The API request the form describes; `class` is the release's.
    pub(crate) fn request(&self, class: &str) -> Result<CampaignRequest, String> {
        let d = CampaignRequest::new(self.release_id.trim(), class);
        let waves: Vec<String> = self.waves.split_whitespace().map(str::to_string).collect();
        Ok(CampaignRequest {
            tags: self
                .tags
                .split([',', ' '])
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            canary: number("canary", &self.canary, d.canary)?,
            waves: if waves.is_empty() {
                d.waves.clone()
            } else {
                waves
            },
            device_timeout_s: number("device timeout", &self.device_timeout_s, d.device_timeout_s)?,
            max_failures: number("max failures", &self.max_failures, d.max_failures)?,
            max_failure_rate: number(
                "max failure rate",
                &self.max_failure_rate,
                d.max_failure_rate,
            )?,
            min_sample: number("min sample", &self.min_sample, d.min_sample)?,
            on_threshold: match self.on_threshold.trim() {
                "" | "pause" => OnThreshold::Pause,
                "abort" => OnThreshold::Abort,
                other => {
                    return Err(format!(
                        "on threshold must be pause or abort, not {other:?}"
                    ));
                }
            },
            ..d
        })
    }
}

fn may_create<F: Fleet>(fleet: &F, who: &Authed) -> Option<Response> {
    if who.may(fleet, CREATE.0, CREATE.1) {
        None
    } else {
        Some(error_page(
            StatusCode::FORBIDDEN,
            &format!(
                "Role {} may not create campaigns (the API's POST /api/v1/campaigns).",
                who.operator.role
            ),
        ))
    }
}

/// The form's fields, filled with `f` (`hidden`: as hidden inputs, for the confirmation).
fn fields(f: &CampaignForm, releases: &[(String, String)], hidden: bool) -> Markup {
    let text = [
        (
            "tags",
            "Cohort tags (all required; none: the whole class)",
            &f.tags,
            "",
        ),
        ("canary", "Canary devices (wave 0)", &f.canary, "1"),
        (
            "waves",
            "Waves after the canary (cumulative, e.g. 25% 100%)",
            &f.waves,
            "100%",
        ),
        (
            "device_timeout_s",
            "Device timeout (seconds without progress)",
            &f.device_timeout_s,
            "600",
        ),
        (
            "max_failures",
            "Stop after this many failures (0: no limit)",
            &f.max_failures,
            "3",
        ),
        (
            "max_failure_rate",
            "… or this failure rate (percent)",
            &f.max_failure_rate,
            "20",
        ),
        (
            "min_sample",
            "… once this many devices finished",
            &f.min_sample,
            "5",
        ),
    ];
    html! {
        @if hidden {
            input type="hidden" name="release_id" value=(f.release_id);
            @for (name, _, value, _) in &text { input type="hidden" name=(name) value=(value); }
            input type="hidden" name="on_threshold" value=(f.on_threshold);
        } @else {
            label for="release_id" { "Release" }
            select #release_id name="release_id" {
                @for (id, class) in releases {
                    option value=(id) selected[*id == f.release_id] { (id) " (class " (class) ")" }
                }
            }
            @for (name, label, value, placeholder) in &text {
                label for=(name) { (label) }
                input id=(name) name=(name) value=(value) placeholder=(placeholder);
            }
            label for="on_threshold" { "When a threshold is crossed" }
            select #on_threshold name="on_threshold" {
                option value="pause" selected[f.on_threshold != "abort"] { "pause" }
                option value="abort" selected[f.on_threshold == "abort"] { "abort" }
            }
        }
    }
}

/// `GET /console/campaigns/new[?release_id=…]`.
pub(crate) async fn form<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Query(f): Query<CampaignForm>,
) -> Response {
    let fleet = &*console.fleet;
    if let Some(r) = may_create(fleet, &who) {
        return r;
    }
    form_page(fleet, &who, &f, None).await
}

async fn form_page<F: Fleet>(
    fleet: &F,
    who: &Authed,
    f: &CampaignForm,
    error: Option<&str>,
) -> Response {
    let releases: Vec<(String, String)> = match fleet.releases().await {
        Ok(r) => r
            .into_iter()
            .rev()
            .map(|r| (r.release_id, r.device_class))
            .collect(),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let body = html! {
        @if let Some(e) = error { p.notice.error #error { (e) } }
        @if releases.is_empty() { p.notice { "Upload a release first." } }
        form.campaign #campaign-form method="get" action="/console/campaigns/preview" {
            (fields(f, &releases, false))
            div.actions { button #preview type="submit" { "Preview the devices…" } }
        }
    };
    page(fleet, who, "New campaign", body)
}

/// The request of the form, or the form again with the reason.
async fn request_of<F: Fleet>(fleet: &F, f: &CampaignForm) -> Result<CampaignRequest, String> {
    let release = match fleet.release(f.release_id.trim()).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(format!("No release {:?}.", f.release_id)),
        Err(e) => return Err(e.to_string()),
    };
    f.request(&release.device_class)
}

/// `GET /console/campaigns/preview?…`: which devices it would reach, then the confirmation.
pub(crate) async fn preview<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Query(f): Query<CampaignForm>,
) -> Response {
    let fleet = &*console.fleet;
    if let Some(r) = may_create(fleet, &who) {
        return r;
    }
    let req = match request_of(fleet, &f).await {
        Ok(r) => r,
        Err(e) => return form_page(fleet, &who, &f, Some(&e)).await,
    };
    let devices = match fleet.preview_campaign(&req).await {
        Ok(d) => d,
        Err(e) => return form_page(fleet, &who, &f, Some(&e.to_string())).await,
    };
    let mut per_wave = vec![0usize; req.waves.len() + 1];
    for (_, w) in &devices {
        if let Some(n) = per_wave.get_mut(*w as usize) {
            *n += 1;
        }
    }
    let body = html! {
        p.notice #consequence {
            "Release " (req.release_id) " will be offered to " strong #preview-count { (devices.len()) }
            " devices of class " (req.device_class) ", the canary first; each wave starts when the \
            previous one finished, and the campaign stops (" (format!("{:?}", req.on_threshold).to_lowercase())
            ") if a failure threshold is crossed. The cohort is the service's at creation: \
            devices that join or leave the class later join or leave the campaign."
        }
        p { @for (w, n) in per_wave.iter().enumerate() {
            span.state { @if w == 0 { "canary" } @else { "wave " (w) } ": " (n) } " " } }
        table #preview-devices {
            thead { tr { th { "Device" } th { "Wave" } } }
            tbody { @for (id, w) in &devices { tr data-device=(id) { td { (id) } td { (w) } } } }
        }
        form method="post" action="/console/campaigns" {
            input type="hidden" name="csrf" value=(who.csrf_token);
            (fields(&f, &[], true))
            div.actions {
                button #confirm type="submit" { "Start the campaign on " (devices.len()) " devices" }
                a href="/console/campaigns/new" { "Cancel" }
            }
        }
    };
    page(fleet, &who, "Preview the campaign", body)
}

/// `POST /console/campaigns`: create it.
pub(crate) async fn create<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Form(f): Form<CampaignForm>,
) -> Response {
    let fleet = &*console.fleet;
    let actor = who.operator.name.as_str();
    let target = "/console/campaigns";
    if !token_matches(&who.csrf_token, &f.csrf) {
        let reason = "CSRF token missing or wrong: request refused";
        fleet.audit(actor, AUDIT, target, false, reason).await;
        return error_page(StatusCode::FORBIDDEN, reason);
    }
    if !who.may(fleet, CREATE.0, CREATE.1) {
        let reason = format!(
            "role {} may not create campaigns (the API's POST /api/v1/campaigns)",
            who.operator.role
        );
        fleet.audit(actor, AUDIT, target, false, &reason).await;
        return error_page(StatusCode::FORBIDDEN, &reason);
    }
    let req = match request_of(fleet, &f).await {
        Ok(r) => r,
        Err(e) => {
            fleet.audit(actor, AUDIT, target, false, &e).await;
            return error_page(StatusCode::UNPROCESSABLE_ENTITY, &e);
        }
    };
    match fleet.create_campaign(&req, actor).await {
        Ok((c, note)) => {
            fleet
                .audit(
                    actor,
                    AUDIT,
                    &format!("/console/campaigns/{}", c.campaign_id),
                    true,
                    &note,
                )
                .await;
            Redirect::to(&format!("/console/campaigns/{}", c.campaign_id)).into_response()
        }
        Err(e) => {
            let reason = e.to_string();
            fleet.audit(actor, AUDIT, target, false, &reason).await;
            error_page(StatusCode::CONFLICT, &reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_request_with_its_defaults() {
        let f = CampaignForm {
            release_id: "c-2".into(),
            tags: "eu, lab".into(),
            waves: "25% 100%".into(),
            canary: "2".into(),
            on_threshold: "abort".into(),
            ..CampaignForm::default()
        };
        let r = f.request("c").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.tags, vec!["eu", "lab"]);
        assert_eq!(r.waves, vec!["25%", "100%"]);
        assert_eq!(r.canary, 2);
        assert_eq!(r.on_threshold, OnThreshold::Abort);
        assert_eq!(r.device_timeout_s, 600, "default kept");
        let bad = CampaignForm {
            canary: "-1<script>".into(),
            ..f
        };
        assert!(
            bad.request("c").is_err(),
            "a bad number is refused, not a panic"
        );
    }
}
