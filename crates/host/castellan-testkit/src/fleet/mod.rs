//! Fleet fixtures shared by the fleet service's tests and the device agent's (feature `fleet`):
//! a release pipeline's keys, images and SUIT envelopes built like `castellan-release` builds
//! them ([`release`]), a stand-in MQTT broker with the fleet PKI's server certificate
//! ([`broker`]), and the PKI handed over from an offline root as production runs it ([`pki`]).
//!
//! ```text
//!  ReleaseKit ─ image key ─▶ sign_app (MCUboot, PUBKEY TLV) ─▶ measurement_of
//!             └ release key ─▶ manifest_with / manifest_for / manifest_expiring (SUIT, ES256)
//!  stand_in_broker(dir, pki) ─▶ rmqtt over mutual TLS, every verified client allowed
//!  hand_over_pki(state dir)   ─▶ offline root beside it, the service's online PKI handed over
//!  copy_tree(state, state2)   ─▶ a second instance configured like the first
//! ```
//!
//! Fixtures panic on failure: they are test code, and a panic names what failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod broker;
pub mod pki;
pub mod release;

pub use broker::stand_in_broker;
pub use pki::hand_over_pki;
pub use release::{
    CLASS, ReleaseKit, manifest_expiring, manifest_for, manifest_with, measurement_of,
    release_body, release_key_hex, sign_app, v,
};
