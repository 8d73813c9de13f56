//! A device's history on its page: the session re-checks the service posted for it (from the
//! cluster's `session_events`, kept for their TTL), the broker's entries about it in the audit
//! log (connections, refusals, sessions closed), and the campaigns it was part of with its own
//! phase in each.

use castellan_store::{AuditEntry, DeviceUpdate, SessionEvent};
use maud::{Markup, html};

use crate::audit_view::entries_table;
use crate::layout::when;

/// Session events (times in ms) and the broker's audit entries (`None`: the role may not read
/// the audit log).
pub(crate) fn sessions(events: Option<&[SessionEvent]>, broker: Option<&[AuditEntry]>) -> Markup {
    html! {
        h3 { "Session re-checks (revocation, quarantine, policy)" }
        @match events {
            Some([]) => p #sessions-none { "None recently." },
            Some(ev) => table #sessions {
                tr { th { "#" } th { "When" } th { "Why" } th { "Posted by instance" } }
                @for e in ev {
                    tr { td { (e.seq) } td { (when(Some(e.created_at.div_euclid(1000)))) }
                         td { (e.kind) } td.mono { (e.origin) } }
                }
            },
            None => p.notice.error { "The session events could not be read." },
        }
        @if let Some(b) = broker {
            h3 { "Broker events (latest 20)" }
            @if b.is_empty() { p #broker-none { "None." } }
            @else { (entries_table("broker-events", b)) }
        }
    }
}

/// The campaigns a device was part of, newest change first.
pub(crate) fn updates(rows: &[DeviceUpdate]) -> Markup {
    html! {
        @if rows.is_empty() {
            p #updates-none { "Never part of a campaign." }
        } @else {
            table #updates {
                tr { th { "Campaign" } th { "Release" } th { "Wave" } th { "Phase" } th { "Reason" }
                     th { "Changed" } th { "Campaign state" } }
                @for u in rows {
                    tr {
                        td.mono { a href={"/console/campaigns/" (u.campaign_id)} { (u.campaign_id) } }
                        td.mono { (u.release_id) }
                        td { (u.wave) }
                        td { span class={"state " (u.state.as_str())} { (u.state.as_str()) } }
                        td { (u.reason.as_deref().unwrap_or("")) }
                        td { (when(Some(u.updated_at))) }
                        td { span class={"state " (u.campaign_state)} { (u.campaign_state) } }
                    }
                }
            }
        }
    }
}
