//! Interop of Trickle's CoAP codec with a real CoAP implementation (aiocoap 0.4.17), both ways,
//! over UDP on 127.0.0.1 with ephemeral ports.
//!
//! The Python peer runs from `TRICKLE_PYTHON` (set by `cargo xtask test`), else
//! `<repo>/.venv/bin/python`. If it cannot run, the tests FAIL with instructions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use trickle_core::wire::coap::{
    Block, CoapOption, Code, Kind, Message, OptionNumber, Repr, observe,
};
use trickle_core::wire::paths::{CoapPath, Table};

const TIMEOUT: Duration = Duration::from_secs(10);

/// {"body": "hi", "msgtype": "m.text"} in CBOR.
const CBOR_BODY: &[u8] = &[
    0xa2, 0x64, b'b', b'o', b'd', b'y', 0x62, b'h', b'i', 0x67, b'm', b's', b'g', b't', b'y', b'p',
    b'e', 0x66, b'm', b'.', b't', b'e', b'x', b't',
];
/// {"event_id": "$ev1:example.org"} in CBOR.
const RESPONSE_CBOR: &[u8] = b"\xa1\x68event_id\x70$ev1:example.org";
const AUTH: &[u8] = b"syt_dGVzdA_abcdefghij0123";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn python() -> PathBuf {
    let p = std::env::var_os("TRICKLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "CoAP interop peer missing: {} does not exist. Run `cargo xtask test`, or create it: \
         `python3 -m venv .venv && .venv/bin/pip install aiocoap==0.4.17` (or set TRICKLE_PYTHON)",
        p.display()
    );
    let ok = Command::new(&p)
        .args([
            "-c",
            "import sys, aiocoap.meta; sys.exit(0 if aiocoap.meta.version == '0.4.17' else 3)",
        ])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", p.display()));
    assert!(
        ok.success(),
        "{} cannot import aiocoap 0.4.17 (exit {ok}); run `{} -m pip install aiocoap==0.4.17`",
        p.display(),
        p.display()
    );
    p
}

fn peer_script(name: &str) -> PathBuf {
    repo_root().join("tests/peers").join(name)
}

/// Kills the child by its PID when dropped (also when a test fails).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command with piped stdio and a deadline; kills it (by PID) on timeout or panic.
fn run(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> (ExitStatus, Vec<u8>, String) {
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut guard = ChildGuard(child);
    let mut input = guard.0.stdin.take().expect("stdin piped");
    if let Some(bytes) = stdin {
        input.write_all(bytes).expect("write stdin");
    }
    drop(input);
    let mut out = guard.0.stdout.take().expect("stdout piped");
    let mut err = guard.0.stderr.take().expect("stderr piped");
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = guard.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "{cmd:?} did not finish within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        out_thread.join().unwrap(),
        err_thread.join().unwrap(),
    )
}

fn start_server() -> (ChildGuard, SocketAddr) {
    let child = Command::new(python())
        .arg(peer_script("aiocoap_server.py"))
        .args(["--lifetime", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn aiocoap server");
    let mut guard = ChildGuard(child);
    let stdout = guard.0.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("aiocoap server did not print its port within 30 s");
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected server output {line:?}"));
    (guard, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A CoAP client endpoint built on the codec.
struct Client {
    sock: UdpSocket,
    peer: SocketAddr,
    mid: u16,
    token: u8,
}

impl Client {
    fn new(peer: SocketAddr) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            sock,
            peer,
            mid: 0x1000,
            token: 0,
        }
    }

    fn next_ids(&mut self) -> (u16, [u8; 2]) {
        self.mid = self.mid.wrapping_add(1);
        self.token = self.token.wrapping_add(1);
        (self.mid, [0xa5, self.token])
    }

    fn send(&self, repr: &Repr<'_>) {
        let mut buf = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(n, buf.len());
        self.sock.send_to(&buf, self.peer).unwrap();
    }

    /// Receives the next response carrying `token`; acknowledges confirmable ones.
    fn recv_response(&self, token: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok((n, from)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            assert_eq!(from, self.peer);
            let bytes = buf[..n].to_vec();
            let (kind, mid, is_ours) = {
                let repr = Repr::parse_bytes(&bytes).unwrap_or_else(|e| {
                    panic!("aiocoap sent bytes we cannot parse ({e}): {bytes:02x?}")
                });
                (
                    repr.kind,
                    repr.message_id,
                    repr.code.is_response() && repr.token == token,
                )
            };
            if kind == Kind::Confirmable {
                self.send(&Repr::new(Kind::Acknowledgement, Code::EMPTY, mid, &[]));
            }
            if is_ours {
                return bytes;
            }
        }
        panic!("no response from aiocoap within {TIMEOUT:?}");
    }

    /// Sends a CON request with these options and payload; returns the response bytes.
    fn request(&mut self, code: Code, options: &[CoapOption<'_>], payload: &[u8]) -> Vec<u8> {
        let (mid, token) = self.next_ids();
        let mut repr = Repr::new(Kind::Confirmable, code, mid, &token);
        for o in options {
            repr.push_option(*o).unwrap();
        }
        repr.payload = payload;
        self.send(&repr);
        let rsp = self.recv_response(&token);
        let (kind, rsp_mid) = {
            let parsed = Repr::parse_bytes(&rsp).unwrap();
            (parsed.kind, parsed.message_id)
        };
        if kind == Kind::Acknowledgement {
            assert_eq!(rsp_mid, mid, "piggybacked response echoes the MID");
        }
        rsp
    }
}

impl Client {
    /// GETs a resource block by block (Block2 with `szx`) until M is clear; checks each
    /// block's number, size and offset. Returns the body and the number of blocks.
    fn get_blockwise(&mut self, path: &[CoapOption<'_>], szx: u8) -> (Vec<u8>, u32) {
        let mut body = Vec::new();
        let mut num = 0;
        loop {
            let block = Block {
                num,
                more: false,
                szx,
            };
            let mut opts = path.to_vec();
            opts.push(block.option(OptionNumber::BLOCK2).unwrap());
            let rsp = self.request(Code::GET, &opts, &[]);
            let r = Repr::parse_bytes(&rsp).unwrap();
            assert_eq!(r.code, Code::CONTENT);
            let b = Block::decode(r.option(OptionNumber::BLOCK2).expect("Block2").value()).unwrap();
            assert_eq!((b.num, b.szx, b.offset()), (num, szx, body.len()));
            body.extend_from_slice(r.payload);
            if !b.more {
                return (body, num + 1);
            }
            assert_eq!(r.payload.len(), b.size());
            num += 1;
            assert!(num < 1000, "too many blocks");
        }
    }
}

/// The Observe sequence number of a response.
fn observe_seq(r: &Repr<'_>) -> u32 {
    observe::decode(r.option(OptionNumber::OBSERVE).expect("Observe").value()).unwrap()
}

/// The Uri-Path / Uri-Query options of an HTTP target, compressed with trickle-v1.
fn compressed<'a>(target: &'a str, scratch: &'a mut [u8]) -> Vec<CoapOption<'a>> {
    path_options(&CoapPath::from_http(target, Table::TrickleV1, scratch).unwrap())
}

/// The Uri-Path / Uri-Query options of a path.
fn path_options<'a>(p: &CoapPath<'a>) -> Vec<CoapOption<'a>> {
    let mut r = Repr::new(Kind::Confirmable, Code::GET, 0, &[]);
    p.push_to_repr(&mut r).unwrap();
    r.options.to_vec()
}

fn uri_path(segment: &str) -> CoapOption<'_> {
    CoapOption::str(OptionNumber::URI_PATH, segment)
}

/// The options this side understands (RFC 7252 §5.4.1 critical-option check).
const KNOWN: &[OptionNumber] = &[
    OptionNumber::IF_MATCH,
    OptionNumber::URI_HOST,
    OptionNumber::ETAG,
    OptionNumber::IF_NONE_MATCH,
    OptionNumber::OBSERVE,
    OptionNumber::URI_PORT,
    OptionNumber::URI_PATH,
    OptionNumber::CONTENT_FORMAT,
    OptionNumber::MAX_AGE,
    OptionNumber::URI_QUERY,
    OptionNumber::ACCEPT,
    OptionNumber::BLOCK2,
    OptionNumber::BLOCK1,
    OptionNumber::SIZE2,
    OptionNumber::SIZE1,
    OptionNumber::AUTHORIZATION,
    OptionNumber::CBOR_ENUM_VERSION,
];

fn text_payload(bytes: &[u8]) -> String {
    let r = Repr::parse_bytes(bytes).unwrap();
    String::from_utf8(r.payload.to_vec()).unwrap()
}

#[test]
fn trickle_client_against_aiocoap_server() {
    let (_server, addr) = start_server();
    let mut c = Client::new(addr);

    // 1. GET with an MSC3079 code path and query items, compressed from the HTTP form.
    let mut scratch = [0u8; 64];
    let sync = compressed("/_matrix/client/v3/sync?since=s1&timeout=0", &mut scratch);
    let rsp = c.request(Code::GET, &sync, &[]);
    let r = Repr::parse_bytes(&rsp).unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(r.payload, b"sync since=s1 timeout=0");
    assert_eq!(
        r.option(OptionNumber::CONTENT_FORMAT).unwrap().value_uint(),
        Ok(0)
    );

    // An uncompressed path with percent-encoded characters reaches aiocoap decoded.
    let mut scratch = [0u8; 64];
    let aliases = compressed(
        "/_matrix/client/v3/rooms/%21r%3Aex%2Fy/aliases",
        &mut scratch,
    );
    let rsp = c.request(Code::GET, &aliases, &[]);
    assert_eq!(
        text_payload(&rsp),
        "_matrix|client|v3|rooms|!r:ex/y|aliases"
    );

    // 2. PUT /9/{room}/{type}/{txn} with Content-Format 60 and a CBOR body.
    let mut scratch = [0u8; 64];
    let send = compressed(
        "/_matrix/client/v3/rooms/!room:example.org/send/m.room.message/txn1",
        &mut scratch,
    );
    assert_eq!(send[0], uri_path("9"));
    let mut opts = send;
    opts.push(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 60));
    let rsp = c.request(Code::PUT, &opts, CBOR_BODY);
    let r = Repr::parse_bytes(&rsp).unwrap();
    assert_eq!(
        r.code,
        Code::CHANGED,
        "{:?}",
        String::from_utf8_lossy(r.payload)
    );
    assert_eq!(
        r.option(OptionNumber::CONTENT_FORMAT).unwrap().value_uint(),
        Ok(60)
    );
    assert_eq!(r.payload, RESPONSE_CBOR);

    // 3. Extended forms: option 256 (delta 13-form) with a 25-byte value (length 13-form),
    //    option 2048 (delta 14-form) with a 300-byte value (length 14-form).
    let x300 = [b'x'; 300];
    let opts = [
        uri_path("ext"),
        CoapOption::new(OptionNumber::AUTHORIZATION, AUTH),
        CoapOption::new(OptionNumber(2048), &x300),
    ];
    let rsp = c.request(Code::GET, &opts, &[]);
    assert_eq!(
        text_payload(&rsp),
        format!("auth={};x=300", std::str::from_utf8(AUTH).unwrap())
    );

    // 4. Observe registration, first response and one notification.
    let (mid, token) = c.next_ids();
    let mut reg = Repr::new(Kind::Confirmable, Code::GET, mid, &token);
    reg.push_option(uri_path("obs")).unwrap();
    reg.push_option(observe::option(observe::REGISTER).unwrap())
        .unwrap();
    c.send(&reg);
    let first = c.recv_response(&token);
    let first = Repr::parse_bytes(&first).unwrap();
    assert_eq!(first.payload, b"n=0");
    let seq0 = observe_seq(&first);
    let note = c.recv_response(&token);
    let note = Repr::parse_bytes(&note).unwrap();
    assert_eq!(note.payload, b"n=1");
    let seq1 = observe_seq(&note);
    assert!(seq1 > seq0, "observe sequence {seq0} then {seq1}");
    // Deregister (RFC 7641 §3.6): GET with Observe 1.
    let opts = [
        uri_path("obs"),
        observe::option(observe::DEREGISTER).unwrap(),
    ];
    let rsp = c.request(Code::GET, &opts, &[]);
    assert_eq!(Repr::parse_bytes(&rsp).unwrap().code, Code::CONTENT);

    // 5. Block2: fetch a 2000-byte body in 64-byte blocks (SZX 2).
    let expected: Vec<u8> = (0..2000u32)
        .map(|i| ((i * 7 + i / 256) & 0xff) as u8)
        .collect();
    let (body, blocks) = c.get_blockwise(&[uri_path("large")], 2);
    assert_eq!(blocks, 32);
    assert_eq!(body, expected);

    // 6. A response carrying an unknown critical option is rejected (RFC 7252 §5.4.1).
    let rsp = c.request(Code::GET, &[uri_path("crit")], &[]);
    let r = Repr::parse_bytes(&rsp).unwrap();
    assert_eq!(
        r.first_unrecognized_critical(KNOWN),
        Some(OptionNumber(2049))
    );
    assert_eq!(r.first_unrecognized_critical(&[OptionNumber(2049)]), None);
}

/// The large body the responder serves in blocks.
fn large_body() -> Vec<u8> {
    (0..3000u32)
        .map(|i| ((i * 13 + i / 256) & 0xff) as u8)
        .collect()
}

/// Answers one request into `out`; returns the length and whether an Observe registration
/// was accepted.
fn answer(req: &Repr<'_>, body: &[u8], out: &mut [u8]) -> Result<(usize, bool), String> {
    let kind = if req.kind == Kind::Confirmable {
        Kind::Acknowledgement
    } else {
        Kind::NonConfirmable
    };
    let payload_buf: String;
    let mut rsp = Repr::new(kind, Code::CONTENT, req.message_id, req.token);
    let mut observing = false;
    if req.first_unrecognized_critical(KNOWN).is_some() {
        rsp.code = Code::BAD_OPTION;
        rsp.payload = b"unrecognized critical option";
    } else {
        let path = CoapPath::from_repr(req).map_err(|e| e.to_string())?;
        let segs: Vec<&str> = path.segments.iter().copied().collect();
        match (req.code, segs.as_slice()) {
            (Code::GET, ["7"]) => {
                let q: Vec<&str> = path.queries.iter().copied().collect();
                payload_buf = format!("sync {}", q.join(" "));
                rsp.payload = payload_buf.as_bytes();
                rsp.push_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0))
                    .unwrap();
            }
            (Code::PUT, ["9", room, ty, txn]) => {
                let cf = req
                    .option(OptionNumber::CONTENT_FORMAT)
                    .map(|o| o.value_uint());
                if (*room, *ty, *txn) != ("!room:example.org", "m.room.message", "txn1")
                    || cf != Some(Ok(60))
                    || req.payload != CBOR_BODY
                {
                    rsp.code = Code::BAD_REQUEST;
                } else {
                    rsp.code = Code::CHANGED;
                    rsp.push_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 60))
                        .unwrap();
                    rsp.payload = RESPONSE_CBOR;
                }
            }
            (Code::GET, ["ext"]) => {
                let auth = req
                    .option(OptionNumber::AUTHORIZATION)
                    .map(|o| o.value())
                    .unwrap_or(b"");
                let x: usize = req
                    .options_of(OptionNumber(2048))
                    .map(|o| o.value().len())
                    .sum();
                payload_buf = format!("auth={};x={x}", String::from_utf8_lossy(auth));
                rsp.payload = payload_buf.as_bytes();
            }
            (Code::GET, ["obs"]) => {
                let obs = req
                    .option(OptionNumber::OBSERVE)
                    .map(|o| observe::decode(o.value()));
                if obs == Some(Ok(observe::REGISTER)) {
                    rsp.push_option(observe::option(5).unwrap()).unwrap();
                    observing = true;
                }
                rsp.payload = b"n=0";
            }
            (Code::GET, ["large"]) => {
                let want = match req.option(OptionNumber::BLOCK2) {
                    Some(o) => Block::decode(o.value()).map_err(|e| e.to_string())?,
                    None => Block {
                        num: 0,
                        more: false,
                        szx: 4,
                    },
                };
                let start = want.offset().min(body.len());
                let end = (start + want.size()).min(body.len());
                let block = Block {
                    num: want.num,
                    more: end < body.len(),
                    szx: want.szx,
                };
                rsp.push_option(block.option(OptionNumber::BLOCK2).unwrap())
                    .unwrap();
                if want.num == 0 {
                    rsp.push_option(CoapOption::uint(OptionNumber::SIZE2, body.len() as u32))
                        .unwrap();
                }
                rsp.payload = &body[start..end];
            }
            _ => rsp.code = Code::NOT_FOUND,
        }
    }
    let n = rsp.emit(out).map_err(|e| e.to_string())?;
    Ok((n, observing))
}

/// A UDP responder built from the codec, on its own thread; stops when dropped.
struct Responder {
    port: u16,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Result<u32, String>>>,
}

impl Responder {
    fn spawn() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || -> Result<u32, String> {
            let body = large_body();
            let mut buf = [0u8; 2048];
            let mut out = [0u8; 2048];
            let mut answered = 0u32;
            let mut mid = 0x4000u16;
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let msg = Message::new_checked(&buf[..n]);
                let req = match msg.as_ref().map(Repr::parse) {
                    Ok(Ok(r)) => r,
                    other => return Err(format!("cannot parse {:02x?}: {other:?}", &buf[..n])),
                };
                if !req.code.is_request() {
                    continue; // ACK / RST from the client
                }
                let (len, observing) = answer(&req, &body, &mut out)?;
                sock.send_to(&out[..len], from).map_err(|e| e.to_string())?;
                answered += 1;
                if observing {
                    // One notification, non-confirmable, a little later.
                    std::thread::sleep(Duration::from_millis(100));
                    mid = mid.wrapping_add(1);
                    let mut note = Repr::new(Kind::NonConfirmable, Code::CONTENT, mid, req.token);
                    note.push_option(observe::option(6).unwrap()).unwrap();
                    note.payload = b"n=1";
                    let len = note.emit(&mut out).map_err(|e| e.to_string())?;
                    sock.send_to(&out[..len], from).map_err(|e| e.to_string())?;
                }
            }
            Ok(answered)
        });
        Self {
            port,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the responder; returns how many requests it answered.
    fn finish(mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().expect("joined once");
        handle.join().expect("responder thread").expect("responder")
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn aiocoap_client_against_trickle_responder() {
    let responder = Responder::spawn();
    let port = responder.port;
    let mut cmd = Command::new(python());
    cmd.arg(peer_script("aiocoap_client.py"))
        .arg(port.to_string());
    let (status, stdout, stderr) = run(cmd, None, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&stdout);
    let answered = responder.finish();
    assert!(
        status.success(),
        "aiocoap client failed ({status}):\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.trim(), "OK");
    // sync, send, ext, critical, obs, large blocks (3000 B / 256 B = 12) at least.
    assert!(answered >= 5 + 12, "only {answered} requests answered");
}

/// A libcoap program (Debian `libcoap3-bin`), or a failure with instructions.
fn libcoap(program: &str) -> Command {
    let ok = Command::new(program)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "CoAP interop peer missing: `{program}` cannot run. Run `cargo xtask test`, or \
         `apt-get install -y libcoap3-bin`"
    );
    Command::new(program)
}

fn coap_client(args: &[&str], stdin: Option<&[u8]>) -> (ExitStatus, Vec<u8>, String) {
    let mut cmd = libcoap("coap-client-notls");
    cmd.args(["-B", "10"]).args(args);
    run(cmd, stdin, Duration::from_secs(30))
}

/// Output file for `coap-client -o` (it appends a newline on stdout, not in files).
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir();
        Self(dir.join(format!("trickle-coap-{}-{name}", std::process::id())))
    }

    fn read(&self) -> Vec<u8> {
        std::fs::read(&self.0).unwrap_or_else(|e| panic!("{}: {e}", self.0.display()))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn libcoap_client_against_trickle_responder() {
    let responder = Responder::spawn();
    let base = format!("coap://127.0.0.1:{}", responder.port);
    let get = |path: &str, extra: &[&str], name: &str| -> Vec<u8> {
        let out = TempFile::new(name);
        let url = format!("{base}{path}");
        let mut args = vec!["-o", out.0.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&url);
        let (status, _, stderr) = coap_client(&args, None);
        assert!(status.success(), "coap-client {args:?}: {status} {stderr}");
        out.read()
    };

    // MSC3079 code path with query items.
    assert_eq!(
        get("/7?since=s1&timeout=0", &[], "sync"),
        b"sync since=s1 timeout=0"
    );

    // PUT CBOR to /9/{room}/{type}/{txn}; the room ID is percent-encoded in the URI and
    // arrives decoded in the Uri-Path option.
    let out = TempFile::new("send");
    let url = format!("{base}/9/%21room%3Aexample.org/m.room.message/txn1");
    let (status, _, stderr) = coap_client(
        &[
            "-m",
            "put",
            "-t",
            "60",
            "-f",
            "-",
            "-o",
            out.0.to_str().unwrap(),
            &url,
        ],
        Some(CBOR_BODY),
    );
    assert!(status.success(), "{status} {stderr}");
    assert_eq!(out.read(), RESPONSE_CBOR);

    // Extended forms: option 256 with 25 bytes, option 2048 with 300 bytes.
    let auth = format!("256,{}", std::str::from_utf8(AUTH).unwrap());
    let x300 = format!("2048,{}", "x".repeat(300));
    assert_eq!(
        get("/ext", &["-O", &auth, "-O", &x300], "ext"),
        format!("auth={};x=300", std::str::from_utf8(AUTH).unwrap()).as_bytes()
    );

    // An unknown critical option: 4.02 Bad Option.
    let (_, _, stderr) = coap_client(&["-O", "2049,x", &format!("{base}/7")], None);
    assert!(stderr.contains("4.02"), "expected 4.02, got: {stderr}");

    // Block2 in 64-byte blocks, reassembled by libcoap.
    assert_eq!(get("/large", &["-b", "64"], "large"), large_body());

    // Observe for 1 s: the first response and our one notification.
    assert_eq!(get("/obs", &["-s", "1"], "obs"), b"n=0n=1");

    let answered = responder.finish();
    // sync, send, ext, crit, 47 blocks of 64 B, obs.
    assert!(answered >= 52, "only {answered} requests answered");
}

/// Starts `coap-server-notls` on a free port; waits until it answers a CoAP ping.
fn start_libcoap_server() -> (ChildGuard, SocketAddr) {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = libcoap("coap-server-notls")
        .args(["-A", "127.0.0.1", "-p", &port.to_string(), "-v", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn coap-server-notls");
    let guard = ChildGuard(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let ping = [0x40, 0x00, 0x12, 0x34];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 64];
    loop {
        assert!(
            Instant::now() < deadline,
            "coap-server-notls did not answer a ping"
        );
        sock.send_to(&ping, addr).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let r = Repr::parse_bytes(&buf[..n]).expect("libcoap's pong parses");
            assert_eq!(
                (r.kind, r.code, r.message_id),
                (Kind::Reset, Code::EMPTY, 0x1234)
            );
            return (guard, addr);
        }
    }
}

#[test]
fn trickle_client_against_libcoap_server() {
    let (_server, addr) = start_libcoap_server();
    let mut c = Client::new(addr);

    // GET / in 16-byte blocks (SZX 0).
    let (body, blocks) = c.get_blockwise(&[], 0);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with("This is a test server made with libcoap"),
        "{text:?}"
    );
    assert!(blocks >= 5, "only {blocks} blocks");

    // PUT CBOR to /example_data (Content-Format 60, with a 25-byte Authorization option libcoap
    // must skip), observe it, PUT again and get a notification with the new body.
    let mut writer = Client::new(addr);
    writer.mid = 0x2000;
    let mut put = |body: &[u8]| {
        let opts = [
            uri_path("example_data"),
            CoapOption::uint(OptionNumber::CONTENT_FORMAT, 60),
            CoapOption::new(OptionNumber::AUTHORIZATION, AUTH),
        ];
        let rsp = writer.request(Code::PUT, &opts, body);
        let code = Repr::parse_bytes(&rsp).unwrap().code;
        assert!(
            code == Code::CHANGED || code == Code::CREATED,
            "PUT answered {code}"
        );
    };
    put(CBOR_BODY);

    let (mid, token) = c.next_ids();
    let mut reg = Repr::new(Kind::Confirmable, Code::GET, mid, &token);
    reg.push_option(uri_path("example_data")).unwrap();
    reg.push_option(observe::option(observe::REGISTER).unwrap())
        .unwrap();
    c.send(&reg);
    let first = c.recv_response(&token);
    let first = Repr::parse_bytes(&first).unwrap();
    assert_eq!(first.code, Code::CONTENT);
    assert_eq!(first.payload, CBOR_BODY);
    assert_eq!(
        first
            .option(OptionNumber::CONTENT_FORMAT)
            .unwrap()
            .value_uint(),
        Ok(60)
    );
    let seq0 = observe_seq(&first);

    put(RESPONSE_CBOR);
    let note = c.recv_response(&token);
    let note = Repr::parse_bytes(&note).unwrap();
    assert_eq!(note.payload, RESPONSE_CBOR);
    assert_eq!(
        note.option(OptionNumber::CONTENT_FORMAT)
            .unwrap()
            .value_uint(),
        Ok(60)
    );
    let seq1 = observe_seq(&note);
    assert_ne!(seq0, seq1);

    // libcoap answers an unknown critical option (2049, extended delta form) with 4.02.
    let opts = [CoapOption::new(OptionNumber(2049), b"x")];
    let rsp = c.request(Code::GET, &opts, &[]);
    assert_eq!(Repr::parse_bytes(&rsp).unwrap().code, Code::BAD_OPTION);
}
