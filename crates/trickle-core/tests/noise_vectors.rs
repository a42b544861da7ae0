//! Replays published Noise test vectors (cacophony, snow, noise-c fallback) byte for byte.
//!
//! `vectors/noise.json` holds only the entries for the protocols Trickle uses:
//! `Noise_XX_25519_ChaChaPoly_BLAKE2s` and `Noise_IK_25519_ChaChaPoly_BLAKE2s` from cacophony's
//! and snow's vector files, and `Noise_XXfallback_25519_ChaChaPoly_BLAKE2s` (an IK attempt with a
//! wrong responder key, answered by XXfallback) from noise-c's fallback vectors.
//!
//! Vector format: message `i` of the handshake is sent by the initiator for even `i`; after the
//! handshake, transport messages keep alternating, each direction counting its nonces from 0.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use serde_json::Value;
use trickle_core::noise::{Error, HandshakeState, Keypair, Pattern, Role, TAGLEN, Transport};

fn hex(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn key32(v: &Value) -> [u8; 32] {
    hex(v).try_into().expect("32-byte key")
}

fn vectors() -> Vec<Value> {
    let text = include_str!("vectors/noise.json");
    let json: Value = serde_json::from_str(text).expect("valid JSON");
    json["vectors"].as_array().expect("vectors array").clone()
}

/// An RNG that must not be used: every ephemeral is fixed by the vector.
fn unused_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([0xAA; 32])
}

/// Write `msg` with `w`, compare to the vector ciphertext, read with `r`, compare payloads.
fn exchange(w: &mut HandshakeState, r: &mut HandshakeState, msg: &Value) {
    let payload = hex(&msg["payload"]);
    let expected = hex(&msg["ciphertext"]);
    let mut buf = [0u8; 1024];
    assert_eq!(w.next_message_len(payload.len()), Ok(expected.len()));
    let n = w
        .write_message(&payload, &mut buf, &mut unused_rng())
        .expect("write");
    assert_eq!(&buf[..n], &expected[..], "handshake ciphertext");
    let mut out = [0u8; 1024];
    let m = r.read_message(&buf[..n], &mut out).expect("read");
    assert_eq!(&out[..m], &payload[..], "handshake payload");
}

/// Check the transport messages `msgs`; message `i` is sent by `a` for even `first + i`, by `b`
/// for odd.
fn transport_messages(a: &Transport, b: &Transport, msgs: &[Value], first: usize) {
    let (mut na, mut nb) = (0u64, 0u64);
    for (i, msg) in (first..).zip(msgs.iter()) {
        let payload = hex(&msg["payload"]);
        let expected = hex(&msg["ciphertext"]);
        let (sender, receiver, nonce) = if i % 2 == 0 {
            na += 1;
            (a, b, na - 1)
        } else {
            nb += 1;
            (b, a, nb - 1)
        };
        let mut buf = [0u8; 1024];
        let n = sender.encrypt(nonce, &[], &payload, &mut buf).unwrap();
        assert_eq!(n, payload.len() + TAGLEN);
        assert_eq!(&buf[..n], &expected[..], "transport ciphertext {i}");
        let mut out = [0u8; 1024];
        let m = receiver.decrypt(nonce, &[], &expected, &mut out).unwrap();
        assert_eq!(&out[..m], &payload[..]);
    }
}

fn run_plain(v: &Value, pattern: Pattern) {
    let init_rs = v.get("init_remote_static").map(key32);
    let mut init = HandshakeState::new(
        pattern,
        Role::Initiator,
        &hex(&v["init_prologue"]),
        Keypair::from_secret(key32(&v["init_static"])),
        init_rs,
    )
    .unwrap();
    init.set_ephemeral(Keypair::from_secret(key32(&v["init_ephemeral"])));
    let mut resp = HandshakeState::new(
        pattern,
        Role::Responder,
        &hex(&v["resp_prologue"]),
        Keypair::from_secret(key32(&v["resp_static"])),
        None,
    )
    .unwrap();
    resp.set_ephemeral(Keypair::from_secret(key32(&v["resp_ephemeral"])));

    let msgs = v["messages"].as_array().unwrap();
    let hs_len = pattern.message_count();
    for (i, msg) in msgs[..hs_len].iter().enumerate() {
        assert_eq!(init.is_my_turn(), i % 2 == 0);
        assert_eq!(resp.is_my_turn(), i % 2 == 1);
        if i % 2 == 0 {
            exchange(&mut init, &mut resp, msg);
        } else {
            exchange(&mut resp, &mut init, msg);
        }
    }
    assert!(init.is_finished() && resp.is_finished());
    assert_eq!(init.handshake_hash(), resp.handshake_hash());
    if let Some(h) = v.get("handshake_hash") {
        assert_eq!(init.handshake_hash().to_vec(), hex(h), "handshake hash");
    }
    let resp_static_pub = *Keypair::from_secret(key32(&v["resp_static"])).public();
    let init_static_pub = *Keypair::from_secret(key32(&v["init_static"])).public();
    assert_eq!(init.remote_static(), Some(resp_static_pub));
    assert_eq!(resp.remote_static(), Some(init_static_pub));

    let a = init.into_transport().unwrap();
    let b = resp.into_transport().unwrap();
    transport_messages(&a, &b, &msgs[hs_len..], hs_len);
}

fn run_named(name: &str, pattern: Pattern) -> usize {
    let mut count = 0;
    for v in vectors() {
        if v["protocol_name"] == name {
            run_plain(&v, pattern);
            count += 1;
        }
    }
    count
}

#[test]
fn xx_vectors() {
    assert_eq!(
        run_named("Noise_XX_25519_ChaChaPoly_BLAKE2s", Pattern::XX),
        2
    );
}

#[test]
fn ik_vectors() {
    assert_eq!(
        run_named("Noise_IK_25519_ChaChaPoly_BLAKE2s", Pattern::IK),
        2
    );
}

/// noise-c's fallback vector: Alice sends IK message 1 to a stale key for Bob; Bob cannot
/// decrypt it and answers with XXfallback, reusing Alice's ephemeral.
#[test]
fn xxfallback_vector() {
    let v = vectors()
        .into_iter()
        .find(|v| v["protocol_name"] == "Noise_XXfallback_25519_ChaChaPoly_BLAKE2s")
        .expect("fallback vector present");
    let msgs = v["messages"].as_array().unwrap();
    let prologue_a = hex(&v["init_prologue"]);
    let prologue_b = hex(&v["resp_prologue"]);
    let alice_s = || Keypair::from_secret(key32(&v["init_static"]));
    let bob_s = || Keypair::from_secret(key32(&v["resp_static"]));

    // IK message 1, Alice -> Bob, under the wrong remote static.
    let mut alice = HandshakeState::new(
        Pattern::IK,
        Role::Initiator,
        &prologue_a,
        alice_s(),
        Some(key32(&v["init_remote_static"])),
    )
    .unwrap();
    alice.set_ephemeral(Keypair::from_secret(key32(&v["init_ephemeral"])));
    let mut bob_ik =
        HandshakeState::new(Pattern::IK, Role::Responder, &prologue_b, bob_s(), None).unwrap();
    let payload0 = hex(&msgs[0]["payload"]);
    let mut m1 = [0u8; 1024];
    let n1 = alice
        .write_message(&payload0, &mut m1, &mut unused_rng())
        .unwrap();
    assert_eq!(&m1[..n1], &hex(&msgs[0]["ciphertext"])[..], "IK message 1");
    let mut out = [0u8; 1024];
    assert_eq!(
        bob_ik.read_message(&m1[..n1], &mut out),
        Err(Error::Decrypt)
    );
    // The failed read left Bob's IK state untouched (still expecting message 1).
    assert!(!bob_ik.is_my_turn() && !bob_ik.is_finished());

    // XXfallback: Bob is the fallback initiator, Alice the fallback responder.
    let mut bob = HandshakeState::fallback_responder_side(bob_s(), &prologue_b, &m1[..n1]).unwrap();
    bob.set_ephemeral(Keypair::from_secret(key32(&v["resp_ephemeral"])));
    let mut alice = alice.into_fallback(&prologue_a).unwrap();
    assert_eq!(bob.handshake_hash(), alice.handshake_hash());
    assert!(bob.is_my_turn() && !alice.is_my_turn());
    exchange(&mut bob, &mut alice, &msgs[1]);
    exchange(&mut alice, &mut bob, &msgs[2]);
    assert!(alice.is_finished() && bob.is_finished());
    assert_eq!(alice.handshake_hash().to_vec(), hex(&v["handshake_hash"]));
    assert_eq!(bob.handshake_hash(), alice.handshake_hash());
    assert_eq!(alice.remote_static(), Some(*bob_s().public()));
    assert_eq!(bob.remote_static(), Some(*alice_s().public()));

    // Transport: the vector keeps alternating, so message 3 is sent by Bob, the fallback
    // initiator, under `k1`.
    let a = alice.into_transport().unwrap();
    let b = bob.into_transport().unwrap();
    assert_eq!(a.role(), Role::Responder);
    assert_eq!(b.role(), Role::Initiator);
    transport_messages(&b, &a, &msgs[3..], 0);
    assert_eq!(b.send_key().to_bytes(), a.recv_key().to_bytes());
}
