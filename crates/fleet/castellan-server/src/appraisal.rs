//! The one appraisal of attestation evidence, for onboarding and for the post-update
//! attestation of a campaign (and anything later that needs a device to prove what it runs).
//!
//! ```text
//!  token (hex) ─▶ device in the registry ─▶ its IAK, registered at the factory
//!              ─▶ verify_token (signature by the IAK)
//!              ─▶ nonce: onboarding nonce (consumed: unknown, used, expired or another
//!                 device's is refused) or the campaign's outstanding update nonce
//!              ─▶ lifecycle secured and every software component as the registry's reference
//!                 values say (digest, signer, minimum version; no unlisted component)
//!              ─▶ after an update: the last component is exactly the release's measurement
//! ```
//!
//! A refusal is a [`Refusal`]: its `Display` is the human reason the device, the registry and
//! the audit log show; [`Refusal::code`] is a stable machine code (`attestation.nonce_mismatch`)
//! that goes with it in the audit log and the MQTT result.

use castellan_attest::{
    AppraisalError, Claims, ExpectedComponent, ReferenceValues, VerificationKey, verify_token,
};
use castellan_store::{
    AttestationRecord, Device, ReferenceMeasurement, Release, Store, StoreError,
};

/// Why attestation evidence was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The token field is not hex.
    #[error("evidence token is not hex")]
    TokenNotHex,
    /// The device is not in the registry.
    #[error("unknown device {id}")]
    UnknownDevice {
        /// The device id.
        id: String,
    },
    /// The factory registered no attestation key (IAK) for the device.
    #[error("no attestation key was registered for this device at the factory")]
    NoAttestationKey,
    /// The registered IAK is not a usable P-256 key.
    #[error("the registered attestation key is unusable: {0}")]
    UnusableKey(AppraisalError),
    /// The token does not verify with the IAK (signature, format).
    #[error("attestation token refused: {0}")]
    Token(AppraisalError),
    /// The onboarding nonce in the token is unknown, used, expired or another device's.
    #[error("nonce refused: {0}")]
    Nonce(StoreError),
    /// The token is not over the campaign's outstanding update nonce (or it was used).
    #[error("the token is not over the challenge's nonce (or it was used)")]
    UpdateNonce,
    /// The registry holds no reference measurements for the device.
    #[error("no reference measurements are registered for this device")]
    NoReferenceValues,
    /// A reference value in the registry is unreadable.
    #[error("registry: {field} of {mtype} is not hex")]
    BadReference {
        /// `"reference digest"` or `"signer id"`.
        field: &'static str,
        /// The component's measurement type.
        mtype: String,
    },
    /// The claims do not match the reference values (lifecycle, measurement, signer, version).
    #[error("appraisal failed: {0}")]
    Appraisal(AppraisalError),
    /// A post-update token without software components.
    #[error("the token has no software component")]
    NoSoftwareComponent,
    /// A post-update token whose last component is not the release.
    #[error("{0}")]
    NotTheRelease(Box<ReleaseMismatch>),
    /// The registry failed.
    #[error("registry error: {0}")]
    Registry(StoreError),
}

/// What a post-update token shows instead of the release.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the last software component ({found_type} {found_version} digest {found_digest}) is not \
     release {release} ({mtype} {version} digest {digest})"
)]
pub struct ReleaseMismatch {
    /// The last component's measurement type (`?` when absent).
    pub found_type: String,
    /// Its version (`?` when absent).
    pub found_version: String,
    /// Its digest, hex.
    pub found_digest: String,
    /// The release.
    pub release: String,
    /// The release's measurement type.
    pub mtype: String,
    /// The release's version.
    pub version: String,
    /// The release's digest, hex.
    pub digest: String,
}

impl Refusal {
    /// The stable machine code of the refusal (audit log, MQTT results).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TokenNotHex => "attestation.token_not_hex",
            Refusal::UnknownDevice { .. } => "attestation.unknown_device",
            Refusal::NoAttestationKey => "attestation.no_key",
            Refusal::UnusableKey(_) => "attestation.key_unusable",
            Refusal::Token(AppraisalError::BadSignature) => "attestation.bad_signature",
            Refusal::Token(_) => "attestation.token_refused",
            Refusal::Nonce(
                StoreError::NonceUnknown | StoreError::NonceWrongDevice | StoreError::NonceExpired,
            )
            | Refusal::UpdateNonce => "attestation.nonce_mismatch",
            Refusal::Nonce(_) | Refusal::Registry(_) => "attestation.registry_error",
            Refusal::NoReferenceValues => "attestation.no_reference_values",
            Refusal::BadReference { .. } => "attestation.bad_reference_values",
            Refusal::Appraisal(e) => appraisal_code(e),
            Refusal::NoSoftwareComponent => "attestation.no_software_component",
            Refusal::NotTheRelease(_) => "attestation.not_the_release",
        }
    }
}

fn appraisal_code(e: &AppraisalError) -> &'static str {
    match e {
        AppraisalError::NonceMismatch => "attestation.nonce_mismatch",
        AppraisalError::LifecycleNotAllowed { .. } => "attestation.lifecycle",
        AppraisalError::UnexpectedMeasurement { .. }
        | AppraisalError::MissingComponent { .. }
        | AppraisalError::UnknownComponent { .. } => "attestation.measurement_mismatch",
        AppraisalError::UnexpectedSigner { .. } => "attestation.signer_mismatch",
        AppraisalError::VersionTooOld { .. } => "attestation.version_too_old",
        _ => "attestation.appraisal_failed",
    }
}

/// Appraise an onboarding token of device `id`: signed by its IAK, over a nonce this server
/// issued to it (used up by this attempt, at `now`), matching the registry's reference values.
/// `Ok` is the device's registry record.
pub(crate) async fn onboarding(
    store: &Store,
    id: &str,
    token_hex: &str,
    now: i64,
) -> Result<Device, Refusal> {
    let (device, claims) = verified(store, id, token_hex).await?;
    let verdict = async {
        store
            .consume_nonce(id, &claims.nonce, now)
            .await
            .map_err(Refusal::Nonce)?;
        reference_values(&device.reference_measurements)?
            .check(&claims, &claims.nonce)
            .map_err(Refusal::Appraisal)
    }
    .await;
    remember(
        store,
        id,
        "onboarding",
        &claims,
        verdict.as_ref().err(),
        now,
    )
    .await;
    verdict.map(|()| device)
}

/// Appraise a post-update token of device `id` in campaign `campaign_id` rolling out `release`:
/// signed by its IAK, over the campaign's outstanding nonce (used up), every component as the
/// registry expects with the release in place of the component it replaces, and the last
/// component exactly the release. `Ok` holds the device's new reference measurements.
pub(crate) async fn after_update(
    store: &Store,
    id: &str,
    campaign_id: &str,
    release: &Release,
    token_hex: &str,
) -> Result<Vec<ReferenceMeasurement>, Refusal> {
    let (device, claims) = verified(store, id, token_hex).await?;
    let verdict = update_verdict(store, device, campaign_id, release, &claims).await;
    let context = format!("update campaign {campaign_id} (release {})", release.id);
    let now = castellan_store::unix_now();
    remember(store, id, &context, &claims, verdict.as_ref().err(), now).await;
    verdict
}

/// The post-update appraisal of verified `claims` (see [`after_update`]).
async fn update_verdict(
    store: &Store,
    device: Device,
    campaign_id: &str,
    release: &Release,
    claims: &Claims,
) -> Result<Vec<ReferenceMeasurement>, Refusal> {
    let id = device.id.as_str();
    if !store
        .consume_update_nonce(campaign_id, id, &claims.nonce)
        .await
        .map_err(Refusal::Registry)?
    {
        return Err(Refusal::UpdateNonce);
    }
    let expected = &release.measurement;
    let mut refs = device.reference_measurements;
    match refs.iter().rposition(|m| m.mtype == expected.mtype) {
        Some(i) => {
            if let Some(slot) = refs.get_mut(i) {
                *slot = expected.clone();
            }
        }
        None => match refs.last_mut() {
            Some(last) => *last = expected.clone(),
            None => refs.push(expected.clone()),
        },
    }
    reference_values(&refs)?
        .check(claims, &claims.nonce)
        .map_err(Refusal::Appraisal)?;
    let last = claims
        .software_components
        .last()
        .ok_or(Refusal::NoSoftwareComponent)?;
    let shows_release = last.measurement_type.as_deref() == Some(expected.mtype.as_str())
        && hex::encode(&last.measurement_value) == expected.digest_hex
        && hex::encode(&last.signer_id) == expected.signer_id
        && last.version.as_deref() == Some(expected.version.as_str());
    if !shows_release {
        return Err(Refusal::NotTheRelease(Box::new(ReleaseMismatch {
            found_type: last.measurement_type.as_deref().unwrap_or("?").to_string(),
            found_version: last.version.as_deref().unwrap_or("?").to_string(),
            found_digest: hex::encode(&last.measurement_value),
            release: release.id.clone(),
            mtype: expected.mtype.clone(),
            version: expected.version.clone(),
            digest: expected.digest_hex.clone(),
        })));
    }
    Ok(refs)
}

/// Keep the claims of a token that verified with the device's IAK, with the appraisal's
/// verdict, for the console's device page. A failure to keep them is logged, never a refusal.
async fn remember(
    store: &Store,
    id: &str,
    context: &str,
    claims: &Claims,
    refusal: Option<&Refusal>,
    now: i64,
) {
    let claims_json = match serde_json::to_string(claims) {
        Ok(j) => j,
        Err(e) => {
            log::warn!("{id}: attestation claims not kept: {e}");
            return;
        }
    };
    let record = AttestationRecord {
        device_id: id.to_string(),
        appraised_at: now,
        context: context.to_string(),
        claims_json,
        passed: refusal.is_none(),
        reason: refusal.map(|r| format!("{} ({r})", r.code())),
    };
    if let Err(e) = store.record_attestation(&record).await {
        log::warn!("{id}: attestation claims not kept: {e}");
    }
}

/// Appraise the token of device `id` after a reboot-and-reattest: signed by its IAK, over
/// `nonce` (the pending command's, which the caller takes once), lifecycle secured and every
/// component exactly as the registry's reference values say: the image it was always meant to
/// run, measured by a fresh boot.
pub(crate) async fn reattest(
    store: &Store,
    id: &str,
    token_hex: &str,
    nonce: &[u8],
) -> Result<Device, Refusal> {
    let (device, claims) = verified(store, id, token_hex).await?;
    reference_values(&device.reference_measurements)?
        .check(&claims, nonce)
        .map_err(Refusal::Appraisal)?;
    Ok(device)
}

/// The device's registry record and the claims of `token_hex`, verified with its IAK.
async fn verified(store: &Store, id: &str, token_hex: &str) -> Result<(Device, Claims), Refusal> {
    let token = hex::decode(token_hex.trim()).map_err(|_| Refusal::TokenNotHex)?;
    let device = store
        .device(id)
        .await
        .map_err(Refusal::Registry)?
        .ok_or_else(|| Refusal::UnknownDevice { id: id.to_string() })?;
    let iak = store
        .iak_public_key(id)
        .await
        .map_err(Refusal::Registry)?
        .ok_or(Refusal::NoAttestationKey)?;
    let key = VerificationKey::p256_from_sec1(&iak).map_err(Refusal::UnusableKey)?;
    let claims = verify_token(&token, &key).map_err(Refusal::Token)?;
    Ok((device, claims))
}

/// What the registry says the device should run, as appraisal reference values: lifecycle
/// secured, each recorded component with its digest, signer and (minimum) version, and no
/// unlisted component.
fn reference_values(measurements: &[ReferenceMeasurement]) -> Result<ReferenceValues, Refusal> {
    if measurements.is_empty() {
        return Err(Refusal::NoReferenceValues);
    }
    let unreadable = |field, m: &ReferenceMeasurement| Refusal::BadReference {
        field,
        mtype: m.mtype.clone(),
    };
    let mut components = Vec::with_capacity(measurements.len());
    for m in measurements {
        let digest = hex::decode(&m.digest_hex).map_err(|_| unreadable("reference digest", m))?;
        let signer = if m.signer_id.is_empty() {
            None
        } else {
            Some(hex::decode(&m.signer_id).map_err(|_| unreadable("signer id", m))?)
        };
        components.push(ExpectedComponent {
            measurement_type: m.mtype.clone(),
            measurement_values: vec![digest],
            signer_id: signer,
            min_version: (!m.version.is_empty()).then(|| m.version.clone()),
        });
    }
    Ok(ReferenceValues {
        components,
        ..ReferenceValues::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(mtype: &str, digest: &str, signer: &str) -> ReferenceMeasurement {
        ReferenceMeasurement {
            mtype: mtype.into(),
            digest_hex: digest.into(),
            signer_id: signer.into(),
            version: String::new(),
        }
    }

    #[test]
    fn reference_values_refuse_an_unreadable_registry() {
        assert_eq!(
            reference_values(&[]).unwrap_err(),
            Refusal::NoReferenceValues
        );
        let e = reference_values(&[m("APP", "zz", "")]).unwrap_err();
        assert_eq!(e.code(), "attestation.bad_reference_values");
        assert_eq!(
            e.to_string(),
            "registry: reference digest of APP is not hex"
        );
        let e = reference_values(&[m("APP", "00", "x")]).unwrap_err();
        assert_eq!(e.to_string(), "registry: signer id of APP is not hex");
        let ok = reference_values(&[m("BL2", "00", ""), m("APP", "11", "22")]).unwrap();
        assert_eq!(ok.components.len(), 2);
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            Refusal::Nonce(StoreError::NonceExpired).code(),
            "attestation.nonce_mismatch"
        );
        assert_eq!(Refusal::UpdateNonce.code(), "attestation.nonce_mismatch");
        assert_eq!(
            Refusal::Token(AppraisalError::BadSignature).code(),
            "attestation.bad_signature"
        );
        assert_eq!(
            Refusal::Appraisal(AppraisalError::LifecycleNotAllowed { found: 0x2000 }).code(),
            "attestation.lifecycle"
        );
    }
}
