//! Unit tests of the wire formats: golden bytes of every message ([`wire`]) and hostile
//! input ([`hostile`]), topics read and written ([`topic`]).

mod hostile;
mod topic;
mod wire;
