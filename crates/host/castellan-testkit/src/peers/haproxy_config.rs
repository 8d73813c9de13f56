//! HAProxy in front of several `castellan serve` instances' HTTPS operator APIs: the one
//! configuration `cargo xtask cluster` runs and the cluster tests run, and a reader of HAProxy's
//! statistics (which instance it sees up). Standard library only: `xtask` includes this file as
//! it is (`#[path]`), so the command and the tests cannot drift apart.
//!
//! ```text
//!  client ──TLS──▶ HAProxy (mode tcp, listen) ──same TLS bytes──▶ instance 1 | 2 | 3 (API)
//!                   │ health check every `check_interval_ms`: its own TLS connection
//!                   │ (certificate verified against the CA bundle, name `server_name`),
//!                   │ GET /api/v1/health, 200 expected; `fall` failures take it out
//!                   └ connection refused / reset at connect: retried on another instance
//! ```
//!
//! TLS passes through: HAProxy never holds a certificate or key of the service, the client
//! verifies the instance's own certificate and the TLS session (and any client certificate in
//! it) ends at the instance, exactly as without a balancer.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// What HAProxy balances and how it checks the instances.
#[derive(Clone, Debug)]
pub struct Balancer<'a> {
    /// The address clients use (the cluster's operator API).
    pub listen: SocketAddr,
    /// HAProxy's statistics page (plain HTTP, keep it on loopback).
    pub stats: SocketAddr,
    /// Each instance's name and API address.
    pub servers: &'a [(String, SocketAddr)],
    /// The CA bundle (`castellan serve`'s `ca-bundle.pem`) that verifies the instances'
    /// certificates in health checks.
    pub ca_bundle: &'a Path,
    /// The name the instances' certificates carry (SNI and host name check of health checks).
    pub server_name: &'a str,
    /// Milliseconds between two health checks of one instance.
    pub check_interval_ms: u32,
    /// Failed checks in a row that take an instance out (and good ones that bring it back).
    pub fall: u32,
}

/// The HAProxy configuration for `b`.
pub fn config(b: &Balancer<'_>) -> String {
    let mut c = String::new();
    let ca = b.ca_bundle.display();
    let name = b.server_name;
    // `writeln!` into a String cannot fail.
    let _ = writeln!(
        c,
        "# Written by Castellan (HAProxy in front of the instances' HTTPS APIs; docs/scale.md).\n\
         global\n    \
         log stderr format raw local0 warning\n    \
         maxconn 4096\n\n\
         defaults\n    \
         log global\n    \
         mode tcp\n    \
         timeout connect 2s\n    \
         timeout check 2s\n    \
         # Long enough for the console's server-sent events between two of their keep-alives.\n    \
         timeout client 5m\n    \
         timeout server 5m\n    \
         # A connection refused or reset at connect (a dead instance not yet marked down)\n    \
         # is tried again, on another instance.\n    \
         retries 3\n    \
         option redispatch 1\n\n\
         frontend castellan_api\n    \
         bind {listen}\n    \
         default_backend castellan_instances\n\n\
         backend castellan_instances\n    \
         balance roundrobin\n    \
         option httpchk\n    \
         http-check send meth GET uri /api/v1/health ver HTTP/1.1 hdr Host {name}\n    \
         http-check expect status 200\n    \
         default-server check inter {inter} fall {fall} rise {fall} check-ssl verify required \
         ca-file {ca} check-sni {name} verifyhost {name}",
        listen = b.listen,
        inter = b.check_interval_ms,
        fall = b.fall,
    );
    for (server, addr) in b.servers {
        let _ = writeln!(c, "    server {server} {addr}");
    }
    let _ = writeln!(
        c,
        "\nfrontend castellan_stats\n    \
         mode http\n    \
         bind {stats}\n    \
         timeout client 10s\n    \
         stats enable\n    \
         stats uri /\n    \
         stats refresh 2s",
        stats = b.stats
    );
    c
}

/// One instance as HAProxy's health checks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerState {
    /// The instance's name in the configuration.
    pub name: String,
    /// `UP`, `DOWN`, `UP 1/2` (going down), `DOWN 1/2` (coming back), `MAINT`, …
    pub status: String,
    /// The last check's result (`L7OK`, `L4CON` connection refused, `L6TOUT` TLS handshake
    /// timeout, `INI` none yet, …; HAProxy's `* ` mark of a check in progress removed).
    pub check: String,
    /// The HTTP status of the last check, when it got one.
    pub code: String,
}

impl ServerState {
    /// Whether HAProxy sends it traffic.
    pub fn is_up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ")
    }

    /// Whether it is up and its last health check passed (HAProxy counts an instance up
    /// before its first check).
    pub fn is_checked_up(&self) -> bool {
        self.is_up() && self.check == "L7OK"
    }
}

/// Why HAProxy's statistics could not be read.
#[derive(Debug)]
pub enum StatsError {
    /// The statistics page did not answer.
    Io(std::io::Error),
    /// It answered something other than the CSV export.
    Format(String),
}

impl std::fmt::Display for StatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsError::Io(e) => write!(f, "HAProxy statistics: {e}"),
            StatsError::Format(what) => write!(f, "HAProxy statistics: {what}"),
        }
    }
}

impl std::error::Error for StatsError {}

/// The instances of the balancer whose statistics page is at `stats`, as HAProxy sees them
/// (its CSV export; a blocking read of a few kilobytes on loopback).
pub fn server_states(stats: SocketAddr) -> Result<Vec<ServerState>, StatsError> {
    let mut s =
        TcpStream::connect_timeout(&stats, Duration::from_secs(2)).map_err(StatsError::Io)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(StatsError::Io)?;
    s.write_all(b"GET /;csv HTTP/1.0\r\nHost: stats\r\n\r\n")
        .map_err(StatsError::Io)?;
    let mut raw = Vec::new();
    s.take(1 << 20)
        .read_to_end(&mut raw)
        .map_err(StatsError::Io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| StatsError::Format("no HTTP body".into()))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        parse_csv(&dechunk(body)?)
    } else {
        parse_csv(body)
    }
}

/// The body of a chunked HTTP/1.1 answer (HAProxy sends its statistics so, even to HTTP/1.0).
fn dechunk(mut rest: &str) -> Result<String, StatsError> {
    let mut body = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| StatsError::Format("truncated chunk".into()))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| StatsError::Format(format!("bad chunk size {size:?}")))?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| StatsError::Format("truncated chunk".into()))?;
        body.push_str(chunk);
        rest = after.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

/// The backend's server rows of HAProxy's CSV statistics.
pub fn parse_csv(body: &str) -> Result<Vec<ServerState>, StatsError> {
    let mut lines = body.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| StatsError::Format("no CSV header".into()))?;
    let columns: Vec<&str> = header.split(',').collect();
    let at = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| StatsError::Format(format!("no column {name:?}")))
    };
    let (px, sv, status, check, code) = (
        at("pxname")?,
        at("svname")?,
        at("status")?,
        at("check_status")?,
        at("check_code")?,
    );
    let field = |row: &[&str], i: usize| row.get(i).copied().unwrap_or("").to_string();
    Ok(lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|row| {
            row.get(px) == Some(&"castellan_instances")
                && !matches!(row.get(sv), Some(&"BACKEND") | Some(&"FRONTEND") | None)
        })
        .map(|row| ServerState {
            name: field(&row, sv),
            status: field(&row, status),
            check: field(&row, check).trim_start_matches("* ").to_string(),
            code: field(&row, code),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_instance_and_checks_them_over_tls() {
        let servers = [
            ("castellan-1".to_string(), "127.0.0.1:9441".parse().unwrap()),
            ("castellan-2".to_string(), "127.0.0.1:9442".parse().unwrap()),
        ];
        let c = config(&Balancer {
            listen: "127.0.0.1:8443".parse().unwrap(),
            stats: "127.0.0.1:8404".parse().unwrap(),
            servers: &servers,
            ca_bundle: Path::new("ca.pem"),
            server_name: "localhost",
            check_interval_ms: 500,
            fall: 2,
        });
        assert!(c.contains("bind 127.0.0.1:8443\n"), "{c}");
        assert!(c.contains("    server castellan-1 127.0.0.1:9441\n"), "{c}");
        assert!(c.contains("    server castellan-2 127.0.0.1:9442\n"), "{c}");
        assert!(
            c.contains("check-ssl verify required ca-file ca.pem"),
            "{c}"
        );
        // Passthrough: HAProxy never terminates the clients' TLS.
        assert!(!c.contains(" ssl crt"), "{c}");
        assert!(c.contains("mode tcp"), "{c}");
    }

    #[test]
    fn stats_rows_of_the_backend_only() {
        let csv = "# pxname,svname,qcur,status,check_status,check_code\n\
                   castellan_api,FRONTEND,,OPEN,,\n\
                   castellan_instances,castellan-1,0,UP,* L7OK,200\n\
                   castellan_instances,castellan-2,0,DOWN,L4CON,\n\
                   castellan_instances,BACKEND,0,UP,,\n";
        let rows = parse_csv(csv).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].is_up() && rows[0].is_checked_up());
        assert_eq!(
            (rows[1].status.as_str(), rows[1].check.as_str()),
            ("DOWN", "L4CON")
        );
        assert!(!rows[1].is_up());
        assert!(parse_csv("garbage").is_err());
        let chunked = format!(
            "10\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            &csv[..16],
            csv.len() - 16,
            &csv[16..]
        );
        assert_eq!(parse_csv(&dechunk(&chunked).unwrap()).unwrap(), rows);
        assert!(dechunk("zz\r\n").is_err());
        assert!(dechunk("ff\r\nshort").is_err());
    }
}
