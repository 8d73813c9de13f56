//! `cargo xtask cluster`: a local cluster of `castellan serve` instances on 127.0.0.1 — one
//! PostgreSQL database (its own server in the working directory unless `database` is set),
//! three instances each with its own API and MQTT port, and HAProxy in front of their HTTPS
//! APIs (TLS passed through; the configuration is `castellan-testkit`'s, the one the cluster
//! tests run). It prints the endpoints and one health line per instance (as HAProxy's checks
//! see it), reports changes until Ctrl-C, then stops HAProxy, the instances (SIGTERM: each
//! gives its leases up and writes its last audit records) and the PostgreSQL it started.
//!
//! ```text
//!  <dir>/offline-pki/         the PKI made offline (root key included: a local cluster only)
//!  <dir>/castellan-N/         instance N's state directory (pki/ handed over, tls/, anchor)
//!  <dir>/castellan-N.log      its output
//!  <dir>/postgres/            the private PostgreSQL (data/, sock/, server.log)
//!  <dir>/haproxy.cfg          HAProxy's configuration; <dir>/haproxy.log its output
//! ```

#[path = "../../crates/host/castellan-testkit/src/peers/haproxy_config.rs"]
mod haproxy;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt as _;

use crate::cluster_config::{ClusterConfig, ConfigError, KEYS, env_name};
use crate::cluster_pg::{PgError, Postgres};
use crate::steps::root;
use serde_json::json;

/// Why the cluster did not start or run.
#[derive(Debug)]
pub(crate) enum ClusterError {
    /// A wrong option.
    Usage(String),
    /// The configuration was refused.
    Config(ConfigError),
    /// The private PostgreSQL.
    Postgres(PgError),
    /// A file or directory, or a process that could not be started.
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A command that failed.
    Tool { what: String, output: String },
    /// An instance or HAProxy stopped or never became ready.
    NotReady { what: String, log: PathBuf },
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Usage(m) => write!(f, "{m} (see cargo xtask cluster --help)"),
            ClusterError::Config(e) => write!(f, "configuration: {e}"),
            ClusterError::Postgres(e) => write!(f, "PostgreSQL: {e}"),
            ClusterError::Io { what, source } => write!(f, "{what}: {source}"),
            ClusterError::Tool { what, output } => write!(f, "{what} failed: {output}"),
            ClusterError::NotReady { what, log } => {
                let tail = tail(log, 15);
                write!(f, "{what}; the last lines of {}:\n{tail}", log.display())
            }
        }
    }
}

impl std::error::Error for ClusterError {}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

fn tail(file: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn help() -> String {
    let mut h = String::from(
        "usage: cargo xtask cluster [--config FILE] [--dir DIR] [--fresh] [--json]\n\n\
         Start a local cluster on 127.0.0.1: one PostgreSQL database, three `castellan serve`\n\
         instances (each its own API and MQTT port) and HAProxy in front of their HTTPS APIs\n\
         (TLS passed through to the instances). Prints the endpoints and a health line per\n\
         instance, reports health changes, and stops everything cleanly on Ctrl-C.\n\n\
         options:\n  \
         --config FILE   read `key = value` lines (also CASTELLAN_CLUSTER_CONFIG)\n  \
         --dir DIR       working directory (overrides the `dir` key)\n  \
         --fresh         remove the working directory first (new PKI, empty database)\n  \
         --json          one JSON object a line: `ready` (endpoints, health), then `health`,\n                  \
         `exited` and `stopped` events\n  \
         -h, --help      this text\n\n\
         keys (file, or environment CASTELLAN_CLUSTER_<KEY>, which wins over the file):\n",
    );
    for (k, what) in KEYS {
        h.push_str(&format!("  {k:<20} {what}\n"));
    }
    h.push_str("\nSee docs/scale.md, \"A local cluster\".\n");
    h
}

/// What the command line asks beside the configuration.
#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    /// Remove the working directory first.
    fresh: bool,
    /// JSON lines instead of text.
    json: bool,
}

/// The command line and configuration, resolved.
fn configure(args: &[String]) -> Result<Option<(ClusterConfig, Flags)>, ClusterError> {
    let mut file = std::env::var_os(env_name("config")).map(PathBuf::from);
    let (mut dir, mut flags) = (None, Flags::default());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{}", help());
                return Ok(None);
            }
            "--fresh" => flags.fresh = true,
            "--json" => flags.json = true,
            "--config" | "--dir" => {
                let v = it
                    .next()
                    .ok_or_else(|| ClusterError::Usage(format!("{a} needs a value")))?;
                if a == "--config" {
                    file = Some(PathBuf::from(v));
                } else {
                    dir = Some(PathBuf::from(v));
                }
            }
            other => return Err(ClusterError::Usage(format!("unknown option `{other}`"))),
        }
    }
    let mut c = ClusterConfig::defaults(&root());
    if let Some(f) = &file {
        c.read_file(f).map_err(ClusterError::Config)?;
    }
    c.read_env(|name| std::env::var(name).ok())
        .map_err(ClusterError::Config)?;
    if let Some(d) = dir {
        c.dir = d;
    }
    c.check().map_err(ClusterError::Config)?;
    if c.dir.is_relative() {
        c.dir = std::env::current_dir()
            .map_err(io("current directory"))?
            .join(&c.dir);
    }
    Ok(Some((c, flags)))
}

/// `cargo xtask cluster`.
pub(crate) fn cluster_cmd(args: &[String]) -> crate::steps::Result {
    run(args).map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result<(), ClusterError> {
    let Some((c, flags)) = configure(args)? else {
        return Ok(());
    };
    // Ctrl-C (and SIGTERM) only raise this flag: the children run in their own process groups,
    // so the terminal's signal reaches this process alone, which stops them in order.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(io("signal handler"))?;
    }
    if flags.fresh && c.dir.exists() {
        std::fs::remove_dir_all(&c.dir).map_err(io(format!("remove {}", c.dir.display())))?;
    }
    std::fs::create_dir_all(&c.dir).map_err(io(format!("create {}", c.dir.display())))?;
    let castellan = match &c.castellan {
        Some(p) => p.clone(),
        None => build_castellan()?,
    };
    let mut cluster = Cluster {
        haproxy: None,
        instances: Vec::new(),
        postgres: None,
        json: flags.json,
    };
    let result = start_and_watch(&c, &castellan, &mut cluster, &stop);
    cluster.stop();
    result
}

fn build_castellan() -> Result<PathBuf, ClusterError> {
    eprintln!("xtask: building castellan (cargo build -p castellan)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root())
        .args(["build", "--quiet", "-p", "castellan"])
        .status()
        .map_err(io("cargo build"))?;
    if !status.success() {
        return Err(ClusterError::Tool {
            what: "cargo build -p castellan".into(),
            output: status.to_string(),
        });
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target.join("debug").join("castellan"))
}

/// What runs, stopped in reverse order.
struct Cluster {
    haproxy: Option<Child>,
    instances: Vec<(String, Child)>,
    postgres: Option<Postgres>,
    /// Events as JSON lines.
    json: bool,
}

/// Print `text`, or the JSON `event` when `json`.
fn say(json: bool, text: &str, event: serde_json::Value) {
    if json {
        println!("{event}");
    } else {
        println!("{text}");
    }
}

impl Cluster {
    fn stop(&mut self) {
        if let Some(mut h) = self.haproxy.take() {
            terminate(&mut h, Duration::from_secs(5));
            let e = json!({"event": "stopped", "what": "haproxy"});
            say(self.json, "stopped HAProxy", e);
        }
        for (name, child) in self.instances.iter_mut().rev() {
            let clean = terminate(child, Duration::from_secs(30));
            let how = if clean { "leases given up" } else { "killed" };
            let e = json!({"event": "stopped", "what": name, "clean": clean});
            say(self.json, &format!("stopped {name} ({how})"), e);
        }
        self.instances.clear();
        if let Some(pg) = self.postgres.take() {
            match pg.stop() {
                Ok(()) => say(
                    self.json,
                    "stopped PostgreSQL",
                    json!({"event": "stopped", "what": "postgres"}),
                ),
                Err(e) => eprintln!("xtask: {e}"),
            }
        }
    }
}

/// SIGTERM, then wait up to `grace`, then SIGKILL. True when it stopped by itself with success.
fn terminate(child: &mut Child, grace: Duration) -> bool {
    if let Ok(Some(status)) = child.try_wait() {
        return status.success();
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

fn start_and_watch(
    c: &ClusterConfig,
    castellan: &Path,
    cluster: &mut Cluster,
    stop: &AtomicBool,
) -> Result<(), ClusterError> {
    let database = match &c.database {
        Some(url) => url.clone(),
        None => {
            let pg = Postgres::new(&c.dir, c.pg_port).map_err(ClusterError::Postgres)?;
            let started = pg.start().map_err(ClusterError::Postgres)?;
            let url = pg.url();
            eprintln!(
                "xtask: PostgreSQL {} ({})",
                if started {
                    "started"
                } else {
                    "already running"
                },
                pg.log().display()
            );
            // Stopped at the end only when this run started it.
            if started {
                cluster.postgres = Some(pg);
            }
            url
        }
    };
    let instances = c.instances();
    let offline = c.dir.join("offline-pki");
    if !offline.exists() {
        tool(
            Command::new(castellan)
                .args(["pki", "init", "--offline"])
                .arg(&offline),
        )?;
    }
    for (name, api, mqtt) in &instances {
        let state = c.dir.join(name);
        if !state.join("pki").exists() {
            tool(
                Command::new(castellan)
                    .args(["pki", "handover", "--manufacturer-key", "--offline"])
                    .arg(&offline)
                    .arg("--state-dir")
                    .arg(&state),
            )?;
        }
        let log = c.dir.join(format!("{name}.log"));
        let out = File::create(&log).map_err(io(format!("create {}", log.display())))?;
        let err = out.try_clone().map_err(io("log file"))?;
        let child = Command::new(castellan)
            .arg("serve")
            .arg("--state-dir")
            .arg(&state)
            .args(["--database", &database, "--instance-name", name])
            .args(["--api", &api.to_string(), "--mqtt", &mqtt.to_string()])
            .args(["--lease-ttl", &c.lease_ttl.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(io(format!("start {}", castellan.display())))?;
        cluster.instances.push((name.clone(), child));
        // One at a time: the first creates the schema and the first admin token.
        wait_for_line(cluster, &log, "Ctrl-C stops the service.", name, stop)?;
    }

    let ca_bundle = c.dir.join("castellan-1").join("tls").join("ca-bundle.pem");
    let servers: Vec<(String, std::net::SocketAddr)> =
        instances.iter().map(|(n, a, _)| (n.clone(), *a)).collect();
    let balancer = haproxy::Balancer {
        listen: ([127, 0, 0, 1], c.api_port).into(),
        stats: ([127, 0, 0, 1], c.stats_port).into(),
        servers: &servers,
        ca_bundle: &ca_bundle,
        server_name: "localhost",
        check_interval_ms: c.check_interval_ms,
        fall: c.fall,
    };
    let cfg = c.dir.join("haproxy.cfg");
    std::fs::write(&cfg, haproxy::config(&balancer)).map_err(io("write haproxy.cfg"))?;
    tool(Command::new("haproxy").args(["-c", "-q", "-f"]).arg(&cfg))?;
    let log = c.dir.join("haproxy.log");
    let out = File::create(&log).map_err(io("haproxy.log"))?;
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(io("haproxy.log"))?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .map_err(io("start haproxy (cargo xtask deps installs it)"))?;
    cluster.haproxy = Some(child);

    // Every instance up in HAProxy's eyes, or say which is not.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut states = Vec::new();
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        states = haproxy::server_states(balancer.stats).unwrap_or_default();
        if states.len() == servers.len() && states.iter().all(|s| s.is_checked_up()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let token = c.dir.join("castellan-1").join("admin.token");
    if cluster.json {
        let health = |name: &str| states.iter().find(|s| s.name == name);
        let list: Vec<serde_json::Value> = instances
            .iter()
            .map(|(name, api, mqtt)| {
                json!({
                    "name": name,
                    "api": format!("https://{api}"),
                    "mqtt": format!("mqtts://{mqtt}"),
                    "log": c.dir.join(format!("{name}.log")),
                    "up": health(name).is_some_and(|s| s.is_checked_up()),
                    "check": health(name).map(|s| s.check.clone()),
                })
            })
            .collect();
        let ready = json!({
            "event": "ready",
            "api": format!("https://localhost:{}", c.api_port),
            "stats": format!("http://127.0.0.1:{}/", c.stats_port),
            "store": redact(&database),
            "ca_bundle": ca_bundle,
            "admin_token_file": token,
            "offline_pki": offline,
            "instances": list,
        });
        println!("{ready}");
    } else {
        println!(
            "castellan cluster: {} instances on one PostgreSQL database",
            servers.len()
        );
        println!(
            "  operator API  https://localhost:{} (HAProxy, TLS passed through)",
            c.api_port
        );
        println!("  HAProxy stats http://127.0.0.1:{}/", c.stats_port);
        println!("  store         {}", redact(&database));
        println!("  CA bundle     {}", ca_bundle.display());
        println!("  admin token   {}", token.display());
        println!(
            "  offline PKI   {} (local cluster only: keep it offline in production)",
            offline.display()
        );
        for (name, api, mqtt) in &instances {
            println!(
                "  {name:<13} api https://{api}  mqtt mqtts://{mqtt}  log {}",
                c.dir.join(format!("{name}.log")).display()
            );
        }
        println!("health:");
        for s in &states {
            println!("  {}", health_line(s));
        }
        println!(
            "try: curl --cacert {} -H \"Authorization: Bearer $(cat {})\" https://localhost:{}/api/v1/devices",
            ca_bundle.display(),
            token.display(),
            c.api_port
        );
        println!("Ctrl-C stops the cluster.");
    }

    let mut last = states;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        if let Some(h) = cluster.haproxy.as_mut()
            && let Ok(Some(status)) = h.try_wait()
        {
            return Err(ClusterError::NotReady {
                what: format!("HAProxy stopped ({status})"),
                log,
            });
        }
        for (name, child) in &mut cluster.instances {
            if let Ok(Some(status)) = child.try_wait() {
                let e = json!({"event": "exited", "instance": name, "status": status.to_string()});
                let text = format!("{name} exited ({status}); the others carry on");
                say(cluster.json, &text, e);
            }
        }
        cluster
            .instances
            .retain_mut(|(_, c)| !matches!(c.try_wait(), Ok(Some(_))));
        if let Ok(now) = haproxy::server_states(balancer.stats) {
            for s in &now {
                if !last
                    .iter()
                    .any(|l| l.name == s.name && l.is_up() == s.is_up())
                {
                    let e = json!({"event": "health", "instance": s.name, "up": s.is_up(), "check": s.check});
                    say(cluster.json, &format!("health: {}", health_line(s)), e);
                }
            }
            last = now;
        }
    }
    if !cluster.json {
        println!("stopping the cluster");
    }
    Ok(())
}

fn health_line(s: &haproxy::ServerState) -> String {
    let code = if s.code.is_empty() {
        String::new()
    } else {
        format!(" {}", s.code)
    };
    format!(
        "{:<13} {:<6} (last check {}{code})",
        s.name,
        if s.is_up() { "up" } else { "down" },
        if s.check.is_empty() {
            "pending"
        } else {
            &s.check
        }
    )
}

/// The URL without its password, if any.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

fn tool(c: &mut Command) -> Result<(), ClusterError> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("{c:?}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError::Tool {
            what: format!("{c:?}"),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// Wait until `log` has `line` (the instance is ready), the instance exits, or 120 s pass.
fn wait_for_line(
    cluster: &mut Cluster,
    log: &Path,
    line: &str,
    name: &str,
    stop: &AtomicBool,
) -> Result<(), ClusterError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(line)) {
            return Ok(());
        }
        let exited = cluster
            .instances
            .last_mut()
            .and_then(|(_, c)| c.try_wait().ok().flatten());
        let why = if let Some(status) = exited {
            format!("{name} exited ({status})")
        } else if Instant::now() > deadline {
            format!("{name} was not ready within 120 s")
        } else if stop.load(Ordering::Relaxed) {
            format!("interrupted while {name} started")
        } else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        return Err(ClusterError::NotReady {
            what: why,
            log: log.to_path_buf(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://castellan:s3cret@db:5432/castellan"),
            "postgres://castellan:***@db:5432/castellan"
        );
        assert_eq!(
            redact("postgresql:///castellan?host=/x&user=castellan"),
            "postgresql:///castellan?host=/x&user=castellan"
        );
    }

    #[test]
    fn help_lists_every_key() {
        let h = help();
        for (k, _) in KEYS {
            assert!(h.contains(k), "{k}");
        }
    }

    #[test]
    fn unknown_options_are_refused() {
        assert!(matches!(
            configure(&["--colour".into()]),
            Err(ClusterError::Usage(_))
        ));
        assert!(matches!(
            configure(&["--dir".into()]),
            Err(ClusterError::Usage(_))
        ));
    }
}
