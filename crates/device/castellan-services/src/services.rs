//! [`SecureServices`]: the secure partition's one object. It owns the hardware parts and the
//! state of every service; the TrustZone call gate holds it in the secure world and turns each
//! non-secure call into one method call and one `i32` status ([`crate::status_of`]).
//!
//! ```text
//!  NSC veneer ─▶ SecureServices ─┬─ its_*            trusted storage (client namespace)
//!                                ├─ generate_key …   crypto (keys in RAM / storage "crypto")
//!                                ├─ attest_token     initial attestation (IAK from CDI_Seal)
//!                                ├─ fwu_*            firmware update over the bootloader's slots
//!                                ├─ update_*         SUIT update client (manifests in the secure world)
//!                                └─ lifecycle_*      PSA lifecycle (OTP), decommission
//! ```

use castellan_attest::Lifecycle;
use castellan_dice::Cdis;
use castellan_hal::{Flash, MonotonicCounter, RandomSource};
use zeroize::{Zeroize, Zeroizing};

use castellan_slots::BootReport;

use crate::attest::{Attestation, BootRecordEntry, INSTANCE_ID_LEN, MAX_BOOT_RECORD_ENTRIES};
use crate::crypto::{KeyStore, P256_PUBLIC_KEY_LEN};
use crate::fwu::{Fwu, FwuConfig, LastBoot};
use crate::its::{Its, ItsConfig, ItsFlags, ItsInfo, ItsStatus};
use crate::update::{UpdateClient, UpdateConfig};
use crate::{LIFECYCLE_COUNTER, Platform, ServiceError, kdf, lifecycle};

/// What the secure services need to know about the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicesConfig {
    /// Where trusted storage and its key live, and its replay counters.
    pub its: ItsConfig,
    /// Counter id of the lifecycle thermometer.
    pub lifecycle_counter: usize,
    /// The PSA RoT implementation id reported in tokens (names the firmware and hardware class).
    pub implementation_id: [u8; 32],
    /// PSA Certified reference (EAN-13+5) reported in tokens, if certified.
    pub certification_reference: Option<&'static str>,
    /// Where a relying party finds a verifier (usually a URL), reported in tokens.
    pub verification_service: Option<&'static str>,
    /// The firmware update service's slots and key (`None`: no update service).
    pub fwu: Option<FwuConfig>,
    /// The update client's vendor and class identifiers (`None`: no update client; it also
    /// needs `fwu`).
    pub update: Option<UpdateConfig>,
}

impl ServicesConfig {
    /// Trusted storage per `its`, lifecycle at [`LIFECYCLE_COUNTER`], no certification
    /// reference or verification service.
    pub const fn new(its: ItsConfig, implementation_id: [u8; 32]) -> Self {
        ServicesConfig {
            its,
            lifecycle_counter: LIFECYCLE_COUNTER,
            implementation_id,
            certification_reference: None,
            verification_service: None,
            fwu: None,
            update: None,
        }
    }

    /// The same configuration with the firmware update service of `fwu`.
    pub const fn with_fwu(self, fwu: FwuConfig) -> Self {
        ServicesConfig {
            fwu: Some(fwu),
            ..self
        }
    }

    /// The same configuration with the SUIT update client for the identifiers of `update`
    /// (the firmware update service must be configured too).
    pub const fn with_update(self, update: UpdateConfig) -> Self {
        ServicesConfig {
            update: Some(update),
            ..self
        }
    }
}

/// The secure partition: trusted storage, crypto, attestation and lifecycle over one platform.
pub struct SecureServices<F, C, R> {
    pub(crate) platform: Platform<F, C, R>,
    pub(crate) config: ServicesConfig,
    /// Mounted trusted storage, or why it is not (rollback, corruption, decommissioned).
    pub(crate) its: Result<Its, ServiceError>,
    pub(crate) keys: KeyStore,
    pub(crate) attest: Attestation,
    cdi_seal: Zeroizing<[u8; kdf::KEY_LEN]>,
    pub(crate) decommissioned: bool,
    /// The update service, when configured.
    pub(crate) fwu: Option<Fwu>,
    /// The update client's RAM state.
    pub(crate) update: UpdateClient,
    /// The edge detector, once the platform installs it.
    #[cfg(feature = "detect")]
    pub(crate) detect: Option<crate::detect::EdgeDetector>,
}

impl<F: Flash, C: MonotonicCounter, R: RandomSource> SecureServices<F, C, R> {
    /// Starts the services with the CDIs the boot chain handed over and its boot record.
    ///
    /// Derives the attestation key from `CDI_Seal`, draws the boot seed, reads the
    /// lifecycle and mounts trusted storage with `CDI_Seal` (formatting a blank device). A
    /// storage that does not mount (rollback, corruption) does not stop the other services:
    /// every storage call then returns that error, and persistent keys are unavailable. Only a
    /// power loss or a bad boot record fails here.
    pub fn new(
        platform: Platform<F, C, R>,
        config: ServicesConfig,
        cdis: &Cdis,
        boot_record: &[BootRecordEntry],
    ) -> Result<Self, ServiceError> {
        Self::start(platform, config, cdis, boot_record, LastBoot::Nothing)
    }

    /// Starts the services from what `castellan-boot` reports: the application's CDIs, the
    /// boot record (SHA-256 measurements: "BL", then the application) and what happened to a
    /// pending update (for the update service's state).
    pub fn from_boot_report(
        platform: Platform<F, C, R>,
        config: ServicesConfig,
        report: &BootReport,
    ) -> Result<Self, ServiceError> {
        let mut record = [BootRecordEntry::EMPTY; MAX_BOOT_RECORD_ENTRIES];
        let mut count = 0;
        for (dst, m) in record.iter_mut().zip(report.boot_record.iter()) {
            *dst = BootRecordEntry::from_measurement(m)?;
            count += 1;
        }
        let record = record.get(..count).unwrap_or_default();
        let last = LastBoot::from_report(report);
        Self::start(platform, config, &report.cdis, record, last)
    }

    /// [`SecureServices::new`] with the bootloader's verdict on a pending update.
    pub fn start(
        mut platform: Platform<F, C, R>,
        config: ServicesConfig,
        cdis: &Cdis,
        boot_record: &[BootRecordEntry],
        last_boot: LastBoot,
    ) -> Result<Self, ServiceError> {
        let attest = Attestation::new(
            cdis.seal(),
            config.implementation_id,
            boot_record,
            config.certification_reference,
            config.verification_service,
            &mut platform,
        )?;
        let state = lifecycle::read(&platform.counter, config.lifecycle_counter)?;
        let decommissioned = state == Lifecycle::Decommissioned;
        let its = if decommissioned {
            Err(DECOMMISSIONED)
        } else {
            Its::mount(config.its, cdis.seal(), &mut platform)
        };
        if let Err(e) = &its {
            if e.is_power_loss() {
                return Err(*e);
            }
        }
        let fwu = match config.fwu {
            Some(c) => Some(Fwu::new(c, last_boot, &mut platform.flash)?),
            None => None,
        };
        Ok(SecureServices {
            platform,
            config,
            its,
            keys: KeyStore::new(),
            attest,
            cdi_seal: Zeroizing::new(*cdis.seal()),
            decommissioned,
            fwu,
            update: UpdateClient::default(),
            #[cfg(feature = "detect")]
            detect: None,
        })
    }

    /// The hardware parts (read-only).
    pub fn platform(&self) -> &Platform<F, C, R> {
        &self.platform
    }

    /// The hardware parts, for code that shares them with the services (the update client,
    /// the simulator harness). Changing trusted-storage flash behind the services' back is
    /// detected as corruption, never trusted.
    pub fn platform_mut(&mut self) -> &mut Platform<F, C, R> {
        &mut self.platform
    }

    /// Stops the services and gives the hardware back (secrets are wiped on drop).
    pub fn into_platform(self) -> Platform<F, C, R> {
        self.platform
    }

    /// The configuration.
    pub fn config(&self) -> &ServicesConfig {
        &self.config
    }

    // --- trusted storage ----------------------------------------------------------------

    /// `psa_its_set` (see [`Its::set`]).
    pub fn its_set(&mut self, uid: u64, data: &[u8], flags: ItsFlags) -> Result<(), ServiceError> {
        let its = self.its.as_mut().map_err(|e| *e)?;
        its.set(&mut self.platform, uid, data, flags)
    }

    /// `psa_its_get` (see [`Its::get`]).
    pub fn its_get(
        &mut self,
        uid: u64,
        offset: usize,
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        let its = self.its.as_mut().map_err(|e| *e)?;
        its.get(&mut self.platform, uid, offset, out)
    }

    /// `psa_its_get_info` (see [`Its::get_info`]).
    pub fn its_get_info(&mut self, uid: u64) -> Result<ItsInfo, ServiceError> {
        let its = self.its.as_mut().map_err(|e| *e)?;
        its.get_info(&mut self.platform, uid)
    }

    /// `psa_its_remove` (see [`Its::remove`]).
    pub fn its_remove(&mut self, uid: u64) -> Result<(), ServiceError> {
        let its = self.its.as_mut().map_err(|e| *e)?;
        its.remove(&mut self.platform, uid)
    }

    /// How full trusted storage is, or why it is not mounted.
    pub fn its_status(&self) -> Result<ItsStatus, ServiceError> {
        self.its.as_ref().map(Its::status).map_err(|e| *e)
    }

    /// Formats trusted storage (every asset and persistent key is lost). Allowed only before
    /// the device is secured (assembly-and-test, PSA RoT provisioning): in the field, a wipe is
    /// a decommission.
    pub fn its_format(&mut self) -> Result<(), ServiceError> {
        match self.lifecycle()? {
            Lifecycle::AssemblyAndTest | Lifecycle::PsaRotProvisioning => {}
            _ => {
                return Err(ServiceError::BadState(
                    "trusted storage can be formatted only before the device is secured",
                ));
            }
        }
        self.its = Err(ServiceError::BadState("trusted storage is being formatted"));
        self.keys.clear();
        let its = Its::format(self.config.its, &self.cdi_seal, &mut self.platform)?;
        self.its = Ok(its);
        Ok(())
    }

    // --- attestation --------------------------------------------------------------------

    /// `psa_initial_attest_get_token`: a signed token answering `nonce` (32, 48 or 64 bytes)
    /// for the caller `client_id` (negative: non-secure), written into `out`; returns its
    /// length. Works in every lifecycle state, decommissioned included.
    pub fn attest_token(
        &mut self,
        nonce: &[u8],
        client_id: i32,
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        let raw = self.lifecycle()?.raw();
        self.attest
            .token(&mut self.platform, nonce, raw, client_id, out)
    }

    /// `psa_initial_attest_get_token_size`: the token length for a nonce of `nonce_len` bytes.
    pub fn attest_token_size(&self, nonce_len: usize) -> Result<usize, ServiceError> {
        let raw = self.lifecycle()?.raw();
        self.attest.token_size(nonce_len, raw)
    }

    /// The attestation public key (SEC1 uncompressed): what the registry records at
    /// provisioning to verify this device's tokens.
    pub fn attestation_public_key(&self) -> [u8; P256_PUBLIC_KEY_LEN] {
        self.attest.public_key()
    }

    /// The instance id claim: `0x01 ‖ SHA-256(attestation public key)`.
    pub fn instance_id(&self) -> [u8; INSTANCE_ID_LEN] {
        self.attest.instance_id()
    }

    // --- lifecycle ----------------------------------------------------------------------

    /// The current PSA lifecycle state (read from OTP).
    pub fn lifecycle(&self) -> Result<Lifecycle, ServiceError> {
        lifecycle::read(&self.platform.counter, self.config.lifecycle_counter)
    }

    /// Moves the lifecycle one step forward (assembly-and-test → PSA RoT provisioning →
    /// secured), or to decommissioned from any state ([`SecureServices::decommission`]).
    /// Anything else is [`ServiceError::BadState`].
    pub fn lifecycle_transition(&mut self, to: Lifecycle) -> Result<(), ServiceError> {
        if to == Lifecycle::Decommissioned {
            return self.decommission();
        }
        let value = lifecycle::check_transition(self.lifecycle()?, to)?;
        self.platform
            .counter
            .increment_to(self.config.lifecycle_counter, value)?;
        Ok(())
    }

    /// Decommissions the device: crypto-erases it, then blows the lifecycle to decommissioned.
    ///
    /// 1. every volatile key is wiped and trusted storage is unmounted (its root key wiped);
    /// 2. the storage key area is erased: from here on no stored asset or persistent key can
    ///    be decrypted, even by code that derives `CDI_Seal` again;
    /// 3. both storage banks are erased (no ciphertext, no `NO_CONFIDENTIALITY` plaintext);
    /// 4. the lifecycle fuse goes to decommissioned (the ROM stage then boots nothing).
    ///
    /// Erasing before the fuse means a power cut can leave a wiped device that still boots
    /// (the command is repeated), never a device that no longer boots with its data intact.
    /// The attestation key lives in RAM only, so a final token
    /// ([`SecureServices::attest_token`]) still reports the decommissioned state.
    pub fn decommission(&mut self) -> Result<(), ServiceError> {
        lifecycle::check_transition(self.lifecycle()?, Lifecycle::Decommissioned)?;
        self.keys.clear();
        self.its = Err(DECOMMISSIONED);
        self.decommissioned = true;
        Its::crypto_erase(&self.config.its, &mut self.platform.flash)?;
        self.cdi_seal.zeroize();
        let value = lifecycle::thermometer(Lifecycle::Decommissioned).unwrap_or(3);
        self.platform
            .counter
            .increment_to(self.config.lifecycle_counter, value)?;
        Ok(())
    }

    /// Refuses key operations on a decommissioned device.
    pub(crate) fn usable(&self) -> Result<(), ServiceError> {
        if self.decommissioned {
            Err(DECOMMISSIONED)
        } else {
            Ok(())
        }
    }
}

/// The error every storage and key call returns once the device is decommissioned.
const DECOMMISSIONED: ServiceError = ServiceError::BadState("the device is decommissioned");
