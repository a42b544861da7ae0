//! A plain MSC3079 client — CoAP + CBOR, no Noise — built on a real CoAP implementation
//! (aiocoap) reaches a real Synapse through the `trickle gateway` binary's plain-profile UDP
//! port: path enum `9`, Content-Format 60, CBOR enum version 1 (option 257), the access token in
//! option 256 and then reused from stickiness. Fails (never skips) if Synapse, the gateway or
//! aiocoap can't run.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use trickle_core::cbor::{Limits, Table, json_to_cbor};
use trickle_tests::synapse::{Synapse, python};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn aiocoap_msc3079_client_reaches_synapse_through_the_gateway() {
    let synapse = Synapse::start().expect("Synapse must start for this test");
    let alice = synapse.user("alice", "alice-plain-pw").unwrap();
    let room_id = alice
        .create_room(&json!({"preset": "public_chat"}))
        .unwrap();

    // A free UDP port for the gateway's plain profile.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("trickle-plain-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gateway = Kill(
        Command::new(trickle_tests::trickle_bin().expect("the trickle binary"))
            .args(["gateway", "--homeserver", &synapse.base_url(), "--data-dir"])
            .arg(dir.join("data"))
            .args(["--udp-plain", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting trickle gateway"),
    );
    // The gateway binds at start; give it a moment, bounded.
    let end = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < end, "gateway did not bind its UDP port");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut cbor = [0u8; 128];
    let body = json!({"msgtype": "m.text", "body": "Hello from aiocoap"}).to_string();
    let n = json_to_cbor(
        body.as_bytes(),
        &Table::MSC3079_V1,
        &Limits::DEFAULT,
        &mut cbor,
    )
    .unwrap();
    let hex: String = cbor[..n].iter().map(|b| format!("{b:02x}")).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/msc3079_send.py");
    let out = Command::new(python().expect("the venv's Python (TRICKLE_PYTHON)"))
        .args([
            script,
            &port.to_string(),
            &room_id,
            "plain-1",
            &alice.access_token,
            &hex,
        ])
        .output()
        .expect("running the aiocoap client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aiocoap client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bodies: Vec<String> = alice
        .messages(&room_id, 20)
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        bodies.iter().filter(|b| *b == "Hello from aiocoap").count(),
        2,
        "both PUTs (token in option 256, then sticky) reached Synapse once each: {bodies:?}"
    );
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}
