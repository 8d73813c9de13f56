//! The gate contract, exercised through a simulated device: the normal world reaches the
//! secure services only through the dispatcher the firmware runs, which refuses a pointer the
//! caller may not use (secure memory, read-only memory, a range past the end of its RAM) or a
//! length above a cap, before anything is read, written or done.

use castellan_gate_api::{
    BOOT_INFO_SIZE, CONSOLE_MAX, DETECT_STATUS_SIZE, ENVELOPE_CAP, FWU_CHUNK, HASH_LEN, ITS_CHUNK,
    ITS_SUMMARY_SIZE, NONCE_MAX, NsMemory, Op, RANDOM_CAP, REFUSAL_SIZE, Reg, SecureGate,
    TRUST_ANCHOR_LEN, UPDATE_BLOCK_CAP, UPDATE_STATUS_SIZE, psa, refusal_kind,
};
use castellan_simgate::testing::{TestDevice, TestSecure as Secure};
use castellan_simgate::{NS_CODE_BASE, NS_RAM_BASE, NS_RAM_SIZE, SECURE_RAM, SimGate, SimNsMemory};

/// A simulated device's secure side: trusted storage on a small flash, no boot chain.
fn secure() -> Secure {
    TestDevice::SMALL.secure().with_command(b"demo")
}

fn flash(s: &Secure) -> Vec<u8> {
    s.services().platform().flash.contents().to_vec()
}

/// A valid length for register `i` of `op` (a cap the operation accepts).
fn valid_len(op: Op, i: usize) -> u32 {
    match (op, i) {
        (Op::AttestToken, 1) => 32,
        (Op::AttestToken, 3) => 1024,
        (Op::UpdateAnchor, _) => 65,
        (Op::SignHash, _) => 32,
        (Op::BootInfo, _) => BOOT_INFO_SIZE as u32,
        (Op::UpdateStatus, _) => UPDATE_STATUS_SIZE as u32,
        (Op::ItsStatus, _) => ITS_SUMMARY_SIZE as u32,
        (Op::LastRefusal, _) => REFUSAL_SIZE as u32,
        (Op::DetectStatus, _) => DETECT_STATUS_SIZE as u32,
        _ => 16,
    }
}

/// Registers that make a well-formed call of `op`: inputs at the start of NS RAM, outputs
/// after them.
fn valid_regs(op: Op) -> [u32; 4] {
    let mut r = [0u32; 4];
    for (i, reg) in op.regs().iter().enumerate() {
        r[i] = match reg {
            Reg::In => NS_RAM_BASE + 0x100 * i as u32,
            Reg::Out | Reg::OutFixed(_) => NS_RAM_BASE + 0x1000 + 0x800 * i as u32,
            Reg::InLen | Reg::OutCap => valid_len(op, i),
            Reg::Int => 7,
            Reg::Unused => 0,
        };
    }
    r
}

/// Runs `op` with `regs` on a fresh device and checks that it is refused with one of
/// `expected` and that neither the caller's memory nor the device's flash changed.
fn refused(op: Op, regs: [u32; 4], expected: &[i32], what: &str) {
    let mut s = secure();
    let mut mem = SimNsMemory::new();
    for i in 0..0x40 {
        mem.put(NS_RAM_BASE + i * 0x100, &[0xa5; 0x100]);
    }
    let (mem0, flash0) = (mem.clone(), flash(&s));
    let status = s.call(op, regs, &mut mem);
    assert!(
        expected.contains(&status),
        "{op:?} with {what} {regs:x?}: {status} ({}), expected {expected:?}",
        psa::name(status)
    );
    assert!(
        mem == mem0,
        "{op:?} with {what}: the caller's memory changed"
    );
    assert!(
        flash(&s) == flash0,
        "{op:?} with {what}: the device changed"
    );
    assert_eq!(s.take_console(), b"", "{op:?} with {what}: console written");
}

#[test]
fn every_pointer_into_secure_memory_is_refused_and_nothing_is_written() {
    let (mut checked, mut pointers) = (0, 0);
    for &op in Op::ALL.iter().filter(|op| op.takes_pointer()) {
        for (i, reg) in op.regs().iter().enumerate() {
            if !matches!(reg, Reg::In | Reg::Out | Reg::OutFixed(_)) {
                continue;
            }
            pointers += 1;
            for (addr, what) in [
                (SECURE_RAM, "a secure address"),
                (u32::MAX - 8, "a range that wraps"),
                (
                    NS_RAM_BASE + NS_RAM_SIZE - 4,
                    "a range past the end of NS RAM",
                ),
            ] {
                let mut regs = valid_regs(op);
                regs[i] = addr;
                refused(op, regs, &[psa::ERROR_PROGRAMMER_ERROR], what);
                checked += 1;
            }
            if *reg != Reg::In {
                let mut regs = valid_regs(op);
                regs[i] = NS_CODE_BASE;
                refused(op, regs, &[psa::ERROR_PROGRAMMER_ERROR], "read-only memory");
            }
        }
    }
    assert_eq!(checked, 3 * pointers);
    assert_eq!(pointers, 22, "every pointer register of every operation");
}

/// The largest input `op` takes (its cap, or its exact length).
fn input_cap(op: Op) -> u32 {
    let cap = match op {
        Op::ConsoleWrite => CONSOLE_MAX,
        Op::AttestToken => NONCE_MAX,
        Op::FwuWrite => FWU_CHUNK,
        Op::ItsSet => ITS_CHUNK,
        Op::UpdateAnchor => TRUST_ANCHOR_LEN,
        Op::UpdateBegin => ENVELOPE_CAP,
        Op::UpdateWrite => UPDATE_BLOCK_CAP,
        Op::SignHash => HASH_LEN,
        other => panic!("{other:?} takes no input"),
    };
    cap as u32
}

#[test]
fn every_oversize_length_is_refused_and_nothing_is_written() {
    let mut checked = 0;
    for &op in Op::ALL.iter().filter(|op| op.takes_pointer()) {
        for (i, reg) in op.regs().iter().enumerate() {
            let (lens, expected): (Vec<u32>, &[i32]) = match reg {
                // Inputs have caps (or exact lengths): checked first.
                Reg::InLen => (
                    vec![input_cap(op) + 1, NS_RAM_SIZE, u32::MAX],
                    &[psa::ERROR_INVALID_ARGUMENT],
                ),
                // An output capacity past the caller's memory is a refused range (or, for a
                // record, a wrong size).
                Reg::OutCap => (
                    vec![NS_RAM_SIZE, u32::MAX],
                    &[psa::ERROR_INVALID_ARGUMENT, psa::ERROR_PROGRAMMER_ERROR],
                ),
                _ => continue,
            };
            for len in lens {
                let mut regs = valid_regs(op);
                regs[i] = len;
                refused(op, regs, expected, "an oversize length");
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "{checked}");
}

#[test]
fn records_of_the_wrong_size_are_refused() {
    for op in [
        Op::BootInfo,
        Op::UpdateStatus,
        Op::ItsStatus,
        Op::LastRefusal,
    ] {
        for delta in [-1i64, 1] {
            let mut regs = valid_regs(op);
            regs[1] = (i64::from(regs[1]) + delta) as u32;
            refused(
                op,
                regs,
                &[psa::ERROR_INVALID_ARGUMENT],
                "a wrong record size",
            );
        }
    }
}

#[test]
fn nonce_lengths_are_psa_s() {
    for len in [0, 16, 31, 33, 63, 65] {
        let mut regs = valid_regs(Op::AttestToken);
        regs[1] = len;
        refused(
            Op::AttestToken,
            regs,
            &[psa::ERROR_INVALID_ARGUMENT],
            "a bad nonce length",
        );
    }
}

#[test]
fn random_lengths_outside_the_cap_are_refused() {
    for len in [0, RANDOM_CAP as u32 + 1, 4096] {
        let mut regs = valid_regs(Op::GenerateRandom);
        regs[1] = len;
        refused(
            Op::GenerateRandom,
            regs,
            &[psa::ERROR_INVALID_ARGUMENT],
            "a random length outside 1..=RANDOM_CAP",
        );
    }
}

#[test]
fn random_bytes_fill_the_buffer_and_differ_per_call() {
    let mut s = secure();
    let mut g = SimGate::new(&mut s);
    let mut a = [0u8; RANDOM_CAP];
    let mut b = [0u8; RANDOM_CAP];
    g.generate_random(&mut a).unwrap();
    g.generate_random(&mut b).unwrap();
    assert_ne!(a, b, "two calls gave the same bytes");
    assert_ne!(a, [0; RANDOM_CAP]);
    // Every byte of the buffer is written, at the end too.
    assert!(a[RANDOM_CAP - 8..] != [0; 8] || b[RANDOM_CAP - 8..] != [0; 8]);
    let mut one = [0u8; 1];
    g.generate_random(&mut one).unwrap();
    let mut too_many = [0u8; RANDOM_CAP + 1];
    assert_eq!(
        g.generate_random(&mut too_many).unwrap_err().status(),
        psa::ERROR_INVALID_ARGUMENT
    );
}

#[test]
fn calls_cross_the_simulated_gate() {
    let mut s = secure();
    let mut g = SimGate::new(&mut s);
    g.its_set(5, b"hello").unwrap();
    let mut out = [0u8; 16];
    assert_eq!(g.its_get(5, &mut out), Ok(5));
    assert_eq!(&out[..5], b"hello");
    let mut small = [0u8; 2];
    assert_eq!(
        g.its_get(5, &mut small).unwrap_err().status(),
        psa::ERROR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        g.its_get(6, &mut out).unwrap_err().status(),
        psa::ERROR_DOES_NOT_EXIST
    );
    let r = g.last_refusal().unwrap();
    assert_eq!(r.status, psa::ERROR_DOES_NOT_EXIST);
    assert_eq!(r.kind, refusal_kind::SERVICE);
    assert_eq!(r.text(), "no key or asset has this identifier");
    let mut token = [0u8; 1024];
    let n = g.attest_token(&[9; 32], &mut token).unwrap();
    assert!(n > 100);
    let mut key = [0u8; 65];
    assert_eq!(g.attest_public_key(&mut key), Ok(65));
    assert_eq!(key[0], 4);
    assert!(g.its_status().unwrap().assets >= 1);
    assert_eq!(g.boot_info().unwrap().version, [1, 2, 3, 0]);
    let mut cmd = [0u8; 8];
    assert_eq!(g.command(&mut cmd), Ok(4));
    g.console_write(b"hi").unwrap();
    let id = g.identity_key().unwrap();
    let mut exported = [0u8; 65];
    assert_eq!(
        g.export_public_key(castellan_services::KEY_ID_DEVICE_IDENTITY, &mut exported),
        Ok(65)
    );
    assert_eq!(exported, id);
    let sig = g
        .sign_hash(castellan_services::KEY_ID_DEVICE_IDENTITY, &[3; 32])
        .unwrap();
    assert_ne!(sig, [0; 64]);
    g.generate_signing_key(0x10).unwrap();
    g.destroy_key(0x10).unwrap();
    assert_eq!(
        g.destroy_key(0x10).unwrap_err().status(),
        psa::ERROR_DOES_NOT_EXIST
    );
    assert_eq!(
        g.fwu_start(10).unwrap_err().status(),
        psa::ERROR_NOT_SUPPORTED
    );
    assert_eq!(s.take_console(), b"hi");
}

#[test]
fn the_simulated_memory_is_the_only_memory() {
    let mut mem = SimNsMemory::new();
    assert!(!mem.check(SECURE_RAM, 1, castellan_gate_api::Access::Read));
    assert_eq!(
        mem.read(SECURE_RAM, &mut [0u8; 1]),
        Err(psa::ERROR_PROGRAMMER_ERROR)
    );
}
