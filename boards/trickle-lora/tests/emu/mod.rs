//! Emulated radios for host tests: an SX1276 register file and an SX1262 command decoder behind
//! `embedded-hal` 1.0 `SpiDevice`s and pins, on a shared "ether" with a virtual clock.
//!
//! A packet a chip transmits reaches every other chip that is in receive mode on the same
//! frequency (±2 kHz), spreading factor, bandwidth, sync word and LDRO setting, after exactly its
//! time on air (trickle_core's Semtech formula, evaluated with the settings read back from the
//! emulated chip's registers). Time moves only when the driver waits (`DelayNs`).
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use embedded_hal::digital::{ErrorType as PinErrorType, InputPin, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation};
use trickle_core::client::Instant;
use trickle_core::link::Clock;
use trickle_core::link::lora::{
    Bandwidth, Chip, CodingRate, LoraParams, LowDataRateOptimize, SpreadingFactor,
};
use trickle_lora::bus::{AsyncBus, BlockingBus, NoPin};

/// One SPI transaction as the chip saw it: the bytes written, and how many were read after.
pub type Txn = (Vec<u8>, usize);

/// What a receiver compares before it can demodulate a packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Modem {
    pub freq_hz: u64,
    pub params: LoraParams,
    /// Sync word in SX127x form.
    pub sync: u8,
}

impl Modem {
    fn hears(&self, other: &Modem) -> bool {
        self.freq_hz.abs_diff(other.freq_hz) <= 2_000
            && self.params.sf == other.params.sf
            && self.params.bandwidth == other.params.bandwidth
            && self.params.ldro_enabled() == other.params.ldro_enabled()
            && self.params.explicit_header
            && other.params.explicit_header
            && self.sync == other.sync
    }
}

pub struct Rx<'a> {
    pub payload: &'a [u8],
    pub crc_present: bool,
    pub crc_ok: bool,
    pub rssi_dbm: i16,
    pub snr_quarter_db: i16,
}

trait ChipEmu {
    /// One transaction; returns the packet to send if it started a transmission.
    fn spi(&mut self, now_ns: u64, mosi: &[u8], miso: &mut [u8]) -> Option<(Vec<u8>, Modem)>;
    fn listening(&self) -> Option<Modem>;
    fn deliver(&mut self, rx: &Rx<'_>);
    fn tx_finished(&mut self);
    fn irq(&self) -> bool;
    fn busy_until(&self) -> u64;
    fn reset(&mut self);
}

struct Flight {
    from: usize,
    end_ns: u64,
    payload: Vec<u8>,
    modem: Modem,
}

/// The ether, the virtual clock and the chips.
pub struct World {
    pub now_ns: u64,
    chips: Vec<Box<dyn ChipEmu>>,
    logs: Vec<Vec<Txn>>,
    flights: Vec<Flight>,
    /// What receivers measure.
    pub rssi_dbm: i16,
    pub snr_quarter_db: i16,
    /// The next packet arrives with a bad payload CRC.
    pub corrupt_next: bool,
    /// Transmitters never finish (TxDone never comes).
    pub tx_stuck: bool,
    /// Packets delivered to receivers.
    pub delivered: usize,
    /// Transactions made while the chip was BUSY.
    pub busy_violations: usize,
}

pub type Shared = Rc<RefCell<World>>;

impl World {
    pub fn new() -> Shared {
        Rc::new(RefCell::new(World {
            now_ns: 0,
            chips: Vec::new(),
            logs: Vec::new(),
            flights: Vec::new(),
            rssi_dbm: -93,
            snr_quarter_db: 32,
            corrupt_next: false,
            tx_stuck: false,
            delivered: 0,
            busy_violations: 0,
        }))
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ns / 1_000_000
    }

    /// Takes the transactions chip `id` saw so far.
    pub fn take_log(&mut self, id: usize) -> Vec<Txn> {
        std::mem::take(&mut self.logs[id])
    }

    fn add(&mut self, chip: Box<dyn ChipEmu>) -> usize {
        self.chips.push(chip);
        self.logs.push(Vec::new());
        self.chips.len() - 1
    }

    fn next_event(&self) -> Option<u64> {
        let flights = self.flights.iter().map(|f| f.end_ns);
        let busy = self
            .chips
            .iter()
            .map(|c| c.busy_until())
            .filter(|&t| t > self.now_ns);
        flights.chain(busy).min()
    }

    /// Moves the clock to `t`, finishing the transmissions that end on the way.
    pub fn advance_to(&mut self, t: u64) {
        loop {
            let next = self
                .flights
                .iter()
                .enumerate()
                .filter(|(_, f)| f.end_ns <= t)
                .min_by_key(|(_, f)| f.end_ns)
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let f = self.flights.remove(i);
            self.now_ns = self.now_ns.max(f.end_ns);
            self.chips[f.from].tx_finished();
            let crc_ok = !std::mem::take(&mut self.corrupt_next);
            for (id, chip) in self.chips.iter_mut().enumerate() {
                if id == f.from {
                    continue;
                }
                if chip.listening().is_some_and(|m| m.hears(&f.modem)) {
                    chip.deliver(&Rx {
                        payload: &f.payload,
                        crc_present: f.modem.params.crc,
                        crc_ok,
                        rssi_dbm: self.rssi_dbm,
                        snr_quarter_db: self.snr_quarter_db,
                    });
                    self.delivered += 1;
                }
            }
        }
        self.now_ns = self.now_ns.max(t);
    }

    fn spi(&mut self, id: usize, mosi: &[u8], miso: &mut [u8]) {
        if self.chips[id].busy_until() > self.now_ns {
            self.busy_violations += 1;
        }
        self.logs[id].push((mosi.to_vec(), miso.len()));
        let now = self.now_ns;
        if let Some((payload, modem)) = self.chips[id].spi(now, mosi, miso) {
            let airtime_us = modem.params.time_on_air_us(payload.len()).unwrap();
            if !self.tx_stuck {
                self.flights.push(Flight {
                    from: id,
                    end_ns: now + airtime_us * 1_000,
                    payload,
                    modem,
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Board: SPI, pins, delay, clock.

pub struct EmuSpi {
    world: Shared,
    id: usize,
}

impl SpiErrorType for EmuSpi {
    type Error = Infallible;
}

impl EmuSpi {
    fn run(&mut self, ops: &mut [Operation<'_, u8>]) {
        let mut mosi = Vec::new();
        let mut read_len = 0;
        for op in ops.iter() {
            match op {
                Operation::Write(w) => {
                    assert_eq!(read_len, 0, "write after read in one transaction");
                    mosi.extend_from_slice(w);
                }
                Operation::Read(r) => read_len += r.len(),
                _ => panic!("the drivers only use Write and Read"),
            }
        }
        let mut miso = vec![0; read_len];
        self.world.borrow_mut().spi(self.id, &mosi, &mut miso);
        let mut at = 0;
        for op in ops.iter_mut() {
            if let Operation::Read(r) = op {
                r.copy_from_slice(&miso[at..at + r.len()]);
                at += r.len();
            }
        }
    }
}

impl embedded_hal::spi::SpiDevice for EmuSpi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        self.run(ops);
        Ok(())
    }
}

impl embedded_hal_async::spi::SpiDevice for EmuSpi {
    async fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        self.run(ops);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum PinKind {
    Irq,
    Busy,
    Reset,
}

pub struct EmuPin {
    world: Shared,
    id: usize,
    kind: PinKind,
}

impl EmuPin {
    fn level(&self) -> bool {
        let w = self.world.borrow();
        let c = &w.chips[self.id];
        match self.kind {
            PinKind::Irq => c.irq(),
            PinKind::Busy => c.busy_until() > w.now_ns,
            PinKind::Reset => true,
        }
    }
}

impl PinErrorType for EmuPin {
    type Error = Infallible;
}

impl InputPin for EmuPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level())
    }
}

impl OutputPin for EmuPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.world.borrow_mut().chips[self.id].reset();
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl embedded_hal_async::digital::Wait for EmuPin {
    async fn wait_for_high(&mut self) -> Result<(), Infallible> {
        poll_fn(|_| {
            if self.level() {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
        .await
    }
    async fn wait_for_low(&mut self) -> Result<(), Infallible> {
        poll_fn(|_| {
            if self.level() {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        })
        .await
    }
    async fn wait_for_rising_edge(&mut self) -> Result<(), Infallible> {
        unimplemented!("not used by the drivers")
    }
    async fn wait_for_falling_edge(&mut self) -> Result<(), Infallible> {
        unimplemented!("not used by the drivers")
    }
    async fn wait_for_any_edge(&mut self) -> Result<(), Infallible> {
        unimplemented!("not used by the drivers")
    }
}

/// A delay that moves the virtual clock. The async one stops at every event on the way (end of a
/// transmission, BUSY falling) and yields, so that a `select` with a pin wait sees the pin
/// change at the right time.
pub struct EmuDelay {
    world: Shared,
}

impl embedded_hal::delay::DelayNs for EmuDelay {
    fn delay_ns(&mut self, ns: u32) {
        let mut w = self.world.borrow_mut();
        let t = w.now_ns + u64::from(ns);
        w.advance_to(t);
    }
}

impl embedded_hal_async::delay::DelayNs for EmuDelay {
    async fn delay_ns(&mut self, ns: u32) {
        let deadline = self.world.borrow().now_ns + u64::from(ns);
        loop {
            let step = {
                let mut w = self.world.borrow_mut();
                let next = w.next_event().unwrap_or(deadline).min(deadline);
                w.advance_to(next);
                w.now_ns
            };
            let mut yielded = false;
            poll_fn(|cx| {
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
            if step >= deadline {
                return;
            }
        }
    }
}

pub struct EmuClock {
    world: Shared,
}

impl Clock for EmuClock {
    fn now(&mut self) -> Instant {
        Instant(self.world.borrow().now_ms())
    }
}

pub fn clock(world: &Shared) -> EmuClock {
    EmuClock {
        world: world.clone(),
    }
}

fn parts(world: &Shared, id: usize) -> (EmuSpi, EmuPin, EmuPin, EmuPin, EmuDelay) {
    let pin = |kind| EmuPin {
        world: world.clone(),
        id,
        kind,
    };
    (
        EmuSpi {
            world: world.clone(),
            id,
        },
        pin(PinKind::Reset),
        pin(PinKind::Busy),
        pin(PinKind::Irq),
        EmuDelay {
            world: world.clone(),
        },
    )
}

pub type Sx1276Bus = BlockingBus<EmuSpi, EmuPin, NoPin, EmuPin, EmuDelay>;
pub type Sx1262Bus = BlockingBus<EmuSpi, EmuPin, EmuPin, EmuPin, EmuDelay>;
pub type Sx1276AsyncBus = AsyncBus<EmuSpi, EmuPin, NoPin, EmuPin, EmuDelay>;
pub type Sx1262AsyncBus = AsyncBus<EmuSpi, EmuPin, EmuPin, EmuPin, EmuDelay>;

/// Adds an emulated SX1276 and returns its id and a blocking board wired to it.
pub fn sx1276(world: &Shared) -> (usize, Sx1276Bus) {
    let id = world.borrow_mut().add(Box::new(Sx1276::new()));
    let (spi, rst, _, irq, d) = parts(world, id);
    (id, BlockingBus::new(spi, rst, NoPin, irq, d))
}

pub fn sx1276_async(world: &Shared) -> (usize, Sx1276AsyncBus) {
    let id = world.borrow_mut().add(Box::new(Sx1276::new()));
    let (spi, rst, _, irq, d) = parts(world, id);
    (id, AsyncBus::new(spi, rst, NoPin, irq, d))
}

/// Adds an emulated SX1262 and returns its id and a blocking board wired to it.
pub fn sx1262(world: &Shared) -> (usize, Sx1262Bus) {
    let id = world.borrow_mut().add(Box::new(Sx1262::new()));
    let (spi, rst, busy, irq, d) = parts(world, id);
    (id, BlockingBus::new(spi, rst, busy, irq, d))
}

pub fn sx1262_async(world: &Shared) -> (usize, Sx1262AsyncBus) {
    let id = world.borrow_mut().add(Box::new(Sx1262::new()));
    let (spi, rst, busy, irq, d) = parts(world, id);
    (id, AsyncBus::new(spi, rst, busy, irq, d))
}

/// Polls a future to completion (the emulated hardware never needs a real wake-up).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("future never completed");
}

fn bandwidth(code: u8, sx127x: bool) -> Bandwidth {
    let all = [
        Bandwidth::Khz7_8,
        Bandwidth::Khz10_4,
        Bandwidth::Khz15_6,
        Bandwidth::Khz20_8,
        Bandwidth::Khz31_25,
        Bandwidth::Khz41_7,
        Bandwidth::Khz62_5,
        Bandwidth::Khz125,
        Bandwidth::Khz250,
        Bandwidth::Khz500,
    ];
    if sx127x {
        return all[usize::from(code)];
    }
    // SX126x codes (datasheet table 13-48).
    let sx126x = [0x00, 0x08, 0x01, 0x09, 0x02, 0x0A, 0x03, 0x04, 0x05, 0x06];
    all[sx126x
        .iter()
        .position(|&c| c == code)
        .expect("valid BW code")]
}

fn coding_rate(code: u8) -> CodingRate {
    [
        CodingRate::Cr4_5,
        CodingRate::Cr4_6,
        CodingRate::Cr4_7,
        CodingRate::Cr4_8,
    ][usize::from(code - 1)]
}

// ---------------------------------------------------------------------------------------------
// SX1276: a register file (datasheet §6) with the FIFO and the LoRa modes.

pub struct Sx1276 {
    regs: [u8; 128],
    fifo: [u8; 256],
    rx_addr: u8,
}

impl Sx1276 {
    fn new() -> Self {
        let mut s = Sx1276 {
            regs: [0; 128],
            fifo: [0; 256],
            rx_addr: 0,
        };
        s.reset();
        s
    }

    fn mode(&self) -> u8 {
        self.regs[0x01] & 0x07
    }

    fn lora(&self) -> bool {
        self.regs[0x01] & 0x80 != 0
    }

    fn modem(&self) -> Modem {
        let r = &self.regs;
        let frf = u64::from(r[0x06]) << 16 | u64::from(r[0x07]) << 8 | u64::from(r[0x08]);
        let mut params = LoraParams::new(
            SpreadingFactor::from_u8(r[0x1E] >> 4).expect("SF"),
            bandwidth(r[0x1D] >> 4, true),
        );
        params.coding_rate = coding_rate((r[0x1D] >> 1) & 0x07);
        params.explicit_header = r[0x1D] & 1 == 0;
        params.crc = r[0x1E] & 0x04 != 0;
        params.preamble_symbols = u16::from_be_bytes([r[0x20], r[0x21]]);
        params.low_data_rate_optimize = if r[0x26] & 0x08 != 0 {
            LowDataRateOptimize::On
        } else {
            LowDataRateOptimize::Off
        };
        params.chip = Chip::Sx127x;
        Modem {
            freq_hz: frf * 1_000_000 / 16_384,
            params,
            sync: r[0x39],
        }
    }

    fn write_reg(&mut self, addr: u8, v: u8) -> Option<(Vec<u8>, Modem)> {
        match addr {
            0x00 => {
                let p = self.regs[0x0D];
                self.fifo[usize::from(p)] = v;
                self.regs[0x0D] = p.wrapping_add(1);
            }
            0x01 => {
                // LongRangeMode changes only in sleep (RegOpMode, §6.4).
                let lora = if self.mode() == 0 {
                    v & 0x80
                } else {
                    self.regs[1] & 0x80
                };
                self.regs[1] = lora | (v & 0x7F);
                if self.mode() == 0x05 {
                    self.rx_addr = self.regs[0x0F];
                }
                if self.lora() && self.mode() == 0x03 {
                    let base = self.regs[0x0E];
                    let len = self.regs[0x22];
                    let payload = (0..len)
                        .map(|i| self.fifo[usize::from(base.wrapping_add(i))])
                        .collect();
                    return Some((payload, self.modem()));
                }
            }
            0x12 => self.regs[0x12] &= !v,
            // Read-only: RxCurrentAddr, RxNbBytes, packet SNR/RSSI, version.
            0x10 | 0x13 | 0x19 | 0x1A | 0x42 => {}
            a => self.regs[usize::from(a)] = v,
        }
        None
    }

    fn read_reg(&mut self, addr: u8) -> u8 {
        if addr == 0 {
            let p = self.regs[0x0D];
            self.regs[0x0D] = p.wrapping_add(1);
            self.fifo[usize::from(p)]
        } else {
            self.regs[usize::from(addr & 0x7F)]
        }
    }
}

impl ChipEmu for Sx1276 {
    fn spi(&mut self, _now: u64, mosi: &[u8], miso: &mut [u8]) -> Option<(Vec<u8>, Modem)> {
        let (&first, data) = mosi.split_first().expect("address byte");
        let mut addr = first & 0x7F;
        let mut tx = None;
        if first & 0x80 != 0 {
            assert!(miso.is_empty(), "read during a write access");
            for &b in data {
                tx = tx.or(self.write_reg(addr, b));
                if addr != 0 {
                    addr += 1;
                }
            }
        } else {
            assert!(data.is_empty(), "bytes written during a read access");
            for b in miso.iter_mut() {
                *b = self.read_reg(addr);
                if addr != 0 {
                    addr += 1;
                }
            }
        }
        tx
    }

    fn listening(&self) -> Option<Modem> {
        (self.lora() && self.mode() == 0x05).then(|| self.modem())
    }

    fn deliver(&mut self, rx: &Rx<'_>) {
        let start = self.rx_addr;
        for (i, &b) in rx.payload.iter().enumerate() {
            self.fifo[usize::from(start.wrapping_add(i as u8))] = b;
        }
        self.rx_addr = start.wrapping_add(rx.payload.len() as u8);
        self.regs[0x10] = start;
        self.regs[0x13] = rx.payload.len() as u8;
        // Inverse of §5.5.5 (HF port, offset −157).
        let snr = rx.snr_quarter_db;
        let pkt_rssi = if snr >= 0 {
            (rx.rssi_dbm + 157) * 15 / 16
        } else {
            rx.rssi_dbm + 157 - snr.div_euclid(4)
        };
        self.regs[0x19] = snr as i8 as u8;
        self.regs[0x1A] = pkt_rssi as u8;
        let mut flags = 0x40 | 0x10;
        if rx.crc_present && !rx.crc_ok {
            flags |= 0x20;
        }
        self.regs[0x12] |= flags;
    }

    fn tx_finished(&mut self) {
        self.regs[0x12] |= 0x08;
        self.regs[0x01] = (self.regs[0x01] & !0x07) | 0x01;
    }

    fn irq(&self) -> bool {
        // DIO0 mapping 00: RxDone in RX, TxDone in TX (table 18).
        self.regs[0x40] >> 6 == 0 && self.regs[0x12] & 0x48 != 0
    }

    fn busy_until(&self) -> u64 {
        0
    }

    fn reset(&mut self) {
        self.regs = [0; 128];
        // Reset values (table 41): FSK standby with LowFrequencyModeOn, 434 MHz, sync word 0x12.
        self.regs[0x01] = 0x09;
        self.regs[0x06] = 0x6C;
        self.regs[0x07] = 0x80;
        self.regs[0x09] = 0x4F;
        self.regs[0x0E] = 0x80;
        self.regs[0x1D] = 0x72;
        self.regs[0x1E] = 0x70;
        self.regs[0x21] = 0x08;
        self.regs[0x22] = 0x01;
        self.regs[0x23] = 0xFF;
        self.regs[0x26] = 0x00;
        self.regs[0x31] = 0xC3;
        self.regs[0x37] = 0x0A;
        self.regs[0x39] = 0x12;
        self.regs[0x42] = 0x12;
    }
}

// ---------------------------------------------------------------------------------------------
// SX1262: a command decoder (datasheet §13).

pub struct Sx1262 {
    mode: u8, // 0 standby, 1 tx, 2 rx
    packet_type: u8,
    rf_freq: u32,
    modulation: [u8; 4],
    packet: [u8; 6],
    buffer: [u8; 256],
    tx_base: u8,
    rx_base: u8,
    irq: u16,
    dio1_mask: u16,
    regs: HashMap<u16, u8>,
    rx_len: u8,
    rssi_pkt: u8,
    snr_pkt: u8,
    busy_until: u64,
    pub unknown_commands: usize,
}

impl Sx1262 {
    fn new() -> Self {
        let mut s = Sx1262 {
            mode: 0,
            packet_type: 0,
            rf_freq: 0,
            modulation: [0; 4],
            packet: [0; 6],
            buffer: [0; 256],
            tx_base: 0,
            rx_base: 0,
            irq: 0,
            dio1_mask: 0,
            regs: HashMap::new(),
            rx_len: 0,
            rssi_pkt: 0,
            snr_pkt: 0,
            busy_until: 0,
            unknown_commands: 0,
        };
        s.reset();
        s
    }

    fn modem(&self) -> Modem {
        let m = self.modulation;
        let mut params = LoraParams::new(
            SpreadingFactor::from_u8(m[0]).expect("SF"),
            bandwidth(m[1], false),
        );
        params.coding_rate = coding_rate(m[2]);
        params.low_data_rate_optimize = if m[3] == 1 {
            LowDataRateOptimize::On
        } else {
            LowDataRateOptimize::Off
        };
        params.preamble_symbols = u16::from_be_bytes([self.packet[0], self.packet[1]]);
        params.explicit_header = self.packet[2] == 0;
        params.crc = self.packet[4] == 1;
        params.chip = Chip::Sx126x;
        let hi = self.regs[&0x0740];
        let lo = self.regs[&0x0741];
        Modem {
            freq_hz: u64::from(self.rf_freq) * 1_000_000 / 1_048_576,
            params,
            sync: (hi & 0xF0) | (lo >> 4),
        }
    }
}

impl ChipEmu for Sx1262 {
    fn spi(&mut self, now: u64, mosi: &[u8], miso: &mut [u8]) -> Option<(Vec<u8>, Modem)> {
        let (&op, args) = mosi.split_first().expect("opcode");
        // BUSY stays high a few microseconds after each command (§8.3.1).
        self.busy_until = now + 2_000;
        let mut tx = None;
        match op {
            0x80 => self.mode = 0,
            0x8A => self.packet_type = args[0],
            0x86 => self.rf_freq = u32::from_be_bytes(args.try_into().unwrap()),
            0x98 | 0x95 | 0x8E | 0x96 | 0x97 | 0x89 | 0x9D => {}
            0x8F => {
                self.tx_base = args[0];
                self.rx_base = args[1];
            }
            0x8B => self.modulation.copy_from_slice(&args[..4]),
            0x8C => self.packet.copy_from_slice(&args[..6]),
            0x08 => self.dio1_mask = u16::from_be_bytes([args[2], args[3]]),
            0x0D => {
                let a = u16::from_be_bytes([args[0], args[1]]);
                for (i, &b) in args[2..].iter().enumerate() {
                    self.regs.insert(a + i as u16, b);
                }
            }
            0x1D => {
                let a = u16::from_be_bytes([args[0], args[1]]);
                for (i, b) in miso.iter_mut().enumerate() {
                    *b = self.regs.get(&(a + i as u16)).copied().unwrap_or(0);
                }
            }
            0x0E => {
                for (i, &b) in args[1..].iter().enumerate() {
                    self.buffer[usize::from(args[0].wrapping_add(i as u8))] = b;
                }
            }
            0x1E => {
                for (i, b) in miso.iter_mut().enumerate() {
                    *b = self.buffer[usize::from(args[0].wrapping_add(i as u8))];
                }
            }
            0x12 => miso.copy_from_slice(&self.irq.to_be_bytes()),
            0x02 => self.irq &= !u16::from_be_bytes([args[0], args[1]]),
            0x83 => {
                self.mode = 1;
                let len = self.packet[3];
                let payload = (0..len)
                    .map(|i| self.buffer[usize::from(self.tx_base.wrapping_add(i))])
                    .collect();
                tx = Some((payload, self.modem()));
            }
            0x82 => self.mode = 2,
            0x13 => miso.copy_from_slice(&[self.rx_len, self.rx_base]),
            0x14 => miso.copy_from_slice(&[self.rssi_pkt, self.snr_pkt, self.rssi_pkt]),
            _ => self.unknown_commands += 1,
        }
        tx
    }

    fn listening(&self) -> Option<Modem> {
        (self.mode == 2 && self.packet_type == 1).then(|| self.modem())
    }

    fn deliver(&mut self, rx: &Rx<'_>) {
        // In receive, the payload length of SetPacketParams is the largest accepted packet
        // (datasheet §13.4.6.2); a longer one is rejected after its header.
        if rx.payload.len() > usize::from(self.packet[3]) {
            self.irq |= 0x0020; // HeaderErr
            return;
        }
        for (i, &b) in rx.payload.iter().enumerate() {
            self.buffer[usize::from(self.rx_base.wrapping_add(i as u8))] = b;
        }
        self.rx_len = rx.payload.len() as u8;
        self.rssi_pkt = (-2 * rx.rssi_dbm) as u8;
        self.snr_pkt = rx.snr_quarter_db as i8 as u8;
        let mut irq = 0x0002 | 0x0010; // RxDone, HeaderValid
        if rx.crc_present && !rx.crc_ok {
            irq |= 0x0040;
        }
        self.irq |= irq;
    }

    fn tx_finished(&mut self) {
        self.irq |= 0x0001;
        self.mode = 0;
    }

    fn irq(&self) -> bool {
        self.irq & self.dio1_mask != 0
    }

    fn busy_until(&self) -> u64 {
        self.busy_until
    }

    fn reset(&mut self) {
        self.mode = 0;
        self.packet_type = 0;
        self.irq = 0;
        self.dio1_mask = 0;
        self.regs.clear();
        // LoRa sync word reset value (table 12-1).
        self.regs.insert(0x0740, 0x14);
        self.regs.insert(0x0741, 0x24);
    }
}
