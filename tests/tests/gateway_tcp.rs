//! The `trickle gateway` binary's TCP byte-stream links (`--tcp-listen`, `--tcp-connect`), with
//! the byte-stream framing of `trickle_core::wire::serial`: a device's Noise XX first message
//! over TCP is answered with the second; `--tcp-connect` waits for its peer, and reconnects
//! after the peer drops the connection. No homeserver is needed for a handshake.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use trickle_core::noise::pipe::{Config, Initiator, Received};
use trickle_core::noise::storage::RamStorage;
use trickle_core::wire::serial;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn trickle_bin() -> std::path::PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "trickle-cli", "--bin", "trickle"])
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building the trickle binary");
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("trickle")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gateway(dir: &std::path::Path, link: &[&str]) -> Kill {
    Kill(
        Command::new(trickle_bin())
            // Nothing listens there: a handshake never reaches the homeserver.
            .args([
                "gateway",
                "--homeserver",
                "http://127.0.0.1:9",
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .args(link)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting trickle gateway"),
    )
}

/// Sends an XX message 1 from a fresh device and asserts the gateway answers with message 2.
fn handshake_over(stream: &mut TcpStream, seed: u8) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut dev = Initiator::new(RamStorage::<6>::new(), Config::DEVICE, &mut rng).unwrap();
    let mut frame = [0u8; 600];
    let sealed = dev
        .seal(&mut rng, &[0x40, 0x02, 0, 0, 0xb1, b'1'], &mut frame)
        .unwrap();
    assert!(!sealed.carried, "first contact is XX message 1");
    let config = serial::Config {
        crc: serial::Crc::None,
        leading_delimiter: false,
    };
    let mut out = vec![0u8; 1200];
    let n = serial::encode(&frame[..sealed.len], &config, true, &mut out).unwrap();
    stream.write_all(&out[..n]).unwrap();
    let mut dec = serial::Decoder::<2048>::new(serial::Crc::None);
    let mut b = [0u8; 1];
    let reply = loop {
        let got = stream.read(&mut b).expect("a reply within 10 s");
        assert_eq!(got, 1, "gateway closed the stream");
        if let Some(r) = dec.push(b[0]) {
            break r.expect("a well-framed reply").to_vec();
        }
    };
    let mut plain = [0u8; 600];
    assert_eq!(
        dev.open(&reply, &mut plain).unwrap(),
        Received::NeedRequest,
        "XX message 2 from the gateway"
    );
}

#[test]
fn tcp_listen_link_answers_a_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _gw = gateway(dir.path(), &["--tcp-listen", &addr]);
    let end = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect(&addr) {
            break s;
        }
        assert!(Instant::now() < end, "gateway did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    };
    handshake_over(&mut stream, 1);
    // A second connection at the same time is a second device.
    let mut second = TcpStream::connect(&addr).unwrap();
    handshake_over(&mut second, 2);
}

#[test]
fn tcp_connect_link_waits_for_its_peer_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // The gateway starts first: nothing listens yet, it must keep trying.
    let _gw = gateway(dir.path(), &["--tcp-connect", &addr]);
    std::thread::sleep(Duration::from_millis(700));
    let listener = TcpListener::bind(&addr).unwrap();
    let (mut first, _) = listener.accept().expect("the gateway connects");
    handshake_over(&mut first, 3);
    drop(first);
    // The peer went away (an emulator restarted): the gateway connects again.
    let (mut again, _) = listener.accept().expect("the gateway reconnects");
    handshake_over(&mut again, 4);
}
