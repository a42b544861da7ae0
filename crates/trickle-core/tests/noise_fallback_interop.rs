//! Live interoperability of the Noise Pipes path IK → `XXfallback` (Noise §10.2).
//!
//! `snow` 0.10 does not implement the fallback modifier, so the live peer here is the
//! `noise-protocol` crate (with `noise-rust-crypto`), an independent implementation whose
//! `XXfallback` pattern has the first fallback message sent by the original IK responder. Both
//! directions are run: our Alice against their Bob and their Alice against our Bob, each time IK
//! message 1 aimed at a stale static key, rejected, answered with XXfallback, then transport
//! messages both ways.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use noise_protocol::{CipherState as NpCipher, DH, HandshakeState as NpHs, U8Array, patterns};
use noise_rust_crypto::{Blake2s, ChaCha20Poly1305, X25519};
use trickle_core::noise::{Error, HandshakeState, Keypair, Pattern, Role, Transport};

type Np = NpHs<X25519, ChaCha20Poly1305, Blake2s>;
type NpKey = <X25519 as DH>::Key;

const PROLOGUE: &[u8] = b"trickle fallback interop";

fn np_key(k: &Keypair) -> NpKey {
    NpKey::from_slice(&k.secret_bytes())
}

/// Transport messages both ways: ours with explicit nonces, theirs with implicit ones.
fn exchange_transport(
    ours: &Transport,
    their_send: &mut NpCipher<ChaCha20Poly1305>,
    their_recv: &mut NpCipher<ChaCha20Poly1305>,
) {
    for n in 0..4u64 {
        let msg = vec![n as u8; 10 + n as usize * 7];
        let mut buf = [0u8; 128];
        let len = ours.encrypt(n, b"", &msg, &mut buf).unwrap();
        assert_eq!(their_recv.decrypt_vec(&buf[..len]).unwrap(), msg);
        let ct = their_send.encrypt_vec(&msg);
        let mut out = [0u8; 128];
        let m = ours.decrypt(n, b"", &ct, &mut out).unwrap();
        assert_eq!(&out[..m], &msg[..]);
    }
}

#[test]
fn our_alice_their_bob() {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let alice_s = Keypair::generate(&mut rng);
    let bob_s = Keypair::generate(&mut rng);
    let stale = Keypair::generate(&mut rng);

    let mut alice = HandshakeState::new(
        Pattern::IK,
        Role::Initiator,
        PROLOGUE,
        alice_s.clone(),
        Some(*stale.public()),
    )
    .unwrap();
    let mut m1 = [0u8; 256];
    let n1 = alice
        .write_message(b"0-RTT hello", &mut m1, &mut rng)
        .unwrap();

    // Bob (noise-protocol) cannot read IK message 1 under his real key.
    let mut bob_ik = Np::new(
        patterns::noise_ik(),
        false,
        PROLOGUE,
        Some(np_key(&bob_s)),
        None,
        None,
        None,
    );
    let mut scratch = vec![0u8; 256];
    assert!(
        bob_ik
            .read_message(&m1[..n1], &mut scratch[..n1 - 96])
            .is_err()
    );

    // Bob answers with XXfallback, as its initiator, with re = Alice's e.
    let re: [u8; 32] = m1[..32].try_into().unwrap();
    let mut bob = Np::new(
        patterns::noise_xx_fallback(),
        true,
        PROLOGUE,
        Some(np_key(&bob_s)),
        None,
        None,
        Some(re),
    );
    let m2 = bob.write_message_vec(b"fallback from bob").unwrap();
    assert_eq!(m2.len(), 96 + 17);

    let mut alice = alice.into_fallback(PROLOGUE).unwrap();
    let mut out = [0u8; 256];
    let n = alice.read_message(&m2, &mut out).unwrap();
    assert_eq!(&out[..n], b"fallback from bob");
    let mut m3 = [0u8; 256];
    let n3 = alice
        .write_message(b"alice here", &mut m3, &mut rng)
        .unwrap();
    assert_eq!(n3, 64 + 10);
    assert_eq!(bob.read_message_vec(&m3[..n3]).unwrap(), b"alice here");

    assert!(bob.completed() && alice.is_finished());
    assert_eq!(bob.get_hash(), &alice.handshake_hash()[..]);
    assert_eq!(bob.get_rs(), Some(*alice_s.public()));
    assert_eq!(alice.remote_static(), Some(*bob_s.public()));

    // Bob is the fallback initiator: he sends with the first split key.
    let (mut bob_send, mut bob_recv) = bob.get_ciphers();
    let alice_t = alice.into_transport().unwrap();
    exchange_transport(&alice_t, &mut bob_send, &mut bob_recv);
}

#[test]
fn their_alice_our_bob() {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let alice_s = Keypair::generate(&mut rng);
    let alice_e = Keypair::generate(&mut rng);
    let bob_s = Keypair::generate(&mut rng);
    let stale = Keypair::generate(&mut rng);

    // Alice (noise-protocol) sends IK message 1 to a stale key, with an ephemeral she keeps.
    let mut alice_ik = Np::new(
        patterns::noise_ik(),
        true,
        PROLOGUE,
        Some(np_key(&alice_s)),
        Some(np_key(&alice_e)),
        Some(*stale.public()),
        None,
    );
    let m1 = alice_ik.write_message_vec(b"0-RTT hello").unwrap();
    assert_eq!(m1.len(), 96 + 11);

    let mut bob_ik =
        HandshakeState::new(Pattern::IK, Role::Responder, PROLOGUE, bob_s.clone(), None).unwrap();
    let mut out = [0u8; 256];
    assert_eq!(bob_ik.read_message(&m1, &mut out), Err(Error::Decrypt));

    let mut bob = HandshakeState::fallback_responder_side(bob_s.clone(), PROLOGUE, &m1).unwrap();
    let mut m2 = [0u8; 256];
    let n2 = bob
        .write_message(b"fallback from bob", &mut m2, &mut rng)
        .unwrap();

    let mut alice = Np::new(
        patterns::noise_xx_fallback(),
        false,
        PROLOGUE,
        Some(np_key(&alice_s)),
        Some(np_key(&alice_e)),
        None,
        None,
    );
    assert_eq!(
        alice.read_message_vec(&m2[..n2]).unwrap(),
        b"fallback from bob"
    );
    let m3 = alice.write_message_vec(b"alice here").unwrap();
    let n = bob.read_message(&m3, &mut out).unwrap();
    assert_eq!(&out[..n], b"alice here");

    assert!(alice.completed() && bob.is_finished());
    assert_eq!(alice.get_hash(), &bob.handshake_hash()[..]);
    assert_eq!(bob.remote_static(), Some(*alice_s.public()));
    assert_eq!(alice.get_rs(), Some(*bob_s.public()));

    // Alice is the fallback responder: she sends with the second split key.
    let (mut a_recv, mut a_send) = alice.get_ciphers();
    let bob_t = bob.into_transport().unwrap();
    exchange_transport(&bob_t, &mut a_send, &mut a_recv);
}
