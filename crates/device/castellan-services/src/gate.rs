//! The secure services behind the call gate: [`castellan_gate_api::GateServices`] for
//! [`SecureServices`] (so that the firmware's TrustZone veneers and the host's simulated gate
//! dispatch to the same code) and [`castellan_gate_api::Fault`] for [`ServiceError`], with the
//! conversions between the services' types and the gate's records.
//!
//! ```text
//!  castellan_gate_api::dispatch ──▶ GateServices for SecureServices ──▶ its_* · attest_token
//!                                     (client id -1: the non-secure caller)   update_* · keys
//! ```

use castellan_text::Describe;

use castellan_gate_api::{
    self as api, Fault, GateServices, HASH_LEN, ItsSummary, PUBLIC_KEY_LEN, SIGNATURE_LEN,
    TRUST_ANCHOR_LEN, UpdateBegun, refusal_kind, update_state,
};
use castellan_hal::{Flash, MonotonicCounter, RandomSource};

use crate::{
    Algorithm, ItsFlags, ItsStatus, KeyAttributes, KeyType, KeyUsage, SecureServices, ServiceError,
    UpdateRefusal, UpdateState, UpdateStatus,
};

/// The client id of the (single) non-secure caller.
const NS_CLIENT: i32 = -1;

impl Fault for ServiceError {
    fn status(&self) -> i32 {
        self.psa_status()
    }

    fn reason(&self) -> &dyn Describe {
        match self {
            ServiceError::UpdateRefused(r) => r,
            other => other,
        }
    }

    fn kind(&self) -> (u32, [u64; 2]) {
        match self {
            ServiceError::UpdateRefused(UpdateRefusal::NotNewer { offered, installed }) => {
                (refusal_kind::UPDATE_NOT_NEWER, [*offered, *installed])
            }
            ServiceError::UpdateRefused(_) => (refusal_kind::UPDATE, [0; 2]),
            _ => (refusal_kind::SERVICE, [0; 2]),
        }
    }
}

/// The gate's record of the update client's state (`anchor`: whether a release trust anchor
/// is provisioned).
pub fn update_record(s: &UpdateStatus, anchor: bool) -> api::UpdateStatus {
    let mut r = api::UpdateStatus::zeroed();
    r.anchor = u32::from(anchor);
    r.sequence = s.sequence.unwrap_or(0);
    r.installed_sequence = s.installed_sequence;
    r.state = match s.state {
        UpdateState::Idle => update_state::IDLE,
        UpdateState::Downloading {
            received,
            image_size,
        } => {
            r.received = received;
            r.image_size = image_size;
            update_state::DOWNLOADING
        }
        UpdateState::Staged => update_state::STAGED,
        UpdateState::Trial => update_state::TRIAL,
        UpdateState::Rejected => update_state::REJECTED,
        UpdateState::Reverted => update_state::REVERTED,
        UpdateState::Failed { error } => {
            r.error = error;
            update_state::FAILED
        }
    };
    r
}

/// The update client's state from the gate's record (`None` for an unknown state code).
pub fn update_status_of(r: &api::UpdateStatus) -> Option<UpdateStatus> {
    let state = match r.state {
        update_state::IDLE => UpdateState::Idle,
        update_state::DOWNLOADING => UpdateState::Downloading {
            received: r.received,
            image_size: r.image_size,
        },
        update_state::STAGED => UpdateState::Staged,
        update_state::TRIAL => UpdateState::Trial,
        update_state::REJECTED => UpdateState::Rejected,
        update_state::REVERTED => UpdateState::Reverted,
        update_state::FAILED => UpdateState::Failed { error: r.error },
        _ => return None,
    };
    Some(UpdateStatus {
        state,
        sequence: (r.sequence != 0).then_some(r.sequence),
        installed_sequence: r.installed_sequence,
    })
}

/// The gate's record of trusted storage's state.
pub fn its_summary(s: &ItsStatus) -> ItsSummary {
    let w = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    ItsSummary {
        assets: w(s.assets),
        live_bytes: w(s.live_bytes),
        bank_size: w(s.bank_size),
        active_bank: u32::from(s.active_bank),
        write_offset: w(s.write_offset),
        seq: s.seq,
        counter: s.counter,
    }
}

/// The attributes of a key `GenerateSigningKey` makes: persistent P-256, sign and verify with
/// ECDSA SHA-256, not exportable.
pub fn signing_key_attributes(id: u32) -> KeyAttributes {
    KeyAttributes::new(KeyType::ECC_KEY_PAIR_SECP_R1)
        .with_bits(256)
        .with_usage(KeyUsage::SIGN_HASH.union(KeyUsage::VERIFY_HASH))
        .with_algorithm(Algorithm::ECDSA_SHA_256)
        .persistent(id)
}

impl<F: Flash, C: MonotonicCounter, R: RandomSource> GateServices for SecureServices<F, C, R> {
    type Error = ServiceError;

    fn attest_token(&mut self, nonce: &[u8], out: &mut [u8]) -> Result<usize, ServiceError> {
        SecureServices::attest_token(self, nonce, NS_CLIENT, out)
    }

    fn attest_public_key(&mut self) -> [u8; PUBLIC_KEY_LEN] {
        self.attestation_public_key()
    }

    fn its_set(&mut self, uid: u32, data: &[u8]) -> Result<(), ServiceError> {
        SecureServices::its_set(self, u64::from(uid), data, ItsFlags::NONE)
    }

    fn its_get(&mut self, uid: u32, out: &mut [u8]) -> Result<usize, ServiceError> {
        SecureServices::its_get(self, u64::from(uid), 0, out)
    }

    fn its_status(&mut self) -> Result<ItsSummary, ServiceError> {
        SecureServices::its_status(self).map(|s| its_summary(&s))
    }

    fn update_anchor(&mut self, key: &[u8; TRUST_ANCHOR_LEN]) -> Result<(), ServiceError> {
        self.update_provision_trust_anchor(key)
    }

    fn update_begin(&mut self, env: &[u8], now: Option<u64>) -> Result<UpdateBegun, ServiceError> {
        let plan = SecureServices::update_begin(self, env, now)?;
        Ok(UpdateBegun {
            sequence: plan.sequence,
            image_size: plan.image_size,
            resume_offset: plan.resume_offset,
        })
    }

    fn update_write(&mut self, offset: u64, data: &[u8]) -> Result<u32, ServiceError> {
        SecureServices::update_write(self, offset, data)
    }

    fn update_finish(&mut self) -> Result<i32, ServiceError> {
        SecureServices::update_finish(self).map(|s| s.psa_status())
    }

    fn update_cancel(&mut self) -> Result<(), ServiceError> {
        SecureServices::update_cancel(self)
    }

    fn update_status(&mut self) -> Result<api::UpdateStatus, ServiceError> {
        let s = SecureServices::update_status(self)?;
        let anchor = self.update_trust_anchor()?.is_some();
        Ok(update_record(&s, anchor))
    }

    fn identity_key(&mut self) -> Result<[u8; PUBLIC_KEY_LEN], ServiceError> {
        self.provision_identity_key()
    }

    fn export_public_key(&mut self, id: u32, out: &mut [u8]) -> Result<usize, ServiceError> {
        SecureServices::export_public_key(self, id, out)
    }

    fn sign_hash(
        &mut self,
        id: u32,
        hash: &[u8; HASH_LEN],
    ) -> Result<[u8; SIGNATURE_LEN], ServiceError> {
        let mut sig = [0u8; SIGNATURE_LEN];
        SecureServices::sign_hash(self, id, Algorithm::ECDSA_SHA_256, hash, &mut sig)?;
        Ok(sig)
    }

    fn destroy_key(&mut self, id: u32) -> Result<(), ServiceError> {
        SecureServices::destroy_key(self, id)
    }

    fn generate_signing_key(&mut self, id: u32) -> Result<(), ServiceError> {
        self.generate_key(&signing_key_attributes(id)).map(drop)
    }

    fn generate_random(&mut self, out: &mut [u8]) -> Result<(), ServiceError> {
        SecureServices::generate_random(self, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_status_survives_the_record() {
        for state in [
            UpdateState::Idle,
            UpdateState::Downloading {
                received: 10,
                image_size: 20,
            },
            UpdateState::Staged,
            UpdateState::Trial,
            UpdateState::Rejected,
            UpdateState::Reverted,
            UpdateState::Failed { error: -149 },
        ] {
            let s = UpdateStatus {
                state,
                sequence: Some(3),
                installed_sequence: 2,
            };
            let r = update_record(&s, true);
            assert_eq!(r.anchor, 1);
            assert_eq!(update_status_of(&r), Some(s));
        }
    }

    #[test]
    fn refusals_keep_their_reason_and_values() {
        let e = ServiceError::UpdateRefused(UpdateRefusal::NotNewer {
            offered: 1,
            installed: 2,
        });
        let r = api::Refusal::of(&e);
        assert_eq!(r.status, e.psa_status());
        assert_eq!(r.kind, refusal_kind::UPDATE_NOT_NEWER);
        assert_eq!(r.values, [1, 2]);
        assert_eq!(
            r.reason(),
            "manifest sequence 1 is not newer than the installed 2"
        );
        assert_eq!(r.text(), e.to_string());
        let e = ServiceError::DoesNotExist;
        let r = api::Refusal::of(&e);
        assert_eq!(
            (r.kind, r.text(), r.reason()),
            (refusal_kind::SERVICE, r.reason(), r.text())
        );
        assert_eq!(r.text(), e.to_string());
    }
}
