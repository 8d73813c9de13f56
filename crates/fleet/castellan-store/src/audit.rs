//! The append-only, hash-chained audit log.
//!
//! ```text
//!  entry n:  hash_n = SHA-256( hash_{n-1} || "castellan-audit-v1" || seq || at || actor
//!                               || action || target || decision || reason [|| 1 || code] )
//!            hash_0 = 0^32
//! ```
//!
//! Integers are big-endian (seq u64, at i64), strings are a u32 big-endian length followed by
//! their UTF-8 bytes, the decision is one byte (1 allowed, 2 refused). A refusal's stable code
//! (schema 5), when the entry has one, follows as a byte 1 and the string; an entry without a
//! code hashes as before it existed. Appends run in a
//! transaction that holds the table's write lock, so concurrent appends (threads, processes,
//! service instances) never fork the chain. After each append the new head `(seq, hash)` is
//! written to the anchor file; [`Store::verify_audit`] checks the whole chain and the anchor.
//!
//! Limitation: the chain has no secret, so an attacker who can write the database can rewrite
//! it consistently from any point; only the anchor (kept where that attacker cannot write,
//! or copied elsewhere regularly) reveals a rewritten or truncated chain.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::db::Row;
use crate::registry::finish;
use crate::{AuditViolation, Store, StoreError};

/// Whether the recorded action was allowed or refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The action was allowed and carried out.
    Allowed,
    /// The action was refused.
    Refused,
}

impl Decision {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Refused => "refused",
        }
    }
    fn code(self) -> u8 {
        match self {
            Decision::Allowed => 1,
            Decision::Refused => 2,
        }
    }
    fn parse(s: &str) -> Option<Decision> {
        match s {
            "allowed" => Some(Decision::Allowed),
            "refused" => Some(Decision::Refused),
            _ => None,
        }
    }
}

/// What to record: who did what to what, whether it was allowed, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditRecord<'a> {
    /// Who: an operator name, a device id, or "system".
    pub actor: &'a str,
    /// What: for example "device.quarantine", "onboard", "token.authenticate".
    pub action: &'a str,
    /// On what: a device id, an operator, a release.
    pub target: &'a str,
    /// Allowed or refused.
    pub decision: Decision,
    /// Why (a refusal's reason, or a note).
    pub reason: &'a str,
    /// The refusal's stable machine code (`attestation.nonce_mismatch`), when it has one.
    pub code: Option<&'a str>,
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// When (Unix seconds).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Allowed or refused.
    pub decision: Decision,
    /// Why.
    pub reason: String,
    /// The refusal's stable machine code, when it has one.
    pub code: Option<String>,
    /// The previous entry's hash (zeros for the first).
    pub prev_hash: [u8; 32],
    /// This entry's hash.
    pub hash: [u8; 32],
}

/// The result of a successful [`Store::verify_audit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// How many entries were verified.
    pub count: u64,
    /// The last entry's hash (zeros when empty): record it elsewhere to anchor the log.
    pub head_hash: [u8; 32],
    /// Whether an anchor file was checked.
    pub anchor_checked: bool,
}

const DOMAIN: &[u8] = b"castellan-audit-v1";
const PAGE: i64 = 512;
/// How many positions are tried to tell a reordered entry from a modified one.
const REORDER_SEARCH_LIMIT: u64 = 1_000_000;

fn push_str(buf: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// The entry hash: SHA-256(prev_hash || canonical encoding of the fields).
#[allow(clippy::too_many_arguments)]
fn entry_hash(prev: &[u8; 32], seq: u64, at: i64, rec: &AuditRecord<'_>) -> [u8; 32] {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(DOMAIN);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&at.to_be_bytes());
    push_str(&mut buf, rec.actor);
    push_str(&mut buf, rec.action);
    push_str(&mut buf, rec.target);
    buf.push(rec.decision.code());
    push_str(&mut buf, rec.reason);
    if let Some(code) = rec.code {
        buf.push(1);
        push_str(&mut buf, code);
    }
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&buf);
    h.finalize().into()
}

fn hash_from_hex(s: &str) -> Option<[u8; 32]> {
    let v = hex::decode(s).ok()?;
    <[u8; 32]>::try_from(v.as_slice()).ok()
}

/// Rows of `audit_log` as entries; a stored hash that does not parse is reported as tampering.
pub(crate) fn entries_from_rows(rows: &[Row]) -> Result<Vec<AuditEntry>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let raw = RawEntry::from_row(r)?;
        let seq = raw.seq;
        out.push(
            raw.into_entry()
                .ok_or(StoreError::AuditTampered(AuditViolation::Modified { seq }))?,
        );
    }
    Ok(out)
}

/// A row as stored, before its content is trusted.
struct RawEntry {
    seq: u64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    decision: Option<Decision>,
    reason: String,
    code: Option<String>,
    prev_hash: Option<[u8; 32]>,
    hash: Option<[u8; 32]>,
}

impl RawEntry {
    fn from_row(r: &Row) -> Result<RawEntry, StoreError> {
        Ok(RawEntry {
            seq: u64::try_from(r.int(0)?).unwrap_or(0),
            at: r.int(1)?,
            actor: r.text(2)?,
            action: r.text(3)?,
            target: r.text(4)?,
            decision: Decision::parse(&r.text(5)?),
            reason: r.text(6)?,
            prev_hash: hash_from_hex(&r.text(7)?),
            hash: hash_from_hex(&r.text(8)?),
            code: r.opt_text(9)?,
        })
    }

    fn record(&self, decision: Decision) -> AuditRecord<'_> {
        AuditRecord {
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            decision,
            reason: &self.reason,
            code: self.code.as_deref(),
        }
    }

    /// Whether the stored hash matches the content when the entry is taken to be number `seq`.
    fn hashes_as(&self, seq: u64) -> bool {
        match (self.decision, self.prev_hash, self.hash) {
            (Some(d), Some(prev), Some(hash)) => {
                entry_hash(&prev, seq, self.at, &self.record(d)) == hash
            }
            _ => false,
        }
    }

    fn into_entry(self) -> Option<AuditEntry> {
        Some(AuditEntry {
            seq: self.seq,
            at: self.at,
            decision: self.decision?,
            prev_hash: self.prev_hash?,
            hash: self.hash?,
            actor: self.actor,
            action: self.action,
            target: self.target,
            reason: self.reason,
            code: self.code,
        })
    }
}

const SELECT_ENTRIES: &str = "SELECT seq, at, actor, action, target, decision, reason, prev_hash, hash, \
     code FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";

impl Store {
    /// Append an entry at time `at` (Unix seconds); returns it with its sequence number and
    /// hash. Appends are serialised by the database, whatever the number of writers.
    pub async fn append_audit(
        &self,
        rec: &AuditRecord<'_>,
        at: i64,
    ) -> Result<AuditEntry, StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            s.lock_table("audit_log").await?;
            let head = s.query_opt("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", vec![]).await?;
            let (prev_seq, prev_hash) = match head {
                Some(r) => {
                    let seq = u64::try_from(r.int(0)?).unwrap_or(0);
                    let hash = hash_from_hex(&r.text(1)?).ok_or(StoreError::AuditTampered(
                        AuditViolation::Modified { seq },
                    ))?;
                    (seq, hash)
                }
                None => (0, [0u8; 32]),
            };
            let seq = prev_seq + 1;
            let hash = entry_hash(&prev_hash, seq, at, rec);
            s.exec(
                "INSERT INTO audit_log (seq, at, actor, action, target, decision, reason, prev_hash, hash, code) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                vec![
                    i64::try_from(seq).unwrap_or(i64::MAX).into(),
                    at.into(),
                    rec.actor.into(),
                    rec.action.into(),
                    rec.target.into(),
                    rec.decision.as_str().into(),
                    rec.reason.into(),
                    hex::encode(prev_hash).into(),
                    hex::encode(hash).into(),
                    rec.code.into(),
                ],
            )
            .await?;
            Ok(AuditEntry {
                seq,
                at,
                actor: rec.actor.into(),
                action: rec.action.into(),
                target: rec.target.into(),
                decision: rec.decision,
                reason: rec.reason.into(),
                code: rec.code.map(str::to_string),
                prev_hash,
                hash,
            })
        }
        .await;
        let entry = finish(&mut s, r).await?;
        // Still holding the session, so in-process appends update the anchor in order.
        self.write_anchor(entry.seq, &entry.hash)?;
        drop(s);
        Ok(entry)
    }

    /// Entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_entries(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                SELECT_ENTRIES,
                vec![
                    i64::try_from(after).unwrap_or(i64::MAX).into(),
                    i64::from(limit).into(),
                ],
            )
            .await?;
        entries_from_rows(&rows)
    }

    /// Verify the whole chain and the anchor. Returns the number of entries, or
    /// [`StoreError::AuditTampered`] naming the first entry that is modified, missing or out of
    /// order, or a truncated tail.
    pub async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        let mut s = self.session().await?;
        let max_seq = s
            .query_opt("SELECT MAX(seq) FROM audit_log", vec![])
            .await?
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .map_or(0, |v| u64::try_from(v).unwrap_or(0));
        let mut expected_seq = 1u64;
        let mut prev_hash = [0u8; 32];
        let mut count = 0u64;
        let mut after = 0i64;
        loop {
            let rows = s
                .query(SELECT_ENTRIES, vec![after.into(), PAGE.into()])
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let e = RawEntry::from_row(r)?;
                after = i64::try_from(e.seq).unwrap_or(i64::MAX);
                if !e.hashes_as(e.seq) {
                    let limit = max_seq.min(REORDER_SEARCH_LIMIT);
                    if let Some(original_seq) = (1..=limit).find(|&n| n != e.seq && e.hashes_as(n))
                    {
                        return Err(StoreError::AuditTampered(AuditViolation::Reordered {
                            seq: e.seq,
                            original_seq,
                        }));
                    }
                    return Err(StoreError::AuditTampered(AuditViolation::Modified {
                        seq: e.seq,
                    }));
                }
                if e.seq != expected_seq {
                    return Err(StoreError::AuditTampered(AuditViolation::Missing {
                        first: expected_seq,
                        last: e.seq.saturating_sub(1),
                    }));
                }
                if e.prev_hash != Some(prev_hash) {
                    return Err(StoreError::AuditTampered(AuditViolation::BrokenLink {
                        seq: e.seq,
                    }));
                }
                prev_hash = e.hash.unwrap_or_default();
                expected_seq += 1;
                count += 1;
            }
        }
        let anchor_checked = match self.read_anchor()? {
            None if count > 0 && self.inner.anchor.is_some() => {
                return Err(StoreError::AuditTampered(AuditViolation::AnchorMissing));
            }
            None => false,
            Some((anchored_seq, anchored_hash)) => {
                if anchored_seq > count {
                    return Err(StoreError::AuditTampered(AuditViolation::Truncated {
                        anchored_seq,
                        head_seq: count,
                    }));
                }
                if anchored_seq > 0 {
                    let row = s
                        .query_opt(
                            "SELECT hash FROM audit_log WHERE seq = $1",
                            vec![i64::try_from(anchored_seq).unwrap_or(i64::MAX).into()],
                        )
                        .await?;
                    let stored = row
                        .map(|r| r.text(0))
                        .transpose()?
                        .and_then(|h| hash_from_hex(&h));
                    if stored != Some(anchored_hash) {
                        return Err(StoreError::AuditTampered(AuditViolation::AnchorMismatch {
                            seq: anchored_seq,
                        }));
                    }
                }
                true
            }
        };
        Ok(AuditReport {
            count,
            head_hash: prev_hash,
            anchor_checked,
        })
    }

    /// Write `seq hash` to the anchor file (atomically), unless it already holds a later head.
    fn write_anchor(&self, seq: u64, hash: &[u8; 32]) -> Result<(), StoreError> {
        let Some(path) = self.inner.anchor.as_deref() else {
            return Ok(());
        };
        let _guard = self
            .inner
            .anchor_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((old, _)) = read_anchor_file(path)? {
            if old >= seq {
                return Ok(());
            }
        }
        write_atomic(path, format!("{seq} {}\n", hex::encode(hash)).as_bytes())
            .map_err(|e| StoreError::Anchor { kind: e.kind() })
    }

    fn read_anchor(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        match self.inner.anchor.as_deref() {
            Some(path) => read_anchor_file(path),
            None => Ok(None),
        }
    }
}

fn read_anchor_file(path: &Path) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::Anchor { kind: e.kind() }),
    };
    let mut parts = text.split_whitespace();
    let seq = parts.next().and_then(|s| s.parse::<u64>().ok());
    let hash = parts.next().and_then(hash_from_hex);
    match (seq, hash) {
        (Some(seq), Some(hash)) => Ok(Some((seq, hash))),
        _ => Err(StoreError::Anchor {
            kind: std::io::ErrorKind::InvalidData,
        }),
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per write: several stores in one process may share an anchor file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp{}-{n}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
