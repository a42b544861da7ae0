//! A device client talking to an in-memory gateway over a perfect link.
//!
//! The gateway side is the real Noise pipe responder (`Responder`); its application part (the
//! Trickle operations of the gateway's session layer) is played by hand: it answers the login
//! with the Matrix IDs, the registration with 2.05, a send with 2.04, and pushes one message.
//! Run with `cargo run -p trickle-core --example device`.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use trickle_core::client::{Client, ClientConfig, Event, Instant, LinkConfig, MAX_FRAME_LEN, Peer};
use trickle_core::noise::pipe::{Config, Received, Responder};
use trickle_core::noise::storage::RamStorage;
use trickle_core::wire::coap::{Code, Kind, OptionNumber, Repr, observe};

/// The gateway: pipe responder plus a minimal application.
struct Gateway {
    pipe: Responder<RamStorage<16>, 4>,
    rng: ChaCha20Rng,
    cid: Option<u8>,
}

impl Gateway {
    /// Handles one frame from the device; returns the frames to send back.
    fn handle(&mut self, frame: &[u8]) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 512];
        match self.pipe.open(&mut self.rng, frame, &mut buf) {
            Ok(Received::Handshake { len, .. }) => vec![buf[..len].to_vec()],
            Ok(Received::Message {
                cid,
                len,
                ticket: Some(ticket),
            }) => {
                self.cid = Some(cid);
                let req = Repr::parse_bytes(&buf[..len]).expect("valid CoAP");
                let path = req.option(OptionNumber::URI_PATH).map(|o| o.value()[0]);
                println!(
                    "gateway: {} {} bytes, Uri-Path {:?}",
                    req.code,
                    len,
                    path.map(char::from)
                );
                // Login answer {"user_id":"@alice:example.org","device_id":"TRICKLE"} in
                // trickle-v1 (keys 105 and 106).
                let login = b"\xa2\x18\x69\x72@alice:example.org\x18\x6a\x67TRICKLE";
                let (code, payload): (Code, &[u8]) = match path {
                    Some(b'1') => (Code::CHANGED, login),
                    Some(b'*') => (Code::CHANGED, b""),
                    Some(b'+') => (Code::CONTENT, b""),
                    _ => (Code::NOT_FOUND, b""),
                };
                let mut answer = Repr::new(Kind::Acknowledgement, code, 0, req.token);
                answer.payload = payload;
                let mut plain = [0u8; 128];
                let n = answer.emit(&mut plain).expect("fits");
                let mut out = [0u8; 256];
                let sealed = self
                    .pipe
                    .seal_reply(&mut self.rng, ticket, &plain[..n], &mut out)
                    .expect("seal");
                vec![out[..sealed.len].to_vec()]
            }
            Ok(Received::Message { len, .. }) => {
                println!("gateway: device ACK ({len}-byte CoAP message)");
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// A notification `[room 1, sender 2, body]` with Observe `seq`.
    fn notify(&mut self, seq: u32, body: &str) -> Vec<u8> {
        let mut payload = vec![0x83, 0x01, 0x02, 0x60 | body.len() as u8];
        payload.extend_from_slice(body.as_bytes());
        let mut n = Repr::new(Kind::Confirmable, Code::CONTENT, 0, &[]);
        n.push_option(observe::option(seq).expect("in range"))
            .expect("room");
        n.payload = &payload;
        let mut plain = [0u8; 64];
        let len = n.emit(&mut plain).expect("fits");
        let mut out = [0u8; 128];
        let sealed = self
            .pipe
            .seal(self.cid.expect("session"), &plain[..len], &mut out)
            .expect("seal");
        out[..sealed.len].to_vec()
    }
}

type Device = Client<RamStorage, ChaCha20Rng>;

/// Moves frames both ways until the link is quiet, then prints the device's events.
fn run(dev: &mut Device, gw: &mut Gateway, now: Instant) {
    let mut buf = [0u8; MAX_FRAME_LEN];
    loop {
        let mut quiet = true;
        while let Some(n) = dev.poll_transmit(now, &mut buf) {
            quiet = false;
            println!("device  → {n:3} bytes on air");
            for reply in gw.handle(&buf[..n]) {
                println!("gateway → {:3} bytes on air", reply.len());
                dev.handle_rx(now, &reply);
            }
        }
        while let Some(event) = dev.poll_event() {
            quiet = false;
            match event {
                Event::Message {
                    room, sender, body, ..
                } => println!("event: message {body:?} in {room:?} from {sender:?}"),
                other => println!("event: {other:?}"),
            }
        }
        if quiet {
            return;
        }
    }
}

fn main() {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let pipe = Responder::new(RamStorage::new(), Config::GATEWAY, &mut rng).expect("gateway");
    let mut gw = Gateway {
        pipe,
        rng,
        cid: None,
    };
    let mut dev: Device = Client::new(
        RamStorage::new(),
        ChaCha20Rng::from_seed([1; 32]),
        ClientConfig::new(LinkConfig::LORA_100),
    )
    .expect("client");
    println!(
        "ACK_TIMEOUT on LoRa 100 bit/s: {} ms",
        LinkConfig::LORA_100.ack_timeout_ms()
    );

    // First contact: the XX handshake carries the login in its third message.
    dev.login_password("alice", "correct horse")
        .expect("queued");
    run(&mut dev, &mut gw, Instant(0));

    dev.subscribe().expect("queued");
    dev.send_text(Peer::Alias(1), "Hello").expect("queued");
    run(&mut dev, &mut gw, Instant(1_000));

    let frame = gw.notify(1, "Hi");
    println!("gateway → {:3} bytes on air (notification)", frame.len());
    dev.handle_rx(Instant(2_000), &frame);
    run(&mut dev, &mut gw, Instant(2_000));
}
