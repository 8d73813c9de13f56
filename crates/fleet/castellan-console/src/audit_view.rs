//! The audit log view, for the roles the API lets read the log: the hash chain's verification
//! status, and the entries newest first, searchable by device, actor, action (prefix) and
//! outcome, paged backwards. The device page shows the same table for its device.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use castellan_store::{AuditEntry, AuditFilter, Decision, StoreError};
use maud::{Markup, html};
use serde::Deserialize;

use crate::layout::{error_page, when};
use crate::session::Authed;
use crate::{Console, Fleet};

/// Entries per page.
const PER_PAGE: u32 = 100;

/// The audit view's query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuditParams {
    device: String,
    actor: String,
    action: String,
    outcome: String,
    /// Entries older than this sequence number.
    before: Option<u64>,
}

impl AuditParams {
    fn filter(&self) -> AuditFilter {
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        AuditFilter {
            device: some(&self.device),
            actor: some(&self.actor),
            action: some(&self.action),
            decision: match self.outcome.as_str() {
                "allowed" => Some(Decision::Allowed),
                "refused" => Some(Decision::Refused),
                _ => None,
            },
            before: self.before,
            limit: PER_PAGE,
        }
    }

    fn older(&self, before: u64) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("device", &self.device),
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.append_pair("before", &before.to_string());
        format!("/console/audit?{}", q.finish())
    }
}

/// The table of audit entries.
pub(crate) fn entries_table(id: &str, entries: &[AuditEntry]) -> Markup {
    html! {
        table id=(id) {
            tr { th { "#" } th { "When" } th { "Who" } th { "Action" } th { "Target" } th { "Decision" } th { "Reason" } }
            @for e in entries {
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
    }
}

fn search_form(p: &AuditParams) -> Markup {
    html! {
        form.filters method="get" action="/console/audit" {
            input name="device" value=(p.device) placeholder="device id";
            input name="actor" value=(p.actor) placeholder="actor";
            input name="action" value=(p.action) placeholder="action (prefix)";
            select name="outcome" {
                option value="" { "any outcome" }
                option value="allowed" selected[p.outcome == "allowed"] { "allowed" }
                option value="refused" selected[p.outcome == "refused"] { "refused" }
            }
            button #search type="submit" { "Search" }
        }
    }
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
    let (intact, status) = match store.verify_audit().await {
        Ok(r) => (
            true,
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
        Err(StoreError::AuditTampered(v)) => (false, format!("CHAIN BROKEN: {v}")),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let entries = match store.search_audit(&p.filter()).await {
        Ok(e) => e,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let oldest = entries.last().map(|e| e.seq);
    let body = html! {
        p #chain class={"notice" @if !intact { " error" }} { (status) }
        (search_form(&p))
        (entries_table("audit", &entries))
        div.pager {
            @if let Some(seq) = oldest.filter(|_| entries.len() == PER_PAGE as usize) {
                a #older href=(p.older(seq)) { "older →" }
            }
        }
    };
    crate::layout::page(fleet, &who, "Audit log", body)
}
