//! `castellan operator add | password | totp`: operator accounts of the web console, written straight
//! to the service's store (like the service's own first admin): a name, a role and a password
//! hashed with Argon2id. The password is read from `--password-file`, from standard input when
//! it is not a terminal, or prompted for without echo. `totp` gives an account a second factor
//! (an otpauth URL for an authenticator app). Each change is in the audit log.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_server::DEFAULT_STATE_DIR;
use castellan_server::config::{audit_anchor, database_location};
use castellan_store::{AuditRecord, Decision, Role, Store, StoreError, StoreOptions, unix_now};
use clap::{Args, Subcommand};

/// `castellan operator …`
#[derive(Subcommand)]
pub(crate) enum OperatorCommand {
    /// Create an operator account with a console password.
    Add(AddArgs),
    /// Set (or reset) an existing operator's console password; lifts a lockout and ends the
    /// operator's console sessions.
    Password(PasswordArgs),
    /// Give an operator a TOTP second factor (prints the otpauth URL for an authenticator
    /// app), or remove it with --remove.
    Totp(TotpArgs),
}

/// Arguments of `castellan operator totp`.
#[derive(Args)]
pub(crate) struct TotpArgs {
    /// The operator's name (it must have a console password).
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Remove the second factor instead.
    #[arg(long)]
    remove: bool,
    /// The service's state directory (its SQLite store and audit anchor).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// The store, when not the state directory's SQLite file.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Where the store is, and how the password is given.
#[derive(Args)]
pub(crate) struct StoreAndPassword {
    /// The service's state directory (its SQLite store and audit anchor).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// The store, when not the state directory's SQLite file: a postgres:// URL or a SQLite
    /// file.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Read the password from the first line of this file (default: standard input, or a
    /// prompt without echo on a terminal).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `castellan operator add`.
#[derive(Args)]
pub(crate) struct AddArgs {
    /// The operator's name (their login).
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The role: admin, operator, auditor (read-only), release-manager or decommissioner.
    #[arg(long, value_name = "ROLE")]
    role: String,
    #[command(flatten)]
    common: StoreAndPassword,
}

/// Arguments of `castellan operator password`.
#[derive(Args)]
pub(crate) struct PasswordArgs {
    /// The operator's name.
    #[arg(long, value_name = "NAME")]
    name: String,
    #[command(flatten)]
    common: StoreAndPassword,
}

/// Run an operator subcommand.
pub(crate) fn run(c: OperatorCommand) -> anyhow::Result<ExitCode> {
    match c {
        OperatorCommand::Add(a) => {
            let role = Role::parse(&a.role).with_context(|| {
                format!(
                    "unknown role {:?}: use admin, operator, auditor, release-manager or \
                     decommissioner",
                    a.role
                )
            })?;
            set(&a.name, Some(role), &a.common)
        }
        OperatorCommand::Password(a) => set(&a.name, None, &a.common),
        OperatorCommand::Totp(a) => totp(&a),
    }
}

/// The store of `state_dir` / `database`, with its audit anchor, on a runtime.
fn open_store(
    state_dir: &std::path::Path,
    database: Option<&str>,
) -> anyhow::Result<(tokio::runtime::Runtime, Store)> {
    let (location, postgres) = database_location(state_dir, database);
    if !postgres && !std::path::Path::new(&location).exists() {
        bail!(
            "no store at {location}: run `castellan serve` once, or give --state-dir of its \
             state directory (or --database)"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let options = StoreOptions {
        anchor_path: Some(audit_anchor(state_dir, &location, postgres)),
        ..StoreOptions::default()
    };
    let store = runtime
        .block_on(Store::open_with(&location, options))
        .with_context(|| format!("cannot open the store at {location}"))?;
    Ok((runtime, store))
}

async fn audit(store: &Store, action: &str, name: &str, reason: &str) -> anyhow::Result<()> {
    let rec = AuditRecord {
        actor: "cli",
        action,
        target: name,
        decision: Decision::Allowed,
        reason,
        code: None,
    };
    store.append_audit(&rec, unix_now()).await?;
    Ok(())
}

fn totp(a: &TotpArgs) -> anyhow::Result<ExitCode> {
    let (runtime, store) = open_store(&a.state_dir, a.database.as_deref())?;
    runtime.block_on(async {
        let name = a.name.as_str();
        let not_found = || {
            format!(
                "operator {name:?} has no console password; set one first with `castellan \
                 operator password --name {name}`"
            )
        };
        if a.remove {
            store
                .set_operator_totp(name, None)
                .await
                .with_context(not_found)?;
            audit(&store, "cli.operator.totp", name, "second factor removed").await?;
            println!("{name}: second factor removed");
            return Ok(ExitCode::SUCCESS);
        }
        let secret = castellan_console::new_totp_secret()?;
        let url = castellan_console::otpauth_url(&secret, name)?;
        store
            .set_operator_totp(name, Some(&secret))
            .await
            .with_context(not_found)?;
        audit(&store, "cli.operator.totp", name, "second factor set").await?;
        if a.json {
            println!(
                "{}",
                serde_json::json!({ "name": name, "secret": secret, "otpauth_url": url })
            );
        } else {
            println!("{name}: second factor set; add it to an authenticator app:");
            println!("  {url}");
            println!("  (secret {secret}; shown once)");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn read_password(c: &StoreAndPassword, name: &str) -> anyhow::Result<String> {
    let line = match &c.password_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the password file {}", f.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        None if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password(format!("Console password for {name}: "))?;
            let again = rpassword::prompt_password("Again: ")?;
            if first != again {
                bail!("the two passwords differ; nothing was changed");
            }
            first
        }
        None => {
            let mut l = String::new();
            std::io::stdin().lock().read_line(&mut l)?;
            l.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    Ok(line)
}

fn set(name: &str, role: Option<Role>, c: &StoreAndPassword) -> anyhow::Result<ExitCode> {
    let (runtime, store) = open_store(&c.state_dir, c.database.as_deref())?;
    let password = read_password(c, name)?;
    let phc = castellan_console::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))?;
    runtime.block_on(async {
        let now = unix_now();
        if let Some(role) = role {
            match store.create_operator(name, role, now).await {
                Ok(()) => {}
                Err(StoreError::AlreadyExists { .. }) => bail!(
                    "operator {name:?} already exists; set its password with `castellan \
                     operator password --name {name}`"
                ),
                Err(e) => return Err(e.into()),
            }
        } else if store.operator(name).await?.is_none() {
            bail!("no operator {name:?}; create it with `castellan operator add`");
        }
        store.set_operator_password(name, &phc, now).await?;
        let ended = store.end_console_sessions_of(name).await?;
        let (action, reason) = match role {
            Some(r) => (
                "cli.operator.add",
                format!("operator created with role {r} and a console password"),
            ),
            None => (
                "cli.operator.password",
                format!("console password set; {ended} session(s) ended"),
            ),
        };
        audit(&store, action, name, &reason).await?;
        if c.json {
            let role = store.operator(name).await?.map(|o| o.role.as_str());
            println!(
                "{}",
                serde_json::json!({ "name": name, "role": role, "sessions_ended": ended })
            );
        } else {
            println!("{name}: {reason}; log in at https://<service>/console/");
        }
        Ok(ExitCode::SUCCESS)
    })
}
