//! Searching the audit log, newest first: the entries about one device (as actor, as target, or
//! named in a target path or topic), of one actor, of one action (or action prefix), with one
//! outcome. Each entry is checked the way [`Store::audit_entries`] checks it (a stored hash
//! that does not parse is reported as tampering); the chain itself is verified by
//! [`Store::verify_audit`].

use crate::audit::entries_from_rows;
use crate::db::Value;
use crate::device_query::like_literal;
use crate::{AuditEntry, Decision, Store, StoreError};

/// Which entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries about this device id.
    pub device: Option<String>,
    /// Entries of this actor.
    pub actor: Option<String>,
    /// Entries whose action starts with this (`console.` gives every console action).
    pub action: Option<String>,
    /// Entries with this outcome.
    pub decision: Option<Decision>,
    /// Entries older than this sequence number (paging backwards).
    pub before: Option<u64>,
    /// At most this many (1 to 1000).
    pub limit: u32,
}

impl Store {
    /// The entries matching `f`, newest first.
    pub async fn search_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conds: Vec<String> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        let mut param = |v: Value| {
            params.push(v);
            format!("${}", params.len())
        };
        if let Some(d) = &f.device {
            let exact = param(d.as_str().into());
            let lit = like_literal(d);
            let inner = param(format!("%/{lit}/%").into());
            let last = param(format!("%/{lit}").into());
            conds.push(format!(
                "(actor = {exact} OR target = {exact} OR LOWER(target) LIKE {inner} ESCAPE '\\' \
                 OR LOWER(target) LIKE {last} ESCAPE '\\')"
            ));
        }
        if let Some(a) = &f.actor {
            conds.push(format!("actor = {}", param(a.as_str().into())));
        }
        if let Some(a) = &f.action {
            let p = param(format!("{}%", like_literal(a)).into());
            conds.push(format!("LOWER(action) LIKE {p} ESCAPE '\\'"));
        }
        if let Some(d) = f.decision {
            conds.push(format!("decision = {}", param(d.as_str().into())));
        }
        if let Some(b) = f.before {
            let b = i64::try_from(b).unwrap_or(i64::MAX);
            conds.push(format!("seq < {}", param(b.into())));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let limit = param(i64::from(f.limit.clamp(1, 1000)).into());
        let sql = format!(
            "SELECT seq, at, actor, action, target, decision, reason, prev_hash, hash, code \
             FROM audit_log {filter} ORDER BY seq DESC LIMIT {limit}"
        );
        let mut s = self.session().await?;
        let rows = s.query(sql, params).await?;
        entries_from_rows(&rows)
    }
}
