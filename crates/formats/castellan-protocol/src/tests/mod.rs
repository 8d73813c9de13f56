//! Unit tests of the wire formats: golden bytes of every message ([`wire`]) and hostile
//! input ([`hostile`]).

mod hostile;
mod wire;
