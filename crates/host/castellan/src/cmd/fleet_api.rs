//! What every command that talks to the fleet server's operator API shares: where the server
//! is, whose token, which CA to trust, and a runtime to run the calls on.

use std::future::Future;
use std::path::PathBuf;

use castellan_agent::FleetApi;
use clap::Args;

use super::factory::server_ca;
use super::read_text;

/// Options naming the server and the operator.
#[derive(Args, Clone, Debug)]
pub(crate) struct ApiArgs {
    /// The fleet server's API.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    pub server: String,
    /// File holding the operator's token (e.g. STATE/admin.token, or a release manager's).
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// CA bundle that signs the server's certificate (default: `tls/ca-bundle.pem` beside the
    /// token file, where `castellan serve` writes it).
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
}

impl ApiArgs {
    /// A client for the server, authenticated with the token.
    pub(crate) fn client(&self) -> anyhow::Result<FleetApi> {
        let token = read_text(&self.token_file)?;
        let ca = server_ca(self.ca.as_deref(), &self.token_file)?;
        Ok(FleetApi::new(&self.server, &token, &ca)?)
    }
}

/// Runs `f` on a small multi-threaded runtime.
pub(crate) fn block_on<F: Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}
