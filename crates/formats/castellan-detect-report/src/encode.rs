//! The device side: a report's payload, its `Sig_structure`, the signer's signature and the
//! tagged `COSE_Sign1`, in fixed buffers (`no_std`, no heap).

use crate::cbor::{ARRAY, MAP, TAG, UINT, Writer};
use crate::{CONTENT_TYPE, DOMAIN_TAG, REPORT_MAX, Report, ReportError, SIGNATURE_LEN};

/// Length of the protected header.
pub(crate) const PROTECTED_LEN: usize = 4 + 2 + CONTENT_TYPE.len();
/// Largest payload.
const PAYLOAD_MAX: usize = 192;
/// CBOR tag of `COSE_Sign1`.
pub(crate) const TAG_COSE_SIGN1: u64 = 18;

/// The protected header: `{1: -7 (ES256), 3: CONTENT_TYPE}`.
pub(crate) fn protected() -> [u8; PROTECTED_LEN] {
    let mut p = [0u8; PROTECTED_LEN];
    let mut w = Writer::new(&mut p);
    w.head(MAP, 2);
    w.head(UINT, 1);
    w.raw(&[0x26]);
    w.head(UINT, 3);
    w.text(CONTENT_TYPE);
    p
}

/// Writes the report map into `out`; its length.
pub(crate) fn payload(r: &Report, out: &mut [u8]) -> Result<usize, ReportError> {
    let mut w = Writer::new(out);
    w.head(MAP, 8);
    w.head(UINT, 1);
    w.head(UINT, r.counter);
    w.head(UINT, 2);
    w.head(ARRAY, 2);
    w.head(UINT, r.first_event);
    w.head(UINT, r.events);
    w.head(UINT, 3);
    w.head(UINT, u64::from(r.score_milli));
    w.head(UINT, 4);
    w.raw(&[if r.crossed { 0xf5 } else { 0xf4 }]);
    w.head(UINT, 5);
    w.head(ARRAY, r.counters.len() as u64);
    for c in r.counters {
        w.head(UINT, u64::from(c));
    }
    w.head(UINT, 6);
    w.bytes(&r.model_digest);
    w.head(UINT, 7);
    w.bytes(&r.instance_id);
    w.head(UINT, 8);
    w.head(UINT, u64::from(r.alarm_milli));
    w.finish()
}

/// Writes `["Signature1", protected, DOMAIN_TAG, payload]` into `out`; its length.
pub(crate) fn sig_structure(payload: &[u8], out: &mut [u8]) -> Result<usize, ReportError> {
    let mut w = Writer::new(out);
    w.head(ARRAY, 4);
    w.text("Signature1");
    w.bytes(&protected());
    w.bytes(DOMAIN_TAG);
    w.bytes(payload);
    w.finish()
}

/// The encoded length of `report`.
pub fn report_len(report: &Report) -> Result<usize, ReportError> {
    let mut p = [0u8; PAYLOAD_MAX];
    let n = payload(report, &mut p)?;
    let mut out = [0u8; REPORT_MAX];
    assemble(
        p.get(..n).unwrap_or_default(),
        &[0; SIGNATURE_LEN],
        &mut out,
    )
}

fn assemble(
    payload: &[u8],
    sig: &[u8; SIGNATURE_LEN],
    out: &mut [u8],
) -> Result<usize, ReportError> {
    let mut w = Writer::new(out);
    w.head(TAG, TAG_COSE_SIGN1);
    w.head(ARRAY, 4);
    w.bytes(&protected());
    w.head(MAP, 0);
    w.bytes(payload);
    w.bytes(sig);
    w.finish()
}

/// The report signer: gets the `Sig_structure`, returns the ES256 signature `r‖s` or its own
/// status.
pub type ReportSigner<'a> = dyn FnMut(&[u8]) -> Result<[u8; SIGNATURE_LEN], i32> + 'a;

/// Encodes `report`, has `signer` sign its `Sig_structure` (ES256: ECDSA P-256 over its
/// SHA-256, `r‖s`; the signer returns its own status on failure) and writes the tagged
/// `COSE_Sign1` into `out`. Returns its length (at most [`REPORT_MAX`]).
pub fn encode_report(
    report: &Report,
    signer: &mut ReportSigner<'_>,
    out: &mut [u8],
) -> Result<usize, ReportError> {
    let mut p = [0u8; PAYLOAD_MAX];
    let n = payload(report, &mut p)?;
    let p = p.get(..n).ok_or(ReportError::BufferTooSmall)?;
    let mut tbs = [0u8; PAYLOAD_MAX + 2 * PROTECTED_LEN];
    let t = sig_structure(p, &mut tbs)?;
    let sig =
        signer(tbs.get(..t).ok_or(ReportError::BufferTooSmall)?).map_err(ReportError::Signer)?;
    assemble(p, &sig, out)
}
