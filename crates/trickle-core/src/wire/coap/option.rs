//! CoAP option numbers, option values, and the typed uint / Observe / Block values.

use core::fmt;

use crate::wire::{Error, Malformed, Misuse};

/// A CoAP option number (RFC 7252 §5.4, §12.2). Unknown numbers are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionNumber(pub u16);

impl OptionNumber {
    /// If-Match (1), RFC 7252.
    pub const IF_MATCH: Self = Self(1);
    /// Uri-Host (3), RFC 7252.
    pub const URI_HOST: Self = Self(3);
    /// ETag (4), RFC 7252.
    pub const ETAG: Self = Self(4);
    /// If-None-Match (5), RFC 7252.
    pub const IF_NONE_MATCH: Self = Self(5);
    /// Observe (6), RFC 7641.
    pub const OBSERVE: Self = Self(6);
    /// Uri-Port (7), RFC 7252.
    pub const URI_PORT: Self = Self(7);
    /// Location-Path (8), RFC 7252.
    pub const LOCATION_PATH: Self = Self(8);
    /// Uri-Path (11), RFC 7252.
    pub const URI_PATH: Self = Self(11);
    /// Content-Format (12), RFC 7252.
    pub const CONTENT_FORMAT: Self = Self(12);
    /// Max-Age (14), RFC 7252.
    pub const MAX_AGE: Self = Self(14);
    /// Uri-Query (15), RFC 7252.
    pub const URI_QUERY: Self = Self(15);
    /// Accept (17), RFC 7252.
    pub const ACCEPT: Self = Self(17);
    /// Location-Query (20), RFC 7252.
    pub const LOCATION_QUERY: Self = Self(20);
    /// Block2 (23), RFC 7959.
    pub const BLOCK2: Self = Self(23);
    /// Block1 (27), RFC 7959.
    pub const BLOCK1: Self = Self(27);
    /// Size2 (28), RFC 7959.
    pub const SIZE2: Self = Self(28);
    /// Proxy-Uri (35), RFC 7252.
    pub const PROXY_URI: Self = Self(35);
    /// Proxy-Scheme (39), RFC 7252.
    pub const PROXY_SCHEME: Self = Self(39);
    /// Size1 (60), RFC 7252.
    pub const SIZE1: Self = Self(60);
    /// Authorization (256), MSC3079: the Matrix access token.
    pub const AUTHORIZATION: Self = Self(256);
    /// CBOR-enum-version (257), MSC3079: which key/value substitution table the body uses.
    pub const CBOR_ENUM_VERSION: Self = Self(257);

    /// Critical (odd number): a receiver that does not understand it must not ignore it
    /// (RFC 7252 §5.4.1, §5.4.6).
    pub const fn is_critical(self) -> bool {
        self.0 & 0x01 != 0
    }

    /// Elective (even number): may be silently ignored when not understood.
    pub const fn is_elective(self) -> bool {
        !self.is_critical()
    }

    /// Unsafe to forward (bit 1 set): a proxy that does not understand it must not forward
    /// the message (RFC 7252 §5.4.2, §5.4.6).
    pub const fn is_unsafe(self) -> bool {
        self.0 & 0x02 != 0
    }

    /// NoCacheKey (bits 2–4 all set, `number & 0x1e == 0x1c`), only meaningful for safe-to-forward
    /// options (RFC 7252 §5.4.6).
    pub const fn is_no_cache_key(self) -> bool {
        self.0 & 0x1e == 0x1c
    }
}

impl fmt::Display for OptionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Longest option value the length field can express: 65535 + 269.
pub const MAX_OPTION_VALUE_LEN: usize = 65535 + 269;

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Borrowed(&'a [u8]),
    /// Up to 4 bytes held inline (uint, Observe, Block values); `len` ≤ 4.
    Inline {
        bytes: [u8; 4],
        len: u8,
    },
}

/// One CoAP option: a number and its value bytes (borrowed, or held inline when built from a
/// uint so the caller needs no storage for it). Equality compares number and value bytes.
#[derive(Debug, Clone, Copy)]
pub struct CoapOption<'a> {
    /// The option number.
    pub number: OptionNumber,
    value: Value<'a>,
}

impl<'a> CoapOption<'a> {
    /// An option with a borrowed value.
    pub const fn new(number: OptionNumber, value: &'a [u8]) -> Self {
        Self {
            number,
            value: Value::Borrowed(value),
        }
    }

    /// An option with a uint value in the minimal encoding of RFC 7252 §3.2 (0 → no bytes).
    pub fn uint(number: OptionNumber, value: u32) -> Self {
        let mut bytes = [0u8; 4];
        let len = encode_uint(value, &mut bytes).len() as u8;
        Self {
            number,
            value: Value::Inline { bytes, len },
        }
    }

    /// An option with a string value (Uri-Path, Uri-Query, …).
    pub const fn str(number: OptionNumber, value: &'a str) -> Self {
        Self::new(number, value.as_bytes())
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        match &self.value {
            Value::Borrowed(v) => v,
            Value::Inline { bytes, len } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
        }
    }

    /// The value as a uint (0–4 bytes, big-endian, leading zeros accepted).
    pub fn value_uint(&self) -> Result<u32, Error> {
        decode_uint(self.value())
    }
}

impl PartialEq for CoapOption<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number && self.value() == other.value()
    }
}
impl Eq for CoapOption<'_> {}

#[cfg(feature = "defmt")]
impl defmt::Format for CoapOption<'_> {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "CoapOption({}, {=[u8]})", self.number, self.value())
    }
}

/// Bytes the minimal uint encoding of `value` takes (0–4).
pub const fn uint_len(value: u32) -> usize {
    (4 - value.leading_zeros() / 8) as usize
}

/// Writes `value` in the minimal uint encoding of RFC 7252 §3.2 (0 → zero bytes) and returns
/// the written prefix of `buf`.
pub fn encode_uint(value: u32, buf: &mut [u8; 4]) -> &[u8] {
    let len = uint_len(value);
    let be = value.to_be_bytes();
    for (dst, src) in buf.iter_mut().zip(be.iter().skip(4 - len)) {
        *dst = *src;
    }
    buf.get(..len).unwrap_or(&[])
}

/// Reads a uint option value: 0–4 bytes, big-endian. Longer values are malformed.
pub fn decode_uint(bytes: &[u8]) -> Result<u32, Error> {
    if bytes.len() > 4 {
        return Err(Malformed::OptionValueTooLong.into());
    }
    Ok(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// The Observe option (RFC 7641 §2): a 0–3 byte uint.
pub mod observe {
    use super::*;

    /// Observe value in a GET request: register as an observer.
    pub const REGISTER: u32 = 0;
    /// Observe value in a GET request: deregister.
    pub const DEREGISTER: u32 = 1;
    /// Largest Observe value (2^24 − 1).
    pub const MAX: u32 = 0x00ff_ffff;

    /// Decodes an Observe value (0–3 bytes).
    pub fn decode(bytes: &[u8]) -> Result<u32, Error> {
        if bytes.len() > 3 {
            return Err(Malformed::OptionValueTooLong.into());
        }
        decode_uint(bytes)
    }

    /// Builds an Observe option; values above [`MAX`] are refused.
    pub fn option(value: u32) -> Result<CoapOption<'static>, Error> {
        if value > MAX {
            return Err(Misuse::ValueOutOfRange.into());
        }
        Ok(CoapOption::uint(OptionNumber::OBSERVE, value))
    }
}

/// A Block1/Block2 option value (RFC 7959 §2.2): block number, more flag, size exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Block {
    /// Block number (NUM), below 2^20.
    pub num: u32,
    /// More blocks follow (M).
    pub more: bool,
    /// Size exponent (SZX), 0–6: block size is 2^(SZX+4) = 16…1024 bytes.
    pub szx: u8,
}

impl Block {
    /// Largest block number (2^20 − 1).
    pub const MAX_NUM: u32 = 0x000f_ffff;

    /// Block size in bytes, 2^(SZX+4).
    pub const fn size(&self) -> usize {
        1usize << ((self.szx & 0x07) + 4)
    }

    /// Byte offset of this block in the whole body (NUM × size).
    pub const fn offset(&self) -> usize {
        (self.num as usize).saturating_mul(self.size())
    }

    /// Decodes a Block option value (0–3 bytes). SZX 7 is reserved and refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > 3 {
            return Err(Malformed::OptionValueTooLong.into());
        }
        let v = decode_uint(bytes)?;
        let szx = (v & 0x07) as u8;
        if szx == 7 {
            return Err(Malformed::ReservedBlockSize.into());
        }
        Ok(Self {
            num: v >> 4,
            more: v & 0x08 != 0,
            szx,
        })
    }

    /// The uint this block value encodes to, after range checks.
    pub fn to_uint(&self) -> Result<u32, Error> {
        if self.num > Self::MAX_NUM || self.szx > 6 {
            return Err(Misuse::ValueOutOfRange.into());
        }
        Ok((self.num << 4) | (u32::from(self.more) << 3) | u32::from(self.szx))
    }

    /// Builds the option `number` ([`OptionNumber::BLOCK1`] or [`OptionNumber::BLOCK2`]).
    pub fn option(&self, number: OptionNumber) -> Result<CoapOption<'static>, Error> {
        Ok(CoapOption::uint(number, self.to_uint()?))
    }
}

/// Returns the first critical option in `options` whose number is not in `known`.
///
/// RFC 7252 §5.4.1: an unrecognized critical option in a confirmable request makes the server
/// answer 4.02 (Bad Option); in a confirmable response the client rejects it (RST); in a
/// non-confirmable message the message is rejected. Unrecognized elective options are ignored.
pub fn first_unrecognized_critical<'o, 'a: 'o>(
    options: impl IntoIterator<Item = &'o CoapOption<'a>>,
    known: &[OptionNumber],
) -> Option<OptionNumber> {
    options
        .into_iter()
        .map(|o| o.number)
        .find(|n| n.is_critical() && !known.contains(n))
}
