//! Castellan test support (not published): the drivers for the external peers that interop
//! tests run, and the fleet fixtures that several crates' tests share.
#![forbid(unsafe_code)]

#[cfg(feature = "fleet")]
pub mod fleet;
pub mod mqtt_client;
pub mod peers;
pub mod sockets;
pub mod test_pki;
