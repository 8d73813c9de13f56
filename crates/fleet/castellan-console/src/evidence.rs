//! What the device page shows beyond the registry row, in the console's terms: certificate
//! chains with their expiry, the last attestation's claims compared with the reference values,
//! detector scores and the TUF repository's roles. Pure data and pure comparisons: the server
//! fills them ([`crate::Fleet`]), the templates draw them.

use castellan_attest::{Claims, Lifecycle};

use crate::MeasurementView;

/// Days before expiry from which a certificate or a TUF role is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// One certificate of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCertificate {
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// notBefore (Unix seconds).
    pub not_before: i64,
    /// notAfter (Unix seconds).
    pub not_after: i64,
}

/// A certificate and its issuers, the leaf first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateChain {
    /// The leaf, then each issuer up to the root.
    pub certificates: Vec<ChainCertificate>,
    /// Whether the chain ends at a self-signed root the service holds.
    pub complete: bool,
    /// Why the chain is missing or incomplete, for the operator.
    pub note: Option<String>,
}

/// A device's two identities' chains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateChains {
    /// The factory certificate's (IDevID).
    pub idevid: CertificateChain,
    /// The operational certificate's (LDevID).
    pub ldevid: CertificateChain,
}

/// One detector score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScorePoint {
    /// When (Unix seconds).
    pub at: i64,
    /// The score (higher: more surprising).
    pub score: f64,
}

/// A TUF role as the repository publishes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TufRoleView {
    /// Role name (`root`, `targets`, `snapshot`, `timestamp`, a delegation).
    pub name: String,
    /// Published version.
    pub version: Option<u64>,
    /// Published expiry (Unix seconds).
    pub expires: Option<i64>,
}

/// How close to its end a validity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Past its end, this many days ago.
    Expired(i64),
    /// Ends within [`EXPIRY_WARNING_DAYS`]: in this many days.
    Soon(i64),
    /// Ends in this many days.
    Valid(i64),
}

impl Expiry {
    /// The state of a validity ending at `end`, at `now` (Unix seconds).
    pub fn of(end: i64, now: i64) -> Expiry {
        Expiry::within(end, now, EXPIRY_WARNING_DAYS)
    }

    /// The same with a warning `warn_days` before the end (0: flagged only once expired).
    pub fn within(end: i64, now: i64, warn_days: i64) -> Expiry {
        let days = end.saturating_sub(now).div_euclid(86_400);
        if end < now {
            Expiry::Expired(now.saturating_sub(end).div_euclid(86_400))
        } else if end.saturating_sub(now) < warn_days.saturating_mul(86_400) {
            Expiry::Soon(days)
        } else {
            Expiry::Valid(days)
        }
    }

    /// The CSS class (and the flag's name).
    pub fn class(self) -> &'static str {
        match self {
            Expiry::Expired(_) => "expired",
            Expiry::Soon(_) => "expiring",
            Expiry::Valid(_) => "valid",
        }
    }

    /// For the operator.
    pub fn describe(self) -> String {
        match self {
            Expiry::Expired(d) => format!("EXPIRED {d} days ago"),
            Expiry::Soon(d) => format!("EXPIRES in {d} days"),
            Expiry::Valid(d) => format!("expires in {d} days"),
        }
    }
}

/// A reference component against the last attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentCheck {
    /// The measurement type.
    pub mtype: String,
    /// The reference version and digest (`None`: not in the reference values).
    pub expected: Option<(String, String)>,
    /// The attested version and digest (`None`: not in the token).
    pub attested: Option<(String, String)>,
    /// `match`, `mismatch`, `missing` (in the reference values, not the token) or
    /// `unlisted` (in the token, not the reference values).
    pub verdict: &'static str,
}

/// The claims of the last attestation, decoded for the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimsView {
    /// Nonce, hex.
    pub nonce: String,
    /// Instance id (UEID), hex.
    pub instance_id: String,
    /// Implementation id, hex.
    pub implementation_id: String,
    /// Profile.
    pub profile: String,
    /// Lifecycle, raw and named.
    pub lifecycle: (u16, &'static str),
    /// The components as attested: type, version, digest, signer.
    pub components: Vec<(String, String, String, String)>,
}

impl ClaimsView {
    /// The stored claims JSON decoded; `None` when it does not read as claims.
    pub fn parse(json: &str) -> Option<ClaimsView> {
        let c: Claims = serde_json::from_str(json).ok()?;
        let components = c
            .software_components
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.measurement_type
                        .clone()
                        .unwrap_or_else(|| format!("#{i}")),
                    s.version.clone().unwrap_or_else(|| "?".into()),
                    hex::encode(&s.measurement_value),
                    hex::encode(&s.signer_id),
                )
            })
            .collect();
        Some(ClaimsView {
            nonce: hex::encode(&c.nonce),
            instance_id: hex::encode(&c.instance_id),
            implementation_id: hex::encode(&c.implementation_id),
            profile: c.profile.as_str().to_string(),
            lifecycle: (c.lifecycle, Lifecycle::name_of(c.lifecycle)),
            components,
        })
    }

    /// Each reference component against the attested one of the same type (digest, signer and
    /// version equal: `match`), then the attested components the reference values do not list.
    pub fn compare(&self, reference: &[MeasurementView]) -> Vec<ComponentCheck> {
        let mut out: Vec<ComponentCheck> = reference
            .iter()
            .map(|m| {
                let got = self.components.iter().find(|c| c.0 == m.mtype);
                let verdict = match got {
                    None => "missing",
                    Some(c)
                        if c.2.eq_ignore_ascii_case(&m.digest)
                            && c.3.eq_ignore_ascii_case(&m.signer_id)
                            && c.1 == m.version =>
                    {
                        "match"
                    }
                    Some(_) => "mismatch",
                };
                ComponentCheck {
                    mtype: m.mtype.clone(),
                    expected: Some((m.version.clone(), m.digest.clone())),
                    attested: got.map(|c| (c.1.clone(), c.2.clone())),
                    verdict,
                }
            })
            .collect();
        for c in &self.components {
            if !reference.iter().any(|m| m.mtype == c.0) {
                out.push(ComponentCheck {
                    mtype: c.0.clone(),
                    expected: None,
                    attested: Some((c.1.clone(), c.2.clone())),
                    verdict: "unlisted",
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_flagged_within_thirty_days_and_after() {
        let now = 1_000_000_000;
        assert_eq!(Expiry::of(now + 40 * 86_400, now), Expiry::Valid(40));
        assert_eq!(Expiry::of(now + 29 * 86_400 + 5, now), Expiry::Soon(29));
        assert_eq!(Expiry::of(now - 3 * 86_400, now), Expiry::Expired(3));
        assert_eq!(Expiry::of(now - 1, now).class(), "expired");
        assert_eq!(Expiry::of(i64::MAX, now).class(), "valid");
        assert_eq!(Expiry::of(i64::MIN, now).class(), "expired");
        // An online TUF role lives a day: flagged only once expired.
        assert_eq!(Expiry::within(now + 3600, now, 0), Expiry::Valid(0));
        assert_eq!(Expiry::within(now - 1, now, 0).class(), "expired");
    }

    fn reference(mtype: &str, digest: &str, version: &str) -> MeasurementView {
        MeasurementView {
            mtype: mtype.into(),
            digest: digest.into(),
            signer_id: "51".repeat(32),
            version: version.into(),
        }
    }

    fn claims_json(components: &[(&str, &str, &str)]) -> String {
        let comps: Vec<serde_json::Value> = components
            .iter()
            .map(|(t, d, v)| {
                serde_json::json!({"measurement_type": t, "measurement_value": d,
                    "version": v, "signer_id": "51".repeat(32)})
            })
            .collect();
        serde_json::json!({
            "profile": "tag:psacertified.org,2023:psa#tfm", "client_id": -1,
            "lifecycle": 0x3000, "implementation_id": "aa".repeat(32),
            "instance_id": format!("01{}", "bb".repeat(32)), "nonce": "cc".repeat(32),
            "software_components": comps,
        })
        .to_string()
    }

    #[test]
    fn claims_decode_and_compare_per_component() {
        let json = claims_json(&[
            ("BL", &"11".repeat(32), "1.0.0"),
            ("APP", &"22".repeat(32), "2.0.0"),
            ("EXTRA", &"33".repeat(32), "1.0.0"),
        ]);
        let c = ClaimsView::parse(&json).expect("claims");
        assert_eq!(c.nonce, "cc".repeat(32));
        assert_eq!(c.lifecycle, (0x3000, "secured"));
        assert!(c.instance_id.starts_with("01bb"));
        let refs = [
            reference("BL", &"11".repeat(32), "1.0.0"),
            reference("APP", &"99".repeat(32), "2.0.0"),
            reference("SPE", &"44".repeat(32), "1.0.0"),
        ];
        let checks = c.compare(&refs);
        let verdicts: Vec<(&str, &str)> = checks
            .iter()
            .map(|v| (v.mtype.as_str(), v.verdict))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("BL", "match"),
                ("APP", "mismatch"),
                ("SPE", "missing"),
                ("EXTRA", "unlisted")
            ]
        );
    }

    #[test]
    fn hostile_claims_json_is_refused_not_a_panic() {
        for bad in ["", "{", "[]", "{\"nonce\": 5}", &"[".repeat(10_000)] {
            assert_eq!(ClaimsView::parse(bad), None);
        }
    }
}
