//! The LM3S6965's UART0, an ARM PrimeCell PL011, driven by polling.
//!
//! Register map and bits from the PL011 Technical Reference Manual (ARM DDI 0183) and the
//! LM3S6965 datasheet §12 (UART0 at `0x4000_C000`). This module is the only place of the
//! firmware that touches UART registers: every access goes through [`read`] and [`write`].
//!
//! QEMU's PL011 hands a byte from its chardev (the TCP socket) to the receive FIFO only when
//! there is room, so polling loses nothing: bytes wait in the socket until the firmware reads.
//! On silicon at a real baud rate, a polled receiver must be read faster than bytes arrive
//! (16-byte FIFO) or use the receive interrupt.

use core::sync::atomic::{AtomicBool, Ordering};

/// UART0 base address (LM3S6965 datasheet, memory map).
const BASE: usize = 0x4000_C000;

/// Register offsets (PL011 TRM §3.2).
mod reg {
    /// Data register: bits 7:0 data, 8 FE, 9 PE, 10 BE, 11 OE.
    pub const DR: usize = 0x000;
    /// Flag register.
    pub const FR: usize = 0x018;
    /// Integer baud-rate divisor.
    pub const IBRD: usize = 0x024;
    /// Fractional baud-rate divisor.
    pub const FBRD: usize = 0x028;
    /// Line control.
    pub const LCRH: usize = 0x02C;
    /// Control.
    pub const CTL: usize = 0x030;
}

/// Flag register bits.
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const FR_BUSY: u32 = 1 << 3;
/// Data register error bits (framing, parity, break, overrun).
const DR_ERRORS: u32 = 0xF00;
/// Line control: 8 data bits (WLEN = 0b11), FIFOs enabled.
const LCRH_8N1_FIFO: u32 = (0b11 << 5) | (1 << 4);
/// Control: UART, transmitter and receiver enabled.
const CTL_ENABLE: u32 = 1 | (1 << 8) | (1 << 9);

/// Reads the UART register at `offset`.
fn read(offset: usize) -> u32 {
    // SAFETY: `BASE + offset` is one of the PL011 registers listed in `reg`, a 4-byte aligned
    // MMIO word that exists on every LM3S6965 (and in QEMU's lm3s6965evb); reading it has no
    // effect on memory Rust knows about. Only `Uart0` (a singleton) calls this.
    unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
}

/// Writes `value` to the UART register at `offset`.
fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`: a PL011 register, aligned, outside any Rust-owned memory; only
    // `Uart0`, of which at most one exists, writes to it.
    unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// UART0, 8N1, FIFOs on. At most one exists ([`Uart0::take`]).
pub struct Uart0 {
    _private: (),
}

/// A byte arrived damaged (framing, parity, break or overrun error): it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineError;

impl embedded_io::Error for LineError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::InvalidData
    }
}

impl Uart0 {
    /// Configures UART0 for `baud` bit/s from a `clock_hz` UART clock, the first time only.
    pub fn take(clock_hz: u32, baud: u32) -> Option<Self> {
        // ARMv6-M has no atomic swap: test and set with interrupts masked.
        let taken = cortex_m::interrupt::free(|_| {
            let was = TAKEN.load(Ordering::Relaxed);
            TAKEN.store(true, Ordering::Relaxed);
            was
        });
        if taken {
            return None;
        }
        // Divisor in 1/64ths: clock / (16 × baud) (PL011 TRM §3.3.6).
        let div64 = (u64::from(clock_hz) * 4).div_ceil(u64::from(baud.max(1))) as u32;
        write(reg::CTL, 0);
        write(reg::IBRD, div64 >> 6);
        write(reg::FBRD, div64 & 0x3F);
        write(reg::LCRH, LCRH_8N1_FIFO);
        write(reg::CTL, CTL_ENABLE);
        Some(Uart0 { _private: () })
    }
}

impl embedded_io::ErrorType for Uart0 {
    type Error = LineError;
}

impl embedded_io::ReadReady for Uart0 {
    fn read_ready(&mut self) -> Result<bool, LineError> {
        Ok(read(reg::FR) & FR_RXFE == 0)
    }
}

impl embedded_io::Read for Uart0 {
    /// Waits for at least one byte, then returns what the receive FIFO holds (up to `buf`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, LineError> {
        let mut n = 0;
        while n < buf.len() {
            if read(reg::FR) & FR_RXFE != 0 {
                if n > 0 {
                    break;
                }
                continue;
            }
            let word = read(reg::DR);
            if word & DR_ERRORS != 0 {
                return Err(LineError);
            }
            if let Some(slot) = buf.get_mut(n) {
                *slot = word as u8;
            }
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for Uart0 {
    fn write(&mut self, buf: &[u8]) -> Result<usize, LineError> {
        for &b in buf {
            while read(reg::FR) & FR_TXFF != 0 {}
            write(reg::DR, u32::from(b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), LineError> {
        while read(reg::FR) & FR_BUSY != 0 {}
        Ok(())
    }
}
