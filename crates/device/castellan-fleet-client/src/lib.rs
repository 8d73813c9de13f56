//! The device's fleet client, `no_std` and sans-IO: attested onboarding
//! (`docs/fleet-protocol.md`, "Onboarding") as a state machine over the secure gate
//! ([`castellan_gate_api::SecureGate`]), so that the QEMU firmware (over its own MQTT) and the
//! host agent (over the simulated gate) can run the same code. The caller moves the bytes:
//! it subscribes to [`Onboarding::subscription`], publishes what [`Action::Publish`] says, and
//! hands every received message to [`Onboarding::on_message`].
//!
//! ```text
//!  start()                   → Publish dev/<id>/up/onboard/hello {}
//!  challenge {"nonce"}       → gate AttestToken(nonce); LDevID key (gate GenerateSigningKey,
//!                              once); CSR signed by gate SignHash
//!                            → Publish dev/<id>/up/onboard/evidence {"token", "csr"} (hex)
//!  result {"accepted": true, "ldevid_pem"}
//!                            → the certificate must certify the LDevID key; stored in trusted
//!                              storage (ITS 0x7120 length, 0x7121.. chunks) → Onboarded
//!  result {"accepted": false, "reason", "code"}   → Refused
//! ```
//!
//! After onboarding, [`Operation`] names the LDevID session's topics and [`Telemetry`] builds
//! its telemetry messages.
//!
//! Messages on other topics, or out of turn (a challenge once the evidence is sent, a result
//! before), are ignored. No allocator, no panics on hostile input: every message is parsed
//! into fixed buffers and a malformed one is a typed [`FleetError`].

#![no_std]
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod der;
mod json;
mod operation;

use core::fmt;

use castellan_gate_api::{GateError, ITS_CHUNK, PUBLIC_KEY_LEN, SecureGate, TOKEN_CAP, psa};

pub use der::{Sha256Fn, build_csr, is_sequence, pem_certificate};
pub use operation::{ONLINE, Operation, TELEMETRY_MAX, Telemetry};

/// The LDevID key's id in the secure partition's keystore (persistent P-256, not exportable).
pub const LDEVID_KEY_ID: u32 = 0x0000_0720;
/// Trusted-storage asset of the LDevID's length; its DER follows in 512-byte chunks.
pub const UID_LDEVID: u32 = 0x7120;
/// Largest certificate kept.
pub const CERT_MAX: usize = 2048;
/// Largest CSR built.
pub const CSR_MAX: usize = 512;
/// Longest topic (`dev/<64-char id>/down/onboard/challenge`).
const TOPIC_MAX: usize = 96;
/// Largest evidence message: two hex fields and the JSON around them.
const OUT_MAX: usize = 2 * (TOKEN_CAP + CSR_MAX) + 32;
/// Largest PEM accepted in a result.
const PEM_MAX: usize = 3 * CERT_MAX / 2 + 256;
/// Longest refusal reason and code kept.
const REASON_MAX: usize = 256;

/// Why a message could not be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetError {
    /// The device id is not `[A-Za-z0-9._-]{1,64}`.
    BadId,
    /// Something does not fit its fixed buffer.
    TooLarge,
    /// The gate refused or failed a call.
    Gate(GateError),
    /// The challenge carries no nonce of 32, 48 or 64 bytes in hex.
    BadChallenge,
    /// The result is not the protocol's (no `accepted`, no PEM certificate when accepted).
    BadResult,
    /// The certificate returned does not certify the LDevID key (nothing stored).
    NotOurKey,
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::BadId => f.write_str("not a device id ([A-Za-z0-9._-]{1,64})"),
            FleetError::TooLarge => f.write_str("a message or field exceeds its fixed buffer"),
            FleetError::Gate(e) => write!(f, "secure gate: {e}"),
            FleetError::BadChallenge => f.write_str("the challenge carries no valid nonce"),
            FleetError::BadResult => f.write_str("the onboarding result is malformed"),
            FleetError::NotOurKey => {
                f.write_str("the certificate returned does not certify the device's LDevID key")
            }
        }
    }
}

impl core::error::Error for FleetError {}

/// What the caller does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Publish `payload` on `topic` (QoS 1).
    Publish {
        /// The topic.
        topic: &'a str,
        /// The message.
        payload: &'a [u8],
    },
    /// Onboarded: the LDevID (`len` bytes of DER) is in trusted storage; reconnect with it.
    Onboarded {
        /// The certificate's length.
        len: usize,
    },
    /// The service refused the device.
    Refused {
        /// The human reason.
        reason: &'a str,
        /// The stable machine code (`attestation.nonce_mismatch`, …), or empty.
        code: &'a str,
    },
    /// Not for this step (another topic, or out of turn): nothing was done.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    AwaitChallenge,
    AwaitResult,
    Done,
}

/// A topic in a fixed buffer.
#[derive(Clone, Copy)]
struct Topic {
    buf: [u8; TOPIC_MAX],
    len: usize,
}

impl Topic {
    fn of(id: &str, rest: &str) -> Result<Topic, FleetError> {
        let mut t = Topic {
            buf: [0; TOPIC_MAX],
            len: 0,
        };
        for part in ["dev/", id, "/", rest] {
            let end = t.len + part.len();
            t.buf
                .get_mut(t.len..end)
                .ok_or(FleetError::TooLarge)?
                .copy_from_slice(part.as_bytes());
            t.len = end;
        }
        Ok(t)
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

/// True for a device id of the fleet (`[A-Za-z0-9._-]{1,64}`).
pub fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn hex_into(bytes: &[u8], out: &mut [u8], at: usize) -> Result<usize, FleetError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let dst = out
        .get_mut(at..at + 2 * bytes.len())
        .ok_or(FleetError::TooLarge)?;
    for (d, b) in dst.chunks_exact_mut(2).zip(bytes) {
        d[0] = HEX[usize::from(b >> 4)];
        d[1] = HEX[usize::from(b & 15)];
    }
    Ok(at + 2 * bytes.len())
}

fn put(out: &mut [u8], at: usize, s: &[u8]) -> Result<usize, FleetError> {
    out.get_mut(at..at + s.len())
        .ok_or(FleetError::TooLarge)?
        .copy_from_slice(s);
    Ok(at + s.len())
}

/// One device's onboarding.
pub struct Onboarding {
    id: Topic,
    subscription: Topic,
    hello: Topic,
    evidence: Topic,
    challenge: Topic,
    result: Topic,
    state: State,
    sha256: Sha256Fn,
    out: [u8; OUT_MAX],
    scratch: [u8; PEM_MAX],
    cert: [u8; CERT_MAX],
    reason: [u8; REASON_MAX],
    code: [u8; 64],
}

impl Onboarding {
    /// The onboarding of device `id`, hashing with `sha256` (for the CSR's signature).
    pub fn new(id: &str, sha256: Sha256Fn) -> Result<Onboarding, FleetError> {
        if !valid_id(id) {
            return Err(FleetError::BadId);
        }
        let mut own = Topic {
            buf: [0; TOPIC_MAX],
            len: id.len(),
        };
        put(&mut own.buf, 0, id.as_bytes())?;
        Ok(Onboarding {
            id: own,
            subscription: Topic::of(id, "down/onboard/#")?,
            hello: Topic::of(id, "up/onboard/hello")?,
            evidence: Topic::of(id, "up/onboard/evidence")?,
            challenge: Topic::of(id, "down/onboard/challenge")?,
            result: Topic::of(id, "down/onboard/result")?,
            state: State::Start,
            sha256,
            out: [0; OUT_MAX],
            scratch: [0; PEM_MAX],
            cert: [0; CERT_MAX],
            reason: [0; REASON_MAX],
            code: [0; 64],
        })
    }

    /// The filter to subscribe to before [`Onboarding::start`].
    pub fn subscription(&self) -> &str {
        self.subscription.as_str()
    }

    /// True once the LDevID is stored.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The onboarding request (`{}` on `dev/<id>/up/onboard/hello`); may be sent again to
    /// start over (a new challenge replaces the old one).
    pub fn start(&mut self) -> Action<'_> {
        self.state = State::AwaitChallenge;
        Action::Publish {
            topic: self.hello.as_str(),
            payload: b"{}",
        }
    }

    /// Handles a message received on `topic`.
    pub fn on_message<G: SecureGate>(
        &mut self,
        gate: &mut G,
        topic: &str,
        payload: &[u8],
    ) -> Result<Action<'_>, FleetError> {
        if topic == self.challenge.as_str() && self.state == State::AwaitChallenge {
            let n = self.evidence_for(gate, payload)?;
            self.state = State::AwaitResult;
            return Ok(Action::Publish {
                topic: self.evidence.as_str(),
                payload: self.out.get(..n).ok_or(FleetError::TooLarge)?,
            });
        }
        if topic == self.result.as_str() && self.state == State::AwaitResult {
            return self.result_of(gate, payload);
        }
        Ok(Action::Ignored)
    }

    /// The evidence for a challenge: `{"token": hex, "csr": hex}` in `self.out`; its length.
    fn evidence_for<G: SecureGate>(
        &mut self,
        gate: &mut G,
        payload: &[u8],
    ) -> Result<usize, FleetError> {
        let mut hex = [0u8; 128];
        let n = json::str_field(payload, "nonce", &mut hex).ok_or(FleetError::BadChallenge)?;
        if !matches!(n, 64 | 96 | 128) {
            return Err(FleetError::BadChallenge);
        }
        let mut nonce = [0u8; 64];
        for (i, pair) in hex.get(..n).unwrap_or(&[]).chunks_exact(2).enumerate() {
            let d = |c: u8| (c as char).to_digit(16).ok_or(FleetError::BadChallenge);
            *nonce.get_mut(i).ok_or(FleetError::BadChallenge)? =
                (d(pair[0])? * 16 + d(pair[1])?) as u8;
        }
        let nonce = nonce.get(..n / 2).ok_or(FleetError::BadChallenge)?;
        let mut token = [0u8; TOKEN_CAP];
        let t = gate.attest_token(nonce, &mut token)?;
        let public = ldevid_key(gate)?;
        let mut csr = [0u8; CSR_MAX];
        let c = build_csr(
            gate,
            self.sha256,
            LDEVID_KEY_ID,
            &public,
            self.id.as_str(),
            &mut csr,
        )?;
        let out = &mut self.out;
        let mut at = put(out, 0, b"{\"token\":\"")?;
        at = hex_into(token.get(..t).ok_or(FleetError::TooLarge)?, out, at)?;
        at = put(out, at, b"\",\"csr\":\"")?;
        at = hex_into(csr.get(..c).ok_or(FleetError::TooLarge)?, out, at)?;
        put(out, at, b"\"}")
    }

    fn result_of<G: SecureGate>(
        &mut self,
        gate: &mut G,
        payload: &[u8],
    ) -> Result<Action<'_>, FleetError> {
        let accepted = json::bool_field(payload, "accepted").ok_or(FleetError::BadResult)?;
        if !accepted {
            let r = json::str_field(payload, "reason", &mut self.reason).unwrap_or(0);
            let c = json::str_field(payload, "code", &mut self.code).unwrap_or(0);
            self.state = State::Done;
            fn text(b: &[u8]) -> &str {
                core::str::from_utf8(b).unwrap_or("(not UTF-8)")
            }
            return Ok(Action::Refused {
                reason: text(self.reason.get(..r).unwrap_or(&[])),
                code: text(self.code.get(..c).unwrap_or(&[])),
            });
        }
        let p = json::str_field(payload, "ldevid_pem", &mut self.scratch)
            .ok_or(FleetError::BadResult)?;
        let pem = self.scratch.get(..p).ok_or(FleetError::BadResult)?;
        let n = pem_certificate(pem, &mut self.cert).ok_or(FleetError::BadResult)?;
        let der = self.cert.get(..n).ok_or(FleetError::BadResult)?;
        if !is_sequence(der) {
            return Err(FleetError::BadResult);
        }
        // The certificate's SubjectPublicKeyInfo holds the key's SEC1 point verbatim.
        let mut public = [0u8; PUBLIC_KEY_LEN];
        gate.export_public_key(LDEVID_KEY_ID, &mut public)?;
        if !der.windows(PUBLIC_KEY_LEN).any(|w| w == public) {
            return Err(FleetError::NotOurKey);
        }
        for (uid, chunk) in (UID_LDEVID + 1..).zip(der.chunks(ITS_CHUNK)) {
            gate.its_set(uid, chunk)?;
        }
        gate.its_set(UID_LDEVID, &(n as u32).to_le_bytes())?;
        self.state = State::Done;
        Ok(Action::Onboarded { len: n })
    }
}

/// The LDevID key's public key, the key generated in the secure partition on first use.
fn ldevid_key<G: SecureGate>(gate: &mut G) -> Result<[u8; PUBLIC_KEY_LEN], FleetError> {
    let mut k = [0u8; PUBLIC_KEY_LEN];
    match gate.export_public_key(LDEVID_KEY_ID, &mut k) {
        Ok(_) => return Ok(k),
        Err(e) if e.status() == psa::ERROR_DOES_NOT_EXIST => {}
        Err(e) => return Err(e.into()),
    }
    gate.generate_signing_key(LDEVID_KEY_ID)?;
    gate.export_public_key(LDEVID_KEY_ID, &mut k)?;
    Ok(k)
}

/// The LDevID stored by a finished onboarding, into `out`; its length.
pub fn stored_ldevid<G: SecureGate>(
    gate: &mut G,
    out: &mut [u8; CERT_MAX],
) -> Result<usize, FleetError> {
    let mut l = [0u8; 4];
    if gate.its_get(UID_LDEVID, &mut l)? != 4 {
        return Err(FleetError::BadResult);
    }
    let len = u32::from_le_bytes(l) as usize;
    let dst = out.get_mut(..len).ok_or(FleetError::TooLarge)?;
    for (uid, chunk) in (UID_LDEVID + 1..).zip(dst.chunks_mut(ITS_CHUNK)) {
        if gate.its_get(uid, chunk)? != chunk.len() {
            return Err(FleetError::BadResult);
        }
    }
    Ok(len)
}
