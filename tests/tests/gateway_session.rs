//! The gateway's session layer against a real Synapse: a device (the pipe's `Initiator` driven
//! by hand, requests built byte by byte per `docs/PROTOCOL.md` "Trickle operations") talks to
//! `SessionGateway` over an in-memory link. Fails (never skips) when Synapse cannot start.

use std::time::{Duration, Instant};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use serde_json::{Value, json};
use trickle_core::cbor::Table as CborTable;
use trickle_core::noise::pipe::{Config, Initiator, Received};
use trickle_core::noise::storage::RamStorage;
use trickle_core::wire::coap::{Block, CoapOption, Code, Kind, OptionNumber, Repr};
use trickle_gateway::translate::{cbor_bytes_to_json, json_bytes_to_cbor};
use trickle_gateway::{
    ClientConfig, HomeserverClient, Op, SessionConfig, SessionGateway, Transmit,
};
use trickle_tests::synapse::Synapse;
use trickle_tests::tap::ByteTap;

const ALICE_PW: &str = "alice-secret-pw";
const BOB_PW: &str = "bob-secret-pw";

type Dev = Initiator<RamStorage>;

/// A CoAP message built from parts (MID 0: the pipe sets it).
fn msg(kind: Kind, code: Code, token: &[u8], opts: &[CoapOption<'_>], payload: &[u8]) -> Vec<u8> {
    let mut repr = Repr::new(kind, code, 0, token);
    for o in opts {
        repr.push_option(*o).unwrap();
    }
    repr.payload = payload;
    let mut buf = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn path(s: &str) -> CoapOption<'_> {
    CoapOption::str(OptionNumber::URI_PATH, s)
}

fn cbor(v: &Value) -> Vec<u8> {
    json_bytes_to_cbor(v.to_string().as_bytes(), &CborTable::TRICKLE_V1).unwrap()
}

fn json_of(payload: &[u8]) -> Value {
    serde_json::from_slice(&cbor_bytes_to_json(payload, &CborTable::TRICKLE_V1).unwrap()).unwrap()
}

struct Device {
    pipe: Dev,
    rng: ChaCha20Rng,
}

/// One request/response exchange: frames on air and the decoded response message.
struct Exchange {
    request_frame: Vec<u8>,
    response_frame: Vec<u8>,
    response: Vec<u8>,
}

impl Device {
    fn only(tx: Vec<Transmit>) -> Vec<u8> {
        assert_eq!(tx.len(), 1, "expected exactly one frame from the gateway");
        tx.into_iter().next().unwrap().frame
    }

    /// Sends `m` (first contact runs XX and carries `m` in message 3).
    fn request(&mut self, gw: &mut SessionGateway, m: &[u8]) -> Exchange {
        let mut f = [0u8; 600];
        let mut p = [0u8; 600];
        let mut s = self.pipe.seal(&mut self.rng, m, &mut f).unwrap();
        if !s.carried {
            let reply = Self::only(gw.handle_frame(Instant::now(), &f[..s.len]));
            assert_eq!(
                self.pipe.open(&reply, &mut p).unwrap(),
                Received::NeedRequest
            );
            s = self.pipe.seal(&mut self.rng, m, &mut f).unwrap();
        }
        let request_frame = f[..s.len].to_vec();
        let response_frame = Self::only(gw.handle_frame(Instant::now(), &request_frame));
        let Received::Message { len, .. } = self.pipe.open(&response_frame, &mut p).unwrap() else {
            panic!("expected a response message")
        };
        Exchange {
            request_frame,
            response_frame,
            response: p[..len].to_vec(),
        }
    }

    /// Waits for the next notification frame, opens it and returns (frame, message, ticket).
    fn notification(
        &mut self,
        gw: &mut SessionGateway,
    ) -> (Vec<u8>, Vec<u8>, trickle_core::noise::pipe::ReplyTicket) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let tx = gw.poll(Instant::now());
            if let Some(t) = tx.into_iter().next() {
                let mut p = [0u8; 600];
                let Received::Message {
                    len,
                    ticket: Some(ticket),
                    ..
                } = self.pipe.open(&t.frame, &mut p).unwrap()
                else {
                    panic!("expected a CON notification")
                };
                return (t.frame, p[..len].to_vec(), ticket);
            }
            assert!(Instant::now() < end, "no notification within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// ACKs a notification; returns what the gateway sent back at once (the next queued
    /// notification, if any).
    fn ack_then(
        &mut self,
        gw: &mut SessionGateway,
        ticket: trickle_core::noise::pipe::ReplyTicket,
    ) -> Vec<Transmit> {
        let mut f = [0u8; 64];
        let s = self
            .pipe
            .seal_reply(ticket, &[0x60, 0x00, 0, 0], &mut f)
            .unwrap();
        gw.handle_frame(Instant::now(), &f[..s.len])
    }

    /// Opens a notification frame: (message, ticket).
    fn open_notification(
        &mut self,
        frame: &[u8],
    ) -> (Vec<u8>, trickle_core::noise::pipe::ReplyTicket) {
        let mut p = [0u8; 600];
        let Received::Message {
            len,
            ticket: Some(ticket),
            ..
        } = self.pipe.open(frame, &mut p).unwrap()
        else {
            panic!("expected a CON notification")
        };
        (p[..len].to_vec(), ticket)
    }

    /// ACKs a notification; returns the ACK frame (already handed to the gateway).
    fn ack(
        &mut self,
        gw: &mut SessionGateway,
        ticket: trickle_core::noise::pipe::ReplyTicket,
    ) -> Vec<u8> {
        let mut f = [0u8; 64];
        let s = self
            .pipe
            .seal_reply(ticket, &[0x60, 0x00, 0, 0], &mut f)
            .unwrap();
        let frame = f[..s.len].to_vec();
        let tx = gw.handle_frame(Instant::now(), &frame);
        assert!(tx.is_empty(), "an ACK is not answered");
        frame
    }
}

fn open_gw(dir: &std::path::Path, base_url: &str) -> SessionGateway {
    let client = HomeserverClient::new(base_url, ClientConfig::default()).unwrap();
    let config = SessionConfig {
        bitrate: 1_000_000,
        max_frame: 255,
        sync_timeout_ms: 1_000,
    };
    SessionGateway::open(dir, client, config).unwrap()
}

fn bodies(msgs: &[Value], sender: &str) -> Vec<String> {
    msgs.iter()
        .filter(|e| e["type"] == "m.room.message" && e["sender"] == sender)
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn session_layer_against_real_synapse() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let synapse = Synapse::start().expect("Synapse must start for this test");
    let bob = synapse.user("bob", BOB_PW).unwrap();
    synapse.register_user("alice", ALICE_PW).unwrap();
    let room_id = bob
        .create_room(&json!({"room_alias_name": "room", "preset": "public_chat"}))
        .unwrap();
    let upstream = format!("127.0.0.1:{}", synapse.port()).parse().unwrap();
    let tap = ByteTap::start(upstream).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut gw = open_gw(data.path(), &tap.base_url());
    let mut dev = Device {
        pipe: Initiator::new(
            RamStorage::new(),
            Config::DEVICE,
            &mut ChaCha20Rng::from_seed([7; 32]),
        )
        .unwrap(),
        rng: ChaCha20Rng::from_seed([8; 32]),
    };
    let mut rows: Vec<(&str, usize, usize, u64, u64)> = Vec::new();

    // --- login carried in XX message 3 -----------------------------------------------------
    let login = cbor(&json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": ALICE_PW,
    }));
    tap.take();
    let x = dev.request(
        &mut gw,
        &msg(Kind::Confirmable, Code::POST, &[], &[path("1")], &login),
    );
    let http = tap.take();
    let r = Repr::parse_bytes(&x.response).unwrap();
    assert_eq!(r.code, Code::CHANGED);
    let body = json_of(r.payload);
    assert_eq!(body["user_id"], "@alice:localhost");
    assert!(body["device_id"].is_string());
    assert!(
        body.get("access_token").is_none(),
        "the token never goes on air"
    );
    assert_eq!(dev.pipe.pinned_key(), Some(gw.public_key()));
    rows.push((
        "login (XX msg 3)",
        x.request_frame.len(),
        x.response_frame.len(),
        http.up,
        http.down,
    ));

    // --- forged and garbled frames never reach Synapse ---------------------------------------
    let before = gw.total_bytes().http_requests;
    let mut forged = x.request_frame.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let mut garbage: Vec<Vec<u8>> = vec![forged, vec![], vec![0x01], vec![0xff; 40]];
    let mut transport_like = x.response_frame.clone();
    transport_like[8] ^= 0x80;
    garbage.push(transport_like);
    for g in &garbage {
        assert!(gw.handle_frame(Instant::now(), g).is_empty());
    }
    assert_eq!(tap.take().total(), 0, "nothing reached the homeserver");
    assert_eq!(gw.total_bytes().http_requests, before);
    assert!(gw.bytes(Op::Rejected).frames_in >= garbage.len() as u64 - 1);

    // --- a response larger than the frame limit comes in Block2 blocks --------------------------
    let mut body = Vec::new();
    let mut num = 0u32;
    let mut szx = 6u8;
    loop {
        let mut opts = vec![path("0")];
        if num > 0 {
            let b = Block {
                num,
                more: false,
                szx,
            };
            opts.push(b.option(OptionNumber::BLOCK2).unwrap());
        }
        tap.take();
        let x = dev.request(&mut gw, &msg(Kind::Confirmable, Code::GET, &[], &opts, &[]));
        let http = tap.take();
        assert!(x.response_frame.len() <= 255, "every frame fits the link");
        if num > 0 {
            assert_eq!(http.total(), 0, "later blocks are served from the gateway");
        }
        let r = Repr::parse_bytes(&x.response).unwrap();
        assert_eq!(r.code, Code::CONTENT);
        let b = Block::decode(r.option(OptionNumber::BLOCK2).expect("Block2").value()).unwrap();
        assert_eq!(b.num, num);
        szx = b.szx;
        assert_eq!(szx, 3, "largest block that fits 255 bytes: 128");
        body.extend_from_slice(r.payload);
        if !b.more {
            break;
        }
        num += 1;
    }
    assert!(num >= 1, "the versions answer needs more than one block");
    assert!(json_of(&body)["versions"].is_array());

    // --- join by alias: a room introduction -----------------------------------------------------
    let x = dev.request(
        &mut gw,
        &msg(
            Kind::Confirmable,
            Code::POST,
            &[],
            &[path("L"), path("#room:localhost")],
            &[],
        ),
    );
    let http = tap.take();
    let r = Repr::parse_bytes(&x.response).unwrap();
    assert_eq!(r.code, Code::CHANGED);
    let mut intro = vec![0x82, 0x00, 0x78, room_id.len() as u8];
    intro.extend_from_slice(room_id.as_bytes());
    assert_eq!(r.payload, &intro[..], "[0, \"{room_id}\"]");
    rows.push((
        "join #room:localhost",
        x.request_frame.len(),
        x.response_frame.len(),
        http.up,
        http.down,
    ));

    // --- an error reaches the device with its errcode only ---------------------------------------
    let x = dev.request(
        &mut gw,
        &msg(
            Kind::Confirmable,
            Code::POST,
            &[],
            &[path("L"), path("#nope:localhost")],
            &[],
        ),
    );
    let http = tap.take();
    let r = Repr::parse_bytes(&x.response).unwrap();
    assert_eq!(r.code, Code::NOT_FOUND);
    assert_eq!(json_of(r.payload), json!({"errcode": "M_NOT_FOUND"}));
    rows.push((
        "join unknown alias (4.04)",
        x.request_frame.len(),
        x.response_frame.len(),
        http.up,
        http.down,
    ));

    // --- send "Hello": 32 bytes on air, its ACK 21 -------------------------------------------------
    let hello = msg(
        Kind::Confirmable,
        Code::POST,
        &[],
        &[path("*")],
        &[0x82, 0x00, 0x65, b'H', b'e', b'l', b'l', b'o'],
    );
    assert_eq!(
        &hello[4..],
        &[
            0xb1, 0x2a, 0xff, 0x82, 0x00, 0x65, 0x48, 0x65, 0x6c, 0x6c, 0x6f
        ]
    );
    let x = dev.request(&mut gw, &hello);
    let http = tap.take();
    assert_eq!(x.request_frame.len(), 32);
    assert_eq!(x.response_frame.len(), 21);
    let r = Repr::parse_bytes(&x.response).unwrap();
    assert_eq!(
        (r.kind, r.code, r.payload),
        (Kind::Acknowledgement, Code::CHANGED, &[][..])
    );
    rows.push((
        "send \"Hello\"",
        x.request_frame.len(),
        x.response_frame.len(),
        http.up,
        http.down,
    ));
    let hello_frame = x.request_frame.clone();
    let hello_ack = x.response_frame.clone();
    assert_eq!(
        bodies(&bob.messages(&room_id, 20).unwrap(), "@alice:localhost"),
        ["Hello"]
    );

    // A retransmission (byte-identical frame) is answered from the cache: the same ACK, one event.
    tap.take();
    let again = gw.handle_frame(Instant::now(), &hello_frame);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].frame, hello_ack);
    assert_eq!(
        tap.take().total(),
        0,
        "the retransmission did not reach the homeserver"
    );
    assert_eq!(
        bodies(&bob.messages(&room_id, 20).unwrap(), "@alice:localhost"),
        ["Hello"]
    );

    // --- a request larger than a block: Block1 (64-byte blocks), 2.31 Continue then 2.04 ------
    let long = "x".repeat(100);
    let mut payload = vec![0x82, 0x00, 0x78, 100];
    payload.extend_from_slice(long.as_bytes());
    let parts = [&payload[..64], &payload[64..]];
    for (num, part) in parts.iter().enumerate() {
        let more = num == 0;
        let b = Block {
            num: num as u32,
            more,
            szx: 2,
        };
        let x = dev.request(
            &mut gw,
            &msg(
                Kind::Confirmable,
                Code::POST,
                &[],
                &[path("*"), b.option(OptionNumber::BLOCK1).unwrap()],
                part,
            ),
        );
        let r = Repr::parse_bytes(&x.response).unwrap();
        assert_eq!(r.code, if more { Code::CONTINUE } else { Code::CHANGED });
        let echoed = Block::decode(r.option(OptionNumber::BLOCK1).unwrap().value()).unwrap();
        assert_eq!(echoed, b);
    }
    tap.take();
    assert_eq!(
        bodies(&bob.messages(&room_id, 20).unwrap(), "@alice:localhost"),
        ["Hello", long.as_str()]
    );

    // --- register for events (Observe 0, TKL 0) -----------------------------------------------------
    let observe = msg(
        Kind::Confirmable,
        Code::GET,
        &[],
        &[CoapOption::uint(OptionNumber::OBSERVE, 0), path("+")],
        &[],
    );
    let x = dev.request(&mut gw, &observe);
    let r = Repr::parse_bytes(&x.response).unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert!(r.option(OptionNumber::OBSERVE).is_some());
    rows.push((
        "register events (+)",
        x.request_frame.len(),
        x.response_frame.len(),
        0,
        0,
    ));
    // Let the initial sync ("now") complete before Bob speaks.
    let end = Instant::now() + Duration::from_secs(10);
    while gw.db().device(&dev_key(&dev)).unwrap().next_batch.is_none() {
        assert!(gw.poll(Instant::now()).is_empty());
        assert!(Instant::now() < end, "initial sync did not complete");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Bob replies; the device gets it as a notification, the sender introduced.
    bob.send_text(&room_id, "b1", "Hi").unwrap();
    let (frame, m, ticket) = dev.notification(&mut gw);
    let r = Repr::parse_bytes(&m).unwrap();
    assert_eq!((r.kind, r.code), (Kind::Confirmable, Code::CONTENT));
    assert_eq!(r.option(OptionNumber::OBSERVE).unwrap().value_uint(), Ok(1));
    let mut expect = vec![0x83, 0x00, 0x82, 0x00, 0x6e];
    expect.extend_from_slice(b"@bob:localhost");
    expect.extend_from_slice(&[0x62, b'H', b'i']);
    assert_eq!(
        r.payload,
        &expect[..],
        "[0, [0, \"@bob:localhost\"], \"Hi\"]"
    );
    assert_eq!(frame.len(), 1 + 4 + 2 + 1 + expect.len() + 16);
    // 46 bytes: the ≤ 44 budget is for a known sender (below).
    assert_eq!(frame.len(), 46);
    let ack = dev.ack(&mut gw, ticket);
    assert_eq!(ack.len(), 21);
    rows.push((
        "notification \"Hi\" (sender introduced)",
        ack.len(),
        frame.len(),
        0,
        0,
    ));

    // Known room and sender: payload 83 00 00 62 59 6f, frame 30 bytes.
    bob.send_text(&room_id, "b2", "Yo").unwrap();
    let (frame, m, ticket) = dev.notification(&mut gw);
    let r = Repr::parse_bytes(&m).unwrap();
    assert_eq!(r.option(OptionNumber::OBSERVE).unwrap().value_uint(), Ok(2));
    assert_eq!(r.payload, &[0x83, 0x00, 0x00, 0x62, b'Y', b'o']);
    assert_eq!(frame.len(), 30);
    assert!(frame.len() <= 44);
    dev.ack(&mut gw, ticket);
    rows.push(("notification \"Yo\" (known sender)", 21, frame.len(), 0, 0));
    assert!(!gw.has_pending_notifications());

    // --- a notification whose ACK is lost, then a gateway restart --------------------------------
    bob.send_text(&room_id, "b3", "R1").unwrap();
    let (r1_frame, m, _lost_ticket) = dev.notification(&mut gw);
    let r = Repr::parse_bytes(&m).unwrap();
    assert_eq!(r.option(OptionNumber::OBSERVE).unwrap().value_uint(), Ok(3));
    assert_eq!(&r.payload[3..], b"bR1");
    // Not ACKed: nothing before ACK_TIMEOUT (2.004 s on this link), the same frame after
    // 1.5 × ACK_TIMEOUT, then after the doubled timeout.
    let t0 = Instant::now();
    assert!(gw.poll(t0).is_empty());
    let deadline = gw.poll_timeout().expect("a notification in flight");
    let wait = deadline - t0;
    assert!(
        wait >= Duration::from_millis(1_900) && wait <= Duration::from_millis(3_100),
        "{wait:?}"
    );
    let re = gw.poll(t0 + Duration::from_millis(3_100));
    assert_eq!(re.len(), 1);
    assert_eq!(re[0].frame, r1_frame, "retransmission is byte-identical");
    assert!(gw.poll(t0 + Duration::from_millis(3_200)).is_empty());
    let second = gw.poll_timeout().unwrap() - (t0 + Duration::from_millis(3_100));
    assert!(
        second >= wait * 2 - Duration::from_millis(50),
        "{second:?} vs {wait:?}"
    );
    // The device drops the retransmission as a duplicate (same counter).
    let mut scratch = [0u8; 256];
    assert!(matches!(
        dev.pipe.open(&re[0].frame, &mut scratch).unwrap(),
        Received::Duplicate { .. }
    ));
    let per_op: Vec<_> = [
        Op::Handshake,
        Op::Login,
        Op::Join,
        Op::Send,
        Op::Observe,
        Op::Notification,
        Op::Rejected,
    ]
    .into_iter()
    .map(|op| (op, gw.bytes(op)))
    .collect();
    drop(gw);
    bob.send_text(&room_id, "b4", "R2").unwrap();
    let mut gw = open_gw(data.path(), &tap.base_url());

    // R1 again with the same sequence number (the device drops it as ≤ its last, or takes it
    // if it never got it), then R2; nothing lost, nothing duplicated.
    let mut got = Vec::new();
    for _ in 0..2 {
        let (_, m, ticket) = dev.notification(&mut gw);
        let r = Repr::parse_bytes(&m).unwrap();
        got.push((
            r.option(OptionNumber::OBSERVE)
                .unwrap()
                .value_uint()
                .unwrap(),
            r.payload.to_vec(),
        ));
        dev.ack(&mut gw, ticket);
    }
    assert_eq!(
        got,
        [
            (3, vec![0x83, 0x00, 0x00, 0x62, b'R', b'1']),
            (4, vec![0x83, 0x00, 0x00, 0x62, b'R', b'2'])
        ]
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        gw.poll(Instant::now()).is_empty(),
        "no duplicate after the restart"
    );

    // --- the Hello retransmitted after the restart: still one event -----------------------------
    let http_before = gw.total_bytes().http_requests;
    let again = gw.handle_frame(Instant::now(), &hello_frame);
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].frame, hello_ack,
        "answered from the persisted cache"
    );
    assert_eq!(gw.total_bytes().http_requests, http_before);
    // A forged variant of it (one bit flipped) gets nothing.
    let mut forged = hello_frame.clone();
    forged[10] ^= 4;
    assert!(gw.handle_frame(Instant::now(), &forged).is_empty());
    // A new send after the restart works and is a second, distinct event.
    let x = dev.request(
        &mut gw,
        &msg(
            Kind::Confirmable,
            Code::POST,
            &[],
            &[path("*")],
            &[0x82, 0x00, 0x62, b'O', b'k'],
        ),
    );
    assert_eq!(Repr::parse_bytes(&x.response).unwrap().code, Code::CHANGED);
    assert_eq!(
        bodies(&bob.messages(&room_id, 30).unwrap(), "@alice:localhost"),
        ["Hello", long.as_str(), "Ok"]
    );

    // --- a new session by IK (pinned key): the request in message 1 is served at once (0-RTT) --
    dev.pipe.reset_session().unwrap();
    let ik = msg(
        Kind::Confirmable,
        Code::POST,
        &[],
        &[path("*")],
        &[0x82, 0x00, 0x62, b'I', b'K'],
    );
    let x = dev.request(&mut gw, &ik);
    assert_eq!(Repr::parse_bytes(&x.response).unwrap().code, Code::CHANGED);
    assert_eq!(
        bodies(&bob.messages(&room_id, 30).unwrap(), "@alice:localhost"),
        ["Hello", long.as_str(), "Ok", "IK"]
    );

    // --- a device slower than the room loses nothing (regression) ------------------------------
    // While notification g00 waits for its ACK, Bob sends 15 more: more than the tiny filter's
    // timeline limit (10), so the next `/sync` is `limited`. The gateway used to deliver only the
    // last 10 and silently lose the rest; it now reads the gap back with `/messages`.
    bob.send_text(&room_id, "g00", "g00").unwrap();
    let (_, m, first) = dev.notification(&mut gw);
    let r = Repr::parse_bytes(&m).unwrap();
    assert_eq!(r.option(OptionNumber::OBSERVE).unwrap().value_uint(), Ok(5));
    assert_eq!(r.payload, b"\x83\x00\x00\x63g00");
    for i in 1..16 {
        let b = format!("g{i:02}");
        bob.send_text(&room_id, &b, &b).unwrap();
    }
    let mut sent_back = dev.ack_then(&mut gw, first);
    for i in 1..16u32 {
        let (m, ticket) = match sent_back.pop() {
            Some(t) => dev.open_notification(&t.frame),
            None => {
                let (_, m, ticket) = dev.notification(&mut gw);
                (m, ticket)
            }
        };
        assert!(sent_back.is_empty());
        let r = Repr::parse_bytes(&m).unwrap();
        assert_eq!(
            r.option(OptionNumber::OBSERVE).unwrap().value_uint(),
            Ok(5 + i)
        );
        let mut expect = vec![0x83, 0x00, 0x00, 0x63];
        expect.extend_from_slice(format!("g{i:02}").as_bytes());
        assert_eq!(
            r.payload,
            &expect[..],
            "notification {i} in order, none lost"
        );
        sent_back = dev.ack_then(&mut gw, ticket);
    }
    assert!(sent_back.is_empty());
    assert!(!gw.has_pending_notifications());

    // --- a notification in flight follows the device to its new session (regression) --------
    // The device gives up a request and starts a new handshake while notification r0 waits for
    // its ACK. The gateway used to retransmit the frame sealed for the old session, which the
    // device can no longer open, until the registration was dropped; it now seals it again for
    // the new session (same sequence number).
    bob.send_text(&room_id, "r0", "r0").unwrap();
    let (_, m, _old_ticket) = dev.notification(&mut gw);
    let r = Repr::parse_bytes(&m).unwrap();
    assert_eq!(
        r.option(OptionNumber::OBSERVE).unwrap().value_uint(),
        Ok(21)
    );
    dev.pipe.reset_session().unwrap();
    let x = dev.request(&mut gw, &hello);
    assert_eq!(Repr::parse_bytes(&x.response).unwrap().code, Code::CHANGED);
    let tx = gw.poll(Instant::now());
    assert_eq!(tx.len(), 1, "the notification, sealed for the new session");
    let (m, ticket) = dev.open_notification(&tx[0].frame);
    let r = Repr::parse_bytes(&m).unwrap();
    assert_eq!(
        r.option(OptionNumber::OBSERVE).unwrap().value_uint(),
        Ok(21)
    );
    assert_eq!(r.payload, b"\x83\x00\x00\x62r0");
    assert!(dev.ack_then(&mut gw, ticket).is_empty());
    assert!(!gw.has_pending_notifications());

    // --- RST to a notification removes the registration ---------------------------------------
    bob.send_text(&room_id, "b5", "Z").unwrap();
    let (_, m, ticket) = dev.notification(&mut gw);
    let r = Repr::parse_bytes(&m).unwrap();
    assert_eq!(
        r.option(OptionNumber::OBSERVE).unwrap().value_uint(),
        Ok(22)
    );
    let mut f = [0u8; 64];
    let s = dev
        .pipe
        .seal_reply(ticket, &[0x70, 0x00, 0, 0], &mut f)
        .unwrap();
    assert!(gw.handle_frame(Instant::now(), &f[..s.len]).is_empty());
    assert_eq!(gw.db().device(&dev_key(&dev)).unwrap().observe_token, None);
    bob.send_text(&room_id, "b6", "Z2").unwrap();
    let end = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < end {
        assert!(
            gw.poll(Instant::now()).is_empty(),
            "no notification after RST"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // --- `=`: a provisioned token (Bob's) bound to a third device key after whoami -------------
    let mut dev3 = Device {
        pipe: Initiator::new(
            RamStorage::new(),
            Config::DEVICE,
            &mut ChaCha20Rng::from_seed([13; 32]),
        )
        .unwrap(),
        rng: ChaCha20Rng::from_seed([14; 32]),
    };
    let mut tok = vec![0x78, bob.access_token.len() as u8];
    tok.extend_from_slice(bob.access_token.as_bytes());
    assert!(bob.access_token.len() >= 24 && bob.access_token.len() < 256);
    let x = dev3.request(
        &mut gw,
        &msg(Kind::Confirmable, Code::POST, &[], &[path("=")], &tok),
    );
    let r = Repr::parse_bytes(&x.response).unwrap();
    assert_eq!(r.code, Code::CHANGED);
    assert_eq!(json_of(r.payload)["user_id"], "@bob:localhost");
    // A bad token is refused by the homeserver: 4.01 with its errcode, nothing bound.
    let mut dev4 = Device {
        pipe: Initiator::new(
            RamStorage::new(),
            Config::DEVICE,
            &mut ChaCha20Rng::from_seed([15; 32]),
        )
        .unwrap(),
        rng: ChaCha20Rng::from_seed([16; 32]),
    };
    let x = dev4.request(
        &mut gw,
        &msg(
            Kind::Confirmable,
            Code::POST,
            &[],
            &[path("=")],
            &[0x63, b'b', b'a', b'd'],
        ),
    );
    let r = Repr::parse_bytes(&x.response).unwrap();
    assert_eq!(r.code, Code::UNAUTHORIZED);
    assert_eq!(json_of(r.payload), json!({"errcode": "M_UNKNOWN_TOKEN"}));
    let x = dev4.request(&mut gw, &hello);
    assert_eq!(
        Repr::parse_bytes(&x.response).unwrap().code,
        Code::UNAUTHORIZED
    );

    println!("\noperation | air in | air out | HTTP up | HTTP down (TCP, exact)");
    for (name, a, b, u, d) in &rows {
        println!("{name} | {a} | {b} | {u} | {d}");
    }
    println!(
        "\ngateway counters before the restart (HTTP: request line, auth, body / status line, body):"
    );
    for (op, b) in per_op {
        println!("{op:?}: {b:?}");
    }
}

fn dev_key(dev: &Device) -> String {
    dev.pipe
        .public_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// --- through the real `trickle gateway` binary, over a Unix socket (COBS/R framing) ----------

/// The `trickle` binary of this build (built on demand, same target directory).
fn trickle_bin() -> std::path::PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "trickle-cli", "--bin", "trickle"])
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building the trickle binary");
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("trickle")
}

/// The device end of a byte-stream link to the gateway, framed as docs/PROTOCOL.md "Link
/// framing for byte streams" says (`trickle_core::wire::serial`).
struct StreamLink {
    stream: std::os::unix::net::UnixStream,
    sender: trickle_core::wire::serial::Sender,
    dec: trickle_core::wire::serial::Decoder<2048>,
}

impl StreamLink {
    fn send(&mut self, frame: &[u8]) {
        use std::io::Write;
        let out: Vec<u8> = self.sender.frame(frame).unwrap().collect();
        self.stream.write_all(&out).unwrap();
    }

    fn recv(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut b = [0u8; 1];
        loop {
            let n = self
                .stream
                .read(&mut b)
                .expect("frame from the gateway in time");
            assert_eq!(n, 1, "gateway closed the link");
            if let Some(r) = self.dec.push(b[0]) {
                return r.unwrap().to_vec();
            }
        }
    }

    /// One request (first contact: XX carrying it) → the response message.
    fn request(&mut self, dev: &mut Device, m: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut f = [0u8; 600];
        let mut p = [0u8; 600];
        let mut s = dev.pipe.seal(&mut dev.rng, m, &mut f).unwrap();
        if !s.carried {
            self.send(&f[..s.len]);
            let reply = self.recv();
            assert_eq!(
                dev.pipe.open(&reply, &mut p).unwrap(),
                Received::NeedRequest
            );
            s = dev.pipe.seal(&mut dev.rng, m, &mut f).unwrap();
        }
        self.send(&f[..s.len]);
        let resp = self.recv();
        let Received::Message { len, .. } = dev.pipe.open(&resp, &mut p).unwrap() else {
            panic!("expected a response")
        };
        (s.len, resp.len(), p[..len].to_vec())
    }
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn spawn_gateway(
    bin: &std::path::Path,
    dir: &std::path::Path,
    homeserver: &str,
    extra: &[String],
    crc: trickle_core::wire::serial::Crc,
) -> (Child, StreamLink) {
    let sock = dir.join("gw.sock");
    let _ = std::fs::remove_file(&sock);
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "homeserver = \"{homeserver}\"\ndata_dir = \"{}\"\nbitrate = 1000000\nsync_timeout_ms = 1000\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(bin)
        .arg("gateway")
        .arg("--config")
        .arg(&config)
        .arg("--unix")
        .arg(&sock)
        .args(extra)
        .args((crc != trickle_core::wire::serial::Crc::None).then_some("--frame-crc"))
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("starting trickle gateway");
    let child = Child(child);
    let end = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
            break s;
        }
        assert!(
            Instant::now() < end,
            "trickle gateway did not open its socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    (
        child,
        StreamLink {
            stream,
            sender: trickle_core::wire::serial::Sender::new(trickle_core::wire::serial::Config {
                crc,
                leading_delimiter: false,
            }),
            dec: trickle_core::wire::serial::Decoder::new(crc),
        },
    )
}

#[test]
fn trickle_gateway_binary_over_unix_socket_and_udp() {
    let bin = trickle_bin();
    let synapse = Synapse::start().expect("Synapse must start for this test");
    let bob = synapse.user("bob", BOB_PW).unwrap();
    synapse.register_user("alice", ALICE_PW).unwrap();
    let room_id = bob
        .create_room(&json!({"room_alias_name": "room", "preset": "public_chat"}))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Device {
        pipe: Initiator::new(
            RamStorage::new(),
            Config::DEVICE,
            &mut ChaCha20Rng::from_seed([9; 32]),
        )
        .unwrap(),
        rng: ChaCha20Rng::from_seed([10; 32]),
    };
    let free_port = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (udp, plain) = (free_port(), free_port());
    let extra = [
        "--udp".to_owned(),
        udp.to_string(),
        "--udp-plain".to_owned(),
        plain.to_string(),
    ];
    let (child, mut link) = spawn_gateway(
        &bin,
        dir.path(),
        &synapse.base_url(),
        &extra,
        trickle_core::wire::serial::Crc::None,
    );
    let login = cbor(&json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": ALICE_PW,
    }));
    let (_, _, m) = link.request(
        &mut dev,
        &msg(Kind::Confirmable, Code::POST, &[], &[path("1")], &login),
    );
    let r = Repr::parse_bytes(&m).unwrap();
    assert_eq!(r.code, Code::CHANGED);
    assert_eq!(json_of(r.payload)["user_id"], "@alice:localhost");
    let (_, _, m) = link.request(
        &mut dev,
        &msg(
            Kind::Confirmable,
            Code::POST,
            &[],
            &[path("L"), path("#room:localhost")],
            &[],
        ),
    );
    assert_eq!(Repr::parse_bytes(&m).unwrap().code, Code::CHANGED);
    // Garbage on the link (line noise ended by a delimiter, then a forged frame) does not stop
    // the gateway.
    {
        use std::io::Write;
        link.stream
            .write_all(&[0x00, 0x41, 0xDB, 0x07, 0x00])
            .unwrap();
    }
    link.send(&[
        1, 0x40, 0x02, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
    ]);
    let hello = msg(
        Kind::Confirmable,
        Code::POST,
        &[],
        &[path("*")],
        &[0x82, 0x00, 0x65, b'H', b'e', b'l', b'l', b'o'],
    );
    let (req_len, resp_len, m) = link.request(&mut dev, &hello);
    assert_eq!((req_len, resp_len), (32, 21));
    assert_eq!(Repr::parse_bytes(&m).unwrap().code, Code::CHANGED);
    assert_eq!(
        bodies(&bob.messages(&room_id, 20).unwrap(), "@alice:localhost"),
        ["Hello"]
    );

    // Plain MSC3079 client on its UDP port: bare CoAP, option 257 = 1, GET versions (code 0).
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let req = msg(
        Kind::Confirmable,
        Code::GET,
        &[0x42],
        &[
            path("0"),
            CoapOption::uint(OptionNumber::CBOR_ENUM_VERSION, 1),
        ],
        &[],
    );
    sock.send_to(&req, plain).unwrap();
    let mut plain_buf = [0u8; 4096];
    let n = sock.recv(&mut plain_buf).unwrap();
    let r = Repr::parse_bytes(&plain_buf[..n]).unwrap();
    let mut buf = [0u8; 4096];
    assert_eq!(
        (r.kind, r.code, r.token),
        (Kind::Acknowledgement, Code::CONTENT, &[0x42][..])
    );
    assert_eq!(
        r.option(OptionNumber::CONTENT_FORMAT).unwrap().value_uint(),
        Ok(60)
    );
    let versions: Value =
        serde_json::from_slice(&cbor_bytes_to_json(r.payload, &CborTable::MSC3079_V1).unwrap())
            .unwrap();
    assert!(versions["versions"].is_array());

    // A second device on the Trickle-profile UDP port: first contact with login.
    let mut dev2 = Device {
        pipe: Initiator::new(
            RamStorage::new(),
            Config::DEVICE,
            &mut ChaCha20Rng::from_seed([11; 32]),
        )
        .unwrap(),
        rng: ChaCha20Rng::from_seed([12; 32]),
    };
    let udp_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp_sock
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut f = [0u8; 600];
    let mut p = [0u8; 600];
    let login_msg = msg(Kind::Confirmable, Code::POST, &[], &[path("1")], &login);
    let s1 = dev2.pipe.seal(&mut dev2.rng, &login_msg, &mut f).unwrap();
    udp_sock.send_to(&f[..s1.len], udp).unwrap();
    let n = udp_sock.recv(&mut buf).unwrap();
    assert_eq!(
        dev2.pipe.open(&buf[..n], &mut p).unwrap(),
        Received::NeedRequest
    );
    let s3 = dev2.pipe.seal(&mut dev2.rng, &login_msg, &mut f).unwrap();
    udp_sock.send_to(&f[..s3.len], udp).unwrap();
    let n = udp_sock.recv(&mut buf).unwrap();
    let Received::Message { len, .. } = dev2.pipe.open(&buf[..n], &mut p).unwrap() else {
        panic!("expected the login answer")
    };
    let r = Repr::parse_bytes(&p[..len]).unwrap();
    assert_eq!(r.code, Code::CHANGED);
    assert_eq!(json_of(r.payload)["user_id"], "@alice:localhost");

    // Stop the process (SIGTERM) and start it again: the session, binding and aliases persist.
    // This time with the optional CRC-16 on the stream link (`--frame-crc`).
    drop(link);
    drop(child);
    let (_child, mut link) = spawn_gateway(
        &bin,
        dir.path(),
        &synapse.base_url(),
        &[],
        trickle_core::wire::serial::Crc::X25,
    );
    let (req_len, _, m) = link.request(
        &mut dev,
        &msg(
            Kind::Confirmable,
            Code::POST,
            &[],
            &[path("*")],
            &[0x82, 0x00, 0x62, b'O', b'k'],
        ),
    );
    assert_eq!(req_len, 29);
    assert_eq!(Repr::parse_bytes(&m).unwrap().code, Code::CHANGED);
    assert_eq!(
        bodies(&bob.messages(&room_id, 20).unwrap(), "@alice:localhost"),
        ["Hello", "Ok"]
    );
}
