//! Table-aware CBOR building and reading for firmware, on top of `minicbor` (no JSON involved).

use minicbor::data::Tag;
use minicbor::encode::{Error as EncodeError, Write};
use minicbor::{Decoder, Encoder};

use super::error::{Error, Malformed, Unsupported, malformed, unsupported};
use super::head::{read_head, skip_item};
use super::table::{Reference, Table, index_for_tagged, reference_for};

/// Builds substituted CBOR: [`key`](Writer::key) and [`str_value`](Writer::str_value) replace
/// names and strings found in the table, everything else goes through
/// [`encoder`](Writer::encoder).
///
/// Entries are written in the order given. For the deterministic form that
/// [`json_to_cbor`](super::json_to_cbor) produces, write map entries in ascending order of their
/// encoded keys (integer keys 0..=23, then 24.., then -1..=-24, then text keys, shorter first).
///
/// ```
/// use trickle_core::cbor::{Table, Writer};
/// let mut buf = [0u8; 10];
/// let mut w = Writer::new(&mut buf[..], &Table::TRICKLE_V1);
/// w.map(2)?.key("body")?.encoder().str("Hello")?;
/// w.key("msgtype")?.str_value("m.text")?;
/// assert_eq!(buf, *b"\xa2\x08\x65Hello\x09\xe1");
/// # Ok::<(), minicbor::encode::Error<minicbor::encode::write::EndOfSlice>>(())
/// ```
#[derive(Debug)]
pub struct Writer<'t, W> {
    enc: Encoder<W>,
    table: &'t Table,
}

impl<'t, W: Write> Writer<'t, W> {
    /// A writer into `writer` with substitution `table`.
    pub fn new(writer: W, table: &'t Table) -> Self {
        Writer {
            enc: Encoder::new(writer),
            table,
        }
    }

    /// Starts a map of `len` entries.
    pub fn map(&mut self, len: u64) -> Result<&mut Self, EncodeError<W::Error>> {
        self.enc.map(len)?;
        Ok(self)
    }

    /// Starts an array of `len` elements.
    pub fn array(&mut self, len: u64) -> Result<&mut Self, EncodeError<W::Error>> {
        self.enc.array(len)?;
        Ok(self)
    }

    /// Writes map key `name`: its table integer, or the text if the table lacks it.
    pub fn key(&mut self, name: &str) -> Result<&mut Self, EncodeError<W::Error>> {
        match self.table.key_number(name) {
            Some(k) => self.enc.i64(k)?,
            None => self.enc.str(name)?,
        };
        Ok(self)
    }

    /// Writes string value `s`: its shared-item reference, or the text if the table lacks it.
    pub fn str_value(&mut self, s: &str) -> Result<&mut Self, EncodeError<W::Error>> {
        match self.table.value_index(s).map(reference_for) {
            Some(Reference::Simple(n)) => self.enc.simple(n)?,
            Some(Reference::Tagged(n)) => self.enc.tag(Tag::new(6))?.i64(n as i64)?,
            None => self.enc.str(s)?,
        };
        Ok(self)
    }

    /// The underlying encoder, for numbers, booleans, null and unsubstituted text.
    pub fn encoder(&mut self) -> &mut Encoder<W> {
        &mut self.enc
    }

    /// Gives back the inner writer.
    pub fn into_writer(self) -> W {
        self.enc.into_writer()
    }
}

/// Reads substituted CBOR: [`key`](Reader::key) and [`str_value`](Reader::str_value) resolve
/// table integers and references back to names and strings; other items go through
/// [`decoder`](Reader::decoder). Only definite lengths are accepted.
///
/// ```
/// use trickle_core::cbor::{Reader, Table};
/// let mut r = Reader::new(b"\xa2\x08\x65Hello\x09\xe1", &Table::TRICKLE_V1);
/// let mut body = "";
/// let mut msgtype = "";
/// for _ in 0..r.map()? {
///     match r.key()? {
///         "body" => body = r.str_value()?,
///         "msgtype" => msgtype = r.str_value()?,
///         _ => r.skip()?,
///     }
/// }
/// assert_eq!((body, msgtype), ("Hello", "m.text"));
/// # Ok::<(), trickle_core::cbor::Error>(())
/// ```
#[derive(Debug)]
pub struct Reader<'b, 't> {
    dec: Decoder<'b>,
    table: &'t Table,
}

impl<'b, 't> Reader<'b, 't> {
    /// A reader over `bytes` with substitution `table`.
    pub fn new(bytes: &'b [u8], table: &'t Table) -> Self {
        Reader {
            dec: Decoder::new(bytes),
            table,
        }
    }

    fn head(&mut self, major: u8) -> Result<u64, Error> {
        let pos = self.dec.position();
        let h = read_head(self.dec.input(), pos)?;
        if h.major != major {
            return Err(malformed(pos, Malformed::UnexpectedByte));
        }
        self.dec.set_position(pos + h.len);
        Ok(h.arg)
    }

    /// Reads a map head; returns the number of entries.
    pub fn map(&mut self) -> Result<u64, Error> {
        self.head(5)
    }

    /// Reads an array head; returns the number of elements.
    pub fn array(&mut self) -> Result<u64, Error> {
        self.head(4)
    }

    /// Reads a map key and resolves it to its name (text keys are returned as they are).
    pub fn key(&mut self) -> Result<&'b str, Error> {
        let pos = self.dec.position();
        let input = self.dec.input();
        let h = read_head(input, pos)?;
        let number = match h.major {
            3 => return self.text(),
            0 => i64::try_from(h.arg).ok(),
            1 => i64::try_from(h.arg).ok().map(|a| -1 - a),
            _ => None,
        };
        let number = number.ok_or(unsupported(pos, Unsupported::InvalidKey))?;
        let name = self
            .table
            .key_name(number)
            .ok_or(unsupported(pos, Unsupported::UnknownKey(number)))?;
        self.dec.set_position(pos + h.len);
        Ok(name)
    }

    fn text(&mut self) -> Result<&'b str, Error> {
        let pos = self.dec.position();
        let input = self.dec.input();
        let h = read_head(input, pos)?;
        let start = pos + h.len;
        let end = usize::try_from(h.arg)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= input.len())
            .ok_or(malformed(pos, Malformed::UnexpectedEnd))?;
        let bytes = input.get(start..end).unwrap_or(&[]);
        let s = core::str::from_utf8(bytes)
            .map_err(|e| malformed(start + e.valid_up_to(), Malformed::InvalidUtf8))?;
        self.dec.set_position(end);
        Ok(s)
    }

    /// Reads a string value: text, or a shared-item reference resolved through the table.
    pub fn str_value(&mut self) -> Result<&'b str, Error> {
        let pos = self.dec.position();
        let input = self.dec.input();
        let h = read_head(input, pos)?;
        let (index, len) = match (h.major, h.info) {
            (3, _) => return self.text(),
            (7, 0..=15) => (h.arg, h.len),
            (6, _) if h.arg == 6 => {
                let inner = read_head(input, pos + h.len)?;
                let n = match inner.major {
                    0 => i128::from(inner.arg),
                    1 => -1 - i128::from(inner.arg),
                    _ => return Err(unsupported(pos, Unsupported::Tag(6))),
                };
                (index_for_tagged(n), h.len + inner.len)
            }
            (6, _) => return Err(unsupported(pos, Unsupported::Tag(h.arg))),
            _ => return Err(malformed(pos, Malformed::UnexpectedByte)),
        };
        let v = self
            .table
            .value(index)
            .ok_or(unsupported(pos, Unsupported::UnknownValue(index)))?;
        self.dec.set_position(pos + len);
        Ok(v)
    }

    /// Skips one complete data item (iteratively, whatever its nesting).
    pub fn skip(&mut self) -> Result<(), Error> {
        let end = skip_item(self.dec.input(), self.dec.position())?;
        self.dec.set_position(end);
        Ok(())
    }

    /// The underlying decoder, for numbers, booleans and other items.
    pub fn decoder(&mut self) -> &mut Decoder<'b> {
        &mut self.dec
    }
}
