//! The vendor and class identifiers Castellan puts in its manifests: name-based UUIDs of
//! version 8 (RFC 9562 §5.8, the SHA-256 construction of its Appendix B.2), so that the server,
//! the release tool and the factory derive the same 16 bytes from a vendor name and a device
//! class name without a registry of UUIDs.
//!
//! ```text
//!  vendor_id = UUIDv8(SHA-256(NAMESPACE ‖ "vendor:" ‖ vendor name))
//!  class_id  = UUIDv8(SHA-256(vendor_id ‖ "class:" ‖ class name))
//! ```

use sha2::{Digest, Sha256};

/// The vendor name of a default Castellan fleet.
pub const DEFAULT_VENDOR: &str = "castellan";

/// Namespace of Castellan's identifiers (a fixed random UUID).
const NAMESPACE: [u8; 16] = [
    0x3b, 0x1c, 0x6e, 0x0a, 0x92, 0x5d, 0x4f, 0x27, 0xa8, 0x11, 0x6c, 0xd4, 0x0e, 0x73, 0x95, 0xb2,
];

fn uuid_v8(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let digest = h.finalize();
    let mut out = [0u8; 16];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    if let Some(b) = out.get_mut(6) {
        *b = (*b & 0x0F) | 0x80; // version 8
    }
    if let Some(b) = out.get_mut(8) {
        *b = (*b & 0x3F) | 0x80; // variant 10
    }
    out
}

/// The vendor identifier of `vendor` (e.g. [`DEFAULT_VENDOR`]).
pub fn vendor_id(vendor: &str) -> [u8; 16] {
    uuid_v8(&[&NAMESPACE, b"vendor:", vendor.as_bytes()])
}

/// The class identifier of device class `class` (e.g. `"sensor-v1"`) of vendor `vendor_id`.
pub fn class_id(vendor_id: &[u8; 16], class: &str) -> [u8; 16] {
    uuid_v8(&[vendor_id, b"class:", class.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_8_variant_10_and_distinct() {
        let v = vendor_id(DEFAULT_VENDOR);
        assert_eq!(v[6] >> 4, 8);
        assert_eq!(v[8] >> 6, 0b10);
        assert_eq!(v, vendor_id("castellan"));
        assert_ne!(v, vendor_id("other"));
        let a = class_id(&v, "sensor-v1");
        assert_ne!(a, class_id(&v, "sensor-v2"));
        assert_ne!(a, class_id(&vendor_id("other"), "sensor-v1"));
        assert_eq!(a[6] >> 4, 8);
    }
}
