//! CBOR → JSON: an iterative walk over one CBOR data item that writes compact JSON.

use core::fmt::Write as _;

use super::error::{Error, Limit, Malformed, Unsupported, malformed, unsupported};
use super::float::f16_to_f64;
use super::head::{Head, Sink, head_len, read_head, skip_item};
use super::table::{Table, index_for_tagged};
use super::{Limits, MAX_DEPTH};

#[derive(Debug, Clone, Copy)]
struct Frame {
    is_map: bool,
    /// Elements (or map entries) not yet visited.
    remaining: u64,
    /// Input offset of the first map entry, and the entry count (maps only).
    first: usize,
    entries: u64,
    /// Whether anything was written inside the container yet (for commas).
    written: bool,
    /// Map keys are strictly ascending and no text key has a table integer: no duplicates and
    /// no integer/text twins are possible, so the per-entry scan is skipped.
    simple: bool,
}

/// Transcodes one CBOR data item (substitution `table`) into compact JSON in `out`; returns
/// the number of bytes written.
///
/// Accepts any well-formed definite-length CBOR whose items have a JSON form: integers, text,
/// arrays, maps with text keys or table integer keys, false/true/null, finite floats, and the
/// table's shared-item references. Byte strings, other tags and simple values, `undefined`,
/// NaN/infinity, indefinite lengths, unknown integer keys and duplicate keys are errors. When a
/// map holds both an integer key and the text key it stands for, the text key's entry wins and
/// the integer one is dropped. Floats are written in Rust's shortest round-trip form (`1.5`,
/// `100000.0`, `1e300`), so they read back as the same double.
pub fn cbor_to_json(
    cbor: &[u8],
    table: &Table,
    limits: &Limits,
    out: &mut [u8],
) -> Result<usize, Error> {
    let mut sink = Sink::new(out);
    let mut stack: heapless::Vec<Frame, MAX_DEPTH> = heapless::Vec::new();
    let max_depth = limits.depth();
    let mut items: usize = 0;
    let mut pos = 0usize;
    let mut started = false;
    loop {
        if let Some(frame) = stack.last_mut() {
            if frame.remaining == 0 {
                sink.put(if frame.is_map { b"}" } else { b"]" });
                stack.pop();
                continue;
            }
            frame.remaining -= 1;
            if frame.is_map {
                items = count(items, limits, pos)?;
                let key = read_key(cbor, pos, table)?;
                let value_pos = key.end;
                if !frame.simple
                    && twin_or_duplicate(cbor, pos, &key, frame.first, frame.entries, table)?
                {
                    pos = skip_item(cbor, value_pos)?;
                    continue;
                }
                if frame.written {
                    sink.put(b",");
                }
                frame.written = true;
                put_json_string(&mut sink, key.name);
                sink.put(b":");
                pos = value_pos;
            } else {
                if frame.written {
                    sink.put(b",");
                }
                frame.written = true;
            }
        } else if started {
            if pos != cbor.len() {
                return Err(malformed(pos, Malformed::TrailingData));
            }
            return sink.finish();
        }
        started = true;

        items = count(items, limits, pos)?;
        let h = read_head(cbor, pos)?;
        let item = pos;
        pos += h.len;
        match h.major {
            0 => put_uint(&mut sink, u128::from(h.arg), false),
            1 => put_uint(&mut sink, u128::from(h.arg) + 1, true),
            2 => return Err(unsupported(item, Unsupported::ByteString)),
            3 => {
                let (text, end) = text_at(cbor, pos, h.arg, item)?;
                put_json_string(&mut sink, text);
                pos = end;
            }
            4 | 5 => {
                let is_map = h.major == 5;
                let frame = Frame {
                    is_map,
                    remaining: h.arg,
                    first: pos,
                    entries: h.arg,
                    written: false,
                    simple: is_map && keys_ascending(cbor, pos, h.arg, table),
                };
                if is_map && !frame.simple && h.arg > limits.max_unsorted_entries as u64 {
                    return Err(Error::LimitExceeded {
                        at: item,
                        limit: Limit::UnsortedEntries,
                    });
                }
                if stack.len() >= max_depth || stack.push(frame).is_err() {
                    return Err(Error::LimitExceeded {
                        at: item,
                        limit: Limit::Depth,
                    });
                }
                sink.put(if is_map { b"{" } else { b"[" });
            }
            6 => {
                if h.arg != 6 || !table.has_values() {
                    return Err(unsupported(item, Unsupported::Tag(h.arg)));
                }
                let inner = read_head(cbor, pos)?;
                let n = match inner.major {
                    0 => i128::from(inner.arg),
                    1 => -1 - i128::from(inner.arg),
                    _ => return Err(unsupported(item, Unsupported::Tag(6))),
                };
                pos += inner.len;
                let index = index_for_tagged(n);
                let value = table
                    .value(index)
                    .ok_or(unsupported(item, Unsupported::UnknownValue(index)))?;
                put_json_string(&mut sink, value);
            }
            _ => simple_or_float(&mut sink, &h, item, table)?,
        }
    }
}

fn count(items: usize, limits: &Limits, at: usize) -> Result<usize, Error> {
    let n = items.saturating_add(1);
    if n > limits.max_items {
        return Err(Error::LimitExceeded {
            at,
            limit: Limit::Items,
        });
    }
    Ok(n)
}

fn simple_or_float(sink: &mut Sink<'_>, h: &Head, at: usize, table: &Table) -> Result<(), Error> {
    let v = match h.info {
        20..=22 => {
            sink.put(match h.info {
                20 => b"false".as_slice(),
                21 => b"true",
                _ => b"null",
            });
            return Ok(());
        }
        23 => return Err(unsupported(at, Unsupported::Undefined)),
        25 => f16_to_f64(h.arg as u16),
        26 => f64::from(f32::from_bits(h.arg as u32)),
        27 => f64::from_bits(h.arg),
        _ => {
            // Simple values 0..=19 (one byte) or 32..=255 (two bytes); only 0..=15 can be
            // shared-item references.
            if h.info < 16 && table.has_values() {
                let v = table
                    .value(h.arg)
                    .ok_or(unsupported(at, Unsupported::UnknownValue(h.arg)))?;
                put_json_string(sink, v);
                return Ok(());
            }
            return Err(unsupported(at, Unsupported::SimpleValue(h.arg as u8)));
        }
    };
    if !v.is_finite() {
        return Err(unsupported(at, Unsupported::NonFiniteNumber));
    }
    let _ = write!(sink, "{v:?}");
    Ok(())
}

/// The text string whose content (`len` bytes) starts at `pos`; returns it and its end.
fn text_at(cbor: &[u8], pos: usize, len: u64, item: usize) -> Result<(&str, usize), Error> {
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .ok_or(malformed(item, Malformed::UnexpectedEnd))?;
    let bytes = cbor
        .get(pos..end)
        .ok_or(malformed(item, Malformed::UnexpectedEnd))?;
    let text = core::str::from_utf8(bytes)
        .map_err(|e| malformed(pos + e.valid_up_to(), Malformed::InvalidUtf8))?;
    Ok((text, end))
}

/// A map key resolved to its name.
struct Key<'a> {
    name: &'a str,
    is_int: bool,
    /// Input offset just past the key.
    end: usize,
}

fn read_key<'a>(cbor: &'a [u8], pos: usize, table: &Table) -> Result<Key<'a>, Error> {
    let h = read_head(cbor, pos)?;
    let after = pos + h.len;
    let number = match h.major {
        3 => {
            let (name, end) = text_at(cbor, after, h.arg, pos)?;
            return Ok(Key {
                name,
                is_int: false,
                end,
            });
        }
        0 => i64::try_from(h.arg).ok(),
        1 => i64::try_from(h.arg).ok().map(|a| -1 - a),
        _ => return Err(unsupported(pos, Unsupported::InvalidKey)),
    };
    let number = number.ok_or(unsupported(pos, Unsupported::InvalidKey))?;
    let name = table
        .key_name(number)
        .ok_or(unsupported(pos, Unsupported::UnknownKey(number)))?;
    Ok(Key {
        name,
        is_int: true,
        end: after,
    })
}

/// True when the `entries` map keys starting at `first` are well-formed, strictly ascending
/// in bytewise order (as deterministic encoding requires) and no text key is one the table
/// would substitute. Errors simply give `false`; the slow path reports them.
fn keys_ascending(cbor: &[u8], first: usize, entries: u64, table: &Table) -> bool {
    let mut p = first;
    let mut prev: Option<&[u8]> = None;
    for _ in 0..entries {
        let Ok(k_end) = skip_item(cbor, p) else {
            return false;
        };
        let Some(key) = cbor.get(p..k_end) else {
            return false;
        };
        if prev.is_some_and(|q| q >= key) {
            return false;
        }
        // Non-shortest heads could spell one key two ways; leave those to the slow path.
        let Ok(h) = read_head(cbor, p) else {
            return false;
        };
        if h.len != head_len(h.arg) {
            return false;
        }
        if h.major == 3
            && key
                .get(h.len..)
                .is_some_and(|t| table.key_number_bytes(t).is_some())
        {
            return false;
        }
        prev = Some(key);
        let Ok(v_end) = skip_item(cbor, k_end) else {
            return false;
        };
        p = v_end;
    }
    true
}

/// Compares the key at `pos` with every other key of its map. Returns `true` when this entry
/// is an integer key whose text form is also present (the text entry wins); fails on a
/// duplicate key.
fn twin_or_duplicate(
    cbor: &[u8],
    pos: usize,
    key: &Key<'_>,
    first: usize,
    entries: u64,
    table: &Table,
) -> Result<bool, Error> {
    let mut p = first;
    let mut twin = false;
    for _ in 0..entries {
        let other = read_key(cbor, p, table)?;
        if p != pos && other.name == key.name {
            if other.is_int == key.is_int {
                return Err(unsupported(pos, Unsupported::DuplicateKey));
            }
            twin |= key.is_int;
        }
        p = skip_item(cbor, other.end)?;
    }
    Ok(twin)
}

fn put_uint(sink: &mut Sink<'_>, mut v: u128, negative: bool) {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    sink.put(&buf[i..]);
}

/// Writes `s` as a JSON string: `"` and `\` escaped, control characters as `\n`-style or
/// `\u00XX` escapes, everything else as UTF-8.
pub(crate) fn put_json_string(sink: &mut Sink<'_>, s: &str) {
    sink.put(b"\"");
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        sink.put(bytes.get(run..i).unwrap_or(&[]));
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            sink.put(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            sink.put(esc);
        }
        run = i + 1;
    }
    sink.put(bytes.get(run..).unwrap_or(&[]));
    sink.put(b"\"");
}
