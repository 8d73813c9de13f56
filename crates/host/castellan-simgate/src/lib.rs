//! The call gate of a simulated device. Its normal world (the agent, the command line, tests)
//! reaches the secure services only through [`castellan_gate_api::SecureGate`]: every call is
//! laid out in a simulated non-secure memory ([`SimNsMemory`]) and handed, as four registers,
//! to the same dispatcher the firmware's TrustZone veneers run
//! ([`castellan_gate_api::dispatch`]), over the same services
//! (`castellan_services::SecureServices`).
//!
//! ```text
//!  normal world ── SimGate (SecureGate) ── NS RAM 0x2820_0000.. ──▶ dispatch ──▶ SimSecure
//!                                          (anything else refused:        (GateBackend over
//!                                           PROGRAMMER_ERROR)              SecureServices)
//! ```
#![forbid(unsafe_code)]

mod gate;
mod memory;
mod secure;
#[cfg(feature = "testing")]
pub mod testing;

pub use gate::{GateCall, OwnedArg, SimGate, invoke};
pub use memory::{NS_CODE_BASE, NS_CODE_SIZE, NS_RAM_BASE, NS_RAM_SIZE, SECURE_RAM, SimNsMemory};
pub use secure::SimSecure;
