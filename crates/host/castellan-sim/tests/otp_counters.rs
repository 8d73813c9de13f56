//! OTP fuses (one-way bits, lockable regions) and the thermometer-coded `OtpCounter` over them.

use castellan_hal::{HalError, MonotonicCounter, OTP_WORD_BITS, OtpCounter, OtpFuses};
use castellan_sim::{FaultPhase, FaultPlan, OtpConfig, SimError, SimOtp};

fn otp() -> SimOtp {
    SimOtp::new(OtpConfig::default()).unwrap()
}

#[test]
fn blank_fuses_read_zero_and_bits_only_get_set() {
    let mut o = otp();
    assert_eq!((o.words(), o.region_words(), o.regions()), (64, 8, 8));
    assert!((0..64).all(|w| o.read(w).unwrap() == 0));
    o.program(3, 0b1010).unwrap();
    o.set_bits(3, 0b0101).unwrap();
    assert_eq!(o.read(3).unwrap(), 0b1111);
    assert!(o.read_bit(3 * OTP_WORD_BITS + 2).unwrap());
    assert!(!o.read_bit(3 * OTP_WORD_BITS + 4).unwrap());
    // Programming the bits already set again is allowed (and changes nothing).
    o.program(3, 0b1111).unwrap();
    assert_eq!(o.read(3).unwrap(), 0b1111);
}

#[test]
fn attack_clear_otp_bit_refused() {
    let mut o = otp();
    o.program(0, 0xFFFF_0000).unwrap();
    // An attacker (or a bug) tries to write the word back to 0, or to flip one bit off.
    assert_eq!(o.program(0, 0), Err(HalError::WouldClearBit));
    assert_eq!(o.program(0, 0x7FFF_0000), Err(HalError::WouldClearBit));
    assert_eq!(o.program(0, 0x0000_FFFF), Err(HalError::WouldClearBit));
    assert_eq!(
        o.read(0).unwrap(),
        0xFFFF_0000,
        "a refused program changed the fuses"
    );
    assert_eq!(
        o.rail().ops(),
        1,
        "a refused program took an operation index"
    );
}

#[test]
fn attack_program_locked_region_refused() {
    let mut o = otp();
    let root_hash = [0xA5u8; 32];
    o.program_bytes(0, &root_hash).unwrap();
    o.lock(0).unwrap();
    assert!(o.is_locked(0).unwrap());
    assert!(!o.is_locked(1).unwrap());
    // Setting extra bits would change the root-key hash: refused once locked.
    assert_eq!(o.program(1, 0xFFFF_FFFF), Err(HalError::Locked));
    assert_eq!(o.set_bits(7, 1 << 31), Err(HalError::Locked));
    let mut back = [0u8; 32];
    o.read_bytes(0, &mut back).unwrap();
    assert_eq!(back, root_hash);
    // Other regions stay programmable; locking twice is fine.
    o.program(8, 1).unwrap();
    o.lock(0).unwrap();
    assert_eq!(o.lock(8), Err(HalError::OutOfBounds));
    assert_eq!(o.locked_regions(), vec![0]);
}

#[test]
fn byte_helpers_are_little_endian_and_all_or_nothing() {
    let mut o = otp();
    o.program_bytes(16, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert_eq!(o.read(16).unwrap(), 0x0403_0201);
    assert_eq!(o.read(17).unwrap(), 0x0807_0605);
    let mut odd = [0u8; 5];
    o.read_bytes(16, &mut odd).unwrap();
    assert_eq!(odd, [1, 2, 3, 4, 5]);
    assert_eq!(o.program_bytes(20, &[1, 2, 3]), Err(HalError::NotAligned));
    // Second word would clear bits: nothing of the run is programmed.
    assert_eq!(
        o.program_bytes(15, &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
        Err(HalError::WouldClearBit)
    );
    assert_eq!(o.read(15).unwrap(), 0);
    assert_eq!(o.program_bytes(62, &[0; 12]), Err(HalError::OutOfBounds));
    assert_eq!(o.read(62).unwrap(), 0);
}

#[test]
fn out_of_range_words_and_bad_configs_refused() {
    let mut o = otp();
    assert_eq!(o.read(64), Err(HalError::OutOfBounds));
    assert_eq!(o.program(64, 1), Err(HalError::OutOfBounds));
    assert_eq!(o.is_locked(8), Err(HalError::OutOfBounds));
    for bad in [(0, 8), (64, 0), (60, 8)] {
        let c = OtpConfig {
            words: bad.0,
            region_words: bad.1,
        };
        assert!(matches!(SimOtp::new(c), Err(SimError::InvalidConfig(_))));
    }
}

#[test]
fn counter_is_a_thermometer_code() {
    let mut c = OtpCounter::new(otp(), 16, 2, 4).unwrap();
    assert_eq!((c.counters(), c.max_value()), (4, 64));
    assert_eq!(c.read(0).unwrap(), 0);
    c.increment_to(0, 5).unwrap();
    assert_eq!(c.read(0).unwrap(), 5);
    assert_eq!(c.inner().read(16).unwrap(), 0b1_1111);
    assert_eq!(c.increment(0).unwrap(), 6);
    // Crossing into the second word of the counter.
    c.increment_to(0, 40).unwrap();
    assert_eq!(c.inner().read(16).unwrap(), u32::MAX);
    assert_eq!(c.inner().read(17).unwrap(), 0xFF);
    assert_eq!(c.read(0).unwrap(), 40);
    // Counters are independent.
    assert_eq!(c.read(1).unwrap(), 0);
    c.increment_to(3, 64).unwrap();
    assert_eq!(c.read(3).unwrap(), 64);
    assert_eq!(c.increment(3), Err(HalError::CounterExhausted));
    assert_eq!(c.increment_to(1, 65), Err(HalError::CounterExhausted));
    assert_eq!(c.read(4), Err(HalError::OutOfBounds));
}

#[test]
fn attack_roll_counter_back_refused() {
    let mut c = OtpCounter::new(otp(), 16, 1, 2).unwrap();
    c.increment_to(0, 7).unwrap();
    let ops = c.inner().rail().ops();
    assert_eq!(c.increment_to(0, 6), Err(HalError::Rollback));
    assert_eq!(c.increment_to(0, 0), Err(HalError::Rollback));
    assert_eq!(c.read(0).unwrap(), 7);
    // Same value: accepted, nothing programmed.
    c.increment_to(0, 7).unwrap();
    assert_eq!(c.inner().rail().ops(), ops);
    // Going around the counter by writing the fuse word directly cannot lower it either.
    assert_eq!(
        c.inner_mut().program(16, 0b11),
        Err(HalError::WouldClearBit)
    );
    assert_eq!(c.read(0).unwrap(), 7);
}

#[test]
fn counter_reads_highest_bit_and_increment_fills_holes() {
    // A torn increment can leave holes below the top bit: the value never drops.
    let mut o = otp();
    o.program(16, 0b1000_0101).unwrap();
    let mut c = OtpCounter::new(&mut o, 16, 1, 1).unwrap();
    assert_eq!(c.read(0).unwrap(), 8);
    assert_eq!(c.increment_to(0, 7), Err(HalError::Rollback));
    c.increment_to(0, 9).unwrap();
    assert_eq!(o.read(16).unwrap(), 0b1_1111_1111);
}

#[test]
fn counter_layout_must_fit_the_fuses() {
    assert_eq!(
        OtpCounter::new(otp(), 60, 2, 3).err(),
        Some(HalError::OutOfBounds)
    );
    assert_eq!(
        OtpCounter::new(otp(), 0, 0, 1).err(),
        Some(HalError::CounterExhausted)
    );
    assert!(OtpCounter::new(otp(), 56, 2, 4).is_ok());
}

#[test]
fn counter_stays_between_old_and_new_under_every_cut() {
    let target = 45u32;
    for phase in FaultPhase::ALL {
        for at in 0..3 {
            for seed in 0..8 {
                let mut c = OtpCounter::new(otp(), 16, 2, 1).unwrap();
                c.increment_to(0, 3).unwrap();
                c.inner()
                    .rail()
                    .arm(FaultPlan::new(at, phase).with_seed(seed));
                let r = c.increment_to(0, target);
                c.inner().rail().power_on();
                let v = c.read(0).unwrap();
                assert!((3..=target).contains(&v), "{phase:?} at {at}: {v}");
                if r.is_ok() {
                    assert_eq!(v, target);
                }
                // Recovery completes the increment.
                c.increment_to(0, target).unwrap();
                assert_eq!(c.read(0).unwrap(), target);
            }
        }
    }
}
