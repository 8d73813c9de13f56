//! Sessions in cookies, the CSRF check and the security headers of every console response.
//!
//! The session cookie is `__Host-castellan_session`: the `__Host-` prefix makes the browser
//! refuse it unless it is `Secure`, has `Path=/` and no `Domain` (no sibling host can plant
//! one), and it is `HttpOnly` (no script reads it) and `SameSite=Strict` (no other site's page
//! sends it). Its value is 32 random bytes made by the store at login; a value the server did
//! not make is never adopted (session fixation), and only its SHA-256 is stored. A session ends
//! at its absolute expiry or after [`crate::ConsoleConfig::session_idle_secs`] without a request.
//!
//! Every state-changing request carries the session's CSRF token in its form (synchronizer
//! token, compared in constant time); `SameSite=Strict` is the second line, not the first.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use castellan_store::{Operator, unix_now};
use subtle::ConstantTimeEq as _;

use crate::{Console, Fleet};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-castellan_session";

/// The login form's own anti-CSRF cookie (double submit, before any session exists).
pub(crate) const LOGIN_COOKIE: &str = "__Host-castellan_login";

/// The Content-Security-Policy of every console page: nothing but same-origin stylesheets,
/// images and script files (the one live-update script; no inline script, no `eval`), event
/// streams only from the console's origin, forms only to the console, never framed.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                              style-src 'self'; img-src 'self'; form-action 'self'; \
                              frame-ancestors 'none'; base-uri 'none'";

/// The value of cookie `name` in the request, if it is well formed (64 lowercase hex digits,
/// the only shape the server makes).
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `Set-Cookie` value for `name`, living `max_age` seconds (0 deletes it).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    let v = format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.max(0)
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// Whether `presented` is the expected token (constant time).
pub(crate) fn token_matches(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// The operator of a live session (an extractor: without one, the browser is sent to the
/// login page).
#[derive(Clone, Debug)]
pub(crate) struct Authed {
    pub(crate) operator: Operator,
    pub(crate) csrf_token: String,
}

impl Authed {
    /// Whether the session's operator may call the API route `method path`.
    pub(crate) fn may<F: Fleet>(&self, fleet: &F, method: &str, path: &str) -> bool {
        fleet.may(self.operator.role, method, path)
    }
}

impl<F: Fleet> FromRequestParts<Arc<Console<F>>> for Authed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console<F>>,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/console/login").into_response();
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let idle = console.config.session_idle_secs;
        match console
            .fleet
            .store()
            .console_session(&id, unix_now(), idle)
            .await
        {
            Ok(Some(s)) => Ok(Authed {
                operator: s.operator,
                csrf_token: s.csrf_token,
            }),
            Ok(None) => Err(to_login()),
            Err(e) => {
                log::warn!("console session lookup: {e}");
                Err(crate::layout::error_page(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "The session store is unavailable; try again shortly.",
                ))
            }
        }
    }
}

/// Add the console's security headers to a response.
pub(crate) async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_cookies_are_read() {
        let mut h = HeaderMap::new();
        let good = "ab".repeat(32);
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {SESSION_COOKIE}={good}"))
                .unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some(good));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-castellan_session=attacker-chosen"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
    }

    #[test]
    fn cookies_are_host_only_secure_httponly_strict() {
        let v = set_cookie(SESSION_COOKIE, "00", 60);
        let s = v.to_str().unwrap_or_default();
        for part in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
        ] {
            assert!(s.contains(part), "{s}");
        }
        assert!(!s.contains("Domain"));
        assert!(!token_matches("", ""), "an empty token never matches");
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abc", "abd"));
    }
}
