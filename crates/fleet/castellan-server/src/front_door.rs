//! The limits of the service's two listeners (MQTT and the HTTPS API) against connection
//! floods and slow clients, and the file-descriptor limit raised at start.
//!
//! ```text
//!  MQTT  accept ─▶ per-address cap ─▶ TLS (timeout) ─▶ per-certificate cap ─▶ first packet and
//!        CONNECT (timeout each) ─▶ authorizer                    refusals: aggregated audit
//!  API   accept ─▶ total and per-address caps ─▶ TLS (timeout) ─▶ headers (timeout, size caps;
//!        also the idle time between keep-alive requests) ─▶ body (timeout, size cap) ─▶ router
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Front-door limits of [`crate::ServerConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontDoorLimits {
    /// Time for an MQTT client's TLS handshake, again for its first packet and again for its
    /// CONNECT: a connection that never sends CONNECT is closed after it (default 10 s).
    pub mqtt_connect_timeout: Duration,
    /// Most live MQTT connections from one address (default 1,000: raise it for fleets behind
    /// one NAT address).
    pub mqtt_max_connections_per_address: usize,
    /// Most live MQTT connections presenting one certificate (default 4).
    pub mqtt_max_connections_per_certificate: usize,
    /// Window of the aggregated audit of refused connections (default 60 s).
    pub refusal_window: Duration,
    /// Most open API connections (default 4,096).
    pub api_max_connections: usize,
    /// Most open API connections from one address (default 256).
    pub api_max_connections_per_address: usize,
    /// Time for an API client's TLS handshake (default 10 s).
    pub api_tls_timeout: Duration,
    /// Time to send a request's headers, and most idle time of a keep-alive connection between
    /// requests (default 10 s).
    pub api_header_timeout: Duration,
    /// Time to send a request body (default 60 s; release uploads are the largest bodies).
    pub api_body_timeout: Duration,
    /// Largest request head (request line and headers), in bytes (default 16 KiB).
    pub api_max_header_bytes: usize,
    /// Most request headers (default 64).
    pub api_max_headers: usize,
}

impl Default for FrontDoorLimits {
    fn default() -> Self {
        FrontDoorLimits {
            mqtt_connect_timeout: Duration::from_secs(10),
            mqtt_max_connections_per_address: 1_000,
            mqtt_max_connections_per_certificate: 4,
            refusal_window: Duration::from_secs(60),
            api_max_connections: 4_096,
            api_max_connections_per_address: 256,
            api_tls_timeout: Duration::from_secs(10),
            api_header_timeout: Duration::from_secs(10),
            api_body_timeout: Duration::from_secs(60),
            api_max_header_bytes: 16 * 1024,
            api_max_headers: 64,
        }
    }
}

/// Live API connections, total and per address.
#[derive(Debug)]
pub(crate) struct ConnectionCaps {
    total: usize,
    per_address: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; releases its slot when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    caps: Arc<ConnectionCaps>,
    ip: IpAddr,
}

impl ConnectionCaps {
    pub(crate) fn new(total: usize, per_address: usize) -> Arc<ConnectionCaps> {
        Arc::new(ConnectionCaps {
            total: total.max(1),
            per_address: per_address.max(1),
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// A slot for a connection from `ip`, or why there is none.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, &'static str> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.0 >= self.total {
            return Err("too many open API connections");
        }
        let n = open.1.entry(ip).or_insert(0);
        if *n >= self.per_address {
            return Err("too many open API connections from this address");
        }
        *n += 1;
        open.0 += 1;
        Ok(ConnectionSlot {
            caps: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// Raises the soft limit of open file descriptors to the hard limit, so that connection
/// floods meet the caps above long before the process runs out of descriptors. Returns the
/// limit in force (`None` where it cannot be read).
pub(crate) fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        // `None` is "unlimited": Option's order would put it below every number.
        let below_hard = match (limit.current, limit.maximum) {
            (Some(soft), Some(hard)) => soft < hard,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if below_hard {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    log::info!(
                        "open-file limit raised from {:?} to {:?}",
                        limit.current,
                        limit.maximum
                    );
                    return limit.maximum;
                }
                Err(e) => log::warn!(
                    "cannot raise the open-file limit from {:?} to {:?}: {e}",
                    limit.current,
                    limit.maximum
                ),
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_total_and_release_on_drop() {
        let caps = ConnectionCaps::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = caps.admit(a).unwrap();
        let _a2 = caps.admit(a).unwrap();
        assert!(caps.admit(a).is_err(), "third from one address");
        let _b1 = caps.admit(b).unwrap();
        assert!(caps.admit(b).is_err(), "fourth in total");
        drop(a1);
        assert!(caps.admit(a).is_ok(), "a slot came back");
    }

    #[cfg(unix)]
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let before = getrlimit(Resource::Nofile);
        // Lower the soft limit (always allowed), as a distribution default of 1,024 would be.
        let lowered = Rlimit {
            current: Some(256),
            maximum: before.maximum,
        };
        setrlimit(Resource::Nofile, lowered).unwrap();
        let raised = raise_fd_limit();
        let after = getrlimit(Resource::Nofile);
        assert_eq!(after.current, before.maximum);
        assert_eq!(raised, before.maximum);
    }
}
