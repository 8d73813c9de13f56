//! The board's side of the gate: [`GateBackend`] for the partition's [`State`]. The services
//! are `castellan-services`' (their `GateServices`); the board adds the console, the
//! operator's command line, the boot record, the raw firmware update ([`crate::fwu`]),
//! acceptance of a trial image, reset and power off, and prints what the gate did (every
//! refusal of the SUIT update client with the services' own reason).
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

use castellan_gate::{BootInfo, ENVELOPE_CAP, Event, Fault as _, GateBackend, Op};
use castellan_platform_an505::console::{Console, line};
use castellan_platform_an505::{semihosting, tz};
use castellan_services::ServiceError;
use castellan_text::Piece::{Dec, Str, Text};

use crate::fwu;
use crate::state::{Services, State};

impl GateBackend for State {
    type Services = Services;

    fn services(&mut self) -> &mut Services {
        &mut self.svc
    }

    fn console_write(&mut self, text: &[u8]) {
        Console.write_bytes(text);
    }

    fn command(&mut self) -> &[u8] {
        self.command.get(..self.command_len).unwrap_or(&[])
    }

    fn boot_info(&mut self) -> BootInfo {
        let mut info = BootInfo::zeroed();
        let ms = self.boot.measurements();
        if let Some(bl) = ms.first() {
            info.bootloader_version = bl.version;
        }
        if let Some(app) = ms.get(1) {
            info.version = app.version;
            info.security_counter = app.security_counter;
            info.digest = app.digest;
        }
        info.counter = self.boot.boot.counter_after;
        info.lifecycle = self.boot.lifecycle;
        info.confirmed = u32::from(self.confirmed);
        info.upgrade = self.boot.boot.upgrade;
        info.set_text(self.boot.boot_text());
        info
    }

    fn fwu_start(&mut self, size: u32) -> Result<(), i32> {
        fwu::start(self, size)
    }

    fn fwu_write(&mut self, offset: u32, data: &[u8]) -> Result<(), i32> {
        fwu::write(self, offset, data)
    }

    fn fwu_install(&mut self, permanent: bool) -> Result<(), i32> {
        fwu::install(self, permanent)
    }

    fn fwu_accept(&mut self) -> Result<(), i32> {
        accept(self)
    }

    fn system_reset(&mut self) -> i32 {
        line("[secure] system reset requested by the application", &[]);
        tz::system_reset()
    }

    fn power_off(&mut self, code: u32) -> i32 {
        #[cfg(feature = "detect")]
        crate::detect::print_cost();
        line(
            "[secure] power off requested by the application (status {}; secure stack high-water {} bytes)",
            &[
                Dec(code.into()),
                Dec(castellan_platform_an505::stack_used().into()),
            ],
        );
        semihosting::exit(code.min(255))
    }

    #[cfg(feature = "detect")]
    fn detector(&mut self) -> Option<&mut dyn castellan_gate::Detector> {
        self.svc.detector()
    }

    fn note(&mut self, event: Event<'_, ServiceError>) {
        match event {
            Event::Refused { op, error } => {
                if matches!(
                    op,
                    Op::UpdateAnchor
                        | Op::UpdateBegin
                        | Op::UpdateWrite
                        | Op::UpdateFinish
                        | Op::UpdateCancel
                ) {
                    refused(op.name(), error);
                }
            }
            Event::EnvelopeTooLarge { len } => line(
                "[secure] update: begin refused: the manifest envelope has {} bytes, more than the {} the device keeps",
                &[Dec(len as u64), Dec(ENVELOPE_CAP as u64)],
            ),
            Event::TokenIssued { len } => line(
                "[secure] attestation: token of {} bytes issued",
                &[Dec(len as u64)],
            ),
            Event::AnchorProvisioned => line(
                "[secure] update: release trust anchor provisioned (write-once)",
                &[],
            ),
            Event::UpdateBegun(plan) => line(
                "[secure] update: manifest sequence {} authenticated with the release trust anchor; vendor, class and sequence accepted; image {} bytes{}",
                &[
                    Dec(plan.sequence),
                    Dec(plan.image_size.into()),
                    Str(if plan.resume_offset > 0 {
                        " (resuming)"
                    } else {
                        ""
                    }),
                ],
            ),
            Event::UpdateInstalled => line(
                "[secure] update: payload matches the manifest (size, SHA-256), image verified; installed for a trial run at the next boot",
                &[],
            ),
            Event::UpdateCancelled => line(
                "[secure] update: cancelled; the secondary slot is erased",
                &[],
            ),
        }
    }
}

/// Prints the services' reason for a refusal of the update client.
fn refused(op: &str, e: &ServiceError) {
    line(
        "[secure] update: {} refused: {}",
        &[Str(op), Text(e.reason())],
    );
}

/// `csl_fwu_accept`: a trial image is accepted by the firmware-update service (which confirms
/// it and stores the release's sequence number); anything else is the raw path's.
fn accept(s: &mut State) -> Result<(), i32> {
    if s.confirmed {
        return Ok(());
    }
    let trial = s
        .svc
        .fwu_query(castellan_services::fwu::COMPONENT_APPLICATION)
        .is_ok_and(|i| i.state == castellan_services::FwuState::Trial);
    if !trial {
        return fwu::accept(s);
    }
    s.svc.fwu_accept().map_err(|e| {
        refused("accept", &e);
        e.psa_status()
    })?;
    s.confirmed = true;
    let installed = s.svc.update_installed_sequence().unwrap_or(0);
    line(
        "[secure] fwu: running image accepted (image_ok set; the counter rises at the next boot); installed release sequence {}",
        &[Dec(installed)],
    );
    Ok(())
}
