//! The runtime's time driver: SysTick of the non-secure world at 1 kHz (`embassy-time`'s
//! `tick-hz-1_000`), on the 25 MHz core clock of mps2-an505 in QEMU.
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

struct SysTickDriver {
    ticks: AtomicU32,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: AtomicU32::new(0),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl embassy_time_driver::Driver for SysTickDriver {
    fn now(&self) -> u64 {
        u64::from(self.ticks.load(Ordering::Acquire))
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
    let now = u64::from(DRIVER.ticks.fetch_add(1, Ordering::AcqRel).wrapping_add(1));
    critical_section::with(|cs| {
        DRIVER.queue.borrow(cs).borrow_mut().next_expiration(now);
    });
    POLL.wake();
}
