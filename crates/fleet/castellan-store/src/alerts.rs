//! Alerts the fleet's analysis raises, and the response policy of each device class. An
//! alert is never deleted: it moves from open to acknowledged to resolved, each step with who
//! took it and when.

use crate::{Store, StoreError, unix_now};

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    /// Raised, nobody has looked.
    Open,
    /// An operator has seen it.
    Acknowledged,
    /// Dealt with.
    Resolved,
}

impl AlertState {
    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<AlertState> {
        match s {
            "open" => Some(AlertState::Open),
            "acknowledged" => Some(AlertState::Acknowledged),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The alert id (`alr-…`).
    pub id: String,
    /// The device it names (`None` for a cohort alert).
    pub device_id: Option<String>,
    /// The cohort's device class.
    pub device_class: String,
    /// The cohort's release.
    pub release: String,
    /// `device` (deviates from its peers) or `cohort` (a release shift).
    pub kind: String,
    /// `medium` or `high`.
    pub severity: String,
    /// Where it stands.
    pub state: AlertState,
    /// One line for people.
    pub summary: String,
    /// The evidence, JSON (signals, values, the peers' values).
    pub evidence: String,
    /// When it was raised (Unix seconds).
    pub raised_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Who changed it last (an operator; `None` while only the analysis touched it).
    pub updated_by: Option<String>,
    /// Healed: the device leaves quarantine at this time unless the alert is raised again.
    pub probation_until: Option<i64>,
}

/// The response policy of a device class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponsePolicy {
    /// The device class.
    pub device_class: String,
    /// Whether a high alert quarantines the device at once.
    pub auto_quarantine: bool,
    /// At most this many automatic quarantines in the class per hour; beyond it, alerts only.
    pub max_quarantines_per_hour: u32,
    /// When it was set.
    pub updated_at: i64,
    /// Who set it.
    pub updated_by: String,
}

/// The columns of an alert, in the order `alert_of` reads them.
macro_rules! alert_columns {
    () => {
        "id, device_id, device_class, release, kind, severity, state, summary, evidence, raised_at, \
         updated_at, updated_by, probation_until"
    };
}

impl Store {
    /// Record a new alert.
    pub async fn raise_alert(&self, a: &Alert) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            concat!(
                "INSERT INTO alerts (",
                alert_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            vec![
                a.id.as_str().into(),
                a.device_id.clone().into(),
                a.device_class.as_str().into(),
                a.release.as_str().into(),
                a.kind.as_str().into(),
                a.severity.as_str().into(),
                a.state.as_str().into(),
                a.summary.as_str().into(),
                a.evidence.as_str().into(),
                a.raised_at.into(),
                a.updated_at.into(),
                a.updated_by.clone().into(),
                a.probation_until.into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Alerts, newest first: those in `state` if given, at most `limit`.
    pub async fn alerts(
        &self,
        state: Option<AlertState>,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        let mut s = self.session().await?;
        let rows = match state {
            Some(st) => {
                s.query(
                    concat!(
                        "SELECT ",
                        alert_columns!(),
                        " FROM alerts WHERE state = $1 ORDER BY raised_at DESC, id LIMIT $2"
                    ),
                    vec![st.as_str().into(), i64::from(limit).into()],
                )
                .await?
            }
            None => {
                s.query(
                    concat!(
                        "SELECT ",
                        alert_columns!(),
                        " FROM alerts ORDER BY raised_at DESC, id LIMIT $1"
                    ),
                    vec![i64::from(limit).into()],
                )
                .await?
            }
        };
        rows.iter().map(alert_of).collect()
    }

    /// How many alerts are in each state (every state, zeros included).
    pub async fn alert_counts(&self) -> Result<Vec<(AlertState, u64)>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query("SELECT state, COUNT(*) FROM alerts GROUP BY state", vec![])
            .await?;
        let mut counts = Vec::new();
        for st in [
            AlertState::Open,
            AlertState::Acknowledged,
            AlertState::Resolved,
        ] {
            let mut n = 0;
            for r in &rows {
                if r.text(0)? == st.as_str() {
                    n = u64::try_from(r.int(1)?).unwrap_or(0);
                }
            }
            counts.push((st, n));
        }
        Ok(counts)
    }

    /// The alert `id`.
    pub async fn alert(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1"),
                vec![id.into()],
            )
            .await?;
        row.as_ref().map(alert_of).transpose()
    }

    /// The device's alert that is not resolved yet, if any (the analysis updates it rather
    /// than raising another).
    pub async fn unresolved_alert_of(&self, device_id: &str) -> Result<Option<Alert>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                concat!(
                    "SELECT ",
                    alert_columns!(),
                    " FROM alerts WHERE device_id = $1 AND state <> 'resolved' \
                     ORDER BY raised_at DESC LIMIT 1"
                ),
                vec![device_id.into()],
            )
            .await?;
        row.as_ref().map(alert_of).transpose()
    }

    /// Move alert `id` to `state` as `by`; false when there is no such alert or it is resolved
    /// already (a resolved alert stays resolved).
    pub async fn set_alert_state(
        &self,
        id: &str,
        state: AlertState,
        by: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE alerts SET state = $1, updated_by = $2, updated_at = $3 \
                 WHERE id = $4 AND state <> 'resolved'",
                vec![state.as_str().into(), by.into(), at.into(), id.into()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Replace an unresolved alert's severity, summary and evidence (a later window saw more);
    /// a device on probation fails it (its probation ends, it stays quarantined).
    pub async fn update_alert_evidence(
        &self,
        id: &str,
        severity: &str,
        summary: &str,
        evidence: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "UPDATE alerts SET severity = $1, summary = $2, evidence = $3, updated_at = $4, \
             probation_until = NULL WHERE id = $5 AND state <> 'resolved'",
            vec![
                severity.into(),
                summary.into(),
                evidence.into(),
                at.into(),
                id.into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Put the device of unresolved alert `id` on probation until `until`.
    pub async fn set_alert_probation(&self, id: &str, until: i64) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "UPDATE alerts SET probation_until = $1, updated_at = $2 WHERE id = $3 AND state <> 'resolved'",
            vec![until.into(), unix_now().into(), id.into()],
        )
        .await?;
        Ok(())
    }

    /// Unresolved device alerts whose probation ended by `now`.
    pub async fn probations_ended(&self, now: i64) -> Result<Vec<Alert>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                concat!(
                    "SELECT ",
                    alert_columns!(),
                    " FROM alerts WHERE state <> 'resolved' AND probation_until IS NOT NULL \
                     AND probation_until <= $1 ORDER BY probation_until"
                ),
                vec![now.into()],
            )
            .await?;
        rows.iter().map(alert_of).collect()
    }

    /// Set the response policy of a class.
    pub async fn set_response_policy(&self, p: &ResponsePolicy) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO response_policies (device_class, auto_quarantine, max_quarantines_per_hour, \
             updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_class) DO UPDATE \
             SET auto_quarantine = $2, max_quarantines_per_hour = $3, updated_at = $4, updated_by = $5",
            vec![
                p.device_class.as_str().into(),
                p.auto_quarantine.into(),
                i64::from(p.max_quarantines_per_hour).into(),
                p.updated_at.into(),
                p.updated_by.as_str().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// The response policy of `class`, if one was set.
    pub async fn response_policy(&self, class: &str) -> Result<Option<ResponsePolicy>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT device_class, auto_quarantine, max_quarantines_per_hour, updated_at, updated_by \
                 FROM response_policies WHERE device_class = $1",
                vec![class.into()],
            )
            .await?;
        row.map(|r| {
            Ok(ResponsePolicy {
                device_class: r.text(0)?,
                auto_quarantine: r.bool(1)?,
                max_quarantines_per_hour: u32::try_from(r.int(2)?).unwrap_or(u32::MAX),
                updated_at: r.int(3)?,
                updated_by: r.text(4)?,
            })
        })
        .transpose()
    }
}

fn alert_of(r: &crate::db::Row) -> Result<Alert, StoreError> {
    let state = r.text(6)?;
    Ok(Alert {
        id: r.text(0)?,
        device_id: r.opt_text(1)?,
        device_class: r.text(2)?,
        release: r.text(3)?,
        kind: r.text(4)?,
        severity: r.text(5)?,
        state: AlertState::parse(&state).ok_or(StoreError::Corrupt {
            what: "alert state",
            value: state,
        })?,
        summary: r.text(7)?,
        evidence: r.text(8)?,
        raised_at: r.int(9)?,
        updated_at: r.int(10)?,
        updated_by: r.opt_text(11)?,
        probation_until: r.opt_int(12)?,
    })
}
