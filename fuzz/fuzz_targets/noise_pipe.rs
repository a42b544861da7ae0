//! The Noise pipe on both sides, fed frames from the air.
//!
//! A device and a gateway first run a real handshake (deterministic RNG), so fuzzed frames reach
//! every state: the gateway with no session (handshake parsing), the device waiting for XX
//! message 2, and both sides with an established session (frame view, counter reconstruction,
//! replay window, decryption). No input may panic, and no fuzzed frame may authenticate as a
//! new message.
#![no_main]

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use libfuzzer_sys::fuzz_target;
use trickle_core::noise::pipe::{Config, Initiator, MAX_HANDSHAKE_FRAME, Received, Responder};
use trickle_core::noise::storage::RamStorage;

/// Splits the input into frames: each frame is preceded by its length byte.
fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    core::iter::from_fn(move || {
        let (&len, rest) = data.split_first()?;
        let len = usize::from(len).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        data = rest;
        Some(frame)
    })
}

fn established(rng: &mut ChaCha20Rng) -> (Initiator<RamStorage>, Responder<RamStorage<8>, 2>) {
    let mut gw: Responder<RamStorage<8>, 2> =
        Responder::new(RamStorage::new(), Config::GATEWAY, rng).expect("gateway");
    let mut dev: Initiator<RamStorage> =
        Initiator::new(RamStorage::new(), Config::DEVICE, rng).expect("device");
    let request = [0x41, 0x02, 0, 0, 0x99, 0xb1, b'r', 0xff, b'H', b'i'];
    let mut a = [0u8; MAX_HANDSHAKE_FRAME];
    let mut b = [0u8; MAX_HANDSHAKE_FRAME];
    let x1 = dev.seal(rng, &request, &mut a).expect("xx1").len;
    let Received::Handshake { len: x2, .. } = gw.open(rng, &a[..x1], &mut b).expect("xx2") else {
        panic!("gateway answers XX 1 with XX 2")
    };
    dev.open(&b[..x2], &mut a).expect("device reads XX 2");
    let x3 = dev.seal(rng, &request, &mut a).expect("xx3").len;
    let Received::Message { ticket: Some(ticket), .. } = gw.open(rng, &a[..x3], &mut b).expect("xx3 read")
    else {
        panic!("XX 3 carries the request")
    };
    let ack = [0x60, 0x00, 0, 0];
    let n = gw.seal_reply(rng, ticket, &ack, &mut b).expect("ack").len;
    dev.open(&b[..n], &mut a).expect("device reads the ACK");
    (dev, gw)
}

fuzz_target!(|data: &[u8]| {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut out = [0u8; 2048];

    // A gateway with no session: every frame is a handshake attempt or an unknown session.
    let mut fresh: Responder<RamStorage<8>, 2> =
        Responder::new(RamStorage::new(), Config::GATEWAY, &mut rng).expect("gateway");
    // A device that sent XX 1 and waits for XX 2.
    let mut waiting: Initiator<RamStorage> =
        Initiator::new(RamStorage::new(), Config::DEVICE, &mut rng).expect("device");
    let mut first = [0u8; MAX_HANDSHAKE_FRAME];
    waiting.seal(&mut rng, &[0x40, 0x01, 0, 0], &mut first).expect("xx1");
    // Both sides of an established session.
    let (mut dev, mut gw) = established(&mut rng);

    for frame in frames(data) {
        let _ = fresh.open(&mut rng, frame, &mut out);
        let _ = waiting.open(frame, &mut out);
        for r in [dev.open(frame, &mut out), gw.open(&mut rng, frame, &mut out)] {
            if let Ok(Received::Message { .. }) = r {
                panic!("a fuzzed frame authenticated on an established session");
            }
        }
    }
});
