//! Which PKI the service opens, and its refusal to run with the root CA's key in reach.
//!
//! ```text
//!  embedded demo? ── yes ─▶ Pki::init: the whole hierarchy in <state>/pki (root key included)
//!        │ no
//!  root key in reach (file in <state>/pki, key in the token)? ── yes ─▶ refuse, audited
//!  <state>/pki handed over from the offline root? ── no ─▶ refuse: say how to hand it over
//!        └─▶ Pki::open_online: root and service CA as certificates, operational CA with its key
//! ```

use std::path::Path;

use castellan_pki::{KeyBackend, Pki, PkiError};
use castellan_store::Store;

use crate::ServerError;
use crate::audit::Auditor;
use crate::config::ServerConfig;

/// Audit action of a start refused for the PKI's custody.
pub(crate) const ACTION_START_REFUSED: &str = "server.start";
/// The stable code of a start refused because the root CA's key is in reach.
pub const CODE_ROOT_KEY_ONLINE: &str = "pki.root_key_online";

/// Open the PKI in `dir` as `config` says; a refusal is written to the audit log first.
pub(crate) async fn open_pki(
    config: &ServerConfig,
    dir: &Path,
    store: &Store,
) -> Result<Pki, ServerError> {
    let demo = config.embedded_demo_pki;
    let backend = config.key_backend.clone();
    let owned = dir.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || open_blocking(&owned, backend, demo))
        .await
        .map_err(|source| ServerError::Task {
            what: "PKI",
            source,
        })?;
    match opened {
        Ok(pki) => {
            if demo {
                log::warn!(
                    "embedded demo PKI: the root CA's key is in {} (never do this in production)",
                    dir.display()
                );
            }
            Ok(pki)
        }
        Err(error) => {
            let refusal = error.to_string();
            log::error!("{refusal}");
            let (auditor, task) = Auditor::start(store.clone());
            auditor
                .append_coded(
                    "system",
                    ACTION_START_REFUSED,
                    &dir.display().to_string(),
                    false,
                    Some(CODE_ROOT_KEY_ONLINE)
                        .filter(|_| matches!(error, ServerError::RootKeyOnline { .. })),
                    &refusal,
                )
                .await;
            auditor.flush().await;
            task.abort();
            Err(error)
        }
    }
}

fn open_blocking(dir: &Path, backend: KeyBackend, demo: bool) -> Result<Pki, ServerError> {
    if demo {
        return Ok(Pki::init(dir, backend)?);
    }
    if let Some(location) = Pki::root_key_location(dir, &backend) {
        return Err(ServerError::RootKeyOnline { location });
    }
    if !Pki::exists(dir) {
        return Err(ServerError::NoPki {
            dir: dir.to_path_buf(),
        });
    }
    Pki::open_online(dir, backend).map_err(|e| match e {
        PkiError::RootKeyInReach { location } => ServerError::RootKeyOnline { location },
        other => ServerError::Pki(other),
    })
}
