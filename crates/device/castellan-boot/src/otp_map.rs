//! The OTP map the boot stages own: key hashes, the PSA lifecycle and the anti-rollback
//! counters, with the provisioning operations that program them.
//!
//! ```text
//!  words   region  content                                         written by      locked
//!  0..8    0       SHA-256 of the root key's SPKI (ROM trust)      provisioning    entering Secured
//!  8..16   1       SHA-256 of the application key's SPKI, or zero  provisioning    entering Secured
//!                  (zero: application images use the root key)
//!  16      2       lifecycle, thermometer: 0 bits A&T, 1 PRoT       lifecycle       never
//!                  provisioning, 2 secured, 3+ decommissioned       transitions
//!  24..28  3       anti-rollback counter 0: application images      bootloader      never
//!  28..32  3       anti-rollback counter 1: the bootloader image    ROM stage       never
//! ```
//!
//! Fuse bits only go from 0 to 1, so the lifecycle and the counters are thermometer codes read
//! as "highest set bit + 1" ([`castellan_hal::OtpCounter`]): a torn program can never move them
//! back, and a key hash region is locked for good when the device is secured, so that nobody can
//! set more bits in it (an unlocked all-zero application-key region would let anyone program a
//! key of their own).

use castellan_hal::{MonotonicCounter, OtpCounter, OtpFuses};

use castellan_slots::BootError;
use castellan_slots::Lifecycle;

/// First word of the root-key hash (lock region 0).
pub const ROOT_KEY_HASH_WORD: usize = 0;
/// First word of the application-key hash (lock region 1).
pub const APP_KEY_HASH_WORD: usize = 8;
/// The lifecycle word.
pub const LIFECYCLE_WORD: usize = 16;
/// First word of the anti-rollback counters.
pub const COUNTER_FIRST_WORD: usize = 24;
/// Words per anti-rollback counter (4 words: values 0..=128).
pub const COUNTER_WORDS: usize = 4;
/// OTP words the map needs.
pub const OTP_WORDS_NEEDED: usize = 32;
/// Words per key region (the map assumes lock regions that divide it).
const KEY_REGION_WORDS: usize = 8;

/// Which anti-rollback counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterId {
    /// The application (primary slot) images: raised when an image is confirmed.
    Application,
    /// The bootloader image: raised by the ROM stage when it boots a newer bootloader.
    Bootloader,
}

impl CounterId {
    const fn index(self) -> usize {
        match self {
            CounterId::Application => 0,
            CounterId::Bootloader => 1,
        }
    }
}

/// Checks that `otp` can hold the map: enough words, and lock regions that do not mix the key
/// hashes with the lifecycle or counters.
pub fn check_otp<O: OtpFuses + ?Sized>(otp: &O) -> Result<(), BootError> {
    if otp.words() < OTP_WORDS_NEEDED {
        return Err(BootError::Layout("the OTP bank needs at least 32 words"));
    }
    let rw = otp.region_words();
    if rw == 0 || KEY_REGION_WORDS % rw != 0 {
        return Err(BootError::Layout(
            "OTP lock regions must divide the 8-word key regions",
        ));
    }
    Ok(())
}

/// The lifecycle state in OTP.
pub fn read_lifecycle<O: OtpFuses>(otp: &mut O) -> Result<Lifecycle, BootError> {
    let c = OtpCounter::new(&mut *otp, LIFECYCLE_WORD, 1, 1)?;
    Ok(Lifecycle::from_thermometer(c.read(0)?))
}

/// Moves the lifecycle forward to `to` (never back: a lower state is refused with
/// [`castellan_hal::HalError::Rollback`]). Entering [`Lifecycle::Secured`] needs a root-key
/// hash and first locks both key regions; decommissioning is possible from any state.
pub fn advance_lifecycle<O: OtpFuses>(otp: &mut O, to: Lifecycle) -> Result<(), BootError> {
    check_otp(otp)?;
    if to == Lifecycle::Secured && read_lifecycle(otp)? < Lifecycle::Secured {
        if read_root_key_hash(otp)?.is_none() {
            return Err(BootError::RootKeyNotProvisioned {
                lifecycle: read_lifecycle(otp)?,
            });
        }
        lock_key_regions(otp)?;
    }
    let mut c = OtpCounter::new(&mut *otp, LIFECYCLE_WORD, 1, 1)?;
    c.increment_to(0, to.thermometer())?;
    Ok(())
}

/// Programs the root-key hash (SHA-256 of the DER SPKI of the key the ROM trusts).
pub fn program_root_key_hash<O: OtpFuses>(otp: &mut O, hash: &[u8; 32]) -> Result<(), BootError> {
    check_otp(otp)?;
    otp.program_bytes(ROOT_KEY_HASH_WORD, hash)?;
    Ok(())
}

/// Programs the application-key hash (SHA-256 of the DER SPKI of the key that signs primary
/// and secondary slot images; without it, those are verified with the root key).
pub fn program_app_key_hash<O: OtpFuses>(otp: &mut O, hash: &[u8; 32]) -> Result<(), BootError> {
    check_otp(otp)?;
    otp.program_bytes(APP_KEY_HASH_WORD, hash)?;
    Ok(())
}

/// Locks the fuse regions of both key hashes for good.
pub fn lock_key_regions<O: OtpFuses>(otp: &mut O) -> Result<(), BootError> {
    let rw = otp.region_words().max(1);
    for word in (ROOT_KEY_HASH_WORD..APP_KEY_HASH_WORD + KEY_REGION_WORDS).step_by(rw) {
        otp.lock(word / rw)?;
    }
    Ok(())
}

/// True when both key regions are locked.
pub fn key_regions_locked<O: OtpFuses>(otp: &O) -> Result<bool, BootError> {
    let rw = otp.region_words().max(1);
    for word in (ROOT_KEY_HASH_WORD..APP_KEY_HASH_WORD + KEY_REGION_WORDS).step_by(rw) {
        if !otp.is_locked(word / rw)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The root-key hash, or `None` while the fuses are blank.
pub fn read_root_key_hash<O: OtpFuses>(otp: &O) -> Result<Option<[u8; 32]>, BootError> {
    read_hash(otp, ROOT_KEY_HASH_WORD)
}

/// The application-key hash, or `None` while the fuses are blank.
pub fn read_app_key_hash<O: OtpFuses>(otp: &O) -> Result<Option<[u8; 32]>, BootError> {
    read_hash(otp, APP_KEY_HASH_WORD)
}

fn read_hash<O: OtpFuses>(otp: &O, word: usize) -> Result<Option<[u8; 32]>, BootError> {
    let mut h = [0u8; 32];
    otp.read_bytes(word, &mut h)?;
    Ok(if h.iter().all(|b| *b == 0) {
        None
    } else {
        Some(h)
    })
}

fn counters<O: OtpFuses>(otp: O) -> Result<OtpCounter<O>, BootError> {
    Ok(OtpCounter::new(otp, COUNTER_FIRST_WORD, COUNTER_WORDS, 2)?)
}

/// The value of an anti-rollback counter.
pub fn read_security_counter<O: OtpFuses>(otp: &mut O, id: CounterId) -> Result<u32, BootError> {
    Ok(counters(&mut *otp)?.read(id.index())?)
}

/// Largest value an anti-rollback counter can hold.
pub fn security_counter_max<O: OtpFuses>(otp: &mut O) -> Result<u32, BootError> {
    Ok(counters(&mut *otp)?.max_value())
}

/// Raises an anti-rollback counter to `value` (a lower value is refused with
/// [`castellan_hal::HalError::Rollback`]: the counter never goes down).
pub fn raise_security_counter<O: OtpFuses>(
    otp: &mut O,
    id: CounterId,
    value: u32,
) -> Result<(), BootError> {
    counters(&mut *otp)?.increment_to(id.index(), value)?;
    Ok(())
}
