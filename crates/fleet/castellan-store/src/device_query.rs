//! The registry as an operator browses it: one page of devices matching a search and filters,
//! sorted on the server, and the fleet's counts by state, class, firmware version and
//! attestation. Both stay one bounded query each whatever the fleet's size (an index walk and
//! `LIMIT`/`OFFSET`, never the whole table in memory).
//!
//! A device's state is derived in SQL, in this precedence: decommissioned (PSA lifecycle
//! 0x6000), revoked (a certificate of it is on the revocation list), quarantined, onboarded,
//! pending (registered at the factory, not onboarded yet).

use crate::db::Value;
use crate::registry::{complete, device_from_row};
use crate::{Device, Store, StoreError};

/// The SQL of a device's state (see the module docs).
const STATE_SQL: &str = "(CASE WHEN lifecycle >= 24576 AND lifecycle < 28672 \
     THEN 'decommissioned' \
     WHEN EXISTS (SELECT 1 FROM revocations r WHERE r.device_id = devices.id) THEN 'revoked' \
     WHEN quarantined = 1 THEN 'quarantined' \
     WHEN onboarded_at IS NOT NULL THEN 'onboarded' ELSE 'pending' END)";

/// A device's state, as the overview counts it and the list filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceState {
    /// Registered at the factory, not onboarded yet.
    Pending,
    /// Onboarded, in normal operation.
    Onboarded,
    /// Restricted to the update channel.
    Quarantined,
    /// A certificate of it is revoked.
    Revoked,
    /// PSA lifecycle decommissioned.
    Decommissioned,
}

impl DeviceState {
    /// Every state, in the overview's order.
    pub const ALL: [DeviceState; 5] = [
        DeviceState::Onboarded,
        DeviceState::Pending,
        DeviceState::Quarantined,
        DeviceState::Revoked,
        DeviceState::Decommissioned,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Pending => "pending",
            DeviceState::Onboarded => "onboarded",
            DeviceState::Quarantined => "quarantined",
            DeviceState::Revoked => "revoked",
            DeviceState::Decommissioned => "decommissioned",
        }
    }

    /// The state with this name.
    pub fn parse(s: &str) -> Option<DeviceState> {
        DeviceState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The column a device page is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceSort {
    /// Device id.
    #[default]
    Id,
    /// Device class, then id.
    Class,
    /// Reported firmware version, then id.
    FirmwareVersion,
    /// Last seen, then id.
    LastSeen,
}

impl DeviceSort {
    /// The sort's name in a query string.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceSort::Id => "id",
            DeviceSort::Class => "class",
            DeviceSort::FirmwareVersion => "firmware",
            DeviceSort::LastSeen => "last_seen",
        }
    }

    /// The sort with this name.
    pub fn parse(s: &str) -> Option<DeviceSort> {
        [
            DeviceSort::Id,
            DeviceSort::Class,
            DeviceSort::FirmwareVersion,
            DeviceSort::LastSeen,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    fn column(self) -> &'static str {
        match self {
            DeviceSort::Id => "id",
            DeviceSort::Class => "device_class",
            DeviceSort::FirmwareVersion => "firmware_version",
            DeviceSort::LastSeen => "last_seen",
        }
    }
}

/// Which devices, in which order, which page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceQuery {
    /// Part of the id or serial (case-insensitive).
    pub search: Option<String>,
    /// Exactly this class.
    pub device_class: Option<String>,
    /// Exactly this firmware version.
    pub firmware_version: Option<String>,
    /// Exactly this state.
    pub state: Option<DeviceState>,
    /// Sort column.
    pub sort: DeviceSort,
    /// Descending order.
    pub descending: bool,
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return (at most [`MAX_PAGE`]).
    pub limit: u32,
}

/// The largest page [`Store::device_page`] returns.
pub const MAX_PAGE: u32 = 200;

/// One page of devices and how many match in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePage {
    /// Devices matching the query.
    pub total: u64,
    /// This page of them.
    pub devices: Vec<Device>,
}

/// The fleet's counts, each as (name, count) sorted by name (states in [`DeviceState::ALL`]
/// order, every state present).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetCounts {
    /// Devices by state.
    pub by_state: Vec<(String, u64)>,
    /// Devices by class.
    pub by_class: Vec<(String, u64)>,
    /// Devices by reported firmware version ("unknown" when none reported).
    pub by_firmware: Vec<(String, u64)>,
    /// Devices by latest attestation result.
    pub by_attestation: Vec<(String, u64)>,
}

/// `s` lowercased and escaped for a `LIKE … ESCAPE '\\'` pattern (its `%` and `_` literal).
pub(crate) fn like_literal(s: &str) -> String {
    s.to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn like_pattern(search: &str) -> String {
    format!("%{}%", like_literal(search))
}

fn where_clause(q: &DeviceQuery) -> (String, Vec<Value>) {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let next = |v: Value, params: &mut Vec<Value>| {
        params.push(v);
        format!("${}", params.len())
    };
    if let Some(s) = q.search.as_deref().filter(|s| !s.is_empty()) {
        let p = next(like_pattern(s).into(), &mut params);
        conds.push(format!(
            "(LOWER(id) LIKE {p} ESCAPE '\\' OR LOWER(serial) LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(c) = &q.device_class {
        let p = next(c.as_str().into(), &mut params);
        conds.push(format!("device_class = {p}"));
    }
    if let Some(v) = &q.firmware_version {
        let p = next(v.as_str().into(), &mut params);
        conds.push(format!("firmware_version = {p}"));
    }
    if let Some(st) = q.state {
        let p = next(st.as_str().into(), &mut params);
        conds.push(format!("{STATE_SQL} = {p}"));
    }
    if conds.is_empty() {
        (String::new(), params)
    } else {
        (format!("WHERE {}", conds.join(" AND ")), params)
    }
}

fn count_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// One page of the devices matching `q`, and how many match in all.
    pub async fn device_page(&self, q: &DeviceQuery) -> Result<DevicePage, StoreError> {
        let (filter, params) = where_clause(q);
        let mut s = self.session().await?;
        let total = s
            .query_opt(
                format!("SELECT COUNT(*) FROM devices {filter}"),
                params.clone(),
            )
            .await?
            .map(|r| r.int(0))
            .transpose()?
            .map_or(0, count_of);
        let dir = if q.descending { "DESC" } else { "ASC" };
        let limit = i64::from(q.limit.clamp(1, MAX_PAGE));
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let n = params.len();
        let sql = format!(
            "SELECT id, serial, device_class, idevid_der, idevid_serial, ldevid_serial, \
             lifecycle, attestation_status, attestation_reason, onboarded_at, last_seen, \
             quarantined, firmware_version, created_at, ldevid_sha256 FROM devices {filter} \
             ORDER BY {col} {dir}, id {dir} LIMIT ${l} OFFSET ${o}",
            col = q.sort.column(),
            l = n + 1,
            o = n + 2,
        );
        let mut page_params = params;
        page_params.push(limit.into());
        page_params.push(offset.into());
        let rows = s.query(sql, page_params).await?;
        let mut devices = Vec::with_capacity(rows.len());
        for r in &rows {
            devices.push(complete(&mut s, device_from_row(r)?).await?);
        }
        Ok(DevicePage { total, devices })
    }

    /// The fleet's counts by state, class, firmware version and attestation result.
    pub async fn fleet_counts(&self) -> Result<FleetCounts, StoreError> {
        let mut s = self.session().await?;
        let mut group = async |expr: &str| -> Result<Vec<(String, u64)>, StoreError> {
            let rows = s
                .query(
                    format!(
                        "SELECT k, COUNT(*) FROM (SELECT {expr} AS k FROM devices) g \
                         GROUP BY k ORDER BY k"
                    ),
                    vec![],
                )
                .await?;
            rows.iter()
                .map(|r| Ok((r.text(0)?, count_of(r.int(1)?))))
                .collect()
        };
        let states = group(STATE_SQL).await?;
        let by_state = DeviceState::ALL
            .iter()
            .map(|st| {
                let n = states
                    .iter()
                    .find(|(k, _)| k == st.as_str())
                    .map_or(0, |(_, n)| *n);
                (st.as_str().to_string(), n)
            })
            .collect();
        Ok(FleetCounts {
            by_state,
            by_class: group("device_class").await?,
            by_firmware: group("COALESCE(firmware_version, 'unknown')").await?,
            by_attestation: group("attestation_status").await?,
        })
    }
}
