//! The links Trickle runs over: the trait board crates implement, and airtime of frames.
//!
//! The core never touches hardware. A board crate (`boards/`) moves whole frames and keeps
//! time; the sans-I/O [`client`](crate::client) decides what to send and when. The contract
//! between them is [`FrameLink`] (blocking or polled firmware) or [`AsyncFrameLink`] (async
//! executors), plus a [`Clock`].
//!
//! The airtime functions only answer "how long does this frame occupy the channel?", exactly and
//! in integer microseconds, so firmware can plan duty cycles and the host link simulator
//! (`trickle-sim`) can reproduce real timing.
//!
//! - [`lora`]: LoRa time on air from the Semtech formula (SX127x datasheet §4.1.1.7, AN1200.13,
//!   SX126x datasheet §6.1.4 for SF5/SF6).
//! - [`serial_airtime_us`]: byte-oriented links (a UART at 8N1 sends 10 bits per byte; a radio
//!   modem that only counts payload bits, 8).

pub mod lora;

use crate::client::Instant;

/// A link that carries whole frames between a device and its gateway: one LoRa packet, one
/// framed message on a UART, one UDP datagram through a modem.
///
/// Implementations are thin. They never split, merge, retry or reorder frames; retransmission,
/// deduplication and timing belong to the client. A frame that arrives damaged and is detected
/// as such by the link (bad CRC, invalid stuffing) is dropped and counted, never delivered.
pub trait FrameLink {
    /// What went wrong on the link (bus error, modem gone, duty-cycle limit, …).
    type Error: core::fmt::Debug;

    /// The largest frame this link carries whole, in bytes (LoRa: 255).
    fn max_frame_len(&self) -> usize;

    /// Sends one frame, returning once it has left the device (or was refused).
    ///
    /// A frame longer than [`max_frame_len`](Self::max_frame_len) is refused with an error and
    /// nothing is sent.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), Self::Error>;

    /// Returns the next received frame, copied into `buf`, or `Ok(None)` if none is waiting.
    /// Never blocks for long: a super-loop calls it between other work.
    ///
    /// A frame longer than `buf` is dropped and reported as an error; the link stays usable.
    fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error>;
}

/// The async twin of [`FrameLink`], for executors such as Embassy.
///
/// `receive` waits for a frame; the caller races it against its own timer (the client's
/// [`poll_timeout`](crate::client::Client::poll_timeout)).
// The futures are not required to be `Send`: single-core firmware executors don't need it.
#[allow(async_fn_in_trait)]
pub trait AsyncFrameLink {
    /// What went wrong on the link.
    type Error: core::fmt::Debug;

    /// The largest frame this link carries whole, in bytes.
    fn max_frame_len(&self) -> usize;

    /// Sends one frame, completing once it has left the device (or was refused).
    async fn transmit(&mut self, frame: &[u8]) -> Result<(), Self::Error>;

    /// Waits for the next frame and copies it into `buf`, returning its length.
    async fn receive(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;
}

/// A monotonic millisecond clock, as the client's timers need it.
pub trait Clock {
    /// The current time. Must never go backwards.
    fn now(&mut self) -> Instant;
}

/// Airtime in microseconds of `bytes` bytes on a link of `bitrate` bit/s that spends
/// `bits_per_byte` bit times per byte, rounded **up** to the next whole microsecond.
///
/// A UART in 8N1 framing (start bit, 8 data bits, stop bit) spends 10 bit times per byte; a
/// radio modem whose bitrate is quoted for payload bits, 8. Returns `None` if `bitrate` is zero
/// or the result does not fit in a `u64`.
///
/// ```
/// use trickle_core::link::serial_airtime_us;
/// // 32 bytes over a 100 bit/s radio modem: 2.56 s.
/// assert_eq!(serial_airtime_us(100, 32, 8), Some(2_560_000));
/// // The same through a 9600 baud UART, 8N1: 33.333… ms, rounded up.
/// assert_eq!(serial_airtime_us(9600, 32, 10), Some(33_334));
/// ```
pub fn serial_airtime_us(bitrate: u32, bytes: usize, bits_per_byte: u32) -> Option<u64> {
    if bitrate == 0 {
        return None;
    }
    let bits = u128::try_from(bytes).ok()? * u128::from(bits_per_byte);
    let micros = (bits * 1_000_000).div_ceil(u128::from(bitrate));
    u64::try_from(micros).ok()
}

#[cfg(test)]
mod tests {
    use super::serial_airtime_us;
    use proptest::prelude::*;

    #[test]
    fn serial_exact_values() {
        // Every bit at 100 bit/s lasts exactly 10 ms.
        assert_eq!(serial_airtime_us(100, 1, 8), Some(80_000));
        assert_eq!(serial_airtime_us(100, 32, 8), Some(2_560_000));
        assert_eq!(serial_airtime_us(100, 32, 10), Some(3_200_000));
        assert_eq!(serial_airtime_us(100, 0, 10), Some(0));
        // 1 byte 8N1 at 115200 baud = 86.805… µs, rounded up.
        assert_eq!(serial_airtime_us(115_200, 1, 10), Some(87));
        assert_eq!(serial_airtime_us(9600, 96, 10), Some(100_000));
    }

    #[test]
    fn serial_rejects_zero_bitrate() {
        assert_eq!(serial_airtime_us(0, 10, 8), None);
    }

    proptest! {
        #[test]
        fn serial_monotonic(rate in 1u32..2_000_000, n in 0usize..100_000, bpb in 1u32..16) {
            let a = serial_airtime_us(rate, n, bpb).unwrap();
            let b = serial_airtime_us(rate, n + 1, bpb).unwrap();
            prop_assert!(b >= a);
            // Below 1 Mbit/s every extra bit lasts at least a microsecond.
            if rate <= 1_000_000 {
                prop_assert!(b > a);
            }
        }
    }
}
