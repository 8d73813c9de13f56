//! `castellan audit verify`: check the fleet service's hash-chained audit log and its anchor;
//! exit 0 with "N entries, chain intact", or 1 naming the entry that was modified, removed or
//! reordered (or a truncated tail).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_server::DEFAULT_STATE_DIR;
use castellan_server::config::{audit_anchor, database_location};
use castellan_store::{Store, StoreError, StoreOptions};
use clap::{Args, Subcommand};

/// `castellan audit …`
#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the whole chain and its anchor.
    Verify(VerifyArgs),
}

/// Arguments of `castellan audit verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The service's state directory (its SQLite store and audit anchor).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// The store, when not the state directory's SQLite file: a postgres:// URL or a SQLite
    /// file.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// The audit anchor file (default: where `castellan serve` writes it).
    #[arg(long, value_name = "FILE")]
    anchor: Option<PathBuf>,
}

/// Run an audit subcommand.
pub(crate) fn run(c: AuditCommand) -> anyhow::Result<ExitCode> {
    match c {
        AuditCommand::Verify(a) => verify(a),
    }
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (location, postgres) = database_location(&a.state_dir, a.database.as_deref());
    if !postgres && !std::path::Path::new(&location).exists() {
        bail!(
            "no store at {location} (give --state-dir of a `castellan serve` state directory, or --database)"
        );
    }
    let anchor = a
        .anchor
        .clone()
        .unwrap_or_else(|| audit_anchor(&a.state_dir, &location, postgres));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = Store::open_with(
            &location,
            StoreOptions {
                anchor_path: Some(anchor.clone()),
                ..StoreOptions::default()
            },
        )
        .await
        .with_context(|| format!("cannot open the store at {location}"))?;
        match store.verify_audit().await {
            Ok(r) => {
                println!(
                    "{} entries, chain intact (head {}; anchor {})",
                    r.count,
                    hex::encode(r.head_hash),
                    if r.anchor_checked {
                        format!("{} checked", anchor.display())
                    } else {
                        "not present".into()
                    }
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(StoreError::AuditTampered(v)) => {
                eprintln!("castellan: audit log TAMPERED: {v}");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(anyhow::Error::new(e).context("cannot read the audit log")),
        }
    })
}
