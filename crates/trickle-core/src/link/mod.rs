//! Airtime of frames on the physical links Trickle runs over.
//!
//! Nothing here puts bytes on the air; it only answers "how long does this frame occupy the
//! channel?", exactly and in integer microseconds, so firmware can plan duty cycles and the host
//! link simulator (`trickle-sim`) can reproduce real timing.
//!
//! - [`lora`]: LoRa time on air from the Semtech formula (SX127x datasheet §4.1.1.7, AN1200.13,
//!   SX126x datasheet §6.1.4 for SF5/SF6).
//! - [`serial_airtime_us`]: byte-oriented links (a UART at 8N1 sends 10 bits per byte; a radio
//!   modem that only counts payload bits, 8).

pub mod lora;

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
