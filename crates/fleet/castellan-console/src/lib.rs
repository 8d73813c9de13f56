//! The operator console of `castellan serve`: server-rendered HTML over the service's HTTPS
//! listener, for the people who run the fleet in a browser.
//!
//! ```text
//!  browser ─HTTPS─▶ /console/…  security headers (CSP without script, frame-ancestors 'none')
//!                    ├─ login: per-address rate limit ─▶ Argon2id ─▶ lockout ─▶ new session
//!                    ├─ views: session cookie ─▶ Store / Fleet (what the API handlers call)
//!                    └─ actions: session + CSRF token + role (the API's own table) ─▶ Fleet
//!                       every login, logout, action and refusal ─▶ audit log
//! ```
//!
//! The console holds no fleet logic: the server implements [`Fleet`] with the functions its
//! API handlers call, and answers [`Fleet::may`] from the API's own role table, so the browser
//! can neither see nor do anything the same operator could not through the API. The design and
//! its security decisions are in `docs/console.md`.

#![forbid(unsafe_code)]

mod actions;
mod audit_view;
mod devices;
mod fleet;
mod layout;
mod limiter;
mod login;
mod overview;
mod password;
mod session;
mod totp;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::get;

pub use fleet::{CertificateView, DeviceAction, DeviceView, Fleet, FleetError, MeasurementView};
pub use password::{
    MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, PasswordError, hash_password, verify_password,
};
pub use session::SESSION_COOKIE;
pub use totp::{TotpError, new_totp_secret, otpauth_url, totp_code};

/// The address a request came from (the server attaches it to each request), for the login
/// rate limit and the audit log.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// The console's security settings.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// How long a session lives from login (absolute; no sliding renewal).
    pub session_ttl_secs: i64,
    /// How long a session lives without a request.
    pub session_idle_secs: i64,
    /// Failed logins in a row that lock an account.
    pub max_failed_logins: u32,
    /// How long a lockout lasts.
    pub lockout_secs: i64,
    /// Login attempts one address may make per minute (any account).
    pub login_attempts_per_minute: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_ttl_secs: 8 * 3600,
            session_idle_secs: 30 * 60,
            max_failed_logins: 5,
            lockout_secs: 15 * 60,
            login_attempts_per_minute: 20,
        }
    }
}

/// The console's shared state.
pub(crate) struct Console<F> {
    pub(crate) fleet: Arc<F>,
    pub(crate) config: ConsoleConfig,
    pub(crate) limiter: limiter::Limiter,
}

/// The console's router (every path under `/console`), to merge into the server's.
pub fn router<F: Fleet>(fleet: Arc<F>, config: ConsoleConfig) -> Router {
    let limiter = limiter::Limiter::new(config.login_attempts_per_minute, 60);
    let state = Arc::new(Console {
        fleet,
        config,
        limiter,
    });
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(overview::page::<F>))
        .route("/console/login", get(login::page).post(login::submit::<F>))
        .route("/console/logout", axum::routing::post(login::logout::<F>))
        .route("/console/devices", get(devices::list::<F>))
        .route("/console/devices/{id}", get(devices::page::<F>))
        .route(
            "/console/devices/{id}/{action}",
            get(actions::confirm::<F>).post(actions::take::<F>),
        )
        .route("/console/audit", get(audit_view::page::<F>))
        .route("/console/static/console.css", get(layout::stylesheet))
        .layer(middleware::map_response(session::security_headers))
        .with_state(state)
}
