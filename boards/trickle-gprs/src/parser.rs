//! A byte-at-a-time parser for the modem's side of an AT dialogue.
//!
//! The modem sends three kinds of things, interleaved in any order (V.250 §5.7.1 and the vendor
//! manuals): text lines framed by `<CR>` and/or `<LF>` (final result codes, information
//! responses, unsolicited result codes, the echo of our own commands), the data prompt `> ` (not
//! followed by a line end), and binary payloads whose length was announced just before them:
//!
//! - SIM800 with `AT+CIPHEAD=1` pushes `+IPD,<len>:<data>` (SIM800 Series AT Command Manual
//!   V1.09 §8.2 "AT+CIPHEAD"): the header ends at `:`, not at a line end. The parser recognises
//!   it by itself.
//! - BG96 answers `AT+QIRD` with `+QIRD: <len><CR><LF><data>` (BG96 TCP/IP AT Commands Manual
//!   V1.0 §2.1 "AT+QIRD"): the driver sees the line and calls [`AtParser::expect_data`].
//!
//! Every buffer is fixed. Nothing the modem sends can make the parser panic: a line longer than
//! its buffer is skipped up to its end and reported as [`Event::Overflow`], a payload longer
//! than the data buffer is consumed and reported as [`Event::DataTooLong`], malformed headers
//! stay ordinary (garbage) lines.

/// What one byte completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// A non-empty text line is in [`AtParser::line`] (without its `<CR>`/`<LF>`).
    Line,
    /// The data prompt `> ` arrived: the modem waits for the payload.
    Prompt,
    /// A binary payload is complete in [`AtParser::data`].
    Data,
    /// A binary payload of `len` bytes did not fit the data buffer: it was consumed and dropped.
    DataTooLong {
        /// Announced length in bytes.
        len: usize,
    },
    /// A line longer than the line buffer ended; its bytes were dropped.
    Overflow,
}

/// The parser: a line buffer of `L` bytes and a data buffer of `D` bytes.
#[derive(Debug, Clone)]
pub struct AtParser<const L: usize, const D: usize> {
    line: [u8; L],
    line_len: usize,
    /// The current line did not fit and is being skipped.
    overflow: bool,
    /// `line` holds a complete line, cleared by the next byte.
    line_done: bool,
    /// The last line ended with `<CR>`.
    ended_cr: bool,
    /// Skip one `<LF>` before the payload (the rest of the `<CR><LF>` ending its header line).
    skip_lf: bool,
    data: [u8; D],
    data_len: usize,
    /// Binary bytes still to come for the current payload (0: text mode).
    remaining: usize,
    /// Announced length of the current payload.
    announced: usize,
}

impl<const L: usize, const D: usize> Default for AtParser<L, D> {
    fn default() -> Self {
        Self::new()
    }
}

/// The largest payload length the parser accepts in a header (more digits: a garbage line).
const MAX_ANNOUNCED: usize = 65_535;

impl<const L: usize, const D: usize> AtParser<L, D> {
    /// An empty parser in text mode.
    pub const fn new() -> Self {
        AtParser {
            line: [0; L],
            line_len: 0,
            overflow: false,
            line_done: false,
            ended_cr: false,
            skip_lf: false,
            data: [0; D],
            data_len: 0,
            remaining: 0,
            announced: 0,
        }
    }

    /// The last complete line (valid after [`Event::Line`] until the next byte is pushed).
    pub fn line(&self) -> &[u8] {
        self.line.get(..self.line_len).unwrap_or(&[])
    }

    /// The last complete payload (valid after [`Event::Data`] until the next payload starts).
    pub fn data(&self) -> &[u8] {
        self.data.get(..self.data_len).unwrap_or(&[])
    }

    /// True while a binary payload is being received.
    pub fn in_data(&self) -> bool {
        self.remaining > 0
    }

    /// Forgets any partial line or payload (after a timeout, a resynchronisation point).
    pub fn reset(&mut self) {
        self.line_len = 0;
        self.overflow = false;
        self.line_done = false;
        self.skip_lf = false;
        self.remaining = 0;
        self.data_len = 0;
    }

    /// The next `len` bytes are a binary payload. `len == 0` is an empty payload, reported by
    /// the return value (`Some(Event::Data)`) since no byte will complete it.
    ///
    /// Called right after an [`Event::Line`] that ended in `<CR>`, the `<LF>` that follows is
    /// skipped first: the header line is `<CR><LF>`-terminated (as `+QIRD: <len>` is).
    pub fn expect_data(&mut self, len: usize) -> Option<Event> {
        self.skip_lf = self.line_done && self.ended_cr && len > 0;
        self.line_len = 0;
        self.overflow = false;
        self.line_done = false;
        self.data_len = 0;
        self.announced = len;
        self.remaining = len;
        (len == 0).then_some(Event::Data)
    }

    /// Feeds one byte from the modem.
    pub fn push(&mut self, byte: u8) -> Option<Event> {
        if self.line_done {
            self.line_len = 0;
            self.line_done = false;
        }
        if self.remaining > 0 {
            if self.skip_lf {
                self.skip_lf = false;
                if byte == b'\n' {
                    return None;
                }
            }
            self.remaining -= 1;
            if let Some(slot) = self.data.get_mut(self.data_len) {
                *slot = byte;
                self.data_len += 1;
            }
            if self.remaining > 0 {
                return None;
            }
            return Some(if self.announced > D {
                self.data_len = 0;
                Event::DataTooLong {
                    len: self.announced,
                }
            } else {
                Event::Data
            });
        }
        if byte == b'\r' || byte == b'\n' {
            if self.overflow {
                self.overflow = false;
                self.line_len = 0;
                return Some(Event::Overflow);
            }
            if self.line_len > 0 {
                // Readable until the next byte arrives.
                self.line_done = true;
                self.ended_cr = byte == b'\r';
                return Some(Event::Line);
            }
            return None;
        }
        if self.overflow {
            return None;
        }
        let Some(slot) = self.line.get_mut(self.line_len) else {
            self.overflow = true;
            self.line_len = 0;
            return None;
        };
        *slot = byte;
        self.line_len += 1;
        let line = self.line();
        if line == b"> " {
            self.line_len = 0;
            return Some(Event::Prompt);
        }
        if byte == b':' {
            if let Some(len) = ipd_header(line) {
                return self.expect_data(len);
            }
        }
        None
    }
}

/// `+IPD,<len>:` (the whole line so far) → `len`.
fn ipd_header(line: &[u8]) -> Option<usize> {
    let digits = line.strip_prefix(b"+IPD,")?.strip_suffix(b":")?;
    parse_usize(digits).filter(|&n| n <= MAX_ANNOUNCED)
}

/// Decimal digits only (1 to 5 of them) → the value.
pub(crate) fn parse_usize(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    let mut n = 0usize;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(d - b'0');
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::{AtParser, Event};
    use std::vec::Vec;

    /// Feeds `bytes`, returning (event, line or data) for each event.
    fn feed<const L: usize, const D: usize>(
        p: &mut AtParser<L, D>,
        bytes: &[u8],
    ) -> Vec<(Event, Vec<u8>)> {
        let mut out = Vec::new();
        for &b in bytes {
            if let Some(e) = p.push(b) {
                let content = match e {
                    Event::Line => p.line().to_vec(),
                    Event::Data => p.data().to_vec(),
                    _ => Vec::new(),
                };
                out.push((e, content));
            }
        }
        out
    }

    fn line(s: &[u8]) -> (Event, Vec<u8>) {
        (Event::Line, s.to_vec())
    }

    #[test]
    fn urc_in_the_middle_of_a_response() {
        // BG96: a "recv" URC between the information response and OK of AT+CEREG?.
        let mut p = AtParser::<64, 16>::new();
        let ev = feed(
            &mut p,
            b"\r\n+CEREG: 0,1\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n",
        );
        assert_eq!(
            ev,
            [
                line(b"+CEREG: 0,1"),
                line(b"+QIURC: \"recv\",0"),
                line(b"OK")
            ]
        );
        // SIM800: a pushed datagram between the prompt's data and SEND OK, with no line end
        // after the payload.
        let ev = feed(&mut p, b"\r\n+IPD,4:\r\nOKSEND OK\r\n");
        assert_eq!(ev, [(Event::Data, b"\r\nOK".to_vec()), line(b"SEND OK")]);
    }

    #[test]
    fn prompt_with_and_without_line_end_before_it() {
        let mut p = AtParser::<64, 16>::new();
        assert_eq!(feed(&mut p, b"\r\n> "), [(Event::Prompt, Vec::new())]);
        assert_eq!(feed(&mut p, b"> "), [(Event::Prompt, Vec::new())]);
        // ">" inside a line is text.
        assert_eq!(feed(&mut p, b"a> b\r\n"), [line(b"a> b")]);
    }

    #[test]
    fn split_reads_change_nothing() {
        let wire = b"\r\nRDY\r\n\r\n+IPD,3:abc\r\n+CPIN: READY\r\n\r\nOK\r\n";
        let mut whole = AtParser::<64, 16>::new();
        let expected = feed(&mut whole, wire);
        for split in 1..wire.len() {
            let mut p = AtParser::<64, 16>::new();
            let mut got = feed(&mut p, &wire[..split]);
            got.extend(feed(&mut p, &wire[split..]));
            assert_eq!(got, expected, "split at {split}");
        }
        assert_eq!(expected.len(), 4);
    }

    #[test]
    fn overlong_lines_are_skipped_to_their_end() {
        let mut p = AtParser::<8, 16>::new();
        let ev = feed(&mut p, b"0123456789ABCDEF\r\nOK\r\n");
        assert_eq!(ev, [(Event::Overflow, Vec::new()), line(b"OK")]);
        // Exactly the buffer size still fits.
        assert_eq!(feed(&mut p, b"01234567\r\n"), [line(b"01234567")]);
    }

    #[test]
    fn garbage_headers_stay_text() {
        let mut p = AtParser::<64, 16>::new();
        let ev = feed(
            &mut p,
            b"+IPD,:x\r\n+IPD,abc:\r\n+IPD,123456:\r\n+IPD,-1:\r\n\xff\x00\xfe\r\nOK\r\n",
        );
        assert_eq!(
            ev,
            [
                line(b"+IPD,:x"),
                line(b"+IPD,abc:"),
                line(b"+IPD,123456:"),
                line(b"+IPD,-1:"),
                line(b"\xff\x00\xfe"),
                line(b"OK"),
            ]
        );
    }

    #[test]
    fn wrong_lengths() {
        // Longer than the data buffer: consumed, reported, and the next line is intact.
        let mut p = AtParser::<64, 4>::new();
        let ev = feed(&mut p, b"+IPD,6:abcdef\r\nOK\r\n");
        assert_eq!(
            ev,
            [(Event::DataTooLong { len: 6 }, Vec::new()), line(b"OK")]
        );
        assert!(p.data().is_empty());
        // Announced longer than sent: the payload swallows what follows until the count is
        // reached; a reset (the driver's timeout) resynchronises.
        let ev = feed(&mut p, b"+IPD,5:ab\r\n");
        assert!(ev.is_empty());
        assert!(p.in_data());
        p.reset();
        assert_eq!(feed(&mut p, b"OK\r\n"), [line(b"OK")]);
        // A zero-length payload completes at its header.
        assert_eq!(feed(&mut p, b"+IPD,0:"), [(Event::Data, Vec::new())]);
        // expect_data after a CR LF line skips the LF only.
        assert_eq!(feed(&mut p, b"+QIRD: 2\r"), [line(b"+QIRD: 2")]);
        assert_eq!(p.expect_data(2), None);
        assert_eq!(feed(&mut p, b"\n\nx\r\n"), [(Event::Data, b"\nx".to_vec())]);
    }
}
