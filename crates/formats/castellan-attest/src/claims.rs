//! Owned, decoded token claims (`std`): what the verifier returns and what `castellan token show`
//! prints, as text ([`Display`](core::fmt::Display)) or JSON (serde; byte strings as hex).

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Lifecycle, Profile};

/// The claims of a decoded PSA token, whatever its profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The token's profile.
    #[serde(with = "profile_text")]
    pub profile: Profile,
    /// Partition id of the caller that asked for the token (negative: non-secure world).
    pub client_id: i32,
    /// Raw PSA security lifecycle (see [`Claims::lifecycle_state`]).
    pub lifecycle: u16,
    /// Immutable PSA RoT implementation id (32 bytes).
    #[serde(with = "crate::hex_serde::bytes")]
    pub implementation_id: Vec<u8>,
    /// Instance id (UEID, 33 bytes starting `0x01`).
    #[serde(with = "crate::hex_serde::bytes")]
    pub instance_id: Vec<u8>,
    /// The challenge the token answers.
    #[serde(with = "crate::hex_serde::bytes")]
    pub nonce: Vec<u8>,
    /// Boot seed, when present.
    #[serde(
        with = "crate::hex_serde::opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub boot_seed: Option<Vec<u8>>,
    /// PSA Certified reference, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certification_reference: Option<String>,
    /// Verification service indicator, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_service: Option<String>,
    /// Measured software components (empty only for legacy "no measurements" tokens).
    pub software_components: Vec<Component>,
}

/// One measured software component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// Role name such as `"PRoT"`, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement_type: Option<String>,
    /// Hash of the component image.
    #[serde(with = "crate::hex_serde::bytes")]
    pub measurement_value: Vec<u8>,
    /// Version text, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Hash of the key that signed the component.
    #[serde(with = "crate::hex_serde::bytes")]
    pub signer_id: Vec<u8>,
    /// Hash algorithm name, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement_desc: Option<String>,
}

impl Claims {
    /// The lifecycle state the raw value belongs to (`None`: outside the PSA ranges).
    pub fn lifecycle_state(&self) -> Option<Lifecycle> {
        Lifecycle::from_raw(self.lifecycle)
    }
}

impl Component {
    /// The name used in messages: the measurement type, or `#index` without one.
    pub fn name(&self, index: usize) -> crate::ShortText {
        match &self.measurement_type {
            Some(t) => crate::ShortText::new(t),
            None => crate::ShortText::index(index),
        }
    }
}

impl fmt::Display for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "profile:                 {}", self.profile)?;
        let world = if self.client_id < 0 {
            "non-secure"
        } else {
            "secure"
        };
        writeln!(
            f,
            "client id:               {} ({world} caller)",
            self.client_id
        )?;
        writeln!(
            f,
            "security lifecycle:      {:#06x} ({})",
            self.lifecycle,
            Lifecycle::name_of(self.lifecycle)
        )?;
        writeln!(
            f,
            "implementation id:       {}",
            hex::encode(&self.implementation_id)
        )?;
        writeln!(
            f,
            "instance id:             {}",
            hex::encode(&self.instance_id)
        )?;
        writeln!(f, "nonce:                   {}", hex::encode(&self.nonce))?;
        if let Some(seed) = &self.boot_seed {
            writeln!(f, "boot seed:               {}", hex::encode(seed))?;
        }
        if let Some(r) = &self.certification_reference {
            writeln!(f, "certification reference: {r}")?;
        }
        if let Some(v) = &self.verification_service {
            writeln!(f, "verification service:    {v}")?;
        }
        write!(
            f,
            "software components:     {}",
            self.software_components.len()
        )?;
        for (i, c) in self.software_components.iter().enumerate() {
            write!(f, "\n  [{i}] {}", c.name(i))?;
            if let Some(v) = &c.version {
                write!(f, "  version {v}")?;
            }
            if let Some(d) = &c.measurement_desc {
                write!(f, "  ({d})")?;
            }
            write!(
                f,
                "\n      measurement: {}",
                hex::encode(&c.measurement_value)
            )?;
            write!(f, "\n      signer id:   {}", hex::encode(&c.signer_id))?;
        }
        Ok(())
    }
}

/// Serde for [`Profile`] as its text (`"tag:psacertified.org,2023:psa#tfm"`).
mod profile_text {
    use super::*;

    pub(super) fn serialize<S: Serializer>(p: &Profile, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Profile, D::Error> {
        let text = String::deserialize(d)?;
        Profile::from_text(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown PSA profile {text:?}")))
    }
}
