//! Castellan secure services (work in progress).
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod aead;
mod error;
pub mod its;
mod kdf;
mod platform;
#[cfg(feature = "std")]
pub mod powerloss;
#[cfg(feature = "std")]
pub mod sim;

pub use error::{ServiceError, psa, status_of};
pub use its::{Its, ItsConfig, ItsFlags, ItsInfo, ItsStatus};
pub use platform::{
    LIFECYCLE_COUNTER, LIFECYCLE_WORD, MAX_MAPPED_COUNTERS, OtpCounterMap, Platform,
    STORAGE_COMMIT_COUNTER, STORAGE_COUNTER_WORD, STORAGE_COUNTER_WORDS, STORAGE_INTENT_COUNTER,
};
