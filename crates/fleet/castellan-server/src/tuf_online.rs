//! The TUF repository's online roles while the server runs: snapshot and timestamp re-signed
//! before they reach half their lifetime, with keys in a PKCS#11 token where one is configured
//! (`ServerConfig::tuf_online_keys`; `castellan serve` uses the CA keys' token), and every
//! re-signing written to the audit trail.
//!
//! ```text
//!  every tuf_resign_check ─▶ Repository::resign_due ─▶ signed by the keys the root trusts:
//!                              token keys castellan-tuf-{snapshot,timestamp} (never leave it)
//!                              else the key files under <repo>/online/
//!                           ─▶ audit "tuf.resign" (which roles, which keys) or its refusal
//!                  and before it: what was published by anyone else since the last check
//!                           ─▶ audit "tuf.publish" (roles, versions, signing keys; see tuf_published)
//!                  and the commands run by hand on the repository (its operations log)
//!                           ─▶ audit "tuf.offline" (each entry once; see tuf_oplog)
//! ```
//!
//! With a token, the server generates the two keys in it on first start (labels
//! `castellan-tuf-snapshot` and `castellan-tuf-timestamp`) and writes their public keys to
//! `<repo>/hsm/<role>.pub.pem`: the root keys put them in the root (`castellan repo key add
//! --role timestamp --key <repo>/hsm/timestamp.pub.pem`, then `key remove` of the file key,
//! signed offline) and from the next re-signing the token signs.

use std::path::Path;
use std::sync::Arc;

use castellan_pki::{CaSigner, KeyBackend};
use castellan_tuf::repo::{Repository, RoleSigner};
use tokio::sync::watch;

use crate::core::Core;
use crate::tuf_published::{Versions, changes, summary, versions};

/// The token label of an online role's key.
pub fn token_label(role: &str) -> String {
    format!("castellan-tuf-{role}")
}

/// The online keys in the token (generated there on first use), their public keys written
/// beside the repository; none with key files.
fn token_signers(backend: &KeyBackend, repo: &Path) -> Result<Vec<Arc<RoleSigner>>, String> {
    let KeyBackend::Pkcs11(token) = backend else {
        return Ok(Vec::new());
    };
    let dir = repo.join("hsm");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut signers = Vec::new();
    for role in ["snapshot", "timestamp"] {
        let key = token
            .key_or_generate(&token_label(role))
            .map_err(|e| format!("the {role} key in the token: {e}"))?;
        let key: Arc<dyn CaSigner> = Arc::new(key);
        let signer = RoleSigner::from_ca_signer(key).map_err(|e| e.to_string())?;
        let pem = signer.public_pem().map_err(|e| e.to_string())?;
        let path = dir.join(format!("{role}.pub.pem"));
        std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        log::info!("TUF {role} key in the token: {}", signer.describe());
        signers.push(Arc::new(signer));
    }
    Ok(signers)
}

/// Every `tuf_resign_check`: re-sign the snapshot and timestamp that are past half their
/// lifetime, so devices never see them expire while the server runs; each re-signing (and
/// each refusal) is audited.
pub(crate) async fn resign(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let Some(dir) = core.config.tuf_repository.clone() else {
        return;
    };
    let signers = match token_signers(&core.config.tuf_online_keys, &dir) {
        Ok(s) => s,
        Err(why) => {
            log::warn!("TUF online keys in the token: {why}; re-signing with the key files");
            audit(
                &core,
                false,
                &format!("online keys in the token unusable: {why}"),
            )
            .await;
            Vec::new()
        }
    };
    let mut tick = tokio::time::interval(core.config.tuf_resign_check);
    // The versions published when last looked at (`None` before the first look).
    let mut seen: Option<Versions> = None;
    // Where the operations log stands (read back from the audit trail at each look: another
    // instance may have recorded entries since).
    let mut oplog = crate::tuf_oplog::Cursor::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Another instance re-signs (the repository's files cannot be fenced by the
                // store: the lease alone keeps two instances from re-signing at once).
                if core.leases.fence(crate::lease::Duty::TufResign).is_none() {
                    continue;
                }
                let (dir, signers) = (dir.clone(), signers.clone());
                let done = tokio::task::spawn_blocking(move || {
                    let repo = Repository::open(&dir)?.with_online_signers(signers.clone());
                    // What is published, read before and after re-signing (`None` if a file
                    // was being replaced: looked at again at the next check).
                    let found = versions(&repo).ok();
                    // The commands run by hand since the last look (read before re-signing,
                    // like the versions).
                    let log = castellan_tuf::repo::oplog::read(&dir);
                    let resigned = repo.resign_due(jiff::Timestamp::now())?;
                    let keys = signed_by(&repo, &signers);
                    Ok::<_, castellan_tuf::TufError>((found, log, resigned, keys, versions(&repo).ok()))
                })
                .await;
                match done {
                    Ok(Ok((found, log, r, keys, after))) => {
                        oplog.recorded = crate::tuf_oplog::Cursor::load(&core).await.recorded;
                        crate::tuf_oplog::audit(&core, oplog.look(log)).await;
                        if let Some(found) = &found {
                            audit_outside_changes(&core, seen.as_ref(), found).await;
                        }
                        if r.timestamp {
                            let roles = if r.snapshot { "snapshot and timestamp" } else { "timestamp" };
                            log::info!("TUF: re-signed the {roles} ({keys})");
                            audit(&core, true, &format!("re-signed the {roles} with {keys}")).await;
                        }
                        if after.is_some() {
                            seen = after;
                        }
                    }
                    Ok(Err(e)) => {
                        log::warn!("TUF re-signing refused: {e}");
                        audit(&core, false, &format!("re-signing refused: {e}")).await;
                    }
                    Err(e) => log::warn!("TUF re-signing: {e}"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Audit what the repository publishes: everything on the first look ("tuf.serve"), then each
/// version published by someone other than this server since the last look ("tuf.publish":
/// `castellan repo import` or `resign` run by hand, another machine, an intruder).
async fn audit_outside_changes(core: &Core, seen: Option<&Versions>, found: &Versions) {
    let (action, reason) = match seen {
        None => (
            "tuf.serve",
            format!("serving {}", summary(found).join(", ")),
        ),
        Some(before) => {
            let changed = changes(before, found);
            if changed.is_empty() {
                return;
            }
            (
                "tuf.publish",
                format!("published outside the server: {}", changed.join(", ")),
            )
        }
    };
    log::info!("TUF: {reason}");
    core.auditor
        .append("system", action, "tuf:repository", true, &reason)
        .await;
}

/// Which keys signed the published timestamp: the token's described with their label, the
/// others as key files.
fn signed_by(repo: &Repository, in_token: &[Arc<RoleSigner>]) -> String {
    let Ok(Some(timestamp)) = repo.published("timestamp") else {
        return "no published timestamp".into();
    };
    let describe = |keyid: String| match in_token.iter().find(|s| s.keyid() == keyid) {
        Some(signer) => signer.describe(),
        None => format!("key {keyid} (file)"),
    };
    let keys: Vec<String> = timestamp.signers().into_iter().map(describe).collect();
    keys.join(", ")
}

async fn audit(core: &Core, allowed: bool, reason: &str) {
    core.auditor
        .append("system", "tuf.resign", "tuf:online", allowed, reason)
        .await;
}
