//! The operator API (HTTPS, `Authorization: Bearer cst_…`): the routes of
//! `docs/fleet-protocol.md`, each with the roles it admits, and the guard that enforces them.
//!
//! ```text
//!  request ─▶ guard(route policy) ─▶ no/unknown token: 401 ─┐
//!                                 ─▶ role not admitted: 403 ─┼─▶ audit (who, what, why)
//!                                 ─▶ handler ─▶ 4xx refusal ─┤
//!                                             ─▶ change done ─┘   (reads are not audited)
//! ```
//!
//! Every route's roles are declared once, in [`ROUTES`]; the guard is the only place that
//! authenticates operators, checks roles and audits, and [`ApiError`] the only place that turns
//! failures into responses. The one route outside the table is the devices' image download
//! (`GET /api/v1/updates/{campaign_id}/image`), authorised by a per-device download token;
//! it and the other routes that need no operator token are in [`PUBLIC_ROUTES`]. The API's
//! OpenAPI description is generated from the handlers (`openapi`) and tested against both
//! tables.

mod admin;
pub(crate) mod alerts;
mod campaigns;
pub(crate) mod devices;
mod download;
mod error;
mod factory;
mod metrics;
mod openapi;
pub(crate) mod releases;
mod tuf;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use castellan_store::{Role, unix_now};

pub use admin::AuditEntryJson;
pub use devices::{CertificateJson, DeviceJson};
pub use error::ApiError;
pub(crate) use error::{AuditNote, Refusal};
pub(crate) use factory::check_name;
pub use openapi::{document as openapi_document, document_json as openapi_document_json};

use crate::core::Core;

/// The remote address of an HTTPS connection, attached to each of its requests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RemoteAddr(pub(crate) SocketAddr);

/// One guarded route: method, path, audit action and the roles it admits.
#[derive(Clone, Copy, Debug)]
pub struct RoutePolicy {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern (axum syntax).
    pub path: &'static str,
    /// The audit log's name for the action.
    pub action: &'static str,
    /// Roles admitted.
    pub roles: &'static [Role],
}

const ALL_ROLES: &[Role] = &[
    Role::Admin,
    Role::Operator,
    Role::Auditor,
    Role::ReleaseManager,
    Role::Decommissioner,
];
const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Auditor];
const ADMIN_OPERATOR: &[Role] = &[Role::Admin, Role::Operator];
const ADMIN: &[Role] = &[Role::Admin];
const ADMIN_AUDITOR: &[Role] = &[Role::Admin, Role::Auditor];
/// Releases and campaigns change only by the release manager: not even an admin (separation
/// of duties: whoever manages operators cannot also push firmware).
const RELEASE_MANAGER: &[Role] = &[Role::ReleaseManager];
const RELEASE_MANAGER_ADMIN: &[Role] = &[Role::ReleaseManager, Role::Admin];
/// A decommission (crypto-erase, for good) is asked for and approved by decommissioners only:
/// not an admin, who manages the accounts, nor an operator, who contains and heals devices
/// (`docs/response.md`, "Who may decommission").
const DECOMMISSIONER: &[Role] = &[Role::Decommissioner];

/// Every guarded route of the operator API and the roles it admits (the table of
/// `docs/fleet-protocol.md`). `GET /api/v1/health` and `GET /api/v1/pki/ca` need no token.
pub const ROUTES: &[RoutePolicy] = &[
    RoutePolicy {
        method: "POST",
        path: "/api/v1/factory/devices",
        action: "api.factory.register",
        roles: ADMIN_OPERATOR,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/devices",
        action: "api.devices.list",
        roles: ALL_ROLES,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/devices/{id}",
        action: "api.device.get",
        roles: ALL_ROLES,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/devices/{id}/telemetry",
        action: "api.device.telemetry",
        roles: READERS,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/devices/{id}/detections",
        action: "api.device.detections",
        roles: READERS,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/devices/{id}/revoke",
        action: "api.device.revoke",
        roles: ADMIN,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/devices/{id}/quarantine",
        action: "api.device.quarantine",
        roles: ADMIN_OPERATOR,
    },
    RoutePolicy {
        method: "DELETE",
        path: "/api/v1/devices/{id}/quarantine",
        action: "api.device.release",
        roles: ADMIN_OPERATOR,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/devices/{id}/decommission",
        action: "api.device.decommission",
        roles: DECOMMISSIONER,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/devices/{id}/heal",
        action: "api.device.heal",
        roles: ADMIN_OPERATOR,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/alerts",
        action: "api.alerts.list",
        roles: READERS,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/alerts/{id}/acknowledge",
        action: "api.alert.acknowledge",
        roles: ADMIN_OPERATOR,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/alerts/{id}/resolve",
        action: "api.alert.resolve",
        roles: ADMIN_OPERATOR,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/policies/{class}",
        action: "api.policy.get",
        roles: READERS,
    },
    RoutePolicy {
        method: "PUT",
        path: "/api/v1/policies/{class}",
        action: "api.policy.set",
        roles: ADMIN,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/operators",
        action: "api.operator.create",
        roles: ADMIN,
    },
    RoutePolicy {
        method: "GET",
        path: "/metrics",
        action: "api.metrics",
        roles: READERS,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/audit",
        action: "api.audit.list",
        roles: ADMIN_AUDITOR,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/audit/verify",
        action: "api.audit.verify",
        roles: ADMIN_AUDITOR,
    },
    RoutePolicy {
        method: "PUT",
        path: "/api/v1/release-key",
        action: "api.release_key.set",
        roles: ADMIN,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/releases",
        action: "api.release.create",
        roles: RELEASE_MANAGER,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/releases",
        action: "api.releases.list",
        roles: ALL_ROLES,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/releases/{id}",
        action: "api.release.get",
        roles: ALL_ROLES,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/releases/{id}/image",
        action: "api.release.image",
        roles: RELEASE_MANAGER_ADMIN,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/campaigns",
        action: "api.campaign.create",
        roles: RELEASE_MANAGER,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/campaigns",
        action: "api.campaigns.list",
        roles: ALL_ROLES,
    },
    RoutePolicy {
        method: "GET",
        path: "/api/v1/campaigns/{id}",
        action: "api.campaign.get",
        roles: ALL_ROLES,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/campaigns/{id}/pause",
        action: "api.campaign.pause",
        roles: RELEASE_MANAGER,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/campaigns/{id}/resume",
        action: "api.campaign.resume",
        roles: RELEASE_MANAGER,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/campaigns/{id}/abort",
        action: "api.campaign.abort",
        roles: RELEASE_MANAGER,
    },
    RoutePolicy {
        method: "POST",
        path: "/api/v1/campaigns/{id}/rollback",
        action: "api.campaign.rollback",
        roles: RELEASE_MANAGER,
    },
];

/// The routes without an operator token (method, path): health, the CA bundle, the API's
/// description, the devices' image download (their offer's download token) and the TUF
/// repository (public, signed metadata: devices judge it, not the transport).
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/pki/ca"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/updates/{campaign_id}/image"),
    ("GET", "/tuf/metadata/{name}"),
    ("GET", "/tuf/targets/{class}/{file}"),
];

/// The handler of a public route.
pub(crate) fn public_handler(method: &str, path: &str) -> Option<MethodRouter<Arc<Core>>> {
    Some(match (method, path) {
        ("GET", "/api/v1/health") => get(admin::health),
        ("GET", "/api/v1/pki/ca") => get(admin::ca_bundle),
        ("GET", "/api/v1/openapi.json") => get(openapi::openapi_json),
        ("GET", "/api/v1/updates/{campaign_id}/image") => get(download::image),
        ("GET", "/tuf/metadata/{name}") => get(tuf::metadata),
        ("GET", "/tuf/targets/{class}/{file}") => get(tuf::target),
        _ => return None,
    })
}

/// The handler of a guarded route (before its guard).
pub(crate) fn guarded_handler(method: &str, path: &str) -> Option<MethodRouter<Arc<Core>>> {
    Some(match (method, path) {
        ("POST", "/api/v1/factory/devices") => post(factory::register),
        ("GET", "/api/v1/devices") => get(devices::list),
        ("GET", "/api/v1/devices/{id}") => get(devices::get_one),
        ("GET", "/api/v1/devices/{id}/telemetry") => get(devices::telemetry),
        ("GET", "/api/v1/devices/{id}/detections") => get(devices::detections),
        ("POST", "/api/v1/devices/{id}/revoke") => post(devices::revoke),
        ("POST", "/api/v1/devices/{id}/quarantine") => post(devices::quarantine),
        ("DELETE", "/api/v1/devices/{id}/quarantine") => delete(devices::release),
        ("POST", "/api/v1/devices/{id}/heal") => post(devices::heal),
        ("POST", "/api/v1/devices/{id}/decommission") => post(devices::decommission),
        ("GET", "/api/v1/alerts") => get(alerts::list),
        ("POST", "/api/v1/alerts/{id}/acknowledge") => post(alerts::acknowledge),
        ("POST", "/api/v1/alerts/{id}/resolve") => post(alerts::resolve),
        ("GET", "/api/v1/policies/{class}") => get(alerts::get_policy),
        ("PUT", "/api/v1/policies/{class}") => put(alerts::set_policy),
        ("POST", "/api/v1/operators") => post(admin::create_operator),
        ("GET", "/metrics") => get(metrics::metrics),
        ("GET", "/api/v1/audit") => get(admin::audit_list),
        ("GET", "/api/v1/audit/verify") => get(admin::audit_verify),
        ("PUT", "/api/v1/release-key") => put(releases::set_key),
        ("POST", "/api/v1/releases") => {
            post(releases::create).layer(DefaultBodyLimit::max(releases::MAX_RELEASE_BODY))
        }
        ("GET", "/api/v1/releases") => get(releases::list),
        ("GET", "/api/v1/releases/{id}") => get(releases::get_one),
        ("GET", "/api/v1/releases/{id}/image") => get(releases::image),
        ("POST", "/api/v1/campaigns") => post(campaigns::create),
        ("GET", "/api/v1/campaigns") => get(campaigns::list),
        ("GET", "/api/v1/campaigns/{id}") => get(campaigns::get_one),
        ("POST", "/api/v1/campaigns/{id}/pause") => post(campaigns::pause),
        ("POST", "/api/v1/campaigns/{id}/resume") => post(campaigns::resume),
        ("POST", "/api/v1/campaigns/{id}/abort") => post(campaigns::abort),
        ("POST", "/api/v1/campaigns/{id}/rollback") => post(campaigns::rollback),
        _ => return None,
    })
}

/// The API's router.
pub(crate) fn router(core: Arc<Core>) -> Router {
    let mut router = Router::new();
    for (method, path) in PUBLIC_ROUTES {
        if let Some(handler) = public_handler(method, path) {
            router = router.route(path, handler);
        }
    }
    let mut by_path: Vec<(&'static str, MethodRouter<Arc<Core>>)> = Vec::new();
    for policy in ROUTES {
        let Some(handler) = guarded_handler(policy.method, policy.path) else {
            continue;
        };
        let guarded = handler.route_layer(middleware::from_fn_with_state(
            (core.clone(), *policy),
            guard,
        ));
        match by_path.iter_mut().find(|(p, _)| *p == policy.path) {
            Some((_, existing)) => {
                let merged = std::mem::take(existing).merge(guarded);
                *existing = merged;
            }
            None => by_path.push((policy.path, guarded)),
        }
    }
    for (path, method_router) in by_path {
        router = router.route(path, method_router);
    }
    router
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(core)
}

/// Authenticate, check the role, run the handler, audit the outcome.
async fn guard(
    State((core, policy)): State<(Arc<Core>, RoutePolicy)>,
    req: Request,
    next: Next,
) -> Response {
    let target = req.uri().path().to_string();
    let remote = req
        .extensions()
        .get::<RemoteAddr>()
        .map(|r| r.0.to_string())
        .unwrap_or_else(|| "?".into());
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(token) = token else {
        let reason = "no API token (Authorization: Bearer cst_…)";
        return refuse(
            &core,
            &format!("anonymous@{remote}"),
            &policy,
            &target,
            ApiError::Unauthenticated(reason.into()),
        )
        .await;
    };
    let operator = match core.store.authenticate_token(&token, unix_now()).await {
        Ok(Some(op)) => op,
        Ok(None) => {
            let reason = "unknown, revoked or expired API token";
            return refuse(
                &core,
                &format!("anonymous@{remote}"),
                &policy,
                &target,
                ApiError::Unauthenticated(reason.into()),
            )
            .await;
        }
        Err(e) => return ApiError::Internal(format!("token check: {e}")).into_response(),
    };
    if !policy.roles.contains(&operator.role) {
        let allowed: Vec<&str> = policy.roles.iter().map(|r| r.as_str()).collect();
        let reason = format!(
            "role {} may not {} {} (allowed: {})",
            operator.role,
            policy.method,
            policy.path,
            allowed.join(", ")
        );
        return refuse(
            &core,
            &operator.name,
            &policy,
            &target,
            ApiError::Forbidden(reason),
        )
        .await;
    }
    let mut req = req;
    req.extensions_mut().insert(operator.clone());
    let resp = next.run(req).await;
    let status = resp.status();
    if let Some(Refusal { reason, code }) = resp.extensions().get::<Refusal>() {
        core.auditor
            .append_coded(&operator.name, policy.action, &target, false, *code, reason)
            .await;
    } else if policy.method != Method::GET.as_str() && status.is_success() {
        let note = resp
            .extensions()
            .get::<AuditNote>()
            .map(|n| n.0.clone())
            .unwrap_or_else(|| "done".into());
        core.auditor
            .append(&operator.name, policy.action, &target, true, &note)
            .await;
    }
    resp
}

async fn refuse(
    core: &Core,
    actor: &str,
    policy: &RoutePolicy,
    target: &str,
    err: ApiError,
) -> Response {
    let reason = match &err {
        ApiError::Unauthenticated(r) | ApiError::Forbidden(r) => r.clone(),
        other => other.to_string(),
    };
    core.auditor
        .append(actor, policy.action, target, false, &reason)
        .await;
    err.into_response()
}
