//! CBOR → JSON with every table: no input may panic, and what decodes must encode back to CBOR
//! that decodes to the same JSON.
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
    let mut json = [0u8; 8192];
    let Ok(n) = cbor_to_json(cbor, table, &Limits::DEFAULT, &mut json) else { return };
    let mut again = [0u8; 8192];
    let m = json_to_cbor(&json[..n], table, &Limits::DEFAULT, &mut again)
        .expect("JSON written by cbor_to_json is valid input for json_to_cbor");
    let mut json2 = [0u8; 8192];
    let k = cbor_to_json(&again[..m], table, &Limits::DEFAULT, &mut json2)
        .expect("deterministic CBOR decodes");
    assert_eq!(&json[..n], &json2[..k]);
});
