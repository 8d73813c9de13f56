//! The operator console of `castellan serve`: server-rendered HTML over the service's HTTPS
//! listener, for the people who run the fleet in a browser.
//!
//! ```text
//!  browser ─HTTPS─▶ /console/…  security headers (CSP: script only /console/static/live.js)
//!                    ├─ login: per-address rate limit ─▶ Argon2id ─▶ lockout ─▶ new session
//!                    ├─ views: session cookie ─▶ Store / Fleet (what the API handlers call)
//!                    │   fleet, devices, releases, campaigns (create with a preview), alerts, audit
//!                    ├─ actions: session + CSRF token + role (the API's own table) ─▶ Fleet
//!                    └─ /console/events: server-sent events (capped streams) ─▶ live.js
//!                       every login, logout, action and refusal ─▶ audit log
//! ```
//!
//! The console holds no fleet logic: the server implements [`Fleet`] with the functions its
//! API handlers call, and answers [`Fleet::may`] from the API's own role table, so the browser
//! can neither see nor do anything the same operator could not through the API. The design and
//! its security decisions are in `docs/console.md`.

#![forbid(unsafe_code)]

mod action_flow;
mod actions;
mod alerts;
mod audit_view;
mod campaign_new;
mod campaigns;
mod device_page;
mod devices;
mod evidence;
mod fleet;
mod history;
mod layout;
mod limiter;
mod live;
mod login;
mod ops;
mod ops_views;
mod overview;
mod password;
mod plots;
mod progress;
mod releases;
mod session;
mod totp;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::get;

pub use evidence::{
    CertificateChain, CertificateChains, ChainCertificate, EXPIRY_WARNING_DAYS, Expiry, ScorePoint,
    TufRoleView,
};
pub use fleet::{CertificateView, DeviceAction, DeviceView, Fleet, FleetError, MeasurementView};
pub use live::StreamRefusal;
pub use ops::{AlertAction, CampaignAction, ManifestCheck};
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
    /// Live-update streams one session may hold open (tabs).
    pub max_streams_per_session: usize,
    /// Live-update streams the service holds open at once.
    pub max_streams: usize,
    /// How often a live stream looks at the fleet (milliseconds).
    pub live_poll_ms: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_ttl_secs: 8 * 3600,
            session_idle_secs: 30 * 60,
            max_failed_logins: 5,
            lockout_secs: 15 * 60,
            login_attempts_per_minute: 20,
            max_streams_per_session: 4,
            max_streams: 64,
            live_poll_ms: 1000,
        }
    }
}

/// The console's shared state.
pub(crate) struct Console<F> {
    pub(crate) fleet: Arc<F>,
    pub(crate) config: ConsoleConfig,
    pub(crate) limiter: limiter::Limiter,
    pub(crate) streams: Arc<live::Streams>,
}

/// The console's router (every path under `/console`), to merge into the server's.
pub fn router<F: Fleet>(fleet: Arc<F>, config: ConsoleConfig) -> Router {
    let limiter = limiter::Limiter::new(config.login_attempts_per_minute, 60);
    let streams = live::Streams::new(config.max_streams_per_session, config.max_streams);
    let state = Arc::new(Console {
        fleet,
        config,
        limiter,
        streams,
    });
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(overview::page::<F>))
        .route("/console/login", get(login::page).post(login::submit::<F>))
        .route("/console/logout", axum::routing::post(login::logout::<F>))
        .route("/console/devices", get(devices::list::<F>))
        .route("/console/devices/{id}", get(device_page::page::<F>))
        .route(
            "/console/devices/{id}/{action}",
            get(actions::confirm::<F>).post(actions::take::<F>),
        )
        .route("/console/audit", get(audit_view::page::<F>))
        .route("/console/releases", get(releases::list::<F>))
        .route("/console/releases/{id}", get(releases::show::<F>))
        .route(
            "/console/campaigns",
            get(campaigns::list::<F>).post(campaign_new::create::<F>),
        )
        .route("/console/campaigns/new", get(campaign_new::form::<F>))
        .route(
            "/console/campaigns/preview",
            get(campaign_new::preview::<F>),
        )
        .route("/console/campaigns/{id}", get(campaigns::show::<F>))
        .route(
            "/console/campaigns/{id}/{action}",
            get(ops_views::campaign_confirm::<F>).post(ops_views::campaign_take::<F>),
        )
        .route("/console/alerts", get(alerts::list::<F>))
        .route(
            "/console/alerts/{id}/{action}",
            get(ops_views::alert_confirm::<F>).post(ops_views::alert_take::<F>),
        )
        .route("/console/events", get(live::events::<F>))
        .route("/console/static/console.css", get(layout::stylesheet))
        .route("/console/static/live.js", get(layout::live_script))
        .layer(middleware::map_response(session::security_headers))
        .with_state(state)
}
