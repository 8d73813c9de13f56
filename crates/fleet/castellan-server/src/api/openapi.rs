//! The API's OpenAPI 3.1 description, generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types' `ToSchema` derives: served at
//! `GET /api/v1/openapi.json` (no token: the description is public, it is in the repository as
//! `docs/openapi.json`) and checked against the route tables by this module's tests.
//!
//! ```text
//!  handlers' #[utoipa::path] ─┐
//!  types' #[derive(ToSchema)] ─┼─▶ ApiDoc ─▶ Roles (modifier): for each guarded route of ROUTES,
//!                              │             operationId = its audit action, bearer security,
//!                              │             the roles it admits, 401 and 403
//!                              └─▶ document() ─▶ GET /api/v1/openapi.json, docs/openapi.json
//! ```
//!
//! Which roles may call a route is not repeated in the annotations: the modifier copies it from
//! [`ROUTES`], the table the guard enforces, so the description cannot disagree with it.

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{PUBLIC_ROUTES, ROUTES};

/// Every refusal's body (`4xx`, `5xx`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorJson {
    /// The class of the refusal (`unauthenticated`, `forbidden`, `bad request`, `not found`,
    /// `conflict`, `unprocessable`, `internal error`).
    error: String,
    /// Why, for a person.
    reason: String,
    /// A stable machine code, for the refusals that have one.
    code: Option<String>,
}

/// `GET /api/v1/health`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct HealthJson {
    /// Always `ok`.
    status: String,
    /// The service's version.
    version: String,
}

/// `POST /api/v1/operators`' answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct OperatorCreatedJson {
    /// The operator's name.
    name: String,
    /// The operator's role.
    role: String,
    /// The operator's API token (`cst_…`), shown once.
    token: String,
}

/// `GET /api/v1/audit/verify`'s answer: intact with its figures, or the violation.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AuditVerifyJson {
    /// Whether every entry's hash chains to the previous one.
    intact: bool,
    /// How many entries (when intact).
    entries: Option<u64>,
    /// The last entry's hash, hex (when intact).
    head_hash: Option<String>,
    /// Whether the chain was also checked against its external anchor (when intact).
    anchor_checked: Option<bool>,
    /// The modified, removed or reordered entry (when not intact).
    violation: Option<String>,
}

/// `POST /api/v1/devices/{id}/revoke`'s answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RevokedJson {
    /// The device.
    device_id: String,
    /// The certificate serials revoked (IDevID, and LDevID if onboarded), hex.
    revoked_serials: Vec<String>,
    /// The RFC 5280 reason.
    reason: String,
    /// Whether an open MQTT session was closed.
    session_closed: bool,
}

/// The answer of quarantine and release.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct QuarantineJson {
    /// The device.
    device_id: String,
    /// Whether it is now quarantined.
    quarantined: bool,
    /// Whether an open MQTT session was closed to apply the new policy.
    session_closed: bool,
}

/// `PUT /api/v1/release-key`'s answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ReleaseKeyJson {
    /// The release key's public key, SEC1 uncompressed, hex.
    public_key: String,
    /// When it was set (Unix seconds).
    set_at: i64,
    /// Who set it.
    set_by: String,
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service", operation_id = "api.openapi",
    responses((status = 200, description = "This description of the API (OpenAPI 3.1)", body = Object)))]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Json(document()))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Castellan fleet service API",
        description = "The operator API of `castellan serve` (HTTPS). Operators authenticate \
            with `Authorization: Bearer cst_…`; each operation says the roles it admits. \
            Devices fetch update images with their offer's download token. See \
            docs/fleet-protocol.md and docs/api.md.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        super::admin::health,
        super::admin::ca_bundle,
        openapi_json,
        super::factory::register,
        super::devices::list,
        super::devices::get_one,
        super::devices::telemetry,
        super::devices::detections,
        super::devices::revoke,
        super::devices::quarantine,
        super::devices::release,
        super::devices::heal,
        super::devices::decommission,
        super::alerts::list,
        super::alerts::acknowledge,
        super::alerts::resolve,
        super::alerts::get_policy,
        super::alerts::set_policy,
        super::admin::create_operator,
        super::metrics::metrics,
        super::admin::audit_list,
        super::admin::audit_verify,
        super::releases::set_key,
        super::releases::create,
        super::releases::list,
        super::releases::get_one,
        super::releases::image,
        super::campaigns::create,
        super::campaigns::list,
        super::campaigns::get_one,
        super::campaigns::pause,
        super::campaigns::resume,
        super::campaigns::abort,
        super::campaigns::rollback,
        super::download::image,
        super::tuf::metadata,
        super::tuf::target,
    ),
    components(schemas(ErrorJson)),
    modifiers(&Roles),
)]
struct ApiDoc;

/// Security, operation ids, roles and the guard's refusals, from [`ROUTES`].
struct Roles;

fn operation_mut<'a>(item: &'a mut PathItem, method: &str) -> Option<&'a mut Operation> {
    match method {
        "GET" => item.get.as_mut(),
        "POST" => item.post.as_mut(),
        "PUT" => item.put.as_mut(),
        "DELETE" => item.delete.as_mut(),
        _ => None,
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorJson")))
                .build(),
        )
        .build()
}

impl Modify for Roles {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cst_… (an operator's API token)")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "download_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("the download token of the device's update offer")
                    .build(),
            ),
        );
        for policy in ROUTES {
            let Some(item) = openapi.paths.paths.get_mut(policy.path) else {
                continue;
            };
            let Some(op) = operation_mut(item, policy.method) else {
                continue;
            };
            let roles: Vec<&str> = policy.roles.iter().map(|r| r.as_str()).collect();
            op.operation_id = Some(policy.action.to_string());
            op.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
            let admits = format!("Roles admitted: {}.", roles.join(", "));
            op.description = Some(match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{admits}"),
                _ => admits,
            });
            let responses = &mut op.responses.responses;
            responses.insert(
                "401".into(),
                error_response("No, an unknown, a revoked or an expired API token").into(),
            );
            responses.insert(
                "403".into(),
                error_response("The operator's role is not admitted").into(),
            );
        }
        for (method, path) in PUBLIC_ROUTES {
            if let Some(op) = openapi
                .paths
                .paths
                .get_mut(*path)
                .and_then(|item| operation_mut(item, method))
                && op.security.is_none()
            {
                // No token: an empty requirement says so explicitly.
                op.security = Some(vec![SecurityRequirement::default()]);
            }
        }
    }
}

/// The API's description.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The API's description as `docs/openapi.json` holds it: pretty JSON, a final newline.
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
