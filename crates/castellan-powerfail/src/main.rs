//! `castellan-powerfail`: runs every power-loss scenario (work in progress).
fn main() {}
