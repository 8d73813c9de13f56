//! Device telemetry: the latest [`crate::StoreOptions::telemetry_keep`] messages per device.

use crate::registry::finish;
use crate::{Store, StoreError};

/// One telemetry message of a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryRecord {
    /// The device.
    pub device_id: String,
    /// When it was received (Unix seconds).
    pub at: i64,
    /// The payload (JSON text).
    pub payload: String,
}

impl Store {
    /// Store a telemetry message, keeping only the latest [`crate::StoreOptions::telemetry_keep`]
    /// per device.
    pub async fn record_telemetry(
        &self,
        device_id: &str,
        at: i64,
        payload: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let keep = self.inner.telemetry_keep;
        let r = async {
            s.exec(
                "INSERT INTO telemetry (device_id, at, payload) VALUES ($1, $2, $3)",
                vec![device_id.into(), at.into(), payload.into()],
            )
            .await?;
            s.exec(
                "DELETE FROM telemetry WHERE device_id = $1 AND id NOT IN \
                 (SELECT id FROM telemetry WHERE device_id = $1 ORDER BY id DESC LIMIT $2)",
                vec![device_id.into(), keep.into()],
            )
            .await?;
            Ok(())
        }
        .await;
        finish(&mut s, r).await
    }

    /// The device's latest telemetry, newest first.
    pub async fn latest_telemetry(
        &self,
        device_id: &str,
        limit: u32,
    ) -> Result<Vec<TelemetryRecord>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                "SELECT device_id, at, payload FROM telemetry WHERE device_id = $1 ORDER BY id DESC LIMIT $2",
                vec![device_id.into(), i64::from(limit).into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TelemetryRecord {
                    device_id: r.text(0)?,
                    at: r.int(1)?,
                    payload: r.text(2)?,
                })
            })
            .collect()
    }
}
