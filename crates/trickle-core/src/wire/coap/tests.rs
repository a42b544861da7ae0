use super::*;
use proptest::prelude::*;
use std::vec::Vec;

fn emit_vec(repr: &Repr<'_>) -> Vec<u8> {
    let mut buf = std::vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut buf).expect("emit");
    assert_eq!(n, buf.len());
    buf
}

fn parse_err(bytes: &[u8]) -> Error {
    Repr::parse_bytes(bytes).expect_err("must fail")
}

// RFC 7252 Appendix A, Figure 16: CON GET /temperature, MID 0x7d34, no token.
const FIG16_REQ: &[u8] = b"\x40\x01\x7d\x34\xbbtemperature";
// ... and the piggybacked ACK 2.05 "22.3 C".
const FIG16_RSP: &[u8] = b"\x60\x45\x7d\x34\xff22.3 C";
// RFC 7252 Appendix A, Figure 17: the same with token 0x20, MID 0x7d35.
const FIG17_REQ: &[u8] = b"\x41\x01\x7d\x35\x20\xbbtemperature";
const FIG17_RSP: &[u8] = b"\x61\x45\x7d\x35\x20\xff22.3 C";

#[test]
fn rfc7252_fig16_request() {
    let msg = Message::new_checked(FIG16_REQ).unwrap();
    assert_eq!(msg.version(), 1);
    assert_eq!(msg.kind(), Kind::Confirmable);
    assert_eq!(msg.token_len(), 0);
    assert_eq!(msg.code(), Code::GET);
    assert_eq!(msg.message_id(), 0x7d34);
    assert_eq!(msg.header_len(), 4);
    let opts: Vec<_> = msg.options().map(|o| o.unwrap()).collect();
    assert_eq!(
        opts,
        [CoapOption::new(OptionNumber::URI_PATH, b"temperature")]
    );
    assert_eq!(msg.payload(), b"");

    let mut repr = Repr::new(Kind::Confirmable, Code::GET, 0x7d34, &[]);
    repr.push_option(CoapOption::str(OptionNumber::URI_PATH, "temperature"))
        .unwrap();
    assert_eq!(Repr::parse(&msg).unwrap(), repr);
    assert_eq!(repr.buffer_len(), 16);
    assert_eq!(emit_vec(&repr), FIG16_REQ);
}

#[test]
fn rfc7252_fig16_response() {
    let repr = Repr::parse_bytes(FIG16_RSP).unwrap();
    assert_eq!(repr.kind, Kind::Acknowledgement);
    assert_eq!(repr.code, Code::CONTENT);
    assert_eq!(repr.code.0, 69);
    assert_eq!(std::format!("{}", repr.code), "2.05");
    assert_eq!(repr.message_id, 0x7d34);
    assert!(repr.options.is_empty());
    assert_eq!(repr.payload, b"22.3 C");
    assert_eq!(emit_vec(&repr), FIG16_RSP);
}

#[test]
fn rfc7252_fig17_with_token() {
    let req = Repr::parse_bytes(FIG17_REQ).unwrap();
    assert_eq!(req.token, &[0x20]);
    assert_eq!(req.message_id, 0x7d35);
    assert_eq!(req.header_len(), 5);
    assert_eq!(emit_vec(&req), FIG17_REQ);
    let msg = Message::new_checked(FIG17_REQ).unwrap();
    assert_eq!(msg.head(), b"\x41\x01\x7d\x35\x20");
    assert_eq!(msg.rest(), b"\xbbtemperature");

    let mut rsp = Repr::new(Kind::Acknowledgement, Code::CONTENT, 0x7d35, &[0x20]);
    rsp.payload = b"22.3 C";
    assert_eq!(emit_vec(&rsp), FIG17_RSP);
    assert_eq!(Repr::parse_bytes(FIG17_RSP).unwrap(), rsp);
}

#[test]
fn empty_ack_and_reset() {
    let ack = Repr::new(Kind::Acknowledgement, Code::EMPTY, 0x7d34, &[]);
    assert_eq!(emit_vec(&ack), [0x60, 0x00, 0x7d, 0x34]);
    let rst = Repr::new(Kind::Reset, Code::EMPTY, 0x7d34, &[]);
    assert_eq!(emit_vec(&rst), [0x70, 0x00, 0x7d, 0x34]);
    assert_eq!(Repr::parse_bytes(&[0x70, 0x00, 0x7d, 0x34]).unwrap(), rst);
    // CoAP ping: an empty CON.
    let ping = Repr::parse_bytes(&[0x40, 0x00, 0x00, 0x01]).unwrap();
    assert_eq!(ping.kind, Kind::Confirmable);
    assert!(ping.code.is_empty());
}

#[test]
fn empty_message_rules() {
    // 0.00 with a token, an option, or a payload is a format error (RFC 7252 §4.1).
    for bytes in [
        &b"\x61\x00\x00\x01\x20"[..],
        &b"\x60\x00\x00\x01\xb1a"[..],
        &b"\x60\x00\x00\x01\xffx"[..],
    ] {
        assert_eq!(
            parse_err(bytes),
            Error::Malformed(Malformed::NonEmptyEmptyMessage)
        );
    }
    let mut r = Repr::new(Kind::Acknowledgement, Code::EMPTY, 1, &[7]);
    assert_eq!(
        r.emit(&mut [0; 16]),
        Err(Error::Misuse(Misuse::EmptyMessageWithContent))
    );
    r.token = &[];
    r.payload = b"x";
    assert_eq!(
        r.emit(&mut [0; 16]),
        Err(Error::Misuse(Misuse::EmptyMessageWithContent))
    );
}

#[test]
fn error_cases() {
    let m = |e| Error::Malformed(e);
    assert_eq!(parse_err(&[]), m(Malformed::Truncated));
    assert_eq!(parse_err(&[0x40, 0x01, 0x00]), m(Malformed::Truncated));
    // TKL 9..=15.
    for tkl in 9u8..=15 {
        let mut b = std::vec![0x40 | tkl, 0x01, 0, 0];
        b.extend(std::iter::repeat_n(0u8, 15));
        assert_eq!(parse_err(&b), m(Malformed::TokenLength(tkl)));
    }
    // Token announced but missing.
    assert_eq!(
        parse_err(&[0x42, 0x01, 0, 0, 0xaa]),
        m(Malformed::Truncated)
    );
    // Version 0, 2, 3.
    for v in [0u8, 2, 3] {
        assert_eq!(parse_err(&[(v << 6), 0x01, 0, 0]), m(Malformed::Version(v)));
    }
    // Delta nibble 15 with length nibble ≠ 15, and length nibble 15.
    assert_eq!(
        parse_err(&[0x40, 0x01, 0, 0, 0xf1, 0]),
        m(Malformed::ReservedOptionNibble)
    );
    assert_eq!(
        parse_err(&[0x40, 0x01, 0, 0, 0xbf, 0]),
        m(Malformed::ReservedOptionNibble)
    );
    // Payload marker with no payload.
    assert_eq!(
        parse_err(&[0x40, 0x01, 0, 0, 0xff]),
        m(Malformed::EmptyPayloadAfterMarker)
    );
    assert_eq!(
        parse_err(b"\x40\x01\x00\x00\xb1a\xff"),
        m(Malformed::EmptyPayloadAfterMarker)
    );
    // Option value runs past the end.
    assert_eq!(
        parse_err(b"\x40\x01\x00\x00\xb5ab"),
        m(Malformed::Truncated)
    );
    // Extended delta / length bytes missing.
    assert_eq!(
        parse_err(&[0x40, 0x01, 0, 0, 0xd0]),
        m(Malformed::Truncated)
    );
    assert_eq!(
        parse_err(&[0x40, 0x01, 0, 0, 0xe0, 0x01]),
        m(Malformed::Truncated)
    );
    assert_eq!(
        parse_err(&[0x40, 0x01, 0, 0, 0x0d]),
        m(Malformed::Truncated)
    );
    assert_eq!(
        parse_err(&[0x40, 0x01, 0, 0, 0x0e, 0x00]),
        m(Malformed::Truncated)
    );
    // Option numbers above 65535: 65535 then delta 1.
    let b = [0x40, 0x01, 0, 0, 0xe0, 0xfe, 0xf2, 0x10];
    assert_eq!(parse_err(&b), m(Malformed::OptionNumberOverflow));
    // ... while exactly 65535 is fine.
    let r = Repr::parse_bytes(&b[..7]).unwrap();
    assert_eq!(r.options[0].number, OptionNumber(65535));
}

#[test]
fn unchecked_accessors_never_panic() {
    let short = Message::new_unchecked(&[0x4f_u8][..]);
    assert_eq!(short.message_id(), 0);
    assert_eq!(short.token(), b"");
    assert_eq!(short.payload(), b"");
    assert_eq!(short.rest(), b"");
    assert!(short.options().next().is_none());
    let mut buf = [0u8; 2];
    let mut m = Message::new_unchecked(&mut buf[..]);
    m.set_message_id(0x1234);
    m.set_token_len(8);
    assert!(m.token_mut().is_empty());
}

#[test]
fn extended_option_forms() {
    // Authorization (256): delta 256 → nibble 14, 256-269 < 0 → no: 256 < 269 → nibble 13,
    // extended byte 256-13 = 243. A 13-byte value: length nibble 13, extended byte 0.
    let token13 = b"abcdefghijklm";
    let mut r = Repr::new(Kind::Confirmable, Code::PUT, 0x0102, &[1, 2]);
    r.push_option(CoapOption::new(OptionNumber::CBOR_ENUM_VERSION, &[1]))
        .unwrap();
    r.push_option(CoapOption::new(OptionNumber::AUTHORIZATION, token13))
        .unwrap();
    let bytes = emit_vec(&r);
    let mut expect = std::vec![0x42, 0x03, 0x01, 0x02, 1, 2, 0xdd, 243, 0];
    expect.extend_from_slice(token13);
    // 257: delta 1, length 1.
    expect.extend_from_slice(&[0x11, 0x01]);
    assert_eq!(bytes, expect);
    assert_eq!(Repr::parse_bytes(&bytes).unwrap(), r);

    // Option 269 from 0: delta nibble 14, two bytes 0x0000. Value lengths 268, 269, 1000.
    for (number, len, head) in [
        (269u16, 12usize, std::vec![0xec, 0x00, 0x00]),
        (1, 268, std::vec![0x1d, 255]),
        (1, 269, std::vec![0x1e, 0x00, 0x00]),
        (1, 1000, std::vec![0x1e, 0x02, 0xdb]),
        (12, 13, std::vec![0xcd, 0x00]),
        (13, 0, std::vec![0xd0, 0x00]),
        (65535, 0, std::vec![0xe0, 0xfe, 0xf2]),
    ] {
        let value = std::vec![0x5a; len];
        let mut r = Repr::new(Kind::NonConfirmable, Code::POST, 7, &[]);
        r.push_option(CoapOption::new(OptionNumber(number), &value))
            .unwrap();
        let bytes = emit_vec(&r);
        let mut expect = std::vec![0x50, 0x02, 0x00, 0x07];
        expect.extend_from_slice(&head);
        expect.extend_from_slice(&value);
        assert_eq!(bytes, expect, "option {number} len {len}");
        assert_eq!(r.buffer_len(), expect.len());
        assert_eq!(Repr::parse_bytes(&bytes).unwrap(), r);
    }
}

#[test]
fn unknown_options_survive_and_order_is_kept() {
    // Unknown options 2048 and 9 with repeated Uri-Path in order.
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[]);
    r.push_option(CoapOption::new(OptionNumber(2048), b"x"))
        .unwrap();
    r.push_option(CoapOption::str(OptionNumber::URI_PATH, "a"))
        .unwrap();
    r.push_option(CoapOption::new(OptionNumber(9), b""))
        .unwrap();
    r.push_option(CoapOption::str(OptionNumber::URI_PATH, "b"))
        .unwrap();
    let nums: Vec<u16> = r.options.iter().map(|o| o.number.0).collect();
    assert_eq!(nums, [9, 11, 11, 2048]);
    let paths: Vec<&[u8]> = r
        .options_of(OptionNumber::URI_PATH)
        .map(|o| o.value())
        .collect();
    assert_eq!(paths, [b"a", b"b"]);
    let bytes = emit_vec(&r);
    assert_eq!(Repr::parse_bytes(&bytes).unwrap(), r);
}

#[test]
fn emit_errors() {
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[0; 9]);
    assert_eq!(
        r.emit(&mut [0; 64]),
        Err(Error::Misuse(Misuse::TokenTooLong))
    );
    r.token = &[];
    r.options
        .push(CoapOption::new(OptionNumber::URI_QUERY, b""))
        .unwrap();
    r.options
        .push(CoapOption::new(OptionNumber::URI_PATH, b""))
        .unwrap();
    assert_eq!(
        r.emit(&mut [0; 64]),
        Err(Error::Misuse(Misuse::OptionsNotSorted))
    );
    let big = std::vec![0u8; MAX_OPTION_VALUE_LEN + 1];
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[]);
    r.push_option(CoapOption::new(OptionNumber(1), &big))
        .unwrap();
    assert_eq!(
        r.emit(&mut [0; 64]),
        Err(Error::Misuse(Misuse::OptionValueTooLong))
    );
    // The largest value fits.
    let max = &big[..MAX_OPTION_VALUE_LEN];
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[]);
    r.push_option(CoapOption::new(OptionNumber(1), max))
        .unwrap();
    let bytes = emit_vec(&r);
    assert_eq!(&bytes[4..7], &[0x1e, 0xff, 0xff]);
    assert_eq!(Repr::parse_bytes(&bytes).unwrap(), r);
    // Too many options.
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[]);
    for _ in 0..MAX_OPTIONS {
        r.push_option(CoapOption::new(OptionNumber::URI_PATH, b"s"))
            .unwrap();
    }
    assert_eq!(
        r.push_option(CoapOption::new(OptionNumber::URI_PATH, b"s")),
        Err(Error::TooManyOptions {
            capacity: MAX_OPTIONS
        })
    );
    let bytes = emit_vec(&r);
    let mut more = bytes.clone();
    more.extend_from_slice(&[0x01, b's']);
    assert_eq!(
        Repr::parse_bytes(&more),
        Err(Error::TooManyOptions {
            capacity: MAX_OPTIONS
        })
    );
    // Buffer too small.
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[]);
    r.payload = b"hello";
    assert_eq!(
        r.emit(&mut [0; 9]),
        Err(Error::BufferTooSmall { required: 10 })
    );
}

#[test]
fn option_number_bits() {
    // RFC 7252 §5.10 table: C/U/N columns.
    let table = [
        (OptionNumber::IF_MATCH, true, false, false),
        (OptionNumber::URI_HOST, true, true, false),
        (OptionNumber::ETAG, false, false, false),
        (OptionNumber::IF_NONE_MATCH, true, false, false),
        (OptionNumber::URI_PORT, true, true, false),
        (OptionNumber::LOCATION_PATH, false, false, false),
        (OptionNumber::URI_PATH, true, true, false),
        (OptionNumber::CONTENT_FORMAT, false, false, false),
        (OptionNumber::MAX_AGE, false, true, false),
        (OptionNumber::URI_QUERY, true, true, false),
        (OptionNumber::ACCEPT, true, false, false),
        (OptionNumber::LOCATION_QUERY, false, false, false),
        (OptionNumber::PROXY_URI, true, true, false),
        (OptionNumber::PROXY_SCHEME, true, true, false),
        (OptionNumber::SIZE1, false, false, true),
        (OptionNumber::SIZE2, false, false, true),
        (OptionNumber::OBSERVE, false, true, false),
        (OptionNumber::BLOCK2, true, true, false),
        (OptionNumber::BLOCK1, true, true, false),
        (OptionNumber::AUTHORIZATION, false, false, false),
        (OptionNumber::CBOR_ENUM_VERSION, true, false, false),
    ];
    for (n, c, u, nck) in table {
        assert_eq!(n.is_critical(), c, "{n} critical");
        assert_eq!(n.is_elective(), !c, "{n} elective");
        assert_eq!(n.is_unsafe(), u, "{n} unsafe");
        assert_eq!(n.is_no_cache_key(), nck, "{n} nocachekey");
    }
}

#[test]
fn critical_option_check() {
    let known = [OptionNumber::URI_PATH, OptionNumber::CONTENT_FORMAT];
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[]);
    r.push_option(CoapOption::str(OptionNumber::URI_PATH, "x"))
        .unwrap();
    // Unknown elective options are ignored.
    r.push_option(CoapOption::new(OptionNumber(2048), b""))
        .unwrap();
    assert_eq!(r.first_unrecognized_critical(&known), None);
    r.push_option(CoapOption::new(OptionNumber(2049), b""))
        .unwrap();
    r.push_option(CoapOption::new(OptionNumber(65001), b""))
        .unwrap();
    assert_eq!(
        r.first_unrecognized_critical(&known),
        Some(OptionNumber(2049))
    );
}

#[test]
fn uint_helpers() {
    let mut b = [0u8; 4];
    assert_eq!(encode_uint(0, &mut b), b"");
    assert_eq!(encode_uint(60, &mut b), [60]);
    assert_eq!(encode_uint(256, &mut b), [1, 0]);
    assert_eq!(encode_uint(0x01_0000, &mut b), [1, 0, 0]);
    assert_eq!(encode_uint(u32::MAX, &mut b), [0xff; 4]);
    assert_eq!(decode_uint(&[]), Ok(0));
    assert_eq!(decode_uint(&[0, 0, 1, 0]), Ok(256));
    assert_eq!(
        decode_uint(&[1, 2, 3, 4, 5]),
        Err(Error::Malformed(Malformed::OptionValueTooLong))
    );
    assert_eq!(
        CoapOption::uint(OptionNumber::CONTENT_FORMAT, 60).value(),
        [60]
    );
    assert_eq!(CoapOption::uint(OptionNumber::MAX_AGE, 0).value(), b"");
    assert_eq!(
        CoapOption::uint(OptionNumber::SIZE1, 1000).value_uint(),
        Ok(1000)
    );
    // Content-Format 60 (application/cbor) in a message: 0xc1 0x3c.
    let mut r = Repr::new(Kind::Confirmable, Code::PUT, 0, &[]);
    r.push_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 60))
        .unwrap();
    assert_eq!(emit_vec(&r), [0x40, 0x03, 0, 0, 0xc1, 0x3c]);
}

#[test]
fn observe_values() {
    // RFC 7641 §2: register 0 (empty value), deregister 1, 3-byte maximum.
    let reg = observe::option(observe::REGISTER).unwrap();
    assert_eq!(reg.number, OptionNumber::OBSERVE);
    assert_eq!(reg.value(), b"");
    assert_eq!(observe::option(observe::DEREGISTER).unwrap().value(), [1]);
    assert_eq!(observe::option(0xff_ffff).unwrap().value(), [0xff; 3]);
    assert_eq!(
        observe::option(0x100_0000),
        Err(Error::Misuse(Misuse::ValueOutOfRange))
    );
    assert_eq!(observe::decode(&[0x12, 0x34]), Ok(0x1234));
    assert_eq!(
        observe::decode(&[0, 0, 0, 1]),
        Err(Error::Malformed(Malformed::OptionValueTooLong))
    );
    // A GET with Observe: 0 (RFC 7641 Figure 2's registration) and Uri-Path "temperature":
    // Observe delta 6 length 0, then Uri-Path delta 5 length 11.
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 0x7d36, &[0x4a]);
    r.push_option(CoapOption::str(OptionNumber::URI_PATH, "temperature"))
        .unwrap();
    r.push_option(reg).unwrap();
    let bytes = emit_vec(&r);
    assert_eq!(&bytes[..7], &[0x41, 0x01, 0x7d, 0x36, 0x4a, 0x60, 0x5b]);
    assert_eq!(&bytes[7..], b"temperature");
}

#[test]
fn block_values() {
    // RFC 7959 §2.2 / Figure 2 notation NUM/M/size.
    let cases: [(u32, bool, u8, &[u8]); 7] = [
        (0, false, 0, &[]),                   // 0/0/16 → uint 0, no bytes
        (0, true, 3, &[0x0b]),                // 0/1/128
        (1, true, 3, &[0x1b]),                // 1/1/128
        (2, false, 3, &[0x23]),               // 2/0/128
        (0, false, 2, &[0x02]),               // 0/0/64
        (4096, true, 6, &[0x01, 0x00, 0x0e]), // 4096/1/1024
        (Block::MAX_NUM, false, 6, &[0xff, 0xff, 0xf6]),
    ];
    for (num, more, szx, bytes) in cases {
        let b = Block { num, more, szx };
        assert_eq!(b.option(OptionNumber::BLOCK2).unwrap().value(), bytes);
        assert_eq!(Block::decode(bytes), Ok(b));
    }
    assert_eq!(
        Block {
            num: 0,
            more: false,
            szx: 0
        }
        .size(),
        16
    );
    assert_eq!(
        Block {
            num: 2,
            more: false,
            szx: 6
        }
        .size(),
        1024
    );
    assert_eq!(
        Block {
            num: 2,
            more: false,
            szx: 6
        }
        .offset(),
        2048
    );
    assert_eq!(
        Block::decode(&[0x07]),
        Err(Error::Malformed(Malformed::ReservedBlockSize))
    );
    assert_eq!(
        Block::decode(&[0, 0, 0, 0]),
        Err(Error::Malformed(Malformed::OptionValueTooLong))
    );
    assert_eq!(
        Block {
            num: 1 << 20,
            more: false,
            szx: 0
        }
        .to_uint(),
        Err(Error::Misuse(Misuse::ValueOutOfRange))
    );
    assert_eq!(
        Block {
            num: 0,
            more: false,
            szx: 7
        }
        .to_uint(),
        Err(Error::Misuse(Misuse::ValueOutOfRange))
    );
}

#[test]
fn message_setters() {
    let mut buf = [0u8; 6];
    let mut m = Message::new_unchecked(&mut buf[..]);
    m.set_version(1);
    m.set_kind(Kind::NonConfirmable);
    m.set_token_len(2);
    m.set_code(Code::new(4, 2));
    m.set_message_id(0xbeef);
    m.token_mut().copy_from_slice(&[9, 8]);
    assert_eq!(m.code(), Code::BAD_OPTION);
    assert_eq!(buf, [0x52, 0x82, 0xbe, 0xef, 9, 8]);
}

fn arb_option() -> impl Strategy<Value = (u16, Vec<u8>)> {
    (
        prop_oneof![0u16..40, 0u16..300, 250u16..1000, any::<u16>()],
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..16),
            proptest::collection::vec(any::<u8>(), 0..300),
        ],
    )
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    (0u8..4).prop_map(Kind::from_bits)
}

proptest! {
    #[test]
    fn roundtrip(
        kind in arb_kind(),
        code in 1u8..=255,
        mid in any::<u16>(),
        token in proptest::collection::vec(any::<u8>(), 0..=8),
        opts in proptest::collection::vec(arb_option(), 0..=MAX_OPTIONS),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut r = Repr::new(kind, Code(code), mid, &token);
        for (n, v) in &opts {
            r.push_option(CoapOption::new(OptionNumber(*n), v)).unwrap();
        }
        r.payload = &payload;
        let bytes = emit_vec(&r);
        let msg = Message::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(msg.header_len(), 4 + token.len());
        let parsed = Repr::parse(&msg).unwrap();
        prop_assert_eq!(&parsed, &r);
        prop_assert_eq!(emit_vec(&parsed), bytes.clone());
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(msg) = Message::new_checked(&bytes[..]) {
            let _ = msg.payload();
            let _ = msg.options().count();
            if let Ok(r) = Repr::parse(&msg) {
                // A parsed message re-emits to the same bytes.
                prop_assert_eq!(emit_vec(&r), bytes.clone());
            }
        }
        let m = Message::new_unchecked(&bytes[..]);
        let _ = (m.token(), m.payload(), m.rest(), m.head(), m.options().count());
        let _ = Repr::parse_bytes(&bytes);
    }

    #[test]
    fn parse_never_panics_structured(
        head in proptest::collection::vec(any::<u8>(), 0..6),
        tail in proptest::collection::vec(prop_oneof![Just(0xffu8), Just(0xdd), Just(0xee), any::<u8>()], 0..40),
    ) {
        let mut bytes = std::vec![0x40 | (head.first().copied().unwrap_or(0) & 0x0f), 1, 0, 0];
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(&tail);
        let _ = Repr::parse_bytes(&bytes);
    }

    #[test]
    fn block_roundtrip(num in 0u32..=Block::MAX_NUM, more in any::<bool>(), szx in 0u8..=6) {
        let b = Block { num, more, szx };
        let o = b.option(OptionNumber::BLOCK1).unwrap();
        prop_assert!(o.value().len() <= 3);
        prop_assert_eq!(Block::decode(o.value()), Ok(b));
    }

    #[test]
    fn uint_roundtrip(v in any::<u32>()) {
        let mut b = [0u8; 4];
        let enc = encode_uint(v, &mut b);
        prop_assert_eq!(enc.len(), uint_len(v));
        prop_assert!(enc.first() != Some(&0));
        prop_assert_eq!(decode_uint(enc), Ok(v));
    }
}
