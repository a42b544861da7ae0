//! Whatever a (broken or hostile) radio answers on SPI, the drivers never panic and never
//! report a frame longer than the caller's buffer.

use std::convert::Infallible;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin};
use embedded_hal::spi::{self, Operation, SpiDevice};
use proptest::prelude::*;
use trickle_core::client::Instant;
use trickle_core::link::{Clock, FrameLink};
use trickle_lora::bus::{BlockingBus, NoPin};
use trickle_lora::sx126x::{Sx126x, Variant};
use trickle_lora::sx127x::Sx127x;
use trickle_lora::{Bandwidth, Config, LoRa, LoraParams, Radio, SpreadingFactor};

/// Answers every read with the next bytes of `data`, cyclically.
struct Chaos {
    data: Vec<u8>,
    at: usize,
}

impl spi::ErrorType for Chaos {
    type Error = Infallible;
}

impl SpiDevice for Chaos {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        for op in ops {
            if let Operation::Read(r) = op {
                for b in r.iter_mut() {
                    *b = self.data[self.at % self.data.len()];
                    self.at += 1;
                }
            }
        }
        Ok(())
    }
}

/// A pin whose level follows `levels`, cyclically.
struct Flaky(Vec<bool>, usize);

impl ErrorType for Flaky {
    type Error = Infallible;
}

impl InputPin for Flaky {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        self.1 += 1;
        Ok(self.0[self.1 % self.0.len()])
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

struct NoDelay;
impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _: u32) {}
}

struct Ticks(u64);
impl Clock for Ticks {
    fn now(&mut self) -> Instant {
        self.0 += 7;
        Instant(self.0)
    }
}

fn run<R: Radio>(
    radio: R,
    busy: Flaky,
    data: Vec<u8>,
    irq: Vec<bool>,
    buf_len: usize,
) -> Result<(), TestCaseError> {
    let config = Config::eu868(
        869_525_000,
        LoraParams::new(SpreadingFactor::Sf7, Bandwidth::Khz125),
    );
    let bus = BlockingBus::new(Chaos { data, at: 0 }, NoPin, busy, Flaky(irq, 0), NoDelay);
    let Ok(mut link) = LoRa::new(radio, bus, Ticks(0), config) else {
        return Ok(());
    };
    let mut buf = vec![0u8; buf_len];
    for i in 0..8 {
        if let Ok(Some(n)) = link.receive(&mut buf) {
            prop_assert!(n <= buf_len);
        }
        if let Ok(Some(n)) = link.receive_timeout(&mut buf, 3) {
            prop_assert!(n <= buf_len);
        }
        let _ = link.transmit(&buf[..buf_len.min(i * 30)]);
    }
    Ok(())
}

proptest! {
    #[test]
    fn sx127x_survives_any_answer(
        mut data in proptest::collection::vec(any::<u8>(), 1..64),
        irq in proptest::collection::vec(any::<bool>(), 1..8),
        buf_len in 0usize..300,
    ) {
        // Let the presence check pass half of the time.
        if data[0] & 1 == 0 {
            data[0] = 0x12;
        }
        run(Sx127x::new(), Flaky(vec![false], 0), data, irq, buf_len)?;
    }

    #[test]
    fn sx126x_survives_any_answer(
        mut data in proptest::collection::vec(any::<u8>(), 2..64),
        irq in proptest::collection::vec(any::<bool>(), 1..8),
        busy in proptest::collection::vec(any::<bool>(), 1..4),
        buf_len in 0usize..300,
    ) {
        if data[0] & 1 == 0 {
            data[0] = 0x14;
            data[1] = 0x24;
        }
        run(Sx126x::new(Variant::Sx1262), Flaky(busy, 0), data, irq, buf_len)?;
    }
}
