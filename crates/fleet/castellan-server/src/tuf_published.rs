//! What the TUF repository publishes, as the server last saw it: every change of a role's
//! published version goes to the audit trail with the keys that signed it, whoever made it.
//!
//! The repository is also edited without the server: the offline roles are imported with
//! `castellan repo import`, and `castellan repo resign` re-signs the online roles by hand. Those
//! commands may run on a machine that has no access to the fleet's store, so the server audits
//! what it finds published instead of trusting every command to report itself:
//!
//! ```text
//!  start            ─▶ audit "tuf.serve"   root v1, targets v2, sensor-v1 v1, snapshot v3, …
//!  every re-sign check: versions now ≠ versions seen
//!                   ─▶ audit "tuf.publish" "published outside the server: snapshot v4
//!                                           (signed by key 1a2b…), timestamp v9 (…)"
//!  the server's own re-signing ─▶ "tuf.resign" (tuf_online), then remembered as seen
//! ```

use std::collections::BTreeMap;

use castellan_tuf::TufError;
use castellan_tuf::repo::Repository;

/// A role's published version and the keys whose signatures it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published {
    /// Published version.
    pub version: u64,
    /// Key ids of its signatures.
    pub signers: Vec<String>,
}

/// Each published role (top-level and delegated), by name.
pub(crate) type Versions = BTreeMap<String, Published>;

/// Read the versions `repo` publishes now.
pub(crate) fn versions(repo: &Repository) -> Result<Versions, TufError> {
    let mut seen = Versions::new();
    for role in repo.status()?.roles {
        if let Some(envelope) = repo.published(&role.name)? {
            seen.insert(
                role.name,
                Published {
                    version: envelope.version()?,
                    signers: envelope.signers(),
                },
            );
        }
    }
    Ok(seen)
}

/// The roles whose published version differs from `before`, described for the audit trail
/// (`snapshot v4 (signed by key 1a2b3c4d…)`); empty when nothing changed.
pub(crate) fn changes(before: &Versions, now: &Versions) -> Vec<String> {
    now.iter()
        .filter(|(name, p)| before.get(*name) != Some(*p))
        .map(|(name, p)| describe(name, p))
        .chain(
            before
                .keys()
                .filter(|name| !now.contains_key(*name))
                .map(|name| format!("{name} no longer published")),
        )
        .collect()
}

/// Every role of `now`, described (for the audit entry when the server starts serving).
pub(crate) fn summary(now: &Versions) -> Vec<String> {
    now.iter().map(|(name, p)| describe(name, p)).collect()
}

fn describe(name: &str, p: &Published) -> String {
    let keys: Vec<String> = p
        .signers
        .iter()
        .map(|k| format!("key {}…", k.get(..16).unwrap_or(k)))
        .collect();
    format!("{name} v{} (signed by {})", p.version, keys.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(version: u64, key: &str) -> Published {
        Published {
            version,
            signers: vec![key.to_owned()],
        }
    }

    #[test]
    fn a_new_version_a_new_signer_and_a_removed_role_are_changes() {
        let before: Versions = [
            ("snapshot".to_owned(), role(3, "aa")),
            ("timestamp".to_owned(), role(8, "bb")),
            ("sensor-v1".to_owned(), role(1, "cc")),
        ]
        .into();
        let mut now = before.clone();
        assert!(changes(&before, &now).is_empty());
        now.insert("timestamp".into(), role(9, "bb"));
        now.insert("snapshot".into(), role(3, "dd"));
        now.remove("sensor-v1");
        assert_eq!(
            changes(&before, &now),
            [
                "snapshot v3 (signed by key dd…)",
                "timestamp v9 (signed by key bb…)",
                "sensor-v1 no longer published"
            ]
        );
    }
}
