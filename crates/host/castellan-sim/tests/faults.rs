//! Power-loss injection: before / torn / after semantics, the device staying off until power
//! cycled, determinism, dry-run counting, and an exhaustive run over a small scenario.

mod common;

use castellan_hal::{
    Flash, HalError, HardwareUniqueSecret, NorFlash, OtpFuses, RandomSource, ReadNorFlash,
};
use castellan_sim::{
    DeviceConfig, FaultPhase, FaultPlan, FlashConfig, OtpConfig, SimDevice, SimFlash, SimOtp,
};
use common::{SECTOR, flashes, pattern};

const SIZE: u32 = 8 * 1024;

#[test]
fn cut_before_leaves_the_operation_undone_and_the_device_off() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size();
        f.write(0, &pattern(ws, 1)).unwrap(); // op 0 of power-on
        f.rail().arm(FaultPlan::new(1, FaultPhase::Before));
        f.write(ws as u32, &pattern(ws, 2)).unwrap(); // op 0 after arming
        assert_eq!(
            f.write(2 * ws as u32, &pattern(ws, 3)),
            Err(HalError::PowerLoss)
        );
        assert!(!f.rail().is_on());
        assert!(
            f.is_erased(2 * ws as u32, ws as u32).is_err(),
            "reads work while off"
        );
        assert!(!f.is_unit_written(2));
        // Everything fails while off, rule checks included.
        assert_eq!(f.erase(0, SECTOR), Err(HalError::PowerLoss));
        assert_eq!(f.write(1, &[0]), Err(HalError::PowerLoss));
        f.rail().power_on();
        assert!(f.is_erased(2 * ws as u32, ws as u32).unwrap());
        assert_eq!(&f.contents()[ws..2 * ws], &pattern(ws, 2)[..]);
        f.write(2 * ws as u32, &pattern(ws, 3)).unwrap();
    }
}

#[test]
fn cut_after_completes_the_operation_but_reports_power_loss() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size();
        f.rail().arm(FaultPlan::new(0, FaultPhase::After));
        let data = pattern(4 * ws, 4);
        assert_eq!(f.write(0, &data), Err(HalError::PowerLoss));
        assert_eq!(&f.contents()[..data.len()], &data[..]);
        assert_eq!(f.write(SECTOR, &pattern(ws, 1)), Err(HalError::PowerLoss));
        f.rail().power_on();
        let mut back = vec![0; data.len()];
        f.read(0, &mut back).unwrap();
        assert_eq!(back, data);
    }
}

#[test]
fn torn_write_leaves_prefix_then_garbage_then_untouched() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size();
        let e = f.erased_value();
        let units = 32;
        let data = pattern(units * ws, 5);
        let mut seen_prefixes = std::collections::BTreeSet::new();
        for seed in 0..40u64 {
            f.rail().power_on();
            f.erase(0, SECTOR).unwrap();
            f.rail()
                .arm(FaultPlan::new(0, FaultPhase::Torn).with_seed(seed));
            assert_eq!(f.write(0, &data), Err(HalError::PowerLoss));
            let c = &f.contents()[..data.len()];
            let k = (0..units).find(|u| c[u * ws..(u + 1) * ws] != data[u * ws..(u + 1) * ws]);
            let k = k.expect("a torn write wrote every unit correctly");
            let hit = &c[k * ws..(k + 1) * ws];
            assert!(hit.iter().any(|b| *b != e), "torn unit reads erased");
            assert!(f.is_unit_written(k), "torn unit writable without erase");
            assert!(
                c[(k + 1) * ws..].iter().all(|b| *b == e),
                "units after the tear written"
            );
            assert!((k + 1..units).all(|u| !f.is_unit_written(u)));
            seen_prefixes.insert(k);
        }
        assert!(
            seen_prefixes.len() > 5,
            "tear position does not depend on the seed"
        );
        // The torn unit must be erased before it can be written again.
        f.rail().power_on();
        assert_eq!(f.write(0, &data), Err(HalError::NotErased));
    }
}

#[test]
fn torn_single_unit_write_is_garbage() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size();
        let data = pattern(ws, 6);
        f.rail().arm(FaultPlan::new(0, FaultPhase::Torn));
        assert_eq!(f.write(0, &data), Err(HalError::PowerLoss));
        let c = &f.contents()[..ws];
        assert_ne!(c, &data[..]);
        assert!(c.iter().any(|b| *b != f.erased_value()));
    }
}

#[test]
fn torn_erase_leaves_erased_prefix_garbage_and_stale_rest() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size();
        let e = f.erased_value();
        let old = pattern(SECTOR as usize, 7);
        f.write(0, &old).unwrap();
        f.rail()
            .arm(FaultPlan::new(0, FaultPhase::Torn).with_seed(3));
        assert_eq!(f.erase(0, SECTOR), Err(HalError::PowerLoss));
        let c = &f.contents()[..SECTOR as usize];
        let k = c
            .chunks(ws)
            .position(|u| u.iter().any(|b| *b != e))
            .unwrap();
        assert!(
            c[k * ws..(k + 1) * ws] != old[k * ws..(k + 1) * ws],
            "no garbage unit"
        );
        assert_eq!(
            &c[(k + 1) * ws..],
            &old[(k + 1) * ws..],
            "rest not left as it was"
        );
        assert!((0..k).all(|u| !f.is_unit_written(u)));
        assert!(f.is_unit_written(k));
        f.rail().power_on();
        f.erase(0, SECTOR).unwrap();
        assert!(f.is_erased(0, SECTOR).unwrap());
    }
}

#[test]
fn multi_sector_erase_counts_and_cuts_per_sector() {
    for mut f in flashes(SIZE) {
        let old = pattern(4 * SECTOR as usize, 8);
        f.write(0, &old).unwrap();
        f.rail().arm(FaultPlan::new(2, FaultPhase::Before));
        assert_eq!(f.erase(0, 4 * SECTOR), Err(HalError::PowerLoss));
        let c = f.contents();
        let s = SECTOR as usize;
        assert!(c[..2 * s].iter().all(|b| *b == f.erased_value()));
        assert_eq!(&c[2 * s..4 * s], &old[2 * s..]);
        assert_eq!(f.rail().ops(), 3);
    }
}

#[test]
fn torn_results_are_deterministic() {
    let run = |seed| {
        let mut f = SimFlash::new(FlashConfig::new(SIZE, SECTOR, 16, 0xFF)).unwrap();
        f.rail()
            .arm(FaultPlan::new(0, FaultPhase::Torn).with_seed(seed));
        let _ = f.write(0, &pattern(256, 1));
        f.contents().to_vec()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
    assert_eq!(
        FaultPlan::new(5, FaultPhase::Torn),
        FaultPlan::new(5, FaultPhase::Torn)
    );
}

#[test]
fn fault_plan_all_enumerates_every_op_and_phase() {
    let plans: Vec<_> = FaultPlan::all(4).collect();
    assert_eq!(plans.len(), 12);
    assert_eq!(plans[0], FaultPlan::new(0, FaultPhase::Before));
    assert_eq!(plans[1].phase, FaultPhase::Torn);
    assert_eq!(plans[11], FaultPlan::new(3, FaultPhase::After));
}

#[test]
fn otp_program_can_be_cut_and_torn() {
    let mut otp = SimOtp::new(OtpConfig::default()).unwrap();
    otp.program(0, 0b1).unwrap();
    otp.rail().arm(FaultPlan::new(0, FaultPhase::Before));
    assert_eq!(otp.program(0, 0b11), Err(HalError::PowerLoss));
    assert_eq!(
        otp.read(0),
        Err(HalError::PowerLoss),
        "reads work while off"
    );
    otp.rail().power_on();
    assert_eq!(otp.read(0).unwrap(), 0b1);

    let mut subsets = std::collections::BTreeSet::new();
    for seed in 0..20 {
        let mut o = SimOtp::new(OtpConfig::default()).unwrap();
        o.program(1, 0xF000_0000).unwrap();
        o.rail()
            .arm(FaultPlan::new(0, FaultPhase::Torn).with_seed(seed));
        assert_eq!(o.program(1, 0xF000_FFFF), Err(HalError::PowerLoss));
        o.rail().power_on();
        let v = o.read(1).unwrap();
        assert_eq!(
            v & 0xF000_0000,
            0xF000_0000,
            "a torn program cleared a fuse"
        );
        assert_eq!(
            v & !0xF000_FFFF,
            0,
            "a torn program set a bit nobody asked for"
        );
        subsets.insert(v);
    }
    assert!(subsets.len() > 3, "torn fuse programs are not partial");

    let mut o = SimOtp::new(OtpConfig::default()).unwrap();
    o.rail().arm(FaultPlan::new(0, FaultPhase::After));
    assert_eq!(o.lock(2), Err(HalError::PowerLoss));
    o.rail().power_on();
    assert!(o.is_locked(2).unwrap());
}

#[test]
fn device_parts_share_one_rail() {
    let mut dev = SimDevice::new(DeviceConfig::default(), 1).unwrap();
    dev.arm(FaultPlan::new(1, FaultPhase::Before));
    dev.flash.write(0, &[1, 2, 3, 4]).unwrap(); // op 0
    assert_eq!(dev.otp.program(0, 1), Err(HalError::PowerLoss)); // op 1: cut
    assert!(!dev.is_powered());
    let mut uds = [0; 32];
    assert_eq!(dev.uds.read(&mut uds), Err(HalError::PowerLoss));
    assert_eq!(dev.rng.fill(&mut uds), Err(HalError::PowerLoss));
    let mut b = [0; 4];
    assert_eq!(dev.flash.read(0, &mut b), Err(HalError::PowerLoss));
    dev.power_cycle();
    assert!(dev.is_powered());
    assert_eq!(dev.ops(), 0);
    assert_eq!(dev.otp.read(0).unwrap(), 0);
    dev.uds.read(&mut uds).unwrap();
}

#[test]
fn rail_cut_between_operations() {
    let mut dev = SimDevice::new(DeviceConfig::default(), 2).unwrap();
    dev.rail().cut();
    assert_eq!(dev.flash.erase(0, 4096), Err(HalError::PowerLoss));
    dev.power_cycle();
    dev.flash.erase(0, 4096).unwrap();
}

/// A tiny "update": erase a record sector, write the payload, then a commit word. The exhaustive
/// loop is the harness pattern: dry run, then every (op, phase) from the same snapshot.
fn update(f: &mut SimFlash, payload: &[u8]) -> Result<(), HalError> {
    let ws = f.write_size();
    f.erase(0, SECTOR)?;
    f.write(ws as u32, payload)?;
    let mut commit = vec![0xC3; ws];
    commit[0] = 0x5A;
    f.write(0, &commit)
}

fn committed(f: &mut SimFlash) -> bool {
    let mut first = [0u8; 1];
    f.read(0, &mut first).unwrap();
    first[0] == 0x5A
}

#[test]
fn exhaustive_injection_over_a_small_update() {
    for cfg in FlashConfig::matrix(SIZE, SECTOR) {
        let mut dev = SimDevice::new(DeviceConfig::new(cfg), 7).unwrap();
        let ws = cfg.write_size as usize;
        let payload = pattern(8 * ws, 9);
        let start = dev.snapshot();

        // Dry run.
        dev.rail().reset_ops();
        update(&mut dev.flash, &payload).unwrap();
        let ops = dev.ops();
        assert_eq!(ops, 3, "1 sector erase + 2 writes");

        let mut outcomes = [0usize; 2];
        for plan in FaultPlan::all(ops) {
            dev.restore(&start).unwrap();
            dev.arm(plan);
            assert_eq!(
                update(&mut dev.flash, &payload),
                Err(HalError::PowerLoss),
                "{plan:?}"
            );
            dev.power_cycle();
            // Invariant: committed implies the whole payload is there.
            let done = committed(&mut dev.flash);
            if done {
                let mut back = vec![0; payload.len()];
                dev.flash.read(ws as u32, &mut back).unwrap();
                assert_eq!(back, payload, "{cfg:?} {plan:?}");
            }
            outcomes[done as usize] += 1;
            // Recovery: the update can always be run again to completion.
            update(&mut dev.flash, &payload).unwrap();
            assert!(committed(&mut dev.flash));
        }
        assert_eq!(
            outcomes[1], 1,
            "only a cut after the commit write leaves it committed"
        );
        assert_eq!(outcomes.iter().sum::<usize>(), 9);
    }
}
