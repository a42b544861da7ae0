//! Stand-ins for a board's peripherals whose values the compiler cannot predict, so the
//! drivers' code stays in the binary.
#![no_std]
#![forbid(unsafe_code)]

use core::convert::Infallible;
use core::hint::black_box;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use embedded_hal::spi::{self, Operation, SpiDevice};
use trickle_core::client::Instant;
use trickle_core::link::Clock;

/// An SPI device that reads unknowable bytes.
pub struct Spi;
impl spi::ErrorType for Spi {
    type Error = Infallible;
}
impl SpiDevice for Spi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        for op in ops {
            match op {
                Operation::Read(r) => r.iter_mut().for_each(|b| *b = black_box(0)),
                Operation::Write(w) => {
                    black_box(&w);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A pin with an unknowable level.
pub struct Pin;
impl ErrorType for Pin {
    type Error = Infallible;
}
impl InputPin for Pin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(black_box(true))
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(black_box(false))
    }
}
impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        black_box(0);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        black_box(1);
        Ok(())
    }
}

/// A delay that does nothing visible.
pub struct Delay;
impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        black_box(ns);
    }
}

/// A clock with an unknowable time.
pub struct Ticks;
impl Clock for Ticks {
    fn now(&mut self) -> Instant {
        Instant(black_box(0))
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
