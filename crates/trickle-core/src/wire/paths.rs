//! Endpoint codes: Matrix client-server HTTP paths ↔ CoAP `Uri-Path` / `Uri-Query` options.
//!
//! MSC3079 replaces the fixed part of a Matrix client-server path with a one-byte code sent as
//! the first `Uri-Path` option; each path parameter follows as its own `Uri-Path` option, read
//! left to right. `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}` becomes the
//! options `9`, `{roomId}`, `{eventType}`, `{txnId}`; `GET /_matrix/client/v3/sync` becomes `7`.
//!
//! Two tables exist ([`Table`]): [`MSC3079_V1`] exactly as MSC3079 defines it, and
//! `trickle-v1` = MSC3079 v1 plus [`TRICKLE_V1_EXTRA`]. Both `r0` and `v3` HTTP paths map to
//! the same code; expansion writes `v3` by default ([`ApiVersion`]).
//!
//! CoAP option values are percent-*decoded* text; HTTP segments are percent-*encoded*
//! (RFC 3986 `pchar`). Paths that match no entry travel uncompressed: every HTTP segment
//! becomes a `Uri-Path` option (so the first option is never one byte long, since it would
//! read as a code). Query items become `Uri-Query` options, decoded (`+` is a space, as
//! homeservers read it).
//!
//! Nothing here allocates: parsing borrows from the input, and writes decoded bytes into a
//! caller scratch buffer only where a segment contains `%` (or `+` in a query).
//!
//! The *text form* (`/9/!room:server/m.room.message/txn1`, as MSC3079 writes examples) is what
//! the CLI prints: `/` + segments joined by `/`, then `?` + query items joined by `&`. In a
//! segment `%`, `/` and `?` are written `%25`, `%2F`, `%3F`; in a query item `%` and `&` are
//! written `%25`, `%26`. Reading the text form decodes every `%XX`.
//!
//! ```
//! use trickle_core::wire::paths::{ApiVersion, CoapPath, Table};
//!
//! let mut scratch = [0u8; 32];
//! let target = "/_matrix/client/r0/join/%23room:example.org?server_name=example.org";
//! let p = CoapPath::from_http(target, Table::TrickleV1, &mut scratch)?;
//! assert_eq!(p.segments.as_slice(), ["L", "#room:example.org"]);
//! assert_eq!(p.queries.as_slice(), ["server_name=example.org"]);
//! let mut out = [0u8; 96];
//! let n = p.write_http_to_slice(Table::TrickleV1, ApiVersion::V3, &mut out)?;
//! assert_eq!(&out[..n], b"/_matrix/client/v3/join/%23room:example.org?server_name=example.org");
//! # Ok::<(), trickle_core::wire::Error>(())
//! ```

use core::fmt::{self, Write};

use super::coap::{CoapOption, OptionNumber, Repr};
use super::{Error, Malformed, Misuse};

/// The HTTP API family an endpoint lives under, which fixes the version segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Api {
    /// `/_matrix/client/{rest}` (only `versions`).
    Unversioned,
    /// `/_matrix/client/r0/{rest}` or `/_matrix/client/v3/{rest}`.
    Legacy,
    /// `/_matrix/client/v1/{rest}`.
    V1,
    /// `/_matrix/client/v3/{rest}` only (no `r0` form exists).
    V3,
}

/// Version segment written when expanding [`Api::Legacy`] endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ApiVersion {
    /// `v3` (current spec).
    #[default]
    V3,
    /// `r0` (as MSC3079 writes its table).
    R0,
}

/// One endpoint-code entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Endpoint {
    /// The code: one ASCII byte, sent as a one-byte `Uri-Path` option.
    pub code: &'static str,
    /// Family (fixes the version segment).
    pub api: Api,
    /// The path after the version segment; `{name}` marks a parameter.
    pub rest: &'static str,
}

impl Endpoint {
    /// The code byte.
    pub fn code_byte(&self) -> u8 {
        self.code.as_bytes().first().copied().unwrap_or(0)
    }

    /// Number of `{parameters}`.
    pub fn param_count(&self) -> usize {
        self.rest.split('/').filter(|s| is_param(s)).count()
    }

    /// Writes the HTTP template, e.g. `/_matrix/client/r0/rooms/{roomId}/state`.
    pub fn write_template<W: Write>(&self, version: ApiVersion, out: &mut W) -> fmt::Result {
        out.write_str(self.prefix(version))?;
        out.write_str(self.rest)
    }

    fn prefix(&self, version: ApiVersion) -> &'static str {
        match (self.api, version) {
            (Api::Unversioned, _) => "/_matrix/client/",
            (Api::Legacy, ApiVersion::R0) => "/_matrix/client/r0/",
            (Api::Legacy, ApiVersion::V3) | (Api::V3, _) => "/_matrix/client/v3/",
            (Api::V1, _) => "/_matrix/client/v1/",
        }
    }

    /// Does this entry match the raw HTTP segments (after the leading `/`)?
    fn matches<'s>(&self, segs: impl Iterator<Item = &'s str> + Clone) -> bool {
        let mut segs = segs;
        if segs.next() != Some("_matrix") || segs.next() != Some("client") {
            return false;
        }
        let version_ok = match self.api {
            Api::Unversioned => true,
            Api::Legacy => matches!(segs.next(), Some("r0" | "v3")),
            Api::V1 => segs.next() == Some("v1"),
            Api::V3 => segs.next() == Some("v3"),
        };
        if !version_ok {
            return false;
        }
        let mut tmpl = self.rest.split('/');
        loop {
            match (tmpl.next(), segs.next()) {
                (None, None) => return true,
                (Some(t), Some(s)) if is_param(t) || t == s => {}
                _ => return false,
            }
        }
    }
}

fn is_param(s: &str) -> bool {
    s.starts_with('{') && s.ends_with('}')
}

const fn e(code: &'static str, api: Api, rest: &'static str) -> Endpoint {
    Endpoint { code, api, rest }
}

use Api::{Legacy as L, Unversioned as U};

/// MSC3079 v1 path codes, byte-exact (`r0` in MSC3079; `v3` accepted too).
pub static MSC3079_V1: [Endpoint; 57] = [
    e("0", U, "versions"),
    e("1", L, "login"),
    e("2", L, "capabilities"),
    e("3", L, "logout"),
    e("4", L, "register"),
    e("5", L, "user/{userId}/filter"),
    e("6", L, "user/{userId}/filter/{filterId}"),
    e("7", L, "sync"),
    e("8", L, "rooms/{roomId}/state/{eventType}/{stateKey}"),
    e("9", L, "rooms/{roomId}/send/{eventType}/{txnId}"),
    e("A", L, "rooms/{roomId}/event/{eventId}"),
    e("B", L, "rooms/{roomId}/state"),
    e("C", L, "rooms/{roomId}/members"),
    e("D", L, "rooms/{roomId}/joined_members"),
    e("E", L, "rooms/{roomId}/messages"),
    e("F", L, "rooms/{roomId}/redact/{eventId}/{txnId}"),
    e("G", L, "createRoom"),
    e("H", L, "directory/room/{roomAlias}"),
    e("I", L, "joined_rooms"),
    e("J", L, "rooms/{roomId}/invite"),
    e("K", L, "rooms/{roomId}/join"),
    e("L", L, "join/{roomIdOrAlias}"),
    e("M", L, "rooms/{roomId}/leave"),
    e("N", L, "rooms/{roomId}/forget"),
    e("O", L, "rooms/{roomId}/kick"),
    e("P", L, "rooms/{roomId}/ban"),
    e("Q", L, "rooms/{roomId}/unban"),
    e("R", L, "directory/list/room/{roomId}"),
    e("S", L, "publicRooms"),
    e("T", L, "user_directory/search"),
    e("U", L, "profile/{userId}/displayname"),
    e("V", L, "profile/{userId}/avatar_url"),
    e("W", L, "profile/{userId}"),
    e("X", L, "voip/turnServer"),
    e("Y", L, "rooms/{roomId}/typing/{userId}"),
    e("Z", L, "rooms/{roomId}/receipt/{receiptType}/{eventId}"),
    e("a", L, "rooms/{roomId}/read_markers"),
    e("b", L, "presence/{userId}/status"),
    e("c", L, "sendToDevice/{eventType}/{txnId}"),
    e("d", L, "devices"),
    e("e", L, "devices/{deviceId}"),
    e("f", L, "delete_devices"),
    e("g", L, "keys/upload"),
    e("h", L, "keys/query"),
    e("i", L, "keys/claim"),
    e("j", L, "keys/changes"),
    e("k", L, "pushers"),
    e("l", L, "pushers/set"),
    e("m", L, "notifications"),
    e("n", L, "pushrules/"),
    e("o", L, "search"),
    e("p", L, "user/{userId}/rooms/{roomId}/tags"),
    e("q", L, "user/{userId}/rooms/{roomId}/tags/{tag}"),
    e("r", L, "user/{userId}/account_data/{type}"),
    e("s", L, "user/{userId}/rooms/{roomId}/account_data/{type}"),
    e("t", L, "rooms/{roomId}/context/{eventId}"),
    e("u", L, "rooms/{roomId}/report/{eventId}"),
];

/// Trickle's additions in table `trickle-v1` (codes MSC3079 v1 leaves unused); see
/// `docs/PROTOCOL.md` for why each is here.
pub static TRICKLE_V1_EXTRA: [Endpoint; 8] = [
    e("v", L, "account/whoami"),
    e("w", L, "rooms/{roomId}/state/{eventType}"),
    e("x", Api::V1, "rooms/{roomId}/relations/{eventId}"),
    e("y", Api::V1, "rooms/{roomId}/relations/{eventId}/{relType}"),
    e("z", Api::V3, "refresh"),
    e("-", L, "keys/signatures/upload"),
    e("_", L, "keys/device_signing/upload"),
    e("~", Api::V1, "rooms/{roomId}/threads"),
];

/// Which code table is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Table {
    /// MSC3079 v1 only.
    Msc3079V1,
    /// MSC3079 v1 plus [`TRICKLE_V1_EXTRA`].
    #[default]
    TrickleV1,
}

impl Table {
    /// Every entry, MSC3079 v1 first.
    pub fn endpoints(self) -> impl Iterator<Item = &'static Endpoint> + Clone {
        let extra: &'static [Endpoint] = match self {
            Table::Msc3079V1 => &[],
            Table::TrickleV1 => &TRICKLE_V1_EXTRA,
        };
        MSC3079_V1.iter().chain(extra.iter())
    }

    /// The entry for a code byte.
    pub fn lookup(self, code: u8) -> Option<&'static Endpoint> {
        self.endpoints().find(|e| e.code_byte() == code)
    }

    /// The table's name as `docs/PROTOCOL.md` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Table::Msc3079V1 => "msc3079-v1",
            Table::TrickleV1 => "trickle-v1",
        }
    }

    /// The entry matching an HTTP path (without query), if any.
    pub fn match_http(self, path: &str) -> Option<&'static Endpoint> {
        let rest = path.strip_prefix('/')?;
        self.endpoints().find(|e| e.matches(rest.split('/')))
    }
}

/// Most `Uri-Path` segments a [`CoapPath`] holds (code + 4 parameters, or an uncompressed path
/// of up to 12 segments).
pub const MAX_SEGMENTS: usize = 12;
/// Most query items a [`CoapPath`] holds.
pub const MAX_QUERIES: usize = 8;

/// A request target as CoAP carries it: decoded `Uri-Path` segments (the first one an endpoint
/// code when compressed) and decoded `Uri-Query` items.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoapPath<'a> {
    /// `Uri-Path` option values, in order.
    pub segments: heapless::Vec<&'a str, MAX_SEGMENTS>,
    /// `Uri-Query` option values, in order.
    pub queries: heapless::Vec<&'a str, MAX_QUERIES>,
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `raw`, calling `emit` per byte; returns the decoded length.
fn pct_decode(
    raw: &str,
    plus_is_space: bool,
    mut emit: impl FnMut(usize, u8),
) -> Result<usize, Error> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while let Some(&b) = bytes.get(i) {
        let out = match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        i += 2;
                        (hi << 4) | lo
                    }
                    _ => return Err(Malformed::PercentEncoding.into()),
                }
            }
            b'+' if plus_is_space => b' ',
            other => other,
        };
        emit(n, out);
        n += 1;
        i += 1;
    }
    Ok(n)
}

fn needs_decoding(raw: &str, plus_is_space: bool) -> bool {
    raw.bytes()
        .any(|b| b == b'%' || (plus_is_space && b == b'+'))
}

/// Hands out decoded strings from a caller scratch buffer.
struct Scratch<'a> {
    buf: &'a mut [u8],
}

impl<'a> Scratch<'a> {
    /// Checks up front that `buf` can hold every decoded segment and query item that differs
    /// from its input, so that a short buffer is reported with the whole requirement.
    fn new<'s>(
        buf: &'a mut [u8],
        segments: impl Iterator<Item = &'s str>,
        queries: impl Iterator<Item = &'s str>,
        query_plus_is_space: bool,
    ) -> Result<Self, Error> {
        let required = scratch_needed(segments, false)?
            .saturating_add(scratch_needed(queries, query_plus_is_space)?);
        if required > buf.len() {
            return Err(Error::BufferTooSmall { required });
        }
        Ok(Self { buf })
    }

    /// `raw` itself if it has nothing to decode, else its decoded form in scratch space.
    fn decode(&mut self, raw: &'a str, plus_is_space: bool) -> Result<&'a str, Error> {
        if !needs_decoding(raw, plus_is_space) {
            return Ok(raw);
        }
        let n = pct_decode(raw, plus_is_space, |_, _| {})?;
        let buf = core::mem::take(&mut self.buf);
        let (head, tail) = buf
            .split_at_mut_checked(n)
            .ok_or(Error::BufferTooSmall { required: n })?;
        self.buf = tail;
        pct_decode(raw, plus_is_space, |i, b| {
            if let Some(slot) = head.get_mut(i) {
                *slot = b;
            }
        })?;
        let head: &'a [u8] = head;
        core::str::from_utf8(head).map_err(|_| Malformed::NotUtf8.into())
    }
}

/// Scratch bytes needed to decode every item of `items` that needs decoding.
fn scratch_needed<'s>(
    items: impl Iterator<Item = &'s str>,
    plus_is_space: bool,
) -> Result<usize, Error> {
    let mut total = 0usize;
    for raw in items {
        if needs_decoding(raw, plus_is_space) {
            total = total.saturating_add(pct_decode(raw, plus_is_space, |_, _| {})?);
        }
    }
    Ok(total)
}

/// RFC 3986 `pchar` minus `%`: bytes a path segment may carry unencoded.
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// Bytes a query item may carry unencoded: `pchar`, `/`, `?`, but not `&` (separator) or `+`
/// (read as a space).
fn is_query_char(b: u8) -> bool {
    (is_pchar(b) || b == b'/' || b == b'?') && b != b'&' && b != b'+'
}

fn write_pct<W: Write>(out: &mut W, b: u8) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
    let lo = HEX.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0');
    out.write_char('%')?;
    out.write_char(char::from(hi))?;
    out.write_char(char::from(lo))
}

/// Writes `s` with every byte for which `keep` is false as `%XX`.
fn write_encoded<W: Write>(out: &mut W, s: &str, keep: impl Fn(u8) -> bool) -> fmt::Result {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if !keep(b) {
            out.write_str(s.get(start..i).unwrap_or(""))?;
            write_pct(out, b)?;
            start = i + 1;
        }
    }
    out.write_str(s.get(start..).unwrap_or(""))
}

/// Writes an HTTP path segment; `.` and `..` are written `%2E` / `%2E%2E` so that they are not
/// dot-segments.
fn write_http_segment<W: Write>(out: &mut W, s: &str) -> fmt::Result {
    if s == "." || s == ".." {
        return write_encoded(out, s, |_| false);
    }
    write_encoded(out, s, is_pchar)
}

/// Counts bytes written.
struct Counter(usize);

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.saturating_add(s.len());
        Ok(())
    }
}

/// Writes into a byte slice; fails when full.
struct SliceWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.pos.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.pos = end;
        Ok(())
    }
}

fn push_seg<'a>(v: &mut heapless::Vec<&'a str, MAX_SEGMENTS>, s: &'a str) -> Result<(), Error> {
    v.push(s).map_err(|_| Error::TooManySegments {
        capacity: MAX_SEGMENTS,
    })
}

fn push_query<'a>(v: &mut heapless::Vec<&'a str, MAX_QUERIES>, s: &'a str) -> Result<(), Error> {
    v.push(s).map_err(|_| Error::TooManySegments {
        capacity: MAX_QUERIES,
    })
}

/// Splits `target` into its path segments (none for `/`) and its query items.
fn split_target(target: &str) -> Result<(Option<&str>, Option<&str>), Error> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let rest = path.strip_prefix('/').ok_or(Malformed::NotAbsolutePath)?;
    Ok(((!rest.is_empty()).then_some(rest), query))
}

fn query_items(query: Option<&str>) -> impl Iterator<Item = &str> + Clone {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|s| !s.is_empty())
}

impl<'a> CoapPath<'a> {
    /// Compresses an HTTP request target (`/_matrix/client/v3/sync?timeout=0`, percent-encoded)
    /// with `table`. Decoded segments that differ from the input are written to `scratch`;
    /// [`Error::BufferTooSmall`] says how much scratch the whole target needs.
    pub fn from_http(target: &'a str, table: Table, scratch: &'a mut [u8]) -> Result<Self, Error> {
        let (path, query) = split_target(target)?;
        let segs = path.into_iter().flat_map(|p| p.split('/'));
        let mut scratch = Scratch::new(scratch, segs.clone(), query_items(query), true)?;
        let mut out = CoapPath::default();
        let endpoint = path.and_then(|p| table.endpoints().find(|e| e.matches(p.split('/'))));
        match endpoint {
            Some(ep) => {
                push_seg(&mut out.segments, ep.code)?;
                // Walk the template alongside the segments after the version segment and
                // take the ones under `{…}`, left to right.
                let skip = match ep.api {
                    Api::Unversioned => 2,
                    _ => 3,
                };
                for (t, s) in ep.rest.split('/').zip(segs.skip(skip)) {
                    if is_param(t) {
                        push_seg(&mut out.segments, scratch.decode(s, false)?)?;
                    }
                }
            }
            None => {
                for s in segs {
                    push_seg(&mut out.segments, scratch.decode(s, false)?)?;
                }
                if out.segments.first().is_some_and(|s| s.len() == 1) {
                    return Err(Misuse::AmbiguousPath.into());
                }
            }
        }
        for q in query_items(query) {
            push_query(&mut out.queries, scratch.decode(q, true)?)?;
        }
        Ok(out)
    }

    /// Collects the `Uri-Path` and `Uri-Query` options of a message.
    pub fn from_repr<'r>(repr: &'r Repr<'_>) -> Result<CoapPath<'r>, Error> {
        Self::from_options(repr.options.iter())
    }

    /// Collects `Uri-Path` and `Uri-Query` options (other options are skipped).
    pub fn from_options<'r, 'o: 'r>(
        options: impl IntoIterator<Item = &'r CoapOption<'o>>,
    ) -> Result<CoapPath<'r>, Error> {
        let mut out = CoapPath::default();
        for o in options {
            let utf8 = || core::str::from_utf8(o.value()).map_err(|_| Malformed::NotUtf8);
            if o.number == OptionNumber::URI_PATH {
                push_seg(&mut out.segments, utf8()?)?;
            } else if o.number == OptionNumber::URI_QUERY {
                push_query(&mut out.queries, utf8()?)?;
            }
        }
        Ok(out)
    }

    /// Adds the segments as `Uri-Path` options and the query items as `Uri-Query` options.
    pub fn push_to_repr(&self, repr: &mut Repr<'a>) -> Result<(), Error> {
        for s in &self.segments {
            repr.push_option(CoapOption::str(OptionNumber::URI_PATH, s))?;
        }
        for q in &self.queries {
            repr.push_option(CoapOption::str(OptionNumber::URI_QUERY, q))?;
        }
        Ok(())
    }

    /// The endpoint this path's code names, if it is compressed (first segment one byte).
    /// Checks the code and the parameter count.
    pub fn endpoint(&self, table: Table) -> Result<Option<&'static Endpoint>, Error> {
        let Some(first) = self.segments.first() else {
            return Ok(None);
        };
        let &[code] = first.as_bytes() else {
            return Ok(None);
        };
        let ep = table.lookup(code).ok_or(Malformed::UnknownPathCode(code))?;
        let found = self.segments.len() - 1;
        let expected = ep.param_count();
        if found != expected {
            return Err(Malformed::ParameterCount {
                code,
                expected: u8::try_from(expected).unwrap_or(u8::MAX),
                found: u8::try_from(found).unwrap_or(u8::MAX),
            }
            .into());
        }
        Ok(Some(ep))
    }

    fn write_http_unchecked<W: Write>(
        &self,
        ep: Option<&Endpoint>,
        version: ApiVersion,
        out: &mut W,
    ) -> fmt::Result {
        match ep {
            Some(ep) => {
                out.write_str(ep.prefix(version))?;
                let mut params = self.segments.iter().skip(1);
                for (i, t) in ep.rest.split('/').enumerate() {
                    if i > 0 {
                        out.write_char('/')?;
                    }
                    if is_param(t) {
                        write_http_segment(out, params.next().copied().unwrap_or(""))?;
                    } else {
                        out.write_str(t)?;
                    }
                }
            }
            None if self.segments.is_empty() => out.write_char('/')?,
            None => {
                for s in &self.segments {
                    out.write_char('/')?;
                    write_http_segment(out, s)?;
                }
            }
        }
        for (i, q) in self.queries.iter().enumerate() {
            out.write_char(if i == 0 { '?' } else { '&' })?;
            write_encoded(out, q, is_query_char)?;
        }
        Ok(())
    }

    /// Length of the expanded HTTP target.
    pub fn http_len(&self, table: Table, version: ApiVersion) -> Result<usize, Error> {
        let ep = self.endpoint(table)?;
        let mut c = Counter(0);
        // A counter never fails.
        let _ = self.write_http_unchecked(ep, version, &mut c);
        Ok(c.0)
    }

    /// Expands to a percent-encoded HTTP request target. If `out` fails, the result is
    /// [`Error::BufferTooSmall`] with the full length.
    pub fn write_http<W: Write>(
        &self,
        table: Table,
        version: ApiVersion,
        out: &mut W,
    ) -> Result<(), Error> {
        let required = self.http_len(table, version)?;
        let ep = self.endpoint(table)?;
        self.write_http_unchecked(ep, version, out)
            .map_err(|_| Error::BufferTooSmall { required })
    }

    /// Expands into `buf`; returns the length written (the bytes are UTF-8).
    pub fn write_http_to_slice(
        &self,
        table: Table,
        version: ApiVersion,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        let mut w = SliceWriter { buf, pos: 0 };
        self.write_http(table, version, &mut w)?;
        Ok(w.pos)
    }

    /// Reads the text form (`/9/!r:server/m.room.message/t1?k=v`); `%XX` is decoded into
    /// `scratch` where present.
    pub fn from_text(text: &'a str, scratch: &'a mut [u8]) -> Result<Self, Error> {
        let (path, query) = split_target(text)?;
        let segs = path.into_iter().flat_map(|p| p.split('/'));
        let mut scratch = Scratch::new(scratch, segs.clone(), query_items(query), false)?;
        let mut out = CoapPath::default();
        for s in segs {
            push_seg(&mut out.segments, scratch.decode(s, false)?)?;
        }
        for q in query_items(query) {
            push_query(&mut out.queries, scratch.decode(q, false)?)?;
        }
        Ok(out)
    }

    /// Writes the text form.
    pub fn write_text<W: Write>(&self, out: &mut W) -> fmt::Result {
        if self.segments.is_empty() {
            out.write_char('/')?;
        }
        for s in &self.segments {
            out.write_char('/')?;
            write_encoded(out, s, |b| !matches!(b, b'%' | b'/' | b'?'))?;
        }
        for (i, q) in self.queries.iter().enumerate() {
            out.write_char(if i == 0 { '?' } else { '&' })?;
            write_encoded(out, q, |b| !matches!(b, b'%' | b'&'))?;
        }
        Ok(())
    }
}

impl fmt::Display for CoapPath<'_> {
    /// The text form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_text(f)
    }
}

#[cfg(test)]
mod tests;
