//! Fuzz target for the PSA attestation token parser (`castellan-attest`, feature `std`):
//! arbitrary bytes go to the decoder, the verifier (ES256 and HMAC keys) and the appraiser, and,
//! wrapped as the payload of a COSE_Sign1, to the claims parser. Any panic is a bug.
#![no_main]

use castellan_attest::{ReferenceValues, VerificationKey};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // RFC 9783 example key (public part) and an HMAC key.
    let Ok(ec) = VerificationKey::p256_from_jwk(
        "Tl4iCZ47zrRbRG0TVf0dw7VFlHtv18HInYhnmMNybo8",
        "gNcLhAslaqw0pi7eEEM2TwRAlfADR0uR4Bggkq-xPy4",
    ) else {
        return;
    };
    let Ok(mac) = VerificationKey::hmac_sha256(&[0x5a; 32]) else {
        return;
    };

    // 1. The bytes as a whole token.
    let _ = castellan_attest::decode_token(data);
    let _ = castellan_attest::verify_token(data, &ec);
    let _ = castellan_attest::verify_token(data, &mac);
    let _ = castellan_attest::appraise(data, &ec, &[0u8; 32], &ReferenceValues::default());

    // 2. The bytes as the claims map of a well-formed COSE_Sign1 (signature not valid, so the
    //    decoder, which does not check it, reaches the claims parser).
    let mut token = vec![0u8; data.len() + 96];
    if let Ok(n) = castellan_attest::assemble_sign1(data, &[0u8; 64], &mut token) {
        if let Ok(decoded) = castellan_attest::decode_token(&token[..n]) {
            // Whatever decodes must also print and appraise without panicking.
            let _ = decoded.claims.to_string();
            let _ = ReferenceValues::default().check(&decoded.claims, &[0u8; 32]);
        }
    }
});
