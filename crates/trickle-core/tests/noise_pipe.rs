//! The Noise pipe end to end: device (`Initiator`) and gateway (`Responder`) exchanging real
//! frames over an in-memory link, with simulated power cuts and torn storage writes.

use std::collections::{HashMap, HashSet};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::{Rng, SeedableRng};
use trickle_core::noise::frame::{Frame, HandshakeCode, Kind};
use trickle_core::noise::pipe::{
    Config, ECHO_BIT, Initiator, KeyId, PipeError, PipeState, Received, ReplyTicket, Responder,
    Sealed, handshake_report,
};
use trickle_core::noise::storage::{RamStorage, Records, Slot, Storage, StorageError};

type Gw = Responder<RamStorage<16>, 4>;
type Dev = Initiator<RamStorage>;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// CON POST /r with a token and a payload (Uri-Path "r" = option 11, length 1).
fn con_post(token: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0x40 | token.len() as u8, 0x02, 0, 0];
    m.extend_from_slice(token);
    m.extend_from_slice(&[0xB1, b'r']);
    if !payload.is_empty() {
        m.push(0xFF);
        m.extend_from_slice(payload);
    }
    m
}

/// ACK 2.04 Changed piggybacked response with a payload.
fn ack_resp(token: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0x60 | token.len() as u8, 0x44, 0, 0];
    m.extend_from_slice(token);
    if !payload.is_empty() {
        m.push(0xFF);
        m.extend_from_slice(payload);
    }
    m
}

/// CON 2.05 Content notification (Observe option 6, 1 byte value) with a payload.
fn con_notify(token: &[u8], seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0x40 | token.len() as u8, 0x45, 0, 0];
    m.extend_from_slice(token);
    m.extend_from_slice(&[0x61, seq, 0xFF]);
    m.extend_from_slice(payload);
    m
}

const EMPTY_ACK: [u8; 4] = [0x60, 0x00, 0, 0];

/// `m` with its Message ID replaced.
fn with_mid(m: &[u8], mid: u16) -> Vec<u8> {
    let mut v = m.to_vec();
    v[2..4].copy_from_slice(&mid.to_be_bytes());
    v
}

fn new_gw(seed: u8) -> Gw {
    Responder::new(RamStorage::new(), Config::GATEWAY, &mut rng(seed)).unwrap()
}

fn new_dev(seed: u8) -> Dev {
    Initiator::new(RamStorage::new(), Config::DEVICE, &mut rng(seed)).unwrap()
}

/// Runs first contact (XX) with `req`; returns the device's request as the gateway saw it and
/// the gateway's ticket.
fn xx_connect(
    dev: &mut Dev,
    gw: &mut Gw,
    r: &mut ChaCha20Rng,
    req: &[u8],
) -> (Vec<u8>, ReplyTicket) {
    let mut f1 = [0u8; 400];
    let mut f2 = [0u8; 400];
    let s1 = dev.seal(r, req, &mut f1).unwrap();
    assert!(!s1.carried && s1.handshake);
    let Received::Handshake { len, .. } = gw.open(r, &f1[..s1.len], &mut f2).unwrap() else {
        panic!("expected XX message 2")
    };
    assert_eq!(
        dev.open(&f2[..len], &mut f1).unwrap(),
        Received::NeedRequest
    );
    let s3 = dev.seal(r, req, &mut f1).unwrap();
    assert!(s3.carried && s3.handshake);
    assert_eq!(dev.state(), PipeState::Established);
    let Received::Message {
        len,
        ticket: Some(t),
        ..
    } = gw.open(r, &f1[..s3.len], &mut f2).unwrap()
    else {
        panic!("expected the request in XX message 3")
    };
    (f2[..len].to_vec(), t)
}

#[test]
fn xx_first_contact_pins_then_ik_carries_zero_rtt_request() {
    let mut r = rng(1);
    let mut gw = new_gw(2);
    let mut dev = new_dev(3);
    assert_eq!(dev.pinned_key(), None);
    let req = con_post(&[0xA1], b"hello");
    let (seen, ticket) = xx_connect(&mut dev, &mut gw, &mut r, &req);
    // Trust on first use: the device pinned the gateway's key, persistently.
    assert_eq!(dev.pinned_key(), Some(gw.public_key()));
    assert_eq!(seen, with_mid(&req, ticket.mid()));
    assert_eq!(gw.remote_static(ticket.cid()), Some(dev.public_key()));
    // The response travels as a transport ACK under the echoed nonce.
    let resp = ack_resp(&[0xA1], b"ok");
    let mut f = [0u8; 200];
    let mut p = [0u8; 200];
    let s = gw.seal_reply(&mut r, ticket, &resp, &mut f).unwrap();
    assert_eq!(s.nonce.unwrap() & ECHO_BIT, ECHO_BIT);
    let Received::Message {
        len, ticket: None, ..
    } = dev.open(&f[..s.len], &mut p).unwrap()
    else {
        panic!()
    };
    assert_eq!(&p[..len], &with_mid(&resp, s.mid)[..]);

    // Next connection: IK with the request in message 1 (0-RTT).
    dev.reset_session().unwrap();
    let dev_storage = dev.into_storage();
    let mut dev = Initiator::new(dev_storage, Config::DEVICE, &mut rng(4)).unwrap();
    assert_eq!(dev.pinned_key(), Some(gw.public_key()));
    assert_eq!(dev.state(), PipeState::NoSession);
    let req2 = con_post(&[0xB2, 0xB3], b"again");
    let s1 = dev.seal(&mut r, &req2, &mut f).unwrap();
    assert!(s1.carried && s1.handshake);
    assert_eq!(
        Frame::new_checked(&f[..s1.len]).unwrap().code(),
        HandshakeCode::Ik1.code()
    );
    // IK message 1 = CID + header + e + encrypted s + (TKL, code, token, rest) + tag.
    assert_eq!(s1.len, 1 + 4 + 32 + 48 + 2 + 2 + (req2.len() - 6) + 16);
    let Received::Message {
        cid,
        len,
        ticket: Some(t),
    } = gw.open(&mut r, &f[..s1.len], &mut p).unwrap()
    else {
        panic!("gateway should decrypt the 0-RTT request")
    };
    assert_eq!(&p[..len], &with_mid(&req2, s1.mid)[..]);
    let resp2 = ack_resp(&[0xB2, 0xB3], b"fine");
    let s2 = gw.seal_reply(&mut r, t, &resp2, &mut f).unwrap();
    assert!(s2.handshake);
    assert_eq!(
        Frame::new_checked(&f[..s2.len]).unwrap().code(),
        HandshakeCode::Ik2.code()
    );
    let Received::Message {
        cid: dcid,
        len,
        ticket: None,
    } = dev.open(&f[..s2.len], &mut p).unwrap()
    else {
        panic!()
    };
    assert_eq!(dcid, cid);
    assert_eq!(&p[..len], &with_mid(&resp2, s1.mid)[..]);
    assert_eq!(dev.state(), PipeState::Established);
    // And the session carries traffic.
    exchange(&mut dev, &mut gw, &mut r, b"third");
}

/// One request/response round trip on an established session.
fn exchange(dev: &mut Dev, gw: &mut Gw, r: &mut ChaCha20Rng, payload: &[u8]) {
    let mut f = [0u8; 200];
    let mut p = [0u8; 200];
    let req = con_post(&[7], payload);
    let s = dev.seal(r, &req, &mut f).unwrap();
    assert!(!s.handshake);
    let Received::Message {
        len,
        ticket: Some(t),
        ..
    } = gw.open(r, &f[..s.len], &mut p).unwrap()
    else {
        panic!()
    };
    assert_eq!(&p[..len], &with_mid(&req, s.mid)[..]);
    let resp = ack_resp(&[7], payload);
    let s2 = gw.seal_reply(r, t, &resp, &mut f).unwrap();
    let Received::Message {
        len, ticket: None, ..
    } = dev.open(&f[..s2.len], &mut p).unwrap()
    else {
        panic!()
    };
    assert_eq!(&p[..len], &with_mid(&resp, s.mid)[..]);
}

#[test]
fn gateway_that_lost_its_sessions_still_answers_ik() {
    let mut r = rng(5);
    let mut gw = new_gw(6);
    let mut dev = new_dev(7);
    let (_, _unanswered) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
    // The gateway keeps its static key but loses every session (and its ephemeral state).
    let mut storage = gw.into_storage();
    for cid in 0..6u8 {
        for b in [false, true] {
            storage.write(Slot::Session { cid, b }, &[]).unwrap();
        }
    }
    let mut gw = Gw::new(storage, Config::GATEWAY, &mut rng(8)).unwrap();
    assert_eq!(gw.session_count(), 0);
    let mut f = [0u8; 200];
    let mut p = [0u8; 200];
    let s = dev.seal(&mut r, &con_post(&[1], b"b"), &mut f).unwrap();
    assert_eq!(
        gw.open(&mut r, &f[..s.len], &mut p),
        Err(PipeError::UnknownSession)
    );
    // The device gives up on the session; the next request rides in IK message 1.
    dev.reset_session().unwrap();
    let req = con_post(&[2], b"c");
    let s = dev.seal(&mut r, &req, &mut f).unwrap();
    let Received::Message {
        ticket: Some(t), ..
    } = gw.open(&mut r, &f[..s.len], &mut p).unwrap()
    else {
        panic!()
    };
    let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
    assert!(matches!(
        dev.open(&f[..s.len], &mut p),
        Ok(Received::Message { .. })
    ));
    exchange(&mut dev, &mut gw, &mut r, b"d");
}

#[test]
fn new_gateway_key_is_refused_and_repinned_only_explicitly() {
    let mut r = rng(9);
    let mut gw1 = new_gw(10);
    let mut dev = new_dev(11);
    xx_connect(&mut dev, &mut gw1, &mut r, &con_post(&[1], b"a"));
    let old_pin = gw1.public_key();
    dev.reset_session().unwrap();
    // A gateway with a new static key: it cannot decrypt IK and falls back to XX, presenting
    // its key — which the device refuses.
    let mut gw2 = new_gw(12);
    assert_ne!(gw2.public_key(), old_pin);
    let mut f = [0u8; 300];
    let mut p = [0u8; 300];
    let req = con_post(&[3], b"secret");
    let s = dev.seal(&mut r, &req, &mut f).unwrap();
    let Received::Handshake { len, .. } = gw2.open(&mut r, &f[..s.len], &mut p).unwrap() else {
        panic!("expected XXfallback message 1")
    };
    assert_eq!(
        Frame::new_checked(&p[..len]).unwrap().code(),
        HandshakeCode::Fallback1.code()
    );
    assert_eq!(
        dev.open(&p[..len], &mut f),
        Err(PipeError::PinnedKeyMismatch)
    );
    assert_eq!(dev.presented_key(), Some(gw2.public_key()));
    assert_eq!(dev.pinned_key(), Some(old_pin));
    assert_eq!(dev.state(), PipeState::NoSession);
    // No silent re-pinning: after a reboot the old pin is still there and IK is tried again.
    let mut dev = Initiator::new(dev.into_storage(), Config::DEVICE, &mut rng(13)).unwrap();
    assert_eq!(dev.pinned_key(), Some(old_pin));
    let s = dev.seal(&mut r, &req, &mut f).unwrap();
    assert_eq!(
        Frame::new_checked(&f[..s.len]).unwrap().code(),
        HandshakeCode::Ik1.code()
    );
    let Received::Handshake { len, .. } = gw2.open(&mut r, &f[..s.len], &mut p).unwrap() else {
        panic!()
    };
    assert_eq!(
        dev.open(&p[..len], &mut f),
        Err(PipeError::PinnedKeyMismatch)
    );
    assert_eq!(dev.pinned_key(), Some(old_pin));
    // The explicit call re-pins; the next IK to the new gateway succeeds.
    dev.accept_presented_key().unwrap();
    assert_eq!(dev.pinned_key(), Some(gw2.public_key()));
    let s = dev.seal(&mut r, &req, &mut f).unwrap();
    let Received::Message {
        ticket: Some(t), ..
    } = gw2.open(&mut r, &f[..s.len], &mut p).unwrap()
    else {
        panic!("new gateway should decrypt IK to its key")
    };
    let s = gw2.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
    assert!(matches!(
        dev.open(&f[..s.len], &mut p),
        Ok(Received::Message { .. })
    ));
    // Explicit repin with a given key works too (and clears to first contact with None).
    dev.repin(None).unwrap();
    assert_eq!(dev.pinned_key(), None);
    assert_eq!(dev.state(), PipeState::NoSession);
}

#[test]
fn undecryptable_ik_completes_through_xxfallback() {
    let mut r = rng(14);
    let mut gw = new_gw(15);
    let mut dev = new_dev(16);
    xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
    dev.reset_session().unwrap();
    let req = con_post(&[4, 5], b"retry me");
    let mut f = [0u8; 300];
    let mut p = [0u8; 300];
    let s = dev.seal(&mut r, &req, &mut f).unwrap();
    // Corrupt the encrypted request in flight: the gateway cannot decrypt IK message 1.
    f[s.len - 1] ^= 0x01;
    let Received::Handshake { len, .. } = gw.open(&mut r, &f[..s.len], &mut p).unwrap() else {
        panic!()
    };
    let fb1 = p[..len].to_vec();
    assert_eq!(
        Frame::new_checked(&fb1[..]).unwrap().code(),
        HandshakeCode::Fallback1.code()
    );
    assert_eq!(fb1.len(), 1 + 4 + 32 + 48 + 1 + 16);
    // A forged fallback message leaves the device's IK state intact.
    let mut forged = fb1.clone();
    forged[40] ^= 1;
    assert!(dev.open(&forged, &mut p).is_err());
    assert_eq!(dev.open(&fb1, &mut p), Ok(Received::NeedRequest));
    assert_eq!(
        dev.state(),
        PipeState::NeedRequest(trickle_core::noise::Pattern::XXfallback)
    );
    let s2 = dev.seal(&mut r, &req, &mut f).unwrap();
    assert_eq!(
        Frame::new_checked(&f[..s2.len]).unwrap().code(),
        HandshakeCode::Fallback2.code()
    );
    let Received::Message {
        len,
        ticket: Some(t),
        ..
    } = gw.open(&mut r, &f[..s2.len], &mut p).unwrap()
    else {
        panic!()
    };
    assert_eq!(&p[..len], &with_mid(&req, s2.mid)[..]);
    let resp = ack_resp(&[4, 5], b"got it");
    let s3 = gw.seal_reply(&mut r, t, &resp, &mut f).unwrap();
    assert!(!s3.handshake);
    let Received::Message { len, .. } = dev.open(&f[..s3.len], &mut p).unwrap() else {
        panic!()
    };
    assert_eq!(&p[..len], &with_mid(&resp, s2.mid)[..]);
    exchange(&mut dev, &mut gw, &mut r, b"after fallback");
}

#[test]
fn handshake_retransmissions_get_the_cached_answer() {
    let mut r = rng(17);
    let mut gw = new_gw(18);
    let mut dev = new_dev(19);
    let mut f1 = [0u8; 300];
    let mut a = [0u8; 300];
    let mut b = [0u8; 300];
    let s1 = dev.seal(&mut r, &con_post(&[1], b""), &mut f1).unwrap();
    let Received::Handshake { len: la, .. } = gw.open(&mut r, &f1[..s1.len], &mut a).unwrap()
    else {
        panic!()
    };
    // XX message 1 retransmitted (message 2 lost): the same message 2 comes back, no new session.
    let Received::Handshake { len: lb, .. } = gw.open(&mut r, &f1[..s1.len], &mut b).unwrap()
    else {
        panic!()
    };
    assert_eq!(&a[..la], &b[..lb]);
    assert_eq!(gw.session_count(), 1);
    assert_eq!(dev.open(&a[..la], &mut b), Ok(Received::NeedRequest));
    let s3 = dev.seal(&mut r, &con_post(&[1], b"x"), &mut f1).unwrap();
    assert!(matches!(
        gw.open(&mut r, &f1[..s3.len], &mut a),
        Ok(Received::Message { .. })
    ));
    // XX message 3 retransmitted (response lost): a duplicate for the CoAP cache.
    assert!(matches!(
        gw.open(&mut r, &f1[..s3.len], &mut a),
        Ok(Received::Duplicate { mid, kind: Kind::Con, .. }) if mid == s3.mid
    ));
}

#[test]
fn replays_rejected_reordering_accepted_window_enforced() {
    let mut r = rng(20);
    let mut gw = new_gw(21);
    let mut dev = new_dev(22);
    let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
    let mut p = [0u8; 300];
    let mut ack = [0u8; 64];
    let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut ack).unwrap();
    assert_eq!(s.len, 21);
    dev.open(&ack[..s.len], &mut p).unwrap();
    // A replayed ACK is a duplicate, not a second acceptance.
    assert!(matches!(
        dev.open(&ack[..s.len], &mut p),
        Ok(Received::Duplicate { .. })
    ));
    // 80 NON frames from the device, delivered out of order.
    let mut frames = Vec::new();
    for i in 0..80u8 {
        let mut m = con_post(&[i], &[i]);
        m[0] |= 0x10; // NON
        let mut f = [0u8; 64];
        let s = dev.seal(&mut r, &m, &mut f).unwrap();
        frames.push(f[..s.len].to_vec());
    }
    // Deliver 16..80 (64 counters: the window) shuffled, except frame 70 which comes last.
    let mut order: Vec<usize> = (16..80).filter(|&i| i != 70).collect();
    for i in (1..order.len()).rev() {
        let j = (r.next_u32() as usize) % (i + 1);
        order.swap(i, j);
    }
    for &i in &order {
        assert!(
            matches!(
                gw.open(&mut r, &frames[i], &mut p),
                Ok(Received::Message { .. })
            ),
            "frame {i}"
        );
    }
    // Reordered inside the window: accepted once, then a duplicate.
    assert!(matches!(
        gw.open(&mut r, &frames[70], &mut p),
        Ok(Received::Message { .. })
    ));
    assert!(matches!(
        gw.open(&mut r, &frames[70], &mut p),
        Ok(Received::Duplicate { .. })
    ));
    // Frames 0..16 are 64 or more counters behind the newest: too old.
    for f in &frames[..16] {
        assert_eq!(gw.open(&mut r, f, &mut p), Err(PipeError::TooOld));
    }
    // A forged frame (bit flip) never moves the window.
    let mut forged = frames[79].clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x80;
    assert_eq!(gw.open(&mut r, &forged, &mut p), Err(PipeError::Auth));
}

/// Records every (key, nonce) use with its plaintext and fails on a second plaintext.
#[derive(Default)]
struct NonceLog {
    seen: HashMap<(KeyId, u64), Vec<u8>>,
}

impl NonceLog {
    fn record(&mut self, s: &Sealed, frame: &[u8]) {
        let (Some(id), Some(n)) = (s.key_id, s.nonce) else {
            return;
        };
        // The plaintext is determined by (AD, ciphertext) under a given key and nonce; a repeated
        // pair must come with the identical frame (a byte-identical retransmission).
        if let Some(prev) = self.seen.insert((id, n), frame.to_vec()) {
            assert_eq!(prev, frame, "(key, nonce) reused for a different frame");
            panic!("(key, nonce) sealed twice");
        }
    }
}

#[test]
fn piggybacked_responses_and_notifications_never_share_a_nonce() {
    let mut r = rng(23);
    let mut gw = new_gw(24);
    let mut dev = new_dev(25);
    let mut log = NonceLog::default();
    let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"observe"));
    let cid = t.cid();
    let mut f = [0u8; 300];
    let mut p = [0u8; 300];
    let s = gw
        .seal_reply(&mut r, t, &ack_resp(&[1], b"first"), &mut f)
        .unwrap();
    log.record(&s, &f[..s.len]);
    dev.open(&f[..s.len], &mut p).unwrap();
    // Gateway MIDs used by piggybacked responses (echoed) and by notifications (own).
    let mut echoed_mids = HashSet::new();
    let mut own_mids = HashSet::new();
    for i in 0..400u32 {
        // A device request and a gateway notification cross on the air: both ends seal before
        // seeing the other's frame, so their counters (and Message IDs) are equal.
        let req = con_post(&[2], &i.to_be_bytes());
        let mut fr = [0u8; 300];
        let sr = dev.seal(&mut r, &req, &mut fr).unwrap();
        log.record(&sr, &fr[..sr.len]);
        let mut notes = Vec::new();
        for k in 0..(1 + i % 2) {
            let n = con_notify(&[1], (i + k) as u8, &[b'n', (i + k) as u8]);
            let s = gw.seal(cid, &n, &mut f).unwrap();
            log.record(&s, &f[..s.len]);
            own_mids.insert(s.mid);
            notes.push(f[..s.len].to_vec());
        }
        // The request is answered with a piggybacked response (echoed MID, gateway key).
        let Received::Message {
            ticket: Some(t), ..
        } = gw.open(&mut r, &fr[..sr.len], &mut p).unwrap()
        else {
            panic!()
        };
        let s = gw
            .seal_reply(
                &mut r,
                t,
                &ack_resp(&[2], &(i ^ 0xFFFF).to_be_bytes()),
                &mut f,
            )
            .unwrap();
        log.record(&s, &f[..s.len]);
        echoed_mids.insert(s.mid);
        dev.open(&f[..s.len], &mut p).unwrap();
        // Each notification is ACKed (empty ACK = echoed nonce under the device key).
        for n in notes {
            let Received::Message {
                ticket: Some(t), ..
            } = dev.open(&n, &mut p).unwrap()
            else {
                panic!()
            };
            let s = dev.seal_reply(t, &EMPTY_ACK, &mut f).unwrap();
            log.record(&s, &f[..s.len]);
            assert!(matches!(
                gw.open(&mut r, &f[..s.len], &mut p),
                Ok(Received::Message { .. })
            ));
        }
    }
    // The test means something only if the Message IDs of both kinds collide numerically.
    let collisions = echoed_mids.intersection(&own_mids).count();
    assert!(collisions > 100, "only {collisions} colliding MIDs");
    println!(
        "{collisions} MIDs used both echoed and own; {} (key, nonce) pairs",
        log.seen.len()
    );
    assert!(log.seen.len() > 2000);
    // Re-encrypting under an echoed nonce is impossible: tickets are single-use and not Clone,
    // and a retransmitted request yields `Duplicate`, not a ticket.
    let req = con_post(&[9], b"dup");
    let s = dev.seal(&mut r, &req, &mut f).unwrap();
    let frame = f[..s.len].to_vec();
    assert!(matches!(
        gw.open(&mut r, &frame, &mut p),
        Ok(Received::Message {
            ticket: Some(_),
            ..
        })
    ));
    assert!(matches!(
        gw.open(&mut r, &frame, &mut p),
        Ok(Received::Duplicate { .. })
    ));
}

/// Storage that loses power after `writes_left` writes: that write is torn at a random length.
struct Flaky<const N: usize = 6> {
    inner: RamStorage<N>,
    writes_left: Option<u32>,
    keep: usize,
    dead: bool,
}

impl<const N: usize> Storage for Flaky<N> {
    fn read(&mut self, slot: Slot, buf: &mut [u8]) -> Result<usize, StorageError> {
        self.inner.read(slot, buf)
    }
    fn write(&mut self, slot: Slot, data: &[u8]) -> Result<(), StorageError> {
        if self.dead {
            return Err(StorageError::Io);
        }
        match self.writes_left {
            Some(0) => {
                self.inner.write_torn(slot, data, self.keep);
                self.dead = true;
                Err(StorageError::Io)
            }
            Some(ref mut n) => {
                *n -= 1;
                self.inner.write(slot, data)
            }
            None => self.inner.write(slot, data),
        }
    }
}

#[test]
fn hundred_power_cuts_never_reuse_a_nonce_and_resume_without_handshake() {
    let mut r = rng(30);
    let mut gw = new_gw(31);
    let flaky: Flaky = Flaky {
        inner: RamStorage::new(),
        writes_left: None,
        keep: 0,
        dead: false,
    };
    let mut dev = Initiator::new(flaky, Config::DEVICE, &mut rng(32)).unwrap();
    let mut log = NonceLog::default();
    let mut f = [0u8; 300];
    let mut p = [0u8; 300];
    // First contact (before any power cut).
    let mut s = dev.seal(&mut r, &con_post(&[1], b"obs"), &mut f).unwrap();
    let Received::Handshake { len, .. } = gw.open(&mut r, &f[..s.len], &mut p).unwrap() else {
        panic!()
    };
    dev.open(&p[..len], &mut f).unwrap();
    s = dev.seal(&mut r, &con_post(&[1], b"obs"), &mut f).unwrap();
    let Received::Message {
        ticket: Some(t),
        cid,
        ..
    } = gw.open(&mut r, &f[..s.len], &mut p).unwrap()
    else {
        panic!()
    };
    let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
    dev.open(&f[..s.len], &mut p).unwrap();
    let gw_handshake_bytes = gw.handshake_bytes();

    let mut msg_no = 0u32;
    let mut resumed_exchanges = 0;
    let mut accepted_notes: Vec<Vec<u8>> = Vec::new();
    for cut in 0..100 {
        // Arm the power cut: after 0..4 more storage writes, at a random byte.
        let mut storage = dev.into_storage();
        storage.writes_left = Some(r.next_u32() % 4);
        storage.keep = (r.next_u32() % 140) as usize;
        let mut dev_run =
            Initiator::new(storage, Config::DEVICE, &mut rng(40 + (cut % 200) as u8)).unwrap();
        assert_eq!(
            dev_run.state(),
            PipeState::Established,
            "cut {cut}: session must resume"
        );
        // An attacker (or a late retransmission) replays notifications the device accepted
        // before the cut: the persisted receive floor refuses them, so no second ticket and no
        // second ACK under an echoed nonce.
        for old in accepted_notes.iter().rev().take(8) {
            let rx = dev_run.open(old, &mut p);
            assert!(
                matches!(rx, Err(PipeError::TooOld) | Ok(Received::Duplicate { .. })),
                "cut {cut}: replayed notification accepted: {rx:?}"
            );
        }
        // Run random traffic until the power cut hits (or a step budget ends).
        let steps = 1 + r.next_u32() % 300;
        let mut proved_resume = false;
        for _ in 0..steps {
            msg_no += 1;
            let payload = msg_no.to_be_bytes();
            let op = r.next_u32() % 3;
            let result: Result<(), PipeError> = (|| {
                if op < 2 {
                    // Device request (CON or NON); maybe lost on the air.
                    let mut m = con_post(&[3], &payload);
                    if op == 1 {
                        m[0] |= 0x10;
                    }
                    let s = dev_run.seal(&mut r, &m, &mut f)?;
                    log.record(&s, &f[..s.len]);
                    if r.next_u32().is_multiple_of(8) {
                        return Ok(()); // lost
                    }
                    let rx = gw.open(&mut r, &f[..s.len], &mut p);
                    let Ok(Received::Message {
                        ticket: Some(t), ..
                    }) = rx
                    else {
                        panic!("gateway refused a fresh device frame: {rx:?}")
                    };
                    if op == 0 {
                        let s = gw
                            .seal_reply(&mut r, t, &ack_resp(&[3], &payload), &mut f)
                            .unwrap();
                        log.record(&s, &f[..s.len]);
                        match dev_run.open(&f[..s.len], &mut p)? {
                            Received::Message { .. } => proved_resume = true,
                            other => panic!("{other:?}"),
                        }
                    }
                } else {
                    // Gateway notification; the device ACKs it.
                    let s = gw
                        .seal(cid, &con_notify(&[1], msg_no as u8, &payload), &mut f)
                        .unwrap();
                    log.record(&s, &f[..s.len]);
                    match dev_run.open(&f[..s.len], &mut p) {
                        Ok(Received::Message {
                            ticket: Some(t), ..
                        }) => {
                            accepted_notes.push(f[..s.len].to_vec());
                            let s = dev_run.seal_reply(t, &EMPTY_ACK, &mut f)?;
                            log.record(&s, &f[..s.len]);
                            assert!(matches!(
                                gw.open(&mut r, &f[..s.len], &mut p),
                                Ok(Received::Message { .. })
                            ));
                        }
                        // Right after a reboot the gateway's counter may still be below the
                        // device's persisted receive floor (until the device's first frame).
                        Err(PipeError::TooOld) => {}
                        Err(e) => return Err(e),
                        Ok(other) => panic!("{other:?}"),
                    }
                }
                Ok(())
            })();
            match result {
                Ok(()) => {}
                Err(PipeError::Storage(_)) => break, // power cut
                Err(e) => panic!("cut {cut}: unexpected {e:?}"),
            }
        }
        if proved_resume {
            resumed_exchanges += 1;
        }
        // No handshake byte after a reboot, on either side.
        assert_eq!(dev_run.handshake_bytes(), 0);
        assert_eq!(gw.handshake_bytes(), gw_handshake_bytes);
        let mut storage = dev_run.into_storage();
        storage.dead = false;
        storage.writes_left = None;
        dev = Initiator::new(storage, Config::DEVICE, &mut rng(1)).unwrap();
    }
    assert!(
        resumed_exchanges > 50,
        "only {resumed_exchanges} runs completed an exchange"
    );
    assert!(log.seen.len() > 1000);
}

#[test]
fn counters_cross_epochs_with_rekey_and_stop_before_the_limit() {
    let mut r = rng(50);
    let mut gw = new_gw(51);
    let mut dev = new_dev(52);
    let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
    let cid = t.cid();
    // Move both ends' persisted counters just below the first epoch boundary (2^16), as if
    // 65 000 messages had been exchanged, and reboot both.
    let near = (1u64 << 16) - 8;
    let mut ds = Records::new(dev.into_storage());
    let (rec, mut c) = ds.load_session(0).unwrap();
    let mut rec = rec.unwrap();
    rec.send_bound = near;
    rec.recv_floor = near;
    ds.save_session(0, &mut c, Some(&rec)).unwrap();
    let mut gs = Records::new(gw.into_storage());
    let (grec, mut gc) = gs.load_session(cid).unwrap();
    let mut grec = grec.unwrap();
    grec.send_bound = near;
    grec.recv_floor = near;
    gs.save_session(cid, &mut gc, Some(&grec)).unwrap();
    let mut dev = Initiator::new(ds.into_inner(), Config::DEVICE, &mut r).unwrap();
    let mut gw = Gw::new(gs.into_inner(), Config::GATEWAY, &mut r).unwrap();
    let mut f = [0u8; 200];
    let mut p = [0u8; 200];
    let mut ids = HashSet::new();
    for i in 0..20u8 {
        let s = dev.seal(&mut r, &con_post(&[i], &[i]), &mut f).unwrap();
        ids.insert(s.key_id.unwrap());
        let Received::Message {
            ticket: Some(t), ..
        } = gw.open(&mut r, &f[..s.len], &mut p).unwrap()
        else {
            panic!("frame {i}")
        };
        let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
        ids.insert(s.key_id.unwrap());
        dev.open(&f[..s.len], &mut p).unwrap();
        let s = gw.seal(cid, &con_notify(&[1], i, &[i]), &mut f).unwrap();
        ids.insert(s.key_id.unwrap());
        assert!(matches!(
            dev.open(&f[..s.len], &mut p),
            Ok(Received::Message { .. })
        ));
    }
    // Two directions × two epochs: four distinct keys.
    assert_eq!(ids.len(), 4);
    // At the counter limit the pipe refuses to send rather than wrap.
    let mut ds = Records::new(dev.into_storage());
    let (rec, mut c) = ds.load_session(0).unwrap();
    let mut rec = rec.unwrap();
    rec.send_bound = trickle_core::noise::pipe::COUNTER_LIMIT;
    ds.save_session(0, &mut c, Some(&rec)).unwrap();
    let mut dev = Initiator::new(ds.into_inner(), Config::DEVICE, &mut r).unwrap();
    assert_eq!(
        dev.seal(&mut r, &con_post(&[1], b"x"), &mut f),
        Err(PipeError::CounterExhausted)
    );
}

#[test]
fn established_overhead_is_cid_header_token_tag() {
    let mut r = rng(60);
    let mut gw = new_gw(61);
    let mut dev = new_dev(62);
    let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
    let mut f = [0u8; 200];
    let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
    assert_eq!(s.len, 1 + 4 + 16); // empty ACK: 21 bytes
    for (token, rest) in [
        (&[][..], &[][..]),
        (
            &[1u8][..],
            &[0xB1, b'r', 0xFF, b'H', b'e', b'l', b'l', b'o'][..],
        ),
    ] {
        let mut m = vec![0x40 | token.len() as u8, 0x02, 0, 0];
        m.extend_from_slice(token);
        m.extend_from_slice(rest);
        let s = dev.seal(&mut r, &m, &mut f).unwrap();
        assert_eq!(s.len, 1 + 4 + token.len() + rest.len() + 16);
        let fr = Frame::new_checked(&f[..s.len]).unwrap();
        assert_eq!(fr.cid(), dev.cid().unwrap());
        assert_eq!(fr.token(), token);
        assert_eq!(fr.body().len(), rest.len() + 16);
    }
}

#[test]
fn foreign_and_malformed_frames_are_clean_errors() {
    let mut r = rng(70);
    let mut gw = new_gw(71);
    let mut dev = new_dev(72);
    let mut p = [0u8; 300];
    assert_eq!(
        dev.open(&[], &mut p),
        Err(PipeError::Frame(
            trickle_core::noise::frame::FrameError::Truncated
        ))
    );
    assert_eq!(
        dev.open(&[9, 0x40, 0x02, 0, 1], &mut p),
        Err(PipeError::NoSession)
    );
    let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
    let mut f = [0u8; 64];
    let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
    // The same frame under another CID is someone else's.
    f[0] = f[0].wrapping_add(1);
    assert_eq!(
        dev.open(&f[..s.len], &mut p),
        Err(PipeError::UnknownSession)
    );
    assert_eq!(
        gw.open(&mut r, &[0, 0x40, 0xEC, 0, 0], &mut p),
        Err(PipeError::UnknownSession)
    );
    // Short frames never panic.
    for n in 0..30 {
        let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 1) as u8 | 0x40).collect();
        let _ = dev.open(&junk, &mut p);
        let _ = gw.open(&mut r, &junk, &mut p);
    }
}

#[test]
fn bytes_report_matches_the_documented_numbers() {
    let request = con_post(&[0x01], b"Hello");
    let response = EMPTY_ACK.to_vec();
    let rep = handshake_report(&mut rng(80), &request, &response).unwrap();
    let rest = request.len() - 4 - 1; // options + payload
    assert_eq!(rep.xx, [37, 102, 1 + 4 + 48 + 2 + 1 + rest + 16]);
    assert_eq!(rep.xx_response, 21);
    assert_eq!(
        rep.ik,
        [1 + 4 + 32 + 48 + 2 + 1 + rest + 16, 1 + 4 + 32 + 1 + 2 + 16]
    );
    assert_eq!(
        rep.fallback,
        [rep.ik[0], 102, 1 + 4 + 48 + 2 + 1 + rest + 16]
    );
    assert_eq!(rep.fallback_response, 21);
    assert_eq!(rep.request, 1 + 4 + 1 + rest + 16);
    assert_eq!(rep.empty_ack, 21);
    println!("{rep}");
    assert!(
        rep.to_string()
            .contains("IK reconnect (0-RTT)     112 + 56")
    );
}

/// A device built from `docs/PROTOCOL.md` with another Noise library (`snow`) and the AEAD
/// directly: IK with the 0-RTT request, then transport frames both ways with the documented AD
/// and nonces (own counter for the CON, echoed counter with bit 63 for the ACK).
#[test]
fn snow_device_built_from_the_spec_talks_to_our_gateway() {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};

    let mut r = rng(90);
    let mut gw = new_gw(91);
    let dev_secret = [0x42u8; 32];
    let b: u16 = 0xFFFE; // the next counters cross the 16-bit MID wrap
    let mut prologue = b"trickle-pipe-v1".to_vec();
    prologue.extend_from_slice(&b.to_be_bytes());
    let mut snow_hs = snow::Builder::new("Noise_IK_25519_ChaChaPoly_BLAKE2s".parse().unwrap())
        .local_private_key(&dev_secret)
        .unwrap()
        .remote_public_key(&gw.public_key())
        .unwrap()
        .prologue(&prologue)
        .unwrap()
        .build_initiator()
        .unwrap();
    // IK 1: CID 0, CON, TKL 0, code 7.20, MID b, Noise message with payload TKL|code|token|rest.
    let carried = [&[1u8, 0x02, 0xAB][..], &[0xB1, b'r', 0xFF, b'H', b'i']].concat();
    let mut msg = [0u8; 300];
    let n = snow_hs.write_message(&carried, &mut msg).unwrap();
    let frame = [&[0x00, 0x40, 0xF4][..], &b.to_be_bytes(), &msg[..n]].concat();
    let mut p = [0u8; 300];
    let Received::Message {
        cid,
        len,
        ticket: Some(t),
    } = gw.open(&mut r, &frame, &mut p).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        &p[..len],
        &[0x41, 0x02, 0xFF, 0xFE, 0xAB, 0xB1, b'r', 0xFF, b'H', b'i']
    );
    // IK 2: CID 0, ACK, code 7.21, MID b; payload cid | TKL | code | token | rest.
    let mut f = [0u8; 300];
    let s = gw
        .seal_reply(&mut r, t, &ack_resp(&[0xAB], b"ok"), &mut f)
        .unwrap();
    assert_eq!(&f[..5], &[0x00, 0x60, 0xF5, 0xFF, 0xFE]);
    let n = snow_hs.read_message(&f[5..s.len], &mut msg).unwrap();
    assert_eq!(&msg[..n], &[cid, 1, 0x44, 0xAB, 0xFF, b'o', b'k']);
    assert_eq!(snow_hs.get_remote_static().unwrap(), &gw.public_key());
    let (k_send, k_recv) = snow_hs.dangerously_get_raw_split();
    let aead = |k: &[u8; 32]| ChaCha20Poly1305::new(&Key::from(*k));
    let nonce = |n: u64| {
        let mut x = [0u8; 12];
        x[4..].copy_from_slice(&n.to_le_bytes());
        Nonce::from(x)
    };
    // Transport CON with the device's next counter b+1 = 0xFFFF, then b+2 = 0x1_0000 (epoch 1:
    // the key is REKEYed once, as the spec says).
    for (counter, key) in [(0xFFFFu64, k_send), (0x1_0000u64, rekey(&k_send))] {
        let mid = counter as u16;
        let ad = [&[cid, 0x41, 0x02][..], &mid.to_be_bytes(), &[0x07]].concat();
        let mut ct = vec![0xB1, b'r', 0xFF, b'!'];
        let tag = aead(&key)
            .encrypt_inout_detached(&nonce(counter), &ad, ct.as_mut_slice().into())
            .unwrap();
        let frame = [&ad[..], &ct, tag.as_slice()].concat();
        let Received::Message {
            len,
            ticket: Some(t),
            ..
        } = gw.open(&mut r, &frame, &mut p).unwrap()
        else {
            panic!("gateway refused the spec-built transport frame {counter:#x}")
        };
        assert_eq!(
            &p[..len],
            &[
                0x41,
                0x02,
                (mid >> 8) as u8,
                mid as u8,
                0x07,
                0xB1,
                b'r',
                0xFF,
                b'!'
            ]
        );
        // The gateway's empty ACK: nonce 2^63 | counter under the gateway's key of that epoch.
        let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
        assert_eq!(s.len, 21);
        assert_eq!(s.nonce, Some(ECHO_BIT | counter));
        let rk = if counter >> 16 == 0 {
            k_recv
        } else {
            rekey(&k_recv)
        };
        let (ad, rest) = f[..s.len].split_at(5);
        let mut empty = [0u8; 0];
        aead(&rk)
            .decrypt_inout_detached(
                &nonce(ECHO_BIT | counter),
                ad,
                empty.as_mut_slice().into(),
                &Tag::try_from(rest).unwrap(),
            )
            .expect("spec-derived key and nonce must authenticate the gateway's ACK");
        assert_eq!(ad, &[cid, 0x60, 0x00, (mid >> 8) as u8, mid as u8]);
    }
}

/// Noise REKEY: the first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes).
fn rekey(k: &[u8; 32]) -> [u8; 32] {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut buf = [0u8; 32];
    let _ = ChaCha20Poly1305::new(&Key::from(*k))
        .encrypt_inout_detached(&Nonce::from(n), &[], buf.as_mut_slice().into())
        .unwrap();
    buf
}

#[test]
fn gateway_restart_keeps_sessions() {
    let mut r = rng(95);
    let mut gw = new_gw(96);
    let mut dev = new_dev(97);
    let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
    let mut f = [0u8; 200];
    let mut p = [0u8; 200];
    let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
    dev.open(&f[..s.len], &mut p).unwrap();
    for i in 0..5 {
        exchange(&mut dev, &mut gw, &mut r, &[i]);
    }
    let bytes = gw.handshake_bytes();
    let mut gw = Gw::new(gw.into_storage(), Config::GATEWAY, &mut rng(98)).unwrap();
    assert_eq!(gw.session_count(), 1);
    assert_eq!(gw.remote_static(dev.cid().unwrap()), Some(dev.public_key()));
    for i in 0..5 {
        exchange(&mut dev, &mut gw, &mut r, &[i]);
    }
    assert_eq!(gw.handshake_bytes(), 0);
    assert!(bytes > 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// Any CoAP message survives seal → open unchanged (but for the MID the pipe assigns or
    /// echoes), in both directions, and the frame is exactly CID + message + tag long.
    #[test]
    fn transport_round_trip(
        seed in proptest::prelude::any::<u8>(),
        tkl in 0usize..=8,
        non in proptest::prelude::any::<bool>(),
        code in proptest::prelude::any::<u8>(),
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 8..90),
        reply in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..60),
    ) {
        let mut r = rng(seed);
        let mut gw = new_gw(seed.wrapping_add(1));
        let mut dev = new_dev(seed.wrapping_add(2));
        let (_, t0) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
        let mut f = [0u8; 200];
        let mut p = [0u8; 200];
        let s = gw.seal_reply(&mut r, t0, &EMPTY_ACK, &mut f).unwrap();
        dev.open(&f[..s.len], &mut p).unwrap();
        let mut msg = vec![0x40 | (u8::from(non) << 4) | tkl as u8, code & 0x1F, 0, 0];
        msg.extend_from_slice(&body);
        let s = dev.seal(&mut r, &msg, &mut f).unwrap();
        proptest::prop_assert_eq!(s.len, 1 + msg.len() + 16);
        let Ok(Received::Message { len, ticket: Some(t), .. }) = gw.open(&mut r, &f[..s.len], &mut p) else {
            panic!()
        };
        proptest::prop_assert_eq!(&p[..len], &with_mid(&msg, s.mid)[..]);
        let mut ack = vec![0x60 | tkl as u8, 0x45, 0, 0];
        ack.extend_from_slice(&body[..tkl]);
        ack.extend_from_slice(&reply);
        let s2 = gw.seal_reply(&mut r, t, &ack, &mut f).unwrap();
        proptest::prop_assert_eq!(s2.len, 1 + ack.len() + 16);
        let Ok(Received::Message { len, ticket: None, .. }) = dev.open(&f[..s2.len], &mut p) else {
            panic!()
        };
        proptest::prop_assert_eq!(&p[..len], &with_mid(&ack, s.mid)[..]);
    }
}

/// The gateway loses power 60 times (torn writes included) while a device keeps talking: after
/// each restart the gateway resumes every session from storage without a handshake, refuses
/// replays of requests it accepted before, and no (key, nonce) pair is ever used twice.
#[test]
fn gateway_power_cuts_never_reuse_a_nonce() {
    let mut r = rng(100);
    let mut dev = new_dev(101);
    let flaky: Flaky<16> = Flaky {
        inner: RamStorage::new(),
        writes_left: None,
        keep: 0,
        dead: false,
    };
    let mut gw: Responder<Flaky<16>, 4> =
        Responder::new(flaky, Config::GATEWAY, &mut rng(102)).unwrap();
    let mut log = NonceLog::default();
    let mut f = [0u8; 300];
    let mut p = [0u8; 300];
    let s = dev.seal(&mut r, &con_post(&[1], b"obs"), &mut f).unwrap();
    let Received::Handshake { len, .. } = gw.open(&mut r, &f[..s.len], &mut p).unwrap() else {
        panic!()
    };
    dev.open(&p[..len], &mut f).unwrap();
    let s = dev.seal(&mut r, &con_post(&[1], b"obs"), &mut f).unwrap();
    let Received::Message {
        ticket: Some(t),
        cid,
        ..
    } = gw.open(&mut r, &f[..s.len], &mut p).unwrap()
    else {
        panic!()
    };
    let s = gw.seal_reply(&mut r, t, &EMPTY_ACK, &mut f).unwrap();
    dev.open(&f[..s.len], &mut p).unwrap();
    let mut accepted_requests: Vec<Vec<u8>> = Vec::new();
    let mut msg_no = 0u32;
    for cut in 0..60u32 {
        let mut storage = gw.into_storage();
        storage.dead = false;
        storage.writes_left = Some(r.next_u32() % 12);
        storage.keep = (r.next_u32() % 140) as usize;
        gw = Responder::new(storage, Config::GATEWAY, &mut rng(cut as u8)).unwrap();
        assert_eq!(gw.session_count(), 1, "cut {cut}");
        for old in accepted_requests.iter().rev().take(8) {
            let rx = gw.open(&mut r, old, &mut p);
            assert!(
                matches!(rx, Err(PipeError::TooOld) | Ok(Received::Duplicate { .. })),
                "cut {cut}: replayed request accepted: {rx:?}"
            );
        }
        for _ in 0..(1 + r.next_u32() % 40) {
            msg_no += 1;
            let payload = msg_no.to_be_bytes();
            let step: Result<(), PipeError> = (|| {
                if r.next_u32().is_multiple_of(2) {
                    let s = dev.seal(&mut r, &con_post(&[3], &payload), &mut f).unwrap();
                    log.record(&s, &f[..s.len]);
                    let frame = f[..s.len].to_vec();
                    match gw.open(&mut r, &frame, &mut p)? {
                        Received::Message {
                            ticket: Some(t), ..
                        } => {
                            accepted_requests.push(frame);
                            let s = gw.seal_reply(&mut r, t, &ack_resp(&[3], &payload), &mut f)?;
                            log.record(&s, &f[..s.len]);
                            assert!(matches!(
                                dev.open(&f[..s.len], &mut p),
                                Ok(Received::Message { .. })
                            ));
                        }
                        other => panic!("{other:?}"),
                    }
                } else {
                    let s = gw.seal(cid, &con_notify(&[1], msg_no as u8, &payload), &mut f)?;
                    log.record(&s, &f[..s.len]);
                    let Ok(Received::Message {
                        ticket: Some(t), ..
                    }) = dev.open(&f[..s.len], &mut p)
                    else {
                        panic!("device refused a fresh notification after gateway restart {cut}")
                    };
                    let s = dev.seal_reply(t, &EMPTY_ACK, &mut f).unwrap();
                    log.record(&s, &f[..s.len]);
                    assert!(matches!(
                        gw.open(&mut r, &f[..s.len], &mut p),
                        Ok(Received::Message { .. })
                    ));
                }
                Ok(())
            })();
            match step {
                Ok(()) => {}
                Err(PipeError::Storage(_)) => break,
                Err(e) => panic!("cut {cut}: {e:?}"),
            }
        }
        assert_eq!(gw.handshake_bytes(), 0);
    }
    println!("{} (key, nonce) pairs", log.seen.len());
    assert!(log.seen.len() > 300);
}

#[test]
fn failed_reply_hands_the_ticket_back() {
    let mut r = rng(110);
    let mut gw = new_gw(111);
    let mut dev = new_dev(112);
    let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
    let mut small = [0u8; 20];
    let failed = gw
        .seal_reply(&mut r, t, &EMPTY_ACK, &mut small)
        .unwrap_err();
    assert_eq!(failed.error, PipeError::BufferTooSmall { required: 21 });
    let failed = gw
        .seal_reply(&mut r, failed.ticket, &con_post(&[1], b""), &mut small)
        .unwrap_err();
    assert_eq!(failed.error, PipeError::WrongKind);
    let mut f = [0u8; 64];
    let s = gw
        .seal_reply(&mut r, failed.ticket, &EMPTY_ACK, &mut f)
        .unwrap();
    let mut p = [0u8; 64];
    assert!(matches!(
        dev.open(&f[..s.len], &mut p),
        Ok(Received::Message { .. })
    ));
    // Class-7 codes are reserved for handshakes.
    let mut m = con_post(&[1], b"x");
    m[1] = 0xE1;
    assert_eq!(dev.seal(&mut r, &m, &mut f), Err(PipeError::ReservedCode));
    // ACKs need a ticket.
    assert_eq!(
        dev.seal(&mut r, &EMPTY_ACK, &mut f),
        Err(PipeError::NeedsTicket)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Arbitrary bytes (and mutations of real frames) never panic either end and never yield a
    /// message: only a real, unmodified frame authenticates.
    #[test]
    fn arbitrary_frames_are_refused_without_panic(
        junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160),
        flip in 0usize..64,
        bit in 0u8..8,
    ) {
        let mut r = rng(120);
        let mut gw = new_gw(121);
        let mut dev = new_dev(122);
        let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"a"));
        let mut f = [0u8; 200];
        let mut p = [0u8; 200];
        let s = gw.seal_reply(&mut r, t, &ack_resp(&[1], b"payload"), &mut f).unwrap();
        let mut mutated = f[..s.len].to_vec();
        let i = flip % mutated.len();
        mutated[i] ^= 1 << bit;
        let accepted = matches!(dev.open(&mutated, &mut p), Ok(Received::Message { .. }));
        proptest::prop_assert!(!accepted);
        let s = dev.seal(&mut r, &con_post(&[2], b"up"), &mut f).unwrap();
        let mut mutated = f[..s.len].to_vec();
        let i = flip % mutated.len();
        mutated[i] ^= 1 << bit;
        let accepted = matches!(gw.open(&mut r, &mutated, &mut p), Ok(Received::Message { .. }));
        proptest::prop_assert!(!accepted);
        let _ = dev.open(&junk, &mut p);
        let _ = gw.open(&mut r, &junk, &mut p);
        // The untouched frame still goes through afterwards.
        let accepted = matches!(gw.open(&mut r, &f[..s.len], &mut p), Ok(Received::Message { .. }));
        proptest::prop_assert!(accepted);
    }
}

/// The gateway's first own CON right after a handshake (a separate response to the carried
/// request, or a notification) must authenticate at the device for every handshake base `b`:
/// the gateway's counter starts past the counters the handshake carried (Lamport rule), where
/// the device looks for it. Before the fix the gateway started at 0 and about half of all bases
/// (those ≥ 2^15) made that frame unreadable.
#[test]
fn gateway_first_own_con_after_any_handshake_is_readable() {
    /// The gateway answers the carried request with `ticket` (an empty ACK), then sends its own
    /// CON: the device must read both.
    fn answer_then_own_con(
        dev: &mut Dev,
        gw: &mut Gw,
        r: &mut ChaCha20Rng,
        t: ReplyTicket,
    ) -> bool {
        let mut f = [0u8; 400];
        let mut p = [0u8; 400];
        let s = gw.seal_reply(r, t, &EMPTY_ACK, &mut f).unwrap();
        assert!(matches!(
            dev.open(&f[..s.len], &mut p),
            Ok(Received::Message { .. })
        ));
        let cid = dev.cid().unwrap();
        let s = gw
            .seal(cid, &con_notify(&[1], 1, b"separate"), &mut f)
            .unwrap();
        matches!(dev.open(&f[..s.len], &mut p), Ok(Received::Message { .. }))
    }

    let mut f = [0u8; 400];
    let mut p = [0u8; 400];
    for seed in 0..24u8 {
        // XX first contact: the answer to XX 3 comes later as the gateway's own CON.
        let mut r = rng(100 + seed);
        let mut gw = new_gw(seed.wrapping_mul(3));
        let mut dev = new_dev(seed.wrapping_mul(5).wrapping_add(1));
        let (_, t) = xx_connect(&mut dev, &mut gw, &mut r, &con_post(&[1], b"login"));
        assert!(
            answer_then_own_con(&mut dev, &mut gw, &mut r, t),
            "seed {seed}: gateway CON after XX unreadable"
        );

        // IK reconnect (key pinned): the same, after IK 2.
        dev.reset_session().unwrap();
        let s = dev.seal(&mut r, &con_post(&[2], b"again"), &mut f).unwrap();
        let Received::Message {
            ticket: Some(t), ..
        } = gw.open(&mut r, &f[..s.len], &mut p).unwrap()
        else {
            panic!("IK 1 carries the request")
        };
        assert!(
            answer_then_own_con(&mut dev, &mut gw, &mut r, t),
            "seed {seed}: gateway CON after IK unreadable"
        );
    }
}
