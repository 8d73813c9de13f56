//! The audit log view: the hash chain's verification status and a page of entries, newest
//! page first, for the roles the API lets read the log.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use castellan_store::{Decision, StoreError};
use maud::html;
use serde::Deserialize;

use crate::layout::{error_page, when};
use crate::session::Authed;
use crate::{Console, Fleet};

/// Entries per page.
const PER_PAGE: u64 = 100;

/// The audit view's query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuditParams {
    /// Show entries after this sequence number (default: the latest page).
    after: Option<u64>,
}

/// `GET /console/audit`.
pub(crate) async fn page<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    Query(p): Query<AuditParams>,
) -> Response {
    let fleet = &*console.fleet;
    if !who.may(fleet, "GET", "/api/v1/audit") {
        let reason = format!("role {} may not read the audit log", who.operator.role);
        fleet
            .audit(
                &who.operator.name,
                "console.audit",
                "/console/audit",
                false,
                &reason,
            )
            .await;
        return error_page(StatusCode::FORBIDDEN, &reason);
    }
    let store = fleet.store();
    let (intact, count, status) = match store.verify_audit().await {
        Ok(r) => (
            true,
            r.count,
            format!(
                "Chain intact: {} entries, head {}{}",
                r.count,
                hex::encode(r.head_hash),
                if r.anchor_checked {
                    ", anchor checked"
                } else {
                    ""
                }
            ),
        ),
        Err(StoreError::AuditTampered(v)) => (false, 0, format!("CHAIN BROKEN: {v}")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let after = p.after.unwrap_or(count.saturating_sub(PER_PAGE));
    let entries = match store.audit_entries(after, PER_PAGE as u32).await {
        Ok(e) => e,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let body = html! {
        p #chain class={"notice" @if !intact { " error" }} { (status) }
        div.pager {
            @if after > 0 { a href={"/console/audit?after=" (after.saturating_sub(PER_PAGE))} { "← older" } }
            @if after + PER_PAGE < count { a href={"/console/audit?after=" (after + PER_PAGE)} { "newer →" } }
        }
        table #audit {
            tr { th { "#" } th { "When" } th { "Who" } th { "Action" } th { "Target" } th { "Decision" } th { "Reason" } }
            @for e in entries.iter().rev() {
                @let refused = e.decision == Decision::Refused;
                tr {
                    td { (e.seq) } td { (when(Some(e.at))) } td { (e.actor) } td { (e.action) }
                    td.mono { (e.target) }
                    td { span class={"state" @if refused { " failed" }} {
                        @if refused { "refused" } @else { "allowed" } } }
                    td { (e.reason) @if let Some(c) = &e.code { " [" (c) "]" } }
                }
            }
        }
    };
    crate::layout::page(fleet, &who, "Audit log", body)
}
