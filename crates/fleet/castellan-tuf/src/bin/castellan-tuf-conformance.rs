//! The client-under-test command line of the public `tuf-conformance` suite, over Castellan's
//! TUF client (`castellan_tuf::client`):
//!
//! ```text
//! castellan-tuf-conformance --metadata-dir DIR init TRUSTED_ROOT
//! castellan-tuf-conformance --metadata-dir DIR --metadata-url URL refresh
//! castellan-tuf-conformance --metadata-dir DIR --metadata-url URL --target-name PATH… \
//!     --target-base-url URL --target-dir DIR download
//! ```
//!
//! Exit 0 on success, 1 on any failure (the reason on stderr). The suite runs it under
//! `faketime`, so expiry is judged against the system clock.

use std::path::PathBuf;
use std::process::ExitCode;

use castellan_tuf::TufError;
use castellan_tuf::client::{self, DeviceClient, FetchLimits};
use clap::{Parser, Subcommand};

/// TUF client for the tuf-conformance suite (CLIENT-CLI protocol).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Directory of trusted metadata (plain names: root.json, timestamp.json, …).
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL of the repository's metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Target path to download; repeat for several, processed in order.
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Base URL of the repository's targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// Directory to store verified targets in.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trust a root (no network).
    Init {
        /// The root metadata file to trust.
        trusted_root: PathBuf,
    },
    /// Refresh the top-level metadata.
    Refresh,
    /// Refresh, then download and verify each `--target-name`.
    Download,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::FAILURE;
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("castellan-tuf-conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    if let Command::Init { trusted_root } = &cli.command {
        let root = std::fs::read(trusted_root)
            .map_err(|e| Failure::Usage(format!("{}: {e}", trusted_root.display())))?;
        return Ok(client::init(&cli.metadata_dir, &root)?);
    }
    let url = cli
        .metadata_url
        .as_deref()
        .ok_or(Failure::Usage("--metadata-url is required".into()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("async runtime: {e}")))?;
    runtime.block_on(async {
        let mut tuf = DeviceClient::open_http(
            &cli.metadata_dir,
            url,
            cli.target_base_url.as_deref(),
            FetchLimits::default(),
        )?;
        let now = jiff::Timestamp::now();
        tuf.refresh(now).await?;
        if matches!(cli.command, Command::Download) {
            download(cli, &mut tuf, now).await?;
        }
        Ok(())
    })
}

async fn download(cli: &Cli, tuf: &mut DeviceClient, now: jiff::Timestamp) -> Result<(), Failure> {
    let dir = cli
        .target_dir
        .as_ref()
        .ok_or(Failure::Usage("--target-dir is required".into()))?;
    if cli.target_names.is_empty() {
        return Err(Failure::Usage("--target-name is required".into()));
    }
    for name in &cli.target_names {
        let info = tuf.target(name, now).await?;
        let path = client::target_path(dir, name);
        // Already downloaded and still the listed bytes: no second download.
        if std::fs::read(&path).is_ok_and(|held| client::matches_target(&held, &info)) {
            continue;
        }
        let bytes = tuf.download(name, &info).await?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::Usage(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

/// Why the command failed.
#[derive(Debug)]
enum Failure {
    /// The command line or the local file system.
    Usage(String),
    /// The TUF client refused.
    Tuf(TufError),
}

impl From<TufError> for Failure {
    fn from(e: TufError) -> Self {
        Self::Tuf(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(why) => f.write_str(why),
            Self::Tuf(e) => write!(f, "{e}"),
        }
    }
}
