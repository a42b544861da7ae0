//! Framing of pipe frames on byte-stream links (serial UART, Unix socket, stdin/stdout):
//! COBS/R byte stuffing, `00` delimiters, an optional CRC-16/X-25.
//!
//! Packet links (UDP, LoRa) give each frame its length; a byte stream does not. Each frame is
//! sent as
//!
//! ```text
//! [00]  COBS/R( frame ‖ [FCS-16, low byte first] )  00
//! ```
//!
//! - **COBS/R** (Consistent Overhead Byte Stuffing — Reduced, Craig McQueen's variant of
//!   Cheshire & Baker's COBS): the stuffed bytes contain no `00`, so `00` delimits frames. COBS
//!   adds exactly one byte to any frame of up to 254 bytes; COBS/R saves that byte whenever the
//!   frame's last byte is at least the length code of the final block, which for ciphertext is
//!   most of the time. Measured (see `tests::overhead_table` and docs/PROTOCOL.md): 0.08–0.13
//!   bytes mean stuffing overhead on 21–32-byte frames, against 0.16–0.25 for SLIP and exactly
//!   1 for COBS; worst case `1 + n/254` bytes, against `n` for SLIP.
//! - **CRC** ([`Crc::X25`], optional per link, off by default): the HDLC/PPP FCS-16 of RFC 1662
//!   (CRC-16/X-25: polynomial `0x1021` reflected, init `FFFF`, final XOR `FFFF`, check value
//!   `906E` for ASCII `123456789`), appended before stuffing, least significant byte first.
//!   Trickle-profile frames carry a 16-byte Poly1305 tag, which already rejects a corrupted
//!   frame; the CRC is for payloads without one.
//! - **Delimiters**: `00` after every frame; `00` before a frame too when
//!   [`Config::leading_delimiter`] is set (or for the first frame an [`Encoder`] user sends
//!   after starting — see [`Sender`]). A receiver accepts both forms.
//!
//! [`encode`], [`encoded_len`], [`max_encoded_len`] and [`Encoded`] (a byte iterator, so a UART
//! driver needs no second buffer) produce frames; [`Decoder`] is a streaming decoder with a fixed
//! `N`-byte frame buffer (the CRC is held outside it, so `N` is the payload capacity with or
//! without CRC). Empty frames (`00 00`, or a payload of zero bytes) are skipped silently. An
//! overlong frame, a frame too short to carry the CRC, or a CRC mismatch is reported once;
//! decoding restarts at the next `00`, so the frame after any line noise is received intact.
//! No input makes it panic.

use core::fmt;

/// The frame delimiter.
pub const DELIMITER: u8 = 0x00;

/// Longest run of non-zero bytes one COBS block carries (code `FF`).
const MAX_BLOCK: usize = 254;

/// The integrity check appended to each frame before stuffing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Crc {
    /// No check (Trickle-profile frames carry their own 16-byte Poly1305 tag).
    #[default]
    None,
    /// CRC-16/X-25, the FCS-16 of RFC 1662 (HDLC, PPP): 2 bytes, least significant first.
    X25,
}

impl Crc {
    /// Bytes the check adds to a frame.
    pub const fn len(self) -> usize {
        match self {
            Crc::None => 0,
            Crc::X25 => 2,
        }
    }

    /// Whether the check adds no bytes (`Crc::None`).
    pub const fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// Framing options of one byte-stream link. Both ends must use the same [`crc`](Self::crc);
/// [`leading_delimiter`](Self::leading_delimiter) is the sender's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// The check appended to each frame (default: none).
    pub crc: Crc,
    /// Send `00` before every frame as well as after it (default: off). It costs one byte per
    /// frame and keeps line noise received while the line was idle out of the next frame; on
    /// a clean line the trailing `00` of the previous frame already delimits it.
    pub leading_delimiter: bool,
}

/// A framing failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Malformed input: a frame longer than the decoder's capacity (dropped).
    Overlong {
        /// The decoder's frame capacity in bytes (without the CRC).
        capacity: usize,
    },
    /// Malformed input: the frame's CRC does not match its contents (dropped).
    BadCrc,
    /// Malformed input: with a CRC configured, a frame of 1 or 2 bytes, too short to carry the
    /// CRC and any payload (dropped).
    Runt,
    /// Caller misuse: an empty frame cannot be sent (receivers skip empty frames).
    Empty,
    /// The output buffer is too small; `required` bytes are needed.
    BufferTooSmall {
        /// Bytes needed for the encoded frame.
        required: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Overlong { capacity } => {
                write!(f, "serial frame longer than {capacity} bytes dropped")
            }
            Error::BadCrc => f.write_str("serial frame with a bad CRC dropped"),
            Error::Runt => f.write_str("serial frame too short for its CRC dropped"),
            Error::Empty => f.write_str("an empty frame cannot be sent"),
            Error::BufferTooSmall { required } => {
                write!(f, "output buffer too small ({required} bytes needed)")
            }
        }
    }
}

impl core::error::Error for Error {}

/// CRC-16/X-25 (RFC 1662 FCS-16) register update for one byte; start from `0xFFFF`, finish
/// with `!crc`.
const fn crc_x25_update(mut crc: u16, byte: u8) -> u16 {
    crc ^= byte as u16;
    let mut bit = 0;
    while bit < 8 {
        crc = if crc & 1 != 0 {
            (crc >> 1) ^ 0x8408
        } else {
            crc >> 1
        };
        bit += 1;
    }
    crc
}

/// CRC-16/X-25 of `data` (RFC 1662 FCS-16): `crc16_x25(b"123456789") == 0x906E`.
pub fn crc16_x25(data: &[u8]) -> u16 {
    !data.iter().fold(0xFFFF, |c, &b| crc_x25_update(c, b))
}

/// The bytes one frame is stuffed from: the frame, then the CRC (low byte first) if any.
#[derive(Debug, Clone, Copy)]
struct Payload<'a> {
    frame: &'a [u8],
    crc: [u8; 2],
    crc_len: usize,
}

impl<'a> Payload<'a> {
    fn new(frame: &'a [u8], crc: Crc) -> Self {
        let (crc, crc_len) = match crc {
            Crc::None => ([0; 2], 0),
            Crc::X25 => (crc16_x25(frame).to_le_bytes(), 2),
        };
        Self {
            frame,
            crc,
            crc_len,
        }
    }

    fn len(&self) -> usize {
        self.frame.len() + self.crc_len
    }

    fn at(&self, i: usize) -> u8 {
        match self.frame.get(i) {
            Some(&b) => b,
            None => self
                .crc
                .get(i.wrapping_sub(self.frame.len()))
                .copied()
                .unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Lead,
    Code,
    Data,
    Trail,
    Done,
}

/// The encoded bytes of one frame, delimiters included, as an iterator (no buffer needed).
///
/// Made by [`Encoded::new`]; [`encode`] collects it into a slice.
#[derive(Debug, Clone)]
pub struct Encoded<'a> {
    payload: Payload<'a>,
    phase: Phase,
    reduced: bool,
    /// Next payload index to output.
    pos: usize,
    /// End (exclusive) of the data bytes of the current block still to output.
    data_end: usize,
    /// Where the next block starts.
    next: usize,
    /// The block just started is the last one.
    last: bool,
}

impl<'a> Encoded<'a> {
    /// The encoding of `frame` under `config`, with a leading `00` if `lead` (in addition to
    /// [`Config::leading_delimiter`]). Fails with [`Error::Empty`] for an empty frame.
    pub fn new(frame: &'a [u8], config: &Config, lead: bool) -> Result<Self, Error> {
        if frame.is_empty() {
            return Err(Error::Empty);
        }
        Ok(Self::with_mode(
            frame,
            config.crc,
            lead || config.leading_delimiter,
            true,
        ))
    }

    /// `reduced = false` gives plain COBS (used to test the shared block logic against the
    /// published COBS examples, and to measure it).
    fn with_mode(frame: &'a [u8], crc: Crc, lead: bool, reduced: bool) -> Self {
        Self {
            payload: Payload::new(frame, crc),
            phase: if lead { Phase::Lead } else { Phase::Code },
            reduced,
            pos: 0,
            data_end: 0,
            next: 0,
            last: false,
        }
    }

    /// Starts the block at `self.next`; returns its code byte.
    fn start_block(&mut self) -> u8 {
        let p = &self.payload;
        let start = self.next;
        let len = p.len();
        let mut end = start;
        while end < len && end - start < MAX_BLOCK && p.at(end) != 0 {
            end += 1;
        }
        let run = end - start;
        // `run` ≤ 254, so the code fits in a byte.
        let code = u8::try_from(run + 1).unwrap_or(u8::MAX);
        self.pos = start;
        self.data_end = end;
        if end == len {
            // Ends at the end of the payload: the final block (no implied zero after it).
            self.last = true;
            if self.reduced && run > 0 {
                let final_byte = p.at(end - 1);
                if final_byte >= code {
                    // COBS/R: the final byte takes the place of the code.
                    self.data_end = end - 1;
                    return final_byte;
                }
            }
            code
        } else if run == MAX_BLOCK {
            // A full block: no zero consumed, the next block starts right here.
            self.next = end;
            code
        } else {
            // Ended by a zero, which the code implies; the next block follows it (possibly an
            // empty final block if the zero was the last byte).
            self.next = end + 1;
            code
        }
    }
}

impl Iterator for Encoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        loop {
            match self.phase {
                Phase::Lead => {
                    self.phase = Phase::Code;
                    return Some(DELIMITER);
                }
                Phase::Code => {
                    let code = self.start_block();
                    self.phase = Phase::Data;
                    return Some(code);
                }
                Phase::Data => {
                    if self.pos < self.data_end {
                        let b = self.payload.at(self.pos);
                        self.pos += 1;
                        return Some(b);
                    }
                    self.phase = if self.last { Phase::Trail } else { Phase::Code };
                }
                Phase::Trail => {
                    self.phase = Phase::Done;
                    return Some(DELIMITER);
                }
                Phase::Done => return None,
            }
        }
    }
}

/// Exact number of bytes [`encode`] writes for `frame` (delimiters included).
pub fn encoded_len(frame: &[u8], config: &Config, lead: bool) -> Result<usize, Error> {
    Ok(Encoded::new(frame, config, lead)?.count())
}

/// Upper bound of [`encoded_len`] for any frame of `frame_len` bytes, with a leading `00`:
/// with `n = frame_len + crc`, `n + 1 + (n - 1) / 254 + 2` (stuffing: one code byte per 254
/// data bytes begun; two delimiters). For airtime planning and buffer sizes.
pub const fn max_encoded_len(frame_len: usize, crc: Crc) -> usize {
    let n = frame_len + crc.len();
    n + 1 + n.saturating_sub(1) / MAX_BLOCK + 2
}

/// Writes the encoding of `frame` to `out`, with a leading `00` if `lead` or
/// [`Config::leading_delimiter`]; returns the length written.
pub fn encode(frame: &[u8], config: &Config, lead: bool, out: &mut [u8]) -> Result<usize, Error> {
    let enc = Encoded::new(frame, config, lead)?;
    let required = enc.clone().count();
    let Some(out) = out.get_mut(..required) else {
        return Err(Error::BufferTooSmall { required });
    };
    for (slot, b) in out.iter_mut().zip(enc) {
        *slot = b;
    }
    Ok(required)
}

/// Tracks whether a sender still owes the leading `00` of its first frame.
///
/// The first frame a sender puts on a stream after starting always gets a leading `00`: if the
/// sender was reset in the middle of a frame, that frame's remains end there instead of
/// spoiling the new one. Later frames get one only if [`Config::leading_delimiter`] is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sender {
    config: Config,
    started: bool,
}

impl Sender {
    /// A sender that has sent nothing yet.
    pub const fn new(config: Config) -> Self {
        Self {
            config,
            started: false,
        }
    }

    /// The framing options.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Call when sending a frame failed part way: the next frame gets a leading `00` so that
    /// the cut-off frame ends there instead of spoiling it.
    pub fn interrupted(&mut self) {
        self.started = false;
    }

    /// The encoding of the next frame. Marks the first frame as sent.
    pub fn frame<'a>(&mut self, frame: &'a [u8]) -> Result<Encoded<'a>, Error> {
        let enc = Encoded::new(frame, &self.config, !self.started)?;
        self.started = true;
        Ok(enc)
    }
}

/// Streaming decoder with a fixed `N`-byte frame buffer (the payload capacity; a CRC is held
/// separately).
#[derive(Debug, Clone)]
pub struct Decoder<const N: usize> {
    buf: [u8; N],
    len: usize,
    crc: Crc,
    /// The last up to 2 decoded bytes, held back because they may be the CRC.
    held: [u8; 2],
    held_len: usize,
    /// Running CRC register over the bytes committed to `buf`.
    reg: u16,
    /// Code of the current block (0: no block started since the last delimiter).
    code: u8,
    /// Data bytes of the current block still to come.
    left: u8,
    /// An error was reported: ignore everything up to the next delimiter.
    discard: bool,
    /// A frame was handed out: start a new one on the next byte.
    emitted: bool,
}

impl<const N: usize> Decoder<N> {
    /// An empty decoder for links with the check `crc`.
    pub const fn new(crc: Crc) -> Self {
        Self {
            buf: [0; N],
            len: 0,
            crc,
            held: [0; 2],
            held_len: 0,
            reg: 0xFFFF,
            code: 0,
            left: 0,
            discard: false,
            emitted: false,
        }
    }

    /// The check this decoder expects.
    pub const fn crc(&self) -> Crc {
        self.crc
    }

    /// Forgets any partial frame.
    pub fn reset(&mut self) {
        self.len = 0;
        self.held_len = 0;
        self.reg = 0xFFFF;
        self.code = 0;
        self.left = 0;
        self.discard = false;
        self.emitted = false;
    }

    /// Feeds one byte. Returns `Some(Ok(frame))` when a delimiter completes a non-empty valid
    /// frame, `Some(Err(_))` once for a frame that is dropped (then everything up to the next
    /// delimiter is ignored), `None` otherwise. The returned frame stays valid until the next
    /// call.
    pub fn push(&mut self, byte: u8) -> Option<Result<&[u8], Error>> {
        if self.emitted {
            self.reset();
        }
        if byte == DELIMITER {
            return self.end_of_frame();
        }
        if self.discard {
            return None;
        }
        let r = if self.code == 0 || self.left == 0 {
            // A code byte. A finished block shorter than 254 data bytes implies a zero.
            let zero = self.code != 0 && self.code != 0xFF;
            self.code = byte;
            self.left = byte - 1;
            if zero { self.decoded(0) } else { Ok(()) }
        } else {
            self.left -= 1;
            self.decoded(byte)
        };
        match r {
            Ok(()) => None,
            Err(e) => {
                self.discard = true;
                Some(Err(e))
            }
        }
    }

    fn end_of_frame(&mut self) -> Option<Result<&[u8], Error>> {
        if self.discard || self.code == 0 {
            // The error was reported already, or an empty frame: just start over.
            self.reset();
            return None;
        }
        if self.left > 0 {
            // COBS/R: a final block cut short by the delimiter had its last byte moved into the
            // code position.
            if let Err(e) = self.decoded(self.code) {
                self.reset();
                return Some(Err(e));
            }
        }
        let r = match self.crc {
            Crc::None if self.len == 0 => None,
            Crc::None => Some(Ok(())),
            Crc::X25 if self.held_len < 2 || self.len == 0 => Some(Err(Error::Runt)),
            Crc::X25 if !self.reg == u16::from_le_bytes(self.held) => Some(Ok(())),
            Crc::X25 => Some(Err(Error::BadCrc)),
        };
        match r {
            Some(Ok(())) => {
                self.emitted = true;
                Some(Ok(self.buf.get(..self.len).unwrap_or_default()))
            }
            Some(Err(e)) => {
                self.reset();
                Some(Err(e))
            }
            None => {
                self.reset();
                None
            }
        }
    }

    /// One decoded byte: held back if it may be part of the CRC, else stored.
    fn decoded(&mut self, b: u8) -> Result<(), Error> {
        let b = match (self.crc, self.held_len) {
            (Crc::None, _) => b,
            (_, 0 | 1) => {
                if let Some(slot) = self.held.get_mut(self.held_len) {
                    *slot = b;
                }
                self.held_len += 1;
                return Ok(());
            }
            _ => {
                let [first, second] = self.held;
                self.held = [second, b];
                first
            }
        };
        let Some(slot) = self.buf.get_mut(self.len) else {
            return Err(Error::Overlong { capacity: N });
        };
        *slot = b;
        self.len += 1;
        self.reg = crc_x25_update(self.reg, b);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
