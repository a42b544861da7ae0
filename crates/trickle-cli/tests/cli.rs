//! The `trickle` binary as a user runs it: arguments, stdin, stdout, exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn trickle(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trickle"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trickle");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("trickle runs")
}

fn ok(args: &[&str], stdin: &str) -> String {
    let out = trickle(args, stdin);
    assert!(
        out.status.success(),
        "trickle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str], stdin: &str) -> String {
    let out = trickle(args, stdin);
    assert_eq!(out.status.code(), Some(1), "trickle {args:?} should fail");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.lines().count(),
        1,
        "one-line error expected, got {err:?}"
    );
    err
}

const MSC3079_EXAMPLE: &str = r#"{"type":"m.room.message","content":{"msgtype":"m.text","body":"Hello World"},"sender":"@alice:localhost","room_id":"!foo:localhost","unsigned":{"bool_value":true,"null_value":null}}"#;

#[test]
fn cbor_encode_hello_with_trickle_v1_is_ten_bytes() {
    let hex = ok(
        &["cbor", "encode", "--table", "trickle-v1"],
        r#"{"msgtype":"m.text","body":"Hello"}"#,
    );
    let hex = hex.trim();
    assert_eq!(hex.len() / 2, 10, "{hex}");
    let json = ok(&["cbor", "decode", "--table", "trickle-v1", hex], "");
    assert_eq!(json.trim(), r#"{"body":"Hello","msgtype":"m.text"}"#);
}

#[test]
fn cbor_encode_msc3079_example_byte_exact_and_round_trips() {
    let hex = ok(
        &["cbor", "encode", "--table", "msc3079-v1", MSC3079_EXAMPLE],
        "",
    );
    assert_eq!(
        hex.trim(),
        "a5026e6d2e726f6f6d2e6d65737361676503a2181b6b48656c6c6f20576f726c64181c666d2e74657874056e21666f6f3a6c6f63616c686f7374067040616c6963653a6c6f63616c686f737409a26a626f6f6c5f76616c7565f56a6e756c6c5f76616c7565f6"
    );
    let back = ok(&["cbor", "decode", "--table", "msc3079-v1"], &hex);
    let a: serde_json::Value = serde_json::from_str(&back).unwrap();
    let b: serde_json::Value = serde_json::from_str(MSC3079_EXAMPLE).unwrap();
    assert_eq!(a, b);

    let hex = ok(
        &["cbor", "encode", "--table", "trickle-v1"],
        MSC3079_EXAMPLE,
    );
    assert!(hex.trim().len() / 2 <= 82, "{hex}");
    let back = ok(&["cbor", "decode", "--table", "trickle-v1", hex.trim()], "");
    let a: serde_json::Value = serde_json::from_str(&back).unwrap();
    assert_eq!(a, b);
}

#[test]
fn cbor_errors_are_one_line() {
    let err = fails(&["cbor", "encode"], "{\"a\":");
    assert!(err.starts_with("trickle: invalid JSON input"), "{err}");
    let err = fails(&["cbor", "decode", "zz"], "");
    assert!(err.contains("not a hex byte"), "{err}");
    let err = fails(&["cbor", "decode", "a1"], "");
    assert!(err.starts_with("trickle: invalid CBOR input"), "{err}");
}

#[test]
fn path_compress_and_expand_as_msc3079_writes_them() {
    let compact = ok(
        &["path", "compress"],
        "/_matrix/client/r0/rooms/!7mqP7DYBUOmwAweF:localhost/send/m.room.message/$.AAABeH6obLU\n",
    );
    assert_eq!(
        compact.trim(),
        "/9/!7mqP7DYBUOmwAweF:localhost/m.room.message/$.AAABeH6obLU"
    );
    assert_eq!(
        ok(&["path", "compress", "/_matrix/client/v3/sync"], "").trim(),
        "/7"
    );
    let http = ok(&["path", "expand", "--api", "r0", compact.trim()], "");
    assert_eq!(
        http.trim(),
        "/_matrix/client/r0/rooms/!7mqP7DYBUOmwAweF:localhost/send/m.room.message/$.AAABeH6obLU"
    );
    assert_eq!(
        ok(&["path", "expand", "/7"], "").trim(),
        "/_matrix/client/v3/sync"
    );
    // A `#` in a room alias is percent-encoded on the HTTP side only.
    let alias = ok(
        &[
            "path",
            "compress",
            "/_matrix/client/v3/directory/room/%23trickle:example.org",
        ],
        "",
    );
    assert_eq!(alias.trim(), "/H/#trickle:example.org");
    let err = fails(&["path", "expand", "/9/only-one-param"], "");
    assert!(err.contains("parameters"), "{err}");
}

#[test]
fn coap_decode_breaks_down_fields() {
    // RFC 7252 Appendix A: CON GET /temperature, MID 0x7d34, token 0x20.
    let text = ok(
        &[
            "coap",
            "decode",
            "41 01 7d 34 20 bb 74 65 6d 70 65 72 61 74 75 72 65",
        ],
        "",
    );
    assert!(text.contains("code 0.01 GET"), "{text}");
    assert!(text.contains("option 11 Uri-Path"), "{text}");
    assert!(text.contains("\"temperature\""), "{text}");
    let err = fails(&["coap", "decode", "40"], "");
    assert!(err.contains("not a valid CoAP message"), "{err}");
}

#[test]
fn help_lists_commands() {
    let help = ok(&["--help"], "");
    for cmd in ["cbor", "path", "coap"] {
        assert!(help.contains(cmd), "{help}");
    }
}
