//! Wire formats: compact CoAP and endpoint codes.
//!
//! - [`coap`]: the CoAP message codec (RFC 7252), with typed Observe (RFC 7641) and
//!   Block1/Block2 (RFC 7959) option values.
//! - [`paths`]: endpoint codes — Matrix client-server HTTP paths ↔ CoAP `Uri-Path` /
//!   `Uri-Query` options, using the MSC3079 v1 path table and Trickle's `trickle-v1` extension.
//! - [`serial`]: framing of pipe frames on byte-stream links (COBS/R, optional CRC-16/X-25).
//!
//! Every function here returns an [`Error`] on bad input; none panics, whatever the bytes.

use core::fmt;

pub mod coap;
pub mod paths;
pub mod serial;

/// Everything that can go wrong in [`coap`] and [`paths`], split by whose fault it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The input (bytes from the peer, or a path/text given to a parser) is not well formed.
    /// The sender is at fault; a CoAP server answers a malformed confirmable message with RST.
    Malformed(Malformed),
    /// The caller asked for something the format cannot express.
    Misuse(Misuse),
    /// The output buffer is too small; `required` bytes would be needed.
    BufferTooSmall {
        /// Bytes needed for the whole output.
        required: usize,
    },
    /// A well-formed message has more options than the fixed capacity of [`coap::Options`].
    TooManyOptions {
        /// The capacity that was exceeded ([`coap::MAX_OPTIONS`]).
        capacity: usize,
    },
    /// A path has more segments or query items than the fixed capacity of
    /// [`paths::CoapPath`].
    TooManySegments {
        /// The capacity that was exceeded.
        capacity: usize,
    },
}

/// Input that is not well formed (the sender's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Malformed {
    /// The input ends before a field it announces.
    Truncated,
    /// The CoAP version field is not 1.
    Version(u8),
    /// The token length field is 9–15 (RFC 7252 §3: a message format error).
    TokenLength(u8),
    /// An option delta or length nibble is 15 outside the payload marker 0xFF.
    ReservedOptionNibble,
    /// Option deltas add up to an option number above 65535.
    OptionNumberOverflow,
    /// A payload marker 0xFF is followed by no payload (RFC 7252 §3).
    EmptyPayloadAfterMarker,
    /// A message with code 0.00 (Empty) carries a token, options or payload (RFC 7252 §4.1).
    NonEmptyEmptyMessage,
    /// A uint, Observe or Block option value has more bytes than its format allows.
    OptionValueTooLong,
    /// A Block1/Block2 option has SZX 7, which RFC 7959 §2.2 reserves.
    ReservedBlockSize,
    /// A `%` is not followed by two hexadecimal digits.
    PercentEncoding,
    /// A path segment or query item does not decode to UTF-8.
    NotUtf8,
    /// A path does not start with `/`.
    NotAbsolutePath,
    /// A one-byte first path segment is not an endpoint code of the table in use.
    UnknownPathCode(u8),
    /// An endpoint code is followed by the wrong number of parameters.
    ParameterCount {
        /// The endpoint code.
        code: u8,
        /// Parameters the code's template has.
        expected: u8,
        /// Parameters present (saturating at 255).
        found: u8,
    },
}

/// A request the format cannot express (the caller's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Misuse {
    /// A token longer than 8 bytes.
    TokenTooLong,
    /// [`coap::Repr::options`] is not sorted by option number.
    OptionsNotSorted,
    /// An option value longer than 65804 bytes (the largest the length field can say).
    OptionValueTooLong,
    /// A value out of range for its field (Observe ≥ 2^24, Block NUM ≥ 2^20, SZX > 6).
    ValueOutOfRange,
    /// A [`coap::Repr`] with code 0.00 (Empty) that has a token, options or payload.
    EmptyMessageWithContent,
    /// An unknown HTTP path whose first segment is one byte long: it would read as an
    /// endpoint code, so it cannot be sent uncompressed.
    AmbiguousPath,
}

impl From<Malformed> for Error {
    fn from(m: Malformed) -> Self {
        Error::Malformed(m)
    }
}

impl From<Misuse> for Error {
    fn from(m: Misuse) -> Self {
        Error::Misuse(m)
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Truncated => f.write_str("input is truncated"),
            Malformed::Version(v) => write!(f, "CoAP version {v}, expected 1"),
            Malformed::TokenLength(l) => write!(f, "token length {l} is over 8"),
            Malformed::ReservedOptionNibble => f.write_str("option nibble 15 is reserved"),
            Malformed::OptionNumberOverflow => f.write_str("option number over 65535"),
            Malformed::EmptyPayloadAfterMarker => {
                f.write_str("payload marker followed by an empty payload")
            }
            Malformed::NonEmptyEmptyMessage => {
                f.write_str("message with code 0.00 has a token, options or payload")
            }
            Malformed::OptionValueTooLong => f.write_str("option value too long for its format"),
            Malformed::ReservedBlockSize => f.write_str("block SZX 7 is reserved"),
            Malformed::PercentEncoding => f.write_str("bad percent-encoding"),
            Malformed::NotUtf8 => f.write_str("path segment is not UTF-8"),
            Malformed::NotAbsolutePath => f.write_str("path does not start with '/'"),
            Malformed::UnknownPathCode(c) => write!(f, "unknown endpoint code 0x{c:02x}"),
            Malformed::ParameterCount {
                code,
                expected,
                found,
            } => write!(
                f,
                "endpoint code 0x{code:02x} takes {expected} parameters, found {found}"
            ),
        }
    }
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Misuse::TokenTooLong => "token longer than 8 bytes",
            Misuse::OptionsNotSorted => "options not sorted by number",
            Misuse::OptionValueTooLong => "option value longer than 65804 bytes",
            Misuse::ValueOutOfRange => "value out of range for its field",
            Misuse::EmptyMessageWithContent => {
                "empty message (0.00) with token, options or payload"
            }
            Misuse::AmbiguousPath => "unknown path with a one-byte first segment",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(m) => write!(f, "malformed input: {m}"),
            Error::Misuse(m) => write!(f, "invalid request: {m}"),
            Error::BufferTooSmall { required } => {
                write!(f, "buffer too small: {required} bytes required")
            }
            Error::TooManyOptions { capacity } => {
                write!(f, "more than {capacity} CoAP options")
            }
            Error::TooManySegments { capacity } => {
                write!(f, "more than {capacity} path segments or query items")
            }
        }
    }
}

impl core::error::Error for Malformed {}
impl core::error::Error for Misuse {}
impl core::error::Error for Error {}
