//! The gate entries of the SUIT update client (`castellan_services::update`): over-the-air
//! updates decided in the secure world. The non-secure side (and the host bridge behind it)
//! only moves bytes; the release trust anchor lives in trusted storage where no `csl_its_*`
//! caller reaches it, and every refusal is printed with the services' own reason.
//!
//! ```text
//!  csl_update_anchor(key, 65)            write-once release trust anchor (same key again: ok)
//!  csl_update_begin(env, len, now)       envelope copied whole into secure RAM, then
//!                                        update_begin: authenticate, sequence, vendor/class,
//!                                        size/digest, expiry (now ≠ 0) → resume offset
//!  csl_update_write(offset, data, len)   next block (≤ 1 KiB) → bytes received
//!  csl_update_finish()                   SUIT procedure over the staged slot, MCUboot
//!                                        verification, install for trial → SUCCESS_REBOOT
//!  csl_update_status(out, size)          UpdateStatus   ·   csl_update_cancel()
//!  csl_fwu_accept()                      trial image accepted, sequence number stored
//! ```
//!
//! Pointer rules are the gate's ([`crate::gate`]): every range is checked with TTAT as the
//! unprivileged non-secure caller before it is touched, inputs are copied in before use,
//! outputs built in secure memory and copied out last.

use castellan_gate::{
    ENVELOPE_CAP, TRUST_ANCHOR_LEN, UPDATE_BLOCK_CAP, UPDATE_STATUS_SIZE, UpdateStatus, status,
    update_state,
};
use castellan_platform_an505::println;
use castellan_platform_an505::tz::{self, Access};
use castellan_services::{ServiceError, UpdateState};

use crate::fwu;
use crate::gate::{call, copy_in, copy_out};
use crate::state::State;

/// Prints the services' reason for a refusal and returns its PSA status.
fn refused(op: &str, e: ServiceError) -> i32 {
    match e {
        ServiceError::UpdateRefused(r) => println!("[secure] update: {op} refused: {r}"),
        other => println!("[secure] update: {op} refused: {other}"),
    }
    e.psa_status()
}

/// Stores the release trust anchor (P-256, SEC1 uncompressed) in trusted storage, write-once.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_update_anchor(key: u32, len: u32) -> i32 {
    call(|s| {
        if len as usize != TRUST_ANCHOR_LEN {
            return Err(status::INVALID_ARGUMENT);
        }
        let mut buf = [0u8; TRUST_ANCHOR_LEN];
        copy_in(key, len, &mut buf)?;
        s.svc
            .update_provision_trust_anchor(&buf)
            .map_err(|e| refused("trust anchor", e))?;
        println!("[secure] update: release trust anchor provisioned (write-once)");
        Ok(status::SUCCESS)
    })
}

/// Takes a SUIT envelope (copied whole into secure memory first) and starts or resumes its
/// update; returns the offset where the download continues. `now` is unix seconds, 0 when the
/// caller does not know the time (expiry is then not checked: QEMU has no trusted clock).
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_update_begin(envelope: u32, len: u32, now: u32) -> i32 {
    call(|s| {
        if len as usize > ENVELOPE_CAP {
            println!(
                "[secure] update: begin refused: the manifest envelope has {len} bytes, more than the {ENVELOPE_CAP} the device keeps"
            );
            return Err(status::INVALID_ARGUMENT);
        }
        let mut buf = [0u8; ENVELOPE_CAP];
        copy_in(envelope, len, &mut buf)?;
        let env = buf.get(..len as usize).ok_or(status::INVALID_ARGUMENT)?;
        let now = (now != 0).then_some(u64::from(now));
        let plan = s
            .svc
            .update_begin(env, now)
            .map_err(|e| refused("begin", e))?;
        println!(
            "[secure] update: manifest sequence {} authenticated with the release trust anchor; vendor, class and sequence accepted; image {} bytes{}",
            plan.sequence,
            plan.image_size,
            if plan.resume_offset > 0 {
                " (resuming)"
            } else {
                ""
            }
        );
        i32::try_from(plan.resume_offset).map_err(|_| status::GENERIC_ERROR)
    })
}

/// Writes the next block (at most [`UPDATE_BLOCK_CAP`] bytes) of the payload at `offset`;
/// returns the bytes received so far.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_update_write(offset: u32, data: u32, len: u32) -> i32 {
    call(|s| {
        let mut buf = [0u8; UPDATE_BLOCK_CAP];
        if len as usize > buf.len() {
            return Err(status::INVALID_ARGUMENT);
        }
        copy_in(data, len, &mut buf)?;
        let block = buf.get(..len as usize).ok_or(status::INVALID_ARGUMENT)?;
        let received = s
            .svc
            .update_write(u64::from(offset), block)
            .map_err(|e| refused("payload", e))?;
        i32::try_from(received).map_err(|_| status::GENERIC_ERROR)
    })
}

/// Checks the staged payload against the manifest (size, digest), verifies the MCUboot image
/// and installs it for a trial run at the next reboot.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_update_finish() -> i32 {
    call(|s| {
        let r = s.svc.update_finish().map_err(|e| refused("finish", e))?;
        println!(
            "[secure] update: payload matches the manifest (size, SHA-256), image verified; installed for a trial run at the next boot"
        );
        Ok(r.psa_status())
    })
}

/// Abandons the update in progress (or forgets a failed one).
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_update_cancel() -> i32 {
    call(|s| {
        s.svc.update_cancel().map_err(|e| refused("cancel", e))?;
        println!("[secure] update: cancelled; the secondary slot is erased");
        Ok(status::SUCCESS)
    })
}

/// The update client's state ([`UpdateStatus`]).
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_update_status(out: u32, size: u32) -> i32 {
    call(|s| {
        if size as usize != UPDATE_STATUS_SIZE {
            return Err(status::INVALID_ARGUMENT);
        }
        if !tz::ns_range_ok(out, size, Access::Write) {
            return Err(status::PROGRAMMER_ERROR);
        }
        let st = s.svc.update_status().map_err(|e| e.psa_status())?;
        let anchor = s
            .svc
            .update_trust_anchor()
            .map_err(|e| e.psa_status())?
            .is_some();
        let mut r = UpdateStatus::zeroed();
        r.anchor = u32::from(anchor);
        r.sequence = st.sequence.unwrap_or(0);
        r.installed_sequence = st.installed_sequence;
        r.state = match st.state {
            UpdateState::Idle => update_state::IDLE,
            UpdateState::Downloading {
                received,
                image_size,
            } => {
                r.received = received;
                r.image_size = image_size;
                update_state::DOWNLOADING
            }
            UpdateState::Staged => update_state::STAGED,
            UpdateState::Trial => update_state::TRIAL,
            UpdateState::Rejected => update_state::REJECTED,
            UpdateState::Reverted => update_state::REVERTED,
            UpdateState::Failed { error } => {
                r.error = error;
                update_state::FAILED
            }
        };
        copy_out(out, size, &status_bytes(&r))?;
        Ok(status::SUCCESS)
    })
}

fn status_bytes(r: &UpdateStatus) -> [u8; UPDATE_STATUS_SIZE] {
    let mut b = [0u8; UPDATE_STATUS_SIZE];
    // Safety: `UpdateStatus` is `repr(C)` integers laid out without padding (checked by the
    // size assertion below), so all its bytes are initialised.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (r as *const UpdateStatus).cast::<u8>(),
            b.as_mut_ptr(),
            UPDATE_STATUS_SIZE,
        );
    }
    b
}

const _: () = assert!(UPDATE_STATUS_SIZE == 6 * 4 + 2 * 8);

/// `csl_fwu_accept`: a trial image is accepted by the firmware-update service (which confirms
/// it and stores the release's sequence number); anything else is the raw path's.
pub fn accept(s: &mut State) -> Result<i32, i32> {
    if s.confirmed {
        return Ok(status::SUCCESS);
    }
    let trial = s
        .svc
        .fwu_query(castellan_services::fwu::COMPONENT_APPLICATION)
        .is_ok_and(|i| i.state == castellan_services::FwuState::Trial);
    if !trial {
        return fwu::accept(s);
    }
    s.svc.fwu_accept().map_err(|e| refused("accept", e))?;
    s.confirmed = true;
    let installed = s.svc.update_installed_sequence().unwrap_or(0);
    println!(
        "[secure] fwu: running image accepted (image_ok set; the counter rises at the next boot); installed release sequence {installed}"
    );
    Ok(status::SUCCESS)
}
