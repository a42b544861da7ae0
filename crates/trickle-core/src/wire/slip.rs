//! SLIP (RFC 1055) framing — superseded on Trickle links by [`super::serial`] (COBS/R), which
//! the gateway and `trickle-serial` speak; this module goes once nothing uses it.
//!
//! Packet links (UDP, LoRa) give each frame its length; a byte stream does not. Each frame is
//! sent as `END`, the frame with `END` replaced by `ESC ESC_END` and `ESC` by `ESC ESC_ESC`,
//! then `END` (the leading `END` flushes line noise received before the frame, as RFC 1055
//! recommends). No CRC is added: the Noise tag already rejects a corrupted frame.
//!
//! - [`encode`] / [`encoded_len`]: one frame into a caller buffer.
//! - [`Decoder`]: a streaming decoder fed byte by byte with a fixed `N`-byte frame buffer. Empty
//!   frames (back-to-back `END`s) are skipped; an invalid escape or a frame longer than `N` is
//!   reported once and everything up to the next `END` is discarded, so the decoder
//!   resynchronises on the next frame. No input makes it panic.

use core::fmt;

/// Frame delimiter.
pub const END: u8 = 0xC0;
/// Escape byte.
pub const ESC: u8 = 0xDB;
/// `ESC ESC_END` stands for a data byte `END`.
pub const ESC_END: u8 = 0xDC;
/// `ESC ESC_ESC` stands for a data byte `ESC`.
pub const ESC_ESC: u8 = 0xDD;

/// A SLIP encoding or decoding failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Malformed input: `ESC` followed by a byte other than `ESC_END`/`ESC_ESC` (the byte).
    BadEscape(u8),
    /// Malformed input: a frame longer than the decoder's capacity.
    Overlong {
        /// The decoder's frame capacity.
        capacity: usize,
    },
    /// The output buffer is too small; `required` bytes are needed.
    BufferTooSmall {
        /// Bytes needed for the encoded frame.
        required: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadEscape(b) => write!(f, "SLIP: invalid escape sequence DB {b:02X}"),
            Error::Overlong { capacity } => {
                write!(f, "SLIP: frame longer than {capacity} bytes dropped")
            }
            Error::BufferTooSmall { required } => {
                write!(f, "SLIP: output buffer too small ({required} bytes needed)")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Bytes [`encode`] writes for `frame`: both `END`s plus one extra byte per `END`/`ESC` in it.
pub fn encoded_len(frame: &[u8]) -> usize {
    2 + frame.len() + frame.iter().filter(|b| **b == END || **b == ESC).count()
}

/// Writes `END frame' END` to `out` (frame' = `frame` escaped) and returns the length written.
pub fn encode(frame: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let required = encoded_len(frame);
    let Some(out) = out.get_mut(..required) else {
        return Err(Error::BufferTooSmall { required });
    };
    let mut w = out.iter_mut();
    let mut put = |b: u8| {
        if let Some(slot) = w.next() {
            *slot = b;
        }
    };
    put(END);
    for &b in frame {
        match b {
            END => {
                put(ESC);
                put(ESC_END);
            }
            ESC => {
                put(ESC);
                put(ESC_ESC);
            }
            other => put(other),
        }
    }
    put(END);
    Ok(required)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting data bytes.
    Data,
    /// The previous byte was `ESC`.
    Escape,
    /// An error was reported: drop everything up to the next `END`.
    Discard,
}

/// Streaming SLIP decoder with a fixed `N`-byte frame buffer.
#[derive(Debug, Clone)]
pub struct Decoder<const N: usize> {
    buf: [u8; N],
    len: usize,
    state: State,
    /// A frame was handed out: start a new one on the next byte.
    emitted: bool,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Decoder<N> {
    /// An empty decoder.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            state: State::Data,
            emitted: false,
        }
    }

    /// Bytes of the frame being collected.
    pub fn pending(&self) -> usize {
        if self.emitted { 0 } else { self.len }
    }

    /// Forgets any partial frame.
    pub fn reset(&mut self) {
        self.len = 0;
        self.state = State::Data;
        self.emitted = false;
    }

    /// Feeds one byte. Returns `Some(Ok(frame))` when an `END` completes a non-empty frame,
    /// `Some(Err(_))` once for a malformed frame (then discards up to the next `END`), `None`
    /// otherwise. The returned frame stays valid until the next call.
    pub fn push(&mut self, byte: u8) -> Option<Result<&[u8], Error>> {
        if self.emitted {
            self.emitted = false;
            self.len = 0;
        }
        match (self.state, byte) {
            (State::Discard, END) => {
                self.reset();
                None
            }
            (State::Discard, _) => None,
            (State::Escape, END) => {
                self.reset();
                Some(Err(Error::BadEscape(END)))
            }
            (State::Data, END) => {
                if self.len == 0 {
                    return None;
                }
                self.emitted = true;
                Some(Ok(self.buf.get(..self.len).unwrap_or_default()))
            }
            (State::Data, ESC) => {
                self.state = State::Escape;
                None
            }
            (State::Escape, ESC_END) => self.store(END),
            (State::Escape, ESC_ESC) => self.store(ESC),
            (State::Escape, other) => {
                self.state = State::Discard;
                Some(Err(Error::BadEscape(other)))
            }
            (State::Data, other) => self.store(other),
        }
    }

    fn store(&mut self, b: u8) -> Option<Result<&[u8], Error>> {
        self.state = State::Data;
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
                None
            }
            None => {
                self.state = State::Discard;
                Some(Err(Error::Overlong { capacity: N }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn decode_all<const N: usize>(
        dec: &mut Decoder<N>,
        input: &[u8],
    ) -> Vec<Result<Vec<u8>, Error>> {
        let mut out = Vec::new();
        for &b in input {
            if let Some(r) = dec.push(b) {
                out.push(r.map(<[u8]>::to_vec));
            }
        }
        out
    }

    /// RFC 1055 "SEND_PACKET": END, data with END → ESC ESC_END and ESC → ESC ESC_ESC, END.
    #[test]
    fn rfc1055_escapes_byte_exact() {
        let frame = [0x01, 0xC0, 0x02, 0xDB, 0x03];
        let mut out = [0u8; 16];
        let n = encode(&frame, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &[0xC0, 0x01, 0xDB, 0xDC, 0x02, 0xDB, 0xDD, 0x03, 0xC0]
        );
        assert_eq!(encoded_len(&frame), 9);
        let mut dec = Decoder::<16>::new();
        assert_eq!(decode_all(&mut dec, &out[..n]), [Ok(frame.to_vec())]);
    }

    #[test]
    fn plain_and_empty_frames() {
        let mut out = [0u8; 4];
        assert_eq!(encode(&[], &mut out), Ok(2));
        assert_eq!(out[..2], [0xC0, 0xC0]);
        assert_eq!(encode(&[0x41, 0x42], &mut out), Ok(4));
        assert_eq!(out, [0xC0, 0x41, 0x42, 0xC0]);
        assert_eq!(
            encode(&[0xC0, 0xC0], &mut out),
            Err(Error::BufferTooSmall { required: 6 })
        );
        // Empty frames (END END) are skipped.
        let mut dec = Decoder::<8>::new();
        assert_eq!(decode_all(&mut dec, &[0xC0, 0xC0, 0xC0]), []);
    }

    #[test]
    fn resynchronises_after_noise_and_bad_escape() {
        let mut dec = Decoder::<8>::new();
        // Bad escape, then junk, then a good frame.
        let input = [0x11, 0xDB, 0x99, 0x22, 0x33, 0xC0, 0x44, 0x55, 0xC0];
        assert_eq!(
            decode_all(&mut dec, &input),
            [Err(Error::BadEscape(0x99)), Ok(vec![0x44, 0x55])]
        );
        // ESC END: bad escape ending the frame; the next frame decodes.
        assert_eq!(
            decode_all(&mut dec, &[0x01, 0xDB, 0xC0, 0x07, 0xC0]),
            [Err(Error::BadEscape(0xC0)), Ok(vec![0x07])]
        );
    }

    #[test]
    fn overlong_frame_rejected_once_then_resync() {
        let mut dec = Decoder::<4>::new();
        let mut input = vec![0xC0];
        input.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
        input.push(0xC0);
        input.extend_from_slice(&[9, 0xC0]);
        assert_eq!(
            decode_all(&mut dec, &input),
            [Err(Error::Overlong { capacity: 4 }), Ok(vec![9])]
        );
        // Exactly N bytes fit.
        assert_eq!(
            decode_all(&mut dec, &[1, 2, 3, 4, 0xC0]),
            [Ok(vec![1, 2, 3, 4])]
        );
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(frames in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 1..64), 0..6)) {
            let mut stream = Vec::new();
            for f in &frames {
                let mut out = vec![0u8; encoded_len(f)];
                let n = encode(f, &mut out).unwrap();
                prop_assert_eq!(n, out.len());
                prop_assert!(!out[1..n - 1].contains(&END));
                stream.extend_from_slice(&out);
            }
            let mut dec = Decoder::<64>::new();
            let got: Vec<Vec<u8>> = decode_all(&mut dec, &stream)
                .into_iter().map(Result::unwrap).collect();
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn garbage_never_panics_and_recovers(noise in proptest::collection::vec(any::<u8>(), 0..200),
                                             frame in proptest::collection::vec(any::<u8>(), 1..32)) {
            let mut dec = Decoder::<32>::new();
            let _ = decode_all(&mut dec, &noise);
            let mut out = vec![0u8; encoded_len(&frame)];
            encode(&frame, &mut out).unwrap();
            // The leading END ends whatever the noise left; the frame itself comes out intact.
            let got = decode_all(&mut dec, &out);
            prop_assert_eq!(got.last().cloned(), Some(Ok(frame)));
        }
    }
}
