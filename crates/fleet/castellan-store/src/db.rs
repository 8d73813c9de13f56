//! The thin driver layer: one [`Db`] over SQLite (rusqlite, one connection behind an async
//! mutex, each statement on a blocking thread) or PostgreSQL (tokio-postgres, a small pool).
//! Every query in this crate is written once, in portable SQL with `$1`-style parameters,
//! and executed through a [`Session`].
//!
//! ```text
//!  Store ops ──SQL + [Value]──▶ Session ─┬─ Sqlite: spawn_blocking(rusqlite, bind `$n` by name)
//!                                        └─ Postgres: tokio-postgres client from the pool
//! ```
//!
//! SQLite numbers `$n` parameters in order of first appearance, not by `n`; the SQLite driver
//! therefore binds each value to the parameter *named* `$n`, so `$2 ... $1` works as in
//! PostgreSQL.

use std::path::Path;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::StoreError;

/// Which database engine a store uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// A SQL parameter or column value: the four types the schema uses (BIGINT, TEXT, BLOB/BYTEA
/// and NULL). Booleans are BIGINT 0/1 on both engines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row.
#[derive(Clone, Debug)]
pub(crate) struct Row(Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, StoreError> {
        self.0.get(i).ok_or(StoreError::Decode {
            column: i,
            expected: "a column",
        })
    }
    pub(crate) fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.at(i)? {
            Value::Int(v) => Ok(*v),
            _ => Err(StoreError::Decode {
                column: i,
                expected: "an integer",
            }),
        }
    }
    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.at(i)? {
            Value::Text(v) => Ok(v.clone()),
            _ => Err(StoreError::Decode {
                column: i,
                expected: "text",
            }),
        }
    }
    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
    pub(crate) fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        match self.at(i)? {
            Value::Blob(v) => Ok(v.clone()),
            _ => Err(StoreError::Decode {
                column: i,
                expected: "bytes",
            }),
        }
    }
    pub(crate) fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.blob(i).map(Some),
        }
    }
    pub(crate) fn bool(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.int(i)? != 0)
    }
}

/// An open database.
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(Arc<PgPool>),
}

impl Db {
    /// Open (creating) a SQLite file in WAL mode with full fsync on commit and foreign keys on.
    pub(crate) async fn open_sqlite(path: &Path) -> Result<Db, StoreError> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open(&path)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            // WAL: readers never block the writer; synchronous=FULL: a commit survives power loss.
            conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?;
            conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
            Ok::<_, rusqlite::Error>(conn)
        })
        .await
        .map_err(|_| StoreError::Connect {
            detail: "SQLite open task failed".into(),
        })?
        .map_err(|e| StoreError::Connect {
            detail: e.to_string(),
        })?;
        Ok(Db::Sqlite(Arc::new(Mutex::new(conn))))
    }

    /// Connect to PostgreSQL (`postgres://...` URL or key=value string); up to `pool_size`
    /// connections are opened on demand.
    pub(crate) async fn open_postgres(url: &str, pool_size: usize) -> Result<Db, StoreError> {
        let config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Connect {
                    detail: e.to_string(),
                })?;
        let pool = Arc::new(PgPool {
            config,
            idle: StdMutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(pool_size.max(1))),
        });
        // Connect once now so a wrong URL fails at open, not at first use.
        let session = Session::checkout(&Db::Postgres(Arc::clone(&pool))).await?;
        drop(session);
        Ok(Db::Postgres(pool))
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }
}

pub(crate) struct PgPool {
    config: tokio_postgres::Config,
    idle: StdMutex<Vec<tokio_postgres::Client>>,
    permits: Arc<Semaphore>,
}

impl PgPool {
    /// A new connection outside the pool, with its connection future for the caller to drive
    /// (`LISTEN`: the notifications arrive through it).
    pub(crate) async fn connect_raw(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        StoreError,
    > {
        self.config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| StoreError::Connect {
                detail: pg_detail(&e),
            })
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, StoreError> {
        let (client, connection) =
            self.config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| StoreError::Connect {
                    detail: pg_detail(&e),
                })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

/// A connection checked out for a sequence of statements (and optionally a transaction).
///
/// Dropping a session in the middle of a transaction rolls it back: the PostgreSQL connection is
/// closed instead of being returned to the pool, and the SQLite connection is rolled back at
/// the next checkout.
pub(crate) enum Session {
    Sqlite {
        conn: Option<OwnedMutexGuard<rusqlite::Connection>>,
    },
    Postgres {
        client: Option<tokio_postgres::Client>,
        pool: Arc<PgPool>,
        in_tx: bool,
        _permit: OwnedSemaphorePermit,
    },
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Session::Postgres {
            client,
            pool,
            in_tx,
            ..
        } = self
        {
            if let Some(c) = client.take() {
                if !*in_tx && !c.is_closed() {
                    pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                }
            }
        }
    }
}

impl Session {
    pub(crate) async fn checkout(db: &Db) -> Result<Session, StoreError> {
        match db {
            Db::Sqlite(conn) => {
                let guard = Arc::clone(conn).lock_owned().await;
                if !guard.is_autocommit() {
                    // A previous user was dropped inside a transaction.
                    guard.execute_batch("ROLLBACK").map_err(sqlite_err)?;
                }
                Ok(Session::Sqlite { conn: Some(guard) })
            }
            Db::Postgres(pool) => {
                let permit = Arc::clone(&pool.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| StoreError::Connect {
                        detail: "connection pool closed".into(),
                    })?;
                let idle = {
                    let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                    let mut found = None;
                    while let Some(c) = idle.pop() {
                        if !c.is_closed() {
                            found = Some(c);
                            break;
                        }
                    }
                    found
                };
                let client = match idle {
                    Some(c) => c,
                    None => pool.connect().await?,
                };
                Ok(Session::Postgres {
                    client: Some(client),
                    pool: Arc::clone(pool),
                    in_tx: false,
                    _permit: permit,
                })
            }
        }
    }

    /// Run `f` on the SQLite connection on a blocking thread.
    async fn with_sqlite<T: Send + 'static>(
        slot: &mut Option<OwnedMutexGuard<rusqlite::Connection>>,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let guard = slot.take().ok_or(StoreError::Database {
            backend: Backend::Sqlite,
            detail: "connection lost by an earlier failed statement".into(),
        })?;
        let (guard, result) = tokio::task::spawn_blocking(move || {
            let r = f(&guard);
            (guard, r)
        })
        .await
        .map_err(|_| StoreError::Database {
            backend: Backend::Sqlite,
            detail: "statement task panicked".into(),
        })?;
        *slot = Some(guard);
        result
    }

    fn pg(client: &Option<tokio_postgres::Client>) -> Result<&tokio_postgres::Client, StoreError> {
        client.as_ref().ok_or(StoreError::Database {
            backend: Backend::Postgres,
            detail: "no connection".into(),
        })
    }

    /// Which engine this session talks to.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Session::Sqlite { .. } => Backend::Sqlite,
            Session::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Whether a transaction is open.
    fn in_transaction(&self) -> bool {
        match self {
            Session::Sqlite { conn } => conn.as_ref().is_some_and(|c| !c.is_autocommit()),
            Session::Postgres { in_tx, .. } => *in_tx,
        }
    }

    /// Execute a statement; return the number of rows changed. Inside
    /// [`fenced`](crate::fenced) and outside a transaction, the statement runs in a
    /// transaction of its own that first checks the fence.
    pub(crate) async fn exec(
        &mut self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<u64, StoreError> {
        if !self.in_transaction() && crate::lease::current_fence().is_some() {
            self.begin().await?;
            let r = self.exec_now(sql, params).await;
            return crate::registry::finish(self, r).await;
        }
        self.exec_now(sql, params).await
    }

    async fn exec_now(&mut self, sql: &'static str, params: Vec<Value>) -> Result<u64, StoreError> {
        match self {
            Session::Sqlite { conn } => {
                Session::with_sqlite(conn, move |c| {
                    let mut stmt = c.prepare_cached(sql).map_err(sqlite_err)?;
                    bind_sqlite(&mut stmt, &params)?;
                    stmt.raw_execute().map(|n| n as u64).map_err(sqlite_err)
                })
                .await
            }
            Session::Postgres { client, .. } => {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                Session::pg(client)?
                    .execute(sql, &refs)
                    .await
                    .map_err(pg_err)
            }
        }
    }

    /// Run a query; return all rows.
    /// The SQL is a literal, or built from literals by the caller (never from input: values
    /// are always parameters).
    pub(crate) async fn query(
        &mut self,
        sql: impl Into<std::borrow::Cow<'static, str>>,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = sql.into();
        match self {
            Session::Sqlite { conn } => {
                Session::with_sqlite(conn, move |c| {
                    let mut stmt = c.prepare_cached(&sql).map_err(sqlite_err)?;
                    bind_sqlite(&mut stmt, &params)?;
                    let ncol = stmt.column_count();
                    let mut rows = stmt.raw_query();
                    let mut out = Vec::new();
                    while let Some(r) = rows.next().map_err(sqlite_err)? {
                        let mut vals = Vec::with_capacity(ncol);
                        for i in 0..ncol {
                            use rusqlite::types::ValueRef;
                            vals.push(match r.get_ref(i).map_err(sqlite_err)? {
                                ValueRef::Null => Value::Null,
                                ValueRef::Integer(v) => Value::Int(v),
                                ValueRef::Real(v) => Value::Int(v as i64),
                                ValueRef::Text(t) => {
                                    Value::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                            });
                        }
                        out.push(Row(vals));
                    }
                    Ok(out)
                })
                .await
            }
            Session::Postgres { client, .. } => {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                let rows = Session::pg(client)?
                    .query(sql.as_ref(), &refs)
                    .await
                    .map_err(pg_err)?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    /// Run a query expected to return at most one row.
    pub(crate) async fn query_opt(
        &mut self,
        sql: impl Into<std::borrow::Cow<'static, str>>,
        params: Vec<Value>,
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Execute several statements (DDL) without parameters.
    pub(crate) async fn batch(&mut self, sql: String) -> Result<(), StoreError> {
        match self {
            Session::Sqlite { conn } => {
                Session::with_sqlite(conn, move |c| c.execute_batch(&sql).map_err(sqlite_err)).await
            }
            Session::Postgres { client, .. } => Session::pg(client)?
                .batch_execute(&sql)
                .await
                .map_err(pg_err),
        }
    }

    /// Start a transaction. On SQLite it takes the database write lock at once (`BEGIN
    /// IMMEDIATE`), so two writers never both read the same head and then both append.
    /// Inside [`fenced`](crate::fenced), the transaction first checks the fence and is rolled
    /// back with [`StoreError::Fenced`] if it is no longer current.
    pub(crate) async fn begin(&mut self) -> Result<(), StoreError> {
        self.begin_unfenced().await?;
        if let Some(fence) = crate::lease::current_fence() {
            if let Err(e) = crate::lease::check_fence(self, &fence).await {
                let _ = self.rollback().await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Start a transaction without the fence check (the lease operations themselves).
    pub(crate) async fn begin_unfenced(&mut self) -> Result<(), StoreError> {
        match self {
            Session::Sqlite { .. } => self.batch("BEGIN IMMEDIATE".into()).await,
            Session::Postgres { in_tx, .. } => {
                *in_tx = true;
                self.batch("BEGIN".into()).await
            }
        }
    }

    /// Serialise writers of `table` until the end of the transaction (PostgreSQL: an EXCLUSIVE
    /// table lock, readers still proceed; SQLite: already serialised by `BEGIN IMMEDIATE`).
    pub(crate) async fn lock_table(&mut self, table: &'static str) -> Result<(), StoreError> {
        match self {
            Session::Sqlite { .. } => Ok(()),
            Session::Postgres { .. } => {
                self.batch(format!("LOCK TABLE {table} IN EXCLUSIVE MODE"))
                    .await
            }
        }
    }

    /// Commit the transaction.
    pub(crate) async fn commit(&mut self) -> Result<(), StoreError> {
        self.batch("COMMIT".into()).await?;
        if let Session::Postgres { in_tx, .. } = self {
            *in_tx = false;
        }
        Ok(())
    }

    /// Roll the transaction back.
    pub(crate) async fn rollback(&mut self) -> Result<(), StoreError> {
        self.batch("ROLLBACK".into()).await?;
        if let Session::Postgres { in_tx, .. } = self {
            *in_tx = false;
        }
        Ok(())
    }
}

fn bind_sqlite(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: &[Value],
) -> Result<(), StoreError> {
    stmt.clear_bindings();
    for (i, v) in params.iter().enumerate() {
        let name = format!("${}", i + 1);
        let Some(idx) = stmt.parameter_index(&name).map_err(sqlite_err)? else {
            continue;
        };
        let r = match v {
            Value::Null => stmt.raw_bind_parameter(idx, rusqlite::types::Null),
            Value::Int(x) => stmt.raw_bind_parameter(idx, x),
            Value::Text(s) => stmt.raw_bind_parameter(idx, s.as_str()),
            Value::Blob(b) => stmt.raw_bind_parameter(idx, b.as_slice()),
        };
        r.map_err(sqlite_err)?;
    }
    Ok(())
}

fn pg_row(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut vals = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_();
        let dec = |_| StoreError::Decode {
            column: i,
            expected: "a value of the column's type",
        };
        let v = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)
                .map_err(dec)?
                .map(Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map_err(dec)?
                .map(|x| Value::Int(i64::from(x)))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .map_err(dec)?
                .map(|x| Value::Int(i64::from(x)))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map_err(dec)?
                .map(|x| Value::Int(i64::from(x)))
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)
                .map_err(dec)?
                .map(Value::Blob)
        } else {
            row.try_get::<_, Option<String>>(i)
                .map_err(dec)?
                .map(Value::Text)
        };
        vals.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(vals))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => {
                if *ty == Type::INT4 {
                    i32::try_from(*v)?.to_sql(ty, out)
                } else if *ty == Type::INT2 {
                    i16::try_from(*v)?.to_sql(ty, out)
                } else if *ty == Type::BOOL {
                    (*v != 0).to_sql(ty, out)
                } else {
                    v.to_sql(ty, out)
                }
            }
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

pub(crate) fn sqlite_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            return StoreError::Constraint {
                detail: e.to_string(),
            };
        }
    }
    StoreError::Database {
        backend: Backend::Sqlite,
        detail: e.to_string(),
    }
}

fn pg_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        // Class 23: integrity constraint violation (unique, foreign key, not null, check).
        if db.code().code().starts_with("23") {
            return StoreError::Constraint {
                detail: pg_detail(&e),
            };
        }
    }
    StoreError::Database {
        backend: Backend::Postgres,
        detail: pg_detail(&e),
    }
}
