//! The one place where operator-API failures become HTTP responses: a status, a JSON body
//! `{"error": "...", "reason": "..."}` (plus `"code"`, a stable machine code, for refusals that
//! have one), and the reason attached to the response so that the guard (see [`super::guard`])
//! can put it in the audit log. The campaign engine's and the release checks' own error types
//! are mapped to a status here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::release_check::ReleaseRefusal;

/// Why an API request was refused or failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// No token, or an unknown, revoked or expired one (401).
    Unauthenticated(String),
    /// The caller's role may not do this (403).
    Forbidden(String),
    /// The request is malformed or invalid (400).
    BadRequest(String),
    /// The named device or record does not exist (404).
    NotFound(String),
    /// The record already exists, or the action does not fit its current state (409).
    Conflict(String),
    /// The request is well-formed but refused on its content, e.g. a release that does not
    /// verify (422).
    Unprocessable(String),
    /// Any of the others with the refusal's stable machine code (`release.digest_mismatch`,
    /// `campaign.wrong_state`), which the answer and the audit entry carry.
    Coded {
        /// The stable code.
        code: &'static str,
        /// The refusal (status and human reason).
        error: Box<ApiError>,
    },
    /// The service failed (500); the detail is logged and audited.
    Internal(String),
}

/// The reason of a refusal (and its stable code, if any), attached to its response for the
/// audit log.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    pub(crate) reason: String,
    pub(crate) code: Option<&'static str>,
}

/// A note on an allowed operator action, attached to its response for the audit log.
#[derive(Clone, Debug)]
pub(crate) struct AuditNote(pub(crate) String);

impl ApiError {
    /// A refusal with a stable code.
    pub(crate) fn coded(code: &'static str, error: ApiError) -> ApiError {
        ApiError::Coded {
            code,
            error: Box::new(error),
        }
    }

    /// The stable machine code, when the refusal has one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ApiError::Coded { code, .. } => Some(code),
            _ => None,
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &str) {
        match self {
            ApiError::Unauthenticated(r) => (StatusCode::UNAUTHORIZED, "unauthenticated", r),
            ApiError::Forbidden(r) => (StatusCode::FORBIDDEN, "forbidden", r),
            ApiError::BadRequest(r) => (StatusCode::BAD_REQUEST, "bad request", r),
            ApiError::NotFound(r) => (StatusCode::NOT_FOUND, "not found", r),
            ApiError::Conflict(r) => (StatusCode::CONFLICT, "conflict", r),
            ApiError::Unprocessable(r) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", r),
            ApiError::Coded { error, .. } => error.parts(),
            ApiError::Internal(r) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error", r),
        }
    }
}

impl core::fmt::Display for ApiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (status, error, reason) = self.parts();
        write!(f, "{} {error}: {reason}", status.as_u16())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, reason) = self.parts();
        if status.is_server_error() {
            log::error!("API: {reason}");
        }
        let code = self.code();
        let body = match code {
            Some(code) => json!({ "error": error, "reason": reason, "code": code }),
            None => json!({ "error": error, "reason": reason }),
        };
        let mut resp = (status, Json(body)).into_response();
        resp.extensions_mut().insert(Refusal {
            reason: reason.to_string(),
            code,
        });
        resp
    }
}

impl From<castellan_store::StoreError> for ApiError {
    fn from(e: castellan_store::StoreError) -> Self {
        use castellan_store::StoreError as S;
        match e {
            S::NotFound { .. } => ApiError::NotFound(e.to_string()),
            S::AlreadyExists { .. } => ApiError::Conflict(e.to_string()),
            other => ApiError::Internal(format!("store: {other}")),
        }
    }
}

impl From<crate::CampaignError> for ApiError {
    fn from(e: crate::CampaignError) -> Self {
        use crate::CampaignError as C;
        let code = e.code();
        let error = match e {
            C::Store(e) => e.into(),
            C::Spec(_) | C::InvalidName { .. } => ApiError::BadRequest(e.to_string()),
            C::NotFound { .. } | C::UnknownAction { .. } => ApiError::NotFound(e.to_string()),
            C::WrongState { .. } | C::AlreadyActive { .. } => ApiError::Conflict(e.to_string()),
            C::NoRelease { .. }
            | C::WrongClass { .. }
            | C::Expired { .. }
            | C::NoEligibleDevice { .. }
            | C::RollbackClass { .. }
            | C::RollbackNotNewer { .. }
            | C::NothingToRollBackTo { .. }
            | C::RollbackImage { .. }
            | C::NothingUpdated { .. }
            | C::NotQuarantined { .. }
            | C::NoGoodRelease { .. }
            | C::AlreadyGood { .. } => ApiError::Unprocessable(e.to_string()),
            C::StoredSpec { .. }
            | C::WriteSpec(_)
            | C::ReleaseMissing { .. }
            | C::Vanished
            | C::Random => ApiError::Internal(e.to_string()),
        };
        ApiError::coded(code, error)
    }
}

impl From<crate::response::heal::HealError> for ApiError {
    fn from(e: crate::response::heal::HealError) -> Self {
        use crate::response::ReattestError as R;
        use crate::response::heal::HealError as H;
        match e {
            H::Campaign(c) => c.into(),
            H::Reattest(r) => {
                let code = r.code();
                let error = match r {
                    R::Store(e) => e.into(),
                    R::UnknownDevice(_) => ApiError::NotFound(r.to_string()),
                    R::Pending(_) => ApiError::Conflict(r.to_string()),
                    R::NotQuarantined(_) | R::NotOnboarded(_) => {
                        ApiError::Unprocessable(r.to_string())
                    }
                    R::Sign(_) | R::Send(_) => ApiError::Internal(r.to_string()),
                };
                ApiError::coded(code, error)
            }
        }
    }
}

impl From<ReleaseRefusal> for ApiError {
    fn from(e: ReleaseRefusal) -> Self {
        ApiError::coded(e.code(), ApiError::Unprocessable(e.to_string()))
    }
}

/// Parse a JSON request body, answering 400 with serde's message.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}
