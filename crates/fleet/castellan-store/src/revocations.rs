//! The revocation list: revoked certificate serials (the broker's in-memory set is loaded from
//! it, and the database is the authoritative answer).

use crate::{Store, StoreError};

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The certificate serial number, lowercase hex without leading zeros.
    pub serial: String,
    /// Which CA issued it ("manufacturer" or "operational").
    pub issuer: String,
    /// RFC 5280 CRLReason code.
    pub reason: u8,
    /// When it was revoked (Unix seconds).
    pub revoked_at: i64,
    /// The device it belonged to, if any.
    pub device_id: Option<String>,
}

impl Store {
    /// Add a certificate to the revocation list. Returns false when it was already revoked
    /// (the first revocation's time and reason stand).
    pub async fn revoke(&self, r: &Revocation) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "INSERT INTO revocations (serial, issuer, reason, revoked_at, device_id) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (serial) DO NOTHING",
                vec![
                    normalize_serial(&r.serial).into(),
                    r.issuer.as_str().into(),
                    i64::from(r.reason).into(),
                    r.revoked_at.into(),
                    r.device_id.clone().into(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Every revoked certificate, oldest first.
    pub async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                "SELECT serial, issuer, reason, revoked_at, device_id FROM revocations ORDER BY revoked_at, serial",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Revocation {
                    serial: r.text(0)?,
                    issuer: r.text(1)?,
                    reason: u8::try_from(r.int(2)?).map_err(|_| StoreError::Corrupt {
                        what: "revocation reason",
                        value: r.text(0).unwrap_or_default(),
                    })?,
                    revoked_at: r.int(3)?,
                    device_id: r.opt_text(4)?,
                })
            })
            .collect()
    }

    /// Whether the certificate with this serial (hex) is revoked, asking the database. The
    /// broker's connect-time check uses the in-memory `castellan_pki::RevocationSet` loaded
    /// from [`Store::revocations`]; this is the authoritative answer.
    pub async fn is_revoked(&self, serial_hex: &str) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT serial FROM revocations WHERE serial = $1",
                vec![normalize_serial(serial_hex).into()],
            )
            .await?;
        Ok(row.is_some())
    }
}

/// Lowercase hex without leading zero bytes, the one form serials are stored in.
pub(crate) fn normalize_serial(serial: &str) -> String {
    let lower = serial.trim().to_ascii_lowercase();
    let trimmed = lower.trim_start_matches("00");
    if trimmed.is_empty() {
        "00".into()
    } else {
        trimmed.to_string()
    }
}
