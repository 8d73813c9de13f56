//! `castellan repo`: the TUF repository of the fleet's releases (see `docs/updates.md`).
//!
//! ```text
//! castellan repo init --dir repo --root-key a.pub --root-key b.pub --root-key c.pub \
//!     --targets-key rm.pub                       (root 2-of-3, online keys generated)
//! castellan repo export --dir repo --role root -o root.json     (carry to the offline machine)
//! castellan repo sign root.json --key a.key                     (offline, no repository)
//! castellan repo import --dir repo root.json                    (checked, then published)
//! castellan repo delegate --dir repo --class sensor-v1 --key team.pub
//! castellan repo target add --dir repo --class sensor-v1 --file fw-2.suit
//! castellan repo key add|remove --dir repo --role timestamp --generate-online | --keyid ID
//! castellan repo rotate-root --dir repo --root-key d.pub --root-key e.pub --root-key f.pub
//! castellan repo resign --dir repo            (online roles near expiry; run periodically)
//! castellan repo status --dir repo [--json]
//! castellan repo log --dir repo [--json]      (the operations log, its chain verified)
//! ```
//!
//! Every command that changes the repository appends an entry to its hash-chained operations
//! log (`<dir>/log/operations.log`, `castellan_tuf::repo::oplog`), which the fleet service
//! records in its audit trail.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_tuf::repo::oplog::{self, OperationsLog};
use castellan_tuf::repo::{
    Envelope, InitOptions, Policy, Repository, RoleSigner, public_key_from_file,
};
use clap::{Args, Subcommand};
use sha2::Digest as _;
use sigstore_tuf::Key;

use super::{read_file, write_file};

/// `castellan repo …`
#[derive(Subcommand)]
pub(crate) enum RepoCommand {
    /// Create a repository: root and targets staged for offline signing, online keys made.
    Init(InitArgs),
    /// Trust or distrust keys for a role or a device class (stages the next root or targets).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Delegate a device class's releases to its release team's keys.
    Delegate(DelegateArgs),
    /// List releases for a device class.
    #[command(subcommand)]
    Target(TargetCommand),
    /// Write a staged role to a file, to sign it on another machine.
    Export(ExportArgs),
    /// Sign a metadata file with a key (offline: needs no repository).
    Sign(SignArgs),
    /// Check a signed role as a device would and publish it (then re-sign snapshot and timestamp).
    Import(ImportArgs),
    /// Stage a root with new root keys (signed by a threshold of the old and of the new keys).
    RotateRoot(RotateRootArgs),
    /// Re-sign the online roles (snapshot, timestamp) that are past half their lifetime.
    Resign(ResignArgs),
    /// Show each role: version, expiry, keys, what is staged and who signed it.
    Status(StatusArgs),
    /// Verify the repository's operations log (the commands run on it) and show its entries.
    Log(StatusArgs),
}

/// The repository directory.
#[derive(Args)]
pub(crate) struct DirArg {
    /// Repository directory.
    #[arg(long, value_name = "DIR", default_value = "tuf-repo")]
    dir: PathBuf,
}

impl DirArg {
    fn open(&self) -> anyhow::Result<Repository> {
        Repository::open(&self.dir).with_context(|| {
            format!(
                "{} is not a repository (create one with `castellan repo init`)",
                self.dir.display()
            )
        })
    }
}

/// Arguments of `castellan repo init`.
#[derive(Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    dir: DirArg,
    /// A root key (public or private PEM; only the public half is used). Repeat.
    #[arg(long = "root-key", value_name = "PEM", required = true)]
    root_keys: Vec<PathBuf>,
    /// Root signatures required.
    #[arg(long, default_value_t = 2)]
    root_threshold: usize,
    /// A release manager's key for the targets role. Repeat.
    #[arg(long = "targets-key", value_name = "PEM", required = true)]
    targets_keys: Vec<PathBuf>,
    /// Targets signatures required.
    #[arg(long, default_value_t = 1)]
    targets_threshold: usize,
    /// Lifetime of root, in days.
    #[arg(long, default_value_t = Policy::default().root_days)]
    root_days: u32,
    /// Lifetime of targets and the device classes' roles, in days.
    #[arg(long, default_value_t = Policy::default().targets_days)]
    targets_days: u32,
    /// Lifetime of snapshot, in hours.
    #[arg(long, default_value_t = Policy::default().snapshot_hours)]
    snapshot_hours: u32,
    /// Lifetime of timestamp, in hours.
    #[arg(long, default_value_t = Policy::default().timestamp_hours)]
    timestamp_hours: u32,
    /// Allow a root threshold of 1 (a test repository: one stolen key would own it).
    #[arg(long)]
    allow_single_root_key: bool,
}

/// `castellan repo key …`
#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Trust a key for a role (root, targets, snapshot, timestamp) or a device class.
    Add(KeyAddArgs),
    /// Stop trusting a key (stolen, retired).
    Remove(KeyRemoveArgs),
}

/// Arguments of `castellan repo key add`.
#[derive(Args)]
pub(crate) struct KeyAddArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Role or device class.
    #[arg(long)]
    role: String,
    /// The key (PEM, public or private).
    #[arg(long, value_name = "PEM", required_unless_present = "generate_online")]
    key: Option<PathBuf>,
    /// Generate a new online key (snapshot or timestamp), kept by the repository.
    #[arg(long, conflicts_with = "key")]
    generate_online: bool,
    /// New threshold.
    #[arg(long)]
    threshold: Option<usize>,
}

/// Arguments of `castellan repo key remove`.
#[derive(Args)]
pub(crate) struct KeyRemoveArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Role or device class.
    #[arg(long)]
    role: String,
    /// The key id (see `castellan repo status`).
    #[arg(long)]
    keyid: String,
    /// New threshold.
    #[arg(long)]
    threshold: Option<usize>,
}

/// Arguments of `castellan repo delegate`.
#[derive(Args)]
pub(crate) struct DelegateArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Device class (also the path prefix of its releases).
    #[arg(long)]
    class: String,
    /// A key of the class's release team. Repeat.
    #[arg(long = "key", value_name = "PEM", required = true)]
    keys: Vec<PathBuf>,
    /// Signatures required.
    #[arg(long, default_value_t = 1)]
    threshold: usize,
}

/// `castellan repo target …`
#[derive(Subcommand)]
pub(crate) enum TargetCommand {
    /// List a file (a release's SUIT envelope) for a device class.
    Add(TargetAddArgs),
}

/// Arguments of `castellan repo target add`.
#[derive(Args)]
pub(crate) struct TargetAddArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Device class.
    #[arg(long)]
    class: String,
    /// The file.
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
    /// Target name within the class (default: the file's name).
    #[arg(long)]
    name: Option<String>,
}

/// Arguments of `castellan repo export`.
#[derive(Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Role or device class.
    #[arg(long)]
    role: String,
    /// Output file (default: `<role>.json`).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Arguments of `castellan repo sign`.
#[derive(Args)]
pub(crate) struct SignArgs {
    /// The metadata file; the signature is added in place.
    file: PathBuf,
    /// The private key (PKCS#8 PEM, Ed25519 or ECDSA P-256).
    #[arg(long, value_name = "PEM")]
    key: PathBuf,
}

/// Arguments of `castellan repo import`.
#[derive(Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The signed metadata file.
    file: PathBuf,
    /// Role or device class (default: from the file name, `<role>.json`).
    #[arg(long)]
    role: Option<String>,
}

/// Arguments of `castellan repo rotate-root`.
#[derive(Args)]
pub(crate) struct RotateRootArgs {
    #[command(flatten)]
    dir: DirArg,
    /// A key of the new root role. Repeat.
    #[arg(long = "root-key", value_name = "PEM", required = true)]
    root_keys: Vec<PathBuf>,
    /// Root signatures required.
    #[arg(long, default_value_t = 2)]
    threshold: usize,
}

/// Arguments of `castellan repo resign`.
#[derive(Args)]
pub(crate) struct ResignArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Sign a new snapshot and timestamp even if they are not due.
    #[arg(long)]
    force: bool,
}

/// Arguments of `castellan repo status`.
#[derive(Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Run `castellan repo …`. A command that changes the repository first checks its operations
/// log (a broken log stops it: the fleet service would audit the break) and then appends what
/// it did, so that commands run offline reach the service's audit trail.
pub(crate) fn run(command: RepoCommand) -> anyhow::Result<ExitCode> {
    let now = jiff::Timestamp::now();
    let mut log = match logged(&command) {
        Some((dir, name)) => Some((dir.to_path_buf(), name, open_log(dir)?)),
        None => None,
    };
    let detail = execute(command, now)?;
    if let (Some((dir, name, log)), Some(detail)) = (log.as_mut(), detail) {
        let entry = log
            .append(name, &detail, &oplog::operator(), now)
            .with_context(|| {
                format!(
                    "{name} was done, but its entry could not be added to {}",
                    oplog::log_path(dir).display()
                )
            })?;
        eprintln!(
            "logged as entry {} of the repository's operations log",
            entry.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The repository a command changes and the command's name in the operations log (`None`: a
/// command that changes no repository).
fn logged(command: &RepoCommand) -> Option<(&Path, &'static str)> {
    let (dir, name) = match command {
        RepoCommand::Init(a) => (&a.dir, "init"),
        RepoCommand::Key(KeyCommand::Add(a)) => (&a.dir, "key add"),
        RepoCommand::Key(KeyCommand::Remove(a)) => (&a.dir, "key remove"),
        RepoCommand::Delegate(a) => (&a.dir, "delegate"),
        RepoCommand::Target(TargetCommand::Add(a)) => (&a.dir, "target add"),
        RepoCommand::Import(a) => (&a.dir, "import"),
        RepoCommand::RotateRoot(a) => (&a.dir, "rotate-root"),
        RepoCommand::Resign(a) => (&a.dir, "resign"),
        RepoCommand::Export(_)
        | RepoCommand::Sign(_)
        | RepoCommand::Status(_)
        | RepoCommand::Log(_) => return None,
    };
    Some((dir.dir.as_path(), name))
}

fn open_log(dir: &Path) -> anyhow::Result<OperationsLog> {
    OperationsLog::open(dir).with_context(|| {
        format!(
            "refusing to change {}: its operations log must be an unbroken chain (the fleet \
             service audits a broken one); find out who changed it",
            dir.display()
        )
    })
}

/// Runs `command`; what it changed, for the operations log (`None` when nothing changed).
fn execute(command: RepoCommand, now: jiff::Timestamp) -> anyhow::Result<Option<String>> {
    let detail = match command {
        RepoCommand::Init(a) => {
            init(&a, now)?;
            format!(
                "created the repository: root v1 ({} of {} key(s)) and targets v1 staged, \
                 online keys generated",
                a.root_threshold,
                a.root_keys.len()
            )
        }
        RepoCommand::Key(KeyCommand::Add(a)) => {
            let repo = a.dir.open()?;
            let key = match &a.key {
                Some(path) => public_key(path)?,
                None => repo.new_online_key()?,
            };
            let keyid = castellan_tuf::repo::key_id(&key)?;
            let staged = repo.add_key(&a.role, key, a.threshold, now)?;
            staged_hint(&a.dir.dir, &a.role, &staged)?;
            format!("trusts key {keyid} for {}", a.role) + &staged_detail(&staged)?
        }
        RepoCommand::Key(KeyCommand::Remove(a)) => {
            let staged = a
                .dir
                .open()?
                .remove_key(&a.role, &a.keyid, a.threshold, now)?;
            staged_hint(&a.dir.dir, &a.role, &staged)?;
            format!("no longer trusts key {} for {}", a.keyid, a.role) + &staged_detail(&staged)?
        }
        RepoCommand::Delegate(a) => {
            let keys = public_keys(&a.keys)?;
            let staged = a.dir.open()?.delegate(&a.class, keys, a.threshold, now)?;
            staged_hint(&a.dir.dir, "targets", &staged)?;
            eprintln!("staged {} v1 too: sign it with the class's key", a.class);
            format!(
                "delegated {} to {} key(s) (threshold {})",
                a.class,
                a.keys.len(),
                a.threshold
            ) + &staged_detail(&staged)?
        }
        RepoCommand::Target(TargetCommand::Add(a)) => {
            let bytes = read_file(&a.file)?;
            let name = match &a.name {
                Some(n) => n.clone(),
                None => file_name(&a.file)?,
            };
            let staged = a
                .dir
                .open()?
                .add_target(&a.class, &name, &bytes, None, now)?;
            staged_hint(&a.dir.dir, &a.class, &staged)?;
            format!(
                "listed {}/{name} ({} bytes, SHA-256 {})",
                a.class,
                bytes.len(),
                hex::encode(sha2::Sha256::digest(&bytes))
            ) + &staged_detail(&staged)?
        }
        RepoCommand::Export(a) => {
            let staged = a.dir.open()?.staged(&a.role)?.with_context(|| {
                format!(
                    "nothing staged for {}: edit it first (key add, target add, …)",
                    a.role
                )
            })?;
            let out = a
                .output
                .unwrap_or_else(|| PathBuf::from(format!("{}.json", a.role)));
            write_file(&out, &staged.to_bytes()?)?;
            eprintln!(
                "wrote {} v{} to {}",
                a.role,
                staged.version()?,
                out.display()
            );
            return Ok(None);
        }
        RepoCommand::Sign(a) => {
            let mut envelope = Envelope::from_bytes(&read_file(&a.file)?)
                .with_context(|| format!("{} is not TUF metadata", a.file.display()))?;
            let signer = RoleSigner::from_file(&a.key)?;
            envelope.sign(&signer)?;
            write_file(&a.file, &envelope.to_bytes()?)?;
            eprintln!("signed {} with key {}", a.file.display(), signer.keyid());
            return Ok(None);
        }
        RepoCommand::Import(a) => {
            let role = match &a.role {
                Some(r) => r.clone(),
                None => role_from_file_name(&a.file)?,
            };
            let envelope = Envelope::from_bytes(&read_file(&a.file)?)?;
            a.dir
                .open()?
                .import(&role, &envelope, now)
                .with_context(|| format!("{role} v{} refused", envelope.version().unwrap_or(0)))?;
            eprintln!(
                "published {role} v{}, and a new snapshot and timestamp",
                envelope.version()?
            );
            format!(
                "published {role} v{} (signed by {}), and a new snapshot and timestamp",
                envelope.version()?,
                signers(&envelope)
            )
        }
        RepoCommand::RotateRoot(a) => {
            let keys = public_keys(&a.root_keys)?;
            let staged = a.dir.open()?.rotate_root(keys, a.threshold, now)?;
            staged_hint(&a.dir.dir, "root", &staged)?;
            eprintln!("a rotated root needs signatures of the old root keys and of the new ones");
            format!(
                "new root keys: {} (threshold {})",
                a.root_keys.len(),
                a.threshold
            ) + &staged_detail(&staged)?
        }
        RepoCommand::Resign(a) => {
            let repo = a.dir.open()?;
            if a.force {
                repo.publish_online(now)?;
                eprintln!("signed a new snapshot and timestamp");
            } else {
                let done = repo.resign_due(now)?;
                eprintln!(
                    "re-signed: snapshot {}, timestamp {}",
                    done.snapshot, done.timestamp
                );
                if !done.snapshot && !done.timestamp {
                    return Ok(None);
                }
            }
            let published = |role: &str| -> anyhow::Result<String> {
                Ok(match repo.published(role)? {
                    Some(e) => format!("{role} v{} (signed by {})", e.version()?, signers(&e)),
                    None => format!("no {role}"),
                })
            };
            format!(
                "re-signed by hand: {}, {}",
                published("snapshot")?,
                published("timestamp")?
            )
        }
        RepoCommand::Status(a) => {
            status(&a)?;
            return Ok(None);
        }
        RepoCommand::Log(a) => {
            show_log(&a)?;
            return Ok(None);
        }
    };
    Ok(Some(detail))
}

/// `, staged <role> v<N>` for a log entry.
fn staged_detail(staged: &Envelope) -> anyhow::Result<String> {
    Ok(format!("; staged v{}", staged.version()?))
}

/// The key ids that signed `envelope`, shortened.
fn signers(envelope: &Envelope) -> String {
    let keys: Vec<String> = envelope
        .signers()
        .iter()
        .map(|k| format!("key {}…", k.get(..16).unwrap_or(k)))
        .collect();
    keys.join(", ")
}

fn init(a: &InitArgs, now: jiff::Timestamp) -> anyhow::Result<()> {
    if a.root_threshold < 2 && !a.allow_single_root_key {
        bail!(
            "a root threshold of {} lets one stolen key replace every key of the repository; \
             use 2 or more (or --allow-single-root-key for a test repository)",
            a.root_threshold
        );
    }
    let options = InitOptions {
        root_keys: public_keys(&a.root_keys)?,
        root_threshold: a.root_threshold,
        targets_keys: public_keys(&a.targets_keys)?,
        targets_threshold: a.targets_threshold,
        policy: Policy {
            root_days: a.root_days,
            targets_days: a.targets_days,
            snapshot_hours: a.snapshot_hours,
            timestamp_hours: a.timestamp_hours,
        },
    };
    Repository::init(&a.dir.dir, &options, now)?;
    eprintln!(
        "created {}: root v1 and targets v1 are staged; export them, sign root with {} root \
         key(s) and targets with the release manager's key, then import root, then targets",
        a.dir.dir.display(),
        a.root_threshold
    );
    Ok(())
}

/// `castellan repo log`: the verified entries, oldest first (a broken chain is an error naming
/// the first bad line).
fn show_log(a: &StatusArgs) -> anyhow::Result<()> {
    a.dir.open()?;
    let entries = oplog::read(&a.dir.dir)
        .with_context(|| format!("{} does not verify", oplog::log_path(&a.dir.dir).display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("no command logged yet");
    }
    for e in &entries {
        println!(
            "{:>4} {} {:<16} {:<12} {}",
            e.seq, e.at, e.by, e.command, e.detail
        );
    }
    Ok(())
}

fn status(a: &StatusArgs) -> anyhow::Result<()> {
    let status = a.dir.open()?.status()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    for role in &status.roles {
        let version = role
            .version
            .map_or("unpublished".into(), |v| format!("v{v}"));
        println!(
            "{:<12} {:<12} expires {:<22} {} of {} key(s)",
            role.name,
            version,
            role.expires.as_deref().unwrap_or("-"),
            role.threshold,
            role.keyids.len()
        );
        if let Some(staged) = role.staged_version {
            println!(
                "{:<12} staged v{staged}, signed by {:?}",
                "", role.staged_signers
            );
        }
    }
    Ok(())
}

fn public_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<Key>> {
    paths.iter().map(|p| public_key(p)).collect()
}

fn public_key(path: &Path) -> anyhow::Result<Key> {
    public_key_from_file(path).with_context(|| format!("{} is not a usable key", path.display()))
}

fn staged_hint(dir: &Path, role: &str, staged: &Envelope) -> anyhow::Result<()> {
    eprintln!(
        "staged {role} v{}: `castellan repo export --dir {} --role {role}`, sign it, then import it",
        staged.version()?,
        dir.display()
    );
    Ok(())
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no file name; give --name", path.display()))
}

/// `root.json`, `3.root.json` or `sensor-v1.json` → the role.
fn role_from_file_name(path: &Path) -> anyhow::Result<String> {
    let name = file_name(path)?;
    let stem = name
        .strip_suffix(".json")
        .with_context(|| format!("{name}: give --role (the file name is not <role>.json)"))?;
    let role = match stem.split_once('.') {
        Some((version, role)) if version.bytes().all(|b| b.is_ascii_digit()) => role,
        _ => stem,
    };
    Ok(role.to_owned())
}
