//! CoAP parser: no input may panic; whatever parses must emit back to the same bytes and
//! re-parse to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trickle_core::wire::coap::{Message, Repr};

fuzz_target!(|data: &[u8]| {
    // The zero-copy view's accessors must not panic, checked or not.
    let view = Message::new_unchecked(data);
    let _ = (view.kind(), view.code(), view.message_id(), view.token(), view.payload());
    for option in view.options() {
        let _ = option;
    }
    let Ok(repr) = Repr::parse_bytes(data) else { return };
    let mut buf = [0u8; 2048];
    let len = repr.buffer_len();
    if len > buf.len() {
        return;
    }
    let written = repr.emit(&mut buf).expect("a parsed message emits");
    assert_eq!(written, len);
    // Encoding is canonical for what the parser accepts: the same bytes come back.
    assert_eq!(&buf[..written], data);
    let again = Repr::parse_bytes(&buf[..written]).expect("emitted message parses");
    assert_eq!(again, repr);
});
