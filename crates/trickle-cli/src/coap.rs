//! `trickle coap decode`: a readable breakdown of every field of a CoAP message and its bytes.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use trickle_core::wire::coap::{Block, Kind, Message, OptionNumber, Repr, decode_uint, observe};

/// Describes every field of `bytes` (one CoAP message) with the bytes it occupies.
pub fn describe(bytes: &[u8]) -> Result<String> {
    let repr = match Repr::parse_bytes(bytes) {
        Ok(r) => r,
        Err(e) => bail!("not a valid CoAP message: {e}"),
    };
    let msg = Message::new_unchecked(bytes);
    let mut out = String::new();
    let w = &mut out;
    let head = bytes.get(..4).unwrap_or(&[]);
    line(w, 0, head, "header");
    let _ = writeln!(
        w,
        "    version {}, type {} ({}), token length {}",
        msg.version(),
        kind_name(repr.kind),
        repr.kind.bits(),
        repr.token.len()
    );
    let _ = writeln!(w, "    code {} {}", repr.code, code_name(repr.code.0));
    let _ = writeln!(w, "    message id {0} (0x{0:04x})", repr.message_id);
    let mut pos = 4;
    if !repr.token.is_empty() {
        line(w, pos, repr.token, "token");
        pos += repr.token.len();
    }
    let mut prev = 0u16;
    for o in &repr.options {
        let value = o.value();
        let delta = usize::from(o.number.0 - prev);
        let len = 1 + ext_len(delta) + ext_len(value.len()) + value.len();
        let encoded = bytes.get(pos..pos + len).unwrap_or(&[]);
        line(
            w,
            pos,
            encoded,
            &format!("option {} {}", o.number.0, option_name(o.number)),
        );
        let _ = writeln!(
            w,
            "    delta {delta}, length {}{}, value {}",
            value.len(),
            flags(o.number),
            option_value(o.number, value)
        );
        pos += len;
        prev = o.number.0;
    }
    if !repr.payload.is_empty() {
        line(w, pos, &bytes[pos..pos + 1], "payload marker");
        pos += 1;
        line(
            w,
            pos,
            repr.payload,
            &format!("payload ({} bytes)", repr.payload.len()),
        );
        if let Ok(s) = std::str::from_utf8(repr.payload) {
            if s.chars().all(|c| !c.is_control() || c == '\n') {
                let _ = writeln!(w, "    as text {s:?}");
            }
        }
    }
    let _ = writeln!(w, "total {} bytes", bytes.len());
    Ok(out)
}

fn line(w: &mut String, at: usize, bytes: &[u8], what: &str) {
    let _ = writeln!(
        w,
        "[{at:>4}..{:<4}] {what:<32} {}",
        at + bytes.len(),
        hex(bytes)
    );
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn ext_len(v: usize) -> usize {
    match v {
        0..13 => 0,
        13..269 => 1,
        _ => 2,
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Confirmable => "CON",
        Kind::NonConfirmable => "NON",
        Kind::Acknowledgement => "ACK",
        Kind::Reset => "RST",
    }
}

fn code_name(code: u8) -> &'static str {
    match (code >> 5, code & 0x1f) {
        (0, 0) => "Empty",
        (0, 1) => "GET",
        (0, 2) => "POST",
        (0, 3) => "PUT",
        (0, 4) => "DELETE",
        (0, 5) => "FETCH",
        (0, 6) => "PATCH",
        (0, 7) => "iPATCH",
        (2, 1) => "Created",
        (2, 2) => "Deleted",
        (2, 3) => "Valid",
        (2, 4) => "Changed",
        (2, 5) => "Content",
        (2, 31) => "Continue",
        (4, 0) => "Bad Request",
        (4, 1) => "Unauthorized",
        (4, 2) => "Bad Option",
        (4, 3) => "Forbidden",
        (4, 4) => "Not Found",
        (4, 5) => "Method Not Allowed",
        (4, 6) => "Not Acceptable",
        (4, 8) => "Request Entity Incomplete",
        (4, 9) => "Conflict",
        (4, 12) => "Precondition Failed",
        (4, 13) => "Request Entity Too Large",
        (4, 15) => "Unsupported Content-Format",
        (4, 29) => "Too Many Requests",
        (5, 0) => "Internal Server Error",
        (5, 1) => "Not Implemented",
        (5, 2) => "Bad Gateway",
        (5, 3) => "Service Unavailable",
        (5, 4) => "Gateway Timeout",
        (5, 5) => "Proxying Not Supported",
        _ => "(unassigned)",
    }
}

fn option_name(n: OptionNumber) -> &'static str {
    match n {
        OptionNumber::IF_MATCH => "If-Match",
        OptionNumber::URI_HOST => "Uri-Host",
        OptionNumber::ETAG => "ETag",
        OptionNumber::IF_NONE_MATCH => "If-None-Match",
        OptionNumber::OBSERVE => "Observe",
        OptionNumber::URI_PORT => "Uri-Port",
        OptionNumber::LOCATION_PATH => "Location-Path",
        OptionNumber::URI_PATH => "Uri-Path",
        OptionNumber::CONTENT_FORMAT => "Content-Format",
        OptionNumber::MAX_AGE => "Max-Age",
        OptionNumber::URI_QUERY => "Uri-Query",
        OptionNumber::ACCEPT => "Accept",
        OptionNumber::LOCATION_QUERY => "Location-Query",
        OptionNumber::BLOCK2 => "Block2",
        OptionNumber::BLOCK1 => "Block1",
        OptionNumber::SIZE2 => "Size2",
        OptionNumber::PROXY_URI => "Proxy-Uri",
        OptionNumber::PROXY_SCHEME => "Proxy-Scheme",
        OptionNumber::SIZE1 => "Size1",
        OptionNumber::AUTHORIZATION => "Authorization (MSC3079)",
        OptionNumber::CBOR_ENUM_VERSION => "CBOR-Enum-Version (MSC3079)",
        _ => "(unknown)",
    }
}

fn flags(n: OptionNumber) -> String {
    let mut f = Vec::new();
    f.push(if n.is_critical() {
        "critical"
    } else {
        "elective"
    });
    if n.is_unsafe() {
        f.push("unsafe");
    }
    if n.is_no_cache_key() {
        f.push("no-cache-key");
    }
    format!(" ({})", f.join(", "))
}

fn option_value(n: OptionNumber, value: &[u8]) -> String {
    let uint = |v: &[u8]| match decode_uint(v) {
        Ok(u) => u.to_string(),
        Err(e) => format!("invalid uint: {e}"),
    };
    match n {
        OptionNumber::OBSERVE => match observe::decode(value) {
            Ok(observe::REGISTER) => "0 (register)".into(),
            Ok(observe::DEREGISTER) => "1 (deregister)".into(),
            Ok(v) => format!("{v} (sequence)"),
            Err(e) => format!("invalid: {e}"),
        },
        OptionNumber::BLOCK1 | OptionNumber::BLOCK2 => match Block::decode(value) {
            Ok(b) => format!(
                "NUM {} M {} SZX {} (block size {}, offset {})",
                b.num,
                u8::from(b.more),
                b.szx,
                b.size(),
                b.offset()
            ),
            Err(e) => format!("invalid: {e}"),
        },
        OptionNumber::CONTENT_FORMAT | OptionNumber::ACCEPT => {
            let v = uint(value);
            let name = match v.as_str() {
                "0" => " (text/plain; charset=utf-8)",
                "50" => " (application/json)",
                "60" => " (application/cbor)",
                _ => "",
            };
            format!("{v}{name}")
        }
        OptionNumber::URI_PORT
        | OptionNumber::MAX_AGE
        | OptionNumber::SIZE1
        | OptionNumber::SIZE2
        | OptionNumber::CBOR_ENUM_VERSION => uint(value),
        OptionNumber::URI_HOST
        | OptionNumber::URI_PATH
        | OptionNumber::URI_QUERY
        | OptionNumber::LOCATION_PATH
        | OptionNumber::LOCATION_QUERY
        | OptionNumber::PROXY_URI
        | OptionNumber::PROXY_SCHEME
        | OptionNumber::AUTHORIZATION => match std::str::from_utf8(value) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("(not UTF-8) {}", hex(value)),
        },
        _ if value.is_empty() => "(empty)".into(),
        _ => hex(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7252 Appendix A, Figure 16 style request: CON GET /temperature with a token.
    #[test]
    fn describes_every_field_with_its_bytes() {
        let bytes = [
            0x42, 0x01, 0x7d, 0x34, 0x12, 0x34, 0xbb, b't', b'e', b'm', b'p', b'e', b'r', b'a',
            b't', b'u', b'r', b'e',
        ];
        let text = describe(&bytes).unwrap();
        assert!(text.contains("[   0..4   ] header"), "{text}");
        assert!(text.contains("type CON (0), token length 2"), "{text}");
        assert!(text.contains("code 0.01 GET"), "{text}");
        assert!(text.contains("message id 32052 (0x7d34)"), "{text}");
        assert!(text.contains("[   4..6   ] token"), "{text}");
        assert!(text.contains("[   6..18  ] option 11 Uri-Path"), "{text}");
        assert!(text.contains("value \"temperature\""), "{text}");
        assert!(text.contains("total 18 bytes"), "{text}");
    }

    #[test]
    fn rejects_malformed() {
        let err = describe(&[0x49, 0x01, 0, 0]).unwrap_err().to_string();
        assert!(err.contains("token length 9"), "{err}");
    }
}
