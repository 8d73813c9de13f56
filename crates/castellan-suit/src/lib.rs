//! Castellan placeholder: being written.
