//! Key custody check of the QEMU device (`mqtt … custody`, see the firmware's `custody`
//! module): the non-secure world printed the public keys of its TLS keys and every non-zero
//! 64-byte line of its RAM after both TLS sessions; no 32-byte window of that RAM, at any byte
//! offset and in either byte order, may be a private scalar whose multiple of the generator is
//! one of those public keys.
//!
//! The check cannot see the secret itself (the secure partition never reveals it), so it
//! derives: a window `w` is the key iff `w·G` is its public point. A planted control (a host
//! key written into a copy of the dump at an odd offset) must be found, or the check itself is
//! wrong and the run fails.

use std::collections::BTreeMap;

use castellan_bridge::RunOutput;
use p256::elliptic_curve::PrimeField as _;
use p256::{ProjectivePoint, PublicKey, Scalar};

/// The dump as printed: the public keys by key id, the RAM as contiguous runs by address.
pub struct Dump {
    pub keys: Vec<(u32, Vec<u8>)>,
    pub runs: BTreeMap<u32, Vec<u8>>,
}

/// Reads the `[app] custody:` lines of a run.
pub fn parse(out: &RunOutput) -> Result<Dump, String> {
    let mut keys = Vec::new();
    let mut runs: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut last_end = None;
    let mut done = false;
    for l in &out.lines {
        let Some(rest) = l.strip_prefix("[app] custody: ") else {
            continue;
        };
        let mut w = rest.split_ascii_whitespace();
        let (kind, addr, data) = (w.next(), w.next(), w.next());
        match (kind, addr, data) {
            (Some("dumped"), _, _) => done = true,
            (Some(kind @ ("key" | "ram")), Some(a), Some(d)) => {
                let a = u32::from_str_radix(a, 16).map_err(|e| format!("{l}: {e}"))?;
                let d = hex::decode(d).map_err(|e| format!("{l}: {e}"))?;
                if kind == "key" {
                    keys.push((a, d));
                } else if last_end == Some(a) {
                    if let Some((_, run)) = runs.iter_mut().next_back() {
                        run.extend_from_slice(&d);
                    }
                    last_end = Some(a + d.len() as u32);
                } else {
                    last_end = Some(a + d.len() as u32);
                    runs.insert(a, d);
                }
            }
            _ => return Err(format!("malformed custody line: {l}")),
        }
    }
    if !done || keys.len() != 2 {
        return Err(format!(
            "incomplete custody dump ({} keys, finished: {done})",
            keys.len()
        ));
    }
    Ok(Dump { keys, runs })
}

/// The windows of `bytes` (every offset, both byte orders) whose multiple of the generator is
/// one of `points`: (offset, index of the point).
fn find(bytes: &[u8], points: &[ProjectivePoint]) -> Vec<(usize, usize)> {
    let mut hits = Vec::new();
    for (off, w) in bytes.windows(32).enumerate() {
        // Zero and constant windows are not keys; skipping them keeps the scan short.
        if w.iter().all(|&b| b == w[0]) {
            continue;
        }
        let mut le = [0u8; 32];
        le.copy_from_slice(w);
        let be = le;
        le.reverse();
        for candidate in [be, le] {
            let Some(s) = Option::<Scalar>::from(Scalar::from_repr(candidate.into())) else {
                continue;
            };
            let p = ProjectivePoint::GENERATOR * s;
            if let Some(i) = points.iter().position(|k| *k == p) {
                hits.push((off, i));
            }
        }
    }
    hits
}

/// What the scan saw: bytes and windows scanned.
pub struct Verdict {
    pub bytes: usize,
    pub windows: usize,
}

/// Scans the dump for the device's private keys; a planted control must be found first.
pub fn check(dump: &Dump) -> Result<Verdict, String> {
    let mut points = Vec::new();
    for (id, k) in &dump.keys {
        let pk = PublicKey::from_sec1_bytes(k).map_err(|e| format!("key {id:#x}: {e}"))?;
        points.push(ProjectivePoint::from(*pk.as_affine()));
    }
    // The control: a host key planted at an odd offset of a copy of the first 96 bytes of the
    // dump, little endian (the harder order); the scan must report it.
    let control = Scalar::from(0x0123_4567_89ab_cdef_u64) * Scalar::from(0xfedc_ba98_7654_3211_u64);
    let mut planted = dump
        .runs
        .values()
        .next()
        .map(|r| r[..r.len().min(96)].to_vec())
        .unwrap_or_default();
    planted.resize(planted.len().max(64), 0);
    let mut le: [u8; 32] = control.to_repr().into();
    le.reverse();
    planted[7..39].copy_from_slice(&le);
    let control_point = [ProjectivePoint::GENERATOR * control];
    if !find(&planted, &control_point).contains(&(7, 0)) {
        return Err("the custody scan misses a planted key: the check itself is broken".into());
    }
    let (mut bytes, mut windows) = (0, 0);
    for (addr, run) in &dump.runs {
        // The lines around a run were all zero (not printed): windows straddling its edges
        // see those zeros.
        let mut padded = vec![0u8; 31];
        padded.extend_from_slice(run);
        padded.extend_from_slice(&[0; 31]);
        bytes += run.len();
        windows += padded.len() - 31;
        if let Some((off, i)) = find(&padded, &points).first() {
            return Err(format!(
                "KEY CUSTODY BROKEN: the private key {:#x} is in non-secure RAM at {:#010x}",
                dump.keys[*i].0,
                (*addr as usize + off).wrapping_sub(31)
            ));
        }
    }
    Ok(Verdict { bytes, windows })
}
