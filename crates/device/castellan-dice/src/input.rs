//! The DICE input values of the next layer (code, configuration, authority, mode,
//! hidden) as the Open Profile for DICE defines them, and the encoding of an
//! image digest as a 64-byte input value.

use core::fmt;

use sha2::{Digest, Sha512};

/// Size in bytes of the code and authority input values (a SHA-512 output).
pub const HASH_SIZE: usize = 64;
/// Size in bytes of an inline configuration input value.
pub const INLINE_CONFIG_SIZE: usize = 64;
/// Size in bytes of the hidden input value.
pub const HIDDEN_SIZE: usize = 64;

/// The mode decision input (one byte), per the Open Profile for DICE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Mode {
    /// 0: at least one security mechanism is not configured (also the catch-all
    /// for anything that fits no other mode).
    #[default]
    NotConfigured = 0,
    /// 1: operating normally under a secure configuration.
    Normal = 1,
    /// 2: at least one condition of Normal mode is not met (e.g. debug enabled).
    Debug = 2,
    /// 3: maintenance / recovery (spec v2.6 names this value "Recovery").
    Maintenance = 3,
}

impl Mode {
    /// The byte that enters the CDI derivations.
    pub const fn to_byte(self) -> u8 {
        self as u8
    }

    /// Decodes a mode byte. Values the profile does not define are treated as
    /// [`Mode::NotConfigured`], as the specification requires.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            1 => Mode::Normal,
            2 => Mode::Debug,
            3 => Mode::Maintenance,
            _ => Mode::NotConfigured,
        }
    }
}

/// The configuration input: either the 64-byte value itself, or a descriptor
/// whose SHA-512 hash is the input value (open-dice `kDiceConfigTypeInline` /
/// `kDiceConfigTypeDescriptor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config<'a> {
    /// The exact 64-byte configuration input value.
    Inline([u8; INLINE_CONFIG_SIZE]),
    /// Configuration data of any length; the input value is `SHA-512(descriptor)`.
    Descriptor(&'a [u8]),
}

impl Config<'_> {
    /// The 64-byte configuration input value that enters CDI_Attest.
    pub fn input_value(&self) -> [u8; INLINE_CONFIG_SIZE] {
        match self {
            Config::Inline(value) => *value,
            Config::Descriptor(descriptor) => Sha512::digest(descriptor).into(),
        }
    }
}

/// Everything that describes the next layer (the code control passes to).
///
/// The descriptors appear only in certificates: per the profile they are not
/// inputs of the CDI derivations (the hashes they describe are). `hidden` never
/// appears in a certificate and may carry a secret, so `Debug` does not print it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InputValues<'a> {
    /// Hash (or similar representation) of the next layer's code.
    pub code_hash: [u8; HASH_SIZE],
    /// Optional description of the code, certificate-only. Empty if unused.
    pub code_descriptor: &'a [u8],
    /// Security-relevant configuration.
    pub config: Config<'a>,
    /// Hash of the verified-boot authority (e.g. of the signer's public key);
    /// all zero if the code is not verified.
    pub authority_hash: [u8; HASH_SIZE],
    /// Optional description of the authority, certificate-only. Empty if unused.
    pub authority_descriptor: &'a [u8],
    /// The mode decision.
    pub mode: Mode,
    /// Extra input that never appears in a certificate; all zero if unused.
    pub hidden: [u8; HIDDEN_SIZE],
}

impl InputValues<'_> {
    /// All-zero input values (open-dice's `DiceInputValues input_values = {}`):
    /// zero hashes, inline all-zero config, no descriptors, mode Not Configured.
    pub const fn zeroed() -> Self {
        InputValues {
            code_hash: [0; HASH_SIZE],
            code_descriptor: &[],
            config: Config::Inline([0; INLINE_CONFIG_SIZE]),
            authority_hash: [0; HASH_SIZE],
            authority_descriptor: &[],
            mode: Mode::NotConfigured,
            hidden: [0; HIDDEN_SIZE],
        }
    }
}

impl Default for InputValues<'_> {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl fmt::Debug for InputValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputValues")
            .field("code_hash", &Hex(&self.code_hash))
            .field("code_descriptor_len", &self.code_descriptor.len())
            .field("config", &self.config)
            .field("authority_hash", &Hex(&self.authority_hash))
            .field("authority_descriptor_len", &self.authority_descriptor.len())
            .field("mode", &self.mode)
            .field("hidden", &"<redacted>")
            .finish()
    }
}

/// Encodes an image or key digest as a 64-byte DICE input value.
///
/// Choice (documented for verifiers): a digest of at most 64 bytes is copied
/// verbatim into the first bytes and the rest is zero; a SHA-256 image digest
/// therefore appears unchanged at the start of the certificate's `codeHash`, as
/// the profile recommends ("using the same hash [verified boot checks] as input
/// to DICE"). A longer input is replaced by its SHA-512 hash. An empty digest
/// gives 64 zero bytes.
pub fn measurement_to_code_hash(digest: &[u8]) -> [u8; HASH_SIZE] {
    let mut out = [0u8; HASH_SIZE];
    match out.get_mut(..digest.len()) {
        Some(prefix) => prefix.copy_from_slice(digest),
        None => out = Sha512::digest(digest).into(),
    }
    out
}

/// Encodes a signer identity (e.g. the SHA-256 hash of the verified-boot public
/// key, as MCUboot's key-hash TLV carries it) as the authority input value, with
/// the same encoding as [`measurement_to_code_hash`].
pub fn measurement_to_authority_hash(signer_id: &[u8]) -> [u8; HASH_SIZE] {
    measurement_to_code_hash(signer_id)
}

/// Prints bytes as lower-case hex (for public values only).
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}
