//! The device client against the real gateway end of the Noise pipe (`Responder`), whose
//! application part (ops-spec: login, join, send, Observe notifications) is played by hand here.
//! Everything runs on a virtual clock over a simulated link.

use std::collections::{HashMap, HashSet, VecDeque};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use proptest::prelude::*;
use trickle_core::client::{
    Client, ClientConfig, Event, Failure, Handle, Instant, LinkConfig, MAX_FRAME_LEN, Peer,
};
use trickle_core::noise::pipe::{Config, Received, Responder};
use trickle_core::noise::storage::RamStorage;
use trickle_core::wire::coap::{Block, CoapOption, Code, Kind, OptionNumber, Repr, observe};

type Dev = Client<RamStorage, ChaCha20Rng, 1024>;

const T: u64 = 42_800; // ACK_TIMEOUT on LoRa at 100 bit/s

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn device(seed: u8) -> Dev {
    Client::new(
        RamStorage::new(),
        rng(seed),
        ClientConfig::new(LinkConfig::LORA_100),
    )
    .unwrap()
}

/// An owned copy of an event, to compare across borrows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    LoggedIn(Handle, String, String),
    Joined(Handle, u16, String),
    Delivered(Handle),
    Subscribed(Handle),
    Failed(Handle, String),
    Message(String, String, String),
}

fn peer(p: Peer<'_>) -> String {
    match p {
        Peer::Id(s) => s.to_string(),
        Peer::Alias(n) => format!("#{n}"),
    }
}

fn events(dev: &mut Dev) -> Vec<Ev> {
    let mut v = Vec::new();
    while let Some(e) = dev.poll_event() {
        v.push(match e {
            Event::LoggedIn {
                handle,
                user_id,
                device_id,
            } => Ev::LoggedIn(handle, user_id.into(), device_id.into()),
            Event::Joined {
                handle,
                alias,
                room_id,
            } => Ev::Joined(handle, alias, room_id.into()),
            Event::Delivered { handle } => Ev::Delivered(handle),
            Event::Subscribed { handle } => Ev::Subscribed(handle),
            Event::Failed { handle, reason } => Ev::Failed(handle, reason.to_string()),
            Event::Message {
                room, sender, body, ..
            } => Ev::Message(peer(room), peer(sender), body.into()),
            _ => panic!("unknown event"),
        });
    }
    v
}

fn drain(dev: &mut Dev, now: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; MAX_FRAME_LEN];
    while let Some(n) = dev.poll_transmit(Instant(now), &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// The gateway: the real pipe responder plus a hand-written application part.
struct Gw {
    pipe: Responder<RamStorage<16>, 4>,
    rng: ChaCha20Rng,
    cid: Option<u8>,
    /// Cached reply frame per Message ID of a device CON (re-sent on `Duplicate`).
    replies: HashMap<u16, Vec<u8>>,
    /// Every fresh `*` request: (device counter, CBOR payload).
    sends: Vec<(u64, Vec<u8>)>,
    /// Requests seen (Uri-Path code, plaintext message).
    requests: Vec<(u8, Vec<u8>)>,
    /// The join answer body (split in 128-byte Block2 blocks when larger).
    join_body: Vec<u8>,
    /// Block1 reassembly.
    block1: Vec<u8>,
    /// Notification payloads still to send, one in flight at a time.
    notify: VecDeque<Vec<u8>>,
    inflight: Option<(u16, Vec<u8>, u64, u32)>,
    seq: u32,
    acked: usize,
    out: Vec<Vec<u8>>,
}

impl Gw {
    fn new() -> Gw {
        Gw::with_seed(200)
    }

    /// A gateway whose static key comes from `seed` (200 is the usual one).
    fn with_seed(seed: u8) -> Gw {
        let mut rng = rng(seed);
        let pipe = Responder::new(RamStorage::new(), Config::GATEWAY, &mut rng).unwrap();
        Gw {
            pipe,
            rng,
            cid: None,
            replies: HashMap::new(),
            sends: Vec::new(),
            requests: Vec::new(),
            join_body: b"\x82\x01\x68!r:local".to_vec(),
            block1: Vec::new(),
            notify: VecDeque::new(),
            inflight: None,
            seq: 0,
            acked: 0,
            out: Vec::new(),
        }
    }

    fn handle(&mut self, frame: &[u8], now: u64) {
        let mut buf = [0u8; 512];
        match self.pipe.open(&mut self.rng, frame, &mut buf) {
            Ok(Received::Handshake { len, .. }) => self.out.push(buf[..len].to_vec()),
            Ok(Received::Message {
                cid,
                len,
                ticket: Some(t),
            }) => {
                self.cid = Some(cid);
                let msg = buf[..len].to_vec();
                let answer = self.app(&msg, t.counter());
                let mut f = [0u8; 512];
                let s = self
                    .pipe
                    .seal_reply(&mut self.rng, t, &answer, &mut f)
                    .unwrap();
                self.replies.insert(s.mid, f[..s.len].to_vec());
                self.out.push(f[..s.len].to_vec());
            }
            Ok(Received::Message {
                len, ticket: None, ..
            }) => {
                let r = Repr::parse_bytes(&buf[..len]).unwrap();
                if r.kind == Kind::Acknowledgement
                    && self.inflight.as_ref().is_some_and(|i| i.0 == r.message_id)
                {
                    self.inflight = None;
                    self.acked += 1;
                    self.pump_notify(now);
                }
            }
            Ok(Received::Duplicate { mid, .. }) => {
                if let Some(f) = self.replies.get(&mid) {
                    self.out.push(f.clone());
                }
            }
            Ok(Received::NeedRequest) => unreachable!(),
            Err(_) => {}
        }
    }

    /// The application: answers one request (plaintext) with a piggybacked ACK.
    fn app(&mut self, msg: &[u8], counter: u64) -> Vec<u8> {
        let r = Repr::parse_bytes(msg).unwrap();
        let code = r
            .option(OptionNumber::URI_PATH)
            .map(|o| o.value()[0])
            .unwrap();
        self.requests.push((code, msg.to_vec()));
        let mut payload = Vec::new();
        let mut a = Repr::new(Kind::Acknowledgement, Code::CHANGED, 0, r.token);
        let mut opts: Vec<CoapOption<'static>> = Vec::new();
        match code {
            b'1' | b'=' => payload = b"\xa2\x18\x69\x68@a:local\x18\x6a\x63DEV".to_vec(),
            b'L' => {
                let num = r
                    .option(OptionNumber::BLOCK2)
                    .map(|o| Block::decode(o.value()).unwrap().num)
                    .unwrap_or(0) as usize;
                if self.join_body.len() > 128 {
                    let start = num * 128;
                    let end = (start + 128).min(self.join_body.len());
                    payload = self.join_body[start..end].to_vec();
                    let b = Block {
                        num: num as u32,
                        more: end < self.join_body.len(),
                        szx: 3,
                    };
                    opts.push(b.option(OptionNumber::BLOCK2).unwrap());
                } else {
                    payload = self.join_body.clone();
                }
            }
            b'*' => {
                if let Some(o) = r.option(OptionNumber::BLOCK1) {
                    let b = Block::decode(o.value()).unwrap();
                    assert_eq!(b.offset(), self.block1.len());
                    self.block1.extend_from_slice(r.payload);
                    opts.push(b.option(OptionNumber::BLOCK1).unwrap());
                    if b.more {
                        a.code = Code::CONTINUE;
                    } else {
                        let body = std::mem::take(&mut self.block1);
                        self.sends.push((counter, body));
                    }
                } else {
                    self.sends.push((counter, r.payload.to_vec()));
                }
            }
            b'+' => a.code = Code::CONTENT,
            _ => a.code = Code::NOT_FOUND,
        }
        for o in opts {
            a.push_option(o).unwrap();
        }
        a.payload = &payload;
        let mut out = vec![0u8; a.buffer_len()];
        a.emit(&mut out).unwrap();
        out
    }

    /// Sends the next notification when none is in flight.
    fn pump_notify(&mut self, now: u64) {
        if self.inflight.is_some() {
            return;
        }
        let (Some(cid), Some(p)) = (self.cid, self.notify.pop_front()) else {
            return;
        };
        self.seq += 1;
        let f = self.notification(cid, self.seq, &p);
        self.inflight = Some((f.1, f.0.clone(), now + T, 0));
        self.out.push(f.0);
    }

    /// Seals a CON 2.05 notification with Observe `seq`; returns (frame, mid).
    fn notification(&mut self, cid: u8, seq: u32, payload: &[u8]) -> (Vec<u8>, u16) {
        let mut n = Repr::new(Kind::Confirmable, Code::CONTENT, 0, &[]);
        n.push_option(observe::option(seq).unwrap()).unwrap();
        n.payload = payload;
        let mut m = vec![0u8; n.buffer_len()];
        n.emit(&mut m).unwrap();
        let mut f = [0u8; 512];
        let s = self.pipe.seal(cid, &m, &mut f).unwrap();
        (f[..s.len].to_vec(), s.mid)
    }

    /// Retransmits the notification in flight when its timer expired (byte for byte).
    fn tick(&mut self, now: u64) {
        if let Some((_, f, at, tries)) = self.inflight.as_mut() {
            if *at <= now && *tries < 8 {
                *tries += 1;
                *at = now + T;
                let f = f.clone();
                self.out.push(f);
            }
        }
    }

    fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }
}

/// Runs both ends over a perfect link until neither has anything to send.
fn settle(dev: &mut Dev, gw: &mut Gw, now: u64) {
    for _ in 0..100 {
        let up = drain(dev, now);
        for f in &up {
            gw.handle(f, now);
        }
        let down = gw.take();
        for f in &down {
            dev.handle_rx(Instant(now), f);
        }
        if up.is_empty() && down.is_empty() {
            return;
        }
    }
    panic!("no quiescence");
}

/// First contact (XX) carrying the password login; returns the logged-in pair.
fn logged_in(seed: u8) -> (Dev, Gw) {
    let mut dev = device(seed);
    let mut gw = Gw::new();
    let h = dev.login_password("alice", "secret").unwrap();
    settle(&mut dev, &mut gw, 0);
    assert_eq!(
        events(&mut dev),
        vec![Ev::LoggedIn(h, "@a:local".into(), "DEV".into())]
    );
    (dev, gw)
}

#[test]
fn first_contact_login_then_hello_and_hi_with_exact_sizes() {
    let mut dev = device(1);
    let mut gw = Gw::new();
    let login = dev.login_password("alice", "secret").unwrap();

    // XX message 1: CID + header + e = 37 bytes; it carries nothing.
    let up = drain(&mut dev, 0);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].len(), 37);
    gw.handle(&up[0], 0);
    let down = gw.take();
    assert_eq!(down.len(), 1);
    dev.handle_rx(Instant(0), &down[0]);
    // XX message 3 carries the login request.
    let up = drain(&mut dev, 0);
    assert_eq!(up.len(), 1);
    gw.handle(&up[0], 0);
    let (code, req) = &gw.requests[0];
    assert_eq!(*code, b'1');
    // CON POST, TKL 0, Uri-Path "1", then the trickle-v1 login body: {type: ref 44,
    // identifier: {type: ref 46, user: "alice"}, password: "secret"} (references 44 and 46 are
    // tag 6 with 14 and 15).
    let mut body = vec![
        0xa3, 0x00, 0xc6, 0x0e, 0x18, 0x6e, 0xa2, 0x00, 0xc6, 0x0f, 0x18, 0x6f,
    ];
    body.extend_from_slice(b"\x65alice\x18\x70\x66secret");
    assert_eq!(req[..2], [0x40, 0x02]);
    assert_eq!(req[4..7], [0xb1, b'1', 0xff]);
    assert_eq!(req[7..], body[..]);
    // The body is what the JSON → CBOR transcoder makes of the Matrix login JSON.
    let mut cbor = [0u8; 64];
    let n = trickle_core::cbor::json_to_cbor(
        br#"{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"secret"}"#,
        &trickle_core::cbor::Table::TRICKLE_V1,
        &trickle_core::cbor::Limits::DEFAULT,
        &mut cbor,
    )
    .unwrap();
    assert_eq!(cbor[..n], body[..]);
    let down = gw.take();
    dev.handle_rx(Instant(0), &down[0]);
    assert_eq!(
        events(&mut dev),
        vec![Ev::LoggedIn(login, "@a:local".into(), "DEV".into())]
    );
    assert!(drain(&mut dev, 0).is_empty());

    // "Hello" to room alias 1: 32 bytes on air, its 2.04 ACK 21 bytes.
    let h = dev.send_text(Peer::Alias(1), "Hello").unwrap();
    let up = drain(&mut dev, 1);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].len(), 32);
    gw.handle(&up[0], 1);
    let (_, req) = gw.requests.last().unwrap();
    assert_eq!(
        req[4..],
        [
            0xb1, 0x2a, 0xff, 0x82, 0x01, 0x65, b'H', b'e', b'l', b'l', b'o'
        ]
    );
    assert_eq!(gw.sends.len(), 1);
    let down = gw.take();
    assert_eq!(down[0].len(), 21);
    dev.handle_rx(Instant(1), &down[0]);
    assert_eq!(events(&mut dev), vec![Ev::Delivered(h)]);

    // Notification [1, 2, "Hi"], Observe 1: 30 bytes; the device's empty ACK: 21 bytes.
    gw.notify.push_back(b"\x83\x01\x02\x62Hi".to_vec());
    gw.pump_notify(2);
    let down = gw.take();
    assert_eq!(down[0].len(), 30);
    dev.handle_rx(Instant(2), &down[0]);
    // The ACK waits until the message is read.
    assert!(drain(&mut dev, 2).is_empty());
    assert_eq!(
        events(&mut dev),
        vec![Ev::Message("#1".into(), "#2".into(), "Hi".into())]
    );
    let up = drain(&mut dev, 2);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].len(), 21);
    gw.handle(&up[0], 2);
    assert_eq!(gw.acked, 1);
}

#[test]
fn join_introduces_the_room_and_later_messages_use_full_ids() {
    let (mut dev, mut gw) = logged_in(2);
    let h = dev.join("#room:local").unwrap();
    settle(&mut dev, &mut gw, 0);
    let (code, req) = gw.requests.last().unwrap();
    assert_eq!(*code, b'L');
    // Uri-Path "L", Uri-Path "#room:local", no payload.
    assert_eq!(req[4..7], [0xb1, b'L', 0x0b]);
    assert_eq!(&req[7..], b"#room:local");
    assert_eq!(events(&mut dev), vec![Ev::Joined(h, 1, "!r:local".into())]);
    assert_eq!(dev.room_id(1), Some("!r:local"));
    assert_eq!(dev.room_alias("!r:local"), Some(1));

    // A send to the full room ID goes out as alias 1.
    let h = dev.send_text(Peer::Id("!r:local"), "x").unwrap();
    settle(&mut dev, &mut gw, 0);
    assert_eq!(gw.sends.last().unwrap().1, b"\x82\x01\x61x");
    assert_eq!(events(&mut dev), vec![Ev::Delivered(h)]);

    // A sender introduction, then its bare alias: both arrive as full IDs.
    gw.notify
        .push_back(b"\x83\x01\x82\x02\x68@b:local\x62Hi".to_vec());
    gw.notify.push_back(b"\x83\x01\x02\x63Yo!".to_vec());
    gw.pump_notify(0);
    settle(&mut dev, &mut gw, 0);
    let mut got = events(&mut dev);
    settle(&mut dev, &mut gw, 0);
    got.extend(events(&mut dev));
    assert_eq!(
        got,
        vec![
            Ev::Message("!r:local".into(), "@b:local".into(), "Hi".into()),
            Ev::Message("!r:local".into(), "@b:local".into(), "Yo!".into()),
        ]
    );
    assert_eq!(dev.user_id(2), Some("@b:local"));
    settle(&mut dev, &mut gw, 0);
    assert_eq!(gw.acked, 2);
}

#[test]
fn error_responses_carry_code_errcode_and_max_age() {
    let (mut dev, mut gw) = logged_in(3);
    // 4.03 {"errcode": "M_FORBIDDEN"} (trickle-v1 key 18, text value), then 4.29 with
    // Max-Age 2 and {"errcode": "M_LIMIT_EXCEEDED"}.
    let answers: [(Code, Option<u32>, &[u8]); 2] = [
        (Code::FORBIDDEN, None, b"\xa1\x12\x6bM_FORBIDDEN"),
        (
            Code::TOO_MANY_REQUESTS,
            Some(2),
            b"\xa1\x12\x70M_LIMIT_EXCEEDED",
        ),
    ];
    let mut got = Vec::new();
    let mut handles = Vec::new();
    for (code, max_age, payload) in answers {
        handles.push(dev.send_text(Peer::Alias(9), "no").unwrap());
        let up = drain(&mut dev, 0);
        let mut buf = [0u8; 512];
        let Ok(Received::Message {
            ticket: Some(t), ..
        }) = gw.pipe.open(&mut gw.rng, &up[0], &mut buf)
        else {
            panic!()
        };
        let mut a = Repr::new(Kind::Acknowledgement, code, 0, &[]);
        if let Some(s) = max_age {
            a.push_option(CoapOption::uint(OptionNumber::MAX_AGE, s))
                .unwrap();
        }
        a.payload = payload;
        let mut m = vec![0u8; a.buffer_len()];
        a.emit(&mut m).unwrap();
        let mut f = [0u8; 128];
        let s = gw.pipe.seal_reply(&mut gw.rng, t, &m, &mut f).unwrap();
        dev.handle_rx(Instant(0), &f[..s.len]);
        while let Some(e) = dev.poll_event() {
            match e {
                Event::Failed {
                    handle,
                    reason:
                        Failure::Status {
                            code,
                            errcode,
                            retry_after_s,
                        },
                } => got.push((handle, code, errcode.map(String::from), retry_after_s)),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(
        got,
        vec![
            (
                handles[0],
                Code::FORBIDDEN,
                Some("M_FORBIDDEN".into()),
                None
            ),
            (
                handles[1],
                Code::TOO_MANY_REQUESTS,
                Some("M_LIMIT_EXCEEDED".into()),
                Some(2)
            ),
        ]
    );
}

#[test]
fn lost_request_is_retransmitted_byte_for_byte_then_fails() {
    let (mut dev, _gw) = logged_in(4);
    let h = dev.send_text(Peer::Alias(1), "Hello").unwrap();
    let first = drain(&mut dev, 1_000);
    assert_eq!(first.len(), 1);
    let d1 = dev.poll_timeout().unwrap().0;
    let initial = d1 - 1_000;
    assert!((T..=T + T / 2).contains(&initial), "{initial}");
    let mut at = d1;
    let mut interval = initial;
    for n in 1..=4 {
        // Nothing happens before the deadline.
        dev.handle_timeout(Instant(at - 1));
        assert!(drain(&mut dev, at - 1).is_empty());
        dev.handle_timeout(Instant(at));
        let again = drain(&mut dev, at);
        assert_eq!(again, first, "retransmission {n}");
        interval *= 2;
        assert_eq!(dev.poll_timeout(), Some(Instant(at + interval)));
        at += interval;
    }
    assert!(events(&mut dev).is_empty());
    dev.handle_timeout(Instant(at));
    assert_eq!(
        events(&mut dev),
        vec![Ev::Failed(h, Failure::Timeout.to_string())]
    );
    assert!(drain(&mut dev, at).is_empty());
    assert_eq!(dev.poll_timeout(), None);
}

#[test]
fn lost_handshake_frames_are_retransmitted_byte_for_byte() {
    let mut dev = device(5);
    let mut gw = Gw::new();
    let h = dev.login_token("syt_token").unwrap();
    let xx1 = drain(&mut dev, 0);
    // XX message 1 lost: resent identically.
    let t1 = dev.poll_timeout().unwrap();
    dev.handle_timeout(t1);
    assert_eq!(drain(&mut dev, t1.0), xx1);
    gw.handle(&xx1[0], t1.0);
    let xx2 = gw.take();
    dev.handle_rx(t1, &xx2[0]);
    let xx3 = drain(&mut dev, t1.0);
    // XX message 3 lost: resent identically.
    let t2 = dev.poll_timeout().unwrap();
    dev.handle_timeout(t2);
    assert_eq!(drain(&mut dev, t2.0), xx3);
    gw.handle(&xx3[0], t2.0);
    // The gateway's answer is lost; the device retransmits; the gateway sees a duplicate and
    // re-sends its cached answer.
    let lost = gw.take();
    assert_eq!(lost.len(), 1);
    let t3 = dev.poll_timeout().unwrap();
    dev.handle_timeout(t3);
    let again = drain(&mut dev, t3.0);
    assert_eq!(again, xx3);
    gw.handle(&again[0], t3.0);
    let down = gw.take();
    assert_eq!(down, lost);
    dev.handle_rx(t3, &down[0]);
    assert_eq!(gw.requests.len(), 1);
    assert_eq!(gw.requests[0].0, b'=');
    assert_eq!(gw.requests[0].1[7..], *b"\x69syt_token");
    assert_eq!(
        events(&mut dev),
        vec![Ev::LoggedIn(h, "@a:local".into(), "DEV".into())]
    );
}

#[test]
fn lost_ack_is_answered_from_the_gateway_cache_and_delivered_once() {
    let (mut dev, mut gw) = logged_in(6);
    let h = dev.send_text(Peer::Alias(1), "once").unwrap();
    let up = drain(&mut dev, 0);
    gw.handle(&up[0], 0);
    let ack = gw.take(); // lost
    let t = dev.poll_timeout().unwrap();
    dev.handle_timeout(t);
    let again = drain(&mut dev, t.0);
    assert_eq!(again, up);
    gw.handle(&again[0], t.0);
    assert_eq!(gw.take(), ack);
    dev.handle_rx(t, &ack[0]);
    // The duplicated ACK changes nothing.
    dev.handle_rx(t, &ack[0]);
    assert_eq!(events(&mut dev), vec![Ev::Delivered(h)]);
    assert_eq!(gw.sends.len(), 1);
    assert_eq!(dev.poll_timeout(), None);
}

#[test]
fn separate_response_is_acknowledged() {
    let (mut dev, mut gw) = logged_in(7);
    let h = dev.send_text(Peer::Alias(1), "slow").unwrap();
    let up = drain(&mut dev, 0);
    let mut buf = [0u8; 512];
    let Ok(Received::Message {
        ticket: Some(t), ..
    }) = gw.pipe.open(&mut gw.rng, &up[0], &mut buf)
    else {
        panic!()
    };
    // Empty ACK first.
    let mut f = [0u8; 128];
    let s = gw
        .pipe
        .seal_reply(&mut gw.rng, t, &[0x60, 0, 0, 0], &mut f)
        .unwrap();
    assert_eq!(s.len, 21);
    dev.handle_rx(Instant(10), &f[..s.len]);
    // No retransmission now; the device waits MAX_TRANSMIT_WAIT for the response.
    assert_eq!(
        dev.poll_timeout(),
        Some(Instant(10 + LinkConfig::LORA_100.max_transmit_wait_ms()))
    );
    // The response as a CON 2.04 of the gateway.
    let s = gw
        .pipe
        .seal(gw.cid.unwrap(), &[0x40, 0x44, 0, 0], &mut f)
        .unwrap();
    let con = f[..s.len].to_vec();
    dev.handle_rx(Instant(20), &con);
    assert_eq!(events(&mut dev), vec![Ev::Delivered(h)]);
    let up = drain(&mut dev, 20);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].len(), 21);
    let mut buf = [0u8; 64];
    let Ok(Received::Message {
        len, ticket: None, ..
    }) = gw.pipe.open(&mut gw.rng, &up[0], &mut buf)
    else {
        panic!()
    };
    assert_eq!(buf[..len], [0x60, 0x00, (s.mid >> 8) as u8, s.mid as u8]);
    // The response retransmitted (its ACK lost): the cached ACK goes again, no new event.
    dev.handle_rx(Instant(30), &con);
    assert_eq!(drain(&mut dev, 30), up);
    assert!(events(&mut dev).is_empty());
}

#[test]
fn duplicated_and_replayed_notifications_are_delivered_once() {
    let (mut dev, mut gw) = logged_in(8);
    let h = dev.subscribe().unwrap();
    settle(&mut dev, &mut gw, 0);
    assert_eq!(events(&mut dev), vec![Ev::Subscribed(h)]);
    let cid = gw.cid.unwrap();
    let (n1, _) = gw.notification(cid, 1, b"\x83\x01\x02\x62Hi");
    // Duplicated before the message was read: no ACK yet, one event.
    dev.handle_rx(Instant(0), &n1);
    dev.handle_rx(Instant(0), &n1);
    assert!(drain(&mut dev, 0).is_empty());
    assert_eq!(events(&mut dev).len(), 1);
    let ack = drain(&mut dev, 0);
    assert_eq!(ack.len(), 1);
    // Duplicated after the ACK: the cached ACK is re-sent byte for byte.
    dev.handle_rx(Instant(1), &n1);
    assert_eq!(drain(&mut dev, 1), ack);
    assert!(events(&mut dev).is_empty());
    // The same event again under a new counter (a gateway restart that lost its send state):
    // Observe 1 is not fresher than 1, so it is acknowledged and not delivered.
    let (again, _) = gw.notification(cid, 1, b"\x83\x01\x02\x62Hi");
    assert_ne!(again, n1);
    dev.handle_rx(Instant(2), &again);
    assert_eq!(drain(&mut dev, 2).len(), 1);
    assert!(events(&mut dev).is_empty());
    // Reordered: Observe 3 arrives before Observe 2; 2 is then stale (RFC 7641 §3.4).
    let (n2, _) = gw.notification(cid, 2, b"\x83\x01\x02\x61b");
    let (n3, _) = gw.notification(cid, 3, b"\x83\x01\x02\x61c");
    dev.handle_rx(Instant(3), &n3);
    assert_eq!(
        events(&mut dev),
        vec![Ev::Message("#1".into(), "#2".into(), "c".into())]
    );
    dev.handle_rx(Instant(3), &n2);
    assert!(events(&mut dev).is_empty());
    assert_eq!(drain(&mut dev, 3).len(), 2);
}

#[test]
fn response_and_notification_reordered() {
    let (mut dev, mut gw) = logged_in(9);
    let h = dev.send_text(Peer::Alias(1), "ping").unwrap();
    let up = drain(&mut dev, 0);
    gw.handle(&up[0], 0);
    let ack = gw.take();
    gw.notify.push_back(b"\x83\x01\x02\x64pong".to_vec());
    gw.pump_notify(0);
    let note = gw.take();
    // The notification overtakes the ACK.
    dev.handle_rx(Instant(0), &note[0]);
    dev.handle_rx(Instant(0), &ack[0]);
    assert_eq!(
        events(&mut dev),
        vec![
            Ev::Message("#1".into(), "#2".into(), "pong".into()),
            Ev::Delivered(h)
        ]
    );
    settle(&mut dev, &mut gw, 0);
    assert_eq!(gw.acked, 1);
}

#[test]
fn block2_response_is_reassembled() {
    let (mut dev, mut gw) = logged_in(10);
    // A 600-byte join answer: [1, "!" + 594 × "x"] = 1 + 1 + 3 + 595 bytes.
    let id = format!("!{}", "x".repeat(594));
    let mut body = vec![0x82, 0x01, 0x79, 0x02, 0x53];
    body.extend_from_slice(id.as_bytes());
    assert_eq!(body.len(), 600);
    gw.join_body = body;
    let h = dev.join("#big:local").unwrap();
    settle(&mut dev, &mut gw, 0);
    let joins: Vec<_> = gw.requests.iter().filter(|r| r.0 == b'L').collect();
    assert_eq!(joins.len(), 5);
    // Follow-ups carry Block2 NUM 1..4 with SZX 3 (128 bytes) and no payload.
    for (i, (_, m)) in joins.iter().enumerate().skip(1) {
        let r = Repr::parse_bytes(m).unwrap();
        let b = Block::decode(r.option(OptionNumber::BLOCK2).unwrap().value()).unwrap();
        assert_eq!((b.num, b.szx, b.more), (i as u32, 3, false));
        assert!(r.payload.is_empty());
    }
    assert_eq!(events(&mut dev), vec![Ev::Joined(h, 1, id)]);
}

#[test]
fn block2_response_larger_than_the_buffer_fails_cleanly() {
    let mut dev: Client<RamStorage, ChaCha20Rng, 256> = Client::new(
        RamStorage::new(),
        rng(11),
        ClientConfig::new(LinkConfig::LORA_100),
    )
    .unwrap();
    let mut gw = Gw::new();
    let id = format!("!{}", "x".repeat(594));
    let mut body = vec![0x82, 0x01, 0x79, 0x02, 0x53];
    body.extend_from_slice(id.as_bytes());
    gw.join_body = body;
    let h = dev.join("#big:local").unwrap();
    let mut buf = [0u8; MAX_FRAME_LEN];
    for _ in 0..20 {
        let mut up = Vec::new();
        while let Some(n) = dev.poll_transmit(Instant(0), &mut buf) {
            up.push(buf[..n].to_vec());
        }
        for f in &up {
            gw.handle(f, 0);
        }
        for f in gw.take() {
            dev.handle_rx(Instant(0), &f);
        }
    }
    let mut failed = Vec::new();
    while let Some(e) = dev.poll_event() {
        if let Event::Failed { handle, reason } = e {
            failed.push((handle, reason == Failure::ResponseTooLarge));
        }
    }
    assert_eq!(failed, vec![(h, true)]);
}

#[test]
fn block1_request_is_sent_in_blocks() {
    let (mut dev, mut gw) = logged_in(12);
    let text = "y".repeat(240);
    let h = dev.send_text(Peer::Alias(1), &text).unwrap();
    settle(&mut dev, &mut gw, 0);
    let sends: Vec<_> = gw.requests.iter().filter(|r| r.0 == b'*').collect();
    assert_eq!(sends.len(), 2);
    let mut sizes = Vec::new();
    for (_, m) in &sends {
        let r = Repr::parse_bytes(m).unwrap();
        let b = Block::decode(r.option(OptionNumber::BLOCK1).unwrap().value()).unwrap();
        sizes.push((b.num, b.more, r.payload.len()));
    }
    // Payload [1, 240-byte text] = 1 + 1 + 2 + 240 = 244 bytes: 128 + 116.
    assert_eq!(sizes, vec![(0, true, 128), (1, false, 116)]);
    let mut expected = vec![0x82, 0x01, 0x78, 240];
    expected.extend_from_slice(text.as_bytes());
    assert_eq!(gw.sends.last().unwrap().1, expected);
    assert_eq!(events(&mut dev), vec![Ev::Delivered(h)]);
}

#[test]
fn reboot_resumes_without_handshake_and_resubscribes() {
    let (mut dev, mut gw) = logged_in(13);
    let h = dev.subscribe().unwrap();
    settle(&mut dev, &mut gw, 0);
    assert_eq!(events(&mut dev), vec![Ev::Subscribed(h)]);
    let hs = dev.pipe().handshake_bytes();
    assert!(hs > 0);
    // Power cut: only the storage survives.
    let storage = dev.into_storage();
    let mut dev: Dev =
        Client::new(storage, rng(14), ClientConfig::new(LinkConfig::LORA_100)).unwrap();
    let h = dev.subscribe().unwrap();
    let up = drain(&mut dev, 0);
    assert_eq!(up.len(), 1);
    // A transport frame (CID of the session, not a handshake): GET, Observe 0, Uri-Path "+".
    assert_eq!(up[0].len(), 1 + 4 + 1 + 2 + 16);
    assert_eq!(up[0][0], gw.cid.unwrap());
    gw.handle(&up[0], 0);
    let (code, m) = gw.requests.last().unwrap();
    assert_eq!(*code, b'+');
    assert_eq!(m[4..], [0x60, 0x51, b'+']);
    for f in gw.take() {
        dev.handle_rx(Instant(0), &f);
    }
    assert_eq!(events(&mut dev), vec![Ev::Subscribed(h)]);
    assert_eq!(dev.pipe().handshake_bytes(), 0);
    // Messages keep flowing.
    gw.notify.push_back(b"\x83\x01\x02\x62Hi".to_vec());
    gw.pump_notify(0);
    settle(&mut dev, &mut gw, 0);
    assert_eq!(events(&mut dev).len(), 1);
}

#[test]
fn failed_registration_is_retried_and_silence_triggers_reregistration() {
    let (mut dev, mut gw) = logged_in(15);
    let h = dev.subscribe().unwrap();
    // Every registration attempt is lost.
    let mut now = 0;
    drain(&mut dev, now);
    for _ in 0..5 {
        now = dev.poll_timeout().unwrap().0;
        dev.handle_timeout(Instant(now));
        drain(&mut dev, now);
    }
    assert_eq!(
        events(&mut dev),
        vec![Ev::Failed(h, Failure::Timeout.to_string())]
    );
    // The timeout reset the session; the retry comes after ACK_TIMEOUT with a new handshake (IK,
    // the gateway key is pinned), and this time the gateway answers.
    let at = dev.poll_timeout().unwrap().0;
    assert_eq!(at, now + T);
    dev.handle_timeout(Instant(at));
    settle(&mut dev, &mut gw, at);
    let ev = events(&mut dev);
    assert!(matches!(ev[..], [Ev::Subscribed(_)]), "{ev:?}");
    // One hour of silence: the client registers again.
    let refresh = dev.poll_timeout().unwrap().0;
    assert_eq!(refresh, at + 3_600_000);
    let before = gw.requests.len();
    dev.handle_timeout(Instant(refresh));
    settle(&mut dev, &mut gw, refresh);
    assert_eq!(gw.requests.len(), before + 1);
    assert_eq!(gw.requests.last().unwrap().0, b'+');
}

#[test]
fn requests_wait_in_a_queue_one_at_a_time() {
    let (mut dev, mut gw) = logged_in(16);
    let hs: Vec<_> = (0..4)
        .map(|i| dev.send_text(Peer::Alias(1), &format!("m{i}")).unwrap())
        .collect();
    assert!(dev.send_text(Peer::Alias(1), "overflow").is_err());
    // NSTART 1: one frame at a time.
    assert_eq!(drain(&mut dev, 0).len(), 1);
    let mut dev2 = dev;
    settle(&mut dev2, &mut gw, 0);
    // The first frame above was dropped; its retransmission comes on the timer.
    let t = dev2.poll_timeout().unwrap();
    dev2.handle_timeout(t);
    settle(&mut dev2, &mut gw, t.0);
    let ev = events(&mut dev2);
    assert_eq!(ev, hs.into_iter().map(Ev::Delivered).collect::<Vec<_>>());
    assert_eq!(gw.sends.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Lossy link property test
// ---------------------------------------------------------------------------------------------

/// What the link does with the n-th frame.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver(u64),
    Drop,
    Duplicate(u64, u64),
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => (0u64..5_000).prop_map(Fate::Deliver),
        1 => Just(Fate::Drop),
        1 => (0u64..5_000, 0u64..60_000).prop_map(|(a, b)| Fate::Duplicate(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn lossy_link_delivers_everything_exactly_once(
        seed in 20u8..250,
        fates in proptest::collection::vec(fate(), 64),
        sends in 1usize..6,
        notes in 0usize..4,
    ) {
        let mut dev = device(seed);
        let mut gw = Gw::new();
        let mut handles = Vec::new();
        handles.push(dev.login_password("alice", "pw").unwrap());
        handles.push(dev.subscribe().unwrap());
        let mut queued = 0;
        for i in 0..notes {
            let mut p = vec![0x83, 0x01, 0x02, 0x62, b'n'];
            p.push(b'0' + i as u8);
            gw.notify.push_back(p);
        }
        // At most 4 drops in total, so no exchange can exhaust MAX_RETRANSMIT.
        let mut drops = 0;
        let mut next = 0usize;
        let mut flight: Vec<(u64, bool, Vec<u8>)> = Vec::new(); // (at, to_gateway, frame)
        let mut now = 0u64;
        let mut got = Vec::new();
        let mut send = |now: u64, up: bool, f: Vec<u8>, flight: &mut Vec<(u64, bool, Vec<u8>)>| {
            let fate = fates.get(next).copied().unwrap_or(Fate::Deliver(100));
            next += 1;
            match fate {
                Fate::Drop if drops < 4 => drops += 1,
                Fate::Drop => flight.push((now + 100, up, f)),
                Fate::Deliver(d) => flight.push((now + d, up, f)),
                Fate::Duplicate(a, b) => {
                    flight.push((now + a, up, f.clone()));
                    flight.push((now + a + b, up, f));
                }
            }
        };
        for _ in 0..2_000 {
            // Sends are queued while others are in flight (the queue holds 4).
            while queued < sends && dev.pending() < 3 {
                handles.push(dev.send_text(Peer::Alias(1), &format!("s{queued}")).unwrap());
                queued += 1;
            }
            for f in drain(&mut dev, now) {
                send(now, true, f, &mut flight);
            }
            // Notifications follow the registration (the real gateway's order).
            if gw.requests.iter().any(|r| r.0 == b'+') {
                gw.pump_notify(now);
            }
            gw.tick(now);
            for f in gw.take() {
                send(now, false, f, &mut flight);
            }
            got.extend(events(&mut dev));
            let idle = queued == sends
                && dev.pending() == 0
                && gw.notify.is_empty()
                && gw.inflight.is_none()
                && flight.is_empty();
            if idle {
                // Done (only the hourly re-registration timer is left).
                break;
            }
            // Next instant: the earliest arrival or timer.
            let mut t = flight.iter().map(|f| f.0).min();
            for c in [dev.poll_timeout().map(|i| i.0), gw.inflight.as_ref().map(|i| i.2)]
                .into_iter()
                .flatten()
            {
                t = Some(t.map_or(c, |t: u64| t.min(c)));
            }
            let Some(t) = t else { break };
            now = now.max(t);
            let (due, rest): (Vec<_>, Vec<_>) = flight.drain(..).partition(|f| f.0 <= now);
            flight = rest;
            for (_, up, f) in due {
                if up { gw.handle(&f, now) } else { dev.handle_rx(Instant(now), &f) }
            }
            dev.handle_timeout(Instant(now));
        }
        got.extend(events(&mut dev));
        // Every operation has exactly one outcome, and it is success.
        let mut outcomes = HashSet::new();
        let mut messages = Vec::new();
        for e in &got {
            match e {
                Ev::LoggedIn(h, ..) | Ev::Delivered(h) | Ev::Subscribed(h) => {
                    prop_assert!(outcomes.insert(*h))
                }
                Ev::Message(_, _, b) => messages.push(b.clone()),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(outcomes, handles.iter().copied().collect::<HashSet<_>>());
        // The gateway saw each send once (unique counters), in order.
        let bodies: Vec<Vec<u8>> = gw.sends.iter().map(|s| s.1.clone()).collect();
        let want: Vec<Vec<u8>> = (0..sends)
            .map(|i| {
                let mut b = vec![0x82, 0x01, 0x62, b's'];
                b.push(b'0' + i as u8);
                b
            })
            .collect();
        prop_assert_eq!(bodies, want);
        let counters: HashSet<u64> = gw.sends.iter().map(|s| s.0).collect();
        prop_assert_eq!(counters.len(), sends);
        // Each notification delivered once, in order.
        let want: Vec<String> = (0..notes).map(|i| format!("n{i}")).collect();
        prop_assert_eq!(messages, want);
        prop_assert_eq!(gw.acked, notes);
    }
}

#[test]
fn ram_footprint_of_the_default_client() {
    let size = std::mem::size_of::<Client<RamStorage<0>, ChaCha20Rng>>();
    println!("Client<_, _, 512, 8> is {size} bytes");
    assert!(size < 6 * 1024, "{size}");
}

#[test]
fn gateway_that_lost_the_session_is_recovered_with_ik() {
    let (mut dev, _old) = logged_in(17);
    // The gateway restarts with its key but without the session.
    let mut gw = Gw::new();
    let lost = dev.send_text(Peer::Alias(1), "first").unwrap();
    let mut now = 0;
    for f in drain(&mut dev, now) {
        gw.handle(&f, now);
    }
    assert!(gw.take().is_empty());
    for _ in 0..5 {
        now = dev.poll_timeout().unwrap().0;
        dev.handle_timeout(Instant(now));
        for f in drain(&mut dev, now) {
            gw.handle(&f, now);
        }
        assert!(gw.take().is_empty());
    }
    assert_eq!(
        events(&mut dev),
        vec![Ev::Failed(lost, Failure::Timeout.to_string())]
    );
    // The next request starts IK (pinned key, 0-RTT) and gets through.
    let h = dev.send_text(Peer::Alias(1), "second").unwrap();
    let up = drain(&mut dev, now);
    // IK message 1: plaintext (4 + 2 + 1 + 9 = 16 bytes) + 99.
    assert_eq!(up[0].len(), 16 + 99);
    gw.handle(&up[0], now);
    for f in gw.take() {
        dev.handle_rx(Instant(now), &f);
    }
    assert_eq!(events(&mut dev), vec![Ev::Delivered(h)]);
    assert_eq!(gw.sends.len(), 1);
}

#[test]
fn a_gateway_with_another_key_is_refused() {
    let (mut dev, _gw) = logged_in(18);
    dev.pipe_mut().reset_session().unwrap();
    let mut other = Gw::with_seed(201);
    let h = dev.send_text(Peer::Alias(1), "secret").unwrap();
    settle(&mut dev, &mut other, 0);
    assert_eq!(
        events(&mut dev),
        vec![Ev::Failed(
            h,
            Failure::Pipe(trickle_core::noise::pipe::PipeError::PinnedKeyMismatch).to_string()
        )]
    );
    assert!(other.sends.is_empty());
    assert!(dev.pipe().presented_key().is_some());
}

#[test]
fn reset_request_fails_and_unexpected_con_is_reset() {
    let (mut dev, mut gw) = logged_in(19);
    let h = dev.join("#gone:local").unwrap();
    let up = drain(&mut dev, 0);
    let mut buf = [0u8; 512];
    let Ok(Received::Message {
        ticket: Some(t), ..
    }) = gw.pipe.open(&mut gw.rng, &up[0], &mut buf)
    else {
        panic!()
    };
    let mut f = [0u8; 64];
    let s = gw
        .pipe
        .seal_reply(&mut gw.rng, t, &[0x70, 0, 0, 0], &mut f)
        .unwrap();
    dev.handle_rx(Instant(0), &f[..s.len]);
    assert_eq!(
        events(&mut dev),
        vec![Ev::Failed(h, Failure::Reset.to_string())]
    );
    // A CON request from the gateway means nothing to the device: RST (21 bytes).
    let s = gw
        .pipe
        .seal(gw.cid.unwrap(), &[0x40, 0x01, 0, 0, 0xb1, b'x'], &mut f)
        .unwrap();
    dev.handle_rx(Instant(0), &f[..s.len]);
    let up = drain(&mut dev, 0);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].len(), 21);
    let Ok(Received::Message {
        len, ticket: None, ..
    }) = gw.pipe.open(&mut gw.rng, &up[0], &mut buf)
    else {
        panic!()
    };
    assert_eq!(buf[..len], [0x70, 0x00, (s.mid >> 8) as u8, s.mid as u8]);
    assert!(events(&mut dev).is_empty());
}

#[test]
fn garbage_frames_change_nothing() {
    let (mut dev, mut gw) = logged_in(21);
    let h = dev.send_text(Peer::Alias(1), "x").unwrap();
    let up = drain(&mut dev, 0);
    gw.handle(&up[0], 0);
    let ack = gw.take();
    // Truncations and bit flips of the real answer, and random-looking bytes.
    for cut in 0..ack[0].len() {
        dev.handle_rx(Instant(0), &ack[0][..cut]);
    }
    for i in 0..ack[0].len() {
        let mut f = ack[0].clone();
        f[i] ^= 0x20;
        dev.handle_rx(Instant(0), &f);
    }
    assert!(events(&mut dev).is_empty());
    assert!(drain(&mut dev, 0).is_empty());
    dev.handle_rx(Instant(0), &ack[0]);
    assert_eq!(events(&mut dev), vec![Ev::Delivered(h)]);
}
