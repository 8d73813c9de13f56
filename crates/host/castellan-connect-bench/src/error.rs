//! Why the connect benchmark could not run.

use castellan_testkit::mqtt_client::MqttClientError;
use castellan_testkit::test_pki::TestPkiError;

/// Everything that stops a benchmark run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A broker did not start, clients failed, a phase timed out.
    #[error("connect benchmark: {0}")]
    Bench(String),
    /// A benchmark client failed to set up TLS, connect or publish.
    #[error("connect benchmark: {0}")]
    Client(#[from] MqttClientError),
    /// The throwaway certificates could not be issued.
    #[error(transparent)]
    Pki(#[from] TestPkiError),
    /// An external tool needed by the benchmark is missing.
    #[error("`{tool}` is not installed; install it with: {install}")]
    ToolMissing {
        /// The executable that was not found.
        tool: &'static str,
        /// The command that installs it.
        install: &'static str,
    },
}
