//! The names the PKI puts into certificates: device ids, classes and operator names (they end
//! up in MQTT topics and file names), device serials, DNS names.

use rcgen::DnValue;

use crate::PkiError;

pub(super) fn printable(s: &str) -> Result<DnValue, PkiError> {
    Ok(DnValue::PrintableString(s.try_into().map_err(|_| {
        PkiError::InvalidName {
            what: "device serial",
            reason: "not a PrintableString",
        }
    })?))
}

/// Device ids, classes and operator names: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with
/// `.` or `-`. They end up in MQTT topics (`dev/<id>/...`) and file names, so `/ + # \0` and
/// the like are refused.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), PkiError> {
    if name.is_empty() || name.len() > 64 {
        return Err(PkiError::InvalidName {
            what,
            reason: "must be 1 to 64 characters",
        });
    }
    if name.starts_with(['.', '-']) {
        return Err(PkiError::InvalidName {
            what,
            reason: "must not start with '.' or '-'",
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(PkiError::InvalidName {
            what,
            reason: "only letters, digits, '.', '_' and '-' are allowed",
        });
    }
    Ok(())
}

/// Device serials (X.520 serialNumber is a PrintableString, which has no '_'): 1 to 64 of
/// `A-Z a-z 0-9 . : -`.
pub(super) fn check_serial(serial: &str) -> Result<(), PkiError> {
    if serial.is_empty() || serial.len() > 64 {
        return Err(PkiError::InvalidName {
            what: "device serial",
            reason: "must be 1 to 64 characters",
        });
    }
    if !serial
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-'))
    {
        return Err(PkiError::InvalidName {
            what: "device serial",
            reason: "only letters, digits, '.', ':' and '-' are allowed",
        });
    }
    Ok(())
}

pub(super) fn check_dns_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(PkiError::InvalidName {
            what: "server DNS name",
            reason: "not a valid host name",
        })
    }
}
