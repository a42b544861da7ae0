//! The vertical slice, end to end: the core's device client (`trickle_core::client::Client`,
//! what firmware runs) talks over an in-memory link to the gateway's session layer
//! (`SessionGateway`), which speaks HTTP+JSON to a real Synapse. A second user on plain HTTP
//! replies; the reply reaches the device by Observe push. Every frame on the link is recorded,
//! so the byte budgets are asserted on real frames. Fails (never skips) if Synapse can't start.

use std::time::{Duration, Instant};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use serde_json::json;
use trickle_core::client::{self, Client, ClientConfig, LinkConfig, Peer};
use trickle_core::noise::storage::RamStorage;
use trickle_gateway::{HomeserverClient, Op, SessionConfig, SessionGateway};
use trickle_tests::seen::Seen;
use trickle_tests::synapse::Synapse;

const ALICE_PW: &str = "alice-device-pw";
const BOB_PW: &str = "bob-plain-http-pw";

type Device = Client<RamStorage, ChaCha20Rng>;

/// The device, the gateway and the link between them (frames delivered at once, in order;
/// real time, since the gateway's `/sync` long-polls run on real time).
struct Slice {
    device: Device,
    gateway: SessionGateway,
    start: Instant,
    /// Every frame on the link: (from device?, bytes).
    air: Vec<(bool, Vec<u8>)>,
}

impl Slice {
    fn now(&self) -> client::Instant {
        client::Instant(self.start.elapsed().as_millis() as u64)
    }

    /// Moves frames both ways until `until` has seen what it waits for, or `limit` passes.
    fn run(&mut self, limit: Duration, mut until: impl FnMut(&Seen) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let now = self.now();
            self.device.handle_timeout(now);
            while let Some(n) = self.device.poll_transmit(now, &mut buf) {
                let frame = buf[..n].to_vec();
                self.air.push((true, frame.clone()));
                for t in self.gateway.handle_frame(Instant::now(), &frame) {
                    self.air.push((false, t.frame.clone()));
                    self.device.handle_rx(self.now(), &t.frame);
                }
            }
            for t in self.gateway.poll(Instant::now()) {
                self.air.push((false, t.frame.clone()));
                self.device.handle_rx(self.now(), &t.frame);
            }
            let mut done = false;
            while let Some(event) = self.device.poll_event() {
                let Some(s) = Seen::from_event(&event) else {
                    continue;
                };
                done |= until(&s);
                seen.push(s);
            }
            // The device ACKs a notification once its event was read: flush that ACK.
            let now = self.now();
            while let Some(n) = self.device.poll_transmit(now, &mut buf) {
                let frame = buf[..n].to_vec();
                self.air.push((true, frame.clone()));
                for t in self.gateway.handle_frame(Instant::now(), &frame) {
                    self.air.push((false, t.frame.clone()));
                    self.device.handle_rx(self.now(), &t.frame);
                }
            }
            if done {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; seen so far: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn device_logs_in_joins_sends_hello_and_receives_a_reply_by_observe() {
    let synapse = Synapse::start().expect("Synapse must start for this test");
    synapse.register_user("alice", ALICE_PW).unwrap();
    let bob = synapse.user("bob", BOB_PW).unwrap();
    let room_id = bob
        .create_room(&json!({"room_alias_name": "lobby", "preset": "public_chat"}))
        .unwrap();

    let dir = tempdir();
    let http = HomeserverClient::new(&synapse.base_url(), Default::default()).unwrap();
    let config = SessionConfig {
        bitrate: 100,
        max_frame: 255,
        sync_timeout_ms: 1_000,
    };
    let gateway = SessionGateway::open(&dir, http, config).unwrap();
    let device = Device::new(
        RamStorage::new(),
        ChaCha20Rng::from_seed([42; 32]),
        ClientConfig::new(LinkConfig::LORA_100),
    )
    .unwrap();
    let mut s = Slice {
        device,
        gateway,
        start: Instant::now(),
        air: Vec::new(),
    };
    let wait = Duration::from_secs(60);

    // First contact (XX) carries the login; the access token stays at the gateway.
    s.device.login_password("alice", ALICE_PW).unwrap();
    let seen = s.run(wait, |e| !matches!(e, Seen::Subscribed));
    assert_eq!(seen, [Seen::LoggedIn("@alice:localhost".into())]);
    assert!(
        s.air.iter().all(|(_, f)| !contains(f, b"syt_")),
        "an access token crossed the air"
    );

    s.device.join("#lobby:localhost").unwrap();
    let seen = s.run(wait, |e| matches!(e, Seen::Joined(..) | Seen::Failed(_)));
    let [Seen::Joined(room_alias, joined)] = &seen[..] else {
        panic!("{seen:?}")
    };
    assert_eq!(joined, &room_id);
    let room_alias = *room_alias;

    s.device.subscribe().unwrap();
    let seen = s.run(wait, |e| matches!(e, Seen::Subscribed | Seen::Failed(_)));
    assert_eq!(seen, [Seen::Subscribed]);

    // Send "Hello": exact frames on the air.
    let before = s.air.len();
    s.device
        .send_text(Peer::Alias(room_alias), "Hello")
        .unwrap();
    let seen = s.run(wait, |e| matches!(e, Seen::Delivered | Seen::Failed(_)));
    assert_eq!(seen, [Seen::Delivered]);
    let frames: Vec<_> = s.air[before..].to_vec();
    assert_eq!(
        frames.len(),
        2,
        "one request, one piggybacked ACK: {frames:?}"
    );
    assert!(frames[0].0 && !frames[1].0);
    assert_eq!(frames[0].1.len(), 32, "send \"Hello\" on air (budget ≤ 34)");
    assert_eq!(
        frames[1].1.len(),
        21,
        "its acknowledgement on air (budget ≤ 22)"
    );
    let messages = bob.messages(&room_id, 20).unwrap();
    let hellos = messages
        .iter()
        .filter(|e| e["sender"] == "@alice:localhost" && e["content"]["body"] == "Hello")
        .count();
    assert_eq!(hellos, 1, "Synapse has the message once");

    // Bob replies twice over plain HTTP; both arrive by Observe push, exactly once each.
    bob.send_text(&room_id, "bob-1", "Hi").unwrap();
    bob.send_text(&room_id, "bob-2", "Yo").unwrap();
    let before = s.air.len();
    let mut got = Vec::new();
    let seen = s.run(wait, |e| {
        if let Seen::Message { body, .. } = e {
            got.push(body.clone());
        }
        got.len() == 2
    });
    let bodies: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Seen::Message { body, sender, room } => {
                assert_eq!(room, &room_id);
                assert_eq!(sender, "@bob:localhost");
                Some(body.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(bodies, ["Hi", "Yo"]);
    // Notifications are the gateway's frames of 2.05 with a payload; the second comes from a
    // known sender in a known room: [room alias, sender alias, "Yo"].
    let notifications: Vec<_> = s.air[before..].iter().filter(|(dev, _)| !dev).collect();
    let last = notifications.last().unwrap();
    assert!(
        last.1.len() <= 44,
        "one-word message from a known sender: {} bytes",
        last.1.len()
    );
    assert_eq!(
        last.1.len(),
        30,
        "CID 1 + header 4 + Observe 2 + marker 1 + [0,1,\"Yo\"] 6 + tag 16"
    );
    let device_acks: Vec<_> = s.air[before..].iter().filter(|(dev, _)| *dev).collect();
    assert!(
        device_acks.iter().all(|(_, f)| f.len() == 21),
        "device ACKs are 21 bytes"
    );

    // The gateway's byte counter: HTTP with Synapse beside bytes on air, per operation.
    for op in [Op::Login, Op::Join, Op::Send, Op::Observe, Op::Notification] {
        let b = s.gateway.bytes(op);
        println!(
            "{op:?}: air {} B in {} frames / HTTP {} B in {} requests",
            b.air_in + b.air_out,
            b.frames_in + b.frames_out,
            b.http_out + b.http_in,
            b.http_requests
        );
    }
    let send = s.gateway.bytes(Op::Send);
    assert_eq!(send.air_in + send.air_out, 32 + 21);
    assert_eq!(send.http_requests, 1, "one send, one PUT to Synapse");
    assert!(send.http_out > 0 && send.http_in > 0);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    drop(synapse);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "trickle-e2e-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
