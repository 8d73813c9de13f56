//! Castellan device kit: one definition of each reference device (flash geometry, slot layout,
//! storage areas), which simulated devices, the command line, the power-loss proofs and the
//! tests iterate instead of writing their own.
#![forbid(unsafe_code)]

pub mod sim_services;
