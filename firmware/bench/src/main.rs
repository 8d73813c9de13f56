//! Instructions spent verifying an MCUboot image on the Cortex-M33, measured in QEMU.
//!
//! The runner loads `[u32 length][32-byte SHA-256 of the trusted key's SPKI][image]` at
//! 0x1010_0000 and starts QEMU with `-icount shift=0`, where each guest instruction is 1 ns of
//! virtual time and SysTick counts virtual time; [`cycles::calibrate`] turns ticks into
//! instructions with a loop of known length. Measurements over the same bytes in RAM: the
//! SHA-256 of the hashed region, the ECDSA P-256 check of the signature over that digest with
//! the `p256` crate (the portable baseline) and with the P256-Cortex-M4 assembly the images use,
//! and the whole `castellan_image::verify` (parse, hash, key check, signature). A forged
//! signature (one bit of `r` flipped) and a changed digest must be refused by the assembly.
//! SHA-256 is measured with the `sha2` crate (the baseline) and with OpenSSL's ARMv4 assembly
//! the images use; the assembly must give the FIPS 180 answer for "abc" and agree with `sha2`
//! on every length around the block and padding boundaries, split into updates of every shape.
#![no_std]
#![no_main]

use castellan_image::tlv::kind;
use castellan_image::{ImageLayout, PublicKey, TrustedKey};
use castellan_platform_an505::{EXIT_OK, EXIT_SECURE_ERROR, cycles, halt, println, semihosting};
use castellan_sha256_cortex_m::Sha256 as AsmSha256;
use cortex_m_rt::{entry, exception};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest as _, Sha256};

const BLOB: usize = 0x1010_0000;

#[exception]
fn SysTick() {
    cycles::on_systick();
}

fn fail(msg: &str) -> ! {
    halt(EXIT_SECURE_ERROR, format_args!("[bench] {msg}"))
}

/// SHA-256("abc"), FIPS 180-2 appendix B.1.
const ABC: [u8; 32] = [
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
];

/// The assembly's SHA-256 against the FIPS 180 answer and against `sha2` on every length from
/// 0 to 300 bytes (empty input, one and several blocks, the 55/56-byte padding edge), each
/// hashed in one update and in updates of 1, 7 and 64 bytes.
fn sha256_assembly_agrees(image: &[u8]) {
    if <[u8; 32]>::from(AsmSha256::digest(b"abc")) != ABC {
        fail("the SHA-256 assembly gives the wrong digest of \"abc\"");
    }
    let mut checked = 0u32;
    for len in 0..=300usize {
        let data = image.get(..len).unwrap_or(&[]);
        let want = Sha256::digest(data);
        for step in [len.max(1), 1, 7, 64] {
            let mut h = AsmSha256::new();
            for piece in data.chunks(step) {
                h.update(piece);
            }
            if h.finalize() != want {
                fail("the SHA-256 assembly disagrees with sha2");
            }
            checked += 1;
        }
    }
    println!("[bench] sha256 assembly: FIPS 180 \"abc\" and {checked} digests agree with sha2");
}

#[entry]
fn main() -> ! {
    cycles::start();
    // Safety: the runner loaded the blob at BLOB; its length word is bounded below.
    let len = unsafe { core::ptr::read_volatile(BLOB as *const u32) } as usize;
    if !(64..=0x10_0000).contains(&len) {
        fail("no image loaded at 0x10100000");
    }
    // Safety: as above.
    let key_hash: [u8; 32] = unsafe { core::ptr::read_volatile((BLOB + 4) as *const [u8; 32]) };
    // Safety: as above; `len` bytes follow the header of the blob.
    let image: &[u8] = unsafe { core::slice::from_raw_parts((BLOB + 36) as *const u8, len) };

    let (cal_insns, cal_ticks) = cycles::calibrate(1_000_000);
    let per_tick = cal_insns as f64 / cal_ticks.max(1) as f64;
    println!("[bench] calibration: {cal_insns} instructions = {cal_ticks} SysTick ticks");
    let (board_insns, board_ticks) = cycles::calibrate_board_counter(1_000_000);
    println!("[bench] board counter: {board_insns} instructions = {board_ticks} ticks");
    let insns = |t: u64| (t as f64 * per_tick) as u64;

    let mut src: &[u8] = image;
    let layout = ImageLayout::read(&mut src).unwrap_or_else(|_| fail("bad image"));
    let hashed = layout.hashed_end() as usize;
    let mut pubkey = None;
    let mut sig = None;
    for t in layout.unprotected.iter(&mut src).flatten() {
        let v = image.get(t.offset as usize..t.offset as usize + usize::from(t.len));
        match t.kind {
            kind::PUBKEY => pubkey = v,
            kind::ECDSA_SIG => sig = v,
            _ => {}
        }
    }
    let (Some(pubkey), Some(sig)) = (pubkey, sig) else {
        fail("the image needs a PUBKEY and an ECDSA signature TLV")
    };
    let Ok(PublicKey::P256(vk)) = PublicKey::from_spki_der(pubkey) else {
        fail("the image's key is not P-256")
    };
    let body = usize::from(sig.get(1).copied().unwrap_or(0)) + 2;
    let signature = p256::ecdsa::Signature::from_der(sig.get(..body).unwrap_or(&[]))
        .unwrap_or_else(|_| fail("bad signature encoding"));
    println!(
        "[bench] image: {} payload bytes, {hashed} bytes hashed, ECDSA P-256 + SHA-256",
        layout.header.img_size
    );

    // 1. SHA-256 of the hashed region: the `sha2` crate, then the assembly (which the images
    // use), which must agree with it.
    let region = image.get(..hashed).unwrap_or(&[]);
    let t0 = cycles::now();
    let reference = Sha256::digest(region);
    let t_sha2 = cycles::now() - t0;
    let t0 = cycles::now();
    let digest = AsmSha256::digest(region);
    let t_sha = cycles::now() - t0;
    if digest != reference {
        fail("the SHA-256 assembly disagrees with sha2 over the image");
    }
    sha256_assembly_agrees(image);
    // 2. The signature check over that digest: the portable `p256` crate, then the assembly.
    let t0 = cycles::now();
    let ok = vk.verify_prehash(&digest, &signature).is_ok();
    let t_generic = cycles::now() - t0;
    if !ok {
        fail("signature does not verify");
    }
    let point = vk.to_sec1_point(false);
    let (r, s) = signature.split_bytes();
    let (r, s): ([u8; 32], [u8; 32]) = (r.into(), s.into());
    let digest: [u8; 32] = digest.into();
    let t0 = cycles::now();
    let ok = castellan_p256_cortex_m::verify_prehash(point.as_bytes(), &digest, &r, &s).is_ok();
    let t_sig = cycles::now() - t0;
    if !ok {
        fail("signature does not verify with the P256-Cortex-M4 assembly");
    }
    let mut forged_r = r;
    if let Some(b) = forged_r.last_mut() {
        *b ^= 1;
    }
    let mut other_digest = digest;
    if let Some(b) = other_digest.first_mut() {
        *b ^= 0x80;
    }
    let asm = |d: &[u8; 32], r: &[u8; 32]| {
        castellan_p256_cortex_m::verify_prehash(point.as_bytes(), d, r, &s).is_ok()
    };
    if asm(&digest, &forged_r) || asm(&other_digest, &r) {
        fail("the P256-Cortex-M4 assembly accepted a forged signature");
    }
    println!("[bench] forged signature and changed digest refused by the assembly");
    // 3. The whole verification.
    let t0 = cycles::now();
    let mut src: &[u8] = image;
    let r = castellan_image::verify(&mut src, TrustedKey::Sha256OfSpki(key_hash));
    let t_all = cycles::now() - t0;
    if r.is_err() {
        fail("castellan_image::verify refused the image");
    }

    let (i_sha, i_sig, i_all) = (insns(t_sha), insns(t_sig), insns(t_all));
    println!(
        "[bench] ecdsa-p256 signature check, p256 crate: {} instructions",
        insns(t_generic)
    );
    println!(
        "[bench] sha256, sha2 crate: {} instructions ({:.1} per byte)",
        insns(t_sha2),
        insns(t_sha2) as f64 / hashed as f64
    );
    println!(
        "[bench] sha256: {i_sha} instructions ({:.1} per byte)",
        i_sha as f64 / hashed as f64
    );
    println!("[bench] ecdsa-p256 signature check, P256-Cortex-M4 assembly: {i_sig} instructions");
    println!("[bench] castellan_image::verify: {i_all} instructions");
    println!(
        "[bench] stack high-water: {} bytes",
        castellan_platform_an505::stack_used()
    );
    println!("[bench] done");
    semihosting::exit(EXIT_OK)
}
