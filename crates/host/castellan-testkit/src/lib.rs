//! Castellan test support (not published): the drivers for the external peers that interop
//! tests run, the fleet fixtures that several crates' tests share, and a published TUF
//! repository (`tuf_repo`).
#![forbid(unsafe_code)]

#[cfg(feature = "fleet")]
pub mod fleet;
pub mod mqtt_client;
pub mod peers;
pub mod sockets;
pub mod test_pki;
#[cfg(feature = "tuf")]
pub mod tuf_repo;
