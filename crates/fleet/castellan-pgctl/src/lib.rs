//! A private PostgreSQL server from Debian's package, driven through its own binaries
//! (`/usr/lib/postgresql/<version>/bin`): `initdb` into `<dir>/data`, `pg_ctl start` listening
//! only on a Unix socket in `<dir>/sock` (no TCP port), its log in `<dir>/server.log`.
//! PostgreSQL refuses to run as root, so as root every tool runs as the system user
//! [`PG_USER`] (created with `useradd` when missing) through `runuser`.
//!
//! ```text
//!  castellan-store (feature testing): throwaway servers for the tests ──┐
//!  xtask cluster: the local cluster's database                      ──┴──▶ PgCluster ──▶ initdb, pg_ctl, createdb
//! ```
//!
//! Standard library only, so that `xtask` stays a quick build.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;

/// The system user PostgreSQL runs as when the caller is root.
pub const PG_USER: &str = "castellan-pg";

/// Why a PostgreSQL tool could not be run, or failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PgCtlError {
    /// A tool could not be run at all.
    Spawn {
        /// The tool (`initdb`, `pg_ctl start`, …).
        what: &'static str,
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// A tool ran and failed.
    Failed {
        /// The tool.
        what: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed (standard output, then standard error).
        output: String,
    },
}

impl std::fmt::Display for PgCtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgCtlError::Spawn { what, source } => write!(f, "{what}: cannot run: {source}"),
            PgCtlError::Failed {
                what,
                status,
                output,
            } => write!(f, "{what} failed ({status}): {output}"),
        }
    }
}

impl std::error::Error for PgCtlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PgCtlError::Spawn { source, .. } => Some(source.as_ref()),
            PgCtlError::Failed { .. } => None,
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
pub fn find_bin() -> Option<PathBuf> {
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

/// Runs `cmd` (no standard input) and returns what it printed, or why it failed.
pub fn run(cmd: &mut Command, what: &'static str) -> Result<String, PgCtlError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PgCtlError::Spawn {
            what,
            source: Arc::new(e),
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(PgCtlError::Failed {
            what,
            status: out.status,
            output: text,
        })
    }
}

/// Creates the system user [`PG_USER`] unless it exists.
pub fn ensure_user() -> Result<(), PgCtlError> {
    if run(Command::new("id").args(["-u", PG_USER]), "id").is_ok() {
        return Ok(());
    }
    run(
        Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            PG_USER,
        ]),
        "useradd",
    )
    .map(|_| ())
}

/// A PostgreSQL server whose files live in one directory, listening on a Unix socket there.
#[derive(Clone, Debug)]
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
}

impl PgCluster {
    /// The server in `dir` run with the binaries in `bin` (see [`find_bin`]), its socket named
    /// for `port`; as [`PG_USER`] when `as_pg_user` (the caller is root). Nothing is created.
    pub fn new(dir: &Path, bin: PathBuf, port: u16, as_pg_user: bool) -> PgCluster {
        PgCluster {
            dir: dir.to_path_buf(),
            bin,
            port,
            run_as: as_pg_user.then_some(PG_USER),
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory (`initdb`'s).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The directory of its Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The port its socket is named for.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user the tools run as (`None`: this process's).
    pub fn run_as(&self) -> Option<&'static str> {
        self.run_as
    }

    /// The URL of database `db` for the superuser `castellan`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql:///{db}?host={}&port={}&user=castellan",
            self.socket_dir().display(),
            self.port
        )
    }

    /// The command that runs `tool`, as the server's user.
    pub fn cmd(&self, tool: &str) -> Command {
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

    /// Hands `path` to the server's user (`chown`, `-R` when `recursive`); nothing when the
    /// tools run as this process's user.
    pub fn chown(&self, path: &Path, recursive: bool) -> Result<(), PgCtlError> {
        let Some(user) = self.run_as else {
            return Ok(());
        };
        let mut c = Command::new("chown");
        if recursive {
            c.arg("-R");
        }
        run(c.arg(user).arg(path), "chown").map(|_| ())
    }

    /// `initdb` with the superuser `castellan`, trust authentication, UTF-8, and `extra`
    /// arguments.
    pub fn initdb(&self, extra: &[&str]) -> Result<(), PgCtlError> {
        let mut c = self.cmd("initdb");
        c.arg("-D")
            .arg(self.data_dir())
            .args(["-U", "castellan", "-A", "trust", "-E", "UTF8"])
            .args(extra)
            .arg("--no-instructions");
        run(&mut c, "initdb").map(|_| ())
    }

    /// `pg_ctl start`, waiting up to 60 s, listening only on the socket, with the server
    /// `settings` (`-c name=value …`); its log in [`Self::log`].
    pub fn start(&self, settings: &str) -> Result<(), PgCtlError> {
        let opts = format!(
            "-k {} -p {} -c listen_addresses= {settings}",
            self.socket_dir().display(),
            self.port
        );
        let mut c = self.cmd("pg_ctl");
        c.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log())
            .args(["-o", &opts, "-w", "-t", "60", "start"])
            .stdout(Stdio::null());
        run(&mut c, "pg_ctl start").map(|_| ())
    }

    /// Whether the server runs (`pg_ctl status`).
    pub fn running(&self) -> bool {
        let mut c = self.cmd("pg_ctl");
        c.arg("-D").arg(self.data_dir()).arg("status");
        run(&mut c, "pg_ctl status").is_ok()
    }

    /// The `pg_ctl stop` command in `mode` ("fast": sessions closed, then a checkpoint;
    /// "immediate": a crash, recovered from the WAL on the next start); `wait`: until the
    /// server has stopped.
    pub fn stop_command(&self, mode: &str, wait: bool) -> Command {
        let mut c = self.cmd("pg_ctl");
        c.arg("-D").arg(self.data_dir()).args(["-m", mode]);
        if wait {
            c.arg("-w");
        }
        c.arg("stop");
        c
    }

    /// `pg_ctl stop` in `mode` (see [`Self::stop_command`]), until the server has stopped.
    pub fn stop(&self, mode: &str) -> Result<(), PgCtlError> {
        run(&mut self.stop_command(mode, true), "pg_ctl stop").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(c: &Command) -> Vec<String> {
        std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn as_root_every_tool_runs_as_the_postgres_user() {
        let pg = PgCluster::new(Path::new("/tmp/pg"), PathBuf::from("/pg/bin"), 5432, true);
        assert_eq!(
            args(&pg.stop_command("fast", true)),
            [
                "runuser",
                "-u",
                PG_USER,
                "--",
                "/pg/bin/pg_ctl",
                "-D",
                "/tmp/pg/data",
                "-m",
                "fast",
                "-w",
                "stop"
            ]
        );
    }

    #[test]
    fn otherwise_the_tool_runs_directly_and_the_url_names_the_socket() {
        let pg = PgCluster::new(Path::new("/tmp/pg"), PathBuf::from("/pg/bin"), 6543, false);
        assert_eq!(
            args(&pg.stop_command("immediate", false)),
            [
                "/pg/bin/pg_ctl",
                "-D",
                "/tmp/pg/data",
                "-m",
                "immediate",
                "stop"
            ]
        );
        assert_eq!(
            pg.url("castellan"),
            "postgresql:///castellan?host=/tmp/pg/sock&port=6543&user=castellan"
        );
        assert!(pg.chown(Path::new("/nonexistent"), true).is_ok());
    }

    #[test]
    fn a_failing_tool_reports_its_status_and_output() {
        let e = run(
            Command::new("sh").args(["-c", "echo nope >&2; exit 3"]),
            "sh",
        )
        .unwrap_err();
        let PgCtlError::Failed { status, output, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(output.trim(), "nope");
        let missing = run(&mut Command::new("/nonexistent/initdb"), "initdb").unwrap_err();
        assert!(matches!(missing, PgCtlError::Spawn { what: "initdb", .. }));
    }
}
