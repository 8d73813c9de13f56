//! A TUF metadata file being built or signed: `{"signed": …, "signatures": […]}`.
//!
//! Signatures cover the canonical JSON of `signed` (sigstore-tuf's encoder, the
//! securesystemslib form). Checking them is the client crate's job too
//! ([`sigstore_tuf::Metadata::verify_threshold`]), so the repository refuses to publish exactly
//! what a device would refuse.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use sigstore_tuf::{Key, Metadata, RoleKeys, Root, Snapshot, Targets, Timestamp};

use super::keys::RoleSigner;
use crate::error::TufError;

/// A metadata file: the role payload and its signatures.
#[derive(Debug, Clone)]
pub struct Envelope {
    signed: Value,
    signatures: Vec<Value>,
}

impl Envelope {
    /// An unsigned envelope over a role payload (one of sigstore-tuf's role types).
    pub fn unsigned(role: &impl Serialize) -> Result<Self, TufError> {
        let mut signed = serde_json::to_value(role)?;
        drop_nulls(&mut signed);
        Ok(Self {
            signed,
            signatures: Vec::new(),
        })
    }

    /// Parse a metadata file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TufError> {
        let mut value: Value = serde_json::from_slice(bytes)?;
        let signed = value
            .get_mut("signed")
            .map(Value::take)
            .ok_or_else(|| TufError::Malformed("no `signed` object".into()))?;
        let signatures = match value.get_mut("signatures").map(Value::take) {
            Some(Value::Array(list)) => list,
            _ => return Err(TufError::Malformed("no `signatures` list".into())),
        };
        Ok(Self { signed, signatures })
    }

    /// The file's bytes (indented JSON: reviewers read what they sign).
    pub fn to_bytes(&self) -> Result<Vec<u8>, TufError> {
        let mut file = Map::new();
        file.insert("signatures".into(), Value::Array(self.signatures.clone()));
        file.insert("signed".into(), self.signed.clone());
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(file))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The role type (`root`, `targets`, `snapshot`, `timestamp`).
    pub fn role_type(&self) -> Result<&str, TufError> {
        self.signed
            .get("_type")
            .and_then(Value::as_str)
            .ok_or_else(|| TufError::Malformed("no `_type`".into()))
    }

    /// The role's version.
    pub fn version(&self) -> Result<u64, TufError> {
        self.signed
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| TufError::Malformed("no `version`".into()))
    }

    /// The payload as one of sigstore-tuf's role types.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, TufError> {
        Ok(serde_json::from_value(self.signed.clone())?)
    }

    /// The key ids that signed (valid or not).
    pub fn signers(&self) -> Vec<String> {
        self.signatures
            .iter()
            .filter_map(|s| s.get("keyid").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// Add `signer`'s signature, replacing an earlier one by the same key.
    pub fn sign(&mut self, signer: &RoleSigner) -> Result<(), TufError> {
        let canonical = sigstore_tuf::canonical_json::to_canonical_bytes(&self.signed)
            .map_err(|e| TufError::Malformed(e.to_string()))?;
        let sig = signer.sign(&canonical)?;
        self.signatures
            .retain(|s| s.get("keyid").and_then(Value::as_str) != Some(signer.keyid()));
        self.signatures
            .push(serde_json::json!({"keyid": signer.keyid(), "sig": sig}));
        Ok(())
    }

    /// Check the signatures against `keys` and `role` (threshold of distinct valid
    /// signatures), as the device's client does.
    pub fn verify(
        &self,
        keys: &BTreeMap<String, Key>,
        role: &RoleKeys,
        name: &str,
    ) -> Result<(), TufError> {
        let bytes = self.to_bytes()?;
        let result = match self.role_type()? {
            "root" => Metadata::<Root>::from_slice(&bytes)?.verify_threshold(keys, role, name),
            "targets" => {
                Metadata::<Targets>::from_slice(&bytes)?.verify_threshold(keys, role, name)
            }
            "snapshot" => {
                Metadata::<Snapshot>::from_slice(&bytes)?.verify_threshold(keys, role, name)
            }
            "timestamp" => {
                Metadata::<Timestamp>::from_slice(&bytes)?.verify_threshold(keys, role, name)
            }
            other => return Err(TufError::Malformed(format!("unknown role type {other:?}"))),
        };
        result.map_err(|e| match e {
            sigstore_tuf::Error::ThresholdNotMet {
                found, threshold, ..
            } => TufError::ThresholdNotMet {
                role: name.to_owned(),
                have: found,
                need: threshold,
            },
            other => other.into(),
        })
    }
}

/// TUF has no `null` values: an absent optional field is left out.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(list) => list.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
