//! JSON → CBOR with every table: no input may panic, and what encodes must decode back to the
//! same JSON value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trickle_core::cbor::{Limits, Table, cbor_to_json, json_to_cbor};

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else { return };
    let table = match which % 3 {
        0 => &Table::PLAIN,
        1 => &Table::MSC3079_V1,
        _ => &Table::TRICKLE_V1,
    };
    let mut cbor = [0u8; 8192];
    let Ok(n) = json_to_cbor(json, table, &Limits::DEFAULT, &mut cbor) else { return };
    let mut out = [0u8; 16384];
    let m = cbor_to_json(&cbor[..n], table, &Limits::DEFAULT, &mut out)
        .expect("CBOR written by json_to_cbor decodes");
    let mut cbor2 = [0u8; 8192];
    let k = json_to_cbor(&out[..m], table, &Limits::DEFAULT, &mut cbor2)
        .expect("JSON written by cbor_to_json encodes");
    // Deterministic encoding: the same value gives the same bytes.
    assert_eq!(&cbor[..n], &cbor2[..k]);
});
