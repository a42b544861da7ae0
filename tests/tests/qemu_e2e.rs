//! The device client as real firmware on an emulated Cortex-M3: `boards/trickle-firmware`
//! (release, `thumbv7m-none-eabi`) runs in `qemu-system-arm -M lm3s6965evb`; its UART0 is a TCP
//! server socket that the real `trickle gateway` binary connects to (`--tcp-connect`); the
//! gateway talks to a real Synapse. The firmware reads its account, room and entropy seed from a
//! host file through semihosting, logs in, joins, subscribes and sends "Hello"; a second user
//! replies over plain HTTP and the firmware must print the reply and exit with code 0.
//!
//! Fails (never skips) if `qemu-system-arm`, the firmware build, Synapse or the gateway can't
//! run. `TRICKLE_FIRMWARE_ELF` selects a prebuilt firmware image instead of building it;
//! `TRICKLE_STACK_REPORT` names a file that receives the firmware's measured stack high-water
//! mark in bytes (read by `cargo xtask size`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::json;
use trickle_tests::synapse::Synapse;

const ALICE_PW: &str = "alice-firmware-pw";
const BOB_PW: &str = "bob-http-pw";
/// Emulator start to "Hello" delivered: login (XX), join, subscribe, send.
const HELLO_TIMEOUT: Duration = Duration::from_secs(90);
/// Bob's reply to the firmware's "received" line.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A child process stopped by PID when dropped (SIGTERM, then waited for).
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn target_dir() -> PathBuf {
    // .../target/debug/deps/qemu_e2e-HASH → .../target
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn trickle_bin() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "trickle-cli", "--bin", "trickle"])
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building the trickle binary");
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("trickle")
}

/// The firmware image: `TRICKLE_FIRMWARE_ELF`, or a release build for `thumbv7m-none-eabi`
/// (own workspace under `boards/`, target directory `target/firmware`).
fn firmware_elf() -> PathBuf {
    if let Some(path) = std::env::var_os("TRICKLE_FIRMWARE_ELF") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TRICKLE_FIRMWARE_ELF={} does not exist",
            path.display()
        );
        return path;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards/trickle-firmware");
    let target = target_dir().join("firmware");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "thumbv7m-none-eabi",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("running cargo build for the firmware");
    assert!(
        status.success(),
        "building the firmware failed (is the thumbv7m-none-eabi target installed? \
         `cargo xtask setup` installs it)"
    );
    target.join("thumbv7m-none-eabi/release/trickle-firmware")
}

fn require_qemu() {
    let ok = Command::new("qemu-system-arm")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "qemu-system-arm is missing: this test needs it (Debian package qemu-system-arm; \
         `cargo xtask setup` installs it)"
    );
}

/// Lines the firmware printed through semihosting, as they arrive.
struct Console {
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Console {
    /// Waits for a line starting with `prefix`; fails on "FAILED"/"PANIC" or after `limit`.
    fn wait_for(&mut self, prefix: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("firmware: {line}");
                    self.seen.push(line.clone());
                    assert!(
                        !line.starts_with("FAILED") && !line.starts_with("PANIC"),
                        "firmware failed: {:?}",
                        self.seen
                    );
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "firmware did not print {prefix:?} within {limit:?}; it printed {:?}",
                    self.seen
                ),
            }
        }
    }
}

#[test]
fn firmware_on_emulated_cortex_m3_sends_hello_and_receives_a_reply() {
    require_qemu();
    let elf = firmware_elf();
    let bin = trickle_bin();
    let synapse = Synapse::start().expect("Synapse must start for this test");
    synapse.register_user("alice", ALICE_PW).unwrap();
    let bob = synapse.user("bob", BOB_PW).unwrap();
    let room_id = bob
        .create_room(&json!({"room_alias_name": "lobby", "preset": "public_chat"}))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    // The firmware's configuration, read through semihosting from QEMU's working directory.
    let seed: String = (0..32u8)
        .map(|i| format!("{:02x}", i.wrapping_mul(37).wrapping_add(11)))
        .collect();
    std::fs::write(
        dir.path().join("trickle-firmware.cfg"),
        format!(
            "user=alice\npassword={ALICE_PW}\nroom=#lobby:localhost\nmessage=Hello\nseed={seed}\n"
        ),
    )
    .unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // QEMU waits for the gateway to connect before it starts the CPU (`server=on,wait=on`).
    let mut qemu = Kill(
        Command::new("qemu-system-arm")
            .args(["-M", "lm3s6965evb", "-display", "none", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-kernel")
            .arg(&elf)
            .arg("-serial")
            .arg(format!("tcp:127.0.0.1:{port},server=on,wait=on"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting qemu-system-arm"),
    );
    let (tx, lines) = channel();
    let stdout = qemu.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut console = Console {
        lines,
        seen: Vec::new(),
    };

    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "homeserver = \"{}\"\ndata_dir = \"{}\"\nbitrate = 115200\nsync_timeout_ms = 1000\n\
             tcp_connect = \"127.0.0.1:{port}\"\n",
            synapse.base_url(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let _gateway = Kill(
        Command::new(&bin)
            .arg("gateway")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting trickle gateway"),
    );

    console.wait_for("logged in: @alice:localhost", HELLO_TIMEOUT);
    let joined = console.wait_for("joined: ", HELLO_TIMEOUT);
    assert_eq!(joined, format!("joined: {room_id}"));
    console.wait_for("delivered: Hello", HELLO_TIMEOUT);
    let hellos = bob
        .messages(&room_id, 20)
        .unwrap()
        .iter()
        .filter(|e| e["sender"] == "@alice:localhost" && e["content"]["body"] == "Hello")
        .count();
    assert_eq!(
        hellos, 1,
        "Synapse has the firmware's \"Hello\" exactly once"
    );

    bob.send_text(&room_id, "bob-1", "Hi from Bob").unwrap();
    let received = console.wait_for("received: ", REPLY_TIMEOUT);
    assert_eq!(received, "received: Hi from Bob from @bob:localhost");
    let stack = console.wait_for("stack high-water: ", Duration::from_secs(10));

    // The firmware exits through semihosting with its status.
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = qemu.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "QEMU did not exit after the scenario");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "firmware exit status {status}");

    let bytes: u32 = stack
        .trim_start_matches("stack high-water: ")
        .trim_end_matches(" bytes")
        .parse()
        .expect("stack high-water mark in bytes");
    assert!(bytes > 0);
    eprintln!("firmware stack high-water mark: {bytes} bytes");
    if let Some(path) = std::env::var_os("TRICKLE_STACK_REPORT") {
        let path = std::path::PathBuf::from(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("creating the stack report's directory");
        }
        std::fs::write(&path, format!("{bytes}\n"))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
