//! The device client over a cellular modem, end to end: `trickle_core::client::Client` →
//! `trickle_gprs::GprsLink` → the simulated SIM800 / BG96 (`trickle_tests::modem_sim`, AT
//! dialogue on an in-memory UART) → real UDP on 127.0.0.1 → the real `trickle gateway --udp`
//! process → a real Synapse. For each dialect: log in, join, send "Hello" (in Synapse exactly
//! once), receive a reply from a second user; then the network is lost, the next send brings
//! the link back, and both directions work again, still without duplicates. One Synapse for
//! the file; fails (never skips) if Synapse can't start.

use std::time::{Duration, Instant};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use serde_json::{Value, json};
use trickle_core::client::{self, Client, ClientConfig, LinkConfig, Peer};
use trickle_core::link::FrameLink;
use trickle_core::noise::storage::RamStorage;
use trickle_gprs::{Config, Dialect, Error, GprsLink, Timeouts};
use trickle_tests::gateway_proc::GatewayProcess;
use trickle_tests::modem_sim::{ModemConfig, SimModem, SimUart, StdClock};
use trickle_tests::seen::Seen;
use trickle_tests::synapse::Synapse;

const ALICE_PW: &str = "alice-gprs-pw";
const BOB_PW: &str = "bob-gprs-pw";

type Device = Client<RamStorage, ChaCha20Rng>;

struct Phone {
    device: Device,
    link: GprsLink<'static, SimUart, StdClock>,
    start: Instant,
    /// `NetworkLost` reported by `receive`.
    losses: usize,
    /// Transmit errors (the client retransmits on its own timers).
    tx_errors: usize,
}

impl Phone {
    fn now(&self) -> client::Instant {
        client::Instant(self.start.elapsed().as_millis() as u64)
    }

    fn flush(&mut self) {
        let mut buf = [0u8; 512];
        let now = self.now();
        while let Some(n) = self.device.poll_transmit(now, &mut buf) {
            if let Err(e) = self.link.transmit(&buf[..n]) {
                eprintln!("transmit: {e}");
                self.tx_errors += 1;
            }
        }
    }

    /// Timers, transmissions, and every datagram waiting at the link.
    fn pump(&mut self) {
        let mut rx = [0u8; 512];
        let now = self.now();
        self.device.handle_timeout(now);
        self.flush();
        loop {
            match self.link.receive(&mut rx) {
                Ok(Some(n)) => {
                    let now = self.now();
                    self.device.handle_rx(now, &rx[..n]);
                }
                Ok(None) => break,
                Err(Error::NetworkLost) => self.losses += 1,
                Err(e) => panic!("receive: {e}"),
            }
        }
    }

    fn run(&mut self, limit: Duration, mut until: impl FnMut(&Seen) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            self.pump();
            let mut done = false;
            while let Some(event) = self.device.poll_event() {
                let Some(s) = Seen::from_event(&event) else {
                    continue;
                };
                done |= until(&s);
                seen.push(s);
            }
            // ACKs of notifications just read.
            self.flush();
            if done {
                return seen;
            }
            assert!(Instant::now() < deadline, "timed out; seen: {seen:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn bodies(msgs: &[Value], sender: &str) -> Vec<String> {
    msgs.iter()
        .filter(|e| e["type"] == "m.room.message" && e["sender"] == sender)
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn device_over_sim800_and_bg96_to_synapse_with_network_loss() {
    let synapse = Synapse::start().expect("Synapse must start for this test");
    synapse.register_user("alice", ALICE_PW).unwrap();
    let bob = synapse.user("bob", BOB_PW).unwrap();
    let room_id = bob
        .create_room(&json!({"room_alias_name": "gprs", "preset": "public_chat"}))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _gateway = GatewayProcess::spawn(
        dir.path(),
        &synapse.base_url(),
        9600,
        &["--udp".into(), format!("127.0.0.1:{port}")],
    )
    .expect("starting trickle gateway");
    let wait = Duration::from_secs(60);

    for (i, dialect) in [Dialect::Sim800, Dialect::Bg96].into_iter().enumerate() {
        let (modem, uart) = SimModem::start(ModemConfig::new(dialect));
        let mut config = Config::new(dialect, "internet", "127.0.0.1", port);
        config.timeouts = Timeouts {
            power_up_ms: 5_000,
            registration_ms: 10_000,
            poll_ms: 50,
            ..Timeouts::MANUAL
        };
        let link = GprsLink::new(uart, StdClock::new(), config);
        let device = Device::new(
            RamStorage::new(),
            ChaCha20Rng::from_seed([i as u8 + 1; 32]),
            ClientConfig::new(LinkConfig {
                bitrate_bps: 9600,
                max_frame: link.max_frame_len().min(255),
            }),
        )
        .unwrap();
        let mut p = Phone {
            device,
            link,
            start: Instant::now(),
            losses: 0,
            tx_errors: 0,
        };
        // The gateway may still be starting: the client's retransmissions cover that.
        p.device.login_password("alice", ALICE_PW).unwrap();
        let seen = p.run(wait, |e| matches!(e, Seen::LoggedIn(_) | Seen::Failed(_)));
        assert_eq!(
            seen,
            [Seen::LoggedIn("@alice:localhost".into())],
            "{dialect:?}"
        );

        p.device.join("#gprs:localhost").unwrap();
        let seen = p.run(wait, |e| matches!(e, Seen::Joined(..) | Seen::Failed(_)));
        let [Seen::Joined(alias, joined)] = &seen[..] else {
            panic!("{dialect:?}: {seen:?}")
        };
        assert_eq!(joined, &room_id);
        let alias = *alias;
        p.device.subscribe().unwrap();
        let seen = p.run(wait, |e| matches!(e, Seen::Subscribed | Seen::Failed(_)));
        assert_eq!(seen, [Seen::Subscribed]);

        let hello = format!("Hello {dialect:?}");
        p.device.send_text(Peer::Alias(alias), &hello).unwrap();
        let seen = p.run(wait, |e| matches!(e, Seen::Delivered | Seen::Failed(_)));
        assert_eq!(seen, [Seen::Delivered]);
        let sent = bodies(&bob.messages(&room_id, 50).unwrap(), "@alice:localhost");
        assert_eq!(
            sent.iter().filter(|b| **b == hello).count(),
            1,
            "in Synapse exactly once: {sent:?}"
        );

        let reply = format!("Hi {dialect:?}");
        bob.send_text(&room_id, &format!("r{i}"), &reply).unwrap();
        let seen = p.run(
            wait,
            |e| matches!(e, Seen::Message { body, .. } if *body == reply),
        );
        assert!(seen.iter().any(|e| matches!(
            e,
            Seen::Message { sender, body, .. } if sender == "@bob:localhost" && *body == reply
        )));

        // The network goes away; the driver reports it, the next send reconnects.
        let before = modem.stats();
        modem.lose_network();
        let end = Instant::now() + Duration::from_secs(10);
        while p.losses == 0 {
            p.pump();
            std::thread::sleep(Duration::from_millis(2));
            assert!(Instant::now() < end, "{dialect:?}: loss not reported");
        }
        assert!(!p.link.is_connected());
        let again = format!("Back {dialect:?}");
        p.device.send_text(Peer::Alias(alias), &again).unwrap();
        let seen = p.run(wait, |e| matches!(e, Seen::Delivered | Seen::Failed(_)));
        assert_eq!(seen, [Seen::Delivered], "{dialect:?}");
        assert!(p.link.is_connected());
        let after = modem.stats();
        assert_eq!(after.sockets_opened, before.sockets_opened + 1);
        let sent = bodies(&bob.messages(&room_id, 50).unwrap(), "@alice:localhost");
        assert_eq!(sent.iter().filter(|b| **b == hello).count(), 1, "{sent:?}");
        assert_eq!(sent.iter().filter(|b| **b == again).count(), 1, "{sent:?}");

        // The gateway learned the new address from the device's frame: pushes arrive again.
        let reply2 = format!("Welcome back {dialect:?}");
        bob.send_text(&room_id, &format!("rb{i}"), &reply2).unwrap();
        let seen = p.run(
            wait,
            |e| matches!(e, Seen::Message { body, .. } if *body == reply2),
        );
        assert!(seen.iter().any(|e| matches!(
            e,
            Seen::Message { sender, body, .. } if sender == "@bob:localhost" && *body == reply2
        )));
        let s = p.link.stats();
        println!(
            "{dialect:?}: {} datagrams up, {} down, UART {} B to the modem / {} B from it, \
             {} connects, {} losses, {} transmit errors",
            s.datagrams_sent,
            s.datagrams_received,
            s.uart_tx_bytes,
            s.uart_rx_bytes,
            s.connects,
            s.losses,
            p.tx_errors
        );
        assert_eq!((s.connects, s.losses), (2, 1));
        assert_eq!(s.datagrams_dropped, 0);
    }
}
