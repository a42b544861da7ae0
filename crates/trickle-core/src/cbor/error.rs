//! Errors of the transcoder, split by whose fault they are.

use core::fmt;

/// Why transcoding failed.
///
/// `at` is the byte offset in the *input* where the problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The input is not well-formed JSON (for [`json_to_cbor`](super::json_to_cbor)) or not
    /// well-formed CBOR (for [`cbor_to_json`](super::cbor_to_json) and the [`Reader`](super::Reader)).
    Malformed {
        /// Input offset.
        at: usize,
        /// What is wrong.
        reason: Malformed,
    },
    /// The input is well-formed but cannot be carried across: the peer sent something outside
    /// the JSON data model or outside the substitution table.
    Unsupported {
        /// Input offset.
        at: usize,
        /// What cannot be represented.
        reason: Unsupported,
    },
    /// A bound from [`Limits`](super::Limits) was exceeded.
    LimitExceeded {
        /// Input offset.
        at: usize,
        /// Which bound.
        limit: Limit,
    },
    /// The output buffer is too small. `required` is the size the whole output needs (exact
    /// when the rest of the input is valid; the call must be repeated with a larger buffer).
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
}

/// Ways the input can be malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Malformed {
    /// The input ended inside an item.
    UnexpectedEnd,
    /// A byte that cannot start or continue the item here.
    UnexpectedByte,
    /// Input bytes after the single top-level item.
    TrailingData,
    /// Text that is not valid UTF-8.
    InvalidUtf8,
    /// A JSON string escape that is not one of `\" \\ \/ \b \f \n \r \t \uXXXX`.
    InvalidEscape,
    /// A `\uXXXX` escape for a UTF-16 surrogate that is not part of a valid pair.
    LoneSurrogate,
    /// An unescaped control character (U+0000..U+001F) inside a JSON string.
    ControlCharacter,
    /// A JSON number that does not follow the RFC 8259 grammar.
    InvalidNumber,
    /// A JSON object with the same key twice (after unescaping).
    DuplicateKey,
    /// A CBOR initial byte with additional information 28..=30, or a two-byte simple value
    /// below 32 (RFC 8949 §3.3).
    ReservedEncoding,
    /// An indefinite-length CBOR string, array or map, or a stray "break"; Trickle bodies use
    /// definite lengths only.
    IndefiniteLength,
}

/// Well-formed input that cannot be transcoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Unsupported {
    /// A CBOR byte string (JSON has none).
    ByteString,
    /// A CBOR tag the table does not define.
    Tag(u64),
    /// A CBOR simple value other than false/true/null that the table does not define.
    SimpleValue(u8),
    /// CBOR `undefined` (JSON has none).
    Undefined,
    /// A NaN or infinite float (JSON has none), or a JSON number too large for a double.
    NonFiniteNumber,
    /// A map key that is neither text nor an integer of the table.
    InvalidKey,
    /// An integer map key that the table does not define (or any integer key in plain mode).
    UnknownKey(i64),
    /// A shared-item reference that the table does not define.
    UnknownValue(u64),
    /// A CBOR map with the same key twice (text keys, or integer keys, after resolution).
    DuplicateKey,
}

/// The bound that was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_depth`](super::Limits::max_depth).
    Depth,
    /// [`Limits::max_items`](super::Limits::max_items).
    Items,
    /// [`Limits::max_unsorted_entries`](super::Limits::max_unsorted_entries).
    UnsortedEntries,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::UnexpectedEnd => "input ends inside an item",
            Malformed::UnexpectedByte => "unexpected byte",
            Malformed::TrailingData => "data after the top-level item",
            Malformed::InvalidUtf8 => "text is not valid UTF-8",
            Malformed::InvalidEscape => "invalid string escape",
            Malformed::LoneSurrogate => "unpaired UTF-16 surrogate escape",
            Malformed::ControlCharacter => "unescaped control character in string",
            Malformed::InvalidNumber => "invalid number",
            Malformed::DuplicateKey => "duplicate object key",
            Malformed::ReservedEncoding => "reserved CBOR encoding",
            Malformed::IndefiniteLength => "indefinite-length CBOR item",
        })
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::ByteString => f.write_str("byte string has no JSON form"),
            Unsupported::Tag(t) => write!(f, "tag {t} has no JSON form"),
            Unsupported::SimpleValue(s) => write!(f, "simple value {s} has no JSON form"),
            Unsupported::Undefined => f.write_str("undefined has no JSON form"),
            Unsupported::NonFiniteNumber => f.write_str("number is NaN, infinite or too large"),
            Unsupported::InvalidKey => f.write_str("map key is neither text nor table integer"),
            Unsupported::UnknownKey(k) => write!(f, "integer key {k} is not in the table"),
            Unsupported::UnknownValue(v) => write!(f, "shared item {v} is not in the table"),
            Unsupported::DuplicateKey => f.write_str("duplicate map key"),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Depth => "nesting depth",
            Limit::Items => "item count",
            Limit::UnsortedEntries => "unsorted map size",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed { at, reason } => write!(f, "malformed input at byte {at}: {reason}"),
            Error::Unsupported { at, reason } => write!(f, "unsupported at byte {at}: {reason}"),
            Error::LimitExceeded { at, limit } => write!(f, "{limit} limit exceeded at byte {at}"),
            Error::BufferTooSmall { required } => {
                write!(f, "output buffer too small, {required} bytes required")
            }
        }
    }
}

impl core::error::Error for Error {}

pub(crate) fn malformed(at: usize, reason: Malformed) -> Error {
    Error::Malformed { at, reason }
}

pub(crate) fn unsupported(at: usize, reason: Unsupported) -> Error {
    Error::Unsupported { at, reason }
}
