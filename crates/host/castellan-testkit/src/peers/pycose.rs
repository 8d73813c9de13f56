//! pycose and cbor2 (Python): an independent COSE and CBOR implementation that verifies our
//! tokens and SUIT envelopes and builds tokens for us to verify.

/// How to install them (the versions `cargo xtask deps` pins).
pub const INSTALL: &str = "pip install pycose==1.1.0 cbor2==6.2.1";

/// Fails the test unless `python3` imports pycose, cbor2 and cryptography (a dependency of
/// pycose).
#[track_caller]
pub fn require() {
    super::require_python_modules(
        "python3 with pycose and cbor2",
        "pycose, cbor2, cryptography",
        INSTALL,
    );
}
