//! Key custody evidence (`mqtt <port> <device-id> custody`): after both TLS sessions, the
//! non-secure world prints the public keys of its two TLS keys (IDevID 0x710, LDevID 0x720)
//! and every non-zero 64-byte line of its whole RAM, so that the host can check that no
//! 32-byte window of it is either private scalar (`crates/host/castellan-bridge/examples/
//! custody/mod.rs`: the window times the generator, in both byte orders, against the public
//! keys).
//!
//! ```text
//!  [app] custody: key 00000710 <65-byte SEC1 point>
//!  [app] custody: key 00000720 <65-byte SEC1 point>
//!  [app] custody: ram 28200000 <64 bytes>          (each non-zero line of 0x2820_0000..0x2830_0000)
//!  [app] custody: dumped <n> lines
//! ```
//!
//! Nothing is cleared before the dump: the session buffers (records, the handshake's state,
//! the certificates) still hold what the sessions left, which is what this evidence is about.

use castellan_gate::client::Veneers;
use castellan_gate::{SecureGate as _, println};

/// Non-secure RAM (`memory.x`: RAM), the stack at its top included.
const RAM: core::ops::Range<usize> = 0x2820_0000..0x2830_0000;
const LINE: usize = 64;

/// Prints the two TLS keys' public points and the non-zero lines of non-secure RAM.
pub fn dump() {
    for id in [
        crate::tls::TLS_KEY_ID,
        castellan_fleet_client::LDEVID_KEY_ID,
    ] {
        let mut k = [0u8; 65];
        if Veneers.export_public_key(id, &mut k).is_ok() {
            crate::print_hex(key_prefix(id).as_str(), &k);
        }
    }
    let mut lines = 0u32;
    let mut line = [0u8; LINE];
    for at in RAM.step_by(LINE) {
        for (i, b) in line.iter_mut().enumerate() {
            // Safety: a byte of this world's own RAM (`memory.x`), mapped and readable by
            // unprivileged code; reading it has no side effect.
            *b = unsafe { core::ptr::read_volatile((at + i) as *const u8) };
        }
        if line.iter().any(|&b| b != 0) {
            crate::print_hex(Prefix::ram(at).as_str(), &line);
            lines += 1;
        }
    }
    println!("[app] custody: dumped {lines} lines");
}

/// A line prefix built without `core::fmt`.
struct Prefix {
    buf: [u8; 32],
    len: usize,
}

impl Prefix {
    fn new(head: &str, word: u32) -> Prefix {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut p = Prefix {
            buf: [0; 32],
            len: 0,
        };
        for &b in head.as_bytes() {
            p.push(b);
        }
        for shift in (0..8).rev() {
            p.push(HEX[((word >> (shift * 4)) & 15) as usize]);
        }
        p.push(b' ');
        p
    }

    fn ram(at: usize) -> Prefix {
        Prefix::new("[app] custody: ram ", at as u32)
    }

    fn push(&mut self, b: u8) {
        if let Some(d) = self.buf.get_mut(self.len) {
            *d = b;
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

fn key_prefix(id: u32) -> Prefix {
    Prefix::new("[app] custody: key ", id)
}
