//! The attestation public key (IAK) the factory records with a device: what its onboarding and
//! post-update tokens must verify with.

use crate::registry::{finish, insert_device};
use crate::{NewDevice, Store, StoreError};

/// The attestation public key (IAK) recorded at the factory (schema 2).
impl Store {
    /// Record a device provisioned in the factory together with its attestation public key
    /// (SEC1), in one transaction: a device is never registered without the key its onboarding
    /// tokens must verify with. Fails with [`StoreError::AlreadyExists`] when its id or serial
    /// is taken.
    pub async fn register_device_with_iak(
        &self,
        d: &NewDevice,
        iak_public_key: &[u8],
        at: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            insert_device(&mut s, d, at).await?;
            s.exec(
                "UPDATE devices SET iak_public_key = $2 WHERE id = $1",
                vec![d.id.as_str().into(), iak_public_key.into()],
            )
            .await
            .map(|_| ())
        }
        .await;
        finish(&mut s, r).await.map_err(|e| match e {
            StoreError::Constraint { .. } => StoreError::AlreadyExists {
                what: "device",
                key: d.id.clone(),
            },
            other => other,
        })
    }

    /// Replace the attestation public key of a device.
    pub async fn set_iak_public_key(
        &self,
        id: &str,
        iak_public_key: &[u8],
    ) -> Result<(), StoreError> {
        self.update_device(
            "UPDATE devices SET iak_public_key = $2 WHERE id = $1",
            id,
            iak_public_key.into(),
        )
        .await
    }

    /// The attestation public key recorded for a device: `Ok(None)` when the device exists
    /// without one, [`StoreError::NotFound`] when there is no such device.
    pub async fn iak_public_key(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT iak_public_key FROM devices WHERE id = $1",
                vec![id.into()],
            )
            .await?;
        match row {
            None => Err(StoreError::NotFound {
                what: "device",
                key: id.into(),
            }),
            Some(r) => r.opt_blob(0),
        }
    }
}
