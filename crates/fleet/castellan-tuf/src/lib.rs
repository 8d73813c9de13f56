//! Castellan's TUF layer (The Update Framework 1.0) over its releases.
//!
//! * [`client`]: the device-side client, sigstore-tuf's updater (a client whose own CI passes
//!   the public tuf-conformance suite) over a directory of trusted metadata;
//! * [`repo`]: the repository side, over sigstore-tuf's metadata types;
//! * [`mqtt`]: TUF files over MQTT, the client's transport and the server's answer;
//! * the binary `castellan-tuf-conformance`: that client behind the suite's command line.
//!
//! SUIT authenticates each release on the device; TUF says which release is current for a
//! device class and survives the theft of any one key (see `docs/updates.md`).

pub mod client;
mod error;

pub use error::TufError;
pub mod mqtt;
pub mod repo;
