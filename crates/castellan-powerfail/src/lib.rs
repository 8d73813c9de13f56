//! Castellan power-loss harness (work in progress).
