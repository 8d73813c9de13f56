//! `GET /tuf/metadata/{name}` and `GET /tuf/targets/{class}/{file}`: the TUF repository of the
//! releases (`ServerConfig::tuf_repository`), as files. No authentication: the metadata is
//! signed and public, and devices judge it with their own root; the server only serves it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use castellan_tuf::repo::Repository;

use super::error::ApiError;
use crate::core::Core;

/// A metadata file (`timestamp.json`, `3.root.json`, `2.sensor-v1.json`, …).
#[utoipa::path(get, path = "/tuf/metadata/{name}", tag = "tuf", operation_id = "tuf.metadata",
    params(("name" = String, Path, description = "The metadata file's name")),
    responses((status = 200, description = "Signed TUF metadata", body = Object, content_type = "application/json"), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn metadata(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = read(&core, move |repo| repo.metadata_file(&name))
        .await?
        .ok_or_else(|| ApiError::NotFound("no such TUF metadata".into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// A target file under its consistent name (`<class>/<sha256>.<name>`).
#[utoipa::path(get, path = "/tuf/targets/{class}/{file}", tag = "tuf", operation_id = "tuf.target",
    params(("class" = String, Path, description = "The device class"), ("file" = String, Path, description = "`<sha256>.<name>`")),
    responses((status = 200, description = "The target file", body = String, content_type = "application/octet-stream"), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn target(
    State(core): State<Arc<Core>>,
    Path((class, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let path = format!("{class}/{file}");
    let bytes = read(&core, move |repo| repo.target_file(&path))
        .await?
        .ok_or_else(|| ApiError::NotFound("no such TUF target".into()))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `f` over the configured repository, off the async threads.
async fn read(
    core: &Core,
    f: impl FnOnce(&Repository) -> Result<Option<Vec<u8>>, castellan_tuf::TufError> + Send + 'static,
) -> Result<Option<Vec<u8>>, ApiError> {
    let dir = repository(core)?;
    tokio::task::spawn_blocking(move || f(&Repository::open(&dir)?))
        .await
        .map_err(|e| ApiError::Internal(format!("TUF repository: {e}")))?
        .map_err(|e| ApiError::Internal(format!("TUF repository: {e}")))
}

fn repository(core: &Core) -> Result<std::path::PathBuf, ApiError> {
    core.config
        .tuf_repository
        .clone()
        .ok_or_else(|| ApiError::NotFound("this server keeps no TUF repository".into()))
}
