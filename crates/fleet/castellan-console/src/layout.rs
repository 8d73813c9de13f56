//! The page shell every console view shares (header, navigation, logout form), the error page,
//! the stylesheet, and the server-side SVG bar chart. Every value goes through maud, which
//! escapes it: device-supplied text can never become markup.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::Fleet;
use crate::session::Authed;

/// The console's stylesheet.
pub(crate) async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/console.css"),
    )
        .into_response()
}

/// The page's head; `live`: with the live-update script (pages of a logged-in operator).
fn head(title: &str, live: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Castellan" }
            link rel="stylesheet" href="/console/static/console.css";
            // The only script: served by the binary, allowed by `script-src 'self'`.
            @if live { script src="/console/static/live.js" defer {} }
        }
    }
}

/// A page of a logged-in operator.
pub(crate) fn page<F: Fleet>(fleet: &F, who: &Authed, title: &str, body: Markup) -> Response {
    let audit = who.may(fleet, "GET", "/api/v1/audit");
    let releases = who.may(fleet, "GET", "/api/v1/releases");
    let campaigns = who.may(fleet, "GET", "/api/v1/campaigns");
    let alerts = who.may(fleet, "GET", "/api/v1/alerts");
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body {
                header {
                    a.brand href="/console/" { "CASTELLAN" }
                    nav {
                        a href="/console/" { "Overview" }
                        a href="/console/devices" { "Devices" }
                        @if releases { a href="/console/releases" { "Releases" } }
                        @if campaigns { a href="/console/campaigns" { "Campaigns" } }
                        @if alerts { a href="/console/alerts" { "Alerts" } }
                        @if audit { a href="/console/audit" { "Audit log" } }
                    }
                    span.live #live title="Live updates" { "" }
                    span.who #who { (who.operator.name) " (" (who.operator.role) ")" }
                    form method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(who.csrf_token);
                        button #logout type="submit" { "Log out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
    .into_response()
}

/// The live-update script (no inline script anywhere: the CSP allows only this file).
pub(crate) async fn live_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/live.js"),
    )
        .into_response()
}

/// A page without a session (login).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" { (head(title, false)) body { (body) } }
    }
}

/// An error page with `status`.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = bare(
        "Error",
        html! {
            div.login {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.notice.error #error { (message) }
                p { a href="/console/" { "Back to the console" } }
            }
        },
    );
    (status, body).into_response()
}

/// A horizontal bar chart of (label, count), as inline SVG (presentation attributes only: the
/// CSP allows no inline style).
pub(crate) fn bar_chart(id: &str, rows: &[(String, u64)]) -> Markup {
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row_h = 22u64;
    let height = row_h * rows.len().max(1) as u64 + 4;
    html! {
        svg id=(id) role="img" width="100%" height=(height) viewBox={"0 0 420 " (height)} {
            @for (i, (label, n)) in rows.iter().enumerate() {
                @let y = i as u64 * row_h + 2;
                @let w = 220 * n / max;
                text x="0" y=(y + 15) { (label) }
                rect x="150" y=(y + 3) width=(w.max(1)) height="15" fill="#2455a4" {}
                text x=(155 + w) y=(y + 15) { (n) }
            }
        }
    }
}

/// A Unix time as UTC text, or "never".
pub(crate) fn when(t: Option<i64>) -> String {
    match t.and_then(|s| jiff::Timestamp::from_second(s).ok()) {
        Some(ts) => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => "never".into(),
    }
}
