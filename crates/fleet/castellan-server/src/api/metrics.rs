//! `GET /metrics`: the fleet in Prometheus' text format, for the monitoring operators already
//! run. Behind an API token like every operator route (a scraper gets its own read-only
//! account: `authorization: Bearer cst_…` in its scrape configuration). Every figure is read
//! at scrape time from the store, the broker and the process's counters.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `castellan_devices` | `state` | devices by state (pending, onboarded, quarantined, revoked, decommissioned) |
//! | `castellan_devices_by_class` | `class` | devices by class |
//! | `castellan_devices_by_firmware` | `version` | devices by reported firmware version |
//! | `castellan_devices_by_attestation` | `result` | devices by latest attestation result |
//! | `castellan_mqtt_sessions` | | live MQTT sessions |
//! | `castellan_mqtt_dropped_events_total` | | device messages dropped because the service lagged |
//! | `castellan_campaigns` | `state` | update campaigns by state |
//! | `castellan_campaign_devices` | `campaign`, `phase` | devices of each running or paused campaign by phase (pending, offered, downloading, installing, rebooting, confirming, updated, failed) |
//! | `castellan_alerts` | `state` | alerts by state (open, acknowledged, resolved) |
//! | `castellan_mqtt_messages_received_total` | | device messages received since the service started |
//! | `castellan_onboarding_total` | `outcome` | onboarding decisions since start: `accepted` or the refusal's code |
//! | `castellan_attestation_total` | `kind`, `result` | attestation appraisals since start (`onboarding`, `update`; `passed`, `failed`) |
//! | `castellan_http_request_duration_seconds` | `method`, `route`, `status` | HTTPS request latency (histogram; route = the pattern) |
//!
//! The first rows are read from the store at scrape time (the fleet's state, shared by every
//! instance); the counters and the histogram are this process's (`crate::observe`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ApiError;
use crate::core::Core;

/// The text format's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labelled = Family<Vec<(String, String)>, Gauge>;

fn family(registry: &mut Registry, name: &str, help: &str, label: &str, rows: &[(String, u64)]) {
    let f = Labelled::default();
    for (value, n) in rows {
        f.get_or_create(&vec![(label.to_string(), value.clone())])
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    registry.register(name, help, f);
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "The fleet's metrics, Prometheus text format", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
pub(crate) async fn metrics(State(core): State<Arc<Core>>) -> Result<impl IntoResponse, ApiError> {
    let counts = core.store.fleet_counts().await?;
    let campaigns = core.store.list_campaigns().await?;
    let mut registry = Registry::with_prefix("castellan");
    family(
        &mut registry,
        "devices",
        "Devices by state",
        "state",
        &counts.by_state,
    );
    family(
        &mut registry,
        "devices_by_class",
        "Devices by class",
        "class",
        &counts.by_class,
    );
    family(
        &mut registry,
        "devices_by_firmware",
        "Devices by reported firmware version",
        "version",
        &counts.by_firmware,
    );
    family(
        &mut registry,
        "devices_by_attestation",
        "Devices by latest attestation result",
        "result",
        &counts.by_attestation,
    );
    let mut by_state: Vec<(String, u64)> = Vec::new();
    for c in &campaigns {
        match by_state.iter_mut().find(|(s, _)| s == c.state.as_str()) {
            Some((_, n)) => *n += 1,
            None => by_state.push((c.state.as_str().to_string(), 1)),
        }
    }
    family(
        &mut registry,
        "campaigns",
        "Update campaigns by state",
        "state",
        &by_state,
    );
    let progress = Labelled::default();
    for c in campaigns.iter().filter(|c| {
        matches!(
            c.state,
            castellan_store::CampaignState::Running | castellan_store::CampaignState::Paused
        )
    }) {
        let Ok(view) = crate::campaign::campaign_json(&core, c).await else {
            continue;
        };
        let n = view.counts;
        for (phase, count) in [
            ("pending", n.pending),
            ("offered", n.offered),
            ("downloading", n.downloading),
            ("installing", n.installing),
            ("rebooting", n.rebooting),
            ("confirming", n.confirming),
            ("updated", n.updated),
            ("failed", n.failed),
        ] {
            progress
                .get_or_create(&vec![
                    ("campaign".to_string(), c.id.clone()),
                    ("phase".to_string(), phase.to_string()),
                ])
                .set(i64::from(count));
        }
    }
    registry.register(
        "campaign_devices",
        "Devices of each running or paused campaign by phase",
        progress,
    );
    let alerts: Vec<(String, u64)> = core
        .store
        .alert_counts()
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n))
        .collect();
    family(&mut registry, "alerts", "Alerts by state", "state", &alerts);
    let observed = &core.observed;
    registry.register(
        "mqtt_messages_received",
        "Device messages received since the service started",
        observed.messages.clone(),
    );
    registry.register(
        "onboarding",
        "Onboarding decisions since the service started, by outcome",
        observed.onboarding.clone(),
    );
    registry.register(
        "attestation",
        "Attestation appraisals since the service started, by kind and result",
        observed.attestation.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "HTTPS request latency by method, route pattern and status",
        observed.http.clone(),
    );
    let (sessions, dropped) = match core.broker.read().await.as_ref() {
        Some(b) => (b.session_count(), b.dropped_events()),
        None => (0, 0),
    };
    let live = Gauge::<i64>::default();
    live.set(i64::try_from(sessions).unwrap_or(i64::MAX));
    registry.register("mqtt_sessions", "Live MQTT sessions", live);
    let lost = Counter::<u64>::default();
    lost.inc_by(dropped);
    registry.register(
        "mqtt_dropped_events",
        "Device messages dropped because the service lagged",
        lost,
    );
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text))
}
