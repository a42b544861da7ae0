//! LoRa time on air, exactly, in integer microseconds.
//!
//! The formula is Semtech's (SX1276/7/8/9 datasheet §4.1.1.7 "Time on air", AN1200.13 "LoRa
//! Modem Designer's Guide" §4):
//!
//! ```text
//! T_sym        = 2^SF / BW
//! T_preamble   = (n_preamble + 4.25) · T_sym
//! n_payload    = 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE))) · (CR + 4), 0)
//! T_on_air     = T_preamble + n_payload · T_sym
//! ```
//!
//! with `PL` the payload length in bytes, `CRC` 1 if the payload CRC is on, `IH` 1 for implicit
//! header (no header), `DE` 1 when low-data-rate optimisation is on, and `CR` 1..4 for the coding
//! rates 4/5..4/8. The SX126x family (SX1261/2/8, LLCC68) uses the same formula for SF7..SF12
//! and a different one for SF5 and SF6 (SX1261/2 datasheet §6.1.4): two more preamble symbols,
//! no `+8` bits in the numerator, and a denominator of `4·SF` whatever the LDRO setting:
//!
//! ```text
//! T_on_air(SF5, SF6) = (n_preamble + 6.25 + 8 + ceil(max(8·PL + 16·CRC − 4·SF + 20·EH, 0) / (4·SF)) · (CR + 4)) · T_sym
//! ```
//!
//! where `EH` is 1 for explicit header. The SX127x family has no SF5 and only supports SF6 with an
//! implicit header; [`LoraParams::validate`] reports those combinations.
//!
//! Every LoRa bandwidth is 500 kHz divided by an integer (7.8125 kHz = 500/64 … 500 kHz = 500/1),
//! so `T_sym = 2^(SF+1) · divider` µs is an exact integer and so is every time returned here: no
//! floating point, no rounding.

use core::fmt;

/// The largest LoRa payload in bytes (the length field of the explicit header is one byte, and the
/// FIFO of both chip families is 256 bytes).
pub const MAX_PAYLOAD: usize = 255;

/// Symbol time at or above which [`LowDataRateOptimize::Auto`] turns the optimisation on: Semtech
/// mandates it "when the symbol length exceeds 16 ms" (SX1276 datasheet, register
/// `LowDataRateOptimize`; SX1261/2 datasheet §6.1.1.4). At 125 kHz that is SF11 and SF12.
pub const LDRO_THRESHOLD_US: u64 = 16_000;

/// LoRa spreading factor: each symbol carries `SF` bits and lasts `2^SF / BW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SpreadingFactor {
    /// SF5 (SX126x only).
    Sf5 = 5,
    /// SF6 (on SX127x only with an implicit header).
    Sf6 = 6,
    /// SF7.
    Sf7 = 7,
    /// SF8.
    Sf8 = 8,
    /// SF9.
    Sf9 = 9,
    /// SF10.
    Sf10 = 10,
    /// SF11.
    Sf11 = 11,
    /// SF12.
    Sf12 = 12,
}

impl SpreadingFactor {
    /// All spreading factors, SF5 first.
    pub const ALL: [SpreadingFactor; 8] = [
        Self::Sf5,
        Self::Sf6,
        Self::Sf7,
        Self::Sf8,
        Self::Sf9,
        Self::Sf10,
        Self::Sf11,
        Self::Sf12,
    ];

    /// The spreading factor for `sf` in 5..=12, or `None`.
    pub const fn from_u8(sf: u8) -> Option<Self> {
        match sf {
            5 => Some(Self::Sf5),
            6 => Some(Self::Sf6),
            7 => Some(Self::Sf7),
            8 => Some(Self::Sf8),
            9 => Some(Self::Sf9),
            10 => Some(Self::Sf10),
            11 => Some(Self::Sf11),
            12 => Some(Self::Sf12),
            _ => None,
        }
    }

    /// The number 5..=12.
    pub const fn value(self) -> u8 {
        self as u8
    }
}

/// LoRa signal bandwidth. Each is 500 kHz divided by an integer, which keeps symbol times exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Bandwidth {
    /// 7.8125 kHz (500/64).
    Khz7_8,
    /// 10.4167 kHz (500/48).
    Khz10_4,
    /// 15.625 kHz (500/32).
    Khz15_6,
    /// 20.8333 kHz (500/24).
    Khz20_8,
    /// 31.25 kHz (500/16).
    Khz31_25,
    /// 41.6667 kHz (500/12).
    Khz41_7,
    /// 62.5 kHz (500/8).
    Khz62_5,
    /// 125 kHz (500/4), the LoRaWAN default.
    Khz125,
    /// 250 kHz (500/2).
    Khz250,
    /// 500 kHz.
    Khz500,
}

impl Bandwidth {
    /// 500 kHz divided by this bandwidth.
    pub const fn divider(self) -> u32 {
        match self {
            Self::Khz7_8 => 64,
            Self::Khz10_4 => 48,
            Self::Khz15_6 => 32,
            Self::Khz20_8 => 24,
            Self::Khz31_25 => 16,
            Self::Khz41_7 => 12,
            Self::Khz62_5 => 8,
            Self::Khz125 => 4,
            Self::Khz250 => 2,
            Self::Khz500 => 1,
        }
    }

    /// The bandwidth in hertz, rounded down (7812 for 7.8125 kHz).
    pub const fn hz(self) -> u32 {
        500_000 / self.divider()
    }

    /// The bandwidth whose value in hertz, rounded down, is `hz` (e.g. 125000, 7812, 10416).
    pub const fn from_hz(hz: u32) -> Option<Self> {
        match hz {
            7_812 => Some(Self::Khz7_8),
            10_416 => Some(Self::Khz10_4),
            15_625 => Some(Self::Khz15_6),
            20_833 => Some(Self::Khz20_8),
            31_250 => Some(Self::Khz31_25),
            41_666 => Some(Self::Khz41_7),
            62_500 => Some(Self::Khz62_5),
            125_000 => Some(Self::Khz125),
            250_000 => Some(Self::Khz250),
            500_000 => Some(Self::Khz500),
            _ => None,
        }
    }
}

/// Forward error correction rate: every 4 data bits become 5..8 coded bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CodingRate {
    /// 4/5.
    Cr4_5,
    /// 4/6.
    Cr4_6,
    /// 4/7.
    Cr4_7,
    /// 4/8.
    Cr4_8,
}

impl CodingRate {
    /// The denominator 5..=8 (`CR + 4` in Semtech's formula).
    pub const fn denominator(self) -> u32 {
        match self {
            Self::Cr4_5 => 5,
            Self::Cr4_6 => 6,
            Self::Cr4_7 => 7,
            Self::Cr4_8 => 8,
        }
    }
}

/// Low-data-rate optimisation setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LowDataRateOptimize {
    /// On when the symbol time is at least [`LDRO_THRESHOLD_US`] (16 ms), as Semtech requires.
    #[default]
    Auto,
    /// Always on.
    On,
    /// Always off.
    Off,
}

/// Radio family; the formulas differ only for SF5 and SF6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Chip {
    /// SX1261, SX1262, SX1268, LLCC68 (SF5..SF12).
    #[default]
    Sx126x,
    /// SX1272, SX1276, SX1277, SX1278, SX1279 (SF6..SF12, SF6 with implicit header only).
    Sx127x,
}

/// A LoRa parameter combination the chosen chip cannot transmit, or a payload it cannot carry.
/// All are the caller's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LoraError {
    /// The payload is longer than [`MAX_PAYLOAD`] bytes.
    PayloadTooLong {
        /// The payload length asked for.
        len: usize,
    },
    /// SF5 on an SX127x, which has no SF5.
    UnsupportedSpreadingFactor,
    /// SF6 with an explicit header on an SX127x, which supports SF6 only in implicit header mode.
    ImplicitHeaderRequired,
}

impl fmt::Display for LoraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PayloadTooLong { len } => write!(
                f,
                "LoRa payload of {len} bytes exceeds the maximum of {MAX_PAYLOAD}"
            ),
            Self::UnsupportedSpreadingFactor => f.write_str("SX127x radios have no SF5"),
            Self::ImplicitHeaderRequired => {
                f.write_str("SX127x radios support SF6 only with an implicit header")
            }
        }
    }
}

impl core::error::Error for LoraError {}

/// The LoRa modem settings that determine time on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LoraParams {
    /// Spreading factor.
    pub sf: SpreadingFactor,
    /// Signal bandwidth.
    pub bandwidth: Bandwidth,
    /// Coding rate.
    pub coding_rate: CodingRate,
    /// Programmed preamble length in symbols (8 in LoRaWAN); the radio adds 4.25 symbols of sync
    /// word and start-of-frame delimiter (6.25 on SX126x at SF5/SF6).
    pub preamble_symbols: u16,
    /// `true` to send the PHY header (length, coding rate, CRC presence); `false` for implicit
    /// header mode, where both ends fix those in advance.
    pub explicit_header: bool,
    /// `true` if a 16-bit payload CRC follows the payload.
    pub crc: bool,
    /// Low-data-rate optimisation.
    pub low_data_rate_optimize: LowDataRateOptimize,
    /// Radio family.
    pub chip: Chip,
}

impl LoraParams {
    /// `sf` and `bandwidth` with LoRaWAN's other settings: coding rate 4/5, 8 preamble symbols,
    /// explicit header, CRC on, LDRO automatic, SX126x.
    pub const fn new(sf: SpreadingFactor, bandwidth: Bandwidth) -> Self {
        Self {
            sf,
            bandwidth,
            coding_rate: CodingRate::Cr4_5,
            preamble_symbols: 8,
            explicit_header: true,
            crc: true,
            low_data_rate_optimize: LowDataRateOptimize::Auto,
            chip: Chip::Sx126x,
        }
    }

    /// Checks that the chip can transmit with these settings.
    pub const fn validate(&self) -> Result<(), LoraError> {
        match (self.chip, self.sf) {
            (Chip::Sx127x, SpreadingFactor::Sf5) => Err(LoraError::UnsupportedSpreadingFactor),
            (Chip::Sx127x, SpreadingFactor::Sf6) if self.explicit_header => {
                Err(LoraError::ImplicitHeaderRequired)
            }
            _ => Ok(()),
        }
    }

    /// Duration of one symbol in microseconds: `2^SF / BW` (1024 µs at SF7, 125 kHz).
    pub const fn symbol_time_us(&self) -> u64 {
        (1u64 << (self.sf.value() + 1)) * self.bandwidth.divider() as u64
    }

    /// Whether low-data-rate optimisation is in effect (resolving [`LowDataRateOptimize::Auto`]).
    pub const fn ldro_enabled(&self) -> bool {
        match self.low_data_rate_optimize {
            LowDataRateOptimize::On => true,
            LowDataRateOptimize::Off => false,
            LowDataRateOptimize::Auto => self.symbol_time_us() >= LDRO_THRESHOLD_US,
        }
    }

    /// Whether the SX126x SF5/SF6 formula applies.
    const fn sx126x_low_sf(&self) -> bool {
        matches!(self.chip, Chip::Sx126x) && self.sf.value() <= 6
    }

    /// Preamble duration in quarter symbols: `4·n_preamble + 17` (`+ 25` on SX126x at SF5/SF6).
    const fn preamble_quarter_symbols(&self) -> u64 {
        let extra = if self.sx126x_low_sf() { 25 } else { 17 };
        4 * self.preamble_symbols as u64 + extra
    }

    /// Duration of the preamble (programmed symbols plus sync word and start-of-frame delimiter)
    /// in microseconds.
    pub const fn preamble_time_us(&self) -> u64 {
        self.preamble_quarter_symbols() * (self.symbol_time_us() / 4)
    }

    /// Number of symbols after the preamble (`payloadSymbNb`: PHY header, payload and CRC, the 8
    /// symbols at the lowest rate included) for a payload of `payload_len` bytes.
    pub const fn payload_symbols(&self, payload_len: usize) -> Result<u32, LoraError> {
        if let Err(e) = self.validate() {
            return Err(e);
        }
        if payload_len > MAX_PAYLOAD {
            return Err(LoraError::PayloadTooLong { len: payload_len });
        }
        let sf = self.sf.value() as i32;
        let crc = if self.crc { 16 } else { 0 };
        // Bounded by 8 * 255: no overflow.
        let bits = 8 * payload_len as i32 + crc - 4 * sf;
        let (numerator, denominator) = if self.sx126x_low_sf() {
            let header = if self.explicit_header { 20 } else { 0 };
            (bits + header, 4 * sf)
        } else {
            let header = if self.explicit_header { 20 } else { 0 };
            let de = if self.ldro_enabled() { 2 } else { 0 };
            (bits + 8 + header, 4 * (sf - de))
        };
        let blocks = if numerator > 0 {
            (numerator as u32).div_ceil(denominator as u32)
        } else {
            0
        };
        Ok(8 + blocks * self.coding_rate.denominator())
    }

    /// Time on air of a frame carrying `payload_len` bytes, in microseconds (exact).
    ///
    /// ```
    /// use trickle_core::link::lora::{Bandwidth, LoraParams, SpreadingFactor};
    /// let p = LoraParams::new(SpreadingFactor::Sf12, Bandwidth::Khz125);
    /// assert_eq!(p.time_on_air_us(10), Ok(991_232));
    /// ```
    pub const fn time_on_air_us(&self, payload_len: usize) -> Result<u64, LoraError> {
        match self.payload_symbols(payload_len) {
            Ok(n) => {
                Ok((self.preamble_quarter_symbols() + 4 * n as u64) * (self.symbol_time_us() / 4))
            }
            Err(e) => Err(e),
        }
    }
}

/// Time on air of `payload_len` bytes with `params`, in microseconds; see
/// [`LoraParams::time_on_air_us`].
pub const fn time_on_air_us(params: &LoraParams, payload_len: usize) -> Result<u64, LoraError> {
    params.time_on_air_us(payload_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(sf: u8, bw: Bandwidth) -> LoraParams {
        LoraParams::new(SpreadingFactor::from_u8(sf).unwrap(), bw)
    }

    #[test]
    fn symbol_times() {
        assert_eq!(p(7, Bandwidth::Khz125).symbol_time_us(), 1_024);
        assert_eq!(p(9, Bandwidth::Khz125).symbol_time_us(), 4_096);
        assert_eq!(p(12, Bandwidth::Khz125).symbol_time_us(), 32_768);
        assert_eq!(p(12, Bandwidth::Khz500).symbol_time_us(), 8_192);
        assert_eq!(p(5, Bandwidth::Khz500).symbol_time_us(), 64);
        // 2^12 / 7812.5 Hz = 524.288 ms.
        assert_eq!(p(12, Bandwidth::Khz7_8).symbol_time_us(), 524_288);
        // 2^7 / 10416.67 Hz = 12.288 ms.
        assert_eq!(p(7, Bandwidth::Khz10_4).symbol_time_us(), 12_288);
    }

    #[test]
    fn bandwidth_hz_round_trip() {
        for bw in [
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
        ] {
            assert_eq!(Bandwidth::from_hz(bw.hz()), Some(bw));
        }
        assert_eq!(Bandwidth::from_hz(100_000), None);
    }

    #[test]
    fn ldro_auto_follows_the_16_ms_rule() {
        assert!(!p(10, Bandwidth::Khz125).ldro_enabled()); // 8.192 ms
        assert!(p(11, Bandwidth::Khz125).ldro_enabled()); // 16.384 ms
        assert!(p(12, Bandwidth::Khz125).ldro_enabled());
        assert!(!p(11, Bandwidth::Khz250).ldro_enabled());
        assert!(p(12, Bandwidth::Khz250).ldro_enabled());
        assert!(!p(12, Bandwidth::Khz500).ldro_enabled());
        assert!(p(9, Bandwidth::Khz31_25).ldro_enabled()); // exactly 16.384 ms
        let mut forced = p(7, Bandwidth::Khz125);
        forced.low_data_rate_optimize = LowDataRateOptimize::On;
        assert!(forced.ldro_enabled());
        forced = p(12, Bandwidth::Khz125);
        forced.low_data_rate_optimize = LowDataRateOptimize::Off;
        assert!(!forced.ldro_enabled());
    }

    // Values published by Semtech-formula calculators (rfwireless-world "LoRaWAN Airtime
    // calculator" examples; the AN1200.13 spreadsheet by Thomas Telkamp), recomputed by hand:
    #[test]
    fn published_calculator_values() {
        // SF7/125 kHz, CR 4/5, 8 preamble, explicit header, CRC, LDRO off, 10 bytes:
        // preamble 12.25 × 1.024 = 12.544 ms; payload 8 + ceil(96/28)·5 = 28 symbols = 28.672 ms.
        let sf7 = p(7, Bandwidth::Khz125);
        assert_eq!(sf7.preamble_time_us(), 12_544);
        assert_eq!(sf7.payload_symbols(10), Ok(28));
        assert_eq!(sf7.time_on_air_us(10), Ok(41_216));
        // SF11, LDRO on: preamble 200.704 ms, payload 8 + ceil(92/36)·5 = 23 symbols = 376.832 ms.
        let sf11 = p(11, Bandwidth::Khz125);
        assert_eq!(sf11.preamble_time_us(), 200_704);
        assert_eq!(sf11.time_on_air_us(10), Ok(577_536));
        // SF12, LDRO on: 401.408 ms + 8 + ceil(76/40)·5 = 18 symbols → 991.232 ms.
        let sf12 = p(12, Bandwidth::Khz125);
        assert_eq!(sf12.payload_symbols(10), Ok(18));
        assert_eq!(sf12.time_on_air_us(10), Ok(991_232));
        // Spreadsheet: SF9, 13 bytes, LDRO off → Tpreamble 50.176, 28 symbols, 164.864 ms.
        let sf9 = p(9, Bandwidth::Khz125);
        assert_eq!(sf9.preamble_time_us(), 50_176);
        assert_eq!(sf9.payload_symbols(13), Ok(28));
        assert_eq!(sf9.time_on_air_us(13), Ok(164_864));
        // By hand: SF12, 13 bytes, CR 4/8, LDRO on: 8 + ceil(100/40)·8 = 32 symbols;
        // (12.25 + 32) × 32.768 ms = 1449.984 ms.
        let mut sf12cr8 = p(12, Bandwidth::Khz125);
        sf12cr8.coding_rate = CodingRate::Cr4_8;
        assert_eq!(sf12cr8.payload_symbols(13), Ok(32));
        assert_eq!(sf12cr8.time_on_air_us(13), Ok(1_449_984));
    }

    #[test]
    fn implicit_header_without_crc() {
        // SF7, implicit, no CRC, 10 bytes: 8 + ceil((80 − 28 + 8)/28)·5 = 23 symbols;
        // (12.25 + 23) × 1.024 ms = 36.096 ms.
        let mut q = p(7, Bandwidth::Khz125);
        q.explicit_header = false;
        q.crc = false;
        assert_eq!(q.payload_symbols(10), Ok(23));
        assert_eq!(q.time_on_air_us(10), Ok(36_096));
        // Empty payload at SF12: the numerator is negative, only the 8 fixed symbols remain:
        // (8 + 4.25 + 8) × 32.768 ms = 663.552 ms.
        let mut e = p(12, Bandwidth::Khz125);
        e.explicit_header = false;
        e.crc = false;
        assert_eq!(e.payload_symbols(0), Ok(8));
        assert_eq!(e.time_on_air_us(0), Ok(663_552));
    }

    #[test]
    fn sx126x_sf5_sf6() {
        // SF5/125 kHz, 10 bytes, CRC, explicit: T_sym 256 µs; 8 + ceil((80+16−20+20)/20)·5 = 33
        // symbols; (8 + 6.25 + 33) × 256 µs = 12.096 ms.
        let sf5 = p(5, Bandwidth::Khz125);
        assert_eq!(sf5.symbol_time_us(), 256);
        assert_eq!(sf5.payload_symbols(10), Ok(33));
        assert_eq!(sf5.preamble_time_us(), 3_648);
        assert_eq!(sf5.time_on_air_us(10), Ok(12_096));
        // SF6/125 kHz, 32 bytes: T_sym 512 µs; 8 + ceil((256+16−24+20)/24)·5 = 68 symbols;
        // (8 + 6.25 + 68) × 512 µs = 42.112 ms.
        let sf6 = p(6, Bandwidth::Khz125);
        assert_eq!(sf6.payload_symbols(32), Ok(68));
        assert_eq!(sf6.time_on_air_us(32), Ok(42_112));
        // LDRO does not enter the SX126x SF5/SF6 formula.
        let mut forced = sf6;
        forced.low_data_rate_optimize = LowDataRateOptimize::On;
        assert_eq!(forced.time_on_air_us(32), Ok(42_112));
    }

    #[test]
    fn sx127x_sf6_implicit_uses_the_general_formula() {
        // SX1276 SF6, implicit, CRC, 32 bytes: 8 + ceil((256−24+8+16)/24)·5 = 63 symbols;
        // (8 + 4.25 + 63) × 512 µs = 38.528 ms.
        let mut q = p(6, Bandwidth::Khz125);
        q.chip = Chip::Sx127x;
        q.explicit_header = false;
        assert_eq!(q.payload_symbols(32), Ok(63));
        assert_eq!(q.time_on_air_us(32), Ok(38_528));
    }

    #[test]
    fn chip_limits_are_reported() {
        let mut q = p(5, Bandwidth::Khz125);
        q.chip = Chip::Sx127x;
        assert_eq!(
            q.time_on_air_us(1),
            Err(LoraError::UnsupportedSpreadingFactor)
        );
        q.sf = SpreadingFactor::Sf6;
        assert_eq!(q.time_on_air_us(1), Err(LoraError::ImplicitHeaderRequired));
        q.explicit_header = false;
        assert!(q.time_on_air_us(1).is_ok());
        let r = p(7, Bandwidth::Khz125);
        assert_eq!(r.time_on_air_us(255), Ok(399_616));
        assert_eq!(
            r.time_on_air_us(256),
            Err(LoraError::PayloadTooLong { len: 256 })
        );
        assert_eq!(time_on_air_us(&r, 256), r.time_on_air_us(256));
    }

    /// Trickle's frame sizes: "Hello" 32 bytes, ACK 21, notification 44 (SF5..SF12, 125 kHz,
    /// LoRaWAN defaults). Expected values from an independent floating-point evaluation of the
    /// AN1200.13 formula; SF7/32 B by hand: 8 + ceil(272/28)·5 = 58 symbols, 70.25 × 1.024 ms.
    #[test]
    fn trickle_frame_table() {
        let expected: [(u8, [u64; 3]); 8] = [
            (5, [23_616, 18_496, 30_016]), // SX126x formula
            (6, [42_112, 31_872, 52_352]), // SX126x formula
            (7, [71_936, 56_576, 92_416]),
            (8, [133_632, 102_912, 164_352]),
            (9, [246_784, 185_344, 287_744]),
            (10, [452_608, 370_688, 534_528]),
            (11, [987_136, 741_376, 1_150_976]),
            (12, [1_810_432, 1_482_752, 2_138_112]),
        ];
        for (sf, [hello, ack, note]) in expected {
            let q = p(sf, Bandwidth::Khz125);
            assert_eq!(q.time_on_air_us(32), Ok(hello), "SF{sf} 32 B");
            assert_eq!(q.time_on_air_us(21), Ok(ack), "SF{sf} 21 B");
            assert_eq!(q.time_on_air_us(44), Ok(note), "SF{sf} 44 B");
        }
    }

    fn params() -> impl Strategy<Value = LoraParams> {
        (
            5u8..=12,
            0usize..10,
            0usize..4,
            0u16..64,
            any::<bool>(),
            any::<bool>(),
            0usize..3,
            any::<bool>(),
        )
            .prop_map(|(sf, bw, cr, pre, eh, crc, ldro, sx127)| {
                let bws = [
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
                let crs = [
                    CodingRate::Cr4_5,
                    CodingRate::Cr4_6,
                    CodingRate::Cr4_7,
                    CodingRate::Cr4_8,
                ];
                let ldros = [
                    LowDataRateOptimize::Auto,
                    LowDataRateOptimize::On,
                    LowDataRateOptimize::Off,
                ];
                LoraParams {
                    sf: SpreadingFactor::from_u8(sf).unwrap(),
                    bandwidth: bws[bw],
                    coding_rate: crs[cr],
                    preamble_symbols: pre,
                    explicit_header: eh,
                    crc,
                    low_data_rate_optimize: ldros[ldro],
                    chip: if sx127 && sf >= 7 {
                        Chip::Sx127x
                    } else {
                        Chip::Sx126x
                    },
                }
            })
    }

    proptest! {
        #[test]
        fn monotonic_in_payload_length(q in params(), len in 0usize..MAX_PAYLOAD) {
            let a = q.time_on_air_us(len).unwrap();
            let b = q.time_on_air_us(len + 1).unwrap();
            prop_assert!(b >= a);
            // Adding a byte never costs more than one coding block.
            let block = u64::from(q.coding_rate.denominator()) * q.symbol_time_us();
            prop_assert!(b - a <= block);
            // And is exact on the symbol grid: a multiple of whole symbols.
            prop_assert_eq!(a % (q.symbol_time_us() / 4), 0);
        }

        #[test]
        fn strictly_increasing_in_sf(q in params(), len in 0usize..=MAX_PAYLOAD) {
            if let Some(next) = SpreadingFactor::from_u8(q.sf.value() + 1) {
                let mut r = q;
                r.sf = next;
                if q.low_data_rate_optimize == LowDataRateOptimize::Auto {
                    prop_assert!(r.ldro_enabled() || !q.ldro_enabled());
                }
                prop_assert!(r.time_on_air_us(len).unwrap() > q.time_on_air_us(len).unwrap());
            }
        }
    }
}
