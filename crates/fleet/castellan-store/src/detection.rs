//! Detection reports (schema 11): what each device's secure detector signed, stored once
//! verified. The counter only moves forward per device; the numbers skipped before a report are
//! its `gap`.

use crate::registry::finish;
use crate::{Store, StoreError};

/// A verified detection report to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDetection {
    /// The device.
    pub device_id: String,
    /// The report's counter.
    pub counter: u64,
    /// When it was received (Unix seconds).
    pub received_at: i64,
    /// The first event it covers.
    pub first_event: u64,
    /// Events it covers.
    pub events: u64,
    /// Highest window score (milli-nats).
    pub score_milli: u32,
    /// The device's alarm threshold (milli-nats).
    pub alarm_milli: u32,
    /// The window score crossed the alarm threshold.
    pub crossed: bool,
    /// The sensors' counters (JSON array).
    pub counters: String,
    /// SHA-256 of the model (hex).
    pub model_digest: String,
    /// The signed report, as received.
    pub report: Vec<u8>,
}

/// A stored detection report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectionRecord {
    /// The report as stored.
    pub report: NewDetection,
    /// Reports missing just before it (counter numbers skipped).
    pub gap: u64,
}

fn to_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        value: v.to_string(),
    })
}

fn to_u64(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        value: v.to_string(),
    })
}

impl Store {
    /// Stores a verified report unless its counter is not above the device's latest
    /// ([`StoreError::ReportNotNewer`]: a replay); returns its gap (reports skipped since the
    /// latest, or since counter 0 for a device's first report).
    pub async fn record_detection(&self, d: &NewDetection) -> Result<u64, StoreError> {
        let counter = to_i64(d.counter, "detection report counter")?;
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            s.lock_table("detection_reports").await?;
            let latest = s
                .query_opt(
                    "SELECT MAX(counter) FROM detection_reports WHERE device_id = $1",
                    vec![d.device_id.as_str().into()],
                )
                .await?
                .map(|r| r.opt_int(0))
                .transpose()?
                .flatten()
                .unwrap_or(0);
            let latest = to_u64(latest, "detection report counter")?;
            if d.counter <= latest {
                return Err(StoreError::ReportNotNewer {
                    offered: d.counter,
                    latest,
                });
            }
            let gap = d.counter - latest - 1;
            s.exec(
                "INSERT INTO detection_reports (device_id, counter, received_at, first_event, \
                 events, score_milli, alarm_milli, crossed, counters, model_digest, gap, report) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                vec![
                    d.device_id.as_str().into(),
                    counter.into(),
                    d.received_at.into(),
                    to_i64(d.first_event, "detection report window")?.into(),
                    to_i64(d.events, "detection report window")?.into(),
                    i64::from(d.score_milli).into(),
                    i64::from(d.alarm_milli).into(),
                    d.crossed.into(),
                    d.counters.as_str().into(),
                    d.model_digest.as_str().into(),
                    to_i64(gap, "detection report gap")?.into(),
                    d.report.as_slice().into(),
                ],
            )
            .await?;
            Ok(gap)
        }
        .await;
        finish(&mut s, r).await
    }

    /// The device's latest detection reports, newest (highest counter) first.
    pub async fn detections(
        &self,
        device_id: &str,
        limit: u32,
    ) -> Result<Vec<DetectionRecord>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                "SELECT device_id, counter, received_at, first_event, events, score_milli, \
                 alarm_milli, crossed, counters, model_digest, gap, report FROM detection_reports \
                 WHERE device_id = $1 ORDER BY counter DESC LIMIT $2",
                vec![device_id.into(), i64::from(limit).into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let small = |i: usize| -> Result<u32, StoreError> {
                    let v = r.int(i)?;
                    u32::try_from(v).map_err(|_| StoreError::Corrupt {
                        what: "detection score",
                        value: v.to_string(),
                    })
                };
                Ok(DetectionRecord {
                    report: NewDetection {
                        device_id: r.text(0)?,
                        counter: to_u64(r.int(1)?, "detection report counter")?,
                        received_at: r.int(2)?,
                        first_event: to_u64(r.int(3)?, "detection report window")?,
                        events: to_u64(r.int(4)?, "detection report window")?,
                        score_milli: small(5)?,
                        alarm_milli: small(6)?,
                        crossed: r.int(7)? != 0,
                        counters: r.text(8)?,
                        model_digest: r.text(9)?,
                        report: r.blob(11)?,
                    },
                    gap: to_u64(r.int(10)?, "detection report gap")?,
                })
            })
            .collect()
    }
}
