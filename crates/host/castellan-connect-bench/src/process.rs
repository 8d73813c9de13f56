//! The broker processes under test (ours as a child of the current executable, Mosquitto from
//! its Debian package), their memory, Mosquitto's configuration, and the scratch directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{BenchError, bench_err};

/// VmRSS of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn vm_rss_kib(pid: u32) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(bench_err)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| BenchError::Bench(format!("no VmRSS for pid {pid}")))
}

pub(crate) fn find_mosquitto() -> Result<PathBuf, BenchError> {
    let candidates = [
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/usr/bin/mosquitto",
    ];
    if let Some(p) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .ok_or(BenchError::ToolMissing {
            tool: "mosquitto",
            install: "apt-get install -y mosquitto",
        })
}

pub(crate) fn mosquitto_version(exe: &Path) -> String {
    let out = Command::new(exe)
        .arg("-h")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    out.ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.strip_prefix("mosquitto version "))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}

fn free_loopback_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(bench_err)?;
    Ok(l.local_addr().map_err(bench_err)?.port())
}

/// Writes `mosquitto.conf` and its ACL file; returns the config path and the chosen port.
pub(crate) fn write_mosquitto_conf(
    dir: &Path,
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<(PathBuf, u16), BenchError> {
    let port = free_loopback_port()?;
    let acl = dir.join("mosquitto.acl");
    std::fs::write(
        &acl,
        "pattern write dev/%u/telemetry\npattern write dev/%u/events\npattern write dev/%u/status\n\
         pattern write dev/%u/up/#\npattern read dev/%u/cmd/#\npattern read dev/%u/down/#\n",
    )
    .map_err(bench_err)?;
    let conf = format!(
        "per_listener_settings false\nallow_anonymous false\npersistence false\nlog_dest stderr\nlog_type error\n\
         max_connections -1\nacl_file {}\nlistener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
         require_certificate true\nuse_identity_as_username true\n",
        acl.display(),
        ca.display(),
        cert.display(),
        key.display()
    );
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).map_err(bench_err)?;
    Ok((path, port))
}

/// A broker child process, killed when dropped.
pub(crate) struct BrokerProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl BrokerProcess {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn spawn_ours(mut cmd: Command) -> Result<Self, BenchError> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| BenchError::Bench(format!("cannot start the broker child: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Bench("no child stdout".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::Bench(format!(
                "the broker child did not report its port (got {line:?}); does the binary call \
                 castellan_connect_bench::run_child_if_requested() at the start of main?"
            )));
        };
        Ok(Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    pub(crate) fn spawn_mosquitto(
        exe: &Path,
        conf: &Path,
        port: u16,
        dir: &Path,
    ) -> Result<Self, BenchError> {
        let log = std::fs::File::create(dir.join("mosquitto.log")).map_err(bench_err)?;
        let child = Command::new(exe)
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| BenchError::Bench(format!("cannot start mosquitto: {e}")))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut process = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default();
                return Err(BenchError::Bench(format!(
                    "mosquitto exited ({status}): {log}"
                )));
            }
            if Instant::now() > deadline {
                return Err(BenchError::Bench(
                    "mosquitto did not listen within 10 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // Closing stdin asks our child to stop; Mosquitto (no stdin) and a stuck child are killed.
        let graceful = self.child.stdin.take().is_some();
        let deadline = if graceful {
            Instant::now() + Duration::from_secs(3)
        } else {
            Instant::now()
        };
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory removed when dropped.
pub(crate) struct WorkDir(PathBuf);

impl WorkDir {
    pub(crate) fn new() -> Result<Self, BenchError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("castellan-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(bench_err)?;
        Ok(Self(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
