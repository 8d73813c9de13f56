//! Revocation: reasons (RFC 5280 §5.3.1), revoked-certificate entries as the store keeps them,
//! and [`RevocationSet`], the in-memory set the broker's authentication hook asks at connect
//! time (a hash lookup under a read lock, no I/O).
//!
//! The signed X.509 CRL is produced by [`crate::Pki::crl`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use castellan_x509::strip_leading_zeros;

/// Why a certificate was revoked (RFC 5280 CRLReason; the numeric values are the standard's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    /// No reason given.
    Unspecified = 0,
    /// The device's private key is (suspected to be) compromised.
    KeyCompromise = 1,
    /// A CA key is compromised.
    CaCompromise = 2,
    /// The device changed owner or role.
    AffiliationChanged = 3,
    /// Replaced by a newer certificate (for example a renewed LDevID).
    Superseded = 4,
    /// The device was decommissioned.
    CessationOfOperation = 5,
    /// Temporarily suspended (quarantine).
    CertificateHold = 6,
    /// Privilege withdrawn by an operator.
    PrivilegeWithdrawn = 9,
}

impl RevocationReason {
    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason for an RFC 5280 code; unknown codes are refused.
    pub fn from_code(code: u8) -> Option<RevocationReason> {
        Some(match code {
            0 => RevocationReason::Unspecified,
            1 => RevocationReason::KeyCompromise,
            2 => RevocationReason::CaCompromise,
            3 => RevocationReason::AffiliationChanged,
            4 => RevocationReason::Superseded,
            5 => RevocationReason::CessationOfOperation,
            6 => RevocationReason::CertificateHold,
            9 => RevocationReason::PrivilegeWithdrawn,
            _ => return None,
        })
    }

    /// A short name (RFC 5280 spelling), for logs and the API.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    pub(crate) fn to_rcgen(self) -> rcgen::RevocationReason {
        match self {
            RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            RevocationReason::CaCompromise => rcgen::RevocationReason::CaCompromise,
            RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            RevocationReason::CertificateHold => rcgen::RevocationReason::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => rcgen::RevocationReason::PrivilegeWithdrawn,
        }
    }
}

impl core::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCert {
    /// The certificate's serial number, big-endian magnitude (leading zeros are ignored).
    pub serial: Vec<u8>,
    /// Why it was revoked.
    pub reason: RevocationReason,
    /// When, Unix seconds.
    pub revoked_at: i64,
}

impl RevokedCert {
    /// An entry from a lowercase or uppercase hex serial (the registry's form).
    pub fn from_hex(serial_hex: &str, reason: RevocationReason, revoked_at: i64) -> Option<Self> {
        let serial = hex::decode(serial_hex).ok()?;
        Some(RevokedCert {
            serial: strip_leading_zeros(&serial).to_vec(),
            reason,
            revoked_at,
        })
    }
}

/// The set of revoked serial numbers, shared between the API (which adds to it) and the broker
/// (which asks it on every connection). Cloning shares the same set.
#[derive(Clone, Debug, Default)]
pub struct RevocationSet {
    inner: Arc<RwLock<HashMap<Vec<u8>, RevokedCert>>>,
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> RevocationSet {
        RevocationSet::default()
    }

    /// A set holding `entries` (for example everything the store has).
    pub fn from_entries(entries: impl IntoIterator<Item = RevokedCert>) -> RevocationSet {
        let set = RevocationSet::new();
        set.replace_all(entries);
        set
    }

    /// Add one entry; an existing entry for the same serial is kept (the first revocation
    /// time stands).
    pub fn insert(&self, entry: RevokedCert) {
        let key = strip_leading_zeros(&entry.serial).to_vec();
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_insert(entry);
    }

    /// Replace the whole set (a periodic reload from the store, so that revocations made by
    /// another service instance are seen).
    pub fn replace_all(&self, entries: impl IntoIterator<Item = RevokedCert>) {
        let fresh: HashMap<Vec<u8>, RevokedCert> = entries
            .into_iter()
            .map(|e| (strip_leading_zeros(&e.serial).to_vec(), e))
            .collect();
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }

    /// Whether the certificate with this serial (big-endian, leading zeros ignored) is revoked.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        let key = strip_leading_zeros(serial);
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key)
    }

    /// The entry for a serial, if revoked.
    pub fn get(&self, serial: &[u8]) -> Option<RevokedCert> {
        let key = strip_leading_zeros(serial);
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// All entries, sorted by revocation time then serial (the CRL's order).
    pub fn entries(&self) -> Vec<RevokedCert> {
        let mut v: Vec<RevokedCert> = self
            .inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            a.revoked_at
                .cmp(&b.revoked_at)
                .then_with(|| a.serial.cmp(&b.serial))
        });
        v
    }

    /// How many certificates are revoked.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
