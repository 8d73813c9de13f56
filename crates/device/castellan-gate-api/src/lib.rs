//! The secure services' call gate, declared once: what the non-secure side and the secure side
//! of every Castellan device agree on, in the spirit of Hubris' `*-api` crates.
//!
//! ```text
//!  non-secure side                         │ secure side
//!  SecureGate (typed calls, one `invoke`)  │ dispatch(op, [r0..r3], NsMemory, GateBackend)
//!    firmware: veneers, real pointers ─────┼──▶ TrustZone NsMemory (TTAT checks) ─┐
//!    host: simulated NS memory ────────────┼──▶ simulated NsMemory ───────────────┤
//!                                          │     GateServices for SecureServices ◀┘
//! ```
//!
//! - [`psa`]: the PSA status codes every result is made of;
//! - [`Op`]: one id per operation, its argument registers ([`Reg`]) and caps;
//! - records ([`BootInfo`], [`UpdateStatus`], [`ItsSummary`], [`Refusal`]) with an explicit
//!   little-endian encoding;
//! - [`SecureGate`]: the typed non-secure view, returning [`GateError`];
//! - [`sensor`]: the detector's sensors (every gate entry an event id) and the [`Detector`]
//!   the dispatcher feeds;
//! - [`dispatch`]: the secure-side checks (ranges, caps, copy in, copy out), over
//!   [`NsMemory`], [`GateServices`] and [`GateBackend`].
#![no_std]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod backend;
mod dispatch;
mod gate;
mod op;
pub mod psa;
mod records;
pub mod sensor;

pub use backend::{Access, Event, Fault, GateBackend, GateServices, NsMemory, UpdateBegun};
pub use dispatch::dispatch;
pub use gate::{Arg, GateError, SecureGate, registers};
pub use op::{
    CONSOLE_MAX, ENVELOPE_CAP, FWU_CHUNK, HASH_LEN, ITS_CHUNK, NONCE_LENS, NONCE_MAX, Op,
    PUBLIC_KEY_LEN, RANDOM_CAP, Reg, SIGNATURE_LEN, TOKEN_CAP, TRUST_ANCHOR_LEN, UPDATE_BLOCK_CAP,
};
pub use records::{
    BOOT_INFO_SIZE, BOOT_TEXT_CAP, BootInfo, ITS_SUMMARY_SIZE, ItsSummary, REFUSAL_SIZE,
    REFUSAL_TEXT_CAP, Refusal, UPDATE_STATUS_SIZE, UpdateStatus, refusal_kind, update_state,
    upgrade,
};
pub use sensor::{
    Counters, DETECT_REPORT_CAP, DETECT_STATUS_SIZE, DetectStatus, Detector, FaultKind, RateLimit,
    Sensors, app_kind,
};
