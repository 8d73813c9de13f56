//! The runtime's time driver: SysTick of the non-secure world at 1 kHz (`embassy-time`'s
//! `tick-hz-1_000`), on the 20 MHz core clock of mps2-an505 in QEMU.
//!
//! Time is a count of tick interrupts. Under `-icount` (deterministic) it is exact; when QEMU
//! runs behind the host's real time (a loaded machine), a tick that comes while the previous
//! one is still pending is lost and time runs slow. Nothing here needs more than that (timeouts
//! and protocol timers); a free-running timer read in `now()` is the fix when something does.
//!
//! The SysTick handler counts ticks and wakes every timer that is due (embassy's integrated
//! timer queue, behind a critical section); it also wakes the network driver's poll (see
//! [`POLL`]), since the first layer of the LAN9118 driver polls its FIFOs once per tick
//! instead of taking the controller's interrupt.

use core::cell::RefCell;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::Waker;

use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_sync::waitqueue::AtomicWaker;
use embassy_time_queue_utils::Queue;

use crate::supervisor::{self, CORE_HZ, Op};

/// Ticks per second (must match the `tick-hz-*` feature of `embassy-time-driver`).
pub const TICK_HZ: u32 = 1_000;

/// Woken at every tick: the network driver registers here when its FIFOs are empty.
pub static POLL: AtomicWaker = AtomicWaker::new();

/// The tick count is 64-bit (embassy's time never wraps) on a core without 64-bit atomics: two
/// words that only the SysTick handler writes, low word first, the high word when the low one
/// wraps. A reader in thread mode retries when the high word changed under it.
struct SysTickDriver {
    lo: AtomicU32,
    hi: AtomicU32,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    lo: AtomicU32::new(0),
    hi: AtomicU32::new(0),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl SysTickDriver {
    /// Counts one tick (SysTick handler only); returns the new count.
    fn tick(&self) -> u64 {
        let lo = self.lo.load(Ordering::Relaxed).wrapping_add(1);
        self.lo.store(lo, Ordering::Release);
        let mut hi = self.hi.load(Ordering::Relaxed);
        if lo == 0 {
            hi = hi.wrapping_add(1);
            self.hi.store(hi, Ordering::Release);
        }
        u64::from(hi) << 32 | u64::from(lo)
    }
}

impl embassy_time_driver::Driver for SysTickDriver {
    fn now(&self) -> u64 {
        loop {
            let h1 = self.hi.load(Ordering::Acquire);
            let lo = self.lo.load(Ordering::Acquire);
            let h2 = self.hi.load(Ordering::Acquire);
            if h1 == h2 {
                return u64::from(h1) << 32 | u64::from(lo);
            }
        }
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        if at <= self.now() {
            waker.wake_by_ref();
            return;
        }
        critical_section::with(|cs| {
            self.queue.borrow(cs).borrow_mut().schedule_wake(at, waker);
        });
    }
}

/// Starts SysTick (through the supervisor).
pub fn start() {
    supervisor::call(Op::Start, CORE_HZ / TICK_HZ - 1);
}

/// The park function of the network driver: wake me at the next tick.
pub fn wake_next_tick(waker: &Waker) {
    POLL.register(waker);
}

#[exception]
fn SysTick() {
    let now = DRIVER.tick();
    critical_section::with(|cs| {
        DRIVER.queue.borrow(cs).borrow_mut().next_expiration(now);
    });
    POLL.wake();
}
