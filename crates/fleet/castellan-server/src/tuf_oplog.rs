//! The TUF repository's operations log in the audit trail: `castellan repo` commands run by
//! hand (on this machine or an offline one whose repository directory is copied back) append
//! hash-chained entries to `<repo>/log/operations.log` (`castellan_tuf::repo::oplog`); the
//! server records each new entry in its own audit chain when it starts serving the repository
//! and at every re-signing check.
//!
//! ```text
//!  entry n+1, n+2 … (chain verified)  ─▶ audit "tuf.offline" allowed, target tuf:offline-log/<seq>
//!                                        "<command> by <user@host> at <time>: <detail>
//!                                         (entry <seq>, hash <hash>)"
//!  the last recorded entry altered, the log truncated or its chain broken
//!                                     ─▶ audit "tuf.offline" refused (once per distinct finding);
//!                                        nothing recorded until the log is repaired
//! ```
//!
//! Where the log stands is read back from the audit trail itself (the newest allowed
//! `tuf.offline` entry), so a restarted server, or another instance on the same store, goes on
//! from there: no state of its own, no schema change.

use castellan_store::{AuditFilter, Decision};
use castellan_tuf::TufError;
use castellan_tuf::repo::oplog::Entry;

use crate::core::Core;

/// The audit action of the log's entries and of its refusals.
pub(crate) const ACTION: &str = "tuf.offline";
/// The audit target of entry `seq` is this followed by `seq`.
const TARGET_PREFIX: &str = "tuf:offline-log/";

/// Where the log stands for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// The last entry recorded: its number and hash.
    pub recorded: Option<(u64, String)>,
    /// The last problem audited (the same one is not audited again at every check).
    pub problem: Option<String>,
}

/// What to audit after a look at the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// A new entry to record.
    Entry {
        /// `tuf:offline-log/<seq>`.
        target: String,
        /// The entry, described.
        reason: String,
    },
    /// The log no longer matches what was recorded, or is broken.
    Problem(String),
}

impl Cursor {
    /// Where the audit trail of `core` says the log stands.
    pub(crate) async fn load(core: &Core) -> Cursor {
        let filter = AuditFilter {
            action: Some(ACTION.into()),
            decision: Some(Decision::Allowed),
            limit: 1,
            ..AuditFilter::default()
        };
        let recorded = match core.store.search_audit(&filter).await {
            Ok(entries) => entries.first().and_then(|e| parse(&e.target, &e.reason)),
            Err(e) => {
                log::warn!("TUF operations log: reading the audit trail: {e}");
                None
            }
        };
        Cursor {
            recorded,
            problem: None,
        }
    }

    /// Compare `log` (the verified entries, or why they could not be read) with what was
    /// recorded; the findings to audit, in order (the cursor moves past recorded entries).
    pub(crate) fn look(&mut self, log: Result<Vec<Entry>, TufError>) -> Vec<Finding> {
        let entries = match log {
            Ok(entries) => entries,
            Err(e) => return self.problem(e.to_string()),
        };
        let since = match &self.recorded {
            None => 0,
            Some((seq, hash)) => {
                let index = usize::try_from(*seq)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(1);
                match entries.get(index) {
                    None => {
                        return self.problem(format!(
                            "the repository's operations log was truncated: entry {seq} was \
                             recorded, the log now has {} entries",
                            entries.len()
                        ));
                    }
                    Some(e) if e.hash != *hash => {
                        return self.problem(format!(
                            "the repository's operations log was rewritten: entry {seq} is not \
                             the one recorded (hash {hash}, now {})",
                            e.hash
                        ));
                    }
                    Some(_) => *seq,
                }
            }
        };
        self.problem = None;
        let new: Vec<Finding> = entries
            .iter()
            .filter(|e| e.seq > since)
            .map(|e| Finding::Entry {
                target: format!("{TARGET_PREFIX}{}", e.seq),
                reason: format!(
                    "{} by {} at {}: {} (entry {}, hash {})",
                    e.command, e.by, e.at, e.detail, e.seq, e.hash
                ),
            })
            .collect();
        if let Some(last) = entries.last().filter(|e| e.seq > since) {
            self.recorded = Some((last.seq, last.hash.clone()));
        }
        new
    }

    fn problem(&mut self, text: String) -> Vec<Finding> {
        if self.problem.as_deref() == Some(text.as_str()) {
            return Vec::new();
        }
        self.problem = Some(text.clone());
        vec![Finding::Problem(text)]
    }
}

/// The entry number and hash an audit entry of [`ACTION`] recorded.
fn parse(target: &str, reason: &str) -> Option<(u64, String)> {
    let seq = target.strip_prefix(TARGET_PREFIX)?.parse().ok()?;
    let hash = reason.rsplit_once(", hash ")?.1.strip_suffix(')')?;
    Some((seq, hash.to_owned()))
}

/// Write `findings` to the audit trail.
pub(crate) async fn audit(core: &Core, findings: Vec<Finding>) {
    for f in findings {
        match f {
            Finding::Entry { target, reason } => {
                log::info!("TUF operations log: {reason}");
                core.auditor
                    .append("tuf-offline", ACTION, &target, true, &reason)
                    .await;
            }
            Finding::Problem(reason) => {
                log::warn!("TUF operations log: {reason}");
                core.auditor
                    .append("system", ACTION, "tuf:offline-log", false, &reason)
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u64) -> Vec<Entry> {
        (1..=n)
            .map(|seq| Entry {
                seq,
                at: "2026-12-07T18:00:00Z".into(),
                by: "alice@offline-1".into(),
                command: "resign".into(),
                detail: format!("did {seq}"),
                prev: format!("h{}", seq - 1),
                hash: format!("h{seq}"),
            })
            .collect()
    }

    fn recorded(findings: &[Finding]) -> Vec<String> {
        findings
            .iter()
            .map(|f| match f {
                Finding::Entry { target, .. } => target.clone(),
                Finding::Problem(p) => format!("problem: {p}"),
            })
            .collect()
    }

    #[test]
    fn new_entries_are_recorded_once_and_the_cursor_reads_back_from_the_trail() {
        let mut c = Cursor::default();
        let first = c.look(Ok(entries(2)));
        assert_eq!(recorded(&first), ["tuf:offline-log/1", "tuf:offline-log/2"]);
        assert!(c.look(Ok(entries(2))).is_empty());
        assert_eq!(recorded(&c.look(Ok(entries(3)))), ["tuf:offline-log/3"]);
        // A restarted server finds where it stood in its own audit entry.
        let Finding::Entry { target, reason } = &first[1] else {
            panic!()
        };
        assert_eq!(parse(target, reason), Some((2, "h2".into())));
        assert!(reason.starts_with("resign by alice@offline-1 at 2026-12-07T18:00:00Z: did 2"));
    }

    #[test]
    fn attack_rewritten_or_truncated_log_is_audited_once() {
        let mut c = Cursor::default();
        c.look(Ok(entries(3)));
        let mut rewritten = entries(3);
        rewritten[2].hash = "forged".into();
        let found = recorded(&c.look(Ok(rewritten.clone())));
        assert!(
            found.len() == 1 && found[0].contains("rewritten"),
            "{found:?}"
        );
        assert!(c.look(Ok(rewritten)).is_empty(), "audited once");
        let found = recorded(&c.look(Ok(entries(1))));
        assert!(
            found.len() == 1 && found[0].contains("truncated"),
            "{found:?}"
        );
        let broken = TufError::OperationsLog {
            line: 2,
            why: "altered".into(),
        };
        let found = recorded(&c.look(Err(broken)));
        assert!(found[0].contains("broken at line 2"), "{found:?}");
        // Repaired (the recorded entries back as they were): recording goes on.
        assert_eq!(recorded(&c.look(Ok(entries(4)))), ["tuf:offline-log/4"]);
    }
}
