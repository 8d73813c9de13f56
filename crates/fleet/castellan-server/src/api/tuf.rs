//! `GET /tuf/metadata/{name}` and `GET /tuf/targets/{class}/{file}`: the TUF repository of the
//! releases (`ServerConfig::tuf_repository`), as files. No authentication: the metadata is
//! signed and public, and devices judge it with their own root; the server only serves it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::core::Core;

/// A metadata file (`timestamp.json`, `3.root.json`, `2.sensor-v1.json`, …).
pub(crate) async fn metadata(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let dir = repository(&core)?;
    let bytes = tokio::task::spawn_blocking(move || {
        castellan_tuf::repo::Repository::open(&dir)?.metadata_file(&name)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("TUF repository: {e}")))?
    .map_err(|e| ApiError::Internal(format!("TUF repository: {e}")))?
    .ok_or_else(|| ApiError::NotFound("no such TUF metadata".into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// A target file under its consistent name (`<class>/<sha256>.<name>`).
pub(crate) async fn target(
    State(core): State<Arc<Core>>,
    Path((class, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let dir = repository(&core)?;
    let plain = |s: &str| !s.is_empty() && !s.starts_with('.') && !s.contains(['/', '\\']);
    if !plain(&class) || !plain(&file) {
        return Err(ApiError::NotFound("no such TUF target".into()));
    }
    let path = castellan_tuf::repo::Repository::open(&dir)
        .map_err(|e| ApiError::Internal(format!("TUF repository: {e}")))?
        .targets_dir()
        .join(class)
        .join(file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
        }
        Err(_) => Err(ApiError::NotFound("no such TUF target".into())),
    }
}

fn repository(core: &Core) -> Result<std::path::PathBuf, ApiError> {
    core.config
        .tuf_repository
        .clone()
        .ok_or_else(|| ApiError::NotFound("this server keeps no TUF repository".into()))
}
