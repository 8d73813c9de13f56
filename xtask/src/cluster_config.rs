//! The configuration of `cargo xtask cluster`: defaults, then a `key = value` file
//! (`--config FILE` or `CASTELLAN_CLUSTER_CONFIG`), then the environment
//! (`CASTELLAN_CLUSTER_<KEY>`, the key in capitals), then the command line (`--dir`). Every key
//! is listed in docs/scale.md ("A local cluster").

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Why the cluster's configuration was refused.
#[derive(Debug)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// A line of the file is not `key = value`, or a key is unknown.
    Line {
        origin: String,
        line: usize,
        what: String,
    },
    /// A value does not fit its key.
    Value {
        origin: String,
        key: String,
        what: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read { file, source } => write!(f, "{}: {source}", file.display()),
            ConfigError::Line { origin, line, what } => write!(f, "{origin}:{line}: {what}"),
            ConfigError::Value { origin, key, what } => write!(f, "{origin}: {key}: {what}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every key, with what it sets (for `--help` and the error on an unknown key).
pub(crate) const KEYS: &[(&str, &str)] = &[
    (
        "dir",
        "working directory: PostgreSQL, state directories, logs (default target/cluster)",
    ),
    (
        "api_port",
        "HAProxy's port for the operator API, on 127.0.0.1 (default 8443)",
    ),
    (
        "stats_port",
        "HAProxy's statistics page, on 127.0.0.1 (default 8404)",
    ),
    (
        "instance_api_ports",
        "the instances' own API ports, one per instance (default 9441,9442,9443)",
    ),
    (
        "instance_mqtt_ports",
        "the instances' MQTT ports, as many (default 8883,8884,8885)",
    ),
    (
        "database",
        "a postgres:// URL to use instead of the private PostgreSQL in dir/postgres",
    ),
    (
        "pg_port",
        "the private PostgreSQL's port (Unix socket in dir/postgres/sock only; default 5433)",
    ),
    (
        "lease_ttl",
        "seconds a lease lasts unrenewed (castellan serve --lease-ttl; default 15)",
    ),
    (
        "check_interval_ms",
        "milliseconds between HAProxy's health checks of one instance (default 1000)",
    ),
    (
        "fall",
        "failed checks in a row that take an instance out (default 2)",
    ),
    (
        "castellan",
        "the castellan binary to run (default: built with cargo build -p castellan)",
    ),
];

/// The cluster to start.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClusterConfig {
    pub dir: PathBuf,
    pub api_port: u16,
    pub stats_port: u16,
    pub instance_api_ports: Vec<u16>,
    pub instance_mqtt_ports: Vec<u16>,
    pub database: Option<String>,
    pub pg_port: u16,
    pub lease_ttl: u64,
    pub check_interval_ms: u32,
    pub fall: u32,
    pub castellan: Option<PathBuf>,
}

impl ClusterConfig {
    /// The defaults, with the working directory under `root` (the repository).
    pub(crate) fn defaults(root: &Path) -> ClusterConfig {
        ClusterConfig {
            dir: root.join("target").join("cluster"),
            api_port: 8443,
            stats_port: 8404,
            instance_api_ports: vec![9441, 9442, 9443],
            instance_mqtt_ports: vec![8883, 8884, 8885],
            database: None,
            pg_port: 5433,
            lease_ttl: 15,
            check_interval_ms: 1000,
            fall: 2,
            castellan: None,
        }
    }

    /// Set `key` from the text `value`; `origin` names where it came from, for errors.
    pub(crate) fn set(&mut self, origin: &str, key: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |what: String| ConfigError::Value {
            origin: origin.to_string(),
            key: key.to_string(),
            what,
        };
        let port = |v: &str| {
            v.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(format!("{v:?} is not a port (1-65535)")))
        };
        let ports = |v: &str| v.split(',').map(port).collect::<Result<Vec<u16>, _>>();
        let number = |v: &str| {
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(format!("{v:?} is not a positive number")))
        };
        match key {
            "dir" => self.dir = PathBuf::from(value),
            "api_port" => self.api_port = port(value)?,
            "stats_port" => self.stats_port = port(value)?,
            "instance_api_ports" => self.instance_api_ports = ports(value)?,
            "instance_mqtt_ports" => self.instance_mqtt_ports = ports(value)?,
            "database" if value.is_empty() => self.database = None,
            "database"
                if value.starts_with("postgres://") || value.starts_with("postgresql://") =>
            {
                self.database = Some(value.to_string())
            }
            "database" => return Err(bad("a postgres:// or postgresql:// URL".into())),
            "pg_port" => self.pg_port = port(value)?,
            "lease_ttl" => self.lease_ttl = u64::from(number(value)?),
            "check_interval_ms" => self.check_interval_ms = number(value)?,
            "fall" => self.fall = number(value)?,
            "castellan" if value.is_empty() => self.castellan = None,
            "castellan" => self.castellan = Some(PathBuf::from(value)),
            _ => return Err(bad(format!("unknown key (known: {})", key_names()))),
        }
        Ok(())
    }

    /// Read a `key = value` file (`#` starts a comment).
    pub(crate) fn read_file(&mut self, file: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let origin = file.display().to_string();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(ConfigError::Line {
                    origin,
                    line: i + 1,
                    what: format!("{line:?} is not `key = value`"),
                });
            };
            let key = key.trim();
            if !KEYS.iter().any(|(k, _)| *k == key) {
                return Err(ConfigError::Line {
                    origin,
                    line: i + 1,
                    what: format!("unknown key {key:?} (known: {})", key_names()),
                });
            }
            self.set(&origin, key, value.trim())?;
        }
        Ok(())
    }

    /// Apply `CASTELLAN_CLUSTER_<KEY>` variables read through `var`.
    pub(crate) fn read_env(
        &mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for (key, _) in KEYS {
            let name = env_name(key);
            if let Some(value) = var(&name) {
                self.set(&name, key, value.trim())?;
            }
        }
        Ok(())
    }

    /// Check what no single key can: as many MQTT ports as API ports, 2 to 9 instances, no
    /// port used twice.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, what: String| ConfigError::Value {
            origin: "configuration".into(),
            key: key.into(),
            what,
        };
        let n = self.instance_api_ports.len();
        if !(2..=9).contains(&n) {
            return Err(bad("instance_api_ports", format!("{n} instances: 2 to 9")));
        }
        if self.instance_mqtt_ports.len() != n {
            return Err(bad(
                "instance_mqtt_ports",
                format!("{} ports for {n} instances", self.instance_mqtt_ports.len()),
            ));
        }
        let mut all = vec![self.api_port, self.stats_port];
        all.extend(&self.instance_api_ports);
        all.extend(&self.instance_mqtt_ports);
        if self.database.is_none() {
            all.push(self.pg_port);
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad("ports", format!("port {} is used twice", w[0])));
        }
        Ok(())
    }

    /// The instances: name, API address, MQTT address.
    pub(crate) fn instances(&self) -> Vec<(String, SocketAddr, SocketAddr)> {
        let at = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
        self.instance_api_ports
            .iter()
            .zip(&self.instance_mqtt_ports)
            .enumerate()
            .map(|(i, (a, m))| (format!("castellan-{}", i + 1), at(*a), at(*m)))
            .collect()
    }
}

/// The environment variable of `key`.
pub(crate) fn env_name(key: &str) -> String {
    format!("CASTELLAN_CLUSTER_{}", key.to_ascii_uppercase())
}

fn key_names() -> String {
    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_the_defaults() {
        let dir = std::env::temp_dir().join(format!("xtask-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cluster.conf");
        std::fs::write(
            &file,
            "# three instances on other ports\napi_port = 18443\n\
             instance_api_ports = 19441, 19442,19443\nlease_ttl = 5 # seconds\n",
        )
        .unwrap();
        let mut c = ClusterConfig::defaults(Path::new("/repo"));
        c.read_file(&file).unwrap();
        c.read_env(|name| (name == "CASTELLAN_CLUSTER_API_PORT").then(|| "28443".into()))
            .unwrap();
        c.check().unwrap();
        assert_eq!(c.api_port, 28443);
        assert_eq!(c.instance_api_ports, vec![19441, 19442, 19443]);
        assert_eq!(c.lease_ttl, 5);
        assert_eq!(c.dir, Path::new("/repo/target/cluster"));
        assert_eq!(c.instances()[2].0, "castellan-3");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_where_they_came_from() {
        let mut c = ClusterConfig::defaults(Path::new("/repo"));
        let e = c
            .set("CASTELLAN_CLUSTER_API_PORT", "api_port", "http")
            .unwrap_err();
        assert!(e.to_string().contains("CASTELLAN_CLUSTER_API_PORT"), "{e}");
        assert!(c.set("x", "database", "mysql://db").is_err());
        assert!(c.set("x", "colour", "blue").is_err());
        c.set("x", "instance_mqtt_ports", "1883,1884").unwrap();
        assert!(c.check().is_err(), "2 MQTT ports for 3 instances");
        c.set("x", "instance_mqtt_ports", "1883,1884,9441").unwrap();
        assert!(c.check().is_err(), "9441 twice");
    }
}
