//! Schema 2: the attestation public key (IAK) recorded at the factory, on SQLite and PostgreSQL.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{NewDevice, StoreError};

fn new_device(id: &str) -> NewDevice {
    NewDevice {
        id: id.into(),
        serial: id.into(),
        device_class: "sensor-v1".into(),
        tags: vec![],
        idevid_der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        idevid_serial: format!("4{}", id.len()),
        lifecycle: 0x3000,
        reference_measurements: vec![],
        firmware_version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iak_is_registered_with_the_device_and_survives_reopen() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let iak: Vec<u8> = std::iter::once(0x04).chain(1..=64u8).collect();
        s.register_device_with_iak(&new_device("dev-1"), &iak, 10)
            .await
            .unwrap();
        assert_eq!(s.iak_public_key("dev-1").await.unwrap(), Some(iak.clone()));
        // A device registered the old way has none; a missing device is an error.
        s.register_device(&new_device("dev-22"), 10).await.unwrap();
        assert_eq!(s.iak_public_key("dev-22").await.unwrap(), None);
        assert!(matches!(
            s.iak_public_key("nope").await,
            Err(StoreError::NotFound { .. })
        ));
        // The id is taken: nothing of the second registration is written.
        let err = s
            .register_device_with_iak(&new_device("dev-1"), &[0x04; 65], 11)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
        s.set_iak_public_key("dev-22", &[0x04; 65]).await.unwrap();
        let again = t.reopen().await;
        assert_eq!(again.iak_public_key("dev-1").await.unwrap(), Some(iak));
        assert_eq!(
            again.iak_public_key("dev-22").await.unwrap(),
            Some(vec![0x04; 65])
        );
        assert!(matches!(
            again.set_iak_public_key("nope", &[1]).await,
            Err(StoreError::NotFound { .. })
        ));
    })
    .await;
}
