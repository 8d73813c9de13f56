//! The `castellan` command.
fn main() {}
