//! Links trickle-core into a `no_std`, `no_main` Cortex-M binary with no allocator.
//!
//! The entry point runs each part of the core on data it cannot know at compile time (read
//! through `black_box`), so the linker has to keep the code: CoAP parse and emit, the CBOR
//! transcoder with a substitution table, endpoint-code compression, and the Noise pipe (key
//! generation, the first handshake message, persistence to RAM storage). Built by
//! `cargo xtask test` for `thumbv6m-none-eabi` and `thumbv7em-none-eabihf`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::hint::black_box;
use core::panic::PanicInfo;

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use cortex_m_rt::entry;
use trickle_core::cbor::{Limits, Table, cbor_to_json, json_to_cbor};
use trickle_core::noise::pipe::{Config, Initiator, MAX_HANDSHAKE_FRAME};
use trickle_core::noise::storage::RamStorage;
use trickle_core::wire::coap::Repr;
use trickle_core::wire::paths::{self, CoapPath};

#[entry]
fn main() -> ! {
    let mut frame = [0u8; 255];
    let request = black_box(*b"\x42\x03\x12\x34\xab\xcd\xb1\x39");
    if let Ok(repr) = Repr::parse_bytes(&request) {
        black_box(repr.emit(&mut frame).ok());
    }

    let mut cbor = [0u8; 64];
    let json = black_box(br#"{"msgtype":"m.text","body":"Hello"}"#);
    if let Ok(n) = json_to_cbor(json, &Table::TRICKLE_V1, &Limits::DEFAULT, &mut cbor) {
        let mut back = [0u8; 64];
        black_box(cbor_to_json(&cbor[..n], &Table::TRICKLE_V1, &Limits::DEFAULT, &mut back).ok());
    }

    let mut scratch = [0u8; 64];
    let target = black_box("/_matrix/client/v3/rooms/!r:hs/send/m.room.message/t1");
    black_box(CoapPath::from_http(target, paths::Table::TrickleV1, &mut scratch).ok());

    // Link check only: real firmware seeds its RNG from a hardware TRNG, never a constant.
    let mut rng = ChaCha20Rng::from_seed(black_box([7; 32]));
    if let Ok(mut device) = Initiator::new(RamStorage::<6>::new(), Config::DEVICE, &mut rng) {
        let mut handshake = [0u8; MAX_HANDSHAKE_FRAME];
        black_box(device.seal(&mut rng, &request, &mut handshake).ok());
    }

    loop {
        black_box(());
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        black_box(());
    }
}
