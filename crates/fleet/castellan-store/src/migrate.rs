//! Schema migrations: numbered SQL files embedded in the binary, applied in order, each in its
//! own transaction together with its row in `schema_migrations`, on both engines. Where the
//! engines' types differ the files say `{blob}` or `{serial_pk}` and [`substitute`] fills in the
//! engine's spelling; everything else is written once.

use crate::StoreError;
use crate::db::{Backend, Db, Session};

/// One migration: its number, a name and its portable SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only: never edit one that has shipped. Numbers may leave
/// gaps (branches reserve theirs); each is applied once, by number, whatever the order of arrival.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "attestation_key",
        sql: include_str!("../migrations/0002_attestation_key.sql"),
    },
    Migration {
        version: 3,
        name: "updates",
        sql: include_str!("../migrations/0003_updates.sql"),
    },
    Migration {
        version: 4,
        name: "release_expiry",
        sql: include_str!("../migrations/0004_release_expiry.sql"),
    },
    Migration {
        version: 5,
        name: "audit_code",
        sql: include_str!("../migrations/0005_audit_code.sql"),
    },
    Migration {
        version: 6,
        name: "certificate_binding",
        sql: include_str!("../migrations/0006_certificate_binding.sql"),
    },
    Migration {
        version: 7,
        name: "console",
        sql: include_str!("../migrations/0007_console.sql"),
    },
    Migration {
        version: 8,
        name: "alerts",
        sql: include_str!("../migrations/0008_alerts.sql"),
    },
    Migration {
        version: 9,
        name: "leases",
        sql: include_str!("../migrations/0009_leases.sql"),
    },
    Migration {
        version: 10,
        name: "cluster",
        sql: include_str!("../migrations/0010_cluster.sql"),
    },
    Migration {
        version: 11,
        name: "detection",
        sql: include_str!("../migrations/0011_detection.sql"),
    },
    Migration {
        version: 12,
        name: "device_commands",
        sql: include_str!("../migrations/0012_device_commands.sql"),
    },
    Migration {
        version: 13,
        name: "device_evidence",
        sql: include_str!("../migrations/0013_device_evidence.sql"),
    },
    Migration {
        version: 14,
        name: "instance_heartbeats",
        sql: include_str!("../migrations/0014_instance_heartbeats.sql"),
    },
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 14;

/// The per-engine spelling of the few types that differ.
fn substitute(sql: &str, backend: Backend) -> String {
    let (blob, serial_pk) = match backend {
        Backend::Sqlite => ("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Backend::Postgres => ("BYTEA", "BIGSERIAL PRIMARY KEY"),
    };
    sql.replace("{blob}", blob)
        .replace("{serial_pk}", serial_pk)
}

/// Apply every migration the database does not have yet. Safe to run from several processes at
/// once: the migrations table is locked for the duration of each migration.
pub(crate) async fn migrate(db: &Db) -> Result<i64, StoreError> {
    let mut s = Session::checkout(db).await?;
    s.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT \
         NULL, applied_at BIGINT NOT NULL)"
            .into(),
    )
    .await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    for m in MIGRATIONS {
        s.begin().await?;
        let result = apply_one(&mut s, db.backend(), m, known).await;
        match result {
            Ok(()) => s.commit().await?,
            Err(e) => {
                let _ = s.rollback().await;
                return Err(e);
            }
        }
    }
    Ok(known)
}

async fn apply_one(
    s: &mut Session,
    backend: Backend,
    m: &Migration,
    known: i64,
) -> Result<(), StoreError> {
    s.lock_table("schema_migrations").await?;
    let max = s
        .query_opt("SELECT MAX(version) FROM schema_migrations", vec![])
        .await?
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten()
        .unwrap_or(0);
    if max > known {
        return Err(StoreError::SchemaTooNew { found: max, known });
    }
    let applied = s
        .query_opt(
            "SELECT version FROM schema_migrations WHERE version = $1",
            vec![m.version.into()],
        )
        .await?
        .is_some();
    if applied {
        return Ok(());
    }
    s.batch(substitute(m.sql, backend))
        .await
        .map_err(|e| StoreError::Migration {
            version: m.version,
            detail: e.to_string(),
        })?;
    s.exec(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        vec![m.version.into(), m.name.into(), crate::unix_now().into()],
    )
    .await?;
    Ok(())
}
