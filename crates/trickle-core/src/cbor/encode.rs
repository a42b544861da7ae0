//! JSON → CBOR: an iterative RFC 8259 parser that writes deterministic CBOR as it goes.
//!
//! Containers get a one-byte placeholder head; when one closes, a map's entries are sorted in
//! place by the bytes of their encoded keys (RFC 8949 §4.2.1) and the head is rewritten with
//! the final count, shifting the body when the count needs a longer head.

use super::error::{Error, Limit, Malformed, Unsupported, malformed, unsupported};
use super::float::{Float, shortest};
use super::head::{Sink, head_len, skip_item, write_head};
use super::table::{Reference, Table, reference_for};
use super::{Limits, MAX_DEPTH};

/// Longest decoded string compared against a table; longer strings are never substituted.
const SCRATCH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Array,
    Object,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: Kind,
    /// Output offset of the container's one-byte placeholder head.
    hdr: usize,
    /// Input offset of `[` / `{`.
    start: usize,
    count: u64,
}

/// Transcodes one JSON text into deterministic CBOR with substitution `table`, writing into
/// `out`; returns the number of bytes written.
///
/// Integers in `-2^64..2^64` become CBOR integers (major types 0/1); other integers, and
/// numbers with a fraction or exponent, become the shortest float (f16, f32 or f64) equal to
/// the nearest double. Object keys are replaced by table integers, string values by table
/// references; everything else stays text. Duplicate keys, invalid UTF-8, lone surrogates and
/// non-finite numbers are errors. On [`Error::BufferTooSmall`] the whole input was checked up to
/// map-key duplicates in the part that did not fit.
pub fn json_to_cbor(
    json: &[u8],
    table: &Table,
    limits: &Limits,
    out: &mut [u8],
) -> Result<usize, Error> {
    if let Err(e) = core::str::from_utf8(json) {
        return Err(malformed(e.valid_up_to(), Malformed::InvalidUtf8));
    }
    let mut p = Parser { src: json, pos: 0 };
    let mut sink = Sink::new(out);
    let mut stack: heapless::Vec<Frame, MAX_DEPTH> = heapless::Vec::new();
    let max_depth = limits.depth();
    let mut items: usize = 0;
    let mut need_value = true;
    loop {
        p.skip_ws();
        if need_value {
            items = items.saturating_add(1);
            if items > limits.max_items {
                return Err(Error::LimitExceeded {
                    at: p.pos,
                    limit: Limit::Items,
                });
            }
            let at = p.pos;
            match p.peek()? {
                c @ (b'{' | b'[') => {
                    let kind = if c == b'{' { Kind::Object } else { Kind::Array };
                    let frame = Frame {
                        kind,
                        hdr: sink.len,
                        start: at,
                        count: 0,
                    };
                    if stack.len() >= max_depth || stack.push(frame).is_err() {
                        return Err(Error::LimitExceeded {
                            at,
                            limit: Limit::Depth,
                        });
                    }
                    p.pos += 1;
                    sink.put(&[if kind == Kind::Object { 0xa0 } else { 0x80 }]);
                    p.skip_ws();
                    let close = if kind == Kind::Object { b'}' } else { b']' };
                    if p.peek()? == close {
                        p.pos += 1;
                        stack.pop();
                        need_value = false;
                        continue;
                    }
                    if kind == Kind::Object {
                        p.key(table, &mut sink, limits, &mut items)?;
                    }
                    continue;
                }
                b'"' => p.string_value(table, &mut sink)?,
                b't' => p.literal(b"true", 0xf5, &mut sink)?,
                b'f' => p.literal(b"false", 0xf4, &mut sink)?,
                b'n' => p.literal(b"null", 0xf6, &mut sink)?,
                b'-' | b'0'..=b'9' => p.number(&mut sink)?,
                _ => return Err(malformed(at, Malformed::UnexpectedByte)),
            }
            need_value = false;
            continue;
        }
        let Some(frame) = stack.last_mut() else {
            if p.pos < json.len() {
                return Err(malformed(p.pos, Malformed::TrailingData));
            }
            return sink.finish();
        };
        frame.count = frame.count.saturating_add(1);
        let at = p.pos;
        match (p.peek()?, frame.kind) {
            (b',', kind) => {
                p.pos += 1;
                if kind == Kind::Object {
                    p.skip_ws();
                    p.key(table, &mut sink, limits, &mut items)?;
                }
                need_value = true;
            }
            (b']', Kind::Array) | (b'}', Kind::Object) => {
                p.pos += 1;
                let frame = *frame;
                stack.pop();
                close(&mut sink, &frame)?;
            }
            _ => return Err(malformed(at, Malformed::UnexpectedByte)),
        }
    }
}

/// Finishes a container: sorts a map's entries and writes the final head.
fn close(sink: &mut Sink<'_>, frame: &Frame) -> Result<(), Error> {
    let body_start = frame.hdr + 1;
    let major = if frame.kind == Kind::Object { 5 } else { 4 };
    if frame.kind == Kind::Object && frame.count > 1 && sink.fits() {
        let (head, tail) = sink.buf.split_at_mut(sink.len);
        if let Some(body) = head.get_mut(body_start..) {
            if !sort_with_scratch(body, tail, frame.count, frame.start)? {
                sort_entries(body, frame.start)?;
            }
        }
    }
    let h = head_len(frame.count);
    if h > 1 {
        let old_end = sink.len;
        sink.len = sink.len.saturating_add(h - 1);
        if sink.fits() {
            sink.buf
                .copy_within(body_start..old_end, body_start + h - 1);
        }
    }
    if let Some(dst) = sink.buf.get_mut(frame.hdr..frame.hdr + h) {
        write_head(dst, major, frame.count);
    }
    Ok(())
}

/// Bytes of scratch per entry for [`sort_with_scratch`]: start and end offsets as `u32`.
const INDEX_RECORD: usize = 8;

/// O(k log k) sort for maps of more than a few entries, using the unused tail of the output
/// buffer as scratch: an index of entry offsets (heap-sorted by key bytes) and a copy of the
/// body. Returns `false`, touching nothing, when the tail is too small; the caller then uses
/// the in-place [`sort_entries`].
fn sort_with_scratch(
    body: &mut [u8],
    tail: &mut [u8],
    count: u64,
    at: usize,
) -> Result<bool, Error> {
    let Ok(k) = usize::try_from(count) else {
        return Ok(false);
    };
    let index_len = k.saturating_mul(INDEX_RECORD);
    if k <= 8 || u32::try_from(body.len()).is_err() {
        return Ok(false);
    }
    let Some(need) = index_len.checked_add(body.len()) else {
        return Ok(false);
    };
    if tail.len() < need {
        return Ok(false);
    }
    let (index, rest) = tail.split_at_mut(index_len);
    let copy = rest.get_mut(..body.len()).unwrap_or(&mut []);
    // Index: (start, end) of each entry.
    let mut pos = 0usize;
    for rec in index.chunks_exact_mut(INDEX_RECORD) {
        let end = skip_item(body, skip_item(body, pos)?)?;
        rec[..4].copy_from_slice(&(pos as u32).to_be_bytes());
        rec[4..].copy_from_slice(&(end as u32).to_be_bytes());
        pos = end;
    }
    let key = |index: &[u8], i: usize| -> &[u8] {
        let start = record(index, i).0;
        let end = skip_item(body, start).unwrap_or(start);
        body.get(start..end).unwrap_or(&[])
    };
    // Heapsort of the records by key bytes.
    let swap = |index: &mut [u8], a: usize, b: usize| {
        for j in 0..INDEX_RECORD {
            index.swap(a * INDEX_RECORD + j, b * INDEX_RECORD + j);
        }
    };
    let sift = |index: &mut [u8], mut root: usize, n: usize| loop {
        let mut child = 2 * root + 1;
        if child >= n {
            break;
        }
        if child + 1 < n && key(index, child) < key(index, child + 1) {
            child += 1;
        }
        if key(index, root) >= key(index, child) {
            break;
        }
        swap(index, root, child);
        root = child;
    };
    for root in (0..k / 2).rev() {
        sift(index, root, k);
    }
    for end in (1..k).rev() {
        swap(index, 0, end);
        sift(index, 0, end);
    }
    for i in 1..k {
        if key(index, i - 1) == key(index, i) {
            return Err(malformed(at, Malformed::DuplicateKey));
        }
    }
    copy.copy_from_slice(body);
    let mut out = 0usize;
    for i in 0..k {
        let (start, end) = record(index, i);
        if let (Some(src), Some(dst)) = (copy.get(start..end), body.get_mut(out..out + end - start))
        {
            dst.copy_from_slice(src);
        }
        out += end - start;
    }
    Ok(true)
}

/// Entry `i` of a [`sort_with_scratch`] index: (start, end).
fn record(index: &[u8], i: usize) -> (usize, usize) {
    let mut r = [0u8; INDEX_RECORD];
    if let Some(src) = index.get(i * INDEX_RECORD..(i + 1) * INDEX_RECORD) {
        r.copy_from_slice(src);
    }
    let start = u32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
    let end = u32::from_be_bytes([r[4], r[5], r[6], r[7]]) as usize;
    (start, end.max(start))
}

/// Insertion sort of the map entries in `body` by the bytes of their encoded keys, rotating
/// entries into place. Equal keys are duplicates.
fn sort_entries(body: &mut [u8], at: usize) -> Result<(), Error> {
    use core::cmp::Ordering;
    let mut sorted_end = 0;
    // Start of the last (largest) sorted entry: input that is already in order costs one
    // comparison per entry.
    let mut last: Option<usize> = None;
    while sorted_end < body.len() {
        let key_end = skip_item(body, sorted_end)?;
        let entry_end = skip_item(body, key_end)?;
        let entry_len = entry_end - sorted_end;
        if let Some(l) = last {
            let l_end = skip_item(body, l)?;
            if body.get(l..l_end) < body.get(sorted_end..key_end) {
                last = Some(sorted_end);
                sorted_end = entry_end;
                continue;
            }
        }
        let mut pos = 0;
        while pos < sorted_end {
            let k_end = skip_item(body, pos)?;
            let (Some(a), Some(b)) = (body.get(pos..k_end), body.get(sorted_end..key_end)) else {
                break;
            };
            match a.cmp(b) {
                Ordering::Less => pos = skip_item(body, k_end)?,
                Ordering::Equal => return Err(malformed(at, Malformed::DuplicateKey)),
                Ordering::Greater => break,
            }
        }
        if let Some(s) = body.get_mut(pos..entry_end) {
            s.rotate_right(entry_len);
        }
        // The previous largest entry moved right by the inserted entry's length.
        last = Some(match last {
            Some(l) if pos <= l => l + entry_len,
            Some(l) => l,
            None => pos,
        });
        sorted_end = entry_end;
    }
    Ok(())
}

fn put_head(sink: &mut Sink<'_>, major: u8, arg: u64) {
    let mut h = [0u8; 9];
    let n = head_len(arg);
    write_head(&mut h[..n], major, arg);
    sink.put(&h[..n]);
}

/// Writes an integer in `-2^64..2^64` with the shortest head.
pub(crate) fn put_int(sink: &mut Sink<'_>, v: i128) {
    if v >= 0 {
        put_head(sink, 0, v as u64);
    } else {
        put_head(sink, 1, (-1 - v) as u64);
    }
}

fn put_float(sink: &mut Sink<'_>, v: f64) {
    match shortest(v) {
        Float::F16(h) => {
            let b = h.to_be_bytes();
            sink.put(&[0xf9, b[0], b[1]]);
        }
        Float::F32(f) => {
            sink.put(&[0xfa]);
            sink.put(&f.to_be_bytes());
        }
        Float::F64(d) => {
            sink.put(&[0xfb]);
            sink.put(&d.to_be_bytes());
        }
    }
}

/// Writes the shared-item reference for table index `index`.
pub(crate) fn put_reference(sink: &mut Sink<'_>, index: usize) {
    match reference_for(index) {
        Reference::Simple(s) => sink.put(&[0xe0 | s]),
        Reference::Tagged(n) => {
            sink.put(&[0xc6]);
            put_int(sink, n);
        }
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Result<u8, Error> {
        self.src
            .get(self.pos)
            .copied()
            .ok_or(malformed(self.pos, Malformed::UnexpectedEnd))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.src.get(self.pos) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], byte: u8, sink: &mut Sink<'_>) -> Result<(), Error> {
        for (i, w) in word.iter().enumerate() {
            match self.src.get(self.pos + i) {
                Some(c) if c == w => {}
                Some(_) => return Err(malformed(self.pos + i, Malformed::UnexpectedByte)),
                None => return Err(malformed(self.pos + i, Malformed::UnexpectedEnd)),
            }
        }
        self.pos += word.len();
        sink.put(&[byte]);
        Ok(())
    }

    /// Parses `"key" :` and writes the key (an integer if the table has it).
    fn key(
        &mut self,
        table: &Table,
        sink: &mut Sink<'_>,
        limits: &Limits,
        items: &mut usize,
    ) -> Result<(), Error> {
        *items = items.saturating_add(1);
        if *items > limits.max_items {
            return Err(Error::LimitExceeded {
                at: self.pos,
                limit: Limit::Items,
            });
        }
        if self.peek()? != b'"' {
            return Err(malformed(self.pos, Malformed::UnexpectedByte));
        }
        let start = self.pos;
        let (end, len, scratch) = scan_string(self.src, start)?;
        match scratch
            .as_ref()
            .and_then(|s| s.get(..len))
            .and_then(|s| table.key_number_bytes(s))
        {
            Some(k) => put_int(sink, i128::from(k)),
            None => emit_string(self.src, start, len, sink)?,
        }
        self.pos = end;
        self.skip_ws();
        match self.peek()? {
            b':' => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(malformed(self.pos, Malformed::UnexpectedByte)),
        }
    }

    fn string_value(&mut self, table: &Table, sink: &mut Sink<'_>) -> Result<(), Error> {
        let start = self.pos;
        let (end, len, scratch) = scan_string(self.src, start)?;
        let index = if table.has_values() {
            scratch
                .as_ref()
                .and_then(|s| s.get(..len))
                .and_then(|s| table.value_index_bytes(s))
        } else {
            None
        };
        match index {
            Some(i) => put_reference(sink, i),
            None => emit_string(self.src, start, len, sink)?,
        }
        self.pos = end;
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let s = self.pos;
        while let Some(b'0'..=b'9') = self.src.get(self.pos) {
            self.pos += 1;
        }
        self.pos - s
    }

    fn number(&mut self, sink: &mut Sink<'_>) -> Result<(), Error> {
        let start = self.pos;
        let bad = |at| malformed(at, Malformed::InvalidNumber);
        let negative = self.src.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.src.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(bad(self.pos)),
        }
        let int_end = self.pos;
        let mut integral = true;
        if self.src.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            integral = false;
            if self.digits() == 0 {
                return Err(bad(self.pos));
            }
        }
        if let Some(b'e' | b'E') = self.src.get(self.pos) {
            self.pos += 1;
            integral = false;
            if let Some(b'+' | b'-') = self.src.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(bad(self.pos));
            }
        }
        if integral {
            let mut mag: u128 = 0;
            let mut fits = true;
            for d in self.src.get(int_start..int_end).unwrap_or(&[]) {
                mag = mag * 10 + u128::from(d - b'0');
                if mag > 1u128 << 64 {
                    fits = false;
                    break;
                }
            }
            if fits && negative && mag == 0 {
                // "-0" is kept as a float -0.0, as serde_json reads it.
                put_float(sink, -0.0);
                return Ok(());
            }
            if fits && (negative || mag < 1u128 << 64) {
                let v = if negative {
                    -(mag as i128)
                } else {
                    mag as i128
                };
                put_int(sink, v);
                return Ok(());
            }
        }
        let text = self
            .src
            .get(start..self.pos)
            .and_then(|t| core::str::from_utf8(t).ok())
            .ok_or(bad(start))?;
        let v: f64 = text.parse().map_err(|_| bad(start))?;
        if !v.is_finite() {
            return Err(unsupported(start, Unsupported::NonFiniteNumber));
        }
        put_float(sink, v);
        Ok(())
    }
}

/// Validates the JSON string at `start` (its opening quote). Returns the offset after the
/// closing quote, the decoded length, and the decoded bytes if they fit [`SCRATCH`].
fn scan_string(src: &[u8], start: usize) -> Result<(usize, usize, Option<[u8; SCRATCH]>), Error> {
    let mut scratch = [0u8; SCRATCH];
    let mut len = 0usize;
    let end = decode_string(src, start, |chunk| {
        if let Some(dst) = scratch.get_mut(len..len + chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        len += chunk.len();
    })?;
    Ok((end, len, if len <= SCRATCH { Some(scratch) } else { None }))
}

/// Writes the JSON string at `start` (known valid, decoded length `len`) as CBOR text.
fn emit_string(src: &[u8], start: usize, len: usize, sink: &mut Sink<'_>) -> Result<(), Error> {
    put_head(sink, 3, len as u64);
    decode_string(src, start, |chunk| sink.put(chunk))?;
    Ok(())
}

fn hex4(src: &[u8], at: usize) -> Result<u32, Error> {
    let mut v = 0u32;
    for i in 0..4 {
        let c = *src
            .get(at + i)
            .ok_or(malformed(at + i, Malformed::UnexpectedEnd))?;
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(malformed(at + i, Malformed::InvalidEscape)),
        };
        v = (v << 4) | u32::from(d);
    }
    Ok(v)
}

/// Decodes the JSON string whose opening quote is at `start` (input already valid UTF-8),
/// handing decoded UTF-8 chunks to `out`. Returns the offset after the closing quote.
fn decode_string(src: &[u8], start: usize, mut out: impl FnMut(&[u8])) -> Result<usize, Error> {
    let mut i = start + 1;
    loop {
        let run = i;
        while let Some(&c) = src.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                break;
            }
            i += 1;
        }
        if let Some(chunk) = src.get(run..i) {
            if !chunk.is_empty() {
                out(chunk);
            }
        }
        match src.get(i) {
            None => return Err(malformed(i, Malformed::UnexpectedEnd)),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => {
                let esc = *src
                    .get(i + 1)
                    .ok_or(malformed(i + 1, Malformed::UnexpectedEnd))?;
                let simple = match esc {
                    b'"' => Some(b'"'),
                    b'\\' => Some(b'\\'),
                    b'/' => Some(b'/'),
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'u' => None,
                    _ => return Err(malformed(i, Malformed::InvalidEscape)),
                };
                if let Some(b) = simple {
                    out(&[b]);
                    i += 2;
                    continue;
                }
                let hi = hex4(src, i + 2)?;
                let cp = match hi {
                    0xd800..=0xdbff => {
                        if src.get(i + 6) != Some(&b'\\') || src.get(i + 7) != Some(&b'u') {
                            return Err(malformed(i, Malformed::LoneSurrogate));
                        }
                        let lo = hex4(src, i + 8)?;
                        if !(0xdc00..=0xdfff).contains(&lo) {
                            return Err(malformed(i, Malformed::LoneSurrogate));
                        }
                        i += 12;
                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(malformed(i, Malformed::LoneSurrogate)),
                    _ => {
                        i += 6;
                        hi
                    }
                };
                let ch = char::from_u32(cp).ok_or(malformed(i, Malformed::LoneSurrogate))?;
                let mut buf = [0u8; 4];
                out(ch.encode_utf8(&mut buf).as_bytes());
            }
            Some(_) => return Err(malformed(i, Malformed::ControlCharacter)),
        }
    }
}
