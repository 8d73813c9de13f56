//! MCUboot-compatible images (being written).
