//! Which of a device's certificates a connection presents: the session is bound to the exact
//! certificate the registry recorded at issuance (the SHA-256 of its DER), never to its CN and
//! serial alone. Both are public (in every certificate, and in clear in a TLS 1.2 handshake), so
//! any CA the broker trusts could mint a certificate carrying them.
//!
//! ```text
//!  presented SHA-256 == SHA-256(IDevID DER recorded at the factory) ─▶ Idevid (onboarding)
//!  presented SHA-256 == LDevID SHA-256 recorded at onboarding       ─▶ Ldevid (operation)
//!  the IDevID's or LDevID's serial, other certificate               ─▶ refused: not the issued one
//!  the LDevID's serial, no SHA-256 on record (onboarded before)     ─▶ refused: onboard again
//!  anything else                                                     ─▶ refused: superseded?
//! ```

use castellan_broker::PeerCert;
use castellan_store::Device;
use sha2::{Digest as _, Sha256};

/// The registry certificate a connection presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BoundCert {
    /// The IDevID issued at the factory.
    Idevid,
    /// The current LDevID issued at onboarding.
    Ldevid,
}

/// Which of `device`'s issued certificates `cert` is, or why it is none of them. `serial` is
/// the presented serial in the registry's spelling.
pub(crate) fn bind(device: &Device, cert: &PeerCert, serial: &str) -> Result<BoundCert, String> {
    let Some(presented) = cert.sha256.as_deref().map(str::to_ascii_lowercase) else {
        return Err(format!(
            "no verified certificate fingerprint for device {}",
            device.id
        ));
    };
    if hex::encode(Sha256::digest(&device.idevid_der)) == presented {
        return Ok(BoundCert::Idevid);
    }
    if device.ldevid_sha256.as_deref() == Some(presented.as_str()) {
        return Ok(BoundCert::Ldevid);
    }
    let issuer = cert.issuer.as_deref().unwrap_or("an unknown issuer");
    let serial_of = |s: &str| crate::authz::normalize_serial(s) == serial;
    if serial_of(&device.idevid_serial) {
        return Err(format!(
            "certificate {serial} from {issuer} carries the serial of device {}'s IDevID but is \
             not the certificate the factory issued (sha256 {presented})",
            device.id
        ));
    }
    if device.ldevid_serial.as_deref().is_some_and(serial_of) {
        return Err(match device.ldevid_sha256 {
            Some(_) => format!(
                "certificate {serial} from {issuer} carries the serial of device {}'s LDevID but \
                 is not the certificate onboarding issued (sha256 {presented})",
                device.id
            ),
            None => format!(
                "device {}'s LDevID was issued before the registry recorded certificate \
                 fingerprints: onboard the device again (with its IDevID) to get a bound LDevID",
                device.id
            ),
        });
    }
    Err(format!(
        "certificate {serial} is neither the IDevID nor the current LDevID of device {} \
         (superseded?)",
        device.id
    ))
}
