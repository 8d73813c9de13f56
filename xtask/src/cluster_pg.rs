//! The local cluster's own PostgreSQL: Debian's binaries (`/usr/lib/postgresql/<v>/bin`),
//! `initdb` into `<dir>/postgres/data` once, `pg_ctl start` listening only on a Unix socket in
//! `<dir>/postgres/sock` (no TCP port), one database `castellan`. It keeps its data between
//! runs; `--fresh` starts from nothing. PostgreSQL refuses to run as root, so as root it runs
//! as the system user `castellan-pg` (the one the store's test servers use) through `runuser`.
//! The tools are driven by `castellan-pgctl`, as the store's test servers are.

use castellan_pgctl::{PgCluster, PgCtlError, find_bin, is_root, run};
use std::path::{Path, PathBuf};

/// Why the private PostgreSQL could not be prepared, started or stopped.
#[derive(Debug)]
pub(crate) enum PgError {
    /// No `/usr/lib/postgresql/<version>/bin/initdb`.
    Missing,
    /// A tool could not be run, or failed.
    Tool(PgCtlError),
    /// The server did not start; its log says why.
    Start { cause: PgCtlError, log: String },
    /// Its directory could not be made.
    Io(std::io::Error),
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Missing => write!(
                f,
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run \
                 `cargo xtask deps` as root, or set `database` to a postgres:// URL"
            ),
            PgError::Tool(e) => write!(f, "{e}"),
            PgError::Start { cause, log } => write!(f, "{cause}\n{log}"),
            PgError::Io(e) => write!(f, "create the PostgreSQL directory: {e}"),
        }
    }
}

impl std::error::Error for PgError {}

impl From<PgCtlError> for PgError {
    fn from(e: PgCtlError) -> PgError {
        PgError::Tool(e)
    }
}

/// A PostgreSQL server in `<dir>/postgres`.
pub(crate) struct Postgres {
    cluster: PgCluster,
}

impl Postgres {
    /// The server of `cluster_dir` (not started yet).
    pub(crate) fn new(cluster_dir: &Path, port: u16) -> Result<Postgres, PgError> {
        let bin = find_bin().ok_or(PgError::Missing)?;
        let dir = cluster_dir.join("postgres");
        Ok(Postgres {
            cluster: PgCluster::new(&dir, bin, port, is_root()),
        })
    }

    /// The database's URL.
    pub(crate) fn url(&self) -> String {
        self.cluster.url("castellan")
    }

    /// The server's log file.
    pub(crate) fn log(&self) -> PathBuf {
        self.cluster.log()
    }

    /// Create the cluster (first run), start it unless it runs, create the database (first
    /// run). Returns whether this call started it.
    pub(crate) fn start(&self) -> Result<bool, PgError> {
        let pg = &self.cluster;
        std::fs::create_dir_all(pg.socket_dir()).map_err(PgError::Io)?;
        if pg.run_as().is_some() {
            castellan_pgctl::ensure_user()?;
        }
        pg.chown(pg.dir(), true)?;
        if !pg.data_dir().join("PG_VERSION").exists() {
            pg.initdb(&[])?;
        }
        let running = pg.running();
        if !running {
            pg.start("-c max_connections=300")
                .map_err(|cause| PgError::Start {
                    cause,
                    log: std::fs::read_to_string(pg.log()).unwrap_or_default(),
                })?;
        }
        let mut createdb = pg.cmd("createdb");
        createdb.arg("-h").arg(pg.socket_dir()).args([
            "-p",
            &pg.port().to_string(),
            "-U",
            "castellan",
            "castellan",
        ]);
        match run(&mut createdb, "createdb") {
            Ok(_) => {}
            Err(PgCtlError::Failed { output, .. }) if output.contains("already exists") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(!running)
    }

    /// Stop the server (fast: open sessions are closed, then a checkpoint).
    pub(crate) fn stop(&self) -> Result<(), PgError> {
        Ok(self.cluster.stop("fast")?)
    }
}
