//! Castellan detect: the edge detector's core, `no_std`, without heap, without panics.
//!
//! ```text
//!  host (castellan-detect-train)            device (this crate)
//!  normal traces ─▶ train ─▶ quantise ─▶ encode ─▶ model bytes ─▶ Model::parse ─▶ Scorer
//!                                                   │                              │ push(id)
//!                                       model_digest (bound by a release)          ▼
//!                                                                  per-event surprise, window
//!                                                                  and trace anomaly scores
//! ```
//!
//! - [`Model`]: the versioned, length-checked model format (a small causal language model over
//!   event ids: embeddings of the last `context` events, one hidden layer, a softmax over the
//!   known ids plus an "unseen" class), parsed in one place with a typed [`ModelError`];
//!   [`encode`] writes it (the trainer uses it, so both sides share one definition).
//! - [`Scorer`]: feeds event ids one at a time with fixed-size state and reads the
//!   negative log-likelihood ("surprise") of each event; the excess of surprise above the
//!   model's threshold, averaged over a sliding window and over the trace, is the anomaly.
//!
//! The arithmetic is int8 × int8 → i32 dot products with per-tensor f32 scales, plus one
//! `tanhf` per hidden unit and one `expf` per class: what a Cortex-M33 runs in a few
//! thousand cycles per event. docs/detection.md describes the design and the measured quality.
#![no_std]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod error;
mod format;
mod scorer;
mod tanh_table;

pub use error::ModelError;
pub use format::{
    Dimensions, HEADER_LEN, MAGIC, MAX_CONTEXT, MAX_EMBED, MAX_HIDDEN, MAX_VOCAB, MAX_WINDOW,
    Model, ModelParts, Scales, VERSION, encode, encoded_len, model_digest,
};
pub use scorer::{Scorer, TIE_BREAK, TraceScore};
