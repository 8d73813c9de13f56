//! The device registry: identity, class, tags, certificates, lifecycle, attestation status,
//! reference measurements, quarantine, firmware. The attestation key, telemetry and the
//! revocation list have their own files.

use crate::db::{Row, Session, Value};
use crate::revocations::normalize_serial;
use crate::{Store, StoreError};

/// Result of the latest attestation appraisal of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttestationStatus {
    /// Never appraised.
    Unknown,
    /// The last token passed appraisal.
    Passed,
    /// The last token failed appraisal (the reason is stored beside it).
    Failed,
}

impl AttestationStatus {
    fn as_str(self) -> &'static str {
        match self {
            AttestationStatus::Unknown => "unknown",
            AttestationStatus::Passed => "passed",
            AttestationStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "unknown" => Ok(AttestationStatus::Unknown),
            "passed" => Ok(AttestationStatus::Passed),
            "failed" => Ok(AttestationStatus::Failed),
            _ => Err(StoreError::Corrupt {
                what: "attestation status",
                value: s.into(),
            }),
        }
    }
}

/// A reference value for one measured boot component, as recorded at the factory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceMeasurement {
    /// Measurement type (for example "BL", "SPE", "NSPE").
    pub mtype: String,
    /// The expected digest, lowercase hex.
    pub digest_hex: String,
    /// The signer id (hash of the signing key), lowercase hex.
    pub signer_id: String,
    /// The component version.
    pub version: String,
}

/// What the factory records for a new device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDevice {
    /// The device id (also the LDevID CN and the MQTT client id).
    pub id: String,
    /// The device serial (IDevID subject serialNumber).
    pub serial: String,
    /// The device class.
    pub device_class: String,
    /// Free-form tags (cohorts, sites).
    pub tags: Vec<String>,
    /// The IDevID certificate, DER.
    pub idevid_der: Vec<u8>,
    /// The IDevID's serial number, lowercase hex.
    pub idevid_serial: String,
    /// PSA security lifecycle (for example 0x3000 secured).
    pub lifecycle: u32,
    /// Reference measurements of the firmware it ships with.
    pub reference_measurements: Vec<ReferenceMeasurement>,
    /// The firmware version it ships with.
    pub firmware_version: Option<String>,
}

/// A device as the registry knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The device id.
    pub id: String,
    /// The device serial.
    pub serial: String,
    /// The device class.
    pub device_class: String,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// The IDevID certificate, DER.
    pub idevid_der: Vec<u8>,
    /// The IDevID's serial number, hex.
    pub idevid_serial: String,
    /// The current LDevID's serial number, hex (after onboarding).
    pub ldevid_serial: Option<String>,
    /// SHA-256 of the current LDevID's DER, lowercase hex: the one certificate a session with
    /// the device's operational identity may present (`None` before onboarding, or for a device
    /// onboarded before the registry recorded it).
    pub ldevid_sha256: Option<String>,
    /// PSA security lifecycle.
    pub lifecycle: u32,
    /// Latest attestation result.
    pub attestation: AttestationStatus,
    /// Why the latest appraisal failed (or a note on success).
    pub attestation_reason: Option<String>,
    /// Reference measurements, in the order recorded.
    pub reference_measurements: Vec<ReferenceMeasurement>,
    /// When the device was onboarded (Unix seconds).
    pub onboarded_at: Option<i64>,
    /// When the device was last seen (Unix seconds).
    pub last_seen: Option<i64>,
    /// Whether the device is quarantined (update channel only).
    pub quarantined: bool,
    /// The firmware version it runs.
    pub firmware_version: Option<String>,
    /// When the factory registered it (Unix seconds).
    pub created_at: i64,
}

macro_rules! device_select {
    ($where:literal) => {
        concat!(
            "SELECT id, serial, device_class, idevid_der, idevid_serial, ldevid_serial, lifecycle, ",
            "attestation_status, attestation_reason, onboarded_at, last_seen, quarantined, ",
            "firmware_version, created_at, ldevid_sha256 FROM devices ",
            $where
        )
    };
}

pub(crate) fn device_from_row(r: &Row) -> Result<Device, StoreError> {
    Ok(Device {
        id: r.text(0)?,
        serial: r.text(1)?,
        device_class: r.text(2)?,
        tags: Vec::new(),
        idevid_der: r.blob(3)?,
        idevid_serial: r.text(4)?,
        ldevid_serial: r.opt_text(5)?,
        lifecycle: u32::try_from(r.int(6)?).map_err(|_| StoreError::Corrupt {
            what: "lifecycle",
            value: r.int(6).unwrap_or(-1).to_string(),
        })?,
        attestation: AttestationStatus::parse(&r.text(7)?)?,
        attestation_reason: r.opt_text(8)?,
        reference_measurements: Vec::new(),
        onboarded_at: r.opt_int(9)?,
        last_seen: r.opt_int(10)?,
        quarantined: r.bool(11)?,
        firmware_version: r.opt_text(12)?,
        created_at: r.int(13)?,
        ldevid_sha256: r.opt_text(14)?,
    })
}

impl Store {
    /// Record a device provisioned in the factory. Fails with [`StoreError::AlreadyExists`]
    /// when its id or serial is taken.
    pub async fn register_device(&self, d: &NewDevice, at: i64) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = insert_device(&mut s, d, at).await;
        finish(&mut s, r).await.map_err(|e| match e {
            StoreError::Constraint { .. } => StoreError::AlreadyExists {
                what: "device",
                key: d.id.clone(),
            },
            other => other,
        })
    }

    /// The device with this id.
    pub async fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(device_select!("WHERE id = $1"), vec![id.into()])
            .await?;
        match row {
            Some(r) => Ok(Some(complete(&mut s, device_from_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// The device with this serial.
    pub async fn device_by_serial(&self, serial: &str) -> Result<Option<Device>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(device_select!("WHERE serial = $1"), vec![serial.into()])
            .await?;
        match row {
            Some(r) => Ok(Some(complete(&mut s, device_from_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// Every device, ordered by id.
    pub async fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        let mut s = self.session().await?;
        let rows = s.query(device_select!("ORDER BY id"), vec![]).await?;
        let mut devices: Vec<Device> =
            rows.iter().map(device_from_row).collect::<Result<_, _>>()?;
        let tags = s
            .query(
                "SELECT device_id, tag FROM device_tags ORDER BY device_id, tag",
                vec![],
            )
            .await?;
        let refs = s
            .query(
                "SELECT device_id, mtype, digest_hex, signer_id, version FROM reference_measurements \
                 ORDER BY device_id, idx",
                vec![],
            )
            .await?;
        let mut by_id: std::collections::HashMap<String, usize> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        for r in &tags {
            if let Some(d) = by_id.get_mut(&r.text(0)?).and_then(|i| devices.get_mut(*i)) {
                d.tags.push(r.text(1)?);
            }
        }
        for r in &refs {
            if let Some(d) = by_id.get_mut(&r.text(0)?).and_then(|i| devices.get_mut(*i)) {
                d.reference_measurements.push(measurement_from_row(r, 1)?);
            }
        }
        Ok(devices)
    }

    /// Set the PSA lifecycle state.
    pub async fn set_lifecycle(&self, id: &str, lifecycle: u32) -> Result<(), StoreError> {
        self.update_device(
            "UPDATE devices SET lifecycle = $2 WHERE id = $1",
            id,
            i64::from(lifecycle).into(),
        )
        .await
    }

    /// Record a successful onboarding: the new LDevID's serial, the SHA-256 of its DER (what
    /// binds the device's sessions to it, lowercase hex) and the time.
    pub async fn record_onboarding(
        &self,
        id: &str,
        ldevid_serial: &str,
        ldevid_sha256: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE devices SET ldevid_serial = $2, ldevid_sha256 = $3, onboarded_at = $4, \
                 last_seen = $4 WHERE id = $1",
                vec![
                    id.into(),
                    ldevid_serial.into(),
                    ldevid_sha256.to_ascii_lowercase().into(),
                    at.into(),
                ],
            )
            .await?;
        found(n, id)
    }

    /// Record the result of an attestation appraisal.
    pub async fn set_attestation(
        &self,
        id: &str,
        status: AttestationStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE devices SET attestation_status = $2, attestation_reason = $3 WHERE id = $1",
                vec![id.into(), status.as_str().into(), reason.into()],
            )
            .await?;
        found(n, id)
    }

    /// Quarantine a device or release it.
    pub async fn set_quarantined(&self, id: &str, quarantined: bool) -> Result<(), StoreError> {
        self.update_device(
            "UPDATE devices SET quarantined = $2 WHERE id = $1",
            id,
            quarantined.into(),
        )
        .await
    }

    /// Record that the device was seen (connection, telemetry).
    pub async fn touch_device(&self, id: &str, at: i64) -> Result<(), StoreError> {
        self.update_device(
            "UPDATE devices SET last_seen = $2 WHERE id = $1",
            id,
            at.into(),
        )
        .await
    }

    /// Record the firmware version the device runs.
    pub async fn set_firmware_version(&self, id: &str, version: &str) -> Result<(), StoreError> {
        self.update_device(
            "UPDATE devices SET firmware_version = $2 WHERE id = $1",
            id,
            version.into(),
        )
        .await
    }

    /// Replace the device's reference measurements (a new release it should run).
    pub async fn set_reference_measurements(
        &self,
        id: &str,
        refs: &[ReferenceMeasurement],
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            let n = s
                .exec("UPDATE devices SET id = id WHERE id = $1", vec![id.into()])
                .await?;
            found(n, id)?;
            s.exec(
                "DELETE FROM reference_measurements WHERE device_id = $1",
                vec![id.into()],
            )
            .await?;
            insert_measurements(&mut s, id, refs).await
        }
        .await;
        finish(&mut s, r).await
    }

    /// Replace the device's tags.
    pub async fn set_tags(&self, id: &str, tags: &[String]) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            let n = s
                .exec("UPDATE devices SET id = id WHERE id = $1", vec![id.into()])
                .await?;
            found(n, id)?;
            s.exec(
                "DELETE FROM device_tags WHERE device_id = $1",
                vec![id.into()],
            )
            .await?;
            insert_tags(&mut s, id, tags).await
        }
        .await;
        finish(&mut s, r).await
    }

    pub(crate) async fn update_device(
        &self,
        sql: &'static str,
        id: &str,
        value: Value,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        let n = s.exec(sql, vec![id.into(), value]).await?;
        found(n, id)
    }
}

fn found(n: u64, id: &str) -> Result<(), StoreError> {
    if n == 0 {
        Err(StoreError::NotFound {
            what: "device",
            key: id.into(),
        })
    } else {
        Ok(())
    }
}

/// Commit when `r` is Ok, roll back otherwise.
pub(crate) async fn finish<T>(s: &mut Session, r: Result<T, StoreError>) -> Result<T, StoreError> {
    match r {
        Ok(v) => {
            s.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = s.rollback().await;
            Err(e)
        }
    }
}

pub(crate) async fn insert_device(
    s: &mut Session,
    d: &NewDevice,
    at: i64,
) -> Result<(), StoreError> {
    s.exec(
        "INSERT INTO devices (id, serial, device_class, idevid_der, idevid_serial, ldevid_serial, lifecycle, \
         attestation_status, attestation_reason, onboarded_at, last_seen, quarantined, firmware_version, created_at) \
         VALUES ($1, $2, $3, $4, $5, NULL, $6, 'unknown', NULL, NULL, NULL, 0, $7, $8)",
        vec![
            d.id.as_str().into(),
            d.serial.as_str().into(),
            d.device_class.as_str().into(),
            d.idevid_der.as_slice().into(),
            normalize_serial(&d.idevid_serial).into(),
            i64::from(d.lifecycle).into(),
            d.firmware_version.clone().into(),
            at.into(),
        ],
    )
    .await?;
    insert_tags(s, &d.id, &d.tags).await?;
    insert_measurements(s, &d.id, &d.reference_measurements).await
}

async fn insert_tags(s: &mut Session, id: &str, tags: &[String]) -> Result<(), StoreError> {
    for tag in tags {
        s.exec(
            "INSERT INTO device_tags (device_id, tag) VALUES ($1, $2) ON CONFLICT (device_id, tag) DO NOTHING",
            vec![id.into(), tag.as_str().into()],
        )
        .await?;
    }
    Ok(())
}

async fn insert_measurements(
    s: &mut Session,
    id: &str,
    refs: &[ReferenceMeasurement],
) -> Result<(), StoreError> {
    for (i, m) in refs.iter().enumerate() {
        s.exec(
            "INSERT INTO reference_measurements (device_id, idx, mtype, digest_hex, signer_id, version) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                id.into(),
                i64::try_from(i).unwrap_or(i64::MAX).into(),
                m.mtype.as_str().into(),
                m.digest_hex.as_str().into(),
                m.signer_id.as_str().into(),
                m.version.as_str().into(),
            ],
        )
        .await?;
    }
    Ok(())
}

fn measurement_from_row(r: &Row, first: usize) -> Result<ReferenceMeasurement, StoreError> {
    Ok(ReferenceMeasurement {
        mtype: r.text(first)?,
        digest_hex: r.text(first + 1)?,
        signer_id: r.text(first + 2)?,
        version: r.text(first + 3)?,
    })
}

/// Fill in a device's tags and reference measurements.
pub(crate) async fn complete(s: &mut Session, mut d: Device) -> Result<Device, StoreError> {
    let tags = s
        .query(
            "SELECT tag FROM device_tags WHERE device_id = $1 ORDER BY tag",
            vec![d.id.as_str().into()],
        )
        .await?;
    d.tags = tags.iter().map(|r| r.text(0)).collect::<Result<_, _>>()?;
    let refs = s
        .query(
            "SELECT mtype, digest_hex, signer_id, version FROM reference_measurements WHERE device_id = $1 ORDER BY idx",
            vec![d.id.as_str().into()],
        )
        .await?;
    d.reference_measurements = refs
        .iter()
        .map(|r| measurement_from_row(r, 0))
        .collect::<Result<_, _>>()?;
    Ok(d)
}
