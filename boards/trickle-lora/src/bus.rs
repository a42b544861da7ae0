//! The board side of a radio: SPI, reset, BUSY and the IRQ pin, blocking or async.
//!
//! The chip logic ([`crate::sx127x`], [`crate::sx126x`]) is written once, as `async` code over
//! the [`Bus`] trait. [`BlockingBus`] implements it with `embedded-hal` 1.0 traits: its futures
//! complete on their first poll, and the blocking driver runs them with [`block_on`].
//! [`AsyncBus`] implements it with `embedded-hal-async`, for executors such as Embassy. The SPI
//! bytes are the same in both cases.

use core::convert::Infallible;
use core::future::{Future, poll_fn};
use core::marker::PhantomData;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, ErrorType, InputPin, OutputPin};
use embedded_hal::spi::{Operation, SpiDevice};

use crate::Error;

/// How often the blocking bus looks at the IRQ and BUSY pins while it waits, in microseconds.
pub const POLL_STEP_US: u32 = 1_000;

/// How long a chip may hold BUSY high before the driver gives up, in microseconds (the longest
/// SX126x operation, a full calibration, takes 3.5 ms; datasheet §13.1.12).
pub const BUSY_TIMEOUT_US: u32 = 10_000;

/// What the chip drivers need from the board.
///
/// Implemented by [`BlockingBus`] and [`AsyncBus`]; firmware does not implement it.
#[allow(async_fn_in_trait)]
pub trait Bus {
    /// The SPI device's error.
    type SpiError: core::fmt::Debug;

    /// One SPI transaction (chip select held): writes `head`, then `data`.
    async fn write(&mut self, head: &[u8], data: &[u8]) -> Result<(), Error<Self::SpiError>>;

    /// One SPI transaction: writes `head`, then reads `out.len()` bytes.
    async fn read(&mut self, head: &[u8], out: &mut [u8]) -> Result<(), Error<Self::SpiError>>;

    /// Waits `us` microseconds.
    async fn delay_us(&mut self, us: u32);

    /// Drives the reset line (`false`: chip held in reset).
    fn set_reset(&mut self, high: bool) -> Result<(), Error<Self::SpiError>>;

    /// Waits until BUSY is low (SX126x), or fails with [`Error::Busy`] after
    /// [`BUSY_TIMEOUT_US`]. Returns at once on boards without a BUSY pin ([`NoPin`]).
    async fn wait_not_busy(&mut self) -> Result<(), Error<Self::SpiError>>;

    /// Whether the IRQ pin (DIO0 on SX127x, DIO1 on SX126x) is high right now.
    fn irq_high(&mut self) -> Result<bool, Error<Self::SpiError>>;

    /// Waits until the IRQ pin is high (`true`) or `timeout_us` passed (`false`).
    async fn wait_irq(&mut self, timeout_us: u32) -> Result<bool, Error<Self::SpiError>>;
}

/// A pin that is not wired: reads low, ignores writes, is never waited on.
///
/// Use it for the BUSY pin of an SX127x (which has none) or an unconnected reset line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoPin;

impl ErrorType for NoPin {
    type Error = Infallible;
}

impl InputPin for NoPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(false)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(true)
    }
}

impl OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl embedded_hal_async::digital::Wait for NoPin {
    async fn wait_for_high(&mut self) -> Result<(), Infallible> {
        poll_fn(|_| Poll::Pending).await
    }
    async fn wait_for_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    async fn wait_for_rising_edge(&mut self) -> Result<(), Infallible> {
        poll_fn(|_| Poll::Pending).await
    }
    async fn wait_for_falling_edge(&mut self) -> Result<(), Infallible> {
        poll_fn(|_| Poll::Pending).await
    }
    async fn wait_for_any_edge(&mut self) -> Result<(), Infallible> {
        poll_fn(|_| Poll::Pending).await
    }
}

fn pin_err<S, E: digital::Error>(e: E) -> Error<S> {
    Error::Pin(e.kind())
}

/// The peripherals of one radio: SPI device, reset line, BUSY and IRQ pins, delay. `M` is
/// [`Blocking`] or [`Async`]; use the aliases [`BlockingBus`] and [`AsyncBus`].
#[derive(Debug)]
pub struct Board<SPI, RST, BUSY, IRQ, D, M> {
    spi: SPI,
    reset: RST,
    busy: BUSY,
    irq: IRQ,
    delay: D,
    mode: PhantomData<M>,
}

/// Marker: the board's peripherals implement the blocking `embedded-hal` 1.0 traits.
#[derive(Debug)]
pub enum Blocking {}

/// Marker: the board's peripherals implement the `embedded-hal-async` traits.
#[derive(Debug)]
pub enum Async {}

/// A blocking board: `embedded-hal` 1.0 [`SpiDevice`], [`OutputPin`] reset, [`InputPin`] BUSY
/// and IRQ, [`DelayNs`]. Waiting polls the pins every [`POLL_STEP_US`].
pub type BlockingBus<SPI, RST, BUSY, IRQ, D> = Board<SPI, RST, BUSY, IRQ, D, Blocking>;

/// An async board: `embedded-hal-async` [`SpiDevice`](embedded_hal_async::spi::SpiDevice),
/// [`Wait`](embedded_hal_async::digital::Wait) for BUSY and IRQ,
/// [`DelayNs`](embedded_hal_async::delay::DelayNs); reset stays a blocking [`OutputPin`].
pub type AsyncBus<SPI, RST, BUSY, IRQ, D> = Board<SPI, RST, BUSY, IRQ, D, Async>;

impl<SPI, RST, BUSY, IRQ, D, M> Board<SPI, RST, BUSY, IRQ, D, M> {
    /// Wires a radio: `irq` is DIO0 on SX127x and DIO1 on SX126x; `busy` is [`NoPin`] on
    /// SX127x.
    pub fn new(spi: SPI, reset: RST, busy: BUSY, irq: IRQ, delay: D) -> Self {
        Self {
            spi,
            reset,
            busy,
            irq,
            delay,
            mode: PhantomData,
        }
    }

    /// Gives the peripherals back: `(spi, reset, busy, irq, delay)`.
    pub fn release(self) -> (SPI, RST, BUSY, IRQ, D) {
        (self.spi, self.reset, self.busy, self.irq, self.delay)
    }
}

/// The operations of a write transaction: `head`, then `data` unless it is empty.
fn write_ops<'a>(head: &'a [u8], data: &'a [u8]) -> ([Operation<'a, u8>; 2], usize) {
    let n = if data.is_empty() { 1 } else { 2 };
    ([Operation::Write(head), Operation::Write(data)], n)
}

impl<SPI, RST, BUSY, IRQ, D> Bus for BlockingBus<SPI, RST, BUSY, IRQ, D>
where
    SPI: SpiDevice,
    RST: OutputPin,
    BUSY: InputPin,
    IRQ: InputPin,
    D: DelayNs,
{
    type SpiError = SPI::Error;

    async fn write(&mut self, head: &[u8], data: &[u8]) -> Result<(), Error<SPI::Error>> {
        let (mut ops, n) = write_ops(head, data);
        self.spi
            .transaction(ops.get_mut(..n).unwrap_or_default())
            .map_err(Error::Spi)
    }

    async fn read(&mut self, head: &[u8], out: &mut [u8]) -> Result<(), Error<SPI::Error>> {
        self.spi
            .transaction(&mut [Operation::Write(head), Operation::Read(out)])
            .map_err(Error::Spi)
    }

    async fn delay_us(&mut self, us: u32) {
        self.delay.delay_us(us);
    }

    fn set_reset(&mut self, high: bool) -> Result<(), Error<SPI::Error>> {
        self.reset.set_state(high.into()).map_err(pin_err)
    }

    async fn wait_not_busy(&mut self) -> Result<(), Error<SPI::Error>> {
        let mut waited = 0;
        while self.busy.is_high().map_err(pin_err)? {
            if waited >= BUSY_TIMEOUT_US {
                return Err(Error::Busy);
            }
            self.delay.delay_us(1);
            waited += 1;
        }
        Ok(())
    }

    fn irq_high(&mut self) -> Result<bool, Error<SPI::Error>> {
        self.irq.is_high().map_err(pin_err)
    }

    async fn wait_irq(&mut self, timeout_us: u32) -> Result<bool, Error<SPI::Error>> {
        let mut waited = 0u32;
        loop {
            if self.irq.is_high().map_err(pin_err)? {
                return Ok(true);
            }
            if waited >= timeout_us {
                return Ok(false);
            }
            let step = POLL_STEP_US.min(timeout_us - waited);
            self.delay.delay_us(step);
            waited += step;
        }
    }
}

impl<SPI, RST, BUSY, IRQ, D> Bus for AsyncBus<SPI, RST, BUSY, IRQ, D>
where
    SPI: embedded_hal_async::spi::SpiDevice,
    RST: OutputPin,
    BUSY: embedded_hal_async::digital::Wait,
    IRQ: InputPin + embedded_hal_async::digital::Wait,
    D: embedded_hal_async::delay::DelayNs,
{
    type SpiError = SPI::Error;

    async fn write(&mut self, head: &[u8], data: &[u8]) -> Result<(), Error<SPI::Error>> {
        let (mut ops, n) = write_ops(head, data);
        self.spi
            .transaction(ops.get_mut(..n).unwrap_or_default())
            .await
            .map_err(Error::Spi)
    }

    async fn read(&mut self, head: &[u8], out: &mut [u8]) -> Result<(), Error<SPI::Error>> {
        self.spi
            .transaction(&mut [Operation::Write(head), Operation::Read(out)])
            .await
            .map_err(Error::Spi)
    }

    async fn delay_us(&mut self, us: u32) {
        self.delay.delay_us(us).await;
    }

    fn set_reset(&mut self, high: bool) -> Result<(), Error<SPI::Error>> {
        self.reset.set_state(high.into()).map_err(pin_err)
    }

    async fn wait_not_busy(&mut self) -> Result<(), Error<SPI::Error>> {
        let Self { busy, delay, .. } = self;
        match select(busy.wait_for_low(), delay.delay_us(BUSY_TIMEOUT_US)).await {
            Either::First(r) => r.map_err(pin_err),
            Either::Second(()) => Err(Error::Busy),
        }
    }

    fn irq_high(&mut self) -> Result<bool, Error<SPI::Error>> {
        self.irq.is_high().map_err(pin_err)
    }

    async fn wait_irq(&mut self, timeout_us: u32) -> Result<bool, Error<SPI::Error>> {
        let Self { irq, delay, .. } = self;
        match select(irq.wait_for_high(), delay.delay_us(timeout_us)).await {
            Either::First(r) => r.map(|()| true).map_err(pin_err),
            Either::Second(()) => Ok(false),
        }
    }
}

enum Either<A, B> {
    First(A),
    Second(B),
}

/// Runs two futures, returning the output of whichever completes first (the first on a tie).
async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::First(x));
        }
        if let Poll::Ready(x) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Second(x));
        }
        Poll::Pending
    })
    .await
}

/// Runs a future that never waits on anything outside itself to completion, by polling it.
///
/// The blocking driver's futures are built on [`BlockingBus`], whose operations all complete
/// on their first poll, so the loop runs once.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
