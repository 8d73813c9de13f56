//! A throwaway PostgreSQL server for tests, from Debian's package: `initdb` into a temporary
//! directory, `pg_ctl start` listening only on a Unix socket inside it (no TCP port, so parallel
//! test binaries never collide); as root everything runs as [`PG_USER`] through `runuser`.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

pub use castellan_pgctl::PG_USER;
use castellan_pgctl::{PgCluster, PgCtlError, find_bin, is_root};

const SOCKET_PORT: u16 = 5432;

/// Why the test PostgreSQL server could not be installed, started, stopped or used.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// PostgreSQL is not installed and installing it (as root) did not work.
    #[error("PostgreSQL is missing and `apt-get install -y postgresql` did not install it")]
    InstallFailed,
    /// PostgreSQL is not installed and the tests do not run as root.
    #[error(
        "PostgreSQL is missing: install it with `sudo apt-get install -y postgresql` (the tests \
         need /usr/lib/postgresql/*/bin/initdb)"
    )]
    Missing,
    /// A tool could not be run at all.
    #[error("{what}: cannot run: {source}")]
    Spawn {
        /// The tool (`initdb`, `pg_ctl start`, …).
        what: &'static str,
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// A tool ran and failed.
    #[error("{what} failed ({status}): {output}")]
    Failed {
        /// The tool.
        what: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed.
        output: String,
    },
    /// The server did not start; its log says why.
    #[error("{cause}\nserver log:\n{log}")]
    Start {
        /// What `pg_ctl start` said.
        cause: Box<PgError>,
        /// The server's log.
        log: String,
    },
    /// A file or directory of the server could not be made.
    #[error("{what}: {source}")]
    Io {
        /// Which (`temporary directory`, `socket dir`, `watchdog`).
        what: &'static str,
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// The server refused a connection or a statement.
    #[error("{what}: {source}")]
    Sql {
        /// What was being done.
        what: &'static str,
        /// PostgreSQL's error.
        source: Arc<tokio_postgres::Error>,
    },
}

impl PgError {
    fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> PgError {
        move |e| PgError::Io {
            what,
            source: Arc::new(e),
        }
    }

    fn sql(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        move |e| PgError::Sql {
            what,
            source: Arc::new(e),
        }
    }
}

impl From<PgCtlError> for PgError {
    fn from(e: PgCtlError) -> PgError {
        match e {
            PgCtlError::Spawn { what, source } => PgError::Spawn { what, source },
            PgCtlError::Failed {
                what,
                status,
                output,
            } => PgError::Failed {
                what,
                status,
                output,
            },
            // A variant added later: keep what it says.
            other => PgError::Failed {
                what: "PostgreSQL tool",
                status: ExitStatus::default(),
                output: other.to_string(),
            },
        }
    }
}

/// A PostgreSQL server in a temporary directory.
#[derive(Debug)]
pub struct PgServer {
    cluster: PgCluster,
    next_db: AtomicU32,
    keep_dir: bool,
}

impl PgServer {
    /// Install (if needed and possible), initialise and start a new server.
    pub fn start() -> Result<PgServer, PgError> {
        let root = is_root();
        let bin = match find_bin() {
            Some(b) => b,
            None if root => {
                let install = || {
                    Command::new("apt-get")
                        .args(["install", "-y", "-q", "postgresql"])
                        .env("DEBIAN_FRONTEND", "noninteractive")
                        .stdout(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                };
                if !install() {
                    let _ = Command::new("apt-get")
                        .args(["update", "-q"])
                        .stdout(Stdio::null())
                        .status();
                    install();
                }
                find_bin().ok_or(PgError::InstallFailed)?
            }
            None => return Err(PgError::Missing),
        };
        if root {
            castellan_pgctl::ensure_user()?;
        }
        let dir = tempfile::Builder::new()
            .prefix("castellan-pg-")
            .tempdir()
            .map_err(PgError::io("temporary directory"))?
            .keep();
        let server = PgServer {
            cluster: PgCluster::new(&dir, bin, SOCKET_PORT, root),
            next_db: AtomicU32::new(0),
            keep_dir: false,
        };
        let cluster = &server.cluster;
        cluster.chown(&dir, false)?;
        std::fs::create_dir_all(cluster.socket_dir()).map_err(PgError::io("socket dir"))?;
        cluster.chown(&cluster.socket_dir(), false)?;
        cluster.initdb(&["--no-sync"])?;
        server.pg_ctl_start()?;
        Ok(server)
    }

    /// One server for the whole test process, started on first use and stopped (directory
    /// removed) by a watchdog when the process exits.
    pub fn shared() -> Result<&'static PgServer, PgError> {
        static SHARED: OnceLock<Result<PgServer, PgError>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let mut server = PgServer::start()?;
                server.keep_dir = true;
                server.spawn_watchdog()?;
                Ok(server)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.cluster.dir()
    }

    fn pg_ctl_start(&self) -> Result<(), PgError> {
        let settings = "-c fsync=off -c full_page_writes=off -c max_connections=200";
        self.cluster.start(settings).map_err(|e| PgError::Start {
            cause: Box::new(e.into()),
            log: std::fs::read_to_string(self.cluster.log()).unwrap_or_default(),
        })
    }

    /// Stop the server (`mode`: "fast" or "immediate", the latter being a crash).
    pub fn stop(&self, mode: &str) -> Result<(), PgError> {
        Ok(self.cluster.stop(mode)?)
    }

    /// Crash the server (`pg_ctl stop -m immediate`: no checkpoint, recovery from the WAL on
    /// start) and start it again.
    pub fn crash_and_restart(&self) -> Result<(), PgError> {
        self.stop("immediate")?;
        self.pg_ctl_start()
    }

    /// Start a server stopped with [`PgServer::stop`] again, on the same data and socket (with
    /// `stop("fast")` before it: a restart by an operator or a package upgrade).
    pub fn start_again(&self) -> Result<(), PgError> {
        self.pg_ctl_start()
    }

    /// The connection URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        self.cluster.url(db)
    }

    /// Create a fresh, empty database and return its URL.
    pub async fn create_database(&self) -> Result<String, PgError> {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        let (client, conn) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .map_err(PgError::sql("connect to the test server"))?;
        let task = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(PgError::sql("CREATE DATABASE"))?;
        drop(client);
        let _ = task.await;
        Ok(self.url(&name))
    }

    fn spawn_watchdog(&self) -> Result<(), PgError> {
        let pid = std::process::id();
        let stop = self.cluster.stop_command("immediate", false);
        let stop_line = std::iter::once(stop.get_program())
            .chain(stop.get_args())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop_line} >/dev/null 2>&1; rm -rf {}",
            shell_quote(&self.dir().to_string_lossy())
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(PgError::io("watchdog"))?;
        Ok(())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if !self.keep_dir {
            let _ = self.stop("immediate");
            let _ = std::fs::remove_dir_all(self.dir());
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
