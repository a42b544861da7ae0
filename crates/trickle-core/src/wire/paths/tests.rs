use super::*;
use crate::wire::coap::{Code, Kind};
use proptest::prelude::*;
use std::string::String;
use std::vec::Vec;

const TSV: &str = include_str!("../../../tests/data/msc3079-v1-coap-paths.tsv");

fn rows() -> Vec<(&'static str, &'static str)> {
    let mut lines = TSV.lines();
    assert_eq!(lines.next(), Some("enum\tpath"));
    lines.map(|l| l.split_once('\t').expect("tab")).collect()
}

fn http(p: &CoapPath<'_>, table: Table, version: ApiVersion) -> String {
    let mut s = String::new();
    p.write_http(table, version, &mut s).expect("expand");
    assert_eq!(p.http_len(table, version), Ok(s.len()));
    s
}

fn text(p: &CoapPath<'_>) -> String {
    std::format!("{p}")
}

fn segs<'a>(p: &CoapPath<'a>) -> Vec<&'a str> {
    p.segments.iter().copied().collect()
}

/// Fills a template's parameters with `!p{i}:example.org`.
fn fill(template: &str) -> (String, Vec<String>) {
    let mut params = Vec::new();
    let filled: Vec<String> = template
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                let v = std::format!("!p{}:example.org", params.len());
                params.push(v.clone());
                v
            } else {
                s.into()
            }
        })
        .collect();
    (filled.join("/"), params)
}

#[test]
fn tsv_table_is_byte_exact() {
    let rows = rows();
    assert_eq!(rows.len(), MSC3079_V1.len());
    for ((code, path), ep) in rows.iter().zip(MSC3079_V1.iter()) {
        assert_eq!(*code, ep.code);
        let mut t = String::new();
        ep.write_template(ApiVersion::R0, &mut t).unwrap();
        assert_eq!(&t, path, "code {code}");
    }
}

#[test]
fn every_tsv_row_both_ways() {
    for table in [Table::Msc3079V1, Table::TrickleV1] {
        for (code, path) in rows() {
            let (concrete, params) = fill(path);
            let v3 = concrete.replacen("/r0/", "/v3/", 1);
            for input in [&concrete, &v3] {
                let mut scratch = [0u8; 0];
                let p = CoapPath::from_http(input, table, &mut scratch).unwrap();
                let mut expect = std::vec![code];
                expect.extend(params.iter().map(String::as_str));
                assert_eq!(segs(&p), expect, "{input}");
                assert!(p.queries.is_empty());
                // Exactly one entry matches.
                assert_eq!(
                    table
                        .endpoints()
                        .filter(|e| e.matches(input[1..].split('/')))
                        .count(),
                    1
                );
                assert_eq!(http(&p, table, ApiVersion::R0), concrete);
                assert_eq!(http(&p, table, ApiVersion::V3), v3);
                assert_eq!(http(&p, table, ApiVersion::default()), v3);
            }
        }
    }
}

#[test]
fn match_http_and_names() {
    let ep = Table::TrickleV1
        .match_http("/_matrix/client/r0/rooms/!r:s/send/m.room.message/1")
        .unwrap();
    assert_eq!((ep.code, ep.param_count()), ("9", 3));
    assert_eq!(
        Table::Msc3079V1.match_http("/_matrix/client/v3/account/whoami"),
        None
    );
    assert_eq!(Table::TrickleV1.match_http("_matrix/client/v3/sync"), None);
    assert_eq!(
        Table::TrickleV1.lookup(b'~').unwrap().rest,
        "rooms/{roomId}/threads"
    );
    assert_eq!(Table::Msc3079V1.name(), "msc3079-v1");
    assert_eq!(Table::TrickleV1.name(), "trickle-v1");
    assert_eq!(Table::Msc3079V1.endpoints().count(), 57);
    assert_eq!(Table::TrickleV1.endpoints().count(), 65);
}

#[test]
fn versions_has_no_version_segment() {
    let p = CoapPath::from_http("/_matrix/client/versions", Table::TrickleV1, &mut []).unwrap();
    assert_eq!(segs(&p), ["0"]);
    assert_eq!(text(&p), "/0");
    assert_eq!(
        http(&p, Table::TrickleV1, ApiVersion::V3),
        "/_matrix/client/versions"
    );
    // With a version segment it is not an MSC3079 path: passed through.
    let p = CoapPath::from_http("/_matrix/client/v3/versions", Table::TrickleV1, &mut []).unwrap();
    assert_eq!(segs(&p), ["_matrix", "client", "v3", "versions"]);
}

#[test]
fn msc3079_examples() {
    let send =
        "/_matrix/client/r0/rooms/!7mqP7DYBUOmwAweF:localhost/send/m.room.message/$.AAABeH6obLU";
    let p = CoapPath::from_http(send, Table::Msc3079V1, &mut []).unwrap();
    assert_eq!(
        text(&p),
        "/9/!7mqP7DYBUOmwAweF:localhost/m.room.message/$.AAABeH6obLU"
    );
    assert_eq!(
        segs(&p),
        [
            "9",
            "!7mqP7DYBUOmwAweF:localhost",
            "m.room.message",
            "$.AAABeH6obLU"
        ]
    );
    assert_eq!(http(&p, Table::Msc3079V1, ApiVersion::R0), send);
    let back = CoapPath::from_text(
        "/9/!7mqP7DYBUOmwAweF:localhost/m.room.message/$.AAABeH6obLU",
        &mut [],
    )
    .unwrap();
    assert_eq!(back, p);

    let sync = CoapPath::from_http("/_matrix/client/r0/sync", Table::Msc3079V1, &mut []).unwrap();
    assert_eq!(text(&sync), "/7");
    assert_eq!(
        http(&sync, Table::Msc3079V1, ApiVersion::R0),
        "/_matrix/client/r0/sync"
    );
    assert_eq!(
        http(&sync, Table::Msc3079V1, ApiVersion::V3),
        "/_matrix/client/v3/sync"
    );
}

#[test]
fn on_the_wire_options() {
    // The send example as CoAP options: 9, room, type, txn — one Uri-Path option each.
    let send = "/_matrix/client/v3/rooms/!r:x/send/m.room.message/t1?ts=1";
    let mut scratch = [0u8; 8];
    let p = CoapPath::from_http(send, Table::TrickleV1, &mut scratch).unwrap();
    let mut repr = Repr::new(Kind::Confirmable, Code::PUT, 0x0001, &[]);
    p.push_to_repr(&mut repr).unwrap();
    let mut buf = [0u8; 64];
    let n = repr.emit(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        b"\x40\x03\x00\x01\xb19\x04!r:x\x0d\x01m.room.message\x02t1\x44ts=1"
    );
    let parsed = Repr::parse_bytes(&buf[..n]).unwrap();
    let back = CoapPath::from_repr(&parsed).unwrap();
    assert_eq!(back, p);
    assert_eq!(http(&back, Table::TrickleV1, ApiVersion::V3), send);
}

#[test]
fn percent_encoding() {
    let cases: [(&str, &str); 9] = [
        ("a#b", "a%23b"),
        ("a/b", "a%2Fb"),
        ("a b", "a%20b"),
        ("é", "%C3%A9"),
        ("🙂", "%F0%9F%99%82"),
        ("100%", "100%25"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("!$&'()*+,;=:@-._~", "!$&'()*+,;=:@-._~"),
    ];
    for (decoded, encoded) in cases {
        let target = std::format!("/_matrix/client/v3/rooms/!r:s/state/m.room.x/{encoded}");
        let mut scratch = [0u8; 32];
        let p = CoapPath::from_http(&target, Table::TrickleV1, &mut scratch).unwrap();
        assert_eq!(segs(&p), ["8", "!r:s", "m.room.x", decoded]);
        assert_eq!(http(&p, Table::TrickleV1, ApiVersion::V3), target);
    }
    // Lower-case hex is read; upper-case is written.
    let mut scratch = [0u8; 32];
    let p = CoapPath::from_http(
        "/_matrix/client/v3/join/%23room%3aexample.org",
        Table::TrickleV1,
        &mut scratch,
    )
    .unwrap();
    assert_eq!(segs(&p), ["L", "#room:example.org"]);
    assert_eq!(
        http(&p, Table::TrickleV1, ApiVersion::V3),
        "/_matrix/client/v3/join/%23room:example.org"
    );
}

#[test]
fn query_items() {
    let target = "/_matrix/client/v3/sync?filter=%7B%22room%22%3A1%7D&since=s1+2&&timeout=0";
    let mut scratch = [0u8; 32];
    let p = CoapPath::from_http(target, Table::TrickleV1, &mut scratch).unwrap();
    assert_eq!(segs(&p), ["7"]);
    let q: Vec<&str> = p.queries.iter().copied().collect();
    assert_eq!(q, ["filter={\"room\":1}", "since=s1 2", "timeout=0"]);
    assert_eq!(
        http(&p, Table::TrickleV1, ApiVersion::V3),
        "/_matrix/client/v3/sync?filter=%7B%22room%22:1%7D&since=s1%202&timeout=0"
    );
    let mut p2 = CoapPath::default();
    p2.segments.push("7").unwrap();
    p2.queries.push("a=b&c+d%").unwrap();
    assert_eq!(
        http(&p2, Table::TrickleV1, ApiVersion::V3),
        "/_matrix/client/v3/sync?a=b%26c%2Bd%25"
    );
    assert_eq!(text(&p2), "/7?a=b%26c+d%25");
}

#[test]
fn unknown_paths_pass_through() {
    for target in [
        "/_matrix/client/v3/rooms/!r:s/aliases",
        "/_matrix/media/v3/config",
        "/.well-known/matrix/client",
        "/_matrix/client/v1/rooms/!r:s/hierarchy?limit=5",
        "/_matrix/client/v3/pushrules",
        "/",
    ] {
        let mut scratch = [0u8; 0];
        let p = CoapPath::from_http(target, Table::TrickleV1, &mut scratch).unwrap();
        assert!(p.segments.first().is_none_or(|s| s.len() > 1), "{target}");
        assert_eq!(http(&p, Table::TrickleV1, ApiVersion::V3), target);
    }
    let p = CoapPath::from_http(
        "/_matrix/client/v3/rooms/!r:s/aliases",
        Table::TrickleV1,
        &mut [],
    )
    .unwrap();
    assert_eq!(
        segs(&p),
        ["_matrix", "client", "v3", "rooms", "!r:s", "aliases"]
    );
    assert_eq!(text(&p), "/_matrix/client/v3/rooms/!r:s/aliases");
    // A trickle-v1 path is not compressed with the MSC3079 table.
    let p = CoapPath::from_http(
        "/_matrix/client/v3/account/whoami",
        Table::Msc3079V1,
        &mut [],
    )
    .unwrap();
    assert_eq!(p.segments.len(), 5);
    let p = CoapPath::from_http(
        "/_matrix/client/v3/account/whoami",
        Table::TrickleV1,
        &mut [],
    )
    .unwrap();
    assert_eq!(segs(&p), ["v"]);
    // r0 is not accepted for v1-only or v3-only endpoints.
    let p = CoapPath::from_http("/_matrix/client/r0/refresh", Table::TrickleV1, &mut []).unwrap();
    assert_eq!(p.segments.len(), 4);
    let p = CoapPath::from_http(
        "/_matrix/client/v3/rooms/!r/relations/$e",
        Table::TrickleV1,
        &mut [],
    )
    .unwrap();
    assert_eq!(p.segments.len(), 7);
}

#[test]
fn trickle_v1_extra_codes() {
    let cases = [
        ("/_matrix/client/v3/account/whoami", "/v"),
        (
            "/_matrix/client/v3/rooms/!r:s/state/m.room.name",
            "/w/!r:s/m.room.name",
        ),
        (
            "/_matrix/client/v3/rooms/!r:s/state/m.room.name/",
            "/8/!r:s/m.room.name/",
        ),
        ("/_matrix/client/v1/rooms/!r:s/relations/$e", "/x/!r:s/$e"),
        (
            "/_matrix/client/v1/rooms/!r:s/relations/$e/m.thread",
            "/y/!r:s/$e/m.thread",
        ),
        ("/_matrix/client/v3/refresh", "/z"),
        ("/_matrix/client/v3/keys/signatures/upload", "/-"),
        ("/_matrix/client/v3/keys/device_signing/upload", "/_"),
        (
            "/_matrix/client/v1/rooms/!r:s/threads?include=all",
            "/~/!r:s?include=all",
        ),
    ];
    for (target, t) in cases {
        let p = CoapPath::from_http(target, Table::TrickleV1, &mut []).unwrap();
        assert_eq!(text(&p), t);
        assert_eq!(http(&p, Table::TrickleV1, ApiVersion::V3), target);
        assert_eq!(CoapPath::from_text(t, &mut []).unwrap(), p);
    }
    // No code is used twice, every code is one ASCII byte, and the extras don't reuse v1 codes.
    let codes: Vec<u8> = Table::TrickleV1
        .endpoints()
        .map(|e| e.code_byte())
        .collect();
    for (i, c) in codes.iter().enumerate() {
        assert!(c.is_ascii_graphic() && !codes[..i].contains(c));
    }
    assert!(TRICKLE_V1_EXTRA.iter().all(|e| e.code.len() == 1));
}

#[test]
fn text_form_escapes() {
    let mut p = CoapPath::default();
    p.segments.push("8").unwrap();
    p.segments.push("!r:s").unwrap();
    p.segments.push("m.x").unwrap();
    p.segments.push("a/b%c?d").unwrap();
    p.queries.push("k=v&w").unwrap();
    let t = text(&p);
    assert_eq!(t, "/8/!r:s/m.x/a%2Fb%25c%3Fd?k=v%26w");
    let mut scratch = [0u8; 16];
    assert_eq!(CoapPath::from_text(&t, &mut scratch).unwrap(), p);
    assert_eq!(
        http(&p, Table::TrickleV1, ApiVersion::V3),
        "/_matrix/client/v3/rooms/!r:s/state/m.x/a%2Fb%25c%3Fd?k=v%26w"
    );
}

#[test]
fn bad_input() {
    let m = |e| Error::Malformed(e);
    let p = CoapPath::from_text("/9/!r/m.room.message", &mut []).unwrap();
    assert_eq!(
        p.write_http(Table::TrickleV1, ApiVersion::V3, &mut String::new()),
        Err(m(Malformed::ParameterCount {
            code: b'9',
            expected: 3,
            found: 2
        }))
    );
    let p = CoapPath::from_text("/7/extra", &mut []).unwrap();
    assert_eq!(
        p.http_len(Table::TrickleV1, ApiVersion::V3),
        Err(m(Malformed::ParameterCount {
            code: b'7',
            expected: 0,
            found: 1
        }))
    );
    let p = CoapPath::from_text("/!", &mut []).unwrap();
    assert_eq!(
        p.endpoint(Table::TrickleV1),
        Err(m(Malformed::UnknownPathCode(b'!')))
    );
    let p = CoapPath::from_text("/v", &mut []).unwrap();
    assert_eq!(
        p.endpoint(Table::Msc3079V1),
        Err(m(Malformed::UnknownPathCode(b'v')))
    );
    assert!(p.endpoint(Table::TrickleV1).unwrap().is_some());
    // Output buffer too small.
    let p = CoapPath::from_text("/7", &mut []).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(
        p.write_http_to_slice(Table::TrickleV1, ApiVersion::V3, &mut small),
        Err(Error::BufferTooSmall { required: 23 })
    );
    let mut ok = [0u8; 23];
    assert_eq!(
        p.write_http_to_slice(Table::TrickleV1, ApiVersion::V3, &mut ok),
        Ok(23)
    );
    assert_eq!(&ok, b"/_matrix/client/v3/sync");
    // Scratch too small: the whole need is reported.
    let mut scratch = [0u8; 3];
    assert_eq!(
        CoapPath::from_http(
            "/_matrix/client/v3/join/%23a%3Ab?x=%20y",
            Table::TrickleV1,
            &mut scratch
        ),
        Err(Error::BufferTooSmall { required: 8 })
    );
    // Percent-encoding and UTF-8.
    for bad in ["/a%zz", "/ab%4", "/ab%"] {
        assert_eq!(
            CoapPath::from_http(bad, Table::TrickleV1, &mut [0; 8]),
            Err(m(Malformed::PercentEncoding))
        );
    }
    assert_eq!(
        CoapPath::from_http("/ab%FF", Table::TrickleV1, &mut [0; 8]),
        Err(m(Malformed::NotUtf8))
    );
    assert_eq!(
        CoapPath::from_http("_matrix/client/v3/sync", Table::TrickleV1, &mut []),
        Err(m(Malformed::NotAbsolutePath))
    );
    // A one-byte first segment of an unknown path would read as a code.
    assert_eq!(
        CoapPath::from_http("/a/b", Table::TrickleV1, &mut []),
        Err(Error::Misuse(Misuse::AmbiguousPath))
    );
    // Capacity.
    let long = "/ab".repeat(MAX_SEGMENTS + 1);
    assert_eq!(
        CoapPath::from_http(&long, Table::TrickleV1, &mut []),
        Err(Error::TooManySegments {
            capacity: MAX_SEGMENTS
        })
    );
    // Non-UTF-8 option value.
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[]);
    r.push_option(CoapOption::new(OptionNumber::URI_PATH, &[0xff]))
        .unwrap();
    assert_eq!(CoapPath::from_repr(&r), Err(m(Malformed::NotUtf8)));
}

fn arb_param() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,12}", "[!$%&/?#+=:@. a-z]{0,8}"]
}

proptest! {
    #[test]
    fn compressed_roundtrip(
        idx in 0usize..(MSC3079_V1.len() + TRICKLE_V1_EXTRA.len()),
        params in proptest::collection::vec(arb_param(), 4),
        queries in proptest::collection::vec("\\PC{1,10}", 0..4),
        r0 in any::<bool>(),
    ) {
        let ep = Table::TrickleV1.endpoints().nth(idx).unwrap();
        let mut p = CoapPath::default();
        p.segments.push(ep.code).unwrap();
        for s in params.iter().take(ep.param_count()) {
            p.segments.push(s).unwrap();
        }
        for q in &queries {
            p.queries.push(q).unwrap();
        }
        let version = if r0 { ApiVersion::R0 } else { ApiVersion::V3 };
        let target = http(&p, Table::TrickleV1, version);
        let mut scratch = [0u8; 512];
        let back = CoapPath::from_http(&target, Table::TrickleV1, &mut scratch).unwrap();
        prop_assert_eq!(&back, &p);
        let t = text(&p);
        let mut scratch = [0u8; 512];
        prop_assert_eq!(&CoapPath::from_text(&t, &mut scratch).unwrap(), &p);
        // Through a CoAP message and back.
        let mut repr = Repr::new(Kind::Confirmable, Code::GET, 1, &[]);
        p.push_to_repr(&mut repr).unwrap();
        let mut buf = [0u8; 1024];
        let n = repr.emit(&mut buf).unwrap();
        let parsed = Repr::parse_bytes(&buf[..n]).unwrap();
        prop_assert_eq!(&CoapPath::from_repr(&parsed).unwrap(), &p);
    }

    #[test]
    fn passthrough_roundtrip(
        first in "[a-z.]{2,6}",
        rest in proptest::collection::vec(arb_param(), 0..6),
    ) {
        let mut p = CoapPath::default();
        p.segments.push(&first).unwrap();
        for s in &rest {
            p.segments.push(s).unwrap();
        }
        let target = http(&p, Table::TrickleV1, ApiVersion::V3);
        let mut scratch = [0u8; 512];
        prop_assert_eq!(&CoapPath::from_http(&target, Table::TrickleV1, &mut scratch).unwrap(), &p);
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}", table in prop_oneof![Just(Table::Msc3079V1), Just(Table::TrickleV1)]) {
        let mut scratch = [0u8; 16];
        if let Ok(p) = CoapPath::from_http(&s, table, &mut scratch) {
            let _ = p.write_http_to_slice(table, ApiVersion::V3, &mut [0u8; 8]);
        }
        let mut scratch = [0u8; 16];
        if let Ok(p) = CoapPath::from_text(&s, &mut scratch) {
            let _ = p.http_len(table, ApiVersion::R0);
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn emit(repr: &Repr<'_>) -> Vec<u8> {
    let mut buf = std::vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut buf), Ok(buf.len()));
    buf
}

/// The examples in docs/PROTOCOL.md; the bytes were produced independently by aiocoap 0.4.17's
/// encoder (`Message.encode()`).
#[test]
fn protocol_md_examples_match_aiocoap() {
    // GET /_matrix/client/v3/sync?since=s72594_4483_1934&timeout=30000
    let p = CoapPath::from_http(
        "/_matrix/client/v3/sync?since=s72594_4483_1934&timeout=30000",
        Table::TrickleV1,
        &mut [],
    )
    .unwrap();
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 1, &[1]);
    p.push_to_repr(&mut r).unwrap();
    let sync = hex(
        "41 01 00 01 01 b1 37 4d 09 73 69 6e 63 65 3d 73 37 32 35 39 34 5f 34 34 38 33 5f 31 39 33 34 0d 00 74 69 6d 65 6f 75 74 3d 33 30 30 30 30",
    );
    assert_eq!(emit(&r), sync);
    assert_eq!(sync.len(), 46);

    // PUT the MSC3079 send example with Content-Format 60 and a CBOR body.
    let body = hex("a2 64 62 6f 64 79 62 68 69 67 6d 73 67 74 79 70 65 66 6d 2e 74 65 78 74");
    let p = CoapPath::from_http(
        "/_matrix/client/v3/rooms/!7mqP7DYBUOmwAweF:localhost/send/m.room.message/$.AAABeH6obLU",
        Table::TrickleV1,
        &mut [],
    )
    .unwrap();
    let mut r = Repr::new(Kind::Confirmable, Code::PUT, 2, &[2]);
    p.push_to_repr(&mut r).unwrap();
    r.push_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 60))
        .unwrap();
    r.payload = &body;
    let send = hex(
        "41 03 00 02 02 b1 39 0d 0e 21 37 6d 71 50 37 44 59 42 55 4f 6d 77 41 77 65 46 3a 6c 6f 63 61 6c 68 6f 73 74 0d 01 6d 2e 72 6f 6f 6d 2e 6d 65 73 73 61 67 65 0d 00 24 2e 41 41 41 42 65 48 36 6f 62 4c 55 11 3c ff a2 64 62 6f 64 79 62 68 69 67 6d 73 67 74 79 70 65 66 6d 2e 74 65 78 74",
    );
    assert_eq!(emit(&r), send);
    assert_eq!(send.len(), 94);
    assert_eq!(Repr::parse_bytes(&send).unwrap(), r);

    // GET /7 with Authorization (256) and CBOR-enum-version (257).
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 3, &[3]);
    r.push_option(CoapOption::str(OptionNumber::URI_PATH, "7"))
        .unwrap();
    r.push_option(CoapOption::str(
        OptionNumber::AUTHORIZATION,
        "syt_dGVzdA_abcdefghij0123",
    ))
    .unwrap();
    r.push_option(CoapOption::uint(OptionNumber::CBOR_ENUM_VERSION, 1))
        .unwrap();
    let auth = hex(
        "41 01 00 03 03 b1 37 dd e8 0c 73 79 74 5f 64 47 56 7a 64 41 5f 61 62 63 64 65 66 67 68 69 6a 30 31 32 33 11 01",
    );
    assert_eq!(emit(&r), auth);

    // Observe registration on /7.
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 4, &[4]);
    r.push_option(CoapOption::str(OptionNumber::URI_PATH, "7"))
        .unwrap();
    r.push_option(crate::wire::coap::observe::option(0).unwrap())
        .unwrap();
    assert_eq!(emit(&r), hex("41 01 00 04 04 60 51 37"));

    // Block2 1/1/64 in a piggybacked response.
    let x = [b'x'; 64];
    let mut r = Repr::new(Kind::Acknowledgement, Code::CONTENT, 5, &[5]);
    let b = crate::wire::coap::Block {
        num: 1,
        more: true,
        szx: 2,
    };
    r.push_option(b.option(OptionNumber::BLOCK2).unwrap())
        .unwrap();
    r.payload = &x;
    let bytes = emit(&r);
    assert_eq!(bytes[..8], hex("61 45 00 05 05 d1 0a 1a"));
    assert_eq!(bytes.len(), 73);
}
