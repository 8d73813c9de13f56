//! HAProxy (Debian's `haproxy`): a load balancer in front of several `castellan serve`
//! instances' HTTPS APIs, run in the foreground with the configuration `cargo xtask cluster`
//! runs ([`config`]), stopped when the handle drops.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::haproxy_config::{
    Balancer, ServerState, StatsError, config, parse_csv, server_states,
};

/// How to install it.
pub const INSTALL: &str = "apt-get install -y haproxy";

/// Fails the test unless `haproxy` is on the `PATH`.
#[track_caller]
pub fn require() {
    super::require_tool("haproxy", INSTALL);
}

/// A free loopback TCP address (bound, then released: the caller binds it at once).
pub fn free_loopback_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A running HAProxy, killed on drop.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    /// The clients' address.
    pub listen: SocketAddr,
    /// The statistics page.
    pub stats: SocketAddr,
    /// Its configuration file.
    pub config_file: PathBuf,
}

impl Haproxy {
    /// Write the configuration of `b` into `dir`, check it (`haproxy -c`) and start HAProxy in
    /// the foreground; returns once its listener accepts connections.
    #[track_caller]
    pub fn start(dir: &Path, b: &Balancer<'_>) -> Haproxy {
        require();
        let config_file = dir.join("haproxy.cfg");
        std::fs::write(&config_file, config(b)).unwrap_or_else(|e| panic!("haproxy.cfg: {e}"));
        let check = Command::new("haproxy")
            .args(["-c", "-q", "-f"])
            .arg(&config_file)
            .output()
            .unwrap_or_else(|e| panic!("haproxy -c: {e}"));
        assert!(
            check.status.success(),
            "haproxy refused its configuration: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("haproxy: {e}"));
        let h = Haproxy {
            child,
            listen: b.listen,
            stats: b.stats,
            config_file,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(h.listen).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {}",
                h.listen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        h
    }

    /// The instances as HAProxy sees them.
    pub fn states(&self) -> Result<Vec<ServerState>, StatsError> {
        server_states(self.stats)
    }

    /// Wait (polling its statistics every 100 ms, at most `limit`) until `pred` holds for the
    /// instances' states; returns them, or `None` after `limit`.
    pub async fn wait_states(
        &self,
        limit: Duration,
        mut pred: impl FnMut(&[ServerState]) -> bool,
    ) -> Option<Vec<ServerState>> {
        let deadline = Instant::now() + limit;
        loop {
            let stats = self.stats;
            let states = tokio::task::spawn_blocking(move || server_states(stats))
                .await
                .ok()
                .and_then(Result::ok);
            if let Some(s) = states
                && pred(&s)
            {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
