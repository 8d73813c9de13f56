//! CA keys in a PKCS#11 token (an HSM, or SoftHSM2 in tests): [`Pkcs11Token`] opens a token by
//! label and logs in; [`Pkcs11Key`] is a [`CaSigner`] whose private key never leaves the token
//! (generated inside it, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`). Signing is `CKM_ECDSA` over a
//! SHA-256 digest computed on the host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest as _, Sha256};

use crate::{CaSigner, PkiError};

/// DER of the named-curve OID prime256v1 (1.2.840.10045.3.1.7), the CKA_EC_PARAMS of a P-256 key.
const P256_EC_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Where Debian's softhsm2 package installs its PKCS#11 module.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn ck(op: &'static str) -> impl FnOnce(CkError) -> PkiError {
    move |e| PkiError::Pkcs11 {
        op,
        detail: e.to_string(),
    }
}

/// One initialised context per module for the whole process: PKCS#11 modules may be
/// initialised once, and finalising one context would break every other user of the module.
fn context(module: &Path) -> Result<Pkcs11, PkiError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(ck("loading the module"))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck("C_Initialize")(e)),
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A logged-in session on a PKCS#11 token, shared by the keys that live in it.
pub struct Pkcs11Token {
    session: Mutex<Session>,
    token_label: String,
}

impl core::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pkcs11Token({:?})", self.token_label)
    }
}

impl Pkcs11Token {
    /// Open the token labelled `token_label` in `module` (a PKCS#11 shared library) and log in
    /// as the user with `user_pin`.
    pub fn open(
        module: &Path,
        token_label: &str,
        user_pin: &str,
    ) -> Result<Arc<Pkcs11Token>, PkiError> {
        let ctx = context(module)?;
        let slot = find_slot(&ctx, token_label)?.ok_or_else(|| PkiError::Pkcs11 {
            op: "finding the token",
            detail: format!("no initialised token labelled {token_label:?}"),
        })?;
        let session = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        match session.login(UserType::User, Some(&AuthPin::from(user_pin))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(ck("C_Login")(e)),
        }
        Ok(Arc::new(Pkcs11Token {
            session: Mutex::new(session),
            token_label: token_label.into(),
        }))
    }

    /// Initialise a new token labelled `token_label` in the first slot that has no initialised
    /// token (SoftHSM2 always offers one), with the given security-officer and user PINs.
    /// For setting up a test token or a fresh SoftHSM2 store; a real HSM is set up with its own
    /// tools.
    pub fn initialize(
        module: &Path,
        token_label: &str,
        so_pin: &str,
        user_pin: &str,
    ) -> Result<(), PkiError> {
        let ctx = context(module)?;
        if find_slot(&ctx, token_label)?.is_some() {
            return Err(PkiError::Pkcs11 {
                op: "C_InitToken",
                detail: format!("a token labelled {token_label:?} already exists"),
            });
        }
        let mut free = None;
        for slot in ctx.get_slots_with_token().map_err(ck("C_GetSlotList"))? {
            let info = ctx.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
            if !info.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| PkiError::Pkcs11 {
            op: "C_InitToken",
            detail: "no free slot for a new token".into(),
        })?;
        let so = AuthPin::from(so_pin);
        ctx.init_token(slot, &so, token_label)
            .map_err(ck("C_InitToken"))?;
        let session = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        session
            .login(UserType::So, Some(&so))
            .map_err(ck("C_Login (SO)"))?;
        session
            .init_pin(&AuthPin::from(user_pin))
            .map_err(ck("C_InitPIN"))?;
        session.logout().map_err(ck("C_Logout"))?;
        Ok(())
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.token_label
    }

    /// The existing P-256 key pair labelled `label`.
    pub fn key(self: &Arc<Self>, label: &str) -> Result<Pkcs11Key, PkiError> {
        let session = self.lock();
        let private = find_one(&session, ObjectClass::PRIVATE_KEY, label)?.ok_or_else(|| {
            PkiError::Pkcs11KeyNotFound {
                label: label.into(),
            }
        })?;
        let public = find_one(&session, ObjectClass::PUBLIC_KEY, label)?.ok_or_else(|| {
            PkiError::Pkcs11KeyNotFound {
                label: format!("{label} (public key)"),
            }
        })?;
        let public_key = read_ec_point(&session, public)?;
        drop(session);
        Ok(Pkcs11Key {
            token: Arc::clone(self),
            label: label.into(),
            private,
            public_key,
        })
    }

    /// Generate a new P-256 key pair labelled `label` inside the token. The private key is
    /// sensitive and not extractable.
    pub fn generate_key(self: &Arc<Self>, label: &str) -> Result<Pkcs11Key, PkiError> {
        let session = self.lock();
        if find_one(&session, ObjectClass::PRIVATE_KEY, label)?.is_some() {
            return Err(PkiError::Pkcs11 {
                op: "C_GenerateKeyPair",
                detail: format!("a key labelled {label:?} already exists"),
            });
        }
        let id = Sha256::digest(label.as_bytes())
            .get(..8)
            .unwrap_or_default()
            .to_vec();
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(P256_EC_PARAMS.to_vec()),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id),
        ];
        let (public, private) = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(ck("C_GenerateKeyPair"))?;
        let public_key = read_ec_point(&session, public)?;
        drop(session);
        Ok(Pkcs11Key {
            token: Arc::clone(self),
            label: label.into(),
            private,
            public_key,
        })
    }

    /// The key labelled `label`, generated first if the token has none.
    pub fn key_or_generate(self: &Arc<Self>, label: &str) -> Result<Pkcs11Key, PkiError> {
        match self.key(label) {
            Err(PkiError::Pkcs11KeyNotFound { .. }) => self.generate_key(label),
            other => other,
        }
    }

    /// Whether the private key labelled `label` is marked sensitive and not extractable.
    pub fn key_is_protected(&self, label: &str) -> Result<bool, PkiError> {
        let session = self.lock();
        let private = find_one(&session, ObjectClass::PRIVATE_KEY, label)?.ok_or_else(|| {
            PkiError::Pkcs11KeyNotFound {
                label: label.into(),
            }
        })?;
        let attrs = session
            .get_attributes(
                private,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .map_err(ck("C_GetAttributeValue"))?;
        let mut sensitive = false;
        let mut extractable = true;
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => sensitive = v,
                Attribute::Extractable(v) => extractable = v,
                _ => {}
            }
        }
        Ok(sensitive && !extractable)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A P-256 private key inside a PKCS#11 token.
pub struct Pkcs11Key {
    token: Arc<Pkcs11Token>,
    label: String,
    private: ObjectHandle,
    public_key: [u8; 65],
}

impl core::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Pkcs11Key({:?} in token {:?})",
            self.label, self.token.token_label
        )
    }
}

impl CaSigner for Pkcs11Key {
    fn public_key(&self) -> [u8; 65] {
        self.public_key
    }

    fn sign(&self, tbs: &[u8]) -> Result<[u8; 64], PkiError> {
        let digest = Sha256::digest(tbs);
        let session = self.token.lock();
        let sig = session
            .sign(&Mechanism::Ecdsa, self.private, &digest)
            .map_err(ck("C_Sign"))?;
        <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| PkiError::Pkcs11 {
            op: "C_Sign",
            detail: format!("expected a 64-byte r||s signature, got {} bytes", sig.len()),
        })
    }

    fn describe(&self) -> String {
        format!(
            "PKCS#11 key {:?} in token {:?}",
            self.label, self.token.token_label
        )
    }
}

fn find_slot(ctx: &Pkcs11, token_label: &str) -> Result<Option<Slot>, PkiError> {
    for slot in ctx
        .get_slots_with_initialized_token()
        .map_err(ck("C_GetSlotList"))?
    {
        let info = ctx.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
        if info.label().trim_end() == token_label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

fn find_one(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Option<ObjectHandle>, PkiError> {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(ck("C_FindObjects"))?;
    if found.len() > 1 {
        return Err(PkiError::Pkcs11 {
            op: "C_FindObjects",
            detail: format!(
                "{} objects labelled {label:?}: the label must be unique",
                found.len()
            ),
        });
    }
    Ok(found.first().copied())
}

/// Read CKA_EC_POINT: a DER OCTET STRING holding the SEC1 point (some modules return the bare
/// point); check that it is a P-256 point.
fn read_ec_point(session: &Session, public: ObjectHandle) -> Result<[u8; 65], PkiError> {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .map_err(ck("C_GetAttributeValue"))?;
    let raw = attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or(PkiError::UnsupportedKey {
            what: "PKCS#11 public key (no CKA_EC_POINT)",
        })?;
    let point = match raw.as_slice() {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        bare => bare,
    };
    castellan_x509::parse_public_key(point).map_err(|_| PkiError::UnsupportedKey {
        what: "PKCS#11 public key",
    })
}
