//! CBOR initial bytes ("heads", RFC 8949 §3), an iterative item skipper and the output sink.

use super::error::{Error, Malformed, malformed};

/// A decoded CBOR head: major type, additional information and argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub major: u8,
    pub info: u8,
    pub arg: u64,
    /// Bytes taken by the head itself.
    pub len: usize,
}

/// Reads the head at `pos`. Rejects reserved encodings and indefinite lengths (and "break").
pub(crate) fn read_head(buf: &[u8], pos: usize) -> Result<Head, Error> {
    let end = || malformed(pos, Malformed::UnexpectedEnd);
    let first = *buf.get(pos).ok_or_else(end)?;
    let major = first >> 5;
    let info = first & 0x1f;
    let n = match info {
        0..=23 => 0,
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        28..=30 => return Err(malformed(pos, Malformed::ReservedEncoding)),
        _ => return Err(malformed(pos, Malformed::IndefiniteLength)),
    };
    let start = pos.checked_add(1).ok_or_else(end)?;
    let stop = start.checked_add(n).ok_or_else(end)?;
    let bytes = buf.get(start..stop).ok_or_else(end)?;
    let arg = if n == 0 {
        u64::from(info)
    } else {
        bytes.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b))
    };
    if major == 7 && info == 24 && arg < 32 {
        return Err(malformed(pos, Malformed::ReservedEncoding));
    }
    Ok(Head {
        major,
        info,
        arg,
        len: 1 + n,
    })
}

/// Returns the offset just past the complete data item starting at `pos`. Iterative: only a
/// counter of outstanding items, so nesting costs no stack.
pub(crate) fn skip_item(buf: &[u8], mut pos: usize) -> Result<usize, Error> {
    let mut outstanding: u64 = 1;
    while outstanding > 0 {
        let h = read_head(buf, pos)?;
        let item = pos;
        pos += h.len;
        match h.major {
            2 | 3 => {
                pos = usize::try_from(h.arg)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|&e| e <= buf.len())
                    .ok_or(malformed(item, Malformed::UnexpectedEnd))?;
            }
            4 => outstanding = outstanding.saturating_add(h.arg),
            5 => outstanding = outstanding.saturating_add(h.arg.saturating_mul(2)),
            6 => outstanding = outstanding.saturating_add(1),
            _ => {}
        }
        outstanding -= 1;
    }
    Ok(pos)
}

/// Number of bytes of the shortest head carrying argument `arg`.
pub(crate) fn head_len(arg: u64) -> usize {
    match arg {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Writes the shortest head for `major`/`arg` into `out` (which must be `head_len(arg)` long).
pub(crate) fn write_head(out: &mut [u8], major: u8, arg: u64) {
    let m = major << 5;
    let bytes = arg.to_be_bytes();
    let (info, tail): (u8, &[u8]) = match arg {
        0..=23 => (arg as u8, &[]),
        24..=0xff => (24, &bytes[7..]),
        0x100..=0xffff => (25, &bytes[6..]),
        0x1_0000..=0xffff_ffff => (26, &bytes[4..]),
        _ => (27, &bytes[..]),
    };
    if let Some((first, rest)) = out.split_first_mut() {
        *first = m | info;
        for (o, b) in rest.iter_mut().zip(tail) {
            *o = *b;
        }
    }
}

/// Output that writes while there is room and keeps counting after, so a too-small buffer
/// still yields the exact required size.
pub(crate) struct Sink<'a> {
    pub buf: &'a mut [u8],
    pub len: usize,
}

impl<'a> Sink<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Sink { buf, len: 0 }
    }

    pub fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    /// True when every byte so far landed in the buffer.
    pub fn fits(&self) -> bool {
        self.len <= self.buf.len()
    }

    pub fn finish(self) -> Result<usize, Error> {
        if self.fits() {
            Ok(self.len)
        } else {
            Err(Error::BufferTooSmall { required: self.len })
        }
    }
}

impl minicbor::encode::Write for Sink<'_> {
    type Error = core::convert::Infallible;

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.put(buf);
        Ok(())
    }
}

impl core::fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.put(s.as_bytes());
        Ok(())
    }
}
