//! Castellan host bridge: the network link of the QEMU `mps2-an505` device, as a gateway would
//! be for a constrained device. The firmware has no TCP/IP stack; the bridge runs it in QEMU
//! one short operator command at a time, and speaks the fleet protocol
//! (`docs/fleet-protocol.md`) for it.
//!
//! ```text
//!  fleet server ◀── HTTPS (factory) ── bridge ── QEMU runs: `attest`, `anchor`, `ota check`,
//!               ◀── MQTT/TLS (IDevID,  │         `ota install`, `boot` ──▶ secure partition
//!                   then LDevID) ──────┘         (SUIT client, FWU, attestation, ITS)
//! ```
//!
//! Trust: the bridge holds the device's TLS client keys (a documented limitation: the TLS
//! endpoint is the bridge). Everything security-relevant to an update is end to end: the SUIT
//! manifest is authenticated with the release trust anchor, and the payload hashed, sized and
//! verified, inside the secure partition; attestation tokens are made there, over the server's
//! nonce, with the IAK registered at the factory. A compromised bridge can withhold or delay an
//! update, never make the device accept one the release key did not sign.
//!
//! * [`qemu`] — one QEMU run: command line, download buffer, console lines, time limit;
//! * [`device`] — the requests the bridge makes of the device and how it reads the answers;
//! * [`factory`] — registration (`POST /api/v1/factory/devices`) and the release trust anchor;
//! * [`onboard`] — attested onboarding with the IDevID, the LDevID stored;
//! * [`session`] — the operational link: the fleet client's update client (offers, TUF check,
//!   download, install, confirmation, post-update attestation) over [`updates`], the QEMU
//!   device as that client sees it;
//! * [`protocol`] — the fleet protocol's messages: `castellan-protocol`, the server's own types.
//!
//! The `castellan-bridge` command (`register`, `onboard`, `run`) drives these for one device;
//! `cargo xtask qemu-campaign` runs them against a fleet service in a real campaign
//! (`examples/qemu_campaign/`).

#![forbid(unsafe_code)]

pub mod device;
mod error;
pub mod factory;
pub mod onboard;
pub mod qemu;

pub use castellan_protocol as protocol;
pub mod session;
pub mod updates;

use std::sync::Arc;

pub use device::{InstallEvent, InstallOutcome, QemuDevice, update_download};
pub use error::BridgeError;
pub use factory::{DEVICE_CLASS, Registered, register};
pub use onboard::onboard;
pub use qemu::{Qemu, RunOutput};
pub use session::{SessionConfig, SessionReport, run};

/// Where the bridge's progress lines go.
pub type Logger = Arc<dyn Fn(&str) + Send + Sync>;

/// A logger that prints each line to standard output after `prefix`.
pub fn stdout_logger(prefix: &str) -> Logger {
    let prefix = prefix.to_string();
    Arc::new(move |line: &str| println!("{prefix}{line}"))
}
