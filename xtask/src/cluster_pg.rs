//! The local cluster's own PostgreSQL: Debian's binaries (`/usr/lib/postgresql/<v>/bin`),
//! `initdb` into `<dir>/postgres/data` once, `pg_ctl start` listening only on a Unix socket in
//! `<dir>/postgres/sock` (no TCP port), one database `castellan`. It keeps its data between
//! runs; `--fresh` starts from nothing. PostgreSQL refuses to run as root, so as root it runs
//! as the system user `castellan-pg` (the one the store's test servers use) through `runuser`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The system user PostgreSQL runs as when xtask runs as root.
const PG_USER: &str = "castellan-pg";

/// Why the private PostgreSQL could not be prepared, started or stopped.
#[derive(Debug)]
pub(crate) enum PgError {
    /// No `/usr/lib/postgresql/<version>/bin/initdb`.
    Missing,
    /// A tool could not be run, or failed.
    Tool { what: String, output: String },
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Missing => write!(
                f,
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run \
                 `cargo xtask deps` as root, or set `database` to a postgres:// URL"
            ),
            PgError::Tool { what, output } => write!(f, "{what} failed: {output}"),
        }
    }
}

impl std::error::Error for PgError {}

/// A PostgreSQL server in `<dir>/postgres`.
pub(crate) struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn run(c: &mut Command, what: &str) -> Result<String, PgError> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| PgError::Tool {
        what: what.into(),
        output: e.to_string(),
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(PgError::Tool {
            what: format!("{what} ({})", out.status),
            output: text.trim().to_string(),
        })
    }
}

impl Postgres {
    /// The server of `cluster_dir` (not started yet).
    pub(crate) fn new(cluster_dir: &Path, port: u16) -> Result<Postgres, PgError> {
        Ok(Postgres {
            dir: cluster_dir.join("postgres"),
            bin: find_bin().ok_or(PgError::Missing)?,
            port,
            run_as: is_root().then_some(PG_USER),
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// The database's URL.
    pub(crate) fn url(&self) -> String {
        format!(
            "postgresql:///castellan?host={}&port={}&user=castellan",
            self.socket().display(),
            self.port
        )
    }

    /// The server's log file.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Create the cluster (first run), start it unless it runs, create the database (first
    /// run). Returns whether this call started it.
    pub(crate) fn start(&self) -> Result<bool, PgError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |e: std::io::Error| PgError::Tool {
                what,
                output: e.to_string(),
            }
        };
        std::fs::create_dir_all(self.socket()).map_err(io("create the PostgreSQL directory"))?;
        if let Some(user) = self.run_as {
            if run(Command::new("id").args(["-u", user]), "id").is_err() {
                run(
                    Command::new("useradd").args([
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        user,
                    ]),
                    "useradd",
                )?;
            }
            run(
                Command::new("chown").args(["-R", user]).arg(&self.dir),
                "chown",
            )?;
        }
        if !self.data().join("PG_VERSION").exists() {
            run(
                self.cmd("initdb")
                    .arg("-D")
                    .arg(self.data())
                    .args(["-U", "castellan", "-A", "trust", "-E", "UTF8"])
                    .arg("--no-instructions"),
                "initdb",
            )?;
        }
        let running = run(
            self.cmd("pg_ctl").arg("-D").arg(self.data()).arg("status"),
            "pg_ctl status",
        )
        .is_ok();
        if !running {
            let opts = format!(
                "-k {} -p {} -c listen_addresses= -c max_connections=300",
                self.socket().display(),
                self.port
            );
            run(
                self.cmd("pg_ctl")
                    .arg("-D")
                    .arg(self.data())
                    .arg("-l")
                    .arg(self.log())
                    .args(["-o", &opts, "-w", "-t", "60", "start"])
                    .stdout(Stdio::null()),
                "pg_ctl start",
            )
            .map_err(|e| match e {
                PgError::Tool { what, output } => PgError::Tool {
                    what,
                    output: format!(
                        "{output}\n{}",
                        std::fs::read_to_string(self.log()).unwrap_or_default()
                    ),
                },
                other => other,
            })?;
        }
        let created = run(
            self.cmd("createdb").arg("-h").arg(self.socket()).args([
                "-p",
                &self.port.to_string(),
                "-U",
                "castellan",
                "castellan",
            ]),
            "createdb",
        );
        match created {
            Ok(_) => {}
            Err(PgError::Tool { output, .. }) if output.contains("already exists") => {}
            Err(e) => return Err(e),
        }
        Ok(!running)
    }

    /// Stop the server (fast: open sessions are closed, then a checkpoint).
    pub(crate) fn stop(&self) -> Result<(), PgError> {
        run(
            self.cmd("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        )
        .map(|_| ())
    }
}
