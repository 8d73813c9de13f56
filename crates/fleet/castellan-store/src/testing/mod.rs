//! Test support (feature `testing`): a throwaway PostgreSQL server from Debian's package and a
//! helper that runs one test body against SQLite and against PostgreSQL. Used by this crate's
//! tests and by the server's.
//!
//! The server is started with the binaries under `/usr/lib/postgresql/<version>/bin`
//! (`apt-get install -y postgresql` is run when they are missing and the tests run as root):
//! `initdb` into a temporary directory, `pg_ctl start` listening only on a Unix socket inside
//! that directory (no TCP port, so parallel test binaries never collide). PostgreSQL refuses to
//! run as root, so as root everything runs as the system user `castellan-pg` (created with
//! `useradd` when missing) through `runuser`. When the server cannot be installed or started,
//! the helpers panic with the reason: a test on PostgreSQL never silently passes.
//!
//! [`PgServer::shared`] starts one server per test process; a watchdog shell stops it and
//! removes its directory when the process exits.

mod pg;

pub use pg::{PG_USER, PgError, PgServer};

use crate::{Backend, Store, StoreOptions};

/// A store for one test, with what is needed to reopen it.
#[derive(Debug)]
pub struct TestStore {
    /// The store.
    pub store: Store,
    /// Which engine.
    pub backend: Backend,
    /// The location passed to [`Store::open`] (file path or URL).
    pub location: String,
    /// The options it was opened with.
    pub options: StoreOptions,
    /// The test's temporary directory (SQLite file, anchor file).
    pub dir: tempfile::TempDir,
}

impl TestStore {
    /// A new SQLite store in a temporary directory.
    pub async fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let location = dir.path().join("store.db").to_string_lossy().into_owned();
        let options = StoreOptions::default();
        let store = Store::open_with(&location, options.clone())
            .await
            .unwrap_or_else(|e| panic!("open SQLite: {e}"));
        TestStore {
            store,
            backend: Backend::Sqlite,
            location,
            options,
            dir,
        }
    }

    /// A new PostgreSQL store (fresh database on the shared test server), with its audit anchor
    /// in a temporary directory. Panics with the reason when PostgreSQL is unavailable.
    pub async fn postgres() -> TestStore {
        let server = PgServer::shared()
            .unwrap_or_else(|e| panic!("PostgreSQL test server unavailable: {e}"));
        let location = server
            .create_database()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let options = StoreOptions {
            anchor_path: Some(dir.path().join("audit-head")),
            ..StoreOptions::default()
        };
        let store = Store::open_with(&location, options.clone())
            .await
            .unwrap_or_else(|e| panic!("open PostgreSQL: {e}"));
        TestStore {
            store,
            backend: Backend::Postgres,
            location,
            options,
            dir,
        }
    }

    /// Run SQL statements directly against the database, bypassing the store: what an
    /// attacker with write access to the database can do.
    pub async fn raw_execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let conn = rusqlite::Connection::open(&self.location)
                    .unwrap_or_else(|e| panic!("raw open: {e}"));
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("{e}"));
                conn.execute_batch(sql)
                    .unwrap_or_else(|e| panic!("raw SQL {sql:?}: {e}"));
            }
            Backend::Postgres => {
                let (client, conn) = tokio_postgres::connect(&self.location, tokio_postgres::NoTls)
                    .await
                    .unwrap_or_else(|e| panic!("raw connect: {e}"));
                let task = tokio::spawn(conn);
                client
                    .batch_execute(sql)
                    .await
                    .unwrap_or_else(|e| panic!("raw SQL {sql:?}: {e}"));
                drop(client);
                let _ = task.await;
            }
        }
    }

    /// Every row of `table` as text, bypassing the store (what a stolen database reveals).
    pub async fn dump_table(&self, table: &str) -> String {
        match self.backend {
            Backend::Sqlite => {
                let conn = rusqlite::Connection::open(&self.location)
                    .unwrap_or_else(|e| panic!("raw open: {e}"));
                let mut stmt = conn
                    .prepare(&format!("SELECT * FROM {table}"))
                    .unwrap_or_else(|e| panic!("dump {table}: {e}"));
                let n = stmt.column_count();
                let mut rows = stmt
                    .query([])
                    .unwrap_or_else(|e| panic!("dump {table}: {e}"));
                let mut out = String::new();
                while let Ok(Some(row)) = rows.next() {
                    for i in 0..n {
                        let v: rusqlite::types::Value =
                            row.get(i).unwrap_or(rusqlite::types::Value::Null);
                        out.push_str(&format!("{v:?} "));
                    }
                    out.push('\n');
                }
                out
            }
            Backend::Postgres => {
                let (client, conn) = tokio_postgres::connect(&self.location, tokio_postgres::NoTls)
                    .await
                    .unwrap_or_else(|e| panic!("raw connect: {e}"));
                let task = tokio::spawn(conn);
                let rows = client
                    .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
                    .await
                    .unwrap_or_else(|e| panic!("dump {table}: {e}"));
                let out = rows.iter().map(|r| r.get::<_, String>(0) + "\n").collect();
                drop(client);
                let _ = task.await;
                out
            }
        }
    }

    /// Open the same database again (as a restarted server would).
    pub async fn reopen(&self) -> Store {
        Store::open_with(&self.location, self.options.clone())
            .await
            .unwrap_or_else(|e| panic!("reopen: {e}"))
    }
}

/// Run `body` against a fresh SQLite store, then against a fresh PostgreSQL store. The
/// [`TestStore`] (and its temporary directory) lives until `body` has finished.
pub async fn each_backend<F>(mut body: F)
where
    F: AsyncFnMut(&TestStore),
{
    let sqlite = TestStore::sqlite().await;
    body(&sqlite).await;
    drop(sqlite);
    let postgres = TestStore::postgres().await;
    body(&postgres).await;
}
