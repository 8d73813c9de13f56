//! Behaviour of the derivations: which inputs each CDI depends on, the ROM-stage
//! helper, the digest encoding, layering, and that secrets never reach `Debug`.

use castellan_dice::{
    CDI_SIZE, Cdis, Config, DiceError, HASH_SIZE, InputValues, Mode, PrivateKeySeed,
    ROM_STAGE_CONFIG, derive_attestation_keypair_seed, derive_cdi_id, derive_cdis, ed25519_cdi_id,
    ed25519_public_key, measurement_to_authority_hash, measurement_to_code_hash, rom_stage_cdis,
    rom_stage_input_values,
};
use sha2::{Digest, Sha512};
use zeroize::ZeroizeOnDrop;

const UDS: [u8; CDI_SIZE] = [0x5a; CDI_SIZE];
const BOOTLOADER_SHA256: [u8; 32] = [0x11; 32];
const ROOT_KEY_HASH: [u8; 32] = [0x22; 32];

fn base_input() -> InputValues<'static> {
    InputValues {
        code_hash: [0x01; HASH_SIZE],
        code_descriptor: b"bootloader v1.2.3",
        config: Config::Inline([0x02; 64]),
        authority_hash: [0x03; HASH_SIZE],
        authority_descriptor: b"root key 0",
        mode: Mode::Normal,
        hidden: [0x04; 64],
    }
}

fn derive(input: &InputValues<'_>) -> Cdis {
    derive_cdis(&UDS, &UDS, input).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every variation of a single CDI input value, with a name for failure messages.
fn single_input_changes() -> Vec<(&'static str, InputValues<'static>)> {
    let base = base_input();
    let mut changes = Vec::new();
    let mut flip = |name, f: &dyn Fn(&mut InputValues<'static>)| {
        let mut changed = base;
        f(&mut changed);
        changes.push((name, changed));
    };
    flip("code_hash", &|i| i.code_hash[63] ^= 1);
    flip("inline config", &|i| {
        i.config = Config::Inline([0x02 ^ 0x80; 64])
    });
    flip("config descriptor", &|i| {
        i.config = Config::Descriptor(b"cfg")
    });
    flip("authority_hash", &|i| i.authority_hash[0] ^= 1);
    flip("mode NotConfigured", &|i| i.mode = Mode::NotConfigured);
    flip("mode Debug", &|i| i.mode = Mode::Debug);
    flip("mode Maintenance", &|i| i.mode = Mode::Maintenance);
    flip("hidden", &|i| i.hidden[31] ^= 1);
    changes
}

#[test]
fn cdi_attest_changes_with_every_input_value() {
    let base = derive(&base_input());
    for (name, input) in single_input_changes() {
        assert_ne!(derive(&input).attest(), base.attest(), "{name}");
    }
    // And with the current CDI_Attest (the UDS for the first layer).
    let other = derive_cdis(&[0x5b; 32], &UDS, &base_input()).unwrap();
    assert_ne!(other.attest(), base.attest());
}

#[test]
fn cdi_seal_is_stable_across_code_and_config_updates() {
    // Sealing must survive an update signed by the same authority: new code hash,
    // new configuration (inline or descriptor) -> same CDI_Seal.
    let base = derive(&base_input());
    let mut update = base_input();
    update.code_hash = [0xee; HASH_SIZE];
    update.config = Config::Descriptor(b"new configuration, version 2");
    let updated = derive(&update);
    assert_ne!(updated.attest(), base.attest());
    assert_eq!(updated.seal(), base.seal());
}

#[test]
fn cdi_seal_changes_with_authority_mode_hidden_and_current_seal() {
    let base = derive(&base_input());
    for (name, input) in single_input_changes() {
        let expect_change = !matches!(name, "code_hash" | "inline config" | "config descriptor");
        assert_eq!(
            derive(&input).seal() != base.seal(),
            expect_change,
            "{name}"
        );
    }
    let other = derive_cdis(&UDS, &[0x5b; 32], &base_input()).unwrap();
    assert_ne!(other.seal(), base.seal());
    assert_eq!(other.attest(), base.attest());
}

#[test]
fn descriptors_are_certificate_only_and_do_not_enter_the_cdis() {
    // As in the profile and open-dice: the descriptors describe the hashes for a
    // verifier; only the hashes are CDI inputs.
    let base = derive(&base_input());
    let mut input = base_input();
    input.code_descriptor = b"something else";
    input.authority_descriptor = &[];
    let other = derive(&input);
    assert_eq!(other.attest(), base.attest());
    assert_eq!(other.seal(), base.seal());
}

#[test]
fn config_descriptor_is_hashed_with_sha512() {
    let descriptor = b"verified boot on, debug off";
    let hashed: [u8; 64] = Sha512::digest(descriptor).into();
    assert_eq!(Config::Descriptor(descriptor).input_value(), hashed);
    let mut inline = base_input();
    inline.config = Config::Inline(hashed);
    let mut described = base_input();
    described.config = Config::Descriptor(descriptor);
    assert_eq!(derive(&inline).attest(), derive(&described).attest());
}

#[test]
fn attack_debug_mode_cannot_unseal_normal_mode_secrets() {
    let normal = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Normal).unwrap();
    let debug = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Debug).unwrap();
    assert_ne!(debug.seal(), normal.seal());
    assert_ne!(debug.attest(), normal.attest());
}

#[test]
fn attack_bootloader_from_another_signer_gets_another_seal() {
    let ours = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Normal).unwrap();
    let theirs = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &[0x23; 32], Mode::Normal).unwrap();
    assert_ne!(theirs.seal(), ours.seal());
    assert_ne!(theirs.attest(), ours.attest());
}

#[test]
fn attack_modified_bootloader_changes_attestation_identity_but_keeps_seal() {
    let good = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Normal).unwrap();
    let mut digest = BOOTLOADER_SHA256;
    digest[0] ^= 1;
    let modified = rom_stage_cdis(&UDS, &digest, &ROOT_KEY_HASH, Mode::Normal).unwrap();
    // A different image cannot claim the good image's CDI key or ID ...
    assert_ne!(
        ed25519_public_key(modified.attest()).unwrap(),
        ed25519_public_key(good.attest()).unwrap()
    );
    assert_ne!(
        ed25519_cdi_id(modified.attest()).unwrap(),
        ed25519_cdi_id(good.attest()).unwrap()
    );
    // ... while an image by the same signer keeps access to sealed data.
    assert_eq!(modified.seal(), good.seal());
}

#[test]
fn attack_other_device_uds_gives_unrelated_cdis() {
    let a = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Normal).unwrap();
    let b = rom_stage_cdis(
        &[0x5b; 32],
        &BOOTLOADER_SHA256,
        &ROOT_KEY_HASH,
        Mode::Normal,
    )
    .unwrap();
    assert_ne!(a.attest(), b.attest());
    assert_ne!(a.seal(), b.seal());
}

#[test]
fn rom_stage_is_the_first_dice_layer_with_the_documented_inputs() {
    let cdis = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Normal).unwrap();
    let mut code_hash = [0u8; 64];
    code_hash[..32].copy_from_slice(&BOOTLOADER_SHA256);
    let mut authority_hash = [0u8; 64];
    authority_hash[..32].copy_from_slice(&ROOT_KEY_HASH);
    let mut config = [0u8; 64];
    config[0] = 0x80; // profile convention: "Verified Boot Enabled"
    assert_eq!(ROM_STAGE_CONFIG, config);
    let expected = InputValues {
        code_hash,
        config: Config::Inline(config),
        authority_hash,
        mode: Mode::Normal,
        ..InputValues::zeroed()
    };
    assert_eq!(
        rom_stage_input_values(&BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Normal).unwrap(),
        expected
    );
    let direct = derive_cdis(&UDS, &UDS, &expected).unwrap();
    assert_eq!(cdis.attest(), direct.attest());
    assert_eq!(cdis.seal(), direct.seal());
}

#[test]
fn rom_stage_refuses_an_empty_measurement() {
    let err = rom_stage_cdis(&UDS, &[], &ROOT_KEY_HASH, Mode::Normal).unwrap_err();
    assert_eq!(err, DiceError::EmptyMeasurement);
    assert!(err.to_string().contains("measurement is empty"), "{err}");
}

#[test]
fn unverified_rom_stage_uses_zero_authority() {
    let input = rom_stage_input_values(&BOOTLOADER_SHA256, &[], Mode::Debug).unwrap();
    assert_eq!(input.authority_hash, [0u8; 64]);
}

#[test]
fn measurement_encoding_pads_short_digests_and_hashes_long_ones() {
    let sha256 = [0xab; 32];
    let padded = measurement_to_code_hash(&sha256);
    assert_eq!(&padded[..32], &sha256);
    assert_eq!(&padded[32..], &[0u8; 32]);

    let sha512 = [0xcd; 64];
    assert_eq!(measurement_to_code_hash(&sha512), sha512);

    let long = [0xef; 65];
    let hashed: [u8; 64] = Sha512::digest(long).into();
    assert_eq!(measurement_to_code_hash(&long), hashed);

    assert_eq!(measurement_to_code_hash(&[]), [0u8; 64]);
    assert_eq!(measurement_to_authority_hash(&sha256), padded);
}

#[test]
fn layering_chains_keys_and_ids() {
    let layer1 = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Normal).unwrap();
    let layer2 = layer1.derive_next(&base_input()).unwrap();
    let direct = derive_cdis(layer1.attest(), layer1.seal(), &base_input()).unwrap();
    assert_eq!(layer2.attest(), direct.attest());
    assert_eq!(layer2.seal(), direct.seal());
    assert_ne!(layer2.attest(), layer1.attest());
    // The issuer of layer 2's certificate is layer 1's CDI key: same derivation.
    let seed = layer1.attestation_keypair_seed().unwrap();
    assert_eq!(
        seed.as_bytes(),
        derive_attestation_keypair_seed(layer1.attest())
            .unwrap()
            .as_bytes()
    );
    assert_eq!(
        derive_cdi_id(&seed.ed25519_public_key()).unwrap(),
        ed25519_cdi_id(layer1.attest()).unwrap()
    );
    // The CDI key is not the CDI itself.
    assert_ne!(seed.as_bytes(), layer1.attest());
}

#[test]
fn cdi_id_is_a_positive_integer() {
    // Top bit cleared for every key, so the serial number needs no 0x00 pad.
    for i in 0..64u8 {
        let id = derive_cdi_id(&[i; 32]).unwrap();
        assert_eq!(id[0] & 0x80, 0, "key {i}");
    }
    assert_ne!(
        derive_cdi_id(&[1; 32]).unwrap(),
        derive_cdi_id(&[2; 32]).unwrap()
    );
}

#[test]
fn mode_bytes_follow_the_profile() {
    for (mode, byte) in [
        (Mode::NotConfigured, 0),
        (Mode::Normal, 1),
        (Mode::Debug, 2),
        (Mode::Maintenance, 3),
    ] {
        assert_eq!(mode.to_byte(), byte);
        assert_eq!(Mode::from_byte(byte), mode);
    }
    // Undefined values are treated as Not Configured, per the specification.
    assert_eq!(Mode::from_byte(4), Mode::NotConfigured);
    assert_eq!(Mode::from_byte(0xff), Mode::NotConfigured);
    assert_eq!(Mode::default(), Mode::NotConfigured);
}

#[test]
fn debug_output_contains_no_secret() {
    let cdis = rom_stage_cdis(&UDS, &BOOTLOADER_SHA256, &ROOT_KEY_HASH, Mode::Normal).unwrap();
    let seed = cdis.attestation_keypair_seed().unwrap();
    let mut input = base_input();
    input.hidden = [0x9c; 64];

    let printed = format!("{cdis:?} {cdis:#?} {seed:?} {input:?} {input:#?}");
    for secret in [&cdis.attest()[..], &cdis.seal()[..], &seed.as_bytes()[..]] {
        assert!(!printed.contains(&hex(secret)), "{printed}");
        assert!(!printed.contains(&hex(&secret[..4])), "{printed}");
        assert!(!printed.contains(&format!("{secret:?}")), "{printed}");
        assert!(
            !printed.contains(&format!("{}, {}", secret[0], secret[1])),
            "{printed}"
        );
    }
    assert!(!printed.contains("9c9c"), "hidden leaked: {printed}");
    assert!(!printed.contains("156, 156"), "hidden leaked: {printed}");
    assert!(printed.contains("<redacted>"));
    // Public inputs stay readable for diagnosis.
    assert!(printed.contains(&hex(&input.code_hash)), "{printed}");
}

#[test]
fn secrets_are_wiped_on_drop() {
    // Compile-time check: removing the Drop/zeroize impls breaks this test.
    fn wiped_on_drop<T: ZeroizeOnDrop>() {}
    wiped_on_drop::<Cdis>();
    wiped_on_drop::<PrivateKeySeed>();
}

#[test]
fn error_messages_name_the_problem() {
    let err = DiceError::KdfOutputLength { requested: 99999 };
    assert!(err.to_string().contains("99999"), "{err}");
}
