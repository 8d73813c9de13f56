//! Internal trusted storage: PSA ITS semantics (flags, limits, errors), persistence across power
//! cycles, compaction, and the attacks the store must refuse (replayed flash, flipped bits).

mod common;

use castellan_hal::{MonotonicCounter, Partition};
use castellan_services::{
    Its, ItsConfig, ItsFlags, OtpCounterMap, Platform, STORAGE_COMMIT_COUNTER, ServiceError, psa,
    status_of,
};
use common::*;

#[test]
fn set_get_info_remove_round_trip() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    let mut p = platform(&mut dev);
    its.set(&mut p, 7, b"hello trusted storage", ItsFlags::NONE)
        .unwrap();
    let info = its.get_info(&mut p, 7).unwrap();
    assert_eq!(
        (info.size, info.capacity, info.flags),
        (21, 21, ItsFlags::NONE)
    );
    let mut out = [0u8; 64];
    assert_eq!(its.get(&mut p, 7, 0, &mut out), Ok(21));
    assert_eq!(&out[..21], b"hello trusted storage");
    // Offset and short buffer: a window of the asset.
    let mut win = [0u8; 7];
    assert_eq!(its.get(&mut p, 7, 6, &mut win), Ok(7));
    assert_eq!(&win, b"trusted");
    assert_eq!(its.get(&mut p, 7, 21, &mut win), Ok(0));
    assert_eq!(
        status_of(&its.get(&mut p, 7, 22, &mut win)),
        psa::ERROR_INVALID_ARGUMENT
    );
    // Replace, then remove.
    its.set(&mut p, 7, b"v2", ItsFlags::NONE).unwrap();
    assert_eq!(its.get(&mut p, 7, 0, &mut out), Ok(2));
    its.remove(&mut p, 7).unwrap();
    assert_eq!(
        its.get(&mut p, 7, 0, &mut out),
        Err(ServiceError::DoesNotExist)
    );
    assert_eq!(its.get_info(&mut p, 7), Err(ServiceError::DoesNotExist));
    assert_eq!(status_of(&its.remove(&mut p, 7)), psa::ERROR_DOES_NOT_EXIST);
}

#[test]
fn assets_survive_power_cycles_and_remounts() {
    for (ws, erased) in [(1, 0xFF), (16, 0x00)] {
        let mut dev = device(ws, erased);
        let mut its = mount(&mut dev);
        for uid in 1..=5u64 {
            let value = vec![uid as u8; 10 * uid as usize];
            its.set(&mut platform(&mut dev), uid, &value, ItsFlags::NONE)
                .unwrap();
        }
        its.remove(&mut platform(&mut dev), 3).unwrap();
        drop(its);
        dev.power_cycle();
        let mut its = mount(&mut dev);
        for uid in [1u64, 2, 4, 5] {
            assert_eq!(
                read(&mut its, &mut dev, uid).unwrap(),
                vec![uid as u8; 10 * uid as usize]
            );
        }
        assert_eq!(read(&mut its, &mut dev, 3), Err(ServiceError::DoesNotExist));
    }
}

#[test]
fn write_once_refuses_overwrite_and_remove() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    let mut p = platform(&mut dev);
    its.set(&mut p, 1, b"serial-0042", ItsFlags::WRITE_ONCE)
        .unwrap();
    let e = its
        .set(&mut p, 1, b"serial-6666", ItsFlags::NONE)
        .unwrap_err();
    assert_eq!(e.psa_status(), psa::ERROR_NOT_PERMITTED);
    let e = its
        .set(&mut p, 1, b"serial-6666", ItsFlags::WRITE_ONCE)
        .unwrap_err();
    assert_eq!(e.psa_status(), psa::ERROR_NOT_PERMITTED);
    assert_eq!(status_of(&its.remove(&mut p, 1)), psa::ERROR_NOT_PERMITTED);
    assert_eq!(read(&mut its, &mut dev, 1).unwrap(), b"serial-0042");
    dev.power_cycle();
    let mut its = mount(&mut dev);
    assert_eq!(
        its.get_info(&mut platform(&mut dev), 1).unwrap().flags,
        ItsFlags::WRITE_ONCE
    );
    assert!(its.remove(&mut platform(&mut dev), 1).is_err());
    // A plain asset may become write-once.
    its.set(&mut platform(&mut dev), 2, b"a", ItsFlags::NONE)
        .unwrap();
    its.set(&mut platform(&mut dev), 2, b"b", ItsFlags::WRITE_ONCE)
        .unwrap();
    assert!(
        its.set(&mut platform(&mut dev), 2, b"c", ItsFlags::NONE)
            .is_err()
    );
}

#[test]
fn invalid_uid_and_unknown_flags_are_refused() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    let mut p = platform(&mut dev);
    assert_eq!(
        status_of(&its.set(&mut p, 0, b"x", ItsFlags::NONE)),
        psa::ERROR_INVALID_ARGUMENT
    );
    assert_eq!(
        status_of(&its.set(&mut p, 1, b"x", ItsFlags(1 << 3))),
        psa::ERROR_NOT_SUPPORTED
    );
}

#[test]
fn size_and_count_limits_give_clear_errors() {
    let mut dev = device(4, 0xFF);
    let config = ItsConfig {
        max_assets: 3,
        max_asset_size: 100,
        ..its_config()
    };
    let mut its = Its::mount(config, &CDI_SEAL, &mut platform(&mut dev)).unwrap();
    let mut p = platform(&mut dev);
    its.set(&mut p, 1, &[1; 100], ItsFlags::NONE).unwrap();
    let e = its.set(&mut p, 2, &[2; 101], ItsFlags::NONE).unwrap_err();
    assert_eq!(
        e,
        ServiceError::AssetTooLarge {
            size: 101,
            max: 100
        }
    );
    assert_eq!(e.psa_status(), psa::ERROR_INVALID_ARGUMENT);
    assert!(e.to_string().contains("101"), "{e}");
    its.set(&mut p, 2, b"b", ItsFlags::NONE).unwrap();
    its.set(&mut p, 3, b"c", ItsFlags::NONE).unwrap();
    let e = its.set(&mut p, 4, b"d", ItsFlags::NONE).unwrap_err();
    assert_eq!(e, ServiceError::TooManyAssets { max: 3 });
    assert_eq!(e.psa_status(), psa::ERROR_INSUFFICIENT_STORAGE);
    // Replacing an existing asset at the limit is fine; removing frees a place.
    its.set(&mut p, 3, b"c2", ItsFlags::NONE).unwrap();
    its.remove(&mut p, 2).unwrap();
    its.set(&mut p, 4, b"d", ItsFlags::NONE).unwrap();
}

#[test]
fn storage_full_when_live_data_exceed_a_bank() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    let mut p = platform(&mut dev);
    // A bank is 1 KiB; each 300-byte asset takes 356 bytes.
    its.set(&mut p, 1, &[1; 300], ItsFlags::NONE).unwrap();
    its.set(&mut p, 2, &[2; 300], ItsFlags::NONE).unwrap();
    let e = its.set(&mut p, 3, &[3; 300], ItsFlags::NONE).unwrap_err();
    assert_eq!(e, ServiceError::StorageFull);
    assert_eq!(e.psa_status(), psa::ERROR_INSUFFICIENT_STORAGE);
    assert_eq!(read(&mut its, &mut dev, 1).unwrap(), vec![1; 300]);
    assert_eq!(read(&mut its, &mut dev, 3), Err(ServiceError::DoesNotExist));
    // Still usable: a smaller asset fits after compaction.
    its.set(&mut platform(&mut dev), 3, &[3; 100], ItsFlags::NONE)
        .unwrap();
}

#[test]
fn compaction_moves_between_banks_and_keeps_every_value() {
    let mut dev = device(8, 0x00);
    let mut its = mount(&mut dev);
    let mut banks_seen = [false; 2];
    for round in 0..40u8 {
        let uid = u64::from(round % 4) + 1;
        let value = vec![round; 50 + usize::from(round) * 3];
        its.set(&mut platform(&mut dev), uid, &value, ItsFlags::NONE)
            .unwrap();
        banks_seen[usize::from(its.status().active_bank)] = true;
    }
    assert_eq!(banks_seen, [true, true], "compaction never switched banks");
    let expect = |uid: u64| {
        let round = (36..40u8).find(|r| u64::from(r % 4) + 1 == uid).unwrap();
        vec![round; 50 + usize::from(round) * 3]
    };
    for uid in 1..=4 {
        assert_eq!(read(&mut its, &mut dev, uid).unwrap(), expect(uid));
    }
    dev.power_cycle();
    let mut its = mount(&mut dev);
    for uid in 1..=4 {
        assert_eq!(read(&mut its, &mut dev, uid).unwrap(), expect(uid));
    }
}

#[test]
fn attack_replay_old_flash_copy_refused() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    its.set(&mut platform(&mut dev), 1, b"balance=100", ItsFlags::NONE)
        .unwrap();
    let old_its = raw(&dev, its_area());
    let old_key = raw(&dev, key_area());
    its.set(&mut platform(&mut dev), 1, b"balance=0", ItsFlags::NONE)
        .unwrap();
    drop(its);
    // The attacker puts the old storage back (key area untouched, then both).
    for restore_key in [false, true] {
        put_raw(&mut dev, its_area(), &old_its);
        if restore_key {
            put_raw(&mut dev, key_area(), &old_key);
        }
        dev.power_cycle();
        let e = Its::mount(its_config(), &CDI_SEAL, &mut platform(&mut dev)).unwrap_err();
        assert!(
            matches!(e, ServiceError::StorageRollback { stored, hardware } if stored < hardware),
            "{e:?}"
        );
        assert_eq!(e.psa_status(), psa::ERROR_DATA_CORRUPT);
    }
}

#[test]
fn attack_replay_factory_blank_flash_refused() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    its.set(&mut platform(&mut dev), 1, b"provisioned", ItsFlags::NONE)
        .unwrap();
    drop(its);
    let blank = vec![0xFF; its_area().size as usize];
    put_raw(&mut dev, its_area(), &blank);
    put_raw(&mut dev, key_area(), &vec![0xFF; key_area().size as usize]);
    dev.power_cycle();
    let e = Its::mount(its_config(), &CDI_SEAL, &mut platform(&mut dev)).unwrap_err();
    assert!(
        matches!(e, ServiceError::StorageRollback { stored: 0, .. }),
        "{e:?}"
    );
    // Wiping only the log (key area kept) is refused the same way.
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    its.set(&mut platform(&mut dev), 1, b"x", ItsFlags::NONE)
        .unwrap();
    drop(its);
    put_raw(&mut dev, its_area(), &blank);
    dev.power_cycle();
    let e = Its::mount(its_config(), &CDI_SEAL, &mut platform(&mut dev)).unwrap_err();
    assert!(
        matches!(e, ServiceError::StorageRollback { stored: 0, .. }),
        "{e:?}"
    );
}

/// Offset in the raw flash of the first data entry of `uid`, found by its header.
fn entry_offset(dev: &castellan_sim::SimDevice, uid: u64) -> usize {
    let flash = dev.flash.contents();
    let mut found = None;
    for at in (its_area().offset as usize)..(its_area().offset + its_area().size) as usize - 40 {
        let h = &flash[at..at + 40];
        if h[..4] == [0xC5, b'I', b'T', b'S'] && h[4] == 1 && h[16..24] == uid.to_le_bytes() {
            found = Some(at);
        }
    }
    found.expect("entry not found")
}

#[test]
fn attack_flipped_ciphertext_bit_refused() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    its.set(&mut platform(&mut dev), 1, b"keep me", ItsFlags::NONE)
        .unwrap();
    its.set(
        &mut platform(&mut dev),
        9,
        b"the secret value",
        ItsFlags::NONE,
    )
    .unwrap();
    its.set(&mut platform(&mut dev), 2, b"later", ItsFlags::NONE)
        .unwrap();
    let at = entry_offset(&dev, 9) + 40 + 3;
    dev.flash.contents_mut()[at] ^= 0x10;
    let e = read(&mut its, &mut dev, 9).unwrap_err();
    assert_eq!(
        e,
        ServiceError::StorageCorrupt("asset failed its authentication check")
    );
    // Other assets still read; after a reboot the store refuses to mount rather than hide it.
    assert_eq!(read(&mut its, &mut dev, 1).unwrap(), b"keep me");
    drop(its);
    dev.power_cycle();
    let e = Its::mount(its_config(), &CDI_SEAL, &mut platform(&mut dev)).unwrap_err();
    assert_eq!(e.psa_status(), psa::ERROR_DATA_CORRUPT, "{e:?}");
}

#[test]
fn attack_flipped_header_bit_refused() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    its.set(&mut platform(&mut dev), 9, b"value", ItsFlags::NONE)
        .unwrap();
    // Turn the asset into WRITE_ONCE | NO_REPLAY_PROTECTION by editing its flags byte.
    let at = entry_offset(&dev, 9) + 5;
    dev.flash.contents_mut()[at] = 0x05;
    drop(its);
    dev.power_cycle();
    assert!(Its::mount(its_config(), &CDI_SEAL, &mut platform(&mut dev)).is_err());
}

#[test]
fn no_confidentiality_is_stored_in_clear_but_authenticated() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    let mut p = platform(&mut dev);
    its.set(
        &mut p,
        1,
        b"PUBLIC-CERTIFICATE",
        ItsFlags::NO_CONFIDENTIALITY,
    )
    .unwrap();
    its.set(&mut p, 2, b"PRIVATE-PASSWORD!!", ItsFlags::NONE)
        .unwrap();
    let flash = raw(&dev, its_area());
    assert!(contains(&flash, b"PUBLIC-CERTIFICATE"));
    assert!(!contains(&flash, b"PRIVATE-PASSWORD!!"));
    assert_eq!(
        its.get_info(&mut platform(&mut dev), 1).unwrap().flags,
        ItsFlags::NO_CONFIDENTIALITY
    );
    assert_eq!(read(&mut its, &mut dev, 1).unwrap(), b"PUBLIC-CERTIFICATE");
    let at = entry_offset(&dev, 1) + 40;
    dev.flash.contents_mut()[at] = b'X';
    assert!(matches!(
        read(&mut its, &mut dev, 1),
        Err(ServiceError::StorageCorrupt(_))
    ));
}

#[test]
fn no_replay_protection_spares_the_counter_and_may_come_back() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    let h0 = platform(&mut dev)
        .counter
        .read(STORAGE_COMMIT_COUNTER)
        .unwrap();
    its.set(
        &mut platform(&mut dev),
        5,
        b"boot count 1",
        ItsFlags::NO_REPLAY_PROTECTION,
    )
    .unwrap();
    let old = raw(&dev, its_area());
    for n in 2..6 {
        let v = format!("boot count {n}");
        its.set(
            &mut platform(&mut dev),
            5,
            v.as_bytes(),
            ItsFlags::NO_REPLAY_PROTECTION,
        )
        .unwrap();
    }
    let h1 = platform(&mut dev)
        .counter
        .read(STORAGE_COMMIT_COUNTER)
        .unwrap();
    assert_eq!(h0, h1, "unprotected writes must not step the counter");
    drop(its);
    // An old image that differs only in the unprotected asset mounts, with the old value.
    put_raw(&mut dev, its_area(), &old);
    dev.power_cycle();
    let mut its = mount(&mut dev);
    assert_eq!(read(&mut its, &mut dev, 5).unwrap(), b"boot count 1");
    // A protected write steps the counter; now the old image is refused.
    its.set(&mut platform(&mut dev), 6, b"protected", ItsFlags::NONE)
        .unwrap();
    assert!(
        platform(&mut dev)
            .counter
            .read(STORAGE_COMMIT_COUNTER)
            .unwrap()
            > h1
    );
    drop(its);
    put_raw(&mut dev, its_area(), &old);
    dev.power_cycle();
    assert!(matches!(
        Its::mount(its_config(), &CDI_SEAL, &mut platform(&mut dev)),
        Err(ServiceError::StorageRollback { .. })
    ));
}

#[test]
fn counter_exhaustion_is_refused_before_anything_is_written() {
    let mut dev = device(4, 0xFF);
    // A storage counter of one fuse word: 32 values.
    fn counter(
        dev: &mut castellan_sim::SimDevice,
    ) -> castellan_devkit::sim_services::SimPlatform<'_> {
        let c = OtpCounterMap::new(&mut dev.otp, &[(16, 1), (40, 1), (41, 1)]).unwrap();
        Platform::new(&mut dev.flash, c, &mut dev.rng)
    }
    let mut its = Its::mount(its_config(), &CDI_SEAL, &mut counter(&mut dev)).unwrap();
    let mut last_ok = 0;
    let mut refused = None;
    for n in 0..40u32 {
        match its.set(&mut counter(&mut dev), 1, &n.to_le_bytes(), ItsFlags::NONE) {
            Ok(()) => last_ok = n,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(refused, Some(ServiceError::CounterExhausted));
    assert_eq!(
        refused.unwrap().psa_status(),
        psa::ERROR_INSUFFICIENT_STORAGE
    );
    let mut out = [0u8; 4];
    its.get(&mut counter(&mut dev), 1, 0, &mut out).unwrap();
    assert_eq!(u32::from_le_bytes(out), last_ok);
    // Unprotected writes still work, and the store still mounts.
    its.set(
        &mut counter(&mut dev),
        2,
        b"x",
        ItsFlags::NO_REPLAY_PROTECTION,
    )
    .unwrap();
    drop(its);
    dev.power_cycle();
    let mut its = Its::mount(its_config(), &CDI_SEAL, &mut counter(&mut dev)).unwrap();
    its.get(&mut counter(&mut dev), 1, 0, &mut out).unwrap();
    assert_eq!(u32::from_le_bytes(out), last_ok);
}

#[test]
fn crypto_erase_leaves_only_erased_flash_and_format_starts_over() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    its.set(
        &mut platform(&mut dev),
        1,
        b"PLAINTEXT-ASSET",
        ItsFlags::NO_CONFIDENTIALITY,
    )
    .unwrap();
    drop(its);
    Its::crypto_erase(&its_config(), &mut dev.flash).unwrap();
    assert!(raw(&dev, its_area()).iter().all(|b| *b == 0xFF));
    assert!(raw(&dev, key_area()).iter().all(|b| *b == 0xFF));
    dev.power_cycle();
    assert!(matches!(
        Its::mount(its_config(), &CDI_SEAL, &mut platform(&mut dev)),
        Err(ServiceError::StorageRollback { stored: 0, .. })
    ));
    let mut its = Its::format(its_config(), &CDI_SEAL, &mut platform(&mut dev)).unwrap();
    assert_eq!(its.status().assets, 0);
    assert_eq!(read(&mut its, &mut dev, 1), Err(ServiceError::DoesNotExist));
    its.set(&mut platform(&mut dev), 1, b"new life", ItsFlags::NONE)
        .unwrap();
    dev.power_cycle();
    let mut its = mount(&mut dev);
    assert_eq!(read(&mut its, &mut dev, 1).unwrap(), b"new life");
}

#[test]
fn another_sealing_cdi_cannot_open_the_store() {
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    its.set(&mut platform(&mut dev), 1, b"sealed", ItsFlags::NONE)
        .unwrap();
    drop(its);
    dev.power_cycle();
    let e = Its::mount(its_config(), &[0x66; 32], &mut platform(&mut dev)).unwrap_err();
    assert_eq!(e, ServiceError::StorageKeyInvalid);
    // The right CDI still opens it (nothing was destroyed by the failed attempt).
    let mut its = mount(&mut dev);
    assert_eq!(read(&mut its, &mut dev, 1).unwrap(), b"sealed");
}

#[test]
fn bad_layouts_are_refused() {
    let mut dev = device(4, 0xFF);
    let mut p = platform(&mut dev);
    let odd = ItsConfig::new(Partition::new(512, 3 * 512), key_area());
    assert!(matches!(
        Its::mount(odd, &CDI_SEAL, &mut p),
        Err(ServiceError::InvalidArgument(_))
    ));
    let overlap = ItsConfig::new(Partition::new(0, 4 * 512), key_area());
    assert!(matches!(
        Its::mount(overlap, &CDI_SEAL, &mut p),
        Err(ServiceError::InvalidArgument(_))
    ));
    let too_many = ItsConfig {
        max_assets: 33,
        ..its_config()
    };
    assert!(matches!(
        Its::mount(too_many, &CDI_SEAL, &mut p),
        Err(ServiceError::InvalidArgument(_))
    ));
}

#[test]
fn hostile_flash_contents_never_panic_the_store() {
    // A valid store with several transactions, then random corruption of the log: mount and
    // reads must return (Ok or a typed error), never panic or loop.
    let mut dev = device(4, 0xFF);
    let mut its = mount(&mut dev);
    for uid in 1..=4u64 {
        its.set(
            &mut platform(&mut dev),
            uid,
            &vec![uid as u8; 40 * uid as usize],
            ItsFlags::NONE,
        )
        .unwrap();
    }
    let clean = raw(&dev, its_area());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut refused = 0;
    for round in 0..300 {
        let mut bytes = clean.clone();
        let flips = 1 + next() % 4;
        for _ in 0..flips {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = if round % 3 == 0 { 0xFF } else { next() as u8 };
        }
        put_raw(&mut dev, its_area(), &bytes);
        dev.power_cycle();
        match Its::mount(its_config(), &CDI_SEAL, &mut platform(&mut dev)) {
            Ok(mut its) => {
                // Whatever mounts reads back the true values or refuses: never other data.
                for uid in 1..=4u64 {
                    if let Ok(v) = read(&mut its, &mut dev, uid) {
                        assert_eq!(v, vec![uid as u8; 40 * uid as usize]);
                    }
                }
            }
            Err(e) => {
                refused += 1;
                assert_ne!(e.psa_status(), 0);
            }
        }
    }
    assert!(
        refused > 100,
        "most corruptions of committed data must be refused ({refused})"
    );
}
