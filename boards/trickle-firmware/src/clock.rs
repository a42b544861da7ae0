//! A 1 ms tick from SysTick: the client's [`Clock`].

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use trickle_core::client::Instant;
use trickle_core::link::Clock;

/// Milliseconds since [`SysTickClock::start`], wrapping every 49.7 days (widened in `now`).
static TICKS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes TICKS, so load + store is race-free (and works on ARMv6-M,
    // which has no atomic read-modify-write).
    TICKS.store(
        TICKS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Monotonic milliseconds from SysTick interrupts.
pub struct SysTickClock {
    _syst: SYST,
    last: u32,
    high: u64,
}

impl SysTickClock {
    /// Starts SysTick at one interrupt per millisecond of a `core_hz` processor clock.
    pub fn start(mut syst: SYST, core_hz: u32) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(core_hz / 1_000 - 1);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickClock {
            _syst: syst,
            last: 0,
            high: 0,
        }
    }
}

impl Clock for SysTickClock {
    fn now(&mut self) -> Instant {
        let t = TICKS.load(Ordering::Relaxed);
        if t < self.last {
            self.high += 1 << 32;
        }
        self.last = t;
        Instant(self.high | u64::from(t))
    }
}
