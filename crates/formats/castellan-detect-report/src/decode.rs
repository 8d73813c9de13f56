//! The fleet side: the one strict parser of a report's bytes ([`parse_report`]: hostile input,
//! fuzzed) and the signature check ([`verify_report`], `std`).

use crate::cbor::{ARRAY, MAP, Reader, TAG};
use crate::encode::{TAG_COSE_SIGN1, protected};
use crate::{COUNTERS, INSTANCE_ID_LEN, REPORT_MAX, Report, ReportError, SIGNATURE_LEN};

/// A parsed, not yet verified, report: what it says and what its signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedReport<'a> {
    /// What it says.
    pub report: Report,
    /// The payload bytes (signed).
    pub payload: &'a [u8],
    /// The signature, `r‖s`.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Parses a report without checking its signature: exactly the structure
/// [`crate::encode_report`] writes, or [`ReportError::Malformed`].
pub fn parse_report(bytes: &[u8]) -> Result<ParsedReport<'_>, ReportError> {
    if bytes.len() > REPORT_MAX {
        return Err(ReportError::Malformed("longer than a report"));
    }
    let mut r = Reader::new(bytes);
    if r.head(TAG, "COSE_Sign1 tag")? != TAG_COSE_SIGN1 {
        return Err(ReportError::Malformed("COSE_Sign1 tag"));
    }
    if r.head(ARRAY, "COSE_Sign1 array")? != 4 {
        return Err(ReportError::Malformed("COSE_Sign1 array"));
    }
    if r.bytes("protected header")? != protected() {
        return Err(ReportError::Malformed(
            "protected header (algorithm or content type)",
        ));
    }
    if r.head(MAP, "unprotected header")? != 0 {
        return Err(ReportError::Malformed("unprotected header"));
    }
    let payload = r.bytes("payload")?;
    let signature = r
        .bytes("signature")?
        .try_into()
        .map_err(|_| ReportError::Malformed("signature length"))?;
    r.end("trailing bytes")?;
    let report = parse_payload(payload)?;
    Ok(ParsedReport {
        report,
        payload,
        signature,
    })
}

fn parse_payload(p: &[u8]) -> Result<Report, ReportError> {
    let mut r = Reader::new(p);
    if r.head(MAP, "report map")? != 8 {
        return Err(ReportError::Malformed("report map"));
    }
    r.key(1, "counter key")?;
    let counter = r.uint("counter")?;
    r.key(2, "window key")?;
    if r.head(ARRAY, "window")? != 2 {
        return Err(ReportError::Malformed("window"));
    }
    let first_event = r.uint("window start")?;
    let events = r.uint("window events")?;
    r.key(3, "score key")?;
    let score_milli = r.u32("score")?;
    r.key(4, "crossed key")?;
    let crossed = r.bool("crossed")?;
    r.key(5, "counters key")?;
    if r.head(ARRAY, "counters")? != COUNTERS as u64 {
        return Err(ReportError::Malformed("counters"));
    }
    let mut counters = [0u32; COUNTERS];
    for c in &mut counters {
        *c = r.u32("counter value")?;
    }
    r.key(6, "model key")?;
    let model_digest = r
        .bytes("model digest")?
        .try_into()
        .map_err(|_| ReportError::Malformed("model digest length"))?;
    r.key(7, "instance id key")?;
    let instance_id: [u8; INSTANCE_ID_LEN] = r
        .bytes("instance id")?
        .try_into()
        .map_err(|_| ReportError::Malformed("instance id length"))?;
    r.key(8, "alarm key")?;
    let alarm_milli = r.u32("alarm")?;
    r.end("trailing payload bytes")?;
    Ok(Report {
        counter,
        first_event,
        events,
        score_milli,
        crossed,
        counters,
        model_digest,
        instance_id,
        alarm_milli,
    })
}

/// Parses `bytes` and checks its ES256 signature with `public_key` (P-256, SEC1): the report,
/// or why it is refused.
#[cfg(feature = "std")]
pub fn verify_report(bytes: &[u8], public_key: &[u8]) -> Result<Report, ReportError> {
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::{Signature, VerifyingKey};

    let parsed = parse_report(bytes)?;
    let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| ReportError::BadKey)?;
    let sig = Signature::from_slice(&parsed.signature).map_err(|_| ReportError::BadSignature)?;
    let mut tbs = vec![0u8; REPORT_MAX + 128];
    let n = crate::encode::sig_structure(parsed.payload, &mut tbs)?;
    let tbs = tbs.get(..n).ok_or(ReportError::BufferTooSmall)?;
    key.verify(tbs, &sig)
        .map_err(|_| ReportError::BadSignature)?;
    Ok(parsed.report)
}
