//! Trickle over LoRa: lean drivers for the Semtech SX1276/77/78 and SX1261/62 radios.
//!
//! The radio is a [`FrameLink`](trickle_core::link::FrameLink) (blocking, polled) or an
//! [`AsyncFrameLink`](trickle_core::link::AsyncFrameLink): one LoRa packet carries one Trickle
//! frame of up to 255 bytes. The driver
//!
//! - configures the modem ([`Config`]: frequency, spreading factor, bandwidth, coding rate,
//!   sync word, payload CRC, preamble length, output power),
//! - sends a frame and waits for TxDone (with a timeout derived from the exact time on air),
//! - keeps the radio in continuous receive; [`FrameLink::receive`](trickle_core::link::FrameLink::receive) returns a waiting frame without
//!   blocking, `LoRa::receive_timeout` waits up to a deadline,
//! - reports RSSI and SNR of the last packet ([`LoRa::last_packet`]),
//! - drops frames whose CRC failed and counts them ([`Stats`]),
//! - refuses to transmit past the EU868 sub-band duty cycle and says how long to wait
//!   ([`duty`], [`Error::DutyCycle`]).
//!
//! Time on air comes from [`trickle_core::link::lora`] (Semtech's formula, exact in µs).
//!
//! Chip logic ([`sx127x`], [`sx126x`]) is written once over the [`bus::Bus`] trait; the
//! [`bus::BlockingBus`] and [`bus::AsyncBus`] adapters bind it to `embedded-hal` 1.0 or
//! `embedded-hal-async`, so both flavours send exactly the same SPI bytes.
//!
//! ```text
//! use trickle_lora::{Config, LoRa, bus::{BlockingBus, NoPin}, sx127x::Sx127x};
//! let bus = BlockingBus::new(spi, reset, NoPin, dio0, delay);
//! let mut radio = LoRa::new(Sx127x::new(), bus, clock, Config::eu868(868_100_000, params))?;
//! radio.transmit(&frame)?;
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bus;
mod driver;
pub mod duty;
pub mod sx126x;
pub mod sx127x;

use core::fmt;

use embedded_hal::digital::ErrorKind;
pub use trickle_core::link::lora::{
    Bandwidth, CodingRate, LoraParams, LowDataRateOptimize, SpreadingFactor,
};

pub use driver::{LoRa, Radio};
pub use duty::Region;

/// The largest frame one LoRa packet carries (the explicit header's length byte).
pub const MAX_FRAME_LEN: usize = trickle_core::link::lora::MAX_PAYLOAD;

/// The LoRa sync word for private networks (SX127x `0x12`, SX126x `0x1424`).
pub const SYNC_WORD_PRIVATE: u8 = 0x12;
/// The LoRa sync word of public LoRaWAN networks (SX127x `0x34`, SX126x `0x3444`).
pub const SYNC_WORD_LORAWAN: u8 = 0x34;

/// Modem settings, identical at both ends of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// Carrier frequency in Hz (e.g. 868 100 000).
    pub frequency_hz: u32,
    /// Spreading factor, bandwidth, coding rate, preamble length, payload CRC, low-data-rate
    /// optimisation. The header is always explicit (Trickle frames vary in length); `chip` is
    /// set by the driver.
    pub modem: LoraParams,
    /// Sync word in SX127x form (`0x12` private, `0x34` LoRaWAN); an SX126x gets `0xX4Y4` for
    /// `0xXY`, which is what makes the two families hear each other.
    pub sync_word: u8,
    /// Output power in dBm (SX127x PA_BOOST 2..=17, RFO 0..=14; SX1262 −9..=22; SX1261
    /// −17..=14).
    pub tx_power_dbm: i8,
    /// Which duty-cycle rules apply.
    pub region: Region,
}

impl Config {
    /// EU868 settings at `frequency_hz` with `modem`, the private sync word and 14 dBm.
    pub const fn eu868(frequency_hz: u32, modem: LoraParams) -> Self {
        Self {
            frequency_hz,
            modem,
            sync_word: SYNC_WORD_PRIVATE,
            tx_power_dbm: 14,
            region: Region::Eu868,
        }
    }
}

/// Settings the chip cannot honour. The caller's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The frequency is outside the chip's range.
    Frequency,
    /// The frequency (with its bandwidth) lies in no sub-band of the region.
    NoSubBand,
    /// Output power outside the chip's range.
    TxPower,
    /// Spreading factor unsupported by the chip (SX127x: SF5, and SF6 which needs an implicit
    /// header).
    SpreadingFactor,
    /// Implicit header mode is not supported: frames vary in length.
    ImplicitHeader,
    /// A preamble shorter than 6 symbols (SX127x minimum; SX126x recommends 8 or more).
    Preamble,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Frequency => "frequency outside the radio's range",
            Self::NoSubBand => "frequency lies in no sub-band of the region",
            Self::TxPower => "output power outside the radio's range",
            Self::SpreadingFactor => "spreading factor not supported by this radio",
            Self::ImplicitHeader => "implicit header mode is not supported",
            Self::Preamble => "preamble shorter than 6 symbols",
        })
    }
}

impl core::error::Error for ConfigError {}

/// What went wrong, split by whose fault it is. `S` is the SPI device's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<S> {
    /// The SPI bus failed (board).
    Spi(S),
    /// A GPIO failed (board).
    Pin(#[cfg_attr(feature = "defmt", defmt(Debug2Format))] ErrorKind),
    /// No radio of the expected family answered: the SX127x version register or the SX126x
    /// sync word reset value read back as `found` (hardware, wiring).
    ChipNotFound {
        /// What was read instead.
        found: u16,
    },
    /// The SX126x held BUSY high too long (hardware).
    Busy,
    /// TxDone did not come in time; the radio was put back into receive (hardware).
    TxTimeout,
    /// The settings are not possible on this chip (caller).
    Config(ConfigError),
    /// A frame longer than the link carries; nothing was sent (caller).
    FrameTooLong {
        /// The frame's length.
        len: usize,
        /// The longest frame allowed.
        max: usize,
    },
    /// A received frame did not fit `buf`; it was dropped (caller).
    BufferTooSmall {
        /// The frame's length.
        required: usize,
    },
    /// Sending now would exceed the sub-band's duty cycle; nothing was sent. Retry after
    /// `wait_ms` milliseconds (regulation).
    DutyCycle {
        /// Milliseconds until this frame fits the budget.
        wait_ms: u64,
    },
    /// This frame alone is longer than the sub-band's hourly budget: it can never be sent with
    /// these settings (caller).
    ExceedsBudget {
        /// The frame's time on air in microseconds.
        airtime_us: u64,
    },
}

impl<S> From<ConfigError> for Error<S> {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl<S: fmt::Debug> fmt::Display for Error<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spi(e) => write!(f, "SPI error: {e:?}"),
            Self::Pin(e) => write!(f, "GPIO error: {e:?}"),
            Self::ChipNotFound { found } => {
                write!(f, "radio not found (read {found:#06x})")
            }
            Self::Busy => f.write_str("radio stayed BUSY"),
            Self::TxTimeout => f.write_str("no TxDone before the timeout"),
            Self::Config(e) => write!(f, "invalid configuration: {e}"),
            Self::FrameTooLong { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            Self::BufferTooSmall { required } => {
                write!(
                    f,
                    "received frame of {required} bytes does not fit the buffer"
                )
            }
            Self::DutyCycle { wait_ms } => {
                write!(f, "duty cycle exhausted: frame fits in {wait_ms} ms")
            }
            Self::ExceedsBudget { airtime_us } => write!(
                f,
                "frame of {airtime_us} µs on air exceeds the sub-band's hourly budget"
            ),
        }
    }
}

impl<S: fmt::Debug> core::error::Error for Error<S> {}

/// Signal quality of a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketStatus {
    /// Received signal strength of the packet in dBm.
    pub rssi_dbm: i16,
    /// Signal-to-noise ratio in quarter dB (`-30` is −7.5 dB).
    pub snr_quarter_db: i16,
}

/// Counters since the driver was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Frames sent (TxDone seen).
    pub tx_frames: u32,
    /// Frames delivered to the caller.
    pub rx_frames: u32,
    /// Packets dropped because their payload CRC failed.
    pub crc_errors: u32,
    /// Packets dropped because their PHY header was invalid (SX126x reports these).
    pub header_errors: u32,
    /// Packets dropped because they did not fit the caller's buffer.
    pub too_long: u32,
    /// Receive events discarded because `transmit` was called while one was pending (the radio
    /// is half-duplex and shares its buffer between TX and RX: call `receive` first to keep
    /// them).
    pub rx_discarded: u32,
}
