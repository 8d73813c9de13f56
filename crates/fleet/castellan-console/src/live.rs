//! Live updates: `GET /console/events`, a server-sent-events stream for a logged-in operator.
//!
//! ```text
//!  live.js ─EventSource─▶ /console/events[?campaign=ID][&device=ID]
//!    session cookie checked ─▶ stream slot (≤ per session, ≤ overall, else 429 + reason)
//!    every poll: session still live? ─▶ read what the role may read, through the Fleet seam
//!      campaigns (GET /api/v1/campaigns) ─▶ event "campaign"  (the page's own Progress)
//!      alerts    (GET /api/v1/alerts)    ─▶ event "alert"
//!      devices   (GET /api/v1/devices)   ─▶ event "fleet" (counts by state), "device" (one)
//!    only what changed since the last poll is sent; "end" when the session ends or the
//!    stream has lived an idle period (the browser's reconnect is a new, checked request)
//! ```
//!
//! The stream reads the same functions as the pages (no side channel) and polls: a stream's
//! cost is bounded by the caps and the poll interval, not by how busy the fleet is.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use castellan_store::unix_now;
use serde::Deserialize;
use serde_json::json;

use crate::devices::state_of;
use crate::progress::Progress;
use crate::session::{Authed, SESSION_COOKIE, cookie};
use crate::{Console, Fleet};

/// Why a stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamRefusal {
    /// The session already has its share of streams open.
    PerSession {
        /// The cap.
        max: usize,
    },
    /// The service has its share of streams open.
    Overall {
        /// The cap.
        max: usize,
    },
}

impl core::fmt::Display for StreamRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StreamRefusal::PerSession { max } => write!(
                f,
                "this session already has {max} live streams open (close a tab)"
            ),
            StreamRefusal::Overall { max } => {
                write!(
                    f,
                    "the service already serves {max} live streams; try later"
                )
            }
        }
    }
}

impl std::error::Error for StreamRefusal {}

/// The open streams, per session and overall.
pub(crate) struct Streams {
    open: Mutex<(usize, HashMap<String, usize>)>,
    per_session: usize,
    overall: usize,
}

/// A stream's slot: given back when the stream ends (the browser left).
pub(crate) struct Slot {
    streams: Arc<Streams>,
    key: String,
}

impl Streams {
    pub(crate) fn new(per_session: usize, overall: usize) -> Arc<Streams> {
        Arc::new(Streams {
            open: Mutex::new((0, HashMap::new())),
            per_session,
            overall,
        })
    }

    /// A slot for session `key`, or why not.
    pub(crate) fn acquire(self: &Arc<Self>, key: &str) -> Result<Slot, StreamRefusal> {
        let mut g = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per) = &mut *g;
        if *total >= self.overall {
            return Err(StreamRefusal::Overall { max: self.overall });
        }
        let n = per.entry(key.to_string()).or_insert(0);
        if *n >= self.per_session {
            return Err(StreamRefusal::PerSession {
                max: self.per_session,
            });
        }
        *n += 1;
        *total += 1;
        Ok(Slot {
            streams: self.clone(),
            key: key.to_string(),
        })
    }

    /// Streams open now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.lock().map(|g| g.0).unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = self.streams.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = per.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&self.key);
            }
        }
    }
}

/// What the page asks to follow besides the fleet-wide events.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Follow {
    #[serde(default)]
    campaign: Option<String>,
    #[serde(default)]
    device: Option<String>,
}

struct Stream<F> {
    console: Arc<Console<F>>,
    who: Authed,
    session: String,
    follow: Follow,
    _slot: Slot,
    started: Instant,
    polled: bool,
    last: HashMap<String, String>,
    pending: VecDeque<Event>,
    ended: bool,
}

/// `GET /console/events`.
pub(crate) async fn events<F: Fleet>(
    State(console): State<Arc<Console<F>>>,
    who: Authed,
    headers: HeaderMap,
    Query(follow): Query<Follow>,
) -> Response {
    let Some(session) = cookie(&headers, SESSION_COOKIE) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let slot = match console.streams.acquire(&who.csrf_token) {
        Ok(s) => s,
        Err(e) => return (StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response(),
    };
    let state = Stream {
        console,
        who,
        session,
        follow,
        _slot: slot,
        started: Instant::now(),
        polled: false,
        last: HashMap::new(),
        pending: VecDeque::new(),
        ended: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(e), s));
            }
            if s.ended {
                return None;
            }
            if s.polled {
                tokio::time::sleep(Duration::from_millis(s.console.config.live_poll_ms)).await;
            }
            s.polled = true;
            poll(&mut s).await;
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// One look at the fleet: queue what changed, or the end.
async fn poll<F: Fleet>(s: &mut Stream<F>) {
    let console = s.console.clone();
    let fleet = &*console.fleet;
    let idle = console.config.session_idle_secs;
    let live = fleet
        .store()
        .console_session(&s.session, unix_now(), idle)
        .await;
    let lifetime = Duration::from_secs(u64::try_from(idle).unwrap_or(0));
    let end = match live {
        Ok(Some(_)) if s.started.elapsed() < lifetime => None,
        Ok(Some(_)) => Some("idle"),
        Ok(None) => Some("session"),
        Err(_) => Some("store"),
    };
    if let Some(why) = end {
        s.pending.push_back(Event::default().event("end").data(why));
        s.ended = true;
        return;
    }
    let mut now: Vec<(String, &'static str, serde_json::Value)> = Vec::new();
    if s.who.may(fleet, "GET", "/api/v1/campaigns") {
        let campaigns = match &s.follow.campaign {
            Some(id) => fleet.campaign(id).await.map(|c| c.into_iter().collect()),
            None => fleet.campaigns().await,
        };
        for c in campaigns.unwrap_or_default() {
            let mut p = Progress::of(&c);
            if s.follow.campaign.is_none() {
                p.devices.clear();
            }
            if let Ok(v) = serde_json::to_value(&p) {
                now.push((format!("c:{}", c.campaign_id), "campaign", v));
            }
        }
    }
    if s.who.may(fleet, "GET", "/api/v1/alerts") {
        for a in fleet.alerts(None, 100).await.unwrap_or_default() {
            let v = json!({"alert_id": a.alert_id, "state": a.state, "severity": a.severity,
                           "updated_by": a.updated_by, "summary": a.summary});
            now.push((format!("a:{}", a.alert_id), "alert", v));
        }
    }
    if s.who.may(fleet, "GET", "/api/v1/devices") {
        if let Ok(counts) = fleet.store().fleet_counts().await {
            let by: serde_json::Map<String, serde_json::Value> = counts
                .by_state
                .into_iter()
                .map(|(k, n)| (k, n.into()))
                .collect();
            now.push(("fleet".into(), "fleet", json!({ "by_state": by })));
        }
        if let Some(id) = &s.follow.device
            && let Ok(Some(d)) = fleet.device(id).await
        {
            let v = json!({"device_id": d.id, "state": state_of(&d),
                           "attestation": d.attestation, "connected": d.connected});
            now.push((format!("d:{}", d.id), "device", v));
        }
    }
    for (key, name, value) in now {
        let text = value.to_string();
        if s.last.get(&key) != Some(&text) {
            s.pending
                .push_back(Event::default().event(name).data(&text));
            s.last.insert(key, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_session_and_overall_and_given_back() {
        let s = Streams::new(2, 3);
        let a1 = s.acquire("a");
        let a2 = s.acquire("a");
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(
            s.acquire("a").err(),
            Some(StreamRefusal::PerSession { max: 2 })
        );
        let b1 = s.acquire("b");
        assert!(b1.is_ok());
        assert_eq!(
            s.acquire("c").err(),
            Some(StreamRefusal::Overall { max: 3 })
        );
        drop(a1);
        assert_eq!(s.open(), 2, "a closed stream gives its slot back");
        assert!(s.acquire("a").is_ok());
        drop((a2, b1));
    }
}
