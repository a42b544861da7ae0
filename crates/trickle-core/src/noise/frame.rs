//! The Noise pipe frame: a connection ID byte, the CoAP fixed header and token in clear, then
//! the encrypted rest of the CoAP message and its tag (or a Noise handshake message).
//!
//! ```text
//!  0        1        2        3        4        5 ...         5+TKL ...           len-16 .. len
//! +--------+--------+--------+--------+--------+-------------+-------------------+-------------+
//! |  CID   |Ver|T|TKL|  Code  |   Message ID    | Token (TKL) | encrypted options | tag (16)    |
//! |        |        |        |  (big-endian)   |  (clear)    | [+ 0xFF + payload]|             |
//! +--------+--------+--------+--------+--------+-------------+-------------------+-------------+
//!  `--------------------- associated data --------------------'
//! ```
//!
//! The same view serves handshake frames: Code class 7 marks them and the bytes after the
//! header are a Noise handshake message (the clear token is then always empty, TKL = 0).
//! The frame has no length field: the link delivers its length.
//!
//! After [`Frame::check_len`] succeeds no accessor panics.

use core::fmt;

/// Byte ranges of the frame.
mod field {
    use core::ops::Range;
    pub const CID: usize = 0;
    pub const VER_T_TKL: usize = 1;
    pub const CODE: usize = 2;
    pub const MID: Range<usize> = 3..5;
    pub const TOKEN: usize = 5;
    /// The CoAP fixed header inside the frame.
    pub const HEADER: Range<usize> = 1..5;
}

/// Length of the connection ID prefix.
pub const CID_LEN: usize = 1;
/// Length of the CoAP fixed header.
pub const HEADER_LEN: usize = 4;
/// Length of the AEAD tag.
pub const TAG_LEN: usize = 16;
/// The longest CoAP token (RFC 7252 §3).
pub const MAX_TOKEN_LEN: usize = 8;
/// Connection ID value meaning "no connection ID assigned yet" (first handshake messages).
pub const CID_NONE: u8 = 0;
/// Code class reserved for handshake frames (RFC 7252 leaves class 7 unassigned for CoAP over
/// UDP; RFC 8323 uses only 7.01–7.05 for its TCP signaling, which never crosses this link).
pub const HANDSHAKE_CLASS: u8 = 7;

/// Malformed frame or plaintext CoAP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than the connection ID, header and token it announces.
    Truncated,
    /// CoAP version field is not 1.
    BadVersion,
    /// Token length 9–15 (reserved by RFC 7252 §3).
    BadTokenLength,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => f.write_str("frame shorter than its header and token"),
            FrameError::BadVersion => f.write_str("CoAP version is not 1"),
            FrameError::BadTokenLength => f.write_str("CoAP token length above 8"),
        }
    }
}

impl core::error::Error for FrameError {}

/// CoAP message type (RFC 7252 §3), the `T` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// Confirmable (0).
    Con,
    /// Non-confirmable (1).
    Non,
    /// Acknowledgement (2).
    Ack,
    /// Reset (3).
    Rst,
}

impl Kind {
    /// From the 2-bit field value (upper bits ignored).
    pub const fn from_bits(bits: u8) -> Kind {
        match bits & 0b11 {
            0 => Kind::Con,
            1 => Kind::Non,
            2 => Kind::Ack,
            _ => Kind::Rst,
        }
    }

    /// The 2-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            Kind::Con => 0,
            Kind::Non => 1,
            Kind::Ack => 2,
            Kind::Rst => 3,
        }
    }

    /// ACK and RST answer a message of the peer and reuse its Message ID ("echoed" nonces).
    pub const fn is_echo(self) -> bool {
        matches!(self, Kind::Ack | Kind::Rst)
    }
}

/// Handshake frame codes (class 7). See `docs/PROTOCOL.md`, "Noise pipe framing".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandshakeCode {
    /// 7.10: `Noise_XX` message 1 (`-> e`), CON from the device.
    Xx1,
    /// 7.11: `Noise_XX` message 2 (`<- e, ee, s, es`), ACK from the gateway.
    Xx2,
    /// 7.12: `Noise_XX` message 3 (`-> s, se`) carrying the first request, CON.
    Xx3,
    /// 7.20: `Noise_IK` message 1 (`-> e, es, s, ss`) carrying the first request (0-RTT), CON.
    Ik1,
    /// 7.21: `Noise_IK` message 2 (`<- e, ee, se`) carrying the response, ACK.
    Ik2,
    /// 7.30: `Noise_XXfallback` message 1 (`<- e, ee, s, es`), ACK answering an IK message 1.
    Fallback1,
    /// 7.31: `Noise_XXfallback` message 2 (`-> s, se`) carrying the first request again, CON.
    Fallback2,
    /// Any other class-7 code.
    Unknown(u8),
}

impl HandshakeCode {
    /// From the full code byte.
    pub const fn from_code(code: u8) -> HandshakeCode {
        match code {
            0xEA => HandshakeCode::Xx1,
            0xEB => HandshakeCode::Xx2,
            0xEC => HandshakeCode::Xx3,
            0xF4 => HandshakeCode::Ik1,
            0xF5 => HandshakeCode::Ik2,
            0xFE => HandshakeCode::Fallback1,
            0xFF => HandshakeCode::Fallback2,
            other => HandshakeCode::Unknown(other),
        }
    }

    /// The full code byte (class 7 in the top 3 bits, detail below).
    pub const fn code(self) -> u8 {
        match self {
            HandshakeCode::Xx1 => 0xEA,
            HandshakeCode::Xx2 => 0xEB,
            HandshakeCode::Xx3 => 0xEC,
            HandshakeCode::Ik1 => 0xF4,
            HandshakeCode::Ik2 => 0xF5,
            HandshakeCode::Fallback1 => 0xFE,
            HandshakeCode::Fallback2 => 0xFF,
            HandshakeCode::Unknown(c) => c,
        }
    }

    /// The CoAP message type this handshake message travels as.
    pub const fn kind(self) -> Kind {
        match self {
            HandshakeCode::Xx2 | HandshakeCode::Ik2 | HandshakeCode::Fallback1 => Kind::Ack,
            _ => Kind::Con,
        }
    }
}

/// A zero-copy view of a pipe frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it (accessors may panic until [`check_len`](Self::check_len)).
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps a buffer and checks it with [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let f = Frame::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks length, version and token length; afterwards no accessor panics.
    pub fn check_len(&self) -> Result<(), FrameError> {
        let b = self.buffer.as_ref();
        if b.len() < field::TOKEN {
            return Err(FrameError::Truncated);
        }
        let first = b[field::VER_T_TKL];
        if first >> 6 != 1 {
            return Err(FrameError::BadVersion);
        }
        let tkl = usize::from(first & 0x0F);
        if tkl > MAX_TOKEN_LEN {
            return Err(FrameError::BadTokenLength);
        }
        if b.len() < field::TOKEN + tkl {
            return Err(FrameError::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The connection ID byte.
    pub fn cid(&self) -> u8 {
        self.buffer.as_ref()[field::CID]
    }

    /// The CoAP message type.
    pub fn kind(&self) -> Kind {
        Kind::from_bits(self.buffer.as_ref()[field::VER_T_TKL] >> 4)
    }

    /// The token length.
    pub fn token_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_T_TKL] & 0x0F)
    }

    /// The CoAP code byte (class in the top 3 bits).
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Whether the code is in the handshake class 7.
    pub fn is_handshake(&self) -> bool {
        self.code() >> 5 == HANDSHAKE_CLASS
    }

    /// The Message ID.
    pub fn mid(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::MID];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The 4-byte CoAP header.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER]
    }

    /// The clear token.
    pub fn token(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TOKEN..field::TOKEN + self.token_len()]
    }

    /// The associated data: CID, header and token.
    pub fn associated_data(&self) -> &[u8] {
        &self.buffer.as_ref()[..field::TOKEN + self.token_len()]
    }

    /// Everything after the token: ciphertext and tag, or a Noise handshake message.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TOKEN + self.token_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the connection ID.
    pub fn set_cid(&mut self, cid: u8) {
        self.buffer.as_mut()[field::CID] = cid;
    }

    /// Sets the Message ID.
    pub fn set_mid(&mut self, mid: u16) {
        self.buffer.as_mut()[field::MID].copy_from_slice(&mid.to_be_bytes());
    }

    /// Mutable body (after the token).
    pub fn body_mut(&mut self) -> &mut [u8] {
        let start = field::TOKEN + self.token_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// A plaintext CoAP message split at the point where encryption starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainParts<'a> {
    /// The 4-byte fixed header.
    pub header: [u8; 4],
    /// The token.
    pub token: &'a [u8],
    /// Options, payload marker and payload (what gets encrypted).
    pub rest: &'a [u8],
}

impl<'a> PlainParts<'a> {
    /// Splits a plaintext CoAP/UDP message. Checks only what the pipe relies on: length,
    /// version 1 and a token length of at most 8.
    pub fn split(message: &'a [u8]) -> Result<Self, FrameError> {
        let (header, after) = message
            .split_first_chunk::<4>()
            .ok_or(FrameError::Truncated)?;
        if header[0] >> 6 != 1 {
            return Err(FrameError::BadVersion);
        }
        let tkl = usize::from(header[0] & 0x0F);
        if tkl > MAX_TOKEN_LEN {
            return Err(FrameError::BadTokenLength);
        }
        if after.len() < tkl {
            return Err(FrameError::Truncated);
        }
        let (token, rest) = after.split_at(tkl);
        Ok(PlainParts {
            header: *header,
            token,
            rest,
        })
    }

    /// The message type.
    pub fn kind(&self) -> Kind {
        Kind::from_bits(self.header[0] >> 4)
    }

    /// The code byte.
    pub fn code(&self) -> u8 {
        self.header[1]
    }

    /// The Message ID.
    pub fn mid(&self) -> u16 {
        u16::from_be_bytes([self.header[2], self.header[3]])
    }

    /// Length of the established-session frame carrying this message:
    /// CID + header + token + ciphertext + tag.
    pub fn sealed_len(&self) -> usize {
        CID_LEN + HEADER_LEN + self.token.len() + self.rest.len() + TAG_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_of_literal_frame() {
        // CID 0x2A, CON (T=0) TKL=1, code 0.02 POST, MID 0x1234, token 0x7E, 3 ciphertext bytes,
        // 16 tag bytes.
        let mut bytes = [0u8; 1 + 4 + 1 + 3 + 16];
        bytes[..6].copy_from_slice(&[0x2A, 0x41, 0x02, 0x12, 0x34, 0x7E]);
        let f = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(f.cid(), 0x2A);
        assert_eq!(f.kind(), Kind::Con);
        assert_eq!(f.code(), 0x02);
        assert_eq!(f.mid(), 0x1234);
        assert_eq!(f.token(), &[0x7E]);
        assert_eq!(f.associated_data(), &[0x2A, 0x41, 0x02, 0x12, 0x34, 0x7E]);
        assert_eq!(f.body().len(), 19);
        assert!(!f.is_handshake());
    }

    #[test]
    fn rejects_bad_frames() {
        assert_eq!(
            Frame::new_checked(&[0u8, 0x40, 0, 0][..]).unwrap_err(),
            FrameError::Truncated
        );
        assert_eq!(
            Frame::new_checked(&[0u8, 0x80, 0, 0, 0][..]).unwrap_err(),
            FrameError::BadVersion
        );
        assert_eq!(
            Frame::new_checked(&[0u8, 0x49, 0, 0, 0][..]).unwrap_err(),
            FrameError::BadTokenLength
        );
        assert_eq!(
            Frame::new_checked(&[0u8, 0x42, 0, 0, 0, 1][..]).unwrap_err(),
            FrameError::Truncated
        );
    }

    #[test]
    fn handshake_codes_are_class_7_and_round_trip() {
        for c in [
            HandshakeCode::Xx1,
            HandshakeCode::Xx2,
            HandshakeCode::Xx3,
            HandshakeCode::Ik1,
            HandshakeCode::Ik2,
            HandshakeCode::Fallback1,
            HandshakeCode::Fallback2,
        ] {
            assert_eq!(c.code() >> 5, 7);
            assert_eq!(HandshakeCode::from_code(c.code()), c);
        }
        // 7.10 = 0b111_01010
        assert_eq!(HandshakeCode::Xx1.code(), (7 << 5) | 10);
        assert_eq!(HandshakeCode::Ik1.code(), (7 << 5) | 20);
        assert_eq!(HandshakeCode::Fallback2.code(), (7 << 5) | 31);
        assert_eq!(HandshakeCode::from_code(0xE1), HandshakeCode::Unknown(0xE1));
    }

    #[test]
    fn plain_split() {
        let msg = [0x51, 0x45, 0x00, 0x07, 0xAA, 0xB1, 0xFF, b'h'];
        let p = PlainParts::split(&msg).unwrap();
        assert_eq!(p.kind(), Kind::Non);
        assert_eq!(p.code(), 0x45);
        assert_eq!(p.mid(), 7);
        assert_eq!(p.token, &[0xAA]);
        assert_eq!(p.rest, &[0xB1, 0xFF, b'h']);
        assert_eq!(p.sealed_len(), 1 + 4 + 1 + 3 + 16);
        assert_eq!(
            PlainParts::split(&[0x40, 0, 0]).unwrap_err(),
            FrameError::Truncated
        );
    }

    proptest::proptest! {
        #[test]
        fn checked_frames_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            if let Ok(f) = Frame::new_checked(&bytes[..]) {
                let _ = (f.cid(), f.kind(), f.code(), f.mid(), f.token(), f.body(), f.associated_data());
                proptest::prop_assert_eq!(f.associated_data().len() + f.body().len(), bytes.len());
            }
        }
    }
}
