//! The ROM stage's DICE step: turn the UDS and the verified bootloader's
//! measurement into the bootloader's CDIs, in one call the boot crate can make
//! before it locks the UDS.

use crate::derive::{CDI_SIZE, Cdis, derive_cdis};
use crate::error::DiceError;
use crate::input::{
    Config, HIDDEN_SIZE, INLINE_CONFIG_SIZE, InputValues, Mode, measurement_to_authority_hash,
    measurement_to_code_hash,
};

/// The configuration input the ROM stage uses. It follows the profile's optional
/// convention (bit numbering MSB = 0): byte 0 bit 0 "Verified Boot Enabled" is
/// set, because the ROM stage only derives CDIs for a bootloader it verified;
/// every other byte is zero (no debug port recorded here, default boot source,
/// no version).
pub const ROM_STAGE_CONFIG: [u8; INLINE_CONFIG_SIZE] = {
    let mut config = [0u8; INLINE_CONFIG_SIZE];
    config[0] = 0x80;
    config
};

/// The input values describing the bootloader, as the ROM stage measures it:
///
/// * code = `bootloader_digest` (e.g. the image's SHA-256 from its MCUboot TLV),
///   encoded by [`measurement_to_code_hash`];
/// * config = [`ROM_STAGE_CONFIG`] (inline);
/// * authority = `signer_id` (e.g. SHA-256 of the root public key), encoded the
///   same way; empty means "not verified" (64 zero bytes, per the profile);
/// * mode = `mode`; hidden = zero; no descriptors.
///
/// Fails with [`DiceError::EmptyMeasurement`] if `bootloader_digest` is empty.
pub fn rom_stage_input_values(
    bootloader_digest: &[u8],
    signer_id: &[u8],
    mode: Mode,
) -> Result<InputValues<'static>, DiceError> {
    if bootloader_digest.is_empty() {
        return Err(DiceError::EmptyMeasurement);
    }
    Ok(InputValues {
        code_hash: measurement_to_code_hash(bootloader_digest),
        code_descriptor: &[],
        config: Config::Inline(ROM_STAGE_CONFIG),
        authority_hash: measurement_to_authority_hash(signer_id),
        authority_descriptor: &[],
        mode,
        hidden: [0; HIDDEN_SIZE],
    })
}

/// The bootloader's CDIs: the first DICE layer, with the UDS as both current CDIs
/// and [`rom_stage_input_values`] as the input. The caller locks the UDS right
/// after this returns (and on error).
pub fn rom_stage_cdis(
    uds: &[u8; CDI_SIZE],
    bootloader_digest: &[u8],
    signer_id: &[u8],
    mode: Mode,
) -> Result<Cdis, DiceError> {
    let input = rom_stage_input_values(bootloader_digest, signer_id, mode)?;
    derive_cdis(uds, uds, &input)
}
