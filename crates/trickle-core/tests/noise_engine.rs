//! Behaviour of the Noise engine between two of our own endpoints: failed steps leave the
//! state untouched, every error is reported with the right variant, fallback works end to end,
//! and random payloads round-trip through XX, IK and IK→XXfallback.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use proptest::prelude::*;
use trickle_core::noise::{
    CipherKey, CipherState, Error, HandshakeState, Keypair, MAX_MESSAGE_LEN, Pattern, Role, TAGLEN,
    Transport, ct_eq,
};

const PROLOGUE: &[u8] = b"trickle test";

struct Pair {
    i: HandshakeState,
    r: HandshakeState,
    i_pub: [u8; 32],
    r_pub: [u8; 32],
    rng: ChaCha20Rng,
}

fn pair(pattern: Pattern, seed: u64) -> Pair {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let is = Keypair::generate(&mut rng);
    let rs = Keypair::generate(&mut rng);
    let (i_pub, r_pub) = (*is.public(), *rs.public());
    let rs_known = (pattern == Pattern::IK).then_some(r_pub);
    Pair {
        i: HandshakeState::new(pattern, Role::Initiator, PROLOGUE, is, rs_known).unwrap(),
        r: HandshakeState::new(pattern, Role::Responder, PROLOGUE, rs, None).unwrap(),
        i_pub,
        r_pub,
        rng,
    }
}

/// Finish the handshake (remaining messages carry `payload`) and return both transports.
fn finish(p: &mut Pair, payload: &[u8]) {
    let mut buf = [0u8; 1024];
    let mut out = [0u8; 1024];
    while !(p.i.is_finished() && p.r.is_finished()) {
        let (w, r) = if p.i.is_my_turn() {
            (&mut p.i, &mut p.r)
        } else {
            (&mut p.r, &mut p.i)
        };
        let expected = w.next_message_len(payload.len()).unwrap();
        let n = w.write_message(payload, &mut buf, &mut p.rng).unwrap();
        assert_eq!(n, expected);
        let m = r.read_message(&buf[..n], &mut out).unwrap();
        assert_eq!(&out[..m], payload);
    }
}

fn transports(p: Pair) -> (Transport, Transport) {
    (p.i.into_transport().unwrap(), p.r.into_transport().unwrap())
}

fn check_transport(a: &Transport, b: &Transport) {
    let mut buf = [0u8; 128];
    let mut out = [0u8; 128];
    for (nonce, (s, d)) in [(a, b), (b, a), (a, b)].into_iter().enumerate() {
        let n = s.encrypt(nonce as u64, b"ad", b"ping", &mut buf).unwrap();
        let m = d.decrypt(nonce as u64, b"ad", &buf[..n], &mut out).unwrap();
        assert_eq!(&out[..m], b"ping");
    }
}

/// Exact message sizes (bytes on air) for each pattern with a payload of `p` bytes.
#[test]
fn message_sizes_are_exact() {
    for (pattern, sizes) in [
        (Pattern::XX, vec![32, 32 + 48 + 16, 48 + 16]),
        (Pattern::IK, vec![32 + 48 + 16, 32 + 16]),
    ] {
        let mut p = pair(pattern, 1);
        let mut buf = [0u8; 512];
        let mut out = [0u8; 512];
        for (k, base) in sizes.iter().enumerate() {
            let (w, r) = if k % 2 == 0 {
                (&mut p.i, &mut p.r)
            } else {
                (&mut p.r, &mut p.i)
            };
            let n = w.write_message(&[9u8; 10], &mut buf, &mut p.rng).unwrap();
            assert_eq!(n, base + 10, "{pattern:?} message {k}");
            r.read_message(&buf[..n], &mut out).unwrap();
        }
    }
}

/// A corrupted or truncated handshake message is rejected and leaves the reader's state exactly
/// as before: the genuine message is accepted afterwards and the handshake completes.
#[test]
fn failed_read_restores_state() {
    for pattern in [Pattern::XX, Pattern::IK] {
        for step in 0..pattern.message_count() {
            if pattern == Pattern::XX && step == 0 {
                // XX message 1 has no tag: see `xx_first_message_truncation`.
                continue;
            }
            let mut p = pair(pattern, 10 + step as u64);
            let mut buf = [0u8; 512];
            let mut out = [0u8; 512];
            for k in 0..pattern.message_count() {
                let (w, r) = if k % 2 == 0 {
                    (&mut p.i, &mut p.r)
                } else {
                    (&mut p.r, &mut p.i)
                };
                let n = w.write_message(b"payload", &mut buf, &mut p.rng).unwrap();
                if k == step {
                    let hash_before = r.handshake_hash();
                    for pos in [0, 31, 32, 47, n / 2, n - 17, n - 1] {
                        let mut bad = buf;
                        bad[pos] ^= 0x80;
                        assert_eq!(
                            r.read_message(&bad[..n], &mut out),
                            Err(Error::Decrypt),
                            "{pattern:?} message {k}, byte {pos}"
                        );
                        assert_eq!(r.handshake_hash(), hash_before);
                        assert!(!r.is_my_turn() && !r.is_finished());
                    }
                    assert_eq!(r.read_message(&buf[..n - 1], &mut out), Err(Error::Decrypt));
                    assert_eq!(r.read_message(&buf[..10], &mut out), Err(Error::Truncated));
                    assert_eq!(r.read_message(&[], &mut out), Err(Error::Truncated));
                    assert_eq!(r.handshake_hash(), hash_before);
                }
                let m = r.read_message(&buf[..n], &mut out).unwrap();
                assert_eq!(&out[..m], b"payload");
            }
            assert!(p.i.is_finished() && p.r.is_finished());
            let hi = p.i.handshake_hash();
            assert_eq!(hi, p.r.handshake_hash());
            let (a, b) = transports(p);
            check_transport(&a, &b);
        }
    }
}

/// XX message 1 carries no tag, so a corrupted ephemeral is only noticed at message 2; the
/// truncation of message 1 is still refused up front.
#[test]
fn xx_first_message_truncation() {
    let mut p = pair(Pattern::XX, 3);
    let mut buf = [0u8; 64];
    let mut out = [0u8; 64];
    let n = p.i.write_message(b"", &mut buf, &mut p.rng).unwrap();
    assert_eq!(n, 32);
    assert_eq!(
        p.r.read_message(&buf[..31], &mut out),
        Err(Error::Truncated)
    );
    assert_eq!(p.r.read_message(&buf[..32], &mut out), Ok(0));
}

#[test]
fn turn_taking_and_finish_errors() {
    let mut p = pair(Pattern::XX, 4);
    let mut buf = [0u8; 512];
    let mut out = [0u8; 512];
    assert!(p.i.is_my_turn() && !p.r.is_my_turn());
    assert_eq!(
        p.r.write_message(b"", &mut buf, &mut p.rng),
        Err(Error::NotMyTurn)
    );
    assert_eq!(
        p.i.read_message(&[0u8; 32], &mut out),
        Err(Error::NotMyTurn)
    );
    let early = pair(Pattern::XX, 40).i;
    assert_eq!(
        early.into_transport().err(),
        Some(Error::HandshakeNotFinished)
    );
    finish(&mut p, b"x");
    assert!(!p.i.is_my_turn() && !p.r.is_my_turn());
    assert_eq!(
        p.i.write_message(b"", &mut buf, &mut p.rng),
        Err(Error::HandshakeFinished)
    );
    assert_eq!(
        p.r.read_message(&buf, &mut out),
        Err(Error::HandshakeFinished)
    );
    assert_eq!(p.i.remote_static(), Some(p.r_pub));
    assert_eq!(p.r.remote_static(), Some(p.i_pub));
    let (a, b) = transports(p);
    assert_eq!(a.role(), Role::Initiator);
    assert_eq!(b.role(), Role::Responder);
    assert_eq!(a.handshake_hash(), b.handshake_hash());
    check_transport(&a, &b);
}

#[test]
fn buffers_too_small_report_required_and_keep_state() {
    let mut p = pair(Pattern::IK, 5);
    let mut buf = [0u8; 512];
    let mut out = [0u8; 512];
    let need = p.i.next_message_len(20).unwrap();
    assert_eq!(need, 32 + 48 + 20 + 16);
    assert_eq!(
        p.i.write_message(&[1u8; 20], &mut buf[..need - 1], &mut p.rng),
        Err(Error::BufferTooSmall { required: need })
    );
    assert!(p.i.is_my_turn());
    let n = p.i.write_message(&[1u8; 20], &mut buf, &mut p.rng).unwrap();
    assert_eq!(n, need);
    assert_eq!(
        p.r.read_message(&buf[..n], &mut out[..19]),
        Err(Error::BufferTooSmall { required: 20 })
    );
    assert_eq!(p.r.read_message(&buf[..n], &mut out), Ok(20));
    finish(&mut p, b"");
}

#[test]
fn message_length_limit() {
    let mut p = pair(Pattern::XX, 6);
    let mut big = vec![0u8; MAX_MESSAGE_LEN + 100];
    let payload = vec![0u8; MAX_MESSAGE_LEN - 31];
    assert_eq!(
        p.i.write_message(&payload, &mut big, &mut p.rng),
        Err(Error::MessageTooLong)
    );
    // Exactly 65535 bytes is allowed.
    let payload = vec![0u8; MAX_MESSAGE_LEN - 32];
    assert_eq!(
        p.i.write_message(&payload, &mut big, &mut p.rng),
        Ok(MAX_MESSAGE_LEN)
    );
    let mut out = vec![0u8; MAX_MESSAGE_LEN];
    assert_eq!(
        p.r.read_message(&big[..MAX_MESSAGE_LEN + 1], &mut out),
        Err(Error::MessageTooLong)
    );
    let t = Transport::from_parts(
        Role::Initiator,
        CipherKey::from_bytes([1; 32]),
        CipherKey::from_bytes([2; 32]),
        [0; 32],
        None,
    );
    assert_eq!(
        t.encrypt(0, b"", &big[..MAX_MESSAGE_LEN - TAGLEN + 1], &mut out),
        Err(Error::MessageTooLong)
    );
}

#[test]
fn missing_keys() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let s = Keypair::generate(&mut rng);
    assert_eq!(
        HandshakeState::new(Pattern::IK, Role::Initiator, b"", s.clone(), None).err(),
        Some(Error::MissingKey)
    );
    assert_eq!(
        HandshakeState::new(Pattern::XXfallback, Role::Initiator, b"", s.clone(), None).err(),
        Some(Error::MissingKey)
    );
    // Fallback only from an IK initiator that has sent message 1.
    let xx = HandshakeState::new(Pattern::XX, Role::Initiator, b"", s.clone(), None).unwrap();
    assert_eq!(
        xx.into_fallback(b"").err(),
        Some(Error::FallbackNotPossible)
    );
    let ik = HandshakeState::new(Pattern::IK, Role::Initiator, b"", s, Some([9; 32])).unwrap();
    assert_eq!(
        ik.into_fallback(b"").err(),
        Some(Error::FallbackNotPossible)
    );
}

/// A peer sending a low-order public key (here: zero) makes the DH output all zeros.
#[test]
fn low_order_points_are_rejected() {
    // IK: the responder computes es = DH(s, re) while reading message 1.
    let mut p = pair(Pattern::IK, 8);
    p.i.set_ephemeral(Keypair::from_secret([0u8; 32]));
    let mut buf = [0u8; 512];
    let mut out = [0u8; 512];
    let n = p.i.write_message(b"", &mut buf, &mut p.rng).unwrap();
    buf[..32].fill(0);
    assert_eq!(
        p.r.read_message(&buf[..n], &mut out),
        Err(Error::InvalidPublicKey)
    );
    assert!(!p.r.is_my_turn(), "state unchanged");
    // Order-8 point (u = 1) too.
    let mut one = [0u8; 32];
    one[0] = 1;
    buf[..32].copy_from_slice(&one);
    assert_eq!(
        p.r.read_message(&buf[..n], &mut out),
        Err(Error::InvalidPublicKey)
    );

    // XX: the responder's write of message 2 computes ee = DH(e, re).
    let mut p = pair(Pattern::XX, 9);
    assert_eq!(p.r.read_message(&[0u8; 32], &mut out), Ok(0));
    assert_eq!(
        p.r.write_message(b"", &mut buf, &mut p.rng),
        Err(Error::InvalidPublicKey)
    );
    assert!(p.r.is_my_turn(), "failed write leaves the state unchanged");
}

/// IK to a stale key, then XXfallback end to end between two of our endpoints.
#[test]
fn ik_falls_back_to_xx() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
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
    let mut bob_ik =
        HandshakeState::new(Pattern::IK, Role::Responder, PROLOGUE, bob_s.clone(), None).unwrap();
    let mut m1 = [0u8; 256];
    let mut out = [0u8; 256];
    let n1 = alice.write_message(b"0-RTT", &mut m1, &mut rng).unwrap();
    assert_eq!(
        bob_ik.read_message(&m1[..n1], &mut out),
        Err(Error::Decrypt)
    );

    let bob_pub = *bob_s.public();
    let mut bob = HandshakeState::fallback_responder_side(bob_s, PROLOGUE, &m1[..n1]).unwrap();
    let mut alice = alice.into_fallback(PROLOGUE).unwrap();
    assert_eq!(bob.pattern(), Pattern::XXfallback);
    assert_eq!(bob.role(), Role::Initiator);
    assert_eq!(alice.role(), Role::Responder);
    assert!(bob.is_my_turn() && !alice.is_my_turn());

    let mut m2 = [0u8; 256];
    assert_eq!(bob.next_message_len(3), Ok(32 + 48 + 3 + 16));
    let n2 = bob.write_message(b"bob", &mut m2, &mut rng).unwrap();
    assert_eq!(n2, 32 + 48 + 3 + 16);
    // A corrupted fallback message leaves Alice able to read the genuine one.
    let mut bad = m2;
    bad[40] ^= 1;
    assert_eq!(
        alice.read_message(&bad[..n2], &mut out),
        Err(Error::Decrypt)
    );
    assert_eq!(alice.read_message(&m2[..n2], &mut out), Ok(3));
    let n3 = alice.write_message(b"alice", &mut m2, &mut rng).unwrap();
    assert_eq!(n3, 48 + 5 + 16);
    assert_eq!(bob.read_message(&m2[..n3], &mut out), Ok(5));
    assert_eq!(alice.remote_static(), Some(bob_pub));
    assert_eq!(bob.remote_static(), Some(*alice_s.public()));
    let a = alice.into_transport().unwrap();
    let b = bob.into_transport().unwrap();
    check_transport(&a, &b);
}

#[test]
fn cipher_key_and_state() {
    let k = CipherKey::from_bytes([3; 32]);
    let mut buf = *b"attack at dawn";
    let tag = k.encrypt_in_place(5, b"ad", &mut buf);
    assert_ne!(&buf, b"attack at dawn");
    let ct = buf;
    let mut bad_tag = tag;
    bad_tag[0] ^= 1;
    assert_eq!(
        k.decrypt_in_place(5, b"ad", &mut buf, &bad_tag),
        Err(Error::Decrypt)
    );
    assert_eq!(buf, ct, "failed decryption leaves the ciphertext untouched");
    assert_eq!(
        k.decrypt_in_place(6, b"ad", &mut buf, &tag),
        Err(Error::Decrypt)
    );
    assert_eq!(
        k.decrypt_in_place(5, b"AD", &mut buf, &tag),
        Err(Error::Decrypt)
    );
    assert_eq!(k.decrypt_in_place(5, b"ad", &mut buf, &tag), Ok(()));
    assert_eq!(&buf, b"attack at dawn");

    // Rekey changes the key deterministically and is the same on both sides.
    let mut k1 = CipherKey::from_bytes([3; 32]);
    let mut k2 = CipherKey::from_bytes([3; 32]);
    k1.rekey();
    k2.rekey();
    assert_eq!(k1.to_bytes(), k2.to_bytes());
    assert_ne!(k1.to_bytes(), [3; 32]);

    // Implicit-nonce CipherState: counters advance on success only.
    let mut tx = CipherState::new(CipherKey::from_bytes([4; 32]));
    let mut rx = CipherState::new(CipherKey::from_bytes([4; 32]));
    let mut wire = [0u8; 64];
    let mut out = [0u8; 64];
    let n = tx.encrypt_with_ad(b"", b"one", &mut wire).unwrap();
    assert_eq!(n, 3 + TAGLEN);
    assert_eq!(tx.nonce(), 1);
    wire[0] ^= 1;
    assert_eq!(
        rx.decrypt_with_ad(b"", &wire[..n], &mut out),
        Err(Error::Decrypt)
    );
    assert_eq!(rx.nonce(), 0);
    wire[0] ^= 1;
    assert_eq!(rx.decrypt_with_ad(b"", &wire[..n], &mut out), Ok(3));
    assert_eq!(rx.nonce(), 1);
    tx.set_nonce(u64::MAX);
    assert_eq!(
        tx.encrypt_with_ad(b"", b"x", &mut wire),
        Err(Error::NonceExhausted)
    );
    assert_eq!(
        tx.encrypt_with_ad(b"", b"x", &mut wire[..16]),
        Err(Error::NonceExhausted)
    );
    let mut tx = CipherState::new(CipherKey::from_bytes([4; 32]));
    assert_eq!(
        tx.encrypt_with_ad(b"", b"xy", &mut wire[..17]),
        Err(Error::BufferTooSmall { required: 18 })
    );
    // Without a key, EncryptWithAd is the identity.
    let mut empty = CipherState::empty();
    assert_eq!(empty.encrypt_with_ad(b"", b"clear", &mut wire), Ok(5));
    assert_eq!(&wire[..5], b"clear");

    let t = Transport::from_parts(
        Role::Responder,
        CipherKey::from_bytes([1; 32]),
        CipherKey::from_bytes([2; 32]),
        [0; 32],
        Some([5; 32]),
    );
    assert_eq!(
        t.encrypt(u64::MAX, b"", b"", &mut wire),
        Err(Error::NonceExhausted)
    );
    assert_eq!(
        t.decrypt(0, b"", &wire[..15], &mut out),
        Err(Error::Truncated)
    );
    assert_eq!(t.remote_static(), Some([5; 32]));
}

#[test]
fn constant_time_compare() {
    assert!(ct_eq(b"", b""));
    assert!(ct_eq(&[1, 2, 3], &[1, 2, 3]));
    assert!(!ct_eq(&[1, 2, 3], &[1, 2, 4]));
    assert!(!ct_eq(&[1, 2, 3], &[1, 2]));
    assert!(!ct_eq(&[0x80; 32], &[0; 32]));
}

#[test]
fn errors_display() {
    let msg = Error::BufferTooSmall { required: 48 }.to_string();
    assert!(msg.contains("48"));
    let e: &dyn core::error::Error = &Error::Decrypt;
    assert!(!e.to_string().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random payloads through XX, IK and IK→XXfallback between two of our endpoints, then
    /// random transport messages with explicit nonces both ways.
    #[test]
    fn random_handshakes_round_trip(
        which in 0u8..3,
        seed in any::<u64>(),
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 3),
        transport in prop::collection::vec((any::<u64>(), prop::collection::vec(any::<u8>(), 0..300)), 0..6),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let is = Keypair::generate(&mut rng);
        let rs = Keypair::generate(&mut rng);
        let mut buf = [0u8; 1024];
        let mut out = [0u8; 1024];
        let (mut i, mut r) = match which {
            0 => (
                HandshakeState::new(Pattern::XX, Role::Initiator, PROLOGUE, is.clone(), None).unwrap(),
                HandshakeState::new(Pattern::XX, Role::Responder, PROLOGUE, rs.clone(), None).unwrap(),
            ),
            1 => (
                HandshakeState::new(Pattern::IK, Role::Initiator, PROLOGUE, is.clone(), Some(*rs.public())).unwrap(),
                HandshakeState::new(Pattern::IK, Role::Responder, PROLOGUE, rs.clone(), None).unwrap(),
            ),
            _ => {
                // IK towards a stale key, answered with XXfallback.
                let stale = Keypair::generate(&mut rng);
                let mut a = HandshakeState::new(Pattern::IK, Role::Initiator, PROLOGUE, is.clone(), Some(*stale.public())).unwrap();
                let mut b = HandshakeState::new(Pattern::IK, Role::Responder, PROLOGUE, rs.clone(), None).unwrap();
                let n = a.write_message(&payloads[2], &mut buf, &mut rng).unwrap();
                prop_assert_eq!(b.read_message(&buf[..n], &mut out), Err(Error::Decrypt));
                let bob = HandshakeState::fallback_responder_side(rs.clone(), PROLOGUE, &buf[..n]).unwrap();
                (bob, a.into_fallback(PROLOGUE).unwrap())
            }
        };
        let mut k = 0;
        while !(i.is_finished() && r.is_finished()) {
            let (w, rd) = if i.is_my_turn() { (&mut i, &mut r) } else { (&mut r, &mut i) };
            let p = &payloads[k % 3];
            let expected = w.next_message_len(p.len()).unwrap();
            let n = w.write_message(p, &mut buf, &mut rng).unwrap();
            prop_assert_eq!(n, expected);
            let m = rd.read_message(&buf[..n], &mut out).unwrap();
            prop_assert_eq!(&out[..m], &p[..]);
            k += 1;
        }
        prop_assert_eq!(i.handshake_hash(), r.handshake_hash());
        let (ti, tr) = (i.into_transport().unwrap(), r.into_transport().unwrap());
        for (j, (nonce, p)) in transport.iter().enumerate() {
            let nonce = nonce % (u64::MAX - 1);
            let (s, d) = if j % 2 == 0 { (&ti, &tr) } else { (&tr, &ti) };
            let n = s.encrypt(nonce, b"hdr", p, &mut buf).unwrap();
            prop_assert_eq!(n, p.len() + TAGLEN);
            let m = d.decrypt(nonce, b"hdr", &buf[..n], &mut out).unwrap();
            prop_assert_eq!(&out[..m], &p[..]);
        }
    }
}
