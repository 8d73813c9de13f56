//! Claim keys, profiles and security lifecycle states of the PSA attestation token
//! (RFC 9783 and the two legacy profiles a verifier still meets in the field).

use core::fmt;

/// Claim keys of the RFC 9783 profile (`tag:psacertified.org,2023:psa#tfm`).
pub mod claim {
    /// EAT `eat_nonce`: the verifier's challenge (32, 48 or 64 bytes).
    pub const NONCE: i64 = 10;
    /// EAT `ueid`: instance id, `0x01` (RAND type) followed by 32 bytes.
    pub const INSTANCE_ID: i64 = 256;
    /// EAT `eat_profile`: the profile text.
    pub const PROFILE: i64 = 265;
    /// EAT `bootseed`: 8 to 32 bytes, fresh at each boot (RFC 9783; 2.0.0 used 2397).
    pub const BOOT_SEED: i64 = 268;
    /// `psa-client-id`: the caller's partition id (negative = non-secure caller).
    pub const CLIENT_ID: i64 = 2394;
    /// `psa-security-lifecycle`.
    pub const LIFECYCLE: i64 = 2395;
    /// `psa-implementation-id`: 32 bytes naming the immutable PSA RoT implementation.
    pub const IMPLEMENTATION_ID: i64 = 2396;
    /// `psa-boot-seed` as used by the legacy `http://arm.com/psa/2.0.0` profile.
    pub const BOOT_SEED_V2: i64 = 2397;
    /// `psa-certification-reference`: EAN-13+5 text.
    pub const CERTIFICATION_REFERENCE: i64 = 2398;
    /// `psa-software-components`: array of component maps.
    pub const SOFTWARE_COMPONENTS: i64 = 2399;
    /// `psa-verification-service-indicator`: text (usually a URL).
    pub const VERIFICATION_SERVICE: i64 = 2400;
}

/// Keys inside one software-component map (same in every profile).
pub mod component {
    /// `measurement-type`: text, e.g. `"PRoT"`, `"BL"`, `"SPE"`.
    pub const MEASUREMENT_TYPE: i64 = 1;
    /// `measurement-value`: the hash of the component (32, 48 or 64 bytes).
    pub const MEASUREMENT_VALUE: i64 = 2;
    /// `version`: text, e.g. `"1.3.5"`.
    pub const VERSION: i64 = 4;
    /// `signer-id`: hash of the key that signed the component (32, 48 or 64 bytes).
    pub const SIGNER_ID: i64 = 5;
    /// `measurement-desc`: the hash algorithm's textual name, e.g. `"sha-256"`.
    pub const MEASUREMENT_DESC: i64 = 6;
}

/// Claim keys of the legacy `PSA_IOT_PROFILE_1` profile (Arm private range).
pub mod claim_p1 {
    /// `arm_psa_profile_id`.
    pub const PROFILE: i64 = -75000;
    /// `arm_psa_partition_id` (client id).
    pub const CLIENT_ID: i64 = -75001;
    /// `arm_psa_security_lifecycle`.
    pub const LIFECYCLE: i64 = -75002;
    /// `arm_psa_implementation_id`.
    pub const IMPLEMENTATION_ID: i64 = -75003;
    /// `arm_psa_boot_seed` (32 bytes).
    pub const BOOT_SEED: i64 = -75004;
    /// `arm_psa_hw_version` (certification reference).
    pub const CERTIFICATION_REFERENCE: i64 = -75005;
    /// `arm_psa_sw_components`.
    pub const SOFTWARE_COMPONENTS: i64 = -75006;
    /// `arm_psa_no_sw_measurements` (= 1 when there are no components).
    pub const NO_SW_MEASUREMENTS: i64 = -75007;
    /// `arm_psa_nonce`.
    pub const NONCE: i64 = -75008;
    /// `arm_psa_UEID` (instance id).
    pub const INSTANCE_ID: i64 = -75009;
    /// `arm_psa_origination` (verification service indicator).
    pub const VERIFICATION_SERVICE: i64 = -75010;
}

/// Which PSA token profile a token follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub enum Profile {
    /// RFC 9783: `tag:psacertified.org,2023:psa#tfm` (what the encoder writes).
    Rfc9783,
    /// Legacy `http://arm.com/psa/2.0.0` (same keys, boot seed under 2397).
    PsaV2,
    /// Legacy `PSA_IOT_PROFILE_1` (keys -75000..-75010); decode only.
    PsaIotProfile1,
}

impl Profile {
    /// The profile's text as carried in the token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Rfc9783 => "tag:psacertified.org,2023:psa#tfm",
            Profile::PsaV2 => "http://arm.com/psa/2.0.0",
            Profile::PsaIotProfile1 => "PSA_IOT_PROFILE_1",
        }
    }

    /// The profile named by `text`, if it is one of the three known profiles.
    pub fn from_text(text: &str) -> Option<Self> {
        [Profile::Rfc9783, Profile::PsaV2, Profile::PsaIotProfile1]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// PSA security lifecycle states. The raw claim is a `u16` whose high byte is the state and
/// whose low byte is implementation defined (`0x3000..=0x30ff` are all "secured").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub enum Lifecycle {
    /// `0x0000..=0x00ff`.
    Unknown,
    /// `0x1000..=0x10ff`.
    AssemblyAndTest,
    /// `0x2000..=0x20ff`.
    PsaRotProvisioning,
    /// `0x3000..=0x30ff`: the only state a production device should report.
    Secured,
    /// `0x4000..=0x40ff`.
    NonPsaRotDebug,
    /// `0x5000..=0x50ff`.
    RecoverablePsaRotDebug,
    /// `0x6000..=0x60ff`.
    Decommissioned,
}

impl Lifecycle {
    /// The state a raw claim value belongs to, or `None` outside the PSA ranges.
    pub const fn from_raw(raw: u16) -> Option<Self> {
        Some(match raw >> 8 {
            0x00 => Lifecycle::Unknown,
            0x10 => Lifecycle::AssemblyAndTest,
            0x20 => Lifecycle::PsaRotProvisioning,
            0x30 => Lifecycle::Secured,
            0x40 => Lifecycle::NonPsaRotDebug,
            0x50 => Lifecycle::RecoverablePsaRotDebug,
            0x60 => Lifecycle::Decommissioned,
            _ => return None,
        })
    }

    /// The canonical raw value of the state (low byte 0).
    pub const fn raw(self) -> u16 {
        match self {
            Lifecycle::Unknown => 0x0000,
            Lifecycle::AssemblyAndTest => 0x1000,
            Lifecycle::PsaRotProvisioning => 0x2000,
            Lifecycle::Secured => 0x3000,
            Lifecycle::NonPsaRotDebug => 0x4000,
            Lifecycle::RecoverablePsaRotDebug => 0x5000,
            Lifecycle::Decommissioned => 0x6000,
        }
    }

    /// The state's name in the PSA documents.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Unknown => "unknown",
            Lifecycle::AssemblyAndTest => "assembly-and-test",
            Lifecycle::PsaRotProvisioning => "psa-rot-provisioning",
            Lifecycle::Secured => "secured",
            Lifecycle::NonPsaRotDebug => "non-psa-rot-debug",
            Lifecycle::RecoverablePsaRotDebug => "recoverable-psa-rot-debug",
            Lifecycle::Decommissioned => "decommissioned",
        }
    }

    /// The name of the state `raw` belongs to, or `"invalid"`.
    pub const fn name_of(raw: u16) -> &'static str {
        match Self::from_raw(raw) {
            Some(l) => l.as_str(),
            None => "invalid",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for the sizes of `psa-hash-type`: 32, 48 or 64 bytes.
pub(crate) const fn is_hash_len(len: usize) -> bool {
    matches!(len, 32 | 48 | 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_ranges_follow_psa() {
        assert_eq!(Lifecycle::from_raw(0x3000), Some(Lifecycle::Secured));
        assert_eq!(Lifecycle::from_raw(0x30ff), Some(Lifecycle::Secured));
        assert_eq!(Lifecycle::from_raw(0x60aa), Some(Lifecycle::Decommissioned));
        assert_eq!(Lifecycle::from_raw(0x3100), None);
        assert_eq!(Lifecycle::from_raw(0x7000), None);
        assert_eq!(Lifecycle::name_of(0x1001), "assembly-and-test");
    }

    #[test]
    fn profile_text_round_trips() {
        for p in [Profile::Rfc9783, Profile::PsaV2, Profile::PsaIotProfile1] {
            assert_eq!(Profile::from_text(p.as_str()), Some(p));
        }
        assert_eq!(
            Profile::from_text("tag:psacertified.org,2019:psa#legacy"),
            None
        );
    }
}
