//! CPU cost of complete Noise handshakes (both parties, all messages, `Split()`), Trickle's
//! engine against the `snow` crate, for `Noise_XX_25519_ChaChaPoly_BLAKE2s` and
//! `Noise_IK_25519_ChaChaPoly_BLAKE2s`. Each iteration builds both handshake states from fixed
//! static keys, runs every message with a 16-byte payload and converts both sides to transport.
//!
//! Run: `cargo bench -p trickle-core --bench noise` (add `-- --quick` for a short run).

use std::hint::black_box;

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use criterion::{Criterion, criterion_group, criterion_main};
use trickle_core::noise::{HandshakeState, Keypair, Pattern, Role};

const PROLOGUE: &[u8] = b"bench";
const PAYLOAD: &[u8] = &[0x5a; 16];

fn ours(pattern: Pattern, i_s: &Keypair, r_s: &Keypair, rng: &mut ChaCha20Rng) -> [u8; 32] {
    let rs = (pattern == Pattern::IK).then(|| *r_s.public());
    let mut i = HandshakeState::new(pattern, Role::Initiator, PROLOGUE, i_s.clone(), rs).unwrap();
    let mut r = HandshakeState::new(pattern, Role::Responder, PROLOGUE, r_s.clone(), None).unwrap();
    let mut buf = [0u8; 256];
    let mut out = [0u8; 256];
    for k in 0..pattern.message_count() {
        let (w, rd) = if k % 2 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let n = w.write_message(PAYLOAD, &mut buf, rng).unwrap();
        rd.read_message(&buf[..n], &mut out).unwrap();
    }
    let a = i.into_transport().unwrap();
    let b = r.into_transport().unwrap();
    black_box(b.send_key().to_bytes());
    a.send_key().to_bytes()
}

fn snow(name: &str, i_s: &[u8; 32], r_s: &[u8; 32], r_pub: &[u8; 32]) -> usize {
    let ik = name.contains("_IK_");
    let mut ib = snow::Builder::new(name.parse().unwrap())
        .local_private_key(i_s)
        .unwrap()
        .prologue(PROLOGUE)
        .unwrap();
    if ik {
        ib = ib.remote_public_key(r_pub).unwrap();
    }
    let mut i = ib.build_initiator().unwrap();
    let mut r = snow::Builder::new(name.parse().unwrap())
        .local_private_key(r_s)
        .unwrap()
        .prologue(PROLOGUE)
        .unwrap()
        .build_responder()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut out = [0u8; 256];
    let count = if ik { 2 } else { 3 };
    for k in 0..count {
        let (w, rd) = if k % 2 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let n = w.write_message(PAYLOAD, &mut buf).unwrap();
        rd.read_message(&buf[..n], &mut out).unwrap();
    }
    let a = i.into_stateless_transport_mode().unwrap();
    let b = r.into_stateless_transport_mode().unwrap();
    black_box(&b);
    a.write_message(0, b"", &mut buf).unwrap()
}

fn handshakes(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let i_s = Keypair::generate(&mut rng);
    let r_s = Keypair::generate(&mut rng);
    let (i_sec, r_sec, r_pub) = (i_s.secret_bytes(), r_s.secret_bytes(), *r_s.public());

    for (label, pattern, name) in [
        ("XX", Pattern::XX, "Noise_XX_25519_ChaChaPoly_BLAKE2s"),
        ("IK", Pattern::IK, "Noise_IK_25519_ChaChaPoly_BLAKE2s"),
    ] {
        let mut group = c.benchmark_group(format!("handshake_{label}"));
        group.bench_function("trickle", |b| {
            b.iter(|| ours(pattern, black_box(&i_s), black_box(&r_s), &mut rng))
        });
        group.bench_function("snow", |b| {
            b.iter(|| {
                snow(
                    name,
                    black_box(&i_sec),
                    black_box(&r_sec),
                    black_box(&r_pub),
                )
            })
        });
        group.finish();
    }
}

criterion_group!(benches, handshakes);
criterion_main!(benches);
