//! What the running service counts between scrapes of `GET /metrics` (device messages,
//! onboarding and attestation outcomes, HTTP requests), and the one structured log event per
//! HTTPS request.
//!
//! ```text
//!  router::run ──────────▶ messages        ┐
//!  onboarding, campaign ─▶ outcomes        ├─▶ Observed ─▶ api::metrics (registered at scrape)
//!  observe (middleware) ─▶ http histogram  ┘
//!                       └▶ tracing event "http.request" {method, route, status, duration_ms}
//! ```
//!
//! Counters live in memory, per process: they start at zero when the service starts (as
//! Prometheus expects of a counter) and each instance of a multi-instance deployment counts its
//! own. Routes are labelled by their pattern (`/api/v1/devices/:id`), never by the concrete
//! path, so a scraper's series stay bounded whatever ids clients ask for.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::core::Core;

/// Label set: name and value pairs.
pub(crate) type Labels = Vec<(String, String)>;

/// A histogram family with the request-latency buckets.
pub(crate) type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s, doubling.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The service's running counts (cheap to clone: each metric shares its cells).
#[derive(Clone)]
pub(crate) struct Observed {
    /// Device messages the service received from the broker.
    pub(crate) messages: Counter,
    /// Onboarding decisions by outcome (`accepted`, or the refusal's code).
    pub(crate) onboarding: Family<Labels, Counter>,
    /// Attestation appraisals by kind (`onboarding`, `update`) and result (`passed`, `failed`).
    pub(crate) attestation: Family<Labels, Counter>,
    /// HTTPS request latency by method, route pattern and status.
    pub(crate) http: Histograms,
}

impl Default for Observed {
    fn default() -> Self {
        Observed {
            messages: Counter::default(),
            onboarding: Family::default(),
            attestation: Family::default(),
            http: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl Observed {
    /// An onboarding decision: `accepted`, or the refusal's stable code.
    pub(crate) fn onboarding(&self, outcome: &str) {
        self.onboarding
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    /// An attestation appraisal of `kind` (`onboarding`, `update`).
    pub(crate) fn attestation(&self, kind: &str, passed: bool) {
        let result = if passed { "passed" } else { "failed" };
        self.attestation
            .get_or_create(&vec![
                ("kind".into(), kind.into()),
                ("result".into(), result.into()),
            ])
            .inc();
    }
}

/// A route pattern as a label value: path parameters as `:name` (`/api/v1/devices/:id`), since
/// braces inside label values trip simple text-format readers.
fn route_label(pattern: &str) -> String {
    pattern.replace('{', ":").replace('}', "")
}

/// Middleware of the HTTPS listener: time each request, count it by route pattern and status,
/// and log it as one structured event.
pub(crate) async fn observe(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| route_label(m.as_str()));
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    core.observed
        .http
        .get_or_create(&vec![
            ("method".into(), method.clone()),
            ("route".into(), route.clone()),
            ("status".into(), status.to_string()),
        ])
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "castellan::http",
        method = %method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "http.request"
    );
    resp
}
