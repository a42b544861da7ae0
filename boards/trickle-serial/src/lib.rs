//! Trickle frames over a UART.
//!
//! [`SerialLink`] (blocking `embedded-io`, polled) and [`AsyncSerialLink`]
//! (`embedded-io-async`) implement the core's [`FrameLink`](trickle_core::link::FrameLink) and
//! [`AsyncFrameLink`](trickle_core::link::AsyncFrameLink) over any UART driver that implements
//! the `embedded-io` 0.6 traits. The framing is the core's
//! [`trickle_core::wire::serial`] — COBS/R byte stuffing, `00` delimiters, an optional
//! CRC-16/X-25 — exactly what `trickle gateway --serial/--unix/--stdio` speaks
//! (docs/PROTOCOL.md, "Link framing for byte streams").
//!
//! Overhead per frame: one trailing `00`, plus the stuffing (0 or 1 byte for frames up to 254
//! bytes; 0.08–0.13 bytes on average for 21–32-byte Trickle frames), plus 2 bytes if the CRC is
//! on, plus one leading `00` on the first frame after [`SerialLink::new`] (and on every frame if
//! [`Config::leading_delimiter`] is set). At 100 bit/s every byte is 80 ms.
//!
//! Damaged input never reaches the caller and never stops the link: frames with a bad CRC,
//! too short for their CRC, or longer than `N` are dropped and counted in [`Stats`]; decoding
//! restarts at the next `00`, so the next good frame after line noise is delivered.
//!
//! ```
//! use trickle_core::link::FrameLink;
//! use trickle_serial::{Config, SerialLink};
//! # use core::convert::Infallible;
//! # #[derive(Default)] struct Loopback { bytes: [u8; 32], len: usize, pos: usize }
//! # impl embedded_io::ErrorType for Loopback { type Error = Infallible; }
//! # impl embedded_io::Write for Loopback {
//! #     fn write(&mut self, b: &[u8]) -> Result<usize, Infallible> {
//! #         let n = b.len().min(32 - self.len);
//! #         self.bytes[self.len..self.len + n].copy_from_slice(&b[..n]); self.len += n; Ok(n) }
//! #     fn flush(&mut self) -> Result<(), Infallible> { Ok(()) } }
//! # impl embedded_io::Read for Loopback {
//! #     fn read(&mut self, b: &mut [u8]) -> Result<usize, Infallible> {
//! #         let n = b.len().min(self.len - self.pos);
//! #         b[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]); self.pos += n; Ok(n) } }
//! # impl embedded_io::ReadReady for Loopback {
//! #     fn read_ready(&mut self) -> Result<bool, Infallible> { Ok(self.pos < self.len) } }
//! # let uart = Loopback::default();
//! // `uart`: the board's UART driver (here a loopback).
//! let mut link: SerialLink<_, 255> = SerialLink::new(uart, Config::default());
//! link.transmit(&[0x01, 0x60, 0x00, 0x12, 0x34])?;
//! let mut buf = [0u8; 255];
//! assert_eq!(link.receive(&mut buf)?, Some(5));
//! assert_eq!(link.receive(&mut buf)?, None); // nothing more waiting: returns at once
//! assert_eq!(link.stats().frames, 1);
//! # Ok::<(), trickle_serial::Error<Infallible>>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod asynch;
mod blocking;

pub use asynch::AsyncSerialLink;
pub use blocking::SerialLink;
pub use trickle_core::wire::serial::Crc;

use core::fmt;
use trickle_core::wire::serial::{self, Decoder, Sender};

/// Framing options of a link. Both ends must agree on [`crc`](Self::crc) (the gateway:
/// `--frame-crc`); [`leading_delimiter`](Self::leading_delimiter) is this end's choice.
///
/// `Config::default()`: no CRC (Trickle-profile frames carry a 16-byte Poly1305 tag), a leading
/// `00` only before the first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Config {
    /// The check appended to each frame: [`Crc::None`] or [`Crc::X25`] (2 bytes).
    pub crc: Crc,
    /// Send `00` before every frame, not only the first (1 byte per frame; keeps line noise
    /// picked up while the line was idle out of the next frame).
    pub leading_delimiter: bool,
}

impl Config {
    /// The default options: no CRC, leading `00` only before the first frame.
    pub const fn new() -> Self {
        Self {
            crc: Crc::None,
            leading_delimiter: false,
        }
    }

    /// These options with the check `crc`.
    pub const fn with_crc(mut self, crc: Crc) -> Self {
        self.crc = crc;
        self
    }

    /// These options with a leading `00` before every frame (`true`) or only the first.
    pub const fn with_leading_delimiter(mut self, on: bool) -> Self {
        self.leading_delimiter = on;
        self
    }

    const fn framing(&self) -> serial::Config {
        serial::Config {
            crc: self.crc,
            leading_delimiter: self.leading_delimiter,
        }
    }
}

/// Counters of a link, readable by the firmware ([`SerialLink::stats`]). They saturate at
/// `u32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// Frames delivered to the caller.
    pub frames: u32,
    /// Frames sent.
    pub sent: u32,
    /// Frames dropped: the CRC did not match.
    pub bad_crc: u32,
    /// Frames dropped: with a CRC configured, 1 or 2 bytes long (too short for CRC + payload).
    pub runt: u32,
    /// Frames dropped: longer than the link's `N`.
    pub overlong: u32,
    /// Frames dropped: longer than the buffer given to `receive` (also reported as
    /// [`Error::BufferTooSmall`]).
    pub too_big_for_buffer: u32,
}

impl Stats {
    /// All frames dropped, whatever the reason.
    pub const fn dropped(&self) -> u32 {
        self.bad_crc
            .saturating_add(self.runt)
            .saturating_add(self.overlong)
            .saturating_add(self.too_big_for_buffer)
    }
}

/// What went wrong on a serial link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The UART driver failed.
    Uart(E),
    /// The UART driver accepted no bytes (`write` returned 0): the frame was cut off.
    WriteZero,
    /// The UART reader reached its end (`read` returned 0): no more frames will come.
    EndOfStream,
    /// Caller misuse: the frame to send is longer than the link's maximum; nothing was sent.
    FrameTooLong {
        /// The link's maximum frame length (`N`).
        max: usize,
    },
    /// Caller misuse: an empty frame cannot be sent.
    EmptyFrame,
    /// The received frame is longer than the buffer given to `receive`; it was dropped.
    BufferTooSmall {
        /// The frame's length.
        required: usize,
    },
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Uart(e) => write!(f, "UART error: {e:?}"),
            Error::WriteZero => f.write_str("UART accepted no bytes: frame cut off"),
            Error::EndOfStream => f.write_str("UART stream ended"),
            Error::FrameTooLong { max } => {
                write!(f, "frame longer than the link maximum of {max} bytes")
            }
            Error::EmptyFrame => f.write_str("an empty frame cannot be sent"),
            Error::BufferTooSmall { required } => {
                write!(
                    f,
                    "received frame of {required} bytes dropped: buffer too small"
                )
            }
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// Size of the staging buffers between the framing and the UART driver.
const CHUNK: usize = 32;

/// The state both links share: encoder state, decoder, counters, and bytes read from the UART
/// but not yet decoded.
#[derive(Debug, Clone)]
struct Framer<const N: usize> {
    sender: Sender,
    decoder: Decoder<N>,
    stats: Stats,
    rx: [u8; CHUNK],
    rx_pos: usize,
    rx_len: usize,
}

/// What feeding the buffered bytes produced.
enum Fed {
    /// A frame was copied into the caller's buffer: its length.
    Frame(usize),
    /// A frame did not fit the caller's buffer.
    TooBig(usize),
    /// All buffered bytes were used without completing a frame.
    NeedMore,
}

impl<const N: usize> Framer<N> {
    const fn new(config: &Config) -> Self {
        Self {
            sender: Sender::new(config.framing()),
            decoder: Decoder::new(config.crc),
            stats: Stats {
                frames: 0,
                sent: 0,
                bad_crc: 0,
                runt: 0,
                overlong: 0,
                too_big_for_buffer: 0,
            },
            rx: [0; CHUNK],
            rx_pos: 0,
            rx_len: 0,
        }
    }

    fn check_tx<E>(&self, frame: &[u8]) -> Result<(), Error<E>> {
        if frame.len() > N {
            Err(Error::FrameTooLong { max: N })
        } else if frame.is_empty() {
            Err(Error::EmptyFrame)
        } else {
            Ok(())
        }
    }

    /// Decodes buffered bytes until a frame completes or the buffer is used up.
    fn feed(&mut self, buf: &mut [u8]) -> Fed {
        while self.rx_pos < self.rx_len {
            let byte = self.rx.get(self.rx_pos).copied().unwrap_or(0);
            self.rx_pos += 1;
            match self.decoder.push(byte) {
                None => {}
                Some(Ok(frame)) => {
                    let len = frame.len();
                    return match buf.get_mut(..len) {
                        Some(out) => {
                            out.copy_from_slice(frame);
                            bump(&mut self.stats.frames);
                            Fed::Frame(len)
                        }
                        None => {
                            bump(&mut self.stats.too_big_for_buffer);
                            Fed::TooBig(len)
                        }
                    };
                }
                Some(Err(serial::Error::BadCrc)) => bump(&mut self.stats.bad_crc),
                Some(Err(serial::Error::Runt)) => bump(&mut self.stats.runt),
                // Overlong; the decoder reports no other error.
                Some(Err(_)) => bump(&mut self.stats.overlong),
            }
        }
        Fed::NeedMore
    }

    /// The staging buffer to read UART bytes into (only called once it is used up).
    fn rx_space(&mut self) -> &mut [u8] {
        self.rx_pos = 0;
        self.rx_len = 0;
        &mut self.rx
    }

    fn received(&mut self, n: usize) {
        self.rx_pos = 0;
        self.rx_len = n.min(CHUNK);
    }
}

fn bump(counter: &mut u32) {
    *counter = counter.saturating_add(1);
}

/// Fills `chunk` from `bytes`; returns how many were written (0 once `bytes` is exhausted).
fn fill(chunk: &mut [u8; CHUNK], bytes: &mut serial::Encoded<'_>) -> usize {
    let mut n = 0;
    for (slot, b) in chunk.iter_mut().zip(bytes) {
        *slot = b;
        n += 1;
    }
    n
}
