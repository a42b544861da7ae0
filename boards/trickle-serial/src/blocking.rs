//! The blocking, polled link over `embedded-io`.

use embedded_io::{Read, ReadReady, Write};
use trickle_core::link::FrameLink;

use trickle_core::wire::serial;

use crate::{CHUNK, Config, Error, Fed, Framer, Stats, fill};

/// A [`FrameLink`] over a UART driver implementing `embedded_io::{Read, Write, ReadReady}`.
///
/// `N` is the largest frame carried (255 for Trickle); the link holds an `N`-byte receive
/// buffer plus about 70 bytes of state. [`receive`](FrameLink::receive) never blocks: it reads
/// only what [`ReadReady`] reports as waiting. [`transmit`](FrameLink::transmit) blocks until
/// the UART driver took the whole encoded frame and flushed it.
#[derive(Debug)]
pub struct SerialLink<U, const N: usize> {
    uart: U,
    framer: Framer<N>,
}

impl<U, const N: usize> SerialLink<U, N> {
    /// A link over `uart`. The first frame sent gets a leading `00`, which ends whatever a
    /// reset of this side may have left half-sent on the line.
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

    /// The UART driver (e.g. to change its baud rate).
    pub fn uart_mut(&mut self) -> &mut U {
        &mut self.uart
    }

    /// Gives the UART driver back.
    pub fn release(self) -> U {
        self.uart
    }
}

impl<U: Read + Write + ReadReady, const N: usize> FrameLink for SerialLink<U, N> {
    type Error = Error<U::Error>;

    fn max_frame_len(&self) -> usize {
        N
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        self.framer.check_tx(frame)?;
        let mut bytes = self
            .framer
            .sender
            .frame(frame)
            .map_err(|_| Error::EmptyFrame)?;
        // A failed write leaves part of a frame on the line: the next frame gets a leading
        // delimiter so the receiver drops only the cut-off one.
        let r = Self::send(&mut self.uart, &mut bytes);
        if r.is_err() {
            self.framer.sender.interrupted();
        } else {
            crate::bump(&mut self.framer.stats.sent);
        }
        r
    }

    fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        loop {
            match self.framer.feed(buf) {
                Fed::Frame(n) => return Ok(Some(n)),
                Fed::TooBig(required) => return Err(Error::BufferTooSmall { required }),
                Fed::NeedMore => {}
            }
            if !self.uart.read_ready().map_err(Error::Uart)? {
                return Ok(None);
            }
            let n = self
                .uart
                .read(self.framer.rx_space())
                .map_err(Error::Uart)?;
            if n == 0 {
                return Err(Error::EndOfStream);
            }
            self.framer.received(n);
        }
    }
}

impl<U: Write, const N: usize> SerialLink<U, N> {
    /// Writes all of `bytes` to `uart` and flushes.
    fn send(uart: &mut U, bytes: &mut serial::Encoded<'_>) -> Result<(), Error<U::Error>> {
        let mut chunk = [0u8; CHUNK];
        loop {
            let n = fill(&mut chunk, bytes);
            if n == 0 {
                break;
            }
            let mut rest = chunk.get(..n).unwrap_or_default();
            while !rest.is_empty() {
                match uart.write(rest).map_err(Error::Uart)? {
                    0 => return Err(Error::WriteZero),
                    w => rest = rest.get(w..).unwrap_or_default(),
                }
            }
        }
        uart.flush().map_err(Error::Uart)?;
        Ok(())
    }
}
