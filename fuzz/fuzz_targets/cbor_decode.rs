//! CBOR → JSON with every table: no input may panic; what decodes must re-encode to
//! deterministic CBOR that is a fixed point of decode → encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trickle_core::cbor::{Limits, Table, cbor_to_json, json_to_cbor};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the table, so one corpus covers all three.
    let Some((&which, cbor)) = data.split_first() else { return };
    let table = match which % 3 {
        0 => &Table::PLAIN,
        1 => &Table::MSC3079_V1,
        _ => &Table::TRICKLE_V1,
    };
    let limits = Limits::DEFAULT;
    let mut json = [0u8; 8192];
    let Ok(n) = cbor_to_json(cbor, table, &limits, &mut json) else { return };
    // The input may be in any key order; the re-encoding is deterministic.
    let mut det = [0u8; 8192];
    let m = json_to_cbor(&json[..n], table, &limits, &mut det)
        .expect("JSON written by cbor_to_json is valid input for json_to_cbor");
    let mut json2 = [0u8; 8192];
    let k = cbor_to_json(&det[..m], table, &limits, &mut json2).expect("deterministic CBOR decodes");
    let mut det2 = [0u8; 8192];
    let j = json_to_cbor(&json2[..k], table, &limits, &mut det2).expect("decoded JSON encodes");
    assert_eq!(&det[..m], &det2[..j]);
});
