//! `GET /metrics`: the fleet in Prometheus' text format, for the monitoring operators already
//! run. Behind an API token like every operator route (a scraper gets its own read-only
//! account: `authorization: Bearer cst_…` in its scrape configuration). Every figure is read
//! at scrape time from the store and the broker; nothing is kept between scrapes.
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
