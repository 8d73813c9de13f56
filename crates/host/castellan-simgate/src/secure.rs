//! The secure side of a simulated device's gate: [`SimSecure`] owns the secure services and is
//! the [`GateBackend`] the shared dispatcher runs over. What the firmware's platform does with
//! the board (console, raw firmware update, reset, power) a simulated device either keeps
//! (console text) or refuses (`NOT_SUPPORTED`: it updates through the SUIT client, and its host
//! powers it off).

use castellan_gate_api::{
    BootInfo, Detector, ENVELOPE_CAP, Event, GateBackend, NsMemory, Op, Refusal, dispatch, psa,
};
use castellan_hal::{Flash, MonotonicCounter, RandomSource};
use castellan_services::{SecureServices, ServiceError, UpdateRefusal};

/// The secure world of a simulated device, as its gate reaches it.
pub struct SimSecure<F, C, R> {
    services: SecureServices<F, C, R>,
    boot: BootInfo,
    command: Vec<u8>,
    console: Vec<u8>,
    last: Option<Refusal>,
}

impl<F, C, R> std::fmt::Debug for SimSecure<F, C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSecure")
            .field("boot", &self.boot)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl<F: Flash, C: MonotonicCounter, R: RandomSource> SimSecure<F, C, R> {
    /// The secure side of a device whose services run and whose boot is `boot`.
    pub fn new(services: SecureServices<F, C, R>, boot: BootInfo) -> Self {
        SimSecure {
            services,
            boot,
            command: Vec::new(),
            console: Vec::new(),
            last: None,
        }
    }

    /// The same, with the operator's command line for this run.
    pub fn with_command(mut self, command: &[u8]) -> Self {
        self.command = command.to_vec();
        self
    }

    /// Runs one gate call for a caller whose memory is `mem` (the firmware's dispatcher). The
    /// refusal kept is the last call's: a call clears it, except the one that reads it.
    pub fn call<M: NsMemory>(&mut self, op: Op, args: [u32; 4], mem: &mut M) -> i32 {
        if op != Op::LastRefusal {
            self.last = None;
        }
        dispatch(op, args, mem, self)
    }

    /// The services, for the platform around them (saving the device, reading its flash);
    /// never for the normal world.
    pub fn services(&self) -> &SecureServices<F, C, R> {
        &self.services
    }

    /// The services, mutably (the same rule).
    pub fn services_mut(&mut self) -> &mut SecureServices<F, C, R> {
        &mut self.services
    }

    /// Stops the secure side and gives the services back (a simulated reboot restarts them
    /// over their platform).
    pub fn into_services(self) -> SecureServices<F, C, R> {
        self.services
    }

    /// Console text the normal world wrote, taken.
    pub fn take_console(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.console)
    }

    fn keep(&mut self, e: &ServiceError) {
        self.last = Some(Refusal::of(e));
    }
}

impl<F: Flash, C: MonotonicCounter, R: RandomSource> GateBackend for SimSecure<F, C, R> {
    type Services = SecureServices<F, C, R>;

    fn services(&mut self) -> &mut Self::Services {
        &mut self.services
    }

    fn console_write(&mut self, text: &[u8]) {
        self.console.extend_from_slice(text);
    }

    fn command(&mut self) -> &[u8] {
        &self.command
    }

    fn boot_info(&mut self) -> BootInfo {
        self.boot
    }

    fn fwu_start(&mut self, _size: u32) -> Result<(), i32> {
        Err(psa::ERROR_NOT_SUPPORTED)
    }

    fn fwu_write(&mut self, _offset: u32, _data: &[u8]) -> Result<(), i32> {
        Err(psa::ERROR_NOT_SUPPORTED)
    }

    fn fwu_install(&mut self, _permanent: bool) -> Result<(), i32> {
        Err(psa::ERROR_NOT_SUPPORTED)
    }

    fn fwu_accept(&mut self) -> Result<(), i32> {
        self.services.fwu_accept().map_err(|e| {
            self.keep(&e);
            e.psa_status()
        })
    }

    fn system_reset(&mut self) -> i32 {
        psa::ERROR_NOT_SUPPORTED
    }

    fn power_off(&mut self, _code: u32) -> i32 {
        psa::ERROR_NOT_SUPPORTED
    }

    fn note(&mut self, event: Event<'_, ServiceError>) {
        match event {
            Event::Refused { error, .. } => self.keep(error),
            Event::EnvelopeTooLarge { len } => self.keep(&ServiceError::UpdateRefused(
                UpdateRefusal::EnvelopeTooLarge {
                    len: len as usize,
                    max: ENVELOPE_CAP,
                },
            )),
            _ => {}
        }
    }

    fn last_refusal(&mut self) -> Option<Refusal> {
        self.last
    }

    fn detector(&mut self) -> Option<&mut dyn Detector> {
        self.services.detector()
    }
}
