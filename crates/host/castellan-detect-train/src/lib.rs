//! Castellan detect-train: the host half of the edge detector.
//!
//! ```text
//!  trace files ──▶ trace::load ──▶ train (float model, Adam, seeded) ──▶ quantise ──▶ model bytes
//!                                                                                      │
//!  normal / attack traces ──▶ eval (device Scorer over the bytes) ──▶ ROC AUC, detection rates
//!                        └──▶ baseline (stide, Markov chains) for comparison
//! ```
//!
//! - [`trace`]: the trace file format (event ids 0–65535 separated by whitespace), with errors
//!   naming the file and line;
//! - [`train`]: learns a small causal language model from normal traces only and writes it in
//!   the exact format `castellan-detect` loads, within a byte budget;
//! - [`eval`]: scores traces with the device's scorer and measures ROC AUC and detection rates
//!   at fixed false-alarm rates;
//! - [`baseline`]: the classic counting detectors the model is compared with.

pub mod baseline;
pub mod eval;
mod net;
mod quantise;
mod rng;
pub mod trace;
pub mod train;
