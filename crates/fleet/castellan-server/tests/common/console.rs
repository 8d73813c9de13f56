//! The console's fixtures: operator accounts with passwords, registered devices, and a forged
//! form POST.

use castellan_store::testing::TestStore;
use castellan_store::{NewDevice, Role};

use super::Api;

pub const OPS_PASSWORD: &str = "ops-password-for-tests";
pub const VIEWER_PASSWORD: &str = "viewer-password-for-tests";

pub fn fake_device(n: u32, serial: &str) -> NewDevice {
    NewDevice {
        id: format!("SIM-{n:04}"),
        serial: serial.into(),
        device_class: if n.is_multiple_of(4) {
            "gateway-v2"
        } else {
            "sensor-v1"
        }
        .into(),
        tags: vec![],
        idevid_der: vec![0x30, 0x00],
        idevid_serial: format!("7{n:04x}"),
        lifecycle: 0x3000,
        reference_measurements: vec![],
        firmware_version: Some(
            if n.is_multiple_of(3) {
                "1.1.0"
            } else {
                "1.0.0"
            }
            .into(),
        ),
    }
}

pub async fn accounts(t: &TestStore) {
    for (name, role, pw) in [
        ("ops", Role::Operator, OPS_PASSWORD),
        ("viewer", Role::Auditor, VIEWER_PASSWORD),
        ("locky", Role::Operator, OPS_PASSWORD),
        ("decom", Role::Decommissioner, OPS_PASSWORD),
    ] {
        t.store.create_operator(name, role, 0).await.unwrap();
        let phc = castellan_console::hash_password(pw).unwrap();
        t.store.set_operator_password(name, &phc, 0).await.unwrap();
    }
}

/// A form POST with the session cookie, as a forging page would send it.
pub async fn forged_post(api: &Api, path: &str, session: &str, body: &str) -> (u16, String) {
    let cookie = format!("{}={session}", castellan_console::SESSION_COOKIE);
    let headers = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let (status, _, body) = api
        .request_raw("POST", path, &headers, body.as_bytes().to_vec())
        .await;
    (status, String::from_utf8_lossy(&body).into_owned())
}
