//! Token decoding (`std`): COSE envelope (tagged or untagged `COSE_Sign1` / `COSE_Mac0`) and the
//! claims map of each profile, with every size and type rule checked. The one parser of hostile
//! token bytes in Castellan: it returns [`Error::Malformed`] and friends, never panics.

use std::collections::BTreeSet;

use coset::cbor::value::Value;
use coset::iana::EnumI64;
use coset::{Algorithm, CborSerializable, CoseMac0, CoseSign1, TaggedCborSerializable};

use crate::claims::{Claims, Component};
use crate::encode::is_ean13_plus5;
use crate::keys::{claim, claim_p1, component, is_hash_len};
use crate::{Error, Profile, ShortText};

/// How a token is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// `COSE_Sign1` with the given COSE algorithm (-7 ES256, -9 ESP256, ...).
    Sign1 {
        /// COSE algorithm from the protected header.
        alg: i64,
    },
    /// `COSE_Mac0` with the given COSE algorithm (5 = HMAC 256/256).
    Mac0 {
        /// COSE algorithm from the protected header.
        alg: i64,
    },
}

/// A token parsed but NOT verified: for display and for tools that verify elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedToken {
    /// Signature or MAC, and its algorithm.
    pub protection: Protection,
    /// The claims, unauthenticated.
    pub claims: Claims,
}

/// Parses a token without checking its signature. Never trust the result for a decision.
pub fn decode_token(token: &[u8]) -> Result<DecodedToken, Error> {
    let env = Envelope::parse(token)?;
    let claims = parse_claims(env.payload()?)?;
    Ok(DecodedToken {
        protection: env.protection()?,
        claims,
    })
}

// --- COSE envelope --------------------------------------------------------------------------

/// A parsed COSE message carrying a token.
pub(crate) enum Envelope {
    Sign1(CoseSign1),
    Mac0(CoseMac0),
}

/// HMAC algorithms of RFC 9053 (HMAC 256/64, 256/256, 384/384, 512/512).
const HMAC_ALGS: [i64; 4] = [4, 5, 6, 7];

impl Envelope {
    pub(crate) fn parse(token: &[u8]) -> Result<Self, Error> {
        const NOT_COSE: &str = "not a COSE_Sign1 (tag 18) or COSE_Mac0 (tag 17) structure";
        match token.first() {
            Some(0xd2) => CoseSign1::from_tagged_slice(token)
                .map(Envelope::Sign1)
                .map_err(|_| Error::Malformed("COSE_Sign1 structure is invalid")),
            Some(0xd1) => CoseMac0::from_tagged_slice(token)
                .map(Envelope::Mac0)
                .map_err(|_| Error::Malformed("COSE_Mac0 structure is invalid")),
            Some(0x84) => {
                // Untagged: both are 4-element arrays; the protected alg tells them apart.
                let s = CoseSign1::from_slice(token).map_err(|_| Error::Malformed(NOT_COSE))?;
                if alg_of(&s.protected.header.alg).is_ok_and(|a| HMAC_ALGS.contains(&a)) {
                    CoseMac0::from_slice(token)
                        .map(Envelope::Mac0)
                        .map_err(|_| Error::Malformed("COSE_Mac0 structure is invalid"))
                } else {
                    Ok(Envelope::Sign1(s))
                }
            }
            None => Err(Error::Malformed("empty input")),
            Some(_) => Err(Error::Malformed(NOT_COSE)),
        }
    }

    pub(crate) fn protection(&self) -> Result<Protection, Error> {
        Ok(match self {
            Envelope::Sign1(s) => Protection::Sign1 {
                alg: alg_of(&s.protected.header.alg)?,
            },
            Envelope::Mac0(m) => Protection::Mac0 {
                alg: alg_of(&m.protected.header.alg)?,
            },
        })
    }

    pub(crate) fn payload(&self) -> Result<&[u8], Error> {
        let p = match self {
            Envelope::Sign1(s) => &s.payload,
            Envelope::Mac0(m) => &m.payload,
        };
        p.as_deref()
            .ok_or(Error::Malformed("payload is detached (nil)"))
    }
}

/// The integer COSE algorithm of a protected header.
pub(crate) fn alg_of(alg: &Option<Algorithm>) -> Result<i64, Error> {
    match alg {
        Some(Algorithm::Assigned(a)) => Ok(a.to_i64()),
        Some(Algorithm::PrivateUse(i)) => Ok(*i),
        Some(Algorithm::Text(_)) => Err(Error::UnsupportedAlgorithm(0)),
        None => Err(Error::Malformed("protected header has no algorithm")),
    }
}

// --- claims map -----------------------------------------------------------------------------

/// Claim keys of one profile.
struct KeyTable {
    nonce: i64,
    instance_id: i64,
    client_id: i64,
    lifecycle: i64,
    implementation_id: i64,
    boot_seed: i64,
    certification_reference: i64,
    software_components: i64,
    verification_service: i64,
}

const KEYS_RFC9783: KeyTable = KeyTable {
    nonce: claim::NONCE,
    instance_id: claim::INSTANCE_ID,
    client_id: claim::CLIENT_ID,
    lifecycle: claim::LIFECYCLE,
    implementation_id: claim::IMPLEMENTATION_ID,
    boot_seed: claim::BOOT_SEED,
    certification_reference: claim::CERTIFICATION_REFERENCE,
    software_components: claim::SOFTWARE_COMPONENTS,
    verification_service: claim::VERIFICATION_SERVICE,
};

const KEYS_V2: KeyTable = KeyTable {
    boot_seed: claim::BOOT_SEED_V2,
    ..KEYS_RFC9783
};

const KEYS_P1: KeyTable = KeyTable {
    nonce: claim_p1::NONCE,
    instance_id: claim_p1::INSTANCE_ID,
    client_id: claim_p1::CLIENT_ID,
    lifecycle: claim_p1::LIFECYCLE,
    implementation_id: claim_p1::IMPLEMENTATION_ID,
    boot_seed: claim_p1::BOOT_SEED,
    certification_reference: claim_p1::CERTIFICATION_REFERENCE,
    software_components: claim_p1::SOFTWARE_COMPONENTS,
    verification_service: claim_p1::VERIFICATION_SERVICE,
};

/// A CBOR map with integer keys, each key at most once.
struct IntMap<'a>(&'a [(Value, Value)]);

impl<'a> IntMap<'a> {
    fn new(v: &'a Value, what: &'static str) -> Result<Self, Error> {
        let Value::Map(entries) = v else {
            return Err(Error::Malformed(what));
        };
        let mut seen = BTreeSet::new();
        for (k, _) in entries {
            if let Value::Integer(i) = k {
                if !seen.insert(i128::from(*i)) {
                    return Err(Error::Malformed("a claim key appears twice"));
                }
            }
        }
        Ok(IntMap(entries))
    }

    fn get(&self, key: i64) -> Option<&'a Value> {
        self.0.iter().find_map(|(k, v)| match k {
            Value::Integer(i) if i128::from(*i) == i128::from(key) => Some(v),
            _ => None,
        })
    }

    fn bytes(&self, key: i64, what: &'static str) -> Result<Option<&'a [u8]>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bytes(b)) => Ok(Some(b)),
            Some(_) => Err(Error::Malformed(what)),
        }
    }

    fn text(&self, key: i64, what: &'static str) -> Result<Option<&'a str>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t)),
            Some(_) => Err(Error::Malformed(what)),
        }
    }

    fn int(&self, key: i64, what: &'static str) -> Result<Option<i128>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => Ok(Some(i128::from(*i))),
            Some(_) => Err(Error::Malformed(what)),
        }
    }
}

/// Decodes the claims map (the COSE payload) of any supported profile.
pub(crate) fn parse_claims(payload: &[u8]) -> Result<Claims, Error> {
    let mut rest = payload;
    let value: Value = coset::cbor::de::from_reader(&mut rest)
        .map_err(|_| Error::Malformed("payload is not valid CBOR"))?;
    if !rest.is_empty() {
        return Err(Error::Malformed("bytes after the claims map"));
    }
    let map = IntMap::new(&value, "payload is not a CBOR map")?;
    let profile = detect_profile(&map)?;
    let keys = match profile {
        Profile::Rfc9783 => &KEYS_RFC9783,
        Profile::PsaV2 => &KEYS_V2,
        Profile::PsaIotProfile1 => &KEYS_P1,
    };

    let nonce = map
        .bytes(keys.nonce, "nonce is not a byte string")?
        .ok_or(Error::MissingClaim("nonce"))?;
    if !is_hash_len(nonce.len()) {
        return Err(Error::Malformed("nonce must be 32, 48 or 64 bytes"));
    }
    let instance_id = map
        .bytes(keys.instance_id, "instance id is not a byte string")?
        .ok_or(Error::MissingClaim("instance id"))?;
    if instance_id.len() != 33 || instance_id.first() != Some(&0x01) {
        return Err(Error::Malformed(
            "instance id must be 0x01 followed by 32 bytes",
        ));
    }
    let implementation_id = map
        .bytes(
            keys.implementation_id,
            "implementation id is not a byte string",
        )?
        .ok_or(Error::MissingClaim("implementation id"))?;
    if implementation_id.len() != 32 {
        return Err(Error::Malformed("implementation id must be 32 bytes"));
    }
    let client_id = map
        .int(keys.client_id, "client id is not an integer")?
        .ok_or(Error::MissingClaim("client id"))?;
    let client_id =
        i32::try_from(client_id).map_err(|_| Error::Malformed("client id outside i32"))?;
    let lifecycle = map
        .int(keys.lifecycle, "security lifecycle is not an integer")?
        .ok_or(Error::MissingClaim("security lifecycle"))?;
    let lifecycle =
        u16::try_from(lifecycle).map_err(|_| Error::Malformed("security lifecycle outside u16"))?;
    let boot_seed = map.bytes(keys.boot_seed, "boot seed is not a byte string")?;
    match (profile, boot_seed.map(<[u8]>::len)) {
        (Profile::PsaIotProfile1, Some(32)) => {}
        (Profile::PsaIotProfile1, Some(_)) => {
            return Err(Error::Malformed("boot seed must be 32 bytes"));
        }
        (_, Some(n)) if !(8..=32).contains(&n) => {
            return Err(Error::Malformed("boot seed must be 8 to 32 bytes"));
        }
        _ => {}
    }
    let certification_reference = map.text(
        keys.certification_reference,
        "certification reference is not text",
    )?;
    if let Some(r) = certification_reference {
        let ean13 = r.len() == 13 && r.bytes().all(|c| c.is_ascii_digit());
        if !(is_ean13_plus5(r) || (profile == Profile::PsaIotProfile1 && ean13)) {
            return Err(Error::Malformed("certification reference is not EAN-13+5"));
        }
    }
    let verification_service = map.text(
        keys.verification_service,
        "verification service indicator is not text",
    )?;
    if verification_service == Some("") {
        return Err(Error::Malformed("verification service indicator is empty"));
    }
    let software_components = parse_components(&map, keys, profile)?;

    Ok(Claims {
        profile,
        client_id,
        lifecycle,
        implementation_id: implementation_id.to_vec(),
        instance_id: instance_id.to_vec(),
        nonce: nonce.to_vec(),
        boot_seed: boot_seed.map(<[u8]>::to_vec),
        certification_reference: certification_reference.map(str::to_owned),
        verification_service: verification_service.map(str::to_owned),
        software_components,
    })
}

/// The profile claim, or the legacy profile 1 recognised by its private-range nonce key.
fn detect_profile(map: &IntMap<'_>) -> Result<Profile, Error> {
    let text = match (map.get(claim::PROFILE), map.get(claim_p1::PROFILE)) {
        (Some(v), _) | (None, Some(v)) => match v {
            Value::Text(t) => t.as_str(),
            Value::Bytes(_) => return Err(Error::UnknownProfile(ShortText::new("<OID>"))),
            _ => return Err(Error::Malformed("profile is not text")),
        },
        (None, None) if map.get(claim_p1::NONCE).is_some() => return Ok(Profile::PsaIotProfile1),
        (None, None) => return Err(Error::MissingClaim("profile")),
    };
    Profile::from_text(text).ok_or(Error::UnknownProfile(ShortText::new(text)))
}

fn parse_components(
    map: &IntMap<'_>,
    keys: &KeyTable,
    profile: Profile,
) -> Result<Vec<Component>, Error> {
    let list = match map.get(keys.software_components) {
        Some(Value::Array(list)) => list,
        Some(_) => return Err(Error::Malformed("software components is not an array")),
        None => {
            let no_sw = map.int(claim_p1::NO_SW_MEASUREMENTS, "no-sw-measurements is not 1")?;
            if profile == Profile::PsaIotProfile1 && no_sw == Some(1) {
                return Ok(Vec::new());
            }
            return Err(Error::MissingClaim("software components"));
        }
    };
    if list.is_empty() {
        return Err(Error::Malformed("software components array is empty"));
    }
    list.iter().map(parse_component).collect()
}

fn parse_component(v: &Value) -> Result<Component, Error> {
    let m = IntMap::new(v, "software component is not a map")?;
    let measurement_value = m
        .bytes(
            component::MEASUREMENT_VALUE,
            "measurement value is not a byte string",
        )?
        .ok_or(Error::MissingClaim("software component measurement value"))?;
    if !is_hash_len(measurement_value.len()) {
        return Err(Error::Malformed(
            "measurement value must be 32, 48 or 64 bytes",
        ));
    }
    let signer_id = m
        .bytes(component::SIGNER_ID, "signer id is not a byte string")?
        .ok_or(Error::MissingClaim("software component signer id"))?;
    if !is_hash_len(signer_id.len()) {
        return Err(Error::Malformed("signer id must be 32, 48 or 64 bytes"));
    }
    let text = |key, what| m.text(key, what).map(|t| t.map(str::to_owned));
    Ok(Component {
        measurement_type: text(component::MEASUREMENT_TYPE, "measurement type is not text")?,
        measurement_value: measurement_value.to_vec(),
        version: text(component::VERSION, "version is not text")?,
        signer_id: signer_id.to_vec(),
        measurement_desc: text(
            component::MEASUREMENT_DESC,
            "measurement description is not text",
        )?,
    })
}
