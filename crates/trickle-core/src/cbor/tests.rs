//! Byte-exact vectors (RFC 8949 Appendix A, MSC3079, Trickle v1) and property tests.

use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;
use serde_json::Value;

use super::error::{malformed, unsupported};
use super::*;

const MSC3079_EXAMPLE: &str = r#"{"type":"m.room.message","content":{"msgtype":"m.text","body":"Hello World"},"sender":"@alice:localhost","room_id":"!foo:localhost","unsigned":{"bool_value":true,"null_value":null}}"#;
const MSC3079_EXAMPLE_CBOR: &str = "a5026e6d2e726f6f6d2e6d65737361676503a2181b6b48656c6c6f20576f726c64181c666d2e74657874056e21666f6f3a6c6f63616c686f7374067040616c6963653a6c6f63616c686f737409a26a626f6f6c5f76616c7565f56a6e756c6c5f76616c7565f6";
const TRICKLE_EXAMPLE_CBOR: &str = "a500e001a2086b48656c6c6f20576f726c6409e1027040616c6963653a6c6f63616c686f7374046e21666f6f3a6c6f63616c686f737406a26a626f6f6c5f76616c7565f56a6e756c6c5f76616c7565f6";

const TABLES: [Table; 3] = [Table::PLAIN, Table::MSC3079_V1, Table::TRICKLE_V1];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| std::format!("{x:02x}")).collect()
}

fn j2c(json: &str, t: &Table) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; 1 << 16];
    let n = json_to_cbor(json.as_bytes(), t, &Limits::DEFAULT, &mut out)?;
    out.truncate(n);
    Ok(out)
}

fn c2j(cbor: &[u8], t: &Table) -> Result<String, Error> {
    let mut out = vec![0u8; 1 << 17];
    let n = cbor_to_json(cbor, t, &Limits::DEFAULT, &mut out)?;
    out.truncate(n);
    Ok(String::from_utf8(out).unwrap())
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn roundtrip_eq(json: &str, t: &Table) {
    let cbor = j2c(json, t).unwrap();
    let back = c2j(&cbor, t).unwrap();
    assert_eq!(parse(&back), parse(json), "{json} via {}", t.name());
}

#[test]
fn msc3079_example_is_byte_exact() {
    let cbor = j2c(MSC3079_EXAMPLE, &Table::MSC3079_V1).unwrap();
    assert_eq!(to_hex(&cbor), MSC3079_EXAMPLE_CBOR);
    assert_eq!(cbor.len(), 102);
    roundtrip_eq(MSC3079_EXAMPLE, &Table::MSC3079_V1);
}

#[test]
fn trickle_v1_hello_is_10_bytes() {
    let json = r#"{"msgtype":"m.text","body":"Hello"}"#;
    let cbor = j2c(json, &Table::TRICKLE_V1).unwrap();
    assert_eq!(cbor, b"\xa2\x08\x65Hello\x09\xe1");
    assert_eq!(cbor.len(), 10);
    assert_eq!(
        c2j(&cbor, &Table::TRICKLE_V1).unwrap(),
        r#"{"body":"Hello","msgtype":"m.text"}"#
    );
    roundtrip_eq(json, &Table::TRICKLE_V1);
    // For comparison: MSC3079 v1 and plain.
    assert_eq!(j2c(json, &Table::MSC3079_V1).unwrap().len(), 18);
    assert_eq!(j2c(json, &Table::PLAIN).unwrap().len(), 27);
}

#[test]
fn trickle_v1_msc3079_example_is_80_bytes() {
    let cbor = j2c(MSC3079_EXAMPLE, &Table::TRICKLE_V1).unwrap();
    assert_eq!(to_hex(&cbor), TRICKLE_EXAMPLE_CBOR);
    assert_eq!(cbor.len(), 80);
    roundtrip_eq(MSC3079_EXAMPLE, &Table::TRICKLE_V1);
    assert_eq!(j2c(MSC3079_EXAMPLE, &Table::PLAIN).unwrap().len(), 143);
}

#[test]
fn rfc8949_appendix_a() {
    let vectors: &[(&str, &str)] = &[
        ("0", "00"),
        ("1", "01"),
        ("10", "0a"),
        ("23", "17"),
        ("24", "1818"),
        ("25", "1819"),
        ("100", "1864"),
        ("1000", "1903e8"),
        ("1000000", "1a000f4240"),
        ("1000000000000", "1b000000e8d4a51000"),
        ("18446744073709551615", "1bffffffffffffffff"),
        ("-18446744073709551616", "3bffffffffffffffff"),
        ("-1", "20"),
        ("-10", "29"),
        ("-100", "3863"),
        ("-1000", "3903e7"),
        ("0.0", "f90000"),
        ("-0.0", "f98000"),
        ("1.0", "f93c00"),
        ("1.1", "fb3ff199999999999a"),
        ("1.5", "f93e00"),
        ("65504.0", "f97bff"),
        ("100000.0", "fa47c35000"),
        ("3.4028234663852886e+38", "fa7f7fffff"),
        ("1.0e+300", "fb7e37e43c8800759c"),
        ("5.960464477539063e-8", "f90001"),
        ("0.00006103515625", "f90400"),
        ("-4.0", "f9c400"),
        ("-4.1", "fbc010666666666666"),
        ("false", "f4"),
        ("true", "f5"),
        ("null", "f6"),
        (r#""""#, "60"),
        (r#""a""#, "6161"),
        (r#""IETF""#, "6449455446"),
        (r#""\"\\""#, "62225c"),
        (r#""\u00fc""#, "62c3bc"),
        (r#""\u6c34""#, "63e6b0b4"),
        (r#""\ud800\udd51""#, "64f0908591"),
        ("[]", "80"),
        ("[1,2,3]", "83010203"),
        ("[1,[2,3],[4,5]]", "8301820203820405"),
        (
            "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25]",
            "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
        ),
        ("{}", "a0"),
        (r#"{"a":1,"b":[2,3]}"#, "a26161016162820203"),
        (r#"["a",{"b":"c"}]"#, "826161a161626163"),
        (
            r#"{"a":"A","b":"B","c":"C","d":"D","e":"E"}"#,
            "a56161614161626142616361436164614461656145",
        ),
    ];
    for (json, want) in vectors {
        let got = j2c(json, &Table::PLAIN).unwrap();
        assert_eq!(to_hex(&got), *want, "{json}");
        // And back: the same JSON value.
        let back = c2j(&got, &Table::PLAIN).unwrap();
        assert_eq!(parse(&back), parse(json), "{json} -> {back}");
    }
}

#[test]
fn cbor_to_json_texts() {
    let cases: &[(&str, &str)] = &[
        ("1bffffffffffffffff", "18446744073709551615"),
        ("3bffffffffffffffff", "-18446744073709551616"),
        ("f93e00", "1.5"),
        ("fa47c35000", "100000.0"),
        ("fb7e37e43c8800759c", "1e300"),
        ("f90001", "5.960464477539063e-8"),
        ("f98000", "-0.0"),
        ("fb3ff199999999999a", "1.1"),
        // Non-preferred encodings are accepted on input.
        ("1800", "0"),
        ("fb3ff8000000000000", "1.5"),
        ("62c3bc", "\"\u{fc}\""),
        (
            "6a000a1f7f225c2f0d0908",
            r#""\u0000\n\u001f\u007f\"\\/\r\t\b""#,
        ),
        ("8301820203820405", "[1,[2,3],[4,5]]"),
        ("a26161016162820203", r#"{"a":1,"b":[2,3]}"#),
    ];
    for (cbor, want) in cases {
        let got = c2j(&hex(cbor), &Table::PLAIN).unwrap();
        // DEL is not escaped by JSON; compare values for that one.
        assert_eq!(parse(&got), parse(want), "{cbor}");
        if !cbor.contains("7f") {
            assert_eq!(got, *want, "{cbor}");
        }
    }
    let got = c2j(&hex("6a000a1f7f225c2f0d0908"), &Table::PLAIN).unwrap();
    assert_eq!(got, "\"\\u0000\\n\\u001f\u{7f}\\\"\\\\/\\r\\t\\b\"");
}

#[test]
fn map_keys_sorted_by_encoded_bytes() {
    // Shorter text keys first, then bytewise.
    let got = j2c(r#"{"aa":1,"b":2,"c":3,"a":4}"#, &Table::PLAIN).unwrap();
    assert_eq!(to_hex(&got), "a461610461620261630362616101");
}

#[test]
fn integer_keys_sort_before_text_keys() {
    // msc3079-v1: body = 27 (0x18 0x1b) sorts before any text key.
    let got = j2c(r#"{"zz":1,"body":2,"a":3}"#, &Table::MSC3079_V1).unwrap();
    assert_eq!(to_hex(&got), "a3181b02616103627a7a01");
    // trickle-v1: 0..=23 (one byte), then 105.. (0x18 nn), then -1..=-24 (0x20..), then text.
    let got = j2c(
        r#"{"x":0,"rooms":1,"user_id":2,"type":3,"next_batch":4}"#,
        &Table::TRICKLE_V1,
    )
    .unwrap();
    assert_eq!(to_hex(&got), "a5000318690220042101617800");
}

#[test]
fn maps_and_arrays_with_long_heads() {
    for n in [23usize, 24, 255, 256, 300] {
        let body: Vec<String> = (0..n).map(|i| std::format!("\"k{i}\":{i}")).collect();
        let json = std::format!("{{{}}}", body.join(","));
        let cbor = j2c(&json, &Table::PLAIN).unwrap();
        let want_head = match n {
            0..=23 => vec![0xa0 | n as u8],
            24..=255 => vec![0xb8, n as u8],
            _ => vec![0xb9, (n >> 8) as u8, n as u8],
        };
        assert_eq!(&cbor[..want_head.len()], &want_head[..]);
        roundtrip_eq(&json, &Table::PLAIN);
        let arr: Vec<String> = (0..n).map(|i| std::format!("{i}")).collect();
        roundtrip_eq(&std::format!("[{}]", arr.join(",")), &Table::PLAIN);
        // Nested: the long map inside an array inside a map.
        roundtrip_eq(
            &std::format!("{{\"z\":[{json}],\"a\":1}}"),
            &Table::TRICKLE_V1,
        );
    }
}

#[test]
fn string_key_wins_over_integer_key() {
    // {27: "int", "body": "text"} and {"body": "text", 27: "int"} under msc3079-v1.
    let a = hex("a2181b63696e7464626f64796474657874");
    assert_eq!(c2j(&a, &Table::MSC3079_V1).unwrap(), r#"{"body":"text"}"#);
    let b = hex("a264626f64796474657874181b63696e74");
    assert_eq!(c2j(&b, &Table::MSC3079_V1).unwrap(), r#"{"body":"text"}"#);
    // With other entries around, and the same for trickle-v1 (body = 8).
    let c = hex("a3016178086378797a64626f6479617a");
    assert_eq!(
        c2j(&c, &Table::TRICKLE_V1).unwrap(),
        r#"{"content":"x","body":"z"}"#
    );
}

#[test]
fn numeric_looking_keys_stay_text() {
    let got = j2c(r#"{"8":1,"27":2}"#, &Table::MSC3079_V1).unwrap();
    assert_eq!(to_hex(&got), "a261380162323702");
}

#[test]
fn numeric_looking_keys_decode_as_text() {
    // A map whose last value is missing.
    let cbor = hex("a2613801623237");
    assert!(c2j(&cbor, &Table::MSC3079_V1).is_err());
    let cbor = j2c(r#"{"8":1,"27":2}"#, &Table::MSC3079_V1).unwrap();
    assert_eq!(c2j(&cbor, &Table::MSC3079_V1).unwrap(), r#"{"8":1,"27":2}"#);
    // The integer 8 is a key of the table: origin_server_ts.
    assert_eq!(
        c2j(&hex("a10801"), &Table::MSC3079_V1).unwrap(),
        r#"{"origin_server_ts":1}"#
    );
    // "8" and 8 in one map are different keys.
    assert_eq!(
        c2j(&hex("a26138010802"), &Table::MSC3079_V1).unwrap(),
        r#"{"8":1,"origin_server_ts":2}"#
    );
}

#[test]
fn unknown_integer_keys_are_errors() {
    let err = c2j(&hex("a1186901"), &Table::MSC3079_V1).unwrap_err(); // 105
    assert_eq!(
        err,
        Error::Unsupported {
            at: 1,
            reason: Unsupported::UnknownKey(105)
        }
    );
    let err = c2j(&hex("a10001"), &Table::MSC3079_V1).unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            reason: Unsupported::UnknownKey(0),
            ..
        }
    ));
    let err = c2j(&hex("a10101"), &Table::PLAIN).unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            reason: Unsupported::UnknownKey(1),
            ..
        }
    ));
    let err = c2j(&hex("a13b7fffffffffffffff01"), &Table::TRICKLE_V1).unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            reason: Unsupported::UnknownKey(i64::MIN),
            ..
        }
    ));
    let err = c2j(&hex("a13bffffffffffffffff01"), &Table::TRICKLE_V1).unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            reason: Unsupported::InvalidKey,
            ..
        }
    ));
    // Keys that are neither text nor integers.
    for cbor in ["a1f401", "a1800001", "a1410001", "a1f93c0001"] {
        let err = c2j(&hex(cbor), &Table::TRICKLE_V1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unsupported {
                    reason: Unsupported::InvalidKey,
                    ..
                }
            ),
            "{cbor}: {err:?}"
        );
    }
}

#[test]
fn duplicate_keys_are_errors() {
    for json in [
        r#"{"a":1,"a":2}"#,
        r#"{"a":1,"b":3,"\u0061":2}"#,
        r#"{"body":1,"body":2}"#,
        r#"{"x":{"msgtype":1,"msgtype":2}}"#,
    ] {
        for t in &TABLES {
            let err = j2c(json, t).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Malformed {
                        reason: Malformed::DuplicateKey,
                        ..
                    }
                ),
                "{json}: {err:?}"
            );
        }
    }
    // CBOR: text twice, integer twice.
    let err = c2j(&hex("a2616101616102"), &Table::PLAIN).unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            reason: Unsupported::DuplicateKey,
            ..
        }
    ));
    let err = c2j(&hex("a2181b01181b02"), &Table::MSC3079_V1).unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            reason: Unsupported::DuplicateKey,
            ..
        }
    ));
}

#[test]
fn depth_limit_without_stack_overflow() {
    let deep = "[".repeat(1000) + &"]".repeat(1000);
    let err = j2c(&deep, &Table::PLAIN).unwrap_err();
    assert_eq!(
        err,
        Error::LimitExceeded {
            at: 32,
            limit: Limit::Depth
        }
    );
    let deep_obj = r#"{"a":"#.repeat(1000) + "1" + &"}".repeat(1000);
    assert!(matches!(
        j2c(&deep_obj, &Table::TRICKLE_V1),
        Err(Error::LimitExceeded {
            limit: Limit::Depth,
            ..
        })
    ));
    let mut cbor = vec![0x81u8; 1000];
    cbor.push(0x00);
    assert_eq!(
        c2j(&cbor, &Table::PLAIN).unwrap_err(),
        Error::LimitExceeded {
            at: 32,
            limit: Limit::Depth
        }
    );
    // Exactly 32 levels are fine; 33 are not.
    let ok = "[".repeat(32) + &"]".repeat(32);
    let c = j2c(&ok, &Table::PLAIN).unwrap();
    assert_eq!(c2j(&c, &Table::PLAIN).unwrap(), ok);
    let too = "[".repeat(33) + &"]".repeat(33);
    assert!(j2c(&too, &Table::PLAIN).is_err());
    // A lower configured depth.
    let lim = Limits {
        max_depth: 2,
        ..Limits::DEFAULT
    };
    let mut out = [0u8; 64];
    assert!(json_to_cbor(b"[[1]]", &Table::PLAIN, &lim, &mut out).is_ok());
    assert!(json_to_cbor(b"[[[1]]]", &Table::PLAIN, &lim, &mut out).is_err());
    assert!(cbor_to_json(&hex("81818101"), &Table::PLAIN, &lim, &mut out).is_err());
}

#[test]
fn item_limit() {
    let lim = Limits {
        max_items: 4,
        ..Limits::DEFAULT
    };
    let mut out = [0u8; 64];
    assert!(json_to_cbor(b"[1,2,3]", &Table::PLAIN, &lim, &mut out).is_ok());
    assert_eq!(
        json_to_cbor(b"[1,2,3,4]", &Table::PLAIN, &lim, &mut out),
        Err(Error::LimitExceeded {
            at: 7,
            limit: Limit::Items
        })
    );
    // Keys count as items: {"a":1,"b":2} is 5 items.
    assert!(json_to_cbor(br#"{"a":1,"b":2}"#, &Table::PLAIN, &lim, &mut out).is_err());
    assert!(cbor_to_json(&hex("83010203"), &Table::PLAIN, &lim, &mut out).is_ok());
    assert!(cbor_to_json(&hex("8401020304"), &Table::PLAIN, &lim, &mut out).is_err());
    // A huge announced count with little data fails fast as truncated.
    assert!(matches!(
        cbor_to_json(
            &hex("9bffffffffffffffff00"),
            &Table::PLAIN,
            &Limits::DEFAULT,
            &mut out
        ),
        Err(Error::Malformed {
            reason: Malformed::UnexpectedEnd,
            ..
        })
    ));
}

#[test]
fn truncated_input_is_an_error_both_ways() {
    for t in &TABLES {
        let cbor = j2c(MSC3079_EXAMPLE, t).unwrap();
        for n in 0..cbor.len() {
            let err = c2j(&cbor[..n], t).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Malformed {
                        reason: Malformed::UnexpectedEnd,
                        ..
                    }
                ),
                "{} {n}: {err:?}",
                t.name()
            );
        }
        for n in 0..MSC3079_EXAMPLE.len() {
            assert!(j2c(&MSC3079_EXAMPLE[..n], t).is_err(), "{n}");
        }
    }
}

#[test]
fn invalid_json_is_rejected() {
    let cases: &[(&[u8], Malformed)] = &[
        (b"", Malformed::UnexpectedEnd),
        (b" ", Malformed::UnexpectedEnd),
        (b"1 2", Malformed::TrailingData),
        (b"{}x", Malformed::TrailingData),
        (b"[1,]", Malformed::UnexpectedByte),
        (b"[,1]", Malformed::UnexpectedByte),
        (b"{\"a\"}", Malformed::UnexpectedByte),
        (b"{\"a\":1,}", Malformed::UnexpectedByte),
        (b"{1:2}", Malformed::UnexpectedByte),
        (b"[1}", Malformed::UnexpectedByte),
        (b"{\"a\":1]", Malformed::UnexpectedByte),
        (b"tru", Malformed::UnexpectedEnd),
        (b"trUe", Malformed::UnexpectedByte),
        (b"nul", Malformed::UnexpectedEnd),
        (b"01", Malformed::TrailingData),
        (b"-", Malformed::InvalidNumber),
        (b"-a", Malformed::InvalidNumber),
        (b"1.", Malformed::InvalidNumber),
        (b"1.e3", Malformed::InvalidNumber),
        (b"1e", Malformed::InvalidNumber),
        (b"1e+", Malformed::InvalidNumber),
        (b".5", Malformed::UnexpectedByte),
        (b"+1", Malformed::UnexpectedByte),
        (b"NaN", Malformed::UnexpectedByte),
        (b"\"abc", Malformed::UnexpectedEnd),
        (b"\"\\x\"", Malformed::InvalidEscape),
        (b"\"\\u12G4\"", Malformed::InvalidEscape),
        (b"\"\\u12", Malformed::UnexpectedEnd),
        (b"\"\\ud800\"", Malformed::LoneSurrogate),
        (b"\"\\ud800\\u0041\"", Malformed::LoneSurrogate),
        (b"\"\\udc00\"", Malformed::LoneSurrogate),
        (b"\"\\ud800\\ud800\"", Malformed::LoneSurrogate),
        (b"\"a\nb\"", Malformed::ControlCharacter),
        (b"\"a\x00\"", Malformed::ControlCharacter),
        (b"\"\xff\"", Malformed::InvalidUtf8),
        (b"\"\xed\xa0\x80\"", Malformed::InvalidUtf8),
        (b"[\"\xc3\"]", Malformed::InvalidUtf8),
    ];
    let mut out = [0u8; 64];
    for (json, want) in cases {
        match json_to_cbor(json, &Table::TRICKLE_V1, &Limits::DEFAULT, &mut out) {
            Err(Error::Malformed { reason, .. }) => {
                assert_eq!(reason, *want, "{}", String::from_utf8_lossy(json))
            }
            other => panic!("{}: {other:?}", String::from_utf8_lossy(json)),
        }
        // serde_json agrees that these are not JSON.
        assert!(serde_json::from_slice::<Value>(json).is_err());
    }
    for big in ["1e400", "-1e400", "1e309"] {
        assert!(matches!(
            j2c(big, &Table::PLAIN),
            Err(Error::Unsupported {
                reason: Unsupported::NonFiniteNumber,
                ..
            })
        ));
    }
}

#[test]
fn integers_beyond_64_bits_become_floats() {
    // 2^64 is exact in f32.
    assert_eq!(
        to_hex(&j2c("18446744073709551616", &Table::PLAIN).unwrap()),
        "fa5f800000"
    );
    assert_eq!(
        to_hex(&j2c("-18446744073709551617", &Table::PLAIN).unwrap()),
        "fadf800000"
    );
    // Same value as serde_json reads.
    for n in [
        "18446744073709551616",
        "123456789012345678901234567890",
        "-0",
    ] {
        roundtrip_eq(n, &Table::PLAIN);
    }
    assert_eq!(to_hex(&j2c("-0", &Table::PLAIN).unwrap()), "f98000");
    assert_eq!(
        to_hex(&j2c("-9223372036854775808", &Table::PLAIN).unwrap()),
        "3b7fffffffffffffff"
    );
}

#[test]
fn cbor_without_json_form_is_rejected() {
    let cases: &[(&str, Error)] = &[
        ("4100", unsupported(0, Unsupported::ByteString)),
        ("c11a514b67b0", unsupported(0, Unsupported::Tag(1))),
        ("c2420100", unsupported(0, Unsupported::Tag(2))),
        ("f7", unsupported(0, Unsupported::Undefined)),
        ("f0", unsupported(0, Unsupported::SimpleValue(16))),
        ("f820", unsupported(0, Unsupported::SimpleValue(32))),
        ("f8ff", unsupported(0, Unsupported::SimpleValue(255))),
        ("f97c00", unsupported(0, Unsupported::NonFiniteNumber)),
        ("f97e00", unsupported(0, Unsupported::NonFiniteNumber)),
        ("f9fc00", unsupported(0, Unsupported::NonFiniteNumber)),
        ("fa7f800000", unsupported(0, Unsupported::NonFiniteNumber)),
        (
            "fb7ff8000000000000",
            unsupported(0, Unsupported::NonFiniteNumber),
        ),
        ("8141ff", unsupported(1, Unsupported::ByteString)),
        ("f818", malformed(0, Malformed::ReservedEncoding)),
        ("1c", malformed(0, Malformed::ReservedEncoding)),
        ("ff", malformed(0, Malformed::IndefiniteLength)),
        ("9f01ff", malformed(0, Malformed::IndefiniteLength)),
        ("bf6161ff", malformed(0, Malformed::IndefiniteLength)),
        ("7f6161ff", malformed(0, Malformed::IndefiniteLength)),
        ("0000", malformed(1, Malformed::TrailingData)),
        ("62c328", malformed(1, Malformed::InvalidUtf8)),
        ("63eda080", malformed(1, Malformed::InvalidUtf8)),
        ("a161ff01", malformed(2, Malformed::InvalidUtf8)),
        ("6261", malformed(0, Malformed::UnexpectedEnd)),
        ("1a0000", malformed(0, Malformed::UnexpectedEnd)),
        ("7bffffffffffffffff", malformed(0, Malformed::UnexpectedEnd)),
    ];
    for (cbor, want) in cases {
        assert_eq!(c2j(&hex(cbor), &Table::PLAIN).unwrap_err(), *want, "{cbor}");
    }
    // Without values in the table, references are plain unknown simple values / tags.
    assert_eq!(
        c2j(&hex("e0"), &Table::MSC3079_V1).unwrap_err(),
        unsupported(0, Unsupported::SimpleValue(0))
    );
    assert_eq!(
        c2j(&hex("c600"), &Table::MSC3079_V1).unwrap_err(),
        unsupported(0, Unsupported::Tag(6))
    );
}

#[test]
fn value_references() {
    let t = &Table::TRICKLE_V1;
    let cases: &[(&str, &str)] = &[
        ("\"m.room.message\"", "e0"),
        ("\"m.receipt\"", "ef"),
        ("\"ban\"", "c600"),
        ("\"knock\"", "c620"),
        ("\"m.room.encrypted\"", "c601"),
        ("\"M_LIMIT_EXCEEDED\"", "c637"),
        ("\"M_UNKNOWN\"", "c61818"),
        ("\"M_BAD_JSON\"", "c63818"),
        // Not in the table: text. Keys are never value-substituted.
        ("\"m.text2\"", "676d2e7465787432"),
        (r#"{"m.text":"m.text"}"#, "a1666d2e74657874e1"),
    ];
    for (json, want) in cases {
        assert_eq!(to_hex(&j2c(json, t).unwrap()), *want, "{json}");
        roundtrip_eq(json, t);
    }
    // Every table value round-trips, with the documented size.
    for (i, v) in t.values().enumerate() {
        let json = std::format!("\"{v}\"");
        let cbor = j2c(&json, t).unwrap();
        let want_len = match i {
            0..=15 => 1,
            16..=63 => 2,
            _ => 3,
        };
        assert_eq!(cbor.len(), want_len, "{v}");
        assert_eq!(c2j(&cbor, t).unwrap(), json);
    }
    // Unknown references.
    let n = t.values().len() as u64;
    assert_eq!(
        c2j(&hex("c6190400"), t).unwrap_err(),
        unsupported(0, Unsupported::UnknownValue(16 + 2 * 1024))
    );
    assert!(n < 16 + 2 * 1024);
    assert_eq!(
        c2j(&hex("c66161"), t).unwrap_err(),
        unsupported(0, Unsupported::Tag(6))
    );
    assert_eq!(
        c2j(&hex("c700"), t).unwrap_err(),
        unsupported(0, Unsupported::Tag(7))
    );
    assert_eq!(
        c2j(&hex("f3"), t).unwrap_err(),
        unsupported(0, Unsupported::SimpleValue(19))
    );
    // Truncated reference.
    assert!(matches!(
        c2j(&hex("c6"), t),
        Err(Error::Malformed {
            reason: Malformed::UnexpectedEnd,
            ..
        })
    ));
}

#[test]
fn strings_with_escapes_roundtrip() {
    for json in [
        r#""\u0000\u001f\"\\\/\b\f\n\r\t""#,
        r#""é 水 😀 \u00e9 \ud83d\ude00""#,
        r#"{"\n":"\u2028","ключ":"значение"}"#,
    ] {
        for t in &TABLES {
            roundtrip_eq(json, t);
        }
    }
    // "\/" decodes to "/", which is written unescaped.
    assert_eq!(
        c2j(&j2c(r#""\/""#, &Table::PLAIN).unwrap(), &Table::PLAIN).unwrap(),
        "\"/\""
    );
}

#[test]
fn buffer_too_small_reports_exact_size() {
    let json = r#"{"zz":[1,2,{"y":1,"b":2}],"a":"m.text","k":[
        "long string that does not fit anywhere near the end"],"m":{"q":1,"p":2}}"#;
    let big = r#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"ka":10,"kb":11,"kc":12,"kd":13,"ke":14,"kf":15,"kg":16,"kh":17,"ki":18,"kj":19,"kk":20,"kl":21,"km":22,"kn":23,"ko":24}"#;
    for input in [json, big, MSC3079_EXAMPLE] {
        for t in &TABLES {
            let full = j2c(input, t).unwrap();
            for size in 0..full.len() {
                let mut out = vec![0u8; size];
                assert_eq!(
                    json_to_cbor(input.as_bytes(), t, &Limits::DEFAULT, &mut out),
                    Err(Error::BufferTooSmall {
                        required: full.len()
                    }),
                    "{} {size}",
                    t.name()
                );
            }
            let text = c2j(&full, t).unwrap();
            for size in 0..text.len() {
                let mut out = vec![0u8; size];
                assert_eq!(
                    cbor_to_json(&full, t, &Limits::DEFAULT, &mut out),
                    Err(Error::BufferTooSmall {
                        required: text.len()
                    })
                );
            }
        }
    }
}

#[test]
fn tables_are_consistent() {
    for t in &TABLES {
        let keys: std::vec::Vec<(i64, &str)> = t.keys().collect();
        assert_eq!(keys.len(), t.keys().len());
        for (i, (k, name)) in keys.iter().enumerate() {
            for (k2, name2) in &keys[i + 1..] {
                assert_ne!(k, k2, "{}", t.name());
                assert_ne!(name, name2, "{}", t.name());
            }
            assert_eq!(t.key_number(name), Some(*k));
            assert_eq!(t.key_name(*k), Some(*name));
        }
        let values: std::vec::Vec<&str> = t.values().collect();
        assert_eq!(values.len(), t.values().len());
        for (i, v) in values.iter().enumerate() {
            assert!(!values[i + 1..].contains(v), "{v}");
            assert_eq!(t.value_index(v), Some(i));
            assert!(v.len() <= 64);
        }
    }
    assert_eq!(Table::MSC3079_V1.keys().len(), 104);
    for (i, (k, _)) in Table::MSC3079_V1.keys().enumerate() {
        assert_eq!(k, i as i64 + 1);
    }
    assert_eq!(Table::MSC3079_V1.key_number("m.fully_read"), Some(92));
    assert_eq!(Table::MSC3079_V1.key_number("room_alias"), Some(104));
    let one_byte = Table::TRICKLE_V1
        .keys()
        .filter(|(k, _)| (-24..=23).contains(k))
        .count();
    assert_eq!(one_byte, 48);
    assert_eq!(Table::TRICKLE_V1.key_number("msgtype"), Some(9));
    assert_eq!(Table::TRICKLE_V1.value_index("m.text"), Some(1));
    assert_eq!(Table::TRICKLE_V1.key_number("user_id"), Some(105));
    // 24..=104 are unassigned in trickle-v1, so msc3079-v1 bodies with such keys fail.
    assert!((24..=104).all(|k| Table::TRICKLE_V1.key_name(k).is_none()));
    assert_eq!(Table::TRICKLE_V1.name(), "trickle-v1");
}

#[test]
fn device_writer_matches_transcoder() {
    let mut buf = [0u8; 10];
    let mut w = Writer::new(&mut buf[..], &Table::TRICKLE_V1);
    w.map(2)
        .unwrap()
        .key("body")
        .unwrap()
        .encoder()
        .str("Hello")
        .unwrap();
    w.key("msgtype").unwrap().str_value("m.text").unwrap();
    let want = j2c(r#"{"msgtype":"m.text","body":"Hello"}"#, &Table::TRICKLE_V1).unwrap();
    assert_eq!(&buf[..], &want[..]);
    // Unknown names and strings stay text; tag-6 references work.
    let mut buf = [0u8; 32];
    let mut w = Writer::new(&mut buf[..], &Table::TRICKLE_V1);
    w.map(2).unwrap();
    w.key("membership").unwrap().str_value("ban").unwrap();
    w.key("zz").unwrap().str_value("M_UNKNOWN").unwrap();
    let n = 32 - w.into_writer().len();
    assert_eq!(to_hex(&buf[..n]), "a20ac600627a7ac61818");
    assert_eq!(
        c2j(&buf[..n], &Table::TRICKLE_V1).unwrap(),
        r#"{"membership":"ban","zz":"M_UNKNOWN"}"#
    );
    // Too small a buffer is an error, not a panic.
    let mut tiny = [0u8; 3];
    let mut w = Writer::new(&mut tiny[..], &Table::TRICKLE_V1);
    assert!(
        w.map(1)
            .unwrap()
            .key("body")
            .unwrap()
            .encoder()
            .str("Hello")
            .is_err()
    );
}

#[test]
fn device_reader_reads_events() {
    let cbor = hex(TRICKLE_EXAMPLE_CBOR);
    let mut r = Reader::new(&cbor, &Table::TRICKLE_V1);
    let mut seen = Vec::new();
    for _ in 0..r.map().unwrap() {
        let key = r.key().unwrap();
        match key {
            "type" | "sender" | "room_id" => seen.push((key, r.str_value().unwrap())),
            "content" => {
                for _ in 0..r.map().unwrap() {
                    let k = r.key().unwrap();
                    seen.push((k, r.str_value().unwrap()));
                }
            }
            _ => r.skip().unwrap(),
        }
    }
    assert_eq!(
        seen,
        [
            ("type", "m.room.message"),
            ("body", "Hello World"),
            ("msgtype", "m.text"),
            ("sender", "@alice:localhost"),
            ("room_id", "!foo:localhost"),
        ]
    );
    assert_eq!(r.decoder().position(), cbor.len());
    // Errors, not panics.
    let mut r = Reader::new(&[0xa1, 0x18, 0x69, 0x01], &Table::MSC3079_V1);
    assert_eq!(r.map().unwrap(), 1);
    assert_eq!(
        r.key().unwrap_err(),
        unsupported(1, Unsupported::UnknownKey(105))
    );
    let mut r = Reader::new(&[0x81], &Table::TRICKLE_V1);
    assert!(r.map().is_err());
    assert_eq!(r.array().unwrap(), 1);
    assert!(r.str_value().is_err());
    assert!(r.skip().is_err());
    let mut r = Reader::new(&[0xc6, 0x18, 0x18], &Table::TRICKLE_V1);
    assert_eq!(r.str_value().unwrap(), "M_UNKNOWN");
}

#[test]
fn float_debug_output_is_json() {
    for v in [
        0.1,
        1e16,
        1e-7,
        123456.789,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        -2.5e-300,
    ] {
        let json = serde_json::to_string(&v).unwrap();
        let cbor = j2c(&json, &Table::PLAIN).unwrap();
        let back = c2j(&cbor, &Table::PLAIN).unwrap();
        assert_eq!(back.parse::<f64>().unwrap(), v);
        assert_eq!(parse(&back), parse(&json), "{json} -> {back}");
    }
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "body",
            "msgtype",
            "type",
            "content",
            "8",
            "27",
            "m.fully_read",
            "rooms",
            "",
            "user_id",
            "m.text",
            "predecessor",
            "room_alias",
        ])
        .prop_map(String::from),
        any::<String>(),
        "[a-z0-9_.]{0,12}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        (-1000i32..1000).prop_map(|i| Value::from(f64::from(i) / 8.0)),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Value::from(f64::from(f))),
        prop::sample::select(Table::TRICKLE_V1.values().collect::<std::vec::Vec<_>>())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 12, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..12)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check_deterministic_maps(cbor: &[u8]) {
    // Re-encoding the decoded JSON gives the same bytes (the form is canonical).
    for t in &TABLES {
        if let Ok(json) = c2j(cbor, t) {
            let again = j2c(&json, t).unwrap();
            let json2 = c2j(&again, t).unwrap();
            assert_eq!(parse(&json), parse(&json2));
            assert_eq!(j2c(&json2, t).unwrap(), again);
        }
    }
}

proptest! {

    #[test]
    fn json_roundtrip_all_tables(v in arb_json()) {
        let text = serde_json::to_string(&v).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        for t in &TABLES {
            let cbor = j2c(&text, t).unwrap();
            // Whitespace does not change the encoding.
            prop_assert_eq!(&j2c(&pretty, t).unwrap(), &cbor);
            let back = c2j(&cbor, t).unwrap();
            prop_assert_eq!(parse(&back), v.clone());
            // Output is compact: re-encoding is a fixed point.
            prop_assert_eq!(j2c(&back, t).unwrap(), cbor.clone());
            prop_assert_eq!(c2j(&cbor, t).unwrap(), back);
        }
    }

    #[test]
    fn cbor_to_json_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut out = [0u8; 256];
        for t in &TABLES {
            if let Ok(n) = cbor_to_json(&bytes, t, &Limits::DEFAULT, &mut out) {
                let text = core::str::from_utf8(&out[..n]).unwrap();
                prop_assert!(serde_json::from_str::<Value>(text).is_ok(), "{}", text);
            }
        }
        check_deterministic_maps(&bytes);
    }

    #[test]
    fn json_to_cbor_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut out = [0u8; 128];
        for t in &TABLES {
            let _ = json_to_cbor(&bytes, t, &Limits::DEFAULT, &mut out);
        }
    }

    #[test]
    fn json_parser_agrees_with_serde_json(
        parts in prop::collection::vec(prop::sample::select(vec![
            "{", "}", "[", "]", ",", ":", " ", "\"a\"", "\"b\"", "\"\\u00e9\"", "\"\\ud83d\\ude00\"",
            "\"\\ud83d\"", "\"\\q\"", "0", "-", "1", "12", ".5", "e3", "E-2", "-0", "true", "nul",
            "null", "false", "\"m.text\"", "\"body\"", "1e400", "\n", "\t", "x", "\"\u{1}\"",
        ]), 0..14)
    ) {
        let text: String = parts.concat();
        let ours = j2c(&text, &Table::TRICKLE_V1);
        let theirs = serde_json::from_str::<Value>(&text);
        match (ours, theirs) {
            (Ok(cbor), Ok(v)) => prop_assert_eq!(parse(&c2j(&cbor, &Table::TRICKLE_V1).unwrap()), v),
            (Err(Error::Malformed { reason: Malformed::DuplicateKey, .. }), Ok(_)) => {}
            (Err(e), Ok(v)) => prop_assert!(false, "{} rejected ({:?}) but serde_json read {}", text, e, v),
            (Ok(_), Err(e)) => prop_assert!(false, "{} accepted but serde_json: {}", text, e),
            (Err(_), Err(_)) => {}
        }
    }
}

#[test]
fn non_shortest_key_spellings_are_still_duplicates() {
    // "a" as 0x61 'a' and as 0x78 0x01 'a'; 8 as 0x08 and as 0x18 0x08.
    let err = c2j(&hex("a261610178016102"), &Table::PLAIN).unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            reason: Unsupported::DuplicateKey,
            ..
        }
    ));
    let err = c2j(&hex("a20801180802"), &Table::MSC3079_V1).unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            reason: Unsupported::DuplicateKey,
            ..
        }
    ));
    // A text key that the table would substitute forces the twin check even when sorted.
    let cbor = hex("a2181b016462 6f647902".replace(' ', "").as_str());
    assert_eq!(c2j(&cbor, &Table::MSC3079_V1).unwrap(), r#"{"body":2}"#);
}

proptest! {

    #[test]
    fn encoding_ignores_key_order(
        keys in prop::collection::btree_set(arb_key(), 0..40),
        seed in any::<u64>(),
    ) {
        let keys: Vec<String> = keys.into_iter().collect();
        let mut shuffled = keys.clone();
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut rev = keys.clone();
        rev.reverse();
        for t in &TABLES {
            // Same key/value pairs in three orders give the same bytes.
            let pairs = |ks: &[String]| -> String {
                let body: Vec<String> = ks
                    .iter()
                    .map(|k| {
                        let i = keys.iter().position(|x| x == k).unwrap() % 3;
                        std::format!("{}:{}", serde_json::to_string(k).unwrap(), i)
                    })
                    .collect();
                std::format!("{{{}}}", body.join(","))
            };
            let a = j2c(&pairs(&keys), t).unwrap();
            // An exact-size buffer has no scratch tail: the in-place sort gives the same bytes.
            for order in [&keys, &shuffled, &rev] {
                let mut exact = vec![0u8; a.len()];
                let n = json_to_cbor(pairs(order).as_bytes(), t, &Limits::DEFAULT, &mut exact);
                prop_assert_eq!(n, Ok(a.len()));
                prop_assert_eq!(&exact, &a);
            }
            prop_assert_eq!(&j2c(&pairs(&shuffled), t).unwrap(), &a);
            prop_assert_eq!(&j2c(&pairs(&rev), t).unwrap(), &a);
            // And decode to the same object.
            prop_assert_eq!(parse(&c2j(&a, t).unwrap()), parse(&pairs(&keys)));
        }
    }
}

/// Rows of the markdown tables in `section` of docs/PROTOCOL.md, split into groups of
/// `width` cells whose first cell is a number.
fn doc_rows(section_start: &str, section_end: &str, width: usize) -> Vec<Vec<String>> {
    let doc = include_str!("../../../../docs/PROTOCOL.md");
    let start = doc.find(section_start).unwrap();
    let end = start + doc[start..].find(section_end).unwrap();
    let mut rows = Vec::new();
    for line in doc[start..end].lines() {
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| String::from(c.trim().trim_matches('`')))
            .collect();
        if !line.starts_with("| ") || !cells.len().is_multiple_of(width) {
            continue;
        }
        for group in cells.chunks(width) {
            if group[0].parse::<i64>().is_ok() {
                rows.push(group.to_vec());
            }
        }
    }
    rows
}

#[test]
fn protocol_doc_tables_match_the_code() {
    for (table, start, end) in [
        (
            Table::MSC3079_V1,
            "### Table `msc3079-v1`",
            "MSC3079's example event",
        ),
        (Table::TRICKLE_V1, "#### Keys", "#### Value references"),
    ] {
        let rows = doc_rows(start, end, 3);
        assert_eq!(rows.len(), table.keys().len(), "{}", table.name());
        for r in &rows {
            let n: i64 = r[0].parse().unwrap();
            assert_eq!(table.key_name(n), Some(r[1].as_str()), "{r:?}");
            let mut out = [0u8; 16];
            let json = std::format!("{{{}:0}}", serde_json::to_string(&r[1]).unwrap());
            let len = json_to_cbor(json.as_bytes(), &table, &Limits::DEFAULT, &mut out).unwrap();
            assert_eq!(to_hex(&out[1..len - 1]), r[2], "{r:?}");
        }
    }
    let rows = doc_rows("#### Value references", "#### Worked examples", 4);
    assert_eq!(rows.len(), Table::TRICKLE_V1.values().len());
    for r in &rows {
        let i: u64 = r[0].parse().unwrap();
        assert_eq!(Table::TRICKLE_V1.value(i), Some(r[1].as_str()), "{r:?}");
        let cbor = j2c(&serde_json::to_string(&r[1]).unwrap(), &Table::TRICKLE_V1).unwrap();
        assert_eq!(to_hex(&cbor), r[3], "{r:?}");
    }
}

proptest! {

    /// Valid bodies with a byte changed or cut short: every decoder returns, and whatever it
    /// accepts is valid JSON that encodes again.
    #[test]
    fn mutated_cbor_never_panics(
        v in arb_json(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let text = serde_json::to_string(&v).unwrap();
        for t in &TABLES {
            let mut cbor = j2c(&text, t).unwrap();
            let i = at.index(cbor.len());
            cbor[i] = byte;
            let c = cut.index(cbor.len() + 1);
            for input in [&cbor[..], &cbor[..c]] {
                if let Ok(json) = c2j(input, t) {
                    let v2 = parse(&json);
                    let again = j2c(&json, t).unwrap();
                    prop_assert_eq!(parse(&c2j(&again, t).unwrap()), v2);
                }
                let mut r = Reader::new(input, t);
                let _ = r.map().and_then(|_| r.key()).and_then(|_| r.str_value());
            }
        }
    }

    /// Valid JSON with a byte changed or cut short: the encoder returns, and whatever it accepts
    /// serde_json accepts too.
    #[test]
    fn mutated_json_never_panics(
        v in arb_json(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut text = serde_json::to_string(&v).unwrap().into_bytes();
        let i = at.index(text.len());
        text[i] = byte;
        for t in &TABLES {
            let mut out = vec![0u8; 4096];
            if json_to_cbor(&text, t, &Limits::DEFAULT, &mut out).is_ok() {
                prop_assert!(serde_json::from_slice::<Value>(&text).is_ok());
            }
        }
    }
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = seed | 1;
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

#[test]
fn large_maps_sort_the_same_with_and_without_scratch() {
    let n = 600;
    let body: Vec<String> = shuffled(n, 7)
        .iter()
        .map(|i| std::format!("\"k{i}\":[{i}]"))
        .collect();
    let json = std::format!("{{{}}}", body.join(","));
    let with_tail = j2c(&json, &Table::PLAIN).unwrap();
    let mut exact = vec![0u8; with_tail.len()];
    let len = json_to_cbor(json.as_bytes(), &Table::PLAIN, &Limits::DEFAULT, &mut exact).unwrap();
    assert_eq!(len, with_tail.len());
    assert_eq!(exact, with_tail);
    assert_eq!(&with_tail[..3], &[0xb9, 0x02, 0x58]);
    // Sorted output decodes in linear time, whatever its size.
    roundtrip_eq(&json, &Table::PLAIN);
    // Duplicates are found on both paths.
    let dup = std::format!("{{{},\"k17\":0}}", body.join(","));
    assert!(j2c(&dup, &Table::PLAIN).is_err());
    let mut exact = vec![0u8; with_tail.len() + 8];
    assert!(matches!(
        json_to_cbor(dup.as_bytes(), &Table::PLAIN, &Limits::DEFAULT, &mut exact),
        Err(Error::Malformed {
            reason: Malformed::DuplicateKey,
            ..
        })
    ));
}

#[test]
fn unsorted_cbor_maps_are_bounded() {
    // Keys "k000".."kNNN" written in descending order: not deterministic.
    let unsorted = |n: usize| {
        let mut cbor = vec![0xb9, (n >> 8) as u8, n as u8];
        for i in (0..n).rev() {
            cbor.push(0x64);
            cbor.extend_from_slice(std::format!("k{i:03}").as_bytes());
            cbor.push(0x01);
        }
        cbor
    };
    assert!(c2j(&unsorted(128), &Table::PLAIN).is_ok());
    assert_eq!(
        c2j(&unsorted(129), &Table::PLAIN).unwrap_err(),
        Error::LimitExceeded {
            at: 0,
            limit: Limit::UnsortedEntries
        }
    );
    let lim = Limits {
        max_unsorted_entries: 1000,
        ..Limits::DEFAULT
    };
    let mut out = vec![0u8; 1 << 16];
    assert!(cbor_to_json(&unsorted(999), &Table::PLAIN, &lim, &mut out).is_ok());
}

#[test]
fn wrong_table_is_detected_where_possible() {
    // trickle-v1 bytes under msc3079-v1 / plain: key 0 is not defined.
    let t = hex(TRICKLE_EXAMPLE_CBOR);
    for wrong in [Table::MSC3079_V1, Table::PLAIN] {
        assert!(matches!(
            c2j(&t, &wrong),
            Err(Error::Unsupported {
                reason: Unsupported::UnknownKey(0),
                ..
            })
        ));
    }
    // msc3079-v1 bytes under trickle-v1: content's body (27) is not defined.
    let m = hex(MSC3079_EXAMPLE_CBOR);
    assert!(matches!(
        c2j(&m, &Table::TRICKLE_V1),
        Err(Error::Unsupported {
            reason: Unsupported::UnknownKey(27),
            ..
        })
    ));
    // A bare value reference is not JSON without the table.
    assert!(c2j(&hex("e1"), &Table::MSC3079_V1).is_err());
}

#[test]
fn typical_body_sizes() {
    // (JSON, plain, msc3079-v1, trickle-v1) byte counts; every body round-trips.
    let bodies: &[(&str, [usize; 3])] = &[
        (
            r#"{"errcode":"M_FORBIDDEN","error":"You are not invited to this room."}"#,
            [62, 52, 40],
        ),
        (
            r#"{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"secret","device_id":"LORA1"}"#,
            [93, 58, 35],
        ),
        (
            r#"{"user_id":"@alice:example.org","access_token":"syt_YWxpY2U_abcdefghij_0123","device_id":"LORA1","home_server":"example.org"}"#,
            [110, 74, 75],
        ),
        (
            r#"{"type":"m.room.member","state_key":"@bob:example.org","content":{"membership":"join","displayname":"Bob"},"sender":"@bob:example.org","event_id":"$143273582443PhrSn:example.org","origin_server_ts":1432735824653,"room_id":"!jEsUZKDJdhlrceRyVU:example.org","unsigned":{"age":1234}}"#,
            [237, 150, 131],
        ),
        (
            r#"{"m.relates_to":{"rel_type":"m.annotation","event_id":"$143273582443PhrSn:example.org","key":"👍"}}"#,
            [87, 79, 45],
        ),
        (
            r#"{"next_batch":"s72595_4483_1934","rooms":{"join":{"!r:example.org":{"timeline":{"events":[{"type":"m.room.message","content":{"msgtype":"m.text","body":"hi"},"sender":"@bob:example.org","event_id":"$e1","origin_server_ts":1700000000000}],"limited":false,"prev_batch":"t34"}}}}}"#,
            [216, 117, 94],
        ),
    ];
    for (json, want) in bodies {
        let got: Vec<usize> = TABLES.iter().map(|t| j2c(json, t).unwrap().len()).collect();
        assert_eq!(got, want, "{json}");
        for t in &TABLES {
            roundtrip_eq(json, t);
        }
    }
}
