//! Login and logout.
//!
//! ```text
//!  POST /console/login ─▶ login-form token (double submit) ─▶ per-address rate limit
//!    ─▶ account with a password? (unknown: a decoy verification of the same cost)
//!    ─▶ locked? disabled? ─▶ Argon2id ─▶ wrong: count it, lock at the limit
//!    ─▶ right: clear the count, end the presented session, open a new one (fresh id)
//!  every outcome ─▶ audit log (console.login / console.login.lockout), with the address
//! ```

use std::sync::Arc;

use axum::Extension;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use castellan_store::unix_now;
use maud::html;
use serde::Deserialize;

use crate::layout::{bare, when};
use crate::session::{Authed, LOGIN_COOKIE, SESSION_COOKIE, cookie, set_cookie, token_matches};
use crate::{ClientAddr, Console, Fleet, password};

/// The login form (missing fields are empty, so that every refusal reaches the audit log).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginForm {
    name: String,
    password: String,
    /// The one-time code, for accounts with a second factor.
    code: String,
    login_token: String,
}

/// A form that changes state: its CSRF token (missing is empty, and refused and audited).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

fn fresh_token() -> String {
    let mut b = [0u8; 32];
    // Without randomness the form cannot be submitted (its token never matches).
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    hex::encode(b)
}

fn form(status: StatusCode, message: Option<&str>) -> Response {
    let token = fresh_token();
    let body = bare(
        "Log in",
        html! {
            form.login method="post" action="/console/login" {
                h1 { "Castellan console" }
                @if let Some(m) = message { p.notice.error #error { (m) } }
                input type="hidden" name="login_token" value=(token);
                label for="name" { "Operator" }
                input #name name="name" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                label for="code" { "One-time code (if your account has one)" }
                input #code name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6";
                button #login type="submit" { "Log in" }
            }
        },
    );
    (
        status,
        [(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, 600))],
        body,
    )
        .into_response()
}

/// `GET /console/login`.
pub(crate) async fn page() -> Response {
    form(StatusCode::OK, None)
}

/// `POST /console/login`.
pub(crate) async fn submit<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let fleet = &console.fleet;
    let cfg = &console.config;
    let addr = addr.map(|Extension(ClientAddr(a))| a);
    let from = addr.map_or_else(|| "?".into(), |a| a.ip().to_string());
    let anonymous = format!("anonymous@{from}");
    let target = format!("/console/login (operator {:?})", f.name);
    let refuse = async |actor: &str, action: &str, reason: &str| {
        log::warn!(
            "console login of {:?} from {from} refused: {reason}",
            f.name
        );
        fleet.audit(actor, action, &target, false, reason).await;
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !token_matches(&expected, &f.login_token) {
        refuse(
            &anonymous,
            "console.login",
            "login form token missing or wrong",
        )
        .await;
        return form(
            StatusCode::FORBIDDEN,
            Some("The login form expired; please try again."),
        );
    }
    if let Some(a) = addr
        && !console.limiter.allow(a.ip())
    {
        let reason = format!(
            "too many login attempts from {from} (limit {} a minute)",
            cfg.login_attempts_per_minute
        );
        refuse(&anonymous, "console.login", &reason).await;
        return form(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many login attempts from your address; wait a minute."),
        );
    }
    let wrong = "Wrong operator name, password or one-time code.";
    let now = unix_now();
    let record = match fleet.store().operator_password(&f.name).await {
        Ok(r) => r,
        Err(e) => {
            log::warn!("console login: {e}");
            return form(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The store is unavailable."),
            );
        }
    };
    let Some(record) = record else {
        let pw = f.password.clone();
        let _ = tokio::task::spawn_blocking(move || password::verify_nothing(&pw)).await;
        refuse(
            &anonymous,
            "console.login",
            "unknown operator or no console password",
        )
        .await;
        return form(StatusCode::UNAUTHORIZED, Some(wrong));
    };
    if let Some(until) = record.locked_until.filter(|u| now < *u) {
        let reason = format!("account locked until {}", when(Some(until)));
        refuse(&f.name, "console.login", &reason).await;
        let msg = format!(
            "This account is locked after repeated failed logins until {}; an admin can \
             reset its password to unlock it.",
            when(Some(until))
        );
        return form(StatusCode::FORBIDDEN, Some(&msg));
    }
    if record.operator.disabled {
        refuse(&f.name, "console.login", "account disabled").await;
        return form(StatusCode::UNAUTHORIZED, Some(wrong));
    }
    let (phc, pw) = (record.phc.clone(), f.password.clone());
    let ok = tokio::task::spawn_blocking(move || password::verify_password(&phc, &pw))
        .await
        .unwrap_or(false);
    let store = fleet.store();
    let failure: Option<String> = if !ok {
        Some("wrong password".into())
    } else if let Some(secret) = &record.totp_secret {
        second_factor(store, &f.name, secret, &f.code, now)
            .await
            .err()
            .map(str::to_string)
    } else {
        None
    };
    if let Some(what) = failure {
        let locked = store
            .record_failed_login(&f.name, now, cfg.max_failed_logins, cfg.lockout_secs)
            .await;
        let failures = record.failed_logins.saturating_add(1);
        if let Ok(Some(until)) = locked {
            let reason = format!(
                "{what}: {failures} failed logins in a row, account locked until {}",
                when(Some(until))
            );
            refuse(&f.name, "console.login.lockout", &reason).await;
        } else {
            let reason = format!(
                "{what} ({failures} of {} before lockout)",
                cfg.max_failed_logins
            );
            refuse(&f.name, "console.login", &reason).await;
        }
        return form(StatusCode::UNAUTHORIZED, Some(wrong));
    }
    let session = async {
        store.clear_failed_logins(&f.name).await?;
        // Whatever session the browser presented ends here: the new one has a fresh id.
        if let Some(old) = cookie(&headers, SESSION_COOKIE) {
            store.end_console_session(&old).await?;
        }
        store
            .create_console_session(&f.name, now, cfg.session_ttl_secs)
            .await
    }
    .await;
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            log::warn!("console login: {e}");
            return form(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The store is unavailable."),
            );
        }
    };
    let note = format!(
        "logged in from {from}; session until {}",
        when(Some(session.expires_at))
    );
    fleet
        .audit(&f.name, "console.login", "/console/login", true, &note)
        .await;
    let mut resp = Redirect::to("/console/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &session.id, cfg.session_ttl_secs),
    );
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
    resp
}

/// Check the one-time code of an account with a second factor (accepted once per time step).
async fn second_factor(
    store: &castellan_store::Store,
    name: &str,
    secret: &str,
    code: &str,
    now: i64,
) -> Result<(), &'static str> {
    let at = u64::try_from(now).unwrap_or(0);
    let Some(step) = crate::totp::check(secret, code, at) else {
        return Err("password right, one-time code missing or wrong");
    };
    match store
        .use_totp_step(name, i64::try_from(step).unwrap_or(i64::MAX))
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err("password right, one-time code already used (replay)"),
        Err(_) => Err("one-time code not checked: store unavailable"),
    }
}

/// `POST /console/logout`.
pub(crate) async fn logout<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let fleet = &console.fleet;
    if !token_matches(&who.csrf_token, &f.csrf) {
        let reason = "CSRF token missing or wrong";
        fleet
            .audit(
                &who.operator.name,
                "console.logout",
                "/console/logout",
                false,
                reason,
            )
            .await;
        return crate::layout::error_page(StatusCode::FORBIDDEN, reason);
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        let _ = fleet.store().end_console_session(&id).await;
    }
    fleet
        .audit(
            &who.operator.name,
            "console.logout",
            "/console/logout",
            true,
            "logged out",
        )
        .await;
    let mut resp = Redirect::to("/console/login").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    resp
}
