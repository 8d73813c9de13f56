//! Releases and the release trust anchor (schemas 3 and 4).
//!
//! The trust anchor (the release key's public key) is set once: the table holds at most one row
//! and a second [`Store::set_release_key`] fails with [`StoreError::AlreadyExists`]. A release
//! is stored with the image and SUIT envelope exactly as uploaded and what the server verified
//! about them; its sequence number is checked against the class's latest inside the insert's
//! transaction, so two uploads can never both be "the newest".

use crate::db::Row;
use crate::registry::finish;
use crate::{ReferenceMeasurement, Store, StoreError};

/// The release trust anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseKey {
    /// The public key, SEC1 (P-256 uncompressed, 65 bytes).
    pub public_key: Vec<u8>,
    /// When it was set (Unix seconds).
    pub set_at: i64,
    /// Who set it.
    pub set_by: String,
}

/// A verified release to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRelease {
    /// The release id (`<device_class>-<sequence>`).
    pub id: String,
    /// The device class.
    pub device_class: String,
    /// The version given at upload.
    pub version: String,
    /// The manifest's sequence number.
    pub sequence: u64,
    /// The MCUboot image file.
    pub image: Vec<u8>,
    /// The SUIT envelope.
    pub manifest: Vec<u8>,
    /// SHA-256 of the image file, lowercase hex.
    pub image_sha256: String,
    /// What a device running the release attests for it (type, MCUboot digest, signer id,
    /// image version).
    pub measurement: ReferenceMeasurement,
    /// The image's security counter (0 without one).
    pub security_counter: u32,
    /// Release notes.
    pub notes: Option<String>,
    /// When the manifest expires (Unix seconds), if it does.
    pub expires_at: Option<i64>,
    /// Who uploaded it.
    pub created_by: String,
}

/// A stored release, without its image (see [`Store::release_image`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// The release id.
    pub id: String,
    /// The device class.
    pub device_class: String,
    /// The version given at upload.
    pub version: String,
    /// The manifest's sequence number.
    pub sequence: u64,
    /// The SUIT envelope.
    pub manifest: Vec<u8>,
    /// Size of the image file.
    pub image_size: u64,
    /// SHA-256 of the image file, hex.
    pub image_sha256: String,
    /// The measurement a device running it attests.
    pub measurement: ReferenceMeasurement,
    /// The image's security counter.
    pub security_counter: u32,
    /// Release notes.
    pub notes: Option<String>,
    /// When the manifest expires (Unix seconds), if it does.
    pub expires_at: Option<i64>,
    /// When it was uploaded (Unix seconds).
    pub created_at: i64,
    /// Who uploaded it.
    pub created_by: String,
}

impl Release {
    /// The image signer id (hex): the measurement's.
    pub fn signer_id(&self) -> &str {
        &self.measurement.signer_id
    }
}

macro_rules! release_select {
    ($where:literal) => {
        concat!(
            "SELECT id, device_class, version, sequence, manifest, image_size, image_sha256, ",
            "measurement_type, measurement_digest, signer_id, measurement_version, ",
            "security_counter, notes, created_at, created_by, expires_at FROM releases ",
            $where
        )
    };
}

fn release_from_row(r: &Row) -> Result<Release, StoreError> {
    let corrupt = |what: &'static str, v: i64| StoreError::Corrupt {
        what,
        value: v.to_string(),
    };
    let sequence = r.int(3)?;
    let size = r.int(5)?;
    let counter = r.int(11)?;
    Ok(Release {
        id: r.text(0)?,
        device_class: r.text(1)?,
        version: r.text(2)?,
        sequence: u64::try_from(sequence).map_err(|_| corrupt("sequence number", sequence))?,
        manifest: r.blob(4)?,
        image_size: u64::try_from(size).map_err(|_| corrupt("image size", size))?,
        image_sha256: r.text(6)?,
        measurement: ReferenceMeasurement {
            mtype: r.text(7)?,
            digest_hex: r.text(8)?,
            signer_id: r.text(9)?,
            version: r.text(10)?,
        },
        security_counter: u32::try_from(counter)
            .map_err(|_| corrupt("security counter", counter))?,
        notes: r.opt_text(12)?,
        created_at: r.int(13)?,
        created_by: r.text(14)?,
        expires_at: r.opt_int(15)?,
    })
}

fn to_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        value: v.to_string(),
    })
}

impl Store {
    /// Set the release trust anchor. Fails with [`StoreError::AlreadyExists`] when one is set:
    /// it never changes (rotating it needs a new factory flow).
    pub async fn set_release_key(
        &self,
        public_key: &[u8],
        at: i64,
        set_by: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO release_key (id, public_key, set_at, set_by) VALUES (1, $1, $2, $3)",
            vec![public_key.into(), at.into(), set_by.into()],
        )
        .await
        .map_err(|e| match e {
            StoreError::Constraint { .. } => StoreError::AlreadyExists {
                what: "release key",
                key: "release trust anchor".into(),
            },
            other => other,
        })?;
        Ok(())
    }

    /// The release trust anchor, if set.
    pub async fn release_key(&self) -> Result<Option<ReleaseKey>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT public_key, set_at, set_by FROM release_key WHERE id = 1",
                vec![],
            )
            .await?;
        row.map(|r| {
            Ok(ReleaseKey {
                public_key: r.blob(0)?,
                set_at: r.int(1)?,
                set_by: r.text(2)?,
            })
        })
        .transpose()
    }

    /// Record a verified release. Fails with [`StoreError::SequenceNotNewer`] when a release of
    /// the class with the same or a higher sequence number exists (checked under the table's
    /// write lock), and with [`StoreError::AlreadyExists`] when the id is taken.
    pub async fn create_release(&self, r: &NewRelease, at: i64) -> Result<(), StoreError> {
        let sequence = to_i64(r.sequence, "sequence number")?;
        let size = to_i64(r.image.len() as u64, "image size")?;
        let mut s = self.session().await?;
        s.begin().await?;
        let result = async {
            s.lock_table("releases").await?;
            let latest = s
                .query_opt(
                    "SELECT MAX(sequence) FROM releases WHERE device_class = $1",
                    vec![r.device_class.as_str().into()],
                )
                .await?
                .map(|row| row.opt_int(0))
                .transpose()?
                .flatten();
            if let Some(latest) = latest.filter(|l| *l >= sequence) {
                return Err(StoreError::SequenceNotNewer {
                    offered: r.sequence,
                    latest: u64::try_from(latest).unwrap_or(0),
                });
            }
            s.exec(
                "INSERT INTO releases (id, device_class, version, sequence, image, manifest, \
                 image_size, image_sha256, measurement_type, measurement_digest, \
                 measurement_version, signer_id, security_counter, notes, created_at, created_by, \
                 expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                vec![
                    r.id.as_str().into(),
                    r.device_class.as_str().into(),
                    r.version.as_str().into(),
                    sequence.into(),
                    r.image.as_slice().into(),
                    r.manifest.as_slice().into(),
                    size.into(),
                    r.image_sha256.as_str().into(),
                    r.measurement.mtype.as_str().into(),
                    r.measurement.digest_hex.as_str().into(),
                    r.measurement.version.as_str().into(),
                    r.measurement.signer_id.as_str().into(),
                    i64::from(r.security_counter).into(),
                    r.notes.clone().into(),
                    at.into(),
                    r.created_by.as_str().into(),
                    r.expires_at.into(),
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Constraint { .. } => StoreError::AlreadyExists {
                    what: "release",
                    key: r.id.clone(),
                },
                other => other,
            })?;
            Ok(())
        }
        .await;
        finish(&mut s, result).await
    }

    /// The release with this id (without its image).
    pub async fn release(&self, id: &str) -> Result<Option<Release>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(release_select!("WHERE id = $1"), vec![id.into()])
            .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    /// The image file of a release.
    pub async fn release_image(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt("SELECT image FROM releases WHERE id = $1", vec![id.into()])
            .await?;
        row.map(|r| r.blob(0)).transpose()
    }

    /// Every release, by class and sequence number.
    pub async fn list_releases(&self) -> Result<Vec<Release>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(release_select!("ORDER BY device_class, sequence"), vec![])
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// The releases of a class, by sequence number.
    pub async fn releases_of_class(&self, device_class: &str) -> Result<Vec<Release>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                release_select!("WHERE device_class = $1 ORDER BY sequence"),
                vec![device_class.into()],
            )
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// The highest sequence number of the class's releases.
    pub async fn latest_release_sequence(
        &self,
        device_class: &str,
    ) -> Result<Option<u64>, StoreError> {
        let mut s = self.session().await?;
        let v = s
            .query_opt(
                "SELECT MAX(sequence) FROM releases WHERE device_class = $1",
                vec![device_class.into()],
            )
            .await?
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten();
        Ok(v.and_then(|v| u64::try_from(v).ok()))
    }

    /// The highest security counter of a release of the class that some device confirmed (is
    /// `updated` in a campaign): devices of the class refuse any image below it.
    pub async fn max_confirmed_security_counter(
        &self,
        device_class: &str,
    ) -> Result<Option<u32>, StoreError> {
        let mut s = self.session().await?;
        let v = s
            .query_opt(
                "SELECT MAX(r.security_counter) FROM releases r \
                 JOIN campaigns c ON c.release_id = r.id \
                 JOIN campaign_devices d ON d.campaign_id = c.id \
                 WHERE r.device_class = $1 AND d.state = 'updated'",
                vec![device_class.into()],
            )
            .await?
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten();
        Ok(v.and_then(|v| u32::try_from(v).ok()))
    }
}
