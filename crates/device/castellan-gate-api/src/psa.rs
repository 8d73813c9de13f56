//! PSA status codes (`psa_status_t`) as the PSA Certified APIs (and TF-M) number them: the one
//! definition the gate, the secure services and the non-secure client share.
//!
//! ```text
//!  0 = PSA_SUCCESS, 1 = PSA_SUCCESS_REBOOT, < 0 = PSA_ERROR_*, other ≥ 0 = a result (a length)
//! ```

/// `PSA_SUCCESS`.
pub const SUCCESS: i32 = 0;
/// `PSA_SUCCESS_REBOOT`: success, and a reboot completes the operation.
pub const SUCCESS_REBOOT: i32 = 1;
/// `PSA_ERROR_PROGRAMMER_ERROR`: a pointer or length from the caller is not memory the caller
/// may access; the secure side refused to touch it.
pub const ERROR_PROGRAMMER_ERROR: i32 = -129;
/// `PSA_ERROR_GENERIC_ERROR`.
pub const ERROR_GENERIC_ERROR: i32 = -132;
/// `PSA_ERROR_NOT_PERMITTED`.
pub const ERROR_NOT_PERMITTED: i32 = -133;
/// `PSA_ERROR_NOT_SUPPORTED`.
pub const ERROR_NOT_SUPPORTED: i32 = -134;
/// `PSA_ERROR_INVALID_ARGUMENT`.
pub const ERROR_INVALID_ARGUMENT: i32 = -135;
/// `PSA_ERROR_INVALID_HANDLE`.
pub const ERROR_INVALID_HANDLE: i32 = -136;
/// `PSA_ERROR_BAD_STATE`.
pub const ERROR_BAD_STATE: i32 = -137;
/// `PSA_ERROR_BUFFER_TOO_SMALL`.
pub const ERROR_BUFFER_TOO_SMALL: i32 = -138;
/// `PSA_ERROR_ALREADY_EXISTS`.
pub const ERROR_ALREADY_EXISTS: i32 = -139;
/// `PSA_ERROR_DOES_NOT_EXIST`.
pub const ERROR_DOES_NOT_EXIST: i32 = -140;
/// `PSA_ERROR_INSUFFICIENT_MEMORY`.
pub const ERROR_INSUFFICIENT_MEMORY: i32 = -141;
/// `PSA_ERROR_INSUFFICIENT_STORAGE`.
pub const ERROR_INSUFFICIENT_STORAGE: i32 = -142;
/// `PSA_ERROR_STORAGE_FAILURE`.
pub const ERROR_STORAGE_FAILURE: i32 = -146;
/// `PSA_ERROR_INSUFFICIENT_ENTROPY`.
pub const ERROR_INSUFFICIENT_ENTROPY: i32 = -148;
/// `PSA_ERROR_INVALID_SIGNATURE`.
pub const ERROR_INVALID_SIGNATURE: i32 = -149;
/// `PSA_ERROR_DATA_CORRUPT`.
pub const ERROR_DATA_CORRUPT: i32 = -152;
/// `PSA_ERROR_DATA_INVALID`.
pub const ERROR_DATA_INVALID: i32 = -153;

/// A short name for a status, for logs.
pub const fn name(status: i32) -> &'static str {
    match status {
        SUCCESS => "success",
        SUCCESS_REBOOT => "success, reboot required",
        ERROR_PROGRAMMER_ERROR => "programmer error (pointer refused)",
        ERROR_GENERIC_ERROR => "generic error",
        ERROR_NOT_PERMITTED => "not permitted",
        ERROR_NOT_SUPPORTED => "not supported",
        ERROR_INVALID_ARGUMENT => "invalid argument",
        ERROR_INVALID_HANDLE => "invalid handle",
        ERROR_BAD_STATE => "bad state",
        ERROR_BUFFER_TOO_SMALL => "buffer too small",
        ERROR_ALREADY_EXISTS => "already exists",
        ERROR_DOES_NOT_EXIST => "does not exist",
        ERROR_INSUFFICIENT_MEMORY => "insufficient memory",
        ERROR_INSUFFICIENT_STORAGE => "insufficient storage",
        ERROR_STORAGE_FAILURE => "storage failure",
        ERROR_INSUFFICIENT_ENTROPY => "insufficient entropy",
        ERROR_INVALID_SIGNATURE => "invalid signature",
        ERROR_DATA_CORRUPT => "data corrupt",
        ERROR_DATA_INVALID => "data invalid",
        _ => "unknown status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_name() {
        for s in [
            ERROR_PROGRAMMER_ERROR,
            ERROR_GENERIC_ERROR,
            ERROR_NOT_PERMITTED,
            ERROR_NOT_SUPPORTED,
            ERROR_INVALID_ARGUMENT,
            ERROR_INVALID_HANDLE,
            ERROR_BAD_STATE,
            ERROR_BUFFER_TOO_SMALL,
            ERROR_ALREADY_EXISTS,
            ERROR_DOES_NOT_EXIST,
            ERROR_INSUFFICIENT_MEMORY,
            ERROR_INSUFFICIENT_STORAGE,
            ERROR_STORAGE_FAILURE,
            ERROR_INSUFFICIENT_ENTROPY,
            ERROR_INVALID_SIGNATURE,
            ERROR_DATA_CORRUPT,
            ERROR_DATA_INVALID,
        ] {
            assert!(s < 0);
            assert_ne!(name(s), "unknown status", "{s}");
        }
        assert_eq!(name(-1), "unknown status");
    }
}
