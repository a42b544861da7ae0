//! The async link over `embedded-io-async`.

use embedded_io_async::{Read, Write};
use trickle_core::link::AsyncFrameLink;

use trickle_core::wire::serial;

use crate::{CHUNK, Config, Error, Fed, Framer, Stats, fill};

/// An [`AsyncFrameLink`] over a UART driver implementing `embedded_io_async::{Read, Write}`
/// (e.g. Embassy's buffered UARTs).
///
/// Same framing, counters and buffers as [`SerialLink`](crate::SerialLink).
/// [`receive`](AsyncFrameLink::receive) waits until a whole valid frame has arrived; it is
/// cancel-safe between UART reads (bytes already read stay buffered in the link).
#[derive(Debug)]
pub struct AsyncSerialLink<U, const N: usize> {
    uart: U,
    framer: Framer<N>,
}

impl<U, const N: usize> AsyncSerialLink<U, N> {
    /// A link over `uart`. The first frame sent gets a leading `00`.
    pub const fn new(uart: U, config: Config) -> Self {
        Self {
            uart,
            framer: Framer::new(&config),
        }
    }

    /// The link's counters.
    pub const fn stats(&self) -> Stats {
        self.framer.stats
    }

    /// The UART driver.
    pub fn uart_mut(&mut self) -> &mut U {
        &mut self.uart
    }

    /// Gives the UART driver back.
    pub fn release(self) -> U {
        self.uart
    }
}

impl<U: Read + Write, const N: usize> AsyncFrameLink for AsyncSerialLink<U, N> {
    type Error = Error<U::Error>;

    fn max_frame_len(&self) -> usize {
        N
    }

    async fn transmit(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        self.framer.check_tx(frame)?;
        let mut bytes = self
            .framer
            .sender
            .frame(frame)
            .map_err(|_| Error::EmptyFrame)?;
        // A failed write leaves part of a frame on the line: the next frame gets a leading
        // delimiter so the receiver drops only the cut-off one.
        let r = Self::send(&mut self.uart, &mut bytes).await;
        if r.is_err() {
            self.framer.sender.interrupted();
        } else {
            crate::bump(&mut self.framer.stats.sent);
        }
        r
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            match self.framer.feed(buf) {
                Fed::Frame(n) => return Ok(n),
                Fed::TooBig(required) => return Err(Error::BufferTooSmall { required }),
                Fed::NeedMore => {}
            }
            let n = self
                .uart
                .read(self.framer.rx_space())
                .await
                .map_err(Error::Uart)?;
            if n == 0 {
                return Err(Error::EndOfStream);
            }
            self.framer.received(n);
        }
    }
}

impl<U: Write, const N: usize> AsyncSerialLink<U, N> {
    /// Writes all of `bytes` to `uart` and flushes.
    async fn send(uart: &mut U, bytes: &mut serial::Encoded<'_>) -> Result<(), Error<U::Error>> {
        let mut chunk = [0u8; CHUNK];
        loop {
            let n = fill(&mut chunk, bytes);
            if n == 0 {
                break;
            }
            let mut rest = chunk.get(..n).unwrap_or_default();
            while !rest.is_empty() {
                match uart.write(rest).await.map_err(Error::Uart)? {
                    0 => return Err(Error::WriteZero),
                    w => rest = rest.get(w..).unwrap_or_default(),
                }
            }
        }
        uart.flush().await.map_err(Error::Uart)?;
        Ok(())
    }
}
