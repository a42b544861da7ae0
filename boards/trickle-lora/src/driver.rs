//! The chip-independent driver: frame length, time on air, duty cycle, timeouts, statistics.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use trickle_core::client::Instant;
use trickle_core::link::lora::Chip;
use trickle_core::link::{AsyncFrameLink, Clock, FrameLink};

use crate::bus::{AsyncBus, BlockingBus, Bus, block_on};
use crate::duty::{DutyCycle, Refusal, eu868_sub_band};
use crate::{Config, ConfigError, Error, MAX_FRAME_LEN, PacketStatus, Region, Stats};

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// What one look at the radio's receive side found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxEvent {
    /// No packet.
    Nothing,
    /// A packet of `len` bytes, copied to the start of the buffer.
    Frame {
        /// Its length.
        len: usize,
        /// Its signal quality.
        status: PacketStatus,
    },
    /// A packet whose payload CRC failed; dropped.
    CrcError,
    /// A packet whose header was invalid; dropped.
    HeaderError,
    /// A packet of `len` bytes that did not fit the buffer; dropped.
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// A radio family: the register or command sequences of one chip. Implemented by
/// [`Sx127x`](crate::sx127x::Sx127x) and [`Sx126x`](crate::sx126x::Sx126x) only.
#[allow(async_fn_in_trait)]
pub trait Radio: Sealed {
    /// The family, for the time-on-air formula.
    const FAMILY: Chip;

    /// Checks the settings this chip cannot honour (frequency range, output power).
    fn validate(&self, config: &Config) -> Result<(), ConfigError>;

    /// Resets the chip, checks it is there, configures the modem and starts continuous receive.
    async fn init<B: Bus>(
        &mut self,
        bus: &mut B,
        config: &Config,
    ) -> Result<(), Error<B::SpiError>>;

    /// Loads `frame` and starts transmitting; the chip may give up after `timeout_us`.
    async fn start_tx<B: Bus>(
        &mut self,
        bus: &mut B,
        config: &Config,
        frame: &[u8],
        timeout_us: u32,
    ) -> Result<(), Error<B::SpiError>>;

    /// Reads and clears the interrupt flags after a transmission; `true` if TxDone was set.
    async fn tx_done<B: Bus>(&mut self, bus: &mut B) -> Result<bool, Error<B::SpiError>>;

    /// Puts the radio (back) into continuous receive after a transmission.
    async fn start_rx<B: Bus>(
        &mut self,
        bus: &mut B,
        config: &Config,
    ) -> Result<(), Error<B::SpiError>>;

    /// Reads what the radio received (called when the IRQ pin is high) and clears the flags.
    async fn read_rx<B: Bus>(
        &mut self,
        bus: &mut B,
        buf: &mut [u8],
    ) -> Result<RxEvent, Error<B::SpiError>>;
}

/// A LoRa radio carrying Trickle frames.
///
/// `R` is the chip family ([`Sx127x`](crate::sx127x::Sx127x),
/// [`Sx126x`](crate::sx126x::Sx126x)), `B` the board ([`BlockingBus`] for
/// [`FrameLink`], [`AsyncBus`] for [`AsyncFrameLink`]), `C` the millisecond clock the
/// duty-cycle limiter reads.
#[derive(Debug)]
pub struct LoRa<R, B, C> {
    radio: R,
    bus: B,
    clock: C,
    config: Config,
    band: Option<usize>,
    duty: DutyCycle,
    stats: Stats,
    last: Option<PacketStatus>,
}

/// Checks `config` for radio `radio` and returns it with the chip family filled in, and the
/// duty-cycle sub-band.
fn prepare<R: Radio>(
    radio: &R,
    mut config: Config,
) -> Result<(Config, Option<usize>), ConfigError> {
    config.modem.chip = R::FAMILY;
    if !config.modem.explicit_header {
        return Err(ConfigError::ImplicitHeader);
    }
    if config.modem.preamble_symbols < 6 {
        return Err(ConfigError::Preamble);
    }
    config
        .modem
        .validate()
        .map_err(|_| ConfigError::SpreadingFactor)?;
    radio.validate(&config)?;
    let band = match config.region {
        Region::Eu868 => Some(
            eu868_sub_band(config.frequency_hz, config.modem.bandwidth.hz())
                .ok_or(ConfigError::NoSubBand)?,
        ),
        Region::Unlimited => None,
    };
    Ok((config, band))
}

impl<R: Radio, B: Bus, C: Clock> LoRa<R, B, C> {
    async fn setup(
        mut radio: R,
        mut bus: B,
        clock: C,
        config: Config,
    ) -> Result<Self, Error<B::SpiError>> {
        let (config, band) = prepare(&radio, config)?;
        radio.init(&mut bus, &config).await?;
        Ok(Self {
            radio,
            bus,
            clock,
            config,
            band,
            duty: DutyCycle::new(),
            stats: Stats::default(),
            last: None,
        })
    }

    /// Time on air of a frame of `len` bytes with the current settings, in microseconds.
    pub fn time_on_air_us(&self, len: usize) -> Option<u64> {
        self.config.modem.time_on_air_us(len).ok()
    }

    /// How long until a frame of `len` bytes may be sent: `Ok(0)` if now.
    pub fn duty_cycle_wait_ms(&mut self, len: usize) -> Result<u64, Error<B::SpiError>> {
        match self.check(len) {
            Ok(_) => Ok(0),
            Err(Error::DutyCycle { wait_ms }) => Ok(wait_ms),
            Err(e) => Err(e),
        }
    }

    /// Checks that a frame of `len` bytes may be sent now; returns its airtime and `now`.
    fn check(&mut self, len: usize) -> Result<(u64, Instant), Error<B::SpiError>> {
        let too_long = Error::FrameTooLong {
            len,
            max: MAX_FRAME_LEN,
        };
        let airtime_us = self
            .config
            .modem
            .time_on_air_us(len)
            .map_err(|_| too_long)?;
        let now = self.clock.now();
        if let Some(band) = self.band {
            self.duty
                .check(band, now, airtime_us)
                .map_err(|r| match r {
                    Refusal::Wait { wait_ms } => Error::DutyCycle { wait_ms },
                    Refusal::TooLong => Error::ExceedsBudget { airtime_us },
                })?;
        }
        Ok((airtime_us, now))
    }

    async fn send(&mut self, frame: &[u8]) -> Result<(), Error<B::SpiError>> {
        let (airtime_us, now) = self.check(frame.len())?;
        if self.bus.irq_high()? {
            self.stats.rx_discarded = self.stats.rx_discarded.wrapping_add(1);
        }
        // TxDone is due after the airtime; allow 1/8 more plus 50 ms for the chip's ramp-up
        // and the caller's clock granularity.
        let timeout_us = u32::try_from(airtime_us + airtime_us / 8 + 50_000).unwrap_or(u32::MAX);
        self.radio
            .start_tx(&mut self.bus, &self.config, frame, timeout_us)
            .await?;
        if let Some(band) = self.band {
            self.duty.record(band, now, airtime_us);
        }
        let done =
            self.bus.wait_irq(timeout_us).await? && self.radio.tx_done(&mut self.bus).await?;
        self.radio.start_rx(&mut self.bus, &self.config).await?;
        if done {
            self.stats.tx_frames = self.stats.tx_frames.wrapping_add(1);
            Ok(())
        } else {
            Err(Error::TxTimeout)
        }
    }

    async fn poll_rx(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error<B::SpiError>> {
        if !self.bus.irq_high()? {
            return Ok(None);
        }
        let s = &mut self.stats;
        match self.radio.read_rx(&mut self.bus, buf).await? {
            RxEvent::Nothing => Ok(None),
            RxEvent::Frame { len, status } => {
                s.rx_frames = s.rx_frames.wrapping_add(1);
                self.last = Some(status);
                Ok(Some(len))
            }
            RxEvent::CrcError => {
                s.crc_errors = s.crc_errors.wrapping_add(1);
                Ok(None)
            }
            RxEvent::HeaderError => {
                s.header_errors = s.header_errors.wrapping_add(1);
                Ok(None)
            }
            RxEvent::TooLong { len } => {
                s.too_long = s.too_long.wrapping_add(1);
                Err(Error::BufferTooSmall { required: len })
            }
        }
    }

    async fn poll_rx_until(
        &mut self,
        buf: &mut [u8],
        timeout_ms: u64,
    ) -> Result<Option<usize>, Error<B::SpiError>> {
        let deadline = self.clock.now().add_ms(timeout_ms);
        loop {
            if let Some(n) = self.poll_rx(buf).await? {
                return Ok(Some(n));
            }
            let now = self.clock.now();
            if now >= deadline {
                return Ok(None);
            }
            let left_us = (deadline.0 - now.0).saturating_mul(1000);
            if !self
                .bus
                .wait_irq(u32::try_from(left_us).unwrap_or(u32::MAX))
                .await?
                && self.clock.now() >= deadline
            {
                return Ok(None);
            }
        }
    }

    /// The settings in force (with `modem.chip` set to this radio's family).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// RSSI and SNR of the last frame delivered.
    pub fn last_packet(&self) -> Option<PacketStatus> {
        self.last
    }

    /// Counters of frames sent, received and dropped.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Gives back the radio, the board and the clock.
    pub fn release(self) -> (R, B, C) {
        (self.radio, self.bus, self.clock)
    }
}

impl<R, SPI, RST, BUSY, IRQ, D, C> LoRa<R, BlockingBus<SPI, RST, BUSY, IRQ, D>, C>
where
    R: Radio,
    SPI: SpiDevice,
    RST: OutputPin,
    BUSY: InputPin,
    IRQ: InputPin,
    D: DelayNs,
    C: Clock,
{
    /// Resets and configures the radio (blocking) and leaves it in continuous receive.
    pub fn new(
        radio: R,
        bus: BlockingBus<SPI, RST, BUSY, IRQ, D>,
        clock: C,
        config: Config,
    ) -> Result<Self, Error<SPI::Error>> {
        block_on(Self::setup(radio, bus, clock, config))
    }

    /// Waits up to `timeout_ms` for a frame; `Ok(None)` if none came.
    pub fn receive_timeout(
        &mut self,
        buf: &mut [u8],
        timeout_ms: u64,
    ) -> Result<Option<usize>, Error<SPI::Error>> {
        block_on(self.poll_rx_until(buf, timeout_ms))
    }
}

impl<R, SPI, RST, BUSY, IRQ, D, C> FrameLink for LoRa<R, BlockingBus<SPI, RST, BUSY, IRQ, D>, C>
where
    R: Radio,
    SPI: SpiDevice,
    RST: OutputPin,
    BUSY: InputPin,
    IRQ: InputPin,
    D: DelayNs,
    C: Clock,
{
    type Error = Error<SPI::Error>;

    fn max_frame_len(&self) -> usize {
        MAX_FRAME_LEN
    }

    /// Sends `frame` and waits for TxDone. Refused without touching the radio if the frame is
    /// too long or the duty cycle is exhausted.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        block_on(self.send(frame))
    }

    /// Looks at the IRQ pin; only if it is high talks to the radio.
    fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        block_on(self.poll_rx(buf))
    }
}

impl<R, SPI, RST, BUSY, IRQ, D, C> LoRa<R, AsyncBus<SPI, RST, BUSY, IRQ, D>, C>
where
    R: Radio,
    SPI: embedded_hal_async::spi::SpiDevice,
    RST: OutputPin,
    BUSY: embedded_hal_async::digital::Wait,
    IRQ: InputPin + embedded_hal_async::digital::Wait,
    D: embedded_hal_async::delay::DelayNs,
    C: Clock,
{
    /// Resets and configures the radio and leaves it in continuous receive.
    pub async fn new_async(
        radio: R,
        bus: AsyncBus<SPI, RST, BUSY, IRQ, D>,
        clock: C,
        config: Config,
    ) -> Result<Self, Error<SPI::Error>> {
        Self::setup(radio, bus, clock, config).await
    }

    /// Waits up to `timeout_ms` for a frame; `Ok(None)` if none came.
    pub async fn receive_timeout(
        &mut self,
        buf: &mut [u8],
        timeout_ms: u64,
    ) -> Result<Option<usize>, Error<SPI::Error>> {
        self.poll_rx_until(buf, timeout_ms).await
    }
}

impl<R, SPI, RST, BUSY, IRQ, D, C> AsyncFrameLink for LoRa<R, AsyncBus<SPI, RST, BUSY, IRQ, D>, C>
where
    R: Radio,
    SPI: embedded_hal_async::spi::SpiDevice,
    RST: OutputPin,
    BUSY: embedded_hal_async::digital::Wait,
    IRQ: InputPin + embedded_hal_async::digital::Wait,
    D: embedded_hal_async::delay::DelayNs,
    C: Clock,
{
    type Error = Error<SPI::Error>;

    fn max_frame_len(&self) -> usize {
        MAX_FRAME_LEN
    }

    async fn transmit(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        self.send(frame).await
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            if let Some(n) = self.poll_rx(buf).await? {
                return Ok(n);
            }
            self.bus.wait_irq(u32::MAX).await?;
        }
    }
}
