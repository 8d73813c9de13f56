//! Castellan device kit: one definition of each reference device (flash geometry, slot layout,
//! storage areas), which simulated devices, the command line, the power-loss proofs and the
//! tests iterate instead of writing their own.
//!
//! ```text
//!  spec      DeviceSpec: flash size and sector, write sizes × erased values, partitions
//!            packed from address 0, fuse bank → FlashConfig, DeviceConfig, FlashLayout
//!  catalog   the named devices (REFERENCE, BOOT_MATRIX, UPDATE_MATRIX, SERVICES_*) and
//!            `catalog()`, the list a test iterates to run on every device
//!  reference the reference device's options (slot and bootloader sizes, flash geometry,
//!            swap or overwrite-only), as `castellan sim create` and the agent build it
//!  sim_services  the secure services' platform over a simulated device
//!  detect_model  the simulated devices' detector model and its installation
//! ```
#![forbid(unsafe_code)]

pub mod catalog;
pub mod detect_model;
pub mod reference;
pub mod sim_services;
pub mod spec;

pub use catalog::{
    BOOT_MATRIX, REFERENCE, SERVICES_FWU, SERVICES_ITS, SERVICES_UPDATE, UPDATE_MATRIX, by_name,
    catalog,
};
pub use reference::ReferenceOptions;
pub use spec::{DEFAULT_OTP, DeviceSpec, PARTITION_ITS, PARTITION_ITS_KEY, Part, swap_layout};
