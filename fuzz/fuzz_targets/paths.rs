//! Endpoint codes: HTTP targets and text-form paths from the air or a user never panic, and a
//! compressed path expands back to a target that compresses the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trickle_core::wire::paths::{ApiVersion, CoapPath, Table};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    for table in [Table::Msc3079V1, Table::TrickleV1] {
        let mut scratch = [0u8; 512];
        if let Ok(path) = CoapPath::from_http(text, table, &mut scratch) {
            let mut http = [0u8; 2048];
            if let Ok(n) = path.write_http_to_slice(table, ApiVersion::V3, &mut http) {
                let http = core::str::from_utf8(&http[..n]).expect("expansion is UTF-8");
                let mut scratch2 = [0u8; 512];
                let again = CoapPath::from_http(http, table, &mut scratch2)
                    .expect("an expanded path compresses");
                assert_eq!(again, path);
            }
        }
        let mut scratch = [0u8; 512];
        if let Ok(path) = CoapPath::from_text(text, &mut scratch) {
            let mut http = [0u8; 2048];
            let _ = path.write_http_to_slice(table, ApiVersion::V3, &mut http);
        }
    }
});
