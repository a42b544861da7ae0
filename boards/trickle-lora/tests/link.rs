//! Two (or more) emulated radios carrying Trickle-sized frames through the drivers.

mod emu;

use emu::{Shared, World};
use trickle_core::link::lora::Chip;
use trickle_core::link::{AsyncFrameLink, FrameLink};
use trickle_lora::bus::BlockingBus;
use trickle_lora::sx126x::{Sx126x, Variant};
use trickle_lora::sx127x::Sx127x;
use trickle_lora::{
    Bandwidth, Config, ConfigError, Error, LoRa, LoraParams, Radio, Region, SpreadingFactor,
};

fn config() -> Config {
    Config::eu868(
        868_100_000,
        LoraParams::new(SpreadingFactor::Sf9, Bandwidth::Khz125),
    )
}

/// A frame of `len` bytes whose content depends on `seed`.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

type Blocking<R, BUSY> =
    LoRa<R, BlockingBus<emu::EmuSpi, emu::EmuPin, BUSY, emu::EmuPin, emu::EmuDelay>, emu::EmuClock>;
type Sx1276Link = Blocking<Sx127x, trickle_lora::bus::NoPin>;
type Sx1262Link = Blocking<Sx126x, emu::EmuPin>;

fn sx1276(world: &Shared, c: Config) -> Sx1276Link {
    let (_, bus) = emu::sx1276(world);
    LoRa::new(Sx127x::new(), bus, emu::clock(world), c).unwrap()
}

fn sx1262(world: &Shared, c: Config) -> Sx1262Link {
    let (_, bus) = emu::sx1262(world);
    LoRa::new(Sx126x::new(Variant::Sx1262), bus, emu::clock(world), c).unwrap()
}

/// Sends Trickle's frame sizes (ACK 21, Hello 32, notification 44, the maximum 255) from `a`
/// to `b` and back, checking content and the time each took on the virtual clock.
fn exchange<A: FrameLink, B: FrameLink>(world: &Shared, a: &mut A, b: &mut B, chip_a: Chip)
where
    A::Error: core::fmt::Debug,
    B::Error: core::fmt::Debug,
{
    let mut buf = [0u8; 255];
    for (i, len) in [21usize, 32, 44, 255].into_iter().enumerate() {
        let f = frame(len, i as u8);
        let t0 = world.borrow().now_ns;
        a.transmit(&f).unwrap();
        let mut p = config().modem;
        p.chip = chip_a;
        let toa_us = p.time_on_air_us(len).unwrap();
        // TxDone is seen at the first 1 ms poll at or after the time on air (the SX126x adds
        // its BUSY waits, 2 µs per command in the emulator, before the transmission starts).
        let elapsed = world.borrow().now_ns - t0;
        let polled = toa_us.div_ceil(1000) * 1_000_000;
        if chip_a == Chip::Sx127x {
            assert_eq!(elapsed, polled, "{len} B");
        } else {
            assert!((polled..polled + 1_000_000).contains(&elapsed), "{len} B");
        }
        assert_eq!(b.receive(&mut buf).unwrap(), Some(len));
        assert_eq!(&buf[..len], &f[..]);
        assert_eq!(b.receive(&mut buf).unwrap(), None);

        let g = frame(len, 100 + i as u8);
        b.transmit(&g).unwrap();
        assert_eq!(a.receive(&mut buf).unwrap(), Some(len));
        assert_eq!(&buf[..len], &g[..]);
    }
}

#[test]
fn sx1276_to_sx1276() {
    let world = World::new();
    let mut a = sx1276(&world, config());
    let mut b = sx1276(&world, config());
    exchange(&world, &mut a, &mut b, Chip::Sx127x);
    assert_eq!(a.stats().tx_frames, 4);
    assert_eq!(a.stats().rx_frames, 4);
    assert_eq!(b.stats().rx_frames, 4);
}

#[test]
fn sx1262_to_sx1262() {
    let world = World::new();
    let mut a = sx1262(&world, config());
    let mut b = sx1262(&world, config());
    exchange(&world, &mut a, &mut b, Chip::Sx126x);
    assert_eq!(world.borrow().busy_violations, 0);
}

#[test]
fn sx1276_to_sx1262_and_back() {
    // The families share the modulation for SF7..SF12: with the same frequency, SF, bandwidth
    // and sync word (0x12 ↔ 0x1424) they hear each other.
    let world = World::new();
    let mut a = sx1276(&world, config());
    let mut b = sx1262(&world, config());
    exchange(&world, &mut a, &mut b, Chip::Sx127x);
    let world = World::new();
    let mut a = sx1262(&world, config());
    let mut b = sx1276(&world, config());
    exchange(&world, &mut a, &mut b, Chip::Sx126x);
    // Public LoRaWAN sync word 0x34 ↔ 0x3444, at SF12 (LDRO on for both).
    let world = World::new();
    let mut c = config();
    c.sync_word = trickle_lora::SYNC_WORD_LORAWAN;
    c.modem.sf = SpreadingFactor::Sf12;
    c.frequency_hz = 869_525_000;
    let mut a = sx1276(&world, c);
    let mut b = sx1262(&world, c);
    a.transmit(&frame(32, 7)).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(b.receive(&mut buf).unwrap(), Some(32));
}

#[test]
fn mismatched_settings_deliver_nothing() {
    let mut buf = [0u8; 255];
    let variants: [fn(&mut Config); 5] = [
        |c| c.modem.sf = SpreadingFactor::Sf10,
        |c| c.modem.bandwidth = Bandwidth::Khz62_5,
        |c| c.sync_word = 0x34,
        |c| c.frequency_hz = 868_300_000,
        |c| c.modem.low_data_rate_optimize = trickle_lora::LowDataRateOptimize::On,
    ];
    for change in variants {
        let world = World::new();
        let mut other = config();
        change(&mut other);
        let mut a = sx1276(&world, config());
        let mut b = sx1262(&world, other);
        let mut c = sx1276(&world, config());
        a.transmit(&frame(32, 1)).unwrap();
        assert_eq!(b.receive_timeout(&mut buf, 5_000).unwrap(), None);
        // The third radio, with matching settings, got it.
        assert_eq!(c.receive(&mut buf).unwrap(), Some(32));
        assert_eq!(world.borrow().delivered, 1);
    }
}

#[test]
fn receive_timeout_is_exact_in_virtual_time() {
    let world = World::new();
    let mut a = sx1262(&world, config());
    let mut b = sx1276(&world, config());
    let mut buf = [0u8; 255];
    let t0 = world.borrow().now_ms();
    assert_eq!(b.receive_timeout(&mut buf, 1_500).unwrap(), None);
    assert_eq!(world.borrow().now_ms(), t0 + 1_500);
    assert_eq!(a.receive_timeout(&mut buf, 250).unwrap(), None);
    assert_eq!(world.borrow().now_ms(), t0 + 1_750);
    // A frame already waiting returns at once.
    a.transmit(&frame(44, 3)).unwrap();
    let t1 = world.borrow().now_ms();
    assert_eq!(b.receive_timeout(&mut buf, 1_000).unwrap(), Some(44));
    assert_eq!(world.borrow().now_ms(), t1);
}

#[test]
fn crc_errors_are_dropped_and_counted() {
    let mut buf = [0u8; 255];
    let world = World::new();
    let mut a = sx1276(&world, config());
    let mut b = sx1276(&world, config());
    let mut c = sx1262(&world, config());
    world.borrow_mut().corrupt_next = true;
    a.transmit(&frame(32, 1)).unwrap();
    assert_eq!(b.receive(&mut buf).unwrap(), None);
    assert_eq!(c.receive(&mut buf).unwrap(), None);
    assert_eq!(b.stats().crc_errors, 1);
    assert_eq!(c.stats().crc_errors, 1);
    assert_eq!(b.stats().rx_frames, 0);
    // The link stays usable.
    a.transmit(&frame(32, 2)).unwrap();
    assert_eq!(b.receive(&mut buf).unwrap(), Some(32));
    assert_eq!(c.receive(&mut buf).unwrap(), Some(32));
    assert_eq!(&buf[..32], &frame(32, 2)[..]);
}

#[test]
fn transmitting_over_a_pending_frame_counts_it() {
    let world = World::new();
    let mut a = sx1276(&world, config());
    let mut b = sx1262(&world, config());
    let mut buf = [0u8; 64];
    a.transmit(&frame(20, 1)).unwrap();
    // b transmits before reading: the waiting frame is lost, and counted.
    b.transmit(&frame(21, 2)).unwrap();
    assert_eq!(b.stats().rx_discarded, 1);
    assert_eq!(b.receive(&mut buf).unwrap(), None);
    assert_eq!(a.receive(&mut buf).unwrap(), Some(21));
    assert_eq!(a.stats().rx_discarded, 0);
    a.transmit(&frame(22, 3)).unwrap();
    assert_eq!(b.receive(&mut buf).unwrap(), Some(22));
    assert_eq!(&buf[..22], &frame(22, 3)[..]);
}

#[test]
fn oversized_frames_are_refused_without_touching_the_radio() {
    let world = World::new();
    let (id, bus) = emu::sx1262(&world);
    let mut a = LoRa::new(
        Sx126x::new(Variant::Sx1262),
        bus,
        emu::clock(&world),
        config(),
    )
    .unwrap();
    world.borrow_mut().take_log(id);
    assert_eq!(a.max_frame_len(), 255);
    assert_eq!(
        a.transmit(&[0; 256]),
        Err(Error::FrameTooLong { len: 256, max: 255 })
    );
    assert!(world.borrow_mut().take_log(id).is_empty());
}

#[test]
fn receive_buffer_too_small_drops_the_frame() {
    let world = World::new();
    let mut a = sx1276(&world, config());
    let mut b = sx1262(&world, config());
    let mut small = [0u8; 16];
    a.transmit(&frame(32, 1)).unwrap();
    assert_eq!(
        b.receive(&mut small),
        Err(Error::BufferTooSmall { required: 32 })
    );
    assert_eq!(b.stats().too_long, 1);
    assert_eq!(b.receive(&mut small).unwrap(), None);
    a.transmit(&frame(16, 2)).unwrap();
    assert_eq!(b.receive(&mut small).unwrap(), Some(16));
}

#[test]
fn duty_cycle_refuses_with_the_exact_wait() {
    // 868.9 MHz: the 0.1 % sub-band, 3.6 s per hour. A 32-byte Hello at SF12/125 kHz takes
    // 1 810 432 µs; the first fits, the second would make 3 620 864 µs.
    let world = World::new();
    let mut c = config();
    c.frequency_hz = 868_900_000;
    c.modem.sf = SpreadingFactor::Sf12;
    let (id, bus) = emu::sx1276(&world);
    let mut a = LoRa::new(Sx127x::new(), bus, emu::clock(&world), c).unwrap();
    assert_eq!(a.time_on_air_us(32), Some(1_810_432));
    let start = world.borrow().now_ms();
    a.transmit(&frame(32, 1)).unwrap();
    world.borrow_mut().take_log(id);
    let now = world.borrow().now_ms();
    let wait = start + 1_811 + 3_600_000 - now;
    assert_eq!(
        a.transmit(&frame(32, 2)),
        Err(Error::DutyCycle { wait_ms: wait })
    );
    assert_eq!(a.duty_cycle_wait_ms(32), Ok(wait));
    // Nothing reached the radio.
    assert!(world.borrow_mut().take_log(id).is_empty());
    // A 10-byte frame (991 232 µs) still fits the remaining 1 789 568 µs.
    assert_eq!(a.duty_cycle_wait_ms(10), Ok(0));
    // One millisecond early: still refused, by exactly 1 ms.
    let t = world.borrow().now_ns + (wait - 1) * 1_000_000;
    world.borrow_mut().advance_to(t);
    assert_eq!(
        a.transmit(&frame(32, 2)),
        Err(Error::DutyCycle { wait_ms: 1 })
    );
    let t = world.borrow().now_ns + 1_000_000;
    world.borrow_mut().advance_to(t);
    a.transmit(&frame(32, 2)).unwrap();
    assert_eq!(a.stats().tx_frames, 2);

    // A 255-byte frame at SF12/7.8 kHz lasts longer than the whole 3.6 s budget.
    let mut slow = c;
    slow.modem.bandwidth = Bandwidth::Khz7_8;
    let (_, bus) = emu::sx1276(&world);
    let mut s = LoRa::new(Sx127x::new(), bus, emu::clock(&world), slow).unwrap();
    let airtime_us = s.time_on_air_us(255).unwrap();
    assert_eq!(
        s.transmit(&[0; 255]),
        Err(Error::ExceedsBudget { airtime_us })
    );
}

#[test]
fn unlimited_region_has_no_duty_cycle() {
    let world = World::new();
    let mut c = config();
    c.region = Region::Unlimited;
    c.frequency_hz = 915_000_000;
    let mut a = sx1262(&world, c);
    for _ in 0..40 {
        a.transmit(&frame(255, 0)).unwrap();
    }
}

#[test]
fn tx_timeout_returns_the_radio_to_receive() {
    for sx126 in [false, true] {
        let world = World::new();
        world.borrow_mut().tx_stuck = true;
        let mut buf = [0u8; 64];
        let t0 = world.borrow().now_ms();
        let err = if sx126 {
            let mut a = sx1262(&world, config());
            let e = a.transmit(&frame(2, 0));
            world.borrow_mut().tx_stuck = false;
            let mut b = sx1276(&world, config());
            b.transmit(&frame(3, 0)).unwrap();
            assert_eq!(a.receive(&mut buf).unwrap(), Some(3));
            e
        } else {
            let mut a = sx1276(&world, config());
            let e = a.transmit(&frame(2, 0));
            world.borrow_mut().tx_stuck = false;
            let mut b = sx1276(&world, config());
            b.transmit(&frame(3, 0)).unwrap();
            assert_eq!(a.receive(&mut buf).unwrap(), Some(3));
            e
        };
        assert_eq!(err, Err(Error::TxTimeout));
        // Waited the 166 352 µs timeout (rounded to the 1 ms poll) and more.
        assert!(world.borrow().now_ms() - t0 >= 167);
    }
}

#[test]
fn settings_the_chip_cannot_do_are_refused() {
    let world = World::new();
    type Change = fn(&mut Config);
    let cases: [(Change, ConfigError); 5] = [
        (
            |c| c.modem.sf = SpreadingFactor::Sf5,
            ConfigError::SpreadingFactor,
        ),
        (
            |c| c.modem.sf = SpreadingFactor::Sf6,
            ConfigError::SpreadingFactor,
        ),
        (|c| c.frequency_hz = 868_650_000, ConfigError::NoSubBand),
        (|c| c.tx_power_dbm = 20, ConfigError::TxPower),
        (
            |c| c.modem.explicit_header = false,
            ConfigError::ImplicitHeader,
        ),
    ];
    for (change, expected) in cases {
        let mut c = config();
        change(&mut c);
        let (id, bus) = emu::sx1276(&world);
        let r = LoRa::new(Sx127x::new(), bus, emu::clock(&world), c);
        assert_eq!(r.err(), Some(Error::Config(expected)));
        assert!(world.borrow_mut().take_log(id).is_empty());
    }
    let mut c = config();
    c.frequency_hz = 1_000_000_000;
    c.region = Region::Unlimited;
    let (_, bus) = emu::sx1262(&world);
    let r = LoRa::new(Sx126x::new(Variant::Sx1262), bus, emu::clock(&world), c);
    assert_eq!(r.err(), Some(Error::Config(ConfigError::Frequency)));
    // SF5 is fine on an SX1262.
    let mut c = config();
    c.modem.sf = SpreadingFactor::Sf5;
    let (_, bus) = emu::sx1262(&world);
    assert!(LoRa::new(Sx126x::new(Variant::Sx1262), bus, emu::clock(&world), c).is_ok());
    assert_eq!(<Sx126x as Radio>::FAMILY, Chip::Sx126x);
}

#[test]
fn wrong_chip_is_not_found() {
    // The SX127x driver on an SX1262 reads RegVersion (0x42), which the SX1262 does not know.
    let world = World::new();
    let (_, bus) = emu::sx1262(&world);
    let (spi, rst, _, irq, d) = bus.release();
    let bus = BlockingBus::new(spi, rst, trickle_lora::bus::NoPin, irq, d);
    let r = LoRa::new(Sx127x::new(), bus, emu::clock(&world), config());
    assert_eq!(r.err(), Some(Error::ChipNotFound { found: 0 }));
}

#[test]
fn async_drivers_exchange_frames() {
    let world = World::new();
    let (_, bus_a) = emu::sx1276_async(&world);
    let (_, bus_b) = emu::sx1262_async(&world);
    emu::block_on(async {
        let mut a = LoRa::new_async(Sx127x::new(), bus_a, emu::clock(&world), config())
            .await
            .unwrap();
        let mut b = LoRa::new_async(
            Sx126x::new(Variant::Sx1262),
            bus_b,
            emu::clock(&world),
            config(),
        )
        .await
        .unwrap();
        let mut buf = [0u8; 255];
        for len in [21, 32, 44, 255] {
            let f = frame(len, len as u8);
            let t0 = world.borrow().now_ns;
            a.transmit(&f).await.unwrap();
            // The async driver wakes on DIO0 exactly at the end of the time on air.
            let toa = a.time_on_air_us(len).unwrap();
            assert_eq!(world.borrow().now_ns - t0, toa * 1_000);
            assert_eq!(b.receive(&mut buf).await.unwrap(), len);
            assert_eq!(&buf[..len], &f[..]);
            b.transmit(&f[..len / 2]).await.unwrap();
            assert_eq!(a.receive(&mut buf).await.unwrap(), len / 2);
        }
        // Timeout: nothing comes within 300 ms.
        let t0 = world.borrow().now_ms();
        assert_eq!(b.receive_timeout(&mut buf, 300).await.unwrap(), None);
        assert_eq!(world.borrow().now_ms(), t0 + 300);
        // CRC error dropped and counted, then a good frame.
        world.borrow_mut().corrupt_next = true;
        a.transmit(&frame(10, 1)).await.unwrap();
        assert_eq!(b.receive_timeout(&mut buf, 10).await.unwrap(), None);
        a.transmit(&frame(11, 1)).await.unwrap();
        assert_eq!(b.receive(&mut buf).await.unwrap(), 11);
        assert_eq!(b.stats().crc_errors, 1);
        // Oversized.
        assert_eq!(
            a.transmit(&[0; 256]).await,
            Err(Error::FrameTooLong { len: 256, max: 255 })
        );
    });
    assert_eq!(world.borrow().busy_violations, 0);
}

#[test]
fn async_receive_waits_for_a_frame_sent_later() {
    // b is waiting in `receive` while a's transmission is still in the air: the async delay of
    // the emulator stops at the end of the packet and the DIO1 wait completes.
    let world = World::new();
    let (_, bus_a) = emu::sx1262_async(&world);
    let (_, bus_b) = emu::sx1262_async(&world);
    let radio = Sx126x::new(Variant::Sx1262);
    emu::block_on(async {
        let mut a = LoRa::new_async(radio, bus_a, emu::clock(&world), config())
            .await
            .unwrap();
        let mut b = LoRa::new_async(radio, bus_b, emu::clock(&world), config())
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let f = frame(32, 9);
        let t0 = world.borrow().now_ns;
        // Interleave: start a's transmission and b's reception concurrently.
        let (sent, got) = join(a.transmit(&f), b.receive(&mut buf)).await;
        sent.unwrap();
        assert_eq!(got.unwrap(), 32);
        assert_eq!(&buf[..32], &f[..]);
        let toa = a.time_on_air_us(32).unwrap();
        assert!(world.borrow().now_ns - t0 >= toa * 1_000);
    });
}

/// Runs two futures concurrently to completion.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let mut ra = None;
    let mut rb = None;
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
