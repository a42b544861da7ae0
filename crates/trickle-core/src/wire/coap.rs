//! CoAP messages (RFC 7252 §3), zero-copy.
//!
//! [`Message`] is a view over bytes: [`Message::new_checked`] (or [`Message::check_len`])
//! verifies that the header, token and every option fit in the buffer and are well formed;
//! after that no accessor panics. Accessors never panic on an unchecked buffer either: they
//! return zero / empty values when bytes are missing.
//!
//! [`Repr`] is the validated plain value: [`Repr::parse`] reads it from a checked message
//! (borrowing token, option values and payload), [`Repr::buffer_len`] says how many bytes
//! [`Repr::emit`] writes.
//!
//! ```
//! use trickle_core::wire::coap::{CoapOption, Code, Kind, Message, OptionNumber, Repr};
//!
//! // RFC 7252 Appendix A, Figure 16.
//! let mut req = Repr::new(Kind::Confirmable, Code::GET, 0x7d34, &[]);
//! req.push_option(CoapOption::str(OptionNumber::URI_PATH, "temperature"))?;
//! let mut buf = [0u8; 32];
//! let n = req.emit(&mut buf)?;
//! assert_eq!(&buf[..n], b"\x40\x01\x7d\x34\xbbtemperature");
//! let msg = Message::new_checked(&buf[..n])?;
//! assert_eq!(msg.header_len(), 4);
//! assert_eq!(Repr::parse(&msg)?, req);
//! # Ok::<(), trickle_core::wire::Error>(())
//! ```
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Ver| T |  TKL  |      Code     |          Message ID           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Token (if any, TKL bytes) ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Options (if any) ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |1 1 1 1 1 1 1 1|    Payload (if any) ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::fmt;

use super::{Error, Malformed, Misuse};

mod option;

pub use option::{
    Block, CoapOption, MAX_OPTION_VALUE_LEN, OptionNumber, decode_uint, encode_uint,
    first_unrecognized_critical, observe, uint_len,
};

/// How many options a [`Repr`] holds. 20 covers a compressed Matrix request (one code option
/// plus up to four parameters), an uncompressed path of up to ten segments, a few Uri-Query
/// items, Content-Format, Accept, Observe, Block1/Block2, Size1/Size2, Authorization and
/// CBOR-enum-version. On a 32-bit MCU an option takes 12 bytes, so the container is 240 bytes.
pub const MAX_OPTIONS: usize = 20;

/// The options of a [`Repr`], sorted by number; among equal numbers, in message order.
pub type Options<'a> = heapless::Vec<CoapOption<'a>, MAX_OPTIONS>;

/// CoAP version carried by every message.
pub const VERSION: u8 = 1;
/// Longest token (RFC 7252 §3).
pub const MAX_TOKEN_LEN: usize = 8;
/// The payload marker.
pub const PAYLOAD_MARKER: u8 = 0xff;

mod field {
    #![allow(non_snake_case)]
    use core::ops::Range;

    /// Version (2 bits), Type (2 bits), Token Length (4 bits).
    pub const VER_T_TKL: usize = 0;
    /// Code: class (3 bits) . detail (5 bits).
    pub const CODE: usize = 1;
    /// Message ID, big-endian.
    pub const MESSAGE_ID: Range<usize> = 2..4;
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 4;

    /// The token, `tkl` bytes after the fixed header.
    pub const fn TOKEN(tkl: usize) -> Range<usize> {
        HEADER_LEN..HEADER_LEN + tkl
    }
}

/// Length of the fixed CoAP header.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// Message type (RFC 7252 §3, field T).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// Confirmable (0).
    Confirmable,
    /// Non-confirmable (1).
    NonConfirmable,
    /// Acknowledgement (2).
    Acknowledgement,
    /// Reset (3).
    Reset,
}

impl Kind {
    /// From the 2-bit T field (higher bits ignored).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Kind::Confirmable,
            1 => Kind::NonConfirmable,
            2 => Kind::Acknowledgement,
            _ => Kind::Reset,
        }
    }

    /// The 2-bit T field.
    pub const fn bits(self) -> u8 {
        match self {
            Kind::Confirmable => 0,
            Kind::NonConfirmable => 1,
            Kind::Acknowledgement => 2,
            Kind::Reset => 3,
        }
    }
}

/// Code `class.detail` (RFC 7252 §3, §12.1). Every value is kept, named or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Code(pub u8);

impl Code {
    /// 0.00 Empty.
    pub const EMPTY: Self = Self::new(0, 0);
    /// 0.01 GET.
    pub const GET: Self = Self::new(0, 1);
    /// 0.02 POST.
    pub const POST: Self = Self::new(0, 2);
    /// 0.03 PUT.
    pub const PUT: Self = Self::new(0, 3);
    /// 0.04 DELETE.
    pub const DELETE: Self = Self::new(0, 4);
    /// 0.05 FETCH (RFC 8132).
    pub const FETCH: Self = Self::new(0, 5);
    /// 0.06 PATCH (RFC 8132).
    pub const PATCH: Self = Self::new(0, 6);
    /// 0.07 iPATCH (RFC 8132).
    pub const IPATCH: Self = Self::new(0, 7);
    /// 2.01 Created.
    pub const CREATED: Self = Self::new(2, 1);
    /// 2.02 Deleted.
    pub const DELETED: Self = Self::new(2, 2);
    /// 2.03 Valid.
    pub const VALID: Self = Self::new(2, 3);
    /// 2.04 Changed.
    pub const CHANGED: Self = Self::new(2, 4);
    /// 2.05 Content.
    pub const CONTENT: Self = Self::new(2, 5);
    /// 2.31 Continue (RFC 7959).
    pub const CONTINUE: Self = Self::new(2, 31);
    /// 4.00 Bad Request.
    pub const BAD_REQUEST: Self = Self::new(4, 0);
    /// 4.01 Unauthorized.
    pub const UNAUTHORIZED: Self = Self::new(4, 1);
    /// 4.02 Bad Option.
    pub const BAD_OPTION: Self = Self::new(4, 2);
    /// 4.03 Forbidden.
    pub const FORBIDDEN: Self = Self::new(4, 3);
    /// 4.04 Not Found.
    pub const NOT_FOUND: Self = Self::new(4, 4);
    /// 4.05 Method Not Allowed.
    pub const METHOD_NOT_ALLOWED: Self = Self::new(4, 5);
    /// 4.06 Not Acceptable.
    pub const NOT_ACCEPTABLE: Self = Self::new(4, 6);
    /// 4.08 Request Entity Incomplete (RFC 7959).
    pub const REQUEST_ENTITY_INCOMPLETE: Self = Self::new(4, 8);
    /// 4.09 Conflict (RFC 8132).
    pub const CONFLICT: Self = Self::new(4, 9);
    /// 4.12 Precondition Failed.
    pub const PRECONDITION_FAILED: Self = Self::new(4, 12);
    /// 4.13 Request Entity Too Large.
    pub const REQUEST_ENTITY_TOO_LARGE: Self = Self::new(4, 13);
    /// 4.15 Unsupported Content-Format.
    pub const UNSUPPORTED_CONTENT_FORMAT: Self = Self::new(4, 15);
    /// 4.29 Too Many Requests (RFC 8516).
    pub const TOO_MANY_REQUESTS: Self = Self::new(4, 29);
    /// 5.00 Internal Server Error.
    pub const INTERNAL_SERVER_ERROR: Self = Self::new(5, 0);
    /// 5.01 Not Implemented.
    pub const NOT_IMPLEMENTED: Self = Self::new(5, 1);
    /// 5.02 Bad Gateway.
    pub const BAD_GATEWAY: Self = Self::new(5, 2);
    /// 5.03 Service Unavailable.
    pub const SERVICE_UNAVAILABLE: Self = Self::new(5, 3);
    /// 5.04 Gateway Timeout.
    pub const GATEWAY_TIMEOUT: Self = Self::new(5, 4);
    /// 5.05 Proxying Not Supported.
    pub const PROXYING_NOT_SUPPORTED: Self = Self::new(5, 5);

    /// `class.detail`; class is 3 bits (0–7), detail 5 bits (0–31); higher bits are dropped.
    pub const fn new(class: u8, detail: u8) -> Self {
        Self(((class & 0x07) << 5) | (detail & 0x1f))
    }

    /// The class (0 request/empty, 2 success, 4 client error, 5 server error).
    pub const fn class(self) -> u8 {
        self.0 >> 5
    }

    /// The detail.
    pub const fn detail(self) -> u8 {
        self.0 & 0x1f
    }

    /// 0.00.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// 0.01–0.31.
    pub const fn is_request(self) -> bool {
        self.class() == 0 && self.detail() != 0
    }

    /// Classes 2–5.
    pub const fn is_response(self) -> bool {
        matches!(self.class(), 2..=5)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.class(), self.detail())
    }
}

/// A zero-copy view of a CoAP message.
#[derive(Debug, Clone)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

/// Reads an extended delta/length field for `nibble` at `data[*pos..]`.
fn read_extended(nibble: u8, data: &[u8], pos: &mut usize) -> Result<u32, Error> {
    match nibble {
        0..=12 => Ok(u32::from(nibble)),
        13 => {
            let b = *data.get(*pos).ok_or(Malformed::Truncated)?;
            *pos += 1;
            Ok(u32::from(b) + 13)
        }
        14 => {
            let hi = *data.get(*pos).ok_or(Malformed::Truncated)?;
            let lo = *data.get(*pos + 1).ok_or(Malformed::Truncated)?;
            *pos += 2;
            Ok(u32::from(u16::from_be_bytes([hi, lo])) + 269)
        }
        _ => Err(Malformed::ReservedOptionNibble.into()),
    }
}

/// Iterator over the options of a [`Message`]; yields an error (then stops) at the first
/// malformed option.
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    data: &'a [u8],
    pos: usize,
    number: u16,
    done: bool,
    payload_start: Option<usize>,
}

impl<'a> OptionsIter<'a> {
    fn new(data: &'a [u8], start: usize) -> Self {
        Self {
            data,
            pos: start,
            number: 0,
            done: false,
            payload_start: None,
        }
    }

    fn step(&mut self) -> Result<Option<CoapOption<'a>>, Error> {
        let Some(&first) = self.data.get(self.pos) else {
            self.payload_start = Some(self.pos);
            return Ok(None);
        };
        if first == PAYLOAD_MARKER {
            let start = self.pos + 1;
            if start >= self.data.len() {
                return Err(Malformed::EmptyPayloadAfterMarker.into());
            }
            self.payload_start = Some(start);
            return Ok(None);
        }
        let mut pos = self.pos + 1;
        let delta = read_extended(first >> 4, self.data, &mut pos)?;
        let len = read_extended(first & 0x0f, self.data, &mut pos)? as usize;
        let number = u32::from(self.number) + delta;
        let number = u16::try_from(number).map_err(|_| Malformed::OptionNumberOverflow)?;
        let end = pos.checked_add(len).ok_or(Malformed::Truncated)?;
        let value = self.data.get(pos..end).ok_or(Malformed::Truncated)?;
        self.pos = end;
        self.number = number;
        Ok(Some(CoapOption::new(OptionNumber(number), value)))
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<CoapOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(o)) => Some(Ok(o)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer and runs [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let m = Self::new_unchecked(buffer);
        m.check_len()?;
        Ok(m)
    }

    /// Checks that the header, token and all options are present and well formed and that a
    /// payload marker is followed by a payload. Does not check the version (see
    /// [`Repr::parse`]).
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        let first = *data.get(field::VER_T_TKL).ok_or(Malformed::Truncated)?;
        if data.len() < field::HEADER_LEN {
            return Err(Malformed::Truncated.into());
        }
        let tkl = first & 0x0f;
        if usize::from(tkl) > MAX_TOKEN_LEN {
            return Err(Malformed::TokenLength(tkl).into());
        }
        if data.len() < field::TOKEN(usize::from(tkl)).end {
            return Err(Malformed::Truncated.into());
        }
        self.payload_offset().map(|_| ())
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, i: usize) -> u8 {
        self.buffer.as_ref().get(i).copied().unwrap_or(0)
    }

    /// Version (should be 1).
    pub fn version(&self) -> u8 {
        self.byte(field::VER_T_TKL) >> 6
    }

    /// Message type.
    pub fn kind(&self) -> Kind {
        Kind::from_bits(self.byte(field::VER_T_TKL) >> 4)
    }

    /// Token length field (0–15; over 8 is malformed).
    pub fn token_len(&self) -> u8 {
        self.byte(field::VER_T_TKL) & 0x0f
    }

    /// Code.
    pub fn code(&self) -> Code {
        Code(self.byte(field::CODE))
    }

    /// Message ID.
    pub fn message_id(&self) -> u16 {
        u16::from_be_bytes([
            self.byte(field::MESSAGE_ID.start),
            self.byte(field::MESSAGE_ID.start + 1),
        ])
    }

    /// Length of the part before the options: the fixed header plus the token (4 + TKL).
    /// Trickle's Noise framing sends this part in clear and encrypts the rest
    /// ([`rest`](Self::rest)).
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + usize::from(self.token_len())
    }

    /// Header and token (the first [`header_len`](Self::header_len) bytes, or fewer if the
    /// buffer is short).
    pub fn head(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        data.get(..self.header_len()).unwrap_or(data)
    }

    /// Everything after the token: options, payload marker and payload.
    pub fn rest(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }

    /// The token.
    pub fn token(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::TOKEN(usize::from(self.token_len())))
            .unwrap_or(&[])
    }

    /// The options in message order.
    pub fn options(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.buffer.as_ref(), self.header_len())
    }

    fn payload_offset(&self) -> Result<usize, Error> {
        let mut it = self.options();
        for o in it.by_ref() {
            o?;
        }
        it.payload_start
            .ok_or(Error::Malformed(Malformed::Truncated))
    }

    /// The payload (empty if none, or if the options are malformed).
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        match self.payload_offset() {
            Ok(start) => data.get(start..).unwrap_or(&[]),
            Err(_) => &[],
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Message<T> {
    fn set_byte(&mut self, i: usize, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(i) {
            *b = v;
        }
    }

    fn update_first(&mut self, mask: u8, bits: u8) {
        let b = self.byte(field::VER_T_TKL);
        self.set_byte(field::VER_T_TKL, (b & !mask) | (bits & mask));
    }

    /// Sets the version (2 bits).
    pub fn set_version(&mut self, v: u8) {
        self.update_first(0xc0, v << 6);
    }

    /// Sets the type.
    pub fn set_kind(&mut self, k: Kind) {
        self.update_first(0x30, k.bits() << 4);
    }

    /// Sets the token length field (4 bits).
    pub fn set_token_len(&mut self, tkl: u8) {
        self.update_first(0x0f, tkl);
    }

    /// Sets the code.
    pub fn set_code(&mut self, c: Code) {
        self.set_byte(field::CODE, c.0);
    }

    /// Sets the message ID.
    pub fn set_message_id(&mut self, id: u16) {
        let [hi, lo] = id.to_be_bytes();
        self.set_byte(field::MESSAGE_ID.start, hi);
        self.set_byte(field::MESSAGE_ID.start + 1, lo);
    }

    /// The token, mutable (length from the token length field; empty if the buffer is short).
    pub fn token_mut(&mut self) -> &mut [u8] {
        let range = field::TOKEN(usize::from(self.token_len()));
        match self.buffer.as_mut().get_mut(range) {
            Some(t) => t,
            None => &mut [],
        }
    }

    /// Everything after the token, mutable.
    pub fn rest_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        match self.buffer.as_mut().get_mut(start..) {
            Some(r) => r,
            None => &mut [],
        }
    }
}

/// A validated CoAP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Message type.
    pub kind: Kind,
    /// Code.
    pub code: Code,
    /// Message ID.
    pub message_id: u16,
    /// Token, 0–8 bytes.
    pub token: &'a [u8],
    /// Options sorted by number (use [`push_option`](Self::push_option) to keep them so).
    pub options: Options<'a>,
    /// Payload (empty: no payload marker is sent).
    pub payload: &'a [u8],
}

/// Bytes for a delta/length value `v` beyond its nibble, and the nibble.
const fn extended(v: usize) -> (u8, usize) {
    if v < 13 {
        (v as u8, 0)
    } else if v < 269 {
        (13, 1)
    } else {
        (14, 2)
    }
}

fn write_extended(out: &mut [u8], pos: &mut usize, v: usize) {
    let (nibble, n) = extended(v);
    let bytes: [u8; 2] = match nibble {
        13 => [(v - 13) as u8, 0],
        14 => ((v - 269) as u16).to_be_bytes(),
        _ => [0, 0],
    };
    for b in bytes.iter().take(n) {
        if let Some(slot) = out.get_mut(*pos) {
            *slot = *b;
        }
        *pos += 1;
    }
}

impl<'a> Repr<'a> {
    /// A message with no options and no payload.
    pub fn new(kind: Kind, code: Code, message_id: u16, token: &'a [u8]) -> Self {
        Self {
            kind,
            code,
            message_id,
            token,
            options: Options::new(),
            payload: &[],
        }
    }

    /// Inserts an option after every option with a number ≤ its own, keeping the list
    /// sorted and the order among equal numbers.
    pub fn push_option(&mut self, option: CoapOption<'a>) -> Result<(), Error> {
        self.options
            .push(option)
            .map_err(|_| Error::TooManyOptions {
                capacity: MAX_OPTIONS,
            })?;
        // Move it before every option with a greater number (after equal ones), by swaps: an
        // insert would link `memmove` (1.6 KB on Cortex-M) for a handful of options.
        let opts = self.options.as_mut_slice();
        let mut i = opts.len().saturating_sub(1);
        while i > 0 {
            match (opts.get(i - 1), opts.get(i)) {
                (Some(a), Some(b)) if a.number > b.number => opts.swap(i - 1, i),
                _ => break,
            }
            i -= 1;
        }
        Ok(())
    }

    /// The first option with this number.
    pub fn option(&self, number: OptionNumber) -> Option<&CoapOption<'a>> {
        self.options.iter().find(|o| o.number == number)
    }

    /// All options with this number, in order.
    pub fn options_of(&self, number: OptionNumber) -> impl Iterator<Item = &CoapOption<'a>> {
        self.options.iter().filter(move |o| o.number == number)
    }

    /// The first critical option not in `known` (see [`first_unrecognized_critical`]).
    pub fn first_unrecognized_critical(&self, known: &[OptionNumber]) -> Option<OptionNumber> {
        first_unrecognized_critical(self.options.iter(), known)
    }

    /// Parses a message: checks version 1, token length, every option, the payload marker
    /// rule and the Empty-message rule (RFC 7252 §3, §4.1).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(msg: &Message<&'a T>) -> Result<Self, Error> {
        let inner: &'a T = msg.buffer;
        Self::parse_bytes(inner.as_ref())
    }

    /// [`parse`](Self::parse) straight from bytes.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let msg = Message::new_checked(bytes)?;
        if msg.version() != VERSION {
            return Err(Malformed::Version(msg.version()).into());
        }
        if msg.code().is_empty() && bytes.len() != field::HEADER_LEN {
            return Err(Malformed::NonEmptyEmptyMessage.into());
        }
        let mut options = Options::new();
        let mut it = OptionsIter::new(bytes, msg.header_len());
        for o in it.by_ref() {
            options.push(o?).map_err(|_| Error::TooManyOptions {
                capacity: MAX_OPTIONS,
            })?;
        }
        let payload = it.payload_start.and_then(|s| bytes.get(s..)).unwrap_or(&[]);
        Ok(Self {
            kind: msg.kind(),
            code: msg.code(),
            message_id: msg.message_id(),
            token: bytes
                .get(field::TOKEN(usize::from(msg.token_len())))
                .unwrap_or(&[]),
            options,
            payload,
        })
    }

    /// Checks what [`emit`](Self::emit) requires: token ≤ 8 bytes, options sorted, values
    /// ≤ 65804 bytes, an Empty message with nothing after the header.
    pub fn validate(&self) -> Result<(), Error> {
        if self.token.len() > MAX_TOKEN_LEN {
            return Err(Misuse::TokenTooLong.into());
        }
        if self.code.is_empty()
            && (!self.token.is_empty() || !self.options.is_empty() || !self.payload.is_empty())
        {
            return Err(Misuse::EmptyMessageWithContent.into());
        }
        let mut prev = 0u16;
        for o in &self.options {
            if o.number.0 < prev {
                return Err(Misuse::OptionsNotSorted.into());
            }
            if o.value().len() > MAX_OPTION_VALUE_LEN {
                return Err(Misuse::OptionValueTooLong.into());
            }
            prev = o.number.0;
        }
        Ok(())
    }

    /// Bytes [`emit`](Self::emit) writes (for a valid Repr).
    pub fn buffer_len(&self) -> usize {
        let mut len = field::HEADER_LEN + self.token.len();
        let mut prev = 0u16;
        for o in &self.options {
            let delta = usize::from(o.number.0.wrapping_sub(prev));
            let vlen = o.value().len();
            len += 1 + extended(delta).1 + extended(vlen).1 + vlen;
            prev = o.number.0;
        }
        if !self.payload.is_empty() {
            len += 1 + self.payload.len();
        }
        len
    }

    /// Length of the clear part (header + token) of the emitted message.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.token.len()
    }

    /// Writes the message to the start of `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        self.validate()?;
        let required = self.buffer_len();
        if buffer.len() < required {
            return Err(Error::BufferTooSmall { required });
        }
        let out = buffer
            .get_mut(..required)
            .ok_or(Error::BufferTooSmall { required })?;
        {
            let mut msg = Message::new_unchecked(&mut *out);
            msg.set_byte(field::VER_T_TKL, 0);
            msg.set_version(VERSION);
            msg.set_kind(self.kind);
            msg.set_token_len(self.token.len() as u8);
            msg.set_code(self.code);
            msg.set_message_id(self.message_id);
            for (dst, src) in msg.token_mut().iter_mut().zip(self.token) {
                *dst = *src;
            }
        }
        let mut pos = field::HEADER_LEN + self.token.len();
        let mut prev = 0u16;
        for o in &self.options {
            let delta = usize::from(o.number.0 - prev);
            let value = o.value();
            let (dn, _) = extended(delta);
            let (ln, _) = extended(value.len());
            if let Some(b) = out.get_mut(pos) {
                *b = (dn << 4) | ln;
            }
            pos += 1;
            write_extended(out, &mut pos, delta);
            write_extended(out, &mut pos, value.len());
            if let Some(dst) = out.get_mut(pos..pos + value.len()) {
                dst.copy_from_slice(value);
            }
            pos += value.len();
            prev = o.number.0;
        }
        if !self.payload.is_empty() {
            if let Some(b) = out.get_mut(pos) {
                *b = PAYLOAD_MARKER;
            }
            pos += 1;
            if let Some(dst) = out.get_mut(pos..pos + self.payload.len()) {
                dst.copy_from_slice(self.payload);
            }
            pos += self.payload.len();
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests;
