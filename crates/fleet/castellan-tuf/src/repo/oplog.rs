//! The repository's operations log: every `castellan repo` command that changes the
//! repository (init, key add/remove, delegate, target add, import, rotate-root, resign) appends
//! one entry to `<dir>/log/operations.log`, hash-chained to the one before, so that commands
//! run offline, on a machine without access to the fleet's store, still reach the audit trail:
//! the fleet service records every new entry in its own audit chain when it serves the
//! repository (`castellan-server`, `tuf_oplog`).
//!
//! ```text
//!  operations.log, one JSON object a line:
//!   {"seq":1,"at":"2026-…Z","by":"alice@offline-1","command":"init","detail":"…",
//!    "prev":"00…00","hash":"<SHA-256 of the entry's fields with prev>"}
//!   {"seq":2,…,"prev":"<hash of entry 1>","hash":"…"}
//! ```
//!
//! The chain makes the log append-only as far as the service is concerned: it remembers the
//! hash of the last entry it recorded, so an entry it recorded cannot be rewritten, nor the log
//! truncated, without the service auditing it. Whoever can write the directory can still drop
//! entries it has not seen yet; what those commands published is then audited anyway, as
//! metadata published outside the server (`tuf.publish`). `by` is the operator's account as the
//! offline machine names it (`$USER@host`): a claim, not an authentication.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::{TufError, io};

/// The log's directory within the repository.
pub const LOG_DIR: &str = "log";
/// The log's file within [`LOG_DIR`].
pub const LOG_FILE: &str = "operations.log";
/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// An entry's longest line (a hostile log is not read without bound).
const MAX_LINE: usize = 16 * 1024;

/// One command run on the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When the command ran (RFC 3339, UTC).
    pub at: String,
    /// Who ran it, as the machine names the account (`user@host`).
    pub by: String,
    /// The command (`resign`, `import`, `key add`, …).
    pub command: String,
    /// What it did (`published targets v3`, `re-signed: snapshot true, timestamp true`, …).
    pub detail: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 (hex) of this entry's other fields.
    pub hash: String,
}

/// The fields an entry's hash covers, in this order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    at: &'a str,
    by: &'a str,
    command: &'a str,
    detail: &'a str,
    prev: &'a str,
}

impl Entry {
    fn compute_hash(&self) -> Result<String, TufError> {
        let fields = Hashed {
            seq: self.seq,
            at: &self.at,
            by: &self.by,
            command: &self.command,
            detail: &self.detail,
            prev: &self.prev,
        };
        let bytes = serde_json::to_vec(&fields)?;
        Ok(hex::encode(sha2::Sha256::digest(&bytes)))
    }
}

/// Where the log of the repository in `dir` is.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join(LOG_DIR).join(LOG_FILE)
}

/// Every entry of the log of the repository in `dir`, the chain verified (numbering, each
/// `prev`, each `hash`); empty when there is no log. A broken chain is
/// [`TufError::OperationsLog`] naming the first bad line.
pub fn read(dir: &Path) -> Result<Vec<Entry>, TufError> {
    let path = log_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path.display(), e)),
    };
    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let broken = |why: String| TufError::OperationsLog { line: line_no, why };
        if line.len() > MAX_LINE {
            return Err(broken(format!("longer than {MAX_LINE} bytes")));
        }
        let entry: Entry =
            serde_json::from_str(line).map_err(|e| broken(format!("not an entry: {e}")))?;
        let (want_seq, want_prev) = match entries.last() {
            Some(last) => (last.seq.saturating_add(1), last.hash.as_str()),
            None => (1, GENESIS),
        };
        if entry.seq != want_seq {
            return Err(broken(format!(
                "entry {} where entry {want_seq} belongs",
                entry.seq
            )));
        }
        if entry.prev != want_prev {
            return Err(broken(format!(
                "entry {} does not follow the entry before it (prev {})",
                entry.seq, entry.prev
            )));
        }
        if entry.compute_hash()? != entry.hash {
            return Err(broken(format!(
                "entry {} was altered (its hash does not match its fields)",
                entry.seq
            )));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The log of one repository, opened to append (its chain verified first: a command does not
/// run on a repository whose log is broken).
#[derive(Debug)]
pub struct OperationsLog {
    path: PathBuf,
    last: Option<(u64, String)>,
}

impl OperationsLog {
    /// Open the log of the repository in `dir` (created by the first [`Self::append`]).
    pub fn open(dir: &Path) -> Result<OperationsLog, TufError> {
        let last = read(dir)?.pop().map(|e| (e.seq, e.hash));
        Ok(OperationsLog {
            path: log_path(dir),
            last,
        })
    }

    /// Append the entry of `command` run by `by`, which did `detail`, and sync it to disk.
    pub fn append(
        &mut self,
        command: &str,
        detail: &str,
        by: &str,
        now: jiff::Timestamp,
    ) -> Result<Entry, TufError> {
        let (seq, prev) = match &self.last {
            Some((seq, hash)) => (seq.saturating_add(1), hash.clone()),
            None => (1, GENESIS.to_owned()),
        };
        let mut entry = Entry {
            seq,
            at: now.round(jiff::Unit::Second).unwrap_or(now).to_string(),
            by: by.to_owned(),
            command: command.to_owned(),
            detail: detail.to_owned(),
            prev,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash()?;
        let mut line = serde_json::to_string(&entry)?;
        line.push('\n');
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent.display(), e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io(self.path.display(), e))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io(self.path.display(), e))?;
        self.last = Some((entry.seq, entry.hash.clone()));
        Ok(entry)
    }
}

/// The account running this process, as the machine names it: `$USER@<hostname>` (either part
/// `unknown` when the machine does not say).
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(dir: &Path, commands: &[&str]) -> Vec<Entry> {
        let mut log = OperationsLog::open(dir).unwrap();
        let now = jiff::Timestamp::now();
        commands
            .iter()
            .map(|c| {
                log.append(c, &format!("did {c}"), "alice@offline-1", now)
                    .unwrap()
            })
            .collect()
    }

    fn rewrite(dir: &Path, f: impl FnOnce(&mut Vec<String>)) {
        let path = log_path(dir);
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        f(&mut lines);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn entries_chain_and_read_back_across_openings() {
        let t = tempfile::tempdir().unwrap();
        assert!(read(t.path()).unwrap().is_empty());
        let first = log_of(t.path(), &["init", "import"]);
        let second = log_of(t.path(), &["resign"]);
        let all = read(t.path()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[..2], first[..]);
        assert_eq!(all[2], second[0]);
        assert_eq!(all[0].prev, GENESIS);
        assert_eq!(all[2].prev, all[1].hash);
        assert_eq!(all[2].seq, 3);
    }

    #[test]
    fn attack_edited_log_entry_is_detected() {
        let t = tempfile::tempdir().unwrap();
        log_of(t.path(), &["init", "resign", "import"]);
        rewrite(t.path(), |lines| {
            lines[1] = lines[1].replace("did resign", "did nothing");
        });
        let err = read(t.path()).unwrap_err();
        assert!(
            matches!(&err, TufError::OperationsLog { line: 2, why } if why.contains("altered")),
            "{err}"
        );
        // No command runs on a repository whose log is broken.
        assert!(OperationsLog::open(t.path()).is_err());
    }

    #[test]
    fn attack_removed_or_reordered_log_entry_is_detected() {
        let t = tempfile::tempdir().unwrap();
        log_of(t.path(), &["init", "resign", "import"]);
        rewrite(t.path(), |lines| {
            lines.remove(1);
        });
        let err = read(t.path()).unwrap_err();
        assert!(
            matches!(&err, TufError::OperationsLog { line: 2, .. }),
            "{err}"
        );
        rewrite(t.path(), |lines| lines.swap(0, 1));
        assert!(read(t.path()).is_err());
    }

    #[test]
    fn attack_hostile_log_lines_are_refused_not_panicked_on() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join(LOG_DIR)).unwrap();
        for text in [
            "not json\n".to_owned(),
            "{\"seq\":18446744073709551615}\n".to_owned(),
            format!("{}\n", "x".repeat(MAX_LINE + 1)),
        ] {
            std::fs::write(log_path(t.path()), text).unwrap();
            assert!(matches!(
                read(t.path()),
                Err(TufError::OperationsLog { line: 1, .. })
            ));
        }
    }
}
