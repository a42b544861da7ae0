//! The gateway's session layer: Noise pipe responder, per-device state and the Trickle
//! operations of `docs/PROTOCOL.md` ("Trickle operations").
//!
//! [`SessionGateway`] is driven without sockets: the driver hands it every received pipe frame
//! ([`SessionGateway::handle_frame`]) and calls [`SessionGateway::poll`] regularly (at the latest
//! at [`SessionGateway::poll_timeout`]); both return the frames to transmit, each for a
//! connection ID. The homeserver calls are blocking HTTP (the `/sync` long polls of Observe run
//! on one thread per registered device and are fed in through a channel that `poll` drains).
//!
//! Per device (keyed by its Noise static key) the gateway persists in SQLite the bound access
//! token, the introduced aliases and the Observe progress; the pipe persists its own session
//! records in the data directory. A restart loses nothing: a retransmitted send reaches the
//! homeserver with the same transaction ID, and notifications resume after the last ACKed one.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use blake2::{Blake2s256, Digest};
use chacha20::ChaCha20Rng;
use chacha20::rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use tracing::{debug, info, warn};
use trickle_core::noise::pipe::{Config as PipeConfig, PipeError, Received, Responder};
use trickle_core::noise::storage::FileStorage;
use trickle_core::wire::coap::{Block, CoapOption, Code, Kind, OptionNumber, Repr};

use crate::alias::{AliasKind, AliasStore};
use crate::client::{HomeserverClient, HttpRequest, HttpResponse, Method, encode_segment};
use crate::error::{AliasError, UpstreamError};
use crate::sync::{TinyFilterOptions, parse_sync, tiny_filter};
use crate::translate::{
    self, CompactResponse, Dialect, cbor_bytes_to_json, http_to_coap, json_bytes_to_cbor,
};

/// Most sessions the gateway keeps open at once (least recently used is evicted beyond).
pub const MAX_SESSIONS: usize = 64;
/// Pipe frame overhead over the CoAP message: CID byte + Poly1305 tag.
pub const PIPE_OVERHEAD: usize = 17;
/// RFC 7252 MAX_RETRANSMIT.
pub const MAX_RETRANSMIT: u32 = 4;

/// How long a registration whose notification exhausted MAX_RETRANSMIT is kept, waiting for the
/// device to be heard from, before it is removed.
pub const STALL_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// Largest request body reassembled from Block1 blocks.
pub const MAX_UPLOAD: usize = 16 * 1024;
/// Responses remembered per device for retransmitted requests (persisted).
const CACHE_PER_SESSION: usize = 8;

type Pipe = Responder<FileStorage, MAX_SESSIONS>;

/// Link parameters of the session layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Link bit rate in bit/s (for the retransmission timer).
    pub bitrate: u32,
    /// Largest pipe frame the link carries, in bytes (LoRa: 255).
    pub max_frame: usize,
    /// `/sync` long-poll timeout in milliseconds.
    pub sync_timeout_ms: u32,
}

impl Default for SessionConfig {
    /// A 100 bit/s LoRa link (255-byte frames), 30 s long polls.
    fn default() -> Self {
        Self {
            bitrate: 100,
            max_frame: 255,
            sync_timeout_ms: 30_000,
        }
    }
}

impl SessionConfig {
    /// `ACK_TIMEOUT = 2 s + 2 × airtime(max frame)` (ops spec "Timers").
    pub fn ack_timeout(&self) -> Duration {
        let bits = (self.max_frame as u64) * 8 * 2;
        Duration::from_secs(2) + Duration::from_millis(bits * 1000 / u64::from(self.bitrate.max(1)))
    }
}

/// The operation a frame or an HTTP exchange is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Op {
    /// Handshake frames that carry no request.
    Handshake,
    /// `1`: password login.
    Login,
    /// `=`: provisioned token.
    Token,
    /// `L` / `K`: join.
    Join,
    /// `*`: send a message.
    Send,
    /// `+`: Observe registration / deregistration.
    Observe,
    /// Notifications and their ACKs, and the `/sync` polls behind them.
    Notification,
    /// Any other code (generic translation).
    Other,
    /// Frames dropped (authentication failure, malformed, unknown session).
    Rejected,
}

/// Bytes of one operation: on air (pipe frames) and with the homeserver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpBytes {
    /// Frames received from devices.
    pub frames_in: u64,
    /// Bytes of those frames.
    pub air_in: u64,
    /// Frames sent to devices (retransmissions included).
    pub frames_out: u64,
    /// Bytes of those frames.
    pub air_out: u64,
    /// HTTP requests made.
    pub http_requests: u64,
    /// HTTP bytes sent: request line, `Authorization` and `Content-Type` headers, body (other
    /// headers of the HTTP client are not counted).
    pub http_out: u64,
    /// HTTP bytes received: status line and body.
    pub http_in: u64,
}

impl OpBytes {
    fn add(&mut self, o: &OpBytes) {
        self.frames_in += o.frames_in;
        self.air_in += o.air_in;
        self.frames_out += o.frames_out;
        self.air_out += o.air_out;
        self.http_requests += o.http_requests;
        self.http_out += o.http_out;
        self.http_in += o.http_in;
    }
}

/// A frame to put on the link, for the device behind `cid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Connection ID of the session (the driver knows where that device was last heard).
    pub cid: u8,
    /// The pipe frame.
    pub frame: Vec<u8>,
}

/// Failure to open the session layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// The data directory cannot be created or read.
    Io(std::io::Error),
    /// The pipe's key or session records are unusable.
    Pipe(PipeError),
    /// The SQLite database failed.
    Database(AliasError),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Io(e) => write!(f, "data directory: {e}"),
            SessionError::Pipe(e) => write!(f, "Noise pipe storage: {e}"),
            SessionError::Database(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SessionError {}

/// HTTP bytes of one request/response, by the [`OpBytes`] rules.
fn http_bytes(req: &HttpRequest, resp: Option<&HttpResponse>) -> OpBytes {
    let mut out = req.method.as_str().len() + 1 + req.target.len() + " HTTP/1.1\r\n".len();
    if let Some(t) = &req.access_token {
        out += "Authorization: Bearer \r\n".len() + t.len();
    }
    if let Some(b) = &req.body {
        out += "Content-Type: application/json\r\n".len() + b.len();
    }
    OpBytes {
        http_requests: 1,
        http_out: out as u64,
        http_in: resp.map_or(0, |r| "HTTP/1.1 200 OK\r\n".len() + r.body.len()) as u64,
        ..OpBytes::default()
    }
}

fn send_counted(
    client: &HomeserverClient,
    req: &HttpRequest,
) -> (Result<HttpResponse, UpstreamError>, OpBytes) {
    let r = client.send(req);
    let b = http_bytes(req, r.as_ref().ok());
    (r, b)
}

/// The `txnId` of a `*` send: `"t"` + hex of the first 8 bytes of BLAKE2s-256(device key) +
/// `"."` + decimal request counter.
pub fn txn_id(device_key: &[u8; 32], counter: u64) -> String {
    let d = Blake2s256::digest(device_key);
    let mut s = String::from("t");
    for b in d.iter().take(8) {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('.');
    s.push_str(&counter.to_string());
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// --- minimal CBOR for the operation payloads ---------------------------------------------------

fn cbor_head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    match v {
        0..=23 => out.push(m | v as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, v as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// One CBOR item of an operation payload.
#[derive(Debug, PartialEq, Eq)]
enum Item<'a> {
    Uint(u64),
    Text(&'a str),
}

/// Reads a head: (major, value, rest). Indefinite lengths are refused.
fn read_head(b: &[u8]) -> Option<(u8, u64, &[u8])> {
    let (&first, rest) = b.split_first()?;
    let major = first >> 5;
    let info = first & 0x1f;
    let (v, rest) = match info {
        0..=23 => (u64::from(info), rest),
        24 => (u64::from(*rest.first()?), rest.get(1..)?),
        25 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            rest.get(2..)?,
        ),
        26 => (
            u64::from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)),
            rest.get(4..)?,
        ),
        27 => (
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?),
            rest.get(8..)?,
        ),
        _ => return None,
    };
    Some((major, v, rest))
}

fn read_item(b: &[u8]) -> Option<(Item<'_>, &[u8])> {
    let (major, v, rest) = read_head(b)?;
    match major {
        0 => Some((Item::Uint(v), rest)),
        3 => {
            let n = usize::try_from(v).ok()?;
            let s = std::str::from_utf8(rest.get(..n)?).ok()?;
            Some((Item::Text(s), rest.get(n..)?))
        }
        _ => None,
    }
}

/// A CBOR array of 2..=3 uint/text items, nothing after it.
fn read_array(b: &[u8]) -> Option<Vec<Item<'_>>> {
    let (major, n, mut rest) = read_head(b)?;
    if major != 4 || !(1..=4).contains(&n) {
        return None;
    }
    let mut items = Vec::new();
    for _ in 0..n {
        let (item, r) = read_item(rest)?;
        items.push(item);
        rest = r;
    }
    rest.is_empty().then_some(items)
}

// --- Observe state --------------------------------------------------------------------------

/// A message event ready to notify.
#[derive(Debug, Clone)]
struct Event {
    room_id: String,
    sender: String,
    body: String,
    msgtype: String,
}

/// What a `/sync` thread reports.
enum SyncMsg {
    Batch {
        device: String,
        generation: u64,
        /// The `since` this batch was fetched with (`None`: initial sync, events skipped).
        since: Option<String>,
        next_batch: String,
        events: Vec<Event>,
        bytes: OpBytes,
    },
    Failed {
        device: String,
        generation: u64,
        bytes: OpBytes,
    },
}

struct InFlight {
    /// The session the frame was sealed for; a notification sealed for a session the device
    /// has since replaced can never be opened, so it is sealed again for the new one.
    cid: u8,
    /// The device started a new handshake on `cid`: the sealed frame belongs to the old session.
    stale: bool,
    seq: u32,
    mid: u16,
    frame: Vec<u8>,
    introduces: Vec<(AliasKind, u16)>,
    deadline: Instant,
    timeout: Duration,
    retransmits: u32,
    /// MAX_RETRANSMIT went by without an ACK: the device is out of reach. Nothing is sent until
    /// it is heard from again (then the notification goes out at once), or until
    /// [`STALL_LIMIT`] passes (then the registration is removed).
    stalled_since: Option<Instant>,
}

struct Observer {
    token: Vec<u8>,
    generation: u64,
    stop: Arc<AtomicBool>,
    resume: Sender<()>,
    /// `since` of the batch being delivered.
    batch_since: Option<String>,
    batch_next: Option<String>,
    queue: VecDeque<Event>,
    in_flight: Option<InFlight>,
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The gateway's session layer (see the module docs).
pub struct SessionGateway {
    client: HomeserverClient,
    pipe: Pipe,
    db: AliasStore,
    rng: ChaCha20Rng,
    config: SessionConfig,
    cids: HashMap<String, u8>,
    observers: HashMap<String, Observer>,
    generation: u64,
    bytes: HashMap<Op, OpBytes>,
    sync_tx: Sender<SyncMsg>,
    sync_rx: Receiver<SyncMsg>,
    last_rx_cid: Option<u8>,
    /// Per device: the last response too large for one frame (code path, response), served
    /// block by block (Block2).
    blocks: HashMap<String, (Vec<u8>, CompactResponse)>,
    /// Per device: a Block1 request body being received (code path, bytes so far).
    uploads: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for SessionGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGateway")
            .field("sessions", &self.pipe.session_count())
            .field("observers", &self.observers.len())
            .finish_non_exhaustive()
    }
}

impl SessionGateway {
    /// Opens the session layer over `data_dir` (created if needed): `noise/` holds the pipe's
    /// static key and session records, `gateway.sqlite` the device state and aliases. Devices
    /// that were registered for events before a restart get their `/sync` loop back.
    pub fn open(
        data_dir: &Path,
        client: HomeserverClient,
        config: SessionConfig,
    ) -> Result<Self, SessionError> {
        std::fs::create_dir_all(data_dir).map_err(SessionError::Io)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| SessionError::Io(std::io::Error::other(e.to_string())))?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let storage = FileStorage::open(data_dir.join("noise")).map_err(SessionError::Io)?;
        let pipe =
            Responder::new(storage, PipeConfig::GATEWAY, &mut rng).map_err(SessionError::Pipe)?;
        let db =
            AliasStore::open(data_dir.join("gateway.sqlite")).map_err(SessionError::Database)?;
        let (sync_tx, sync_rx) = channel();
        let mut gw = Self {
            client,
            pipe,
            db,
            rng,
            config,
            cids: HashMap::new(),
            observers: HashMap::new(),
            generation: 0,
            bytes: HashMap::new(),
            sync_tx,
            sync_rx,
            last_rx_cid: None,
            blocks: HashMap::new(),
            uploads: HashMap::new(),
        };
        for cid in 1..=u8::MAX {
            let Some(key) = gw.pipe.remote_static(cid) else {
                continue;
            };
            let device = hex(&key);
            gw.cids.insert(device.clone(), cid);
            if let Some(token) = gw.db.device(&device).ok().and_then(|r| r.observe_token) {
                info!(%device, cid, "resuming event delivery after restart");
                gw.start_observer(&device, token);
            }
        }
        Ok(gw)
    }

    /// The connection ID of the last frame [`handle_frame`](Self::handle_frame) accepted as
    /// authentic (`None` if it dropped it): drivers route later frames for that session (e.g.
    /// notifications) to where it came from.
    pub fn last_rx_cid(&self) -> Option<u8> {
        self.last_rx_cid
    }

    /// The gateway's Noise static public key (devices pin it on first contact).
    pub fn public_key(&self) -> [u8; 32] {
        self.pipe.public_key()
    }

    /// Bytes counted for `op` so far.
    pub fn bytes(&self, op: Op) -> OpBytes {
        self.bytes.get(&op).copied().unwrap_or_default()
    }

    /// Sum of all operations.
    pub fn total_bytes(&self) -> OpBytes {
        let mut t = OpBytes::default();
        for b in self.bytes.values() {
            t.add(b);
        }
        t
    }

    /// The per-device database (aliases, bound tokens, progress).
    pub fn db(&self) -> &AliasStore {
        &self.db
    }

    fn count(&mut self, op: Op, b: OpBytes) {
        self.bytes.entry(op).or_default().add(&b);
    }

    fn air_in(&mut self, op: Op, n: usize) {
        self.count(
            op,
            OpBytes {
                frames_in: 1,
                air_in: n as u64,
                ..OpBytes::default()
            },
        );
    }

    fn air_out(&mut self, op: Op, n: usize) {
        self.count(
            op,
            OpBytes {
                frames_out: 1,
                air_out: n as u64,
                ..OpBytes::default()
            },
        );
    }

    /// Processes one frame received from a device; returns the frames to send back. A frame
    /// that fails authentication or parsing is logged and dropped (nothing is sent, nothing
    /// reaches the homeserver).
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Vec<Transmit> {
        self.last_rx_cid = None;
        let mut out = vec![0u8; frame.len().max(512) + 64];
        let received = match self.pipe.open(&mut self.rng, frame, &mut out) {
            Ok(r) => r,
            Err(e) => {
                if e == PipeError::TooOld {
                    if let Some(t) = self.replay_after_restart(frame) {
                        return vec![t];
                    }
                }
                warn!(error = %e, len = frame.len(), "frame dropped");
                self.air_in(Op::Rejected, frame.len());
                return Vec::new();
            }
        };
        match received {
            Received::Handshake { cid, len } => {
                self.last_rx_cid = Some(cid);
                for o in self.observers.values_mut() {
                    if let Some(f) = o.in_flight.as_mut().filter(|f| f.cid == cid) {
                        f.stale = true;
                    }
                }
                self.air_in(Op::Handshake, frame.len());
                self.air_out(Op::Handshake, len);
                debug!(cid, len, "handshake step");
                vec![Transmit {
                    cid,
                    frame: out[..len].to_vec(),
                }]
            }
            Received::NeedRequest => Vec::new(),
            Received::Duplicate { cid, mid, kind } => {
                self.last_rx_cid = Some(cid);
                match self.cached_answer(cid, mid, frame) {
                    Some(t) => vec![t],
                    None => {
                        debug!(cid, mid, ?kind, "duplicate without cached answer ignored");
                        self.air_in(Op::Other, frame.len());
                        Vec::new()
                    }
                }
            }
            Received::Message { cid, len, ticket } => {
                self.last_rx_cid = Some(cid);
                let Some(key) = self.pipe.remote_static(cid) else {
                    return self.answer_unbound_ik(cid, &out[..len], ticket, frame.len());
                };
                let device = hex(&key);
                self.cids.insert(device.clone(), cid);
                self.reseal_if_stale(now, &device, cid);
                let plain = out[..len].to_vec();
                let Ok(req) = Repr::parse_bytes(&plain) else {
                    warn!(cid, "undecodable CoAP message dropped");
                    self.air_in(Op::Rejected, frame.len());
                    return Vec::new();
                };
                let Some(ticket) = ticket else {
                    // ACK or RST: an answer to a notification.
                    self.air_in(Op::Notification, frame.len());
                    return self.on_answer(now, &device, req.kind, req.message_id);
                };
                let counter = ticket.counter();
                let path = req
                    .option(OptionNumber::URI_PATH)
                    .map(|o| o.value().to_vec())
                    .unwrap_or_default();
                let block2 = req
                    .option(OptionNumber::BLOCK2)
                    .and_then(|o| Block::decode(o.value()).ok());
                let stored = match block2 {
                    Some(b) if b.num > 0 => self
                        .blocks
                        .get(&device)
                        .filter(|(p, _)| *p == path)
                        .map(|(_, r)| r.clone()),
                    _ => None,
                };
                let block1 = req
                    .option(OptionNumber::BLOCK1)
                    .and_then(|o| Block::decode(o.value()).ok());
                let mut assembled = Vec::new();
                let mut block1_answer = None;
                let mut early = None;
                if let (Some(b1), None) = (block1, &stored) {
                    let up = self.uploads.entry(device.clone()).or_default();
                    if b1.num == 0 {
                        *up = (path.clone(), Vec::new());
                    }
                    let err = |c, e| CompactResponse::gateway_error(c, e, Dialect::TrickleV1);
                    if up.0 != path || up.1.len() != b1.offset() {
                        self.uploads.remove(&device);
                        early = Some(err(Code::REQUEST_ENTITY_INCOMPLETE, "M_INCOMPLETE"));
                    } else if up.1.len() + req.payload.len() > MAX_UPLOAD {
                        self.uploads.remove(&device);
                        early = Some(err(Code::REQUEST_ENTITY_TOO_LARGE, "M_TOO_LARGE"));
                    } else {
                        up.1.extend_from_slice(req.payload);
                        block1_answer = Some(b1);
                        if b1.more {
                            early = Some(CompactResponse::bare(Code::CONTINUE));
                        } else if let Some((_, body)) = self.uploads.remove(&device) {
                            assembled = body;
                        }
                    }
                }
                let mut full = req.clone();
                if block1.is_some() && early.is_none() {
                    full.options.retain(|o| o.number != OptionNumber::BLOCK1);
                    full.payload = &assembled;
                }
                let http_before = self.total_bytes();
                let (op, resp, observe) = match (stored, early) {
                    // A later block of a stored large response: no homeserver call.
                    (Some(r), _) => (Op::Other, r, None),
                    (None, Some(r)) => (Op::Other, r, None),
                    (None, None) => self.handle_request(&device, &key, &full, counter),
                };
                self.air_in(op, frame.len());
                let (resp, block) = self.fit_frame(&device, path, &req, resp, block2);
                let mut repr = resp.to_repr(&req, 0);
                if let Some(seq) = observe {
                    let _ = repr.push_option(CoapOption::uint(OptionNumber::OBSERVE, seq));
                }
                if let Some(b) = block.and_then(|b| b.option(OptionNumber::BLOCK2).ok()) {
                    let _ = repr.push_option(b);
                }
                if let Some(b) = block1_answer.and_then(|b| b.option(OptionNumber::BLOCK1).ok()) {
                    let _ = repr.push_option(b);
                }
                let mut msg = vec![0u8; repr.buffer_len()];
                let n = repr.emit(&mut msg).unwrap_or(0);
                msg.truncate(n);
                let mut f = vec![0u8; msg.len() + 512];
                let sealed = if req.kind == Kind::Confirmable {
                    self.pipe
                        .seal_reply(&mut self.rng, ticket, &msg, &mut f)
                        .map_err(|e| e.error)
                } else {
                    self.pipe.seal(cid, &msg, &mut f)
                };
                match sealed {
                    Ok(s) => {
                        f.truncate(s.len);
                        self.air_out(op, f.len());
                        let http = self.total_bytes();
                        info!(
                            cid,
                            ?op,
                            code = %resp.code,
                            air_in = frame.len(),
                            air_out = f.len(),
                            http_out = http.http_out - http_before.http_out,
                            http_in = http.http_in - http_before.http_in,
                            "request answered"
                        );
                        if let Err(e) = self.db.cache_response(
                            &device,
                            req.message_id,
                            &Blake2s256::digest(frame),
                            &f,
                            CACHE_PER_SESSION,
                        ) {
                            warn!(error = %e, "response cache");
                        }
                        let mut tx = vec![Transmit { cid, frame: f }];
                        if op == Op::Observe {
                            tx.extend(self.pump(now, &device));
                        }
                        tx
                    }
                    Err(e) => {
                        warn!(cid, error = %e, "response could not be sealed");
                        Vec::new()
                    }
                }
            }
        }
    }

    /// A request on a session whose device key the pipe does not report (no authenticated
    /// static key yet): it cannot be bound to a device, so it is answered 5.03 with Max-Age 0,
    /// which completes a pending handshake; the device repeats the request on the established
    /// session. (`IK` message 1 does authenticate the key, so 0-RTT requests are served.)
    fn answer_unbound_ik(
        &mut self,
        cid: u8,
        plain: &[u8],
        ticket: Option<trickle_core::noise::pipe::ReplyTicket>,
        frame_len: usize,
    ) -> Vec<Transmit> {
        let (Some(ticket), Ok(req)) = (ticket, Repr::parse_bytes(plain)) else {
            warn!(
                cid,
                "message on a session without an authenticated key dropped"
            );
            return Vec::new();
        };
        self.air_in(Op::Handshake, frame_len);
        let resp = CompactResponse {
            code: Code::SERVICE_UNAVAILABLE,
            max_age: Some(0),
            content_format: None,
            payload: Vec::new(),
        };
        let msg = resp.to_bytes(&req, 0);
        let mut f = vec![0u8; msg.len() + 512];
        match self.pipe.seal_reply(&mut self.rng, ticket, &msg, &mut f) {
            Ok(s) => {
                f.truncate(s.len);
                self.air_out(Op::Handshake, f.len());
                info!(
                    cid,
                    "IK request answered 5.03 Max-Age 0: retry on the session"
                );
                vec![Transmit { cid, frame: f }]
            }
            Err(e) => {
                warn!(cid, error = %e.error, "IK answer could not be sealed");
                Vec::new()
            }
        }
    }

    /// The cached response to a byte-identical retransmission of an answered request.
    fn cached_answer(&mut self, cid: u8, mid: u16, frame: &[u8]) -> Option<Transmit> {
        let key = self.pipe.remote_static(cid)?;
        let (digest, f) = self.db.cached_response(&hex(&key), mid).ok().flatten()?;
        if digest.as_slice() != Blake2s256::digest(frame).as_slice() {
            return None;
        }
        info!(cid, mid, "retransmitted request: cached response re-sent");
        self.air_in(Op::Other, frame.len());
        self.air_out(Op::Other, f.len());
        Some(Transmit { cid, frame: f })
    }

    /// A frame the pipe refuses as too old may be a retransmission of a request answered
    /// before a restart (the pipe's replay floor moved past it): if it is byte-identical to a
    /// request whose answer is cached, the answer is re-sent. Nothing else is done with it.
    fn replay_after_restart(&mut self, frame: &[u8]) -> Option<Transmit> {
        let cid = *frame.first()?;
        let mid = u16::from_be_bytes([*frame.get(3)?, *frame.get(4)?]);
        let t = self.cached_answer(cid, mid, frame)?;
        self.last_rx_cid = Some(cid);
        Some(t)
    }

    /// Cuts a response whose frame would exceed the link's frame limit into Block2 blocks
    /// (RFC 7959): returns the block asked for (block 0 unless the request carries Block2) and
    /// its Block2 value, and keeps the whole response for the following block requests.
    fn fit_frame(
        &mut self,
        device: &str,
        path: Vec<u8>,
        req: &Repr<'_>,
        resp: CompactResponse,
        asked: Option<Block>,
    ) -> (CompactResponse, Option<Block>) {
        // Header + token + Content-Format/Max-Age (≤ 8) + Block2 (≤ 4) + payload marker.
        let overhead = PIPE_OVERHEAD + 4 + req.token.len() + 8 + 4 + 1;
        if asked.is_none() && overhead + resp.payload.len() <= self.config.max_frame {
            return (resp, None);
        }
        let room = self.config.max_frame.saturating_sub(overhead);
        let mut szx = (0..=6u8)
            .rev()
            .find(|s| (1usize << (s + 4)) <= room)
            .unwrap_or(0);
        if let Some(b) = asked {
            szx = szx.min(b.szx);
        }
        let num = asked.map_or(0, |b| b.num);
        let size = 1usize << (szx + 4);
        let start = (num as usize).saturating_mul(size);
        if start >= resp.payload.len() && !(start == 0 && resp.payload.is_empty()) {
            return (
                CompactResponse::gateway_error(
                    Code::BAD_OPTION,
                    "M_INVALID_PARAM",
                    Dialect::TrickleV1,
                ),
                None,
            );
        }
        let end = (start + size).min(resp.payload.len());
        let more = end < resp.payload.len();
        let part = CompactResponse {
            payload: resp.payload.get(start..end).unwrap_or_default().to_vec(),
            ..resp.clone()
        };
        if more {
            self.blocks.insert(device.to_owned(), (path, resp));
        } else {
            self.blocks.remove(device);
        }
        (part, Some(Block { num, more, szx }))
    }

    /// Drains `/sync` results and runs the retransmission timers; returns the frames to send.
    /// Call it whenever [`poll_timeout`](Self::poll_timeout) passes, and at least every few
    /// hundred milliseconds while devices are registered (new events arrive from threads).
    pub fn poll(&mut self, now: Instant) -> Vec<Transmit> {
        let mut tx = Vec::new();
        while let Ok(msg) = self.sync_rx.try_recv() {
            tx.extend(self.on_sync(now, msg));
        }
        let devices: Vec<String> = self.observers.keys().cloned().collect();
        for device in devices {
            tx.extend(self.retransmit(now, &device));
            // A queued event with nothing in flight (its frame was dropped for a stale session,
            // or sealing failed): send it now.
            if self
                .observers
                .get(&device)
                .is_some_and(|o| o.in_flight.is_none() && !o.queue.is_empty())
            {
                tx.extend(self.pump(now, &device));
            }
        }
        tx
    }

    /// The earliest retransmission deadline, if a notification is in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.observers
            .values()
            .filter_map(|o| {
                o.in_flight.as_ref().map(|f| match f.stalled_since {
                    Some(since) => since + STALL_LIMIT,
                    None => f.deadline,
                })
            })
            .min()
    }

    /// Whether any notification is in flight or queued, not counting those stalled until their
    /// device is heard from.
    pub fn has_pending_notifications(&self) -> bool {
        self.observers.values().any(|o| match &o.in_flight {
            Some(f) => f.stalled_since.is_none(),
            None => !o.queue.is_empty(),
        })
    }

    fn handle_request(
        &mut self,
        device: &str,
        key: &[u8; 32],
        req: &Repr<'_>,
        counter: u64,
    ) -> (Op, CompactResponse, Option<u32>) {
        let code = req
            .option(OptionNumber::URI_PATH)
            .map(|o| o.value().to_vec())
            .unwrap_or_default();
        let rec = match self.db.device(device) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "device database");
                return (
                    Op::Other,
                    CompactResponse::bare(Code::INTERNAL_SERVER_ERROR),
                    None,
                );
            }
        };
        let token = rec.access_token.clone();
        let err = |code, errcode| CompactResponse::gateway_error(code, errcode, Dialect::TrickleV1);
        match (code.as_slice(), req.code) {
            (b"1", Code::POST) => (Op::Login, self.op_login(device, req), None),
            (b"=", Code::POST) => (Op::Token, self.op_token(device, req), None),
            (b"L" | b"K", Code::POST) => match token {
                Some(t) => (Op::Join, self.op_join(device, req, &t), None),
                None => (Op::Join, err(Code::UNAUTHORIZED, "M_MISSING_TOKEN"), None),
            },
            (b"*", Code::POST) => match (&token, &rec.user_id) {
                (Some(t), Some(_)) => (Op::Send, self.op_send(device, key, req, counter, t), None),
                _ => (Op::Send, err(Code::UNAUTHORIZED, "M_MISSING_TOKEN"), None),
            },
            (b"+", Code::GET) => {
                if token.is_none() {
                    return (
                        Op::Observe,
                        err(Code::UNAUTHORIZED, "M_MISSING_TOKEN"),
                        None,
                    );
                }
                let obs = req
                    .option(OptionNumber::OBSERVE)
                    .and_then(|o| o.value_uint().ok());
                match obs {
                    Some(0) => {
                        if let Err(e) = self.db.set_observe_token(device, Some(req.token)) {
                            warn!(error = %e, "device database");
                            return (
                                Op::Observe,
                                CompactResponse::bare(Code::INTERNAL_SERVER_ERROR),
                                None,
                            );
                        }
                        self.start_observer(device, req.token.to_vec());
                        (
                            Op::Observe,
                            CompactResponse::bare(Code::CONTENT),
                            Some(rec.acked_seq),
                        )
                    }
                    Some(1) => {
                        self.observers.remove(device);
                        let _ = self.db.set_observe_token(device, None);
                        (Op::Observe, CompactResponse::bare(Code::CONTENT), None)
                    }
                    _ => (Op::Observe, err(Code::BAD_REQUEST, "M_BAD_JSON"), None),
                }
            }
            _ => (Op::Other, self.op_generic(req, token.as_deref()), None),
        }
    }

    /// Sends `http` counted under `op`, and translates failures to a compact error.
    fn exchange(&mut self, op: Op, http: &HttpRequest) -> Result<Value, CompactResponse> {
        let (r, b) = send_counted(&self.client, http);
        self.count(op, b);
        match &r {
            Ok(resp) if (200..300).contains(&resp.status) => {
                Ok(resp.json().unwrap_or_else(|| json!({})))
            }
            _ => Err(strip_error(http_to_coap(
                http,
                r.as_ref(),
                Dialect::TrickleV1,
            ))),
        }
    }

    fn op_generic(&mut self, req: &Repr<'_>, token: Option<&str>) -> CompactResponse {
        let dialect = match translate::request_dialect(req, Dialect::TrickleV1) {
            Ok(d) => d,
            Err(resp) => return resp,
        };
        let http = match translate::coap_to_http(req, dialect, token) {
            Ok(h) => h,
            Err(resp) => return resp,
        };
        let (r, b) = send_counted(&self.client, &http);
        self.count(Op::Other, b);
        let resp = http_to_coap(&http, r.as_ref(), dialect);
        if dialect == Dialect::TrickleV1 {
            strip_error(resp)
        } else {
            resp
        }
    }

    fn bound_answer(&mut self, device: &str, token: &str, body: &Value) -> CompactResponse {
        let user_id = body.get("user_id").and_then(Value::as_str);
        let device_id = body.get("device_id").and_then(Value::as_str);
        let Some(user_id) = user_id else {
            return CompactResponse::bare(Code::BAD_GATEWAY);
        };
        if let Err(e) = self.db.bind_token(device, token, user_id, device_id) {
            warn!(error = %e, "device database");
            return CompactResponse::bare(Code::INTERNAL_SERVER_ERROR);
        }
        info!(%device, user_id, "access token bound to device key");
        let answer = json!({ "user_id": user_id, "device_id": device_id });
        let payload = json_bytes_to_cbor(
            answer.to_string().as_bytes(),
            Dialect::TrickleV1.cbor_table(),
        )
        .unwrap_or_default();
        CompactResponse {
            code: Code::CHANGED,
            max_age: None,
            content_format: None,
            payload,
        }
    }

    fn op_login(&mut self, device: &str, req: &Repr<'_>) -> CompactResponse {
        let http = match translate::coap_to_http(req, Dialect::TrickleV1, None) {
            Ok(h) => h,
            Err(resp) => return resp,
        };
        match self.exchange(Op::Login, &http) {
            Ok(body) => match body.get("access_token").and_then(Value::as_str) {
                Some(token) => {
                    let token = token.to_owned();
                    self.bound_answer(device, &token, &body)
                }
                None => CompactResponse::bare(Code::BAD_GATEWAY),
            },
            Err(resp) => resp,
        }
    }

    fn op_token(&mut self, device: &str, req: &Repr<'_>) -> CompactResponse {
        let token = match read_item(req.payload) {
            Some((Item::Text(t), [])) => t.to_owned(),
            _ => {
                return CompactResponse::gateway_error(
                    Code::BAD_REQUEST,
                    "M_BAD_JSON",
                    Dialect::TrickleV1,
                );
            }
        };
        let http = HttpRequest {
            method: Method::Get,
            target: "/_matrix/client/v3/account/whoami".into(),
            access_token: Some(token.clone()),
            body: None,
        };
        match self.exchange(Op::Token, &http) {
            Ok(body) => self.bound_answer(device, &token, &body),
            Err(resp) => resp,
        }
    }

    /// `[alias, "full id"]` if not yet introduced (and marks it when `mark`), else `alias`.
    fn alias_item(
        &mut self,
        device: &str,
        kind: AliasKind,
        id: &str,
        out: &mut Vec<u8>,
    ) -> Result<Option<u16>, AliasError> {
        let alias = self.db.alias_for(device, kind, id)?;
        if self.db.is_introduced(device, kind, alias)? {
            cbor_head(out, 0, u64::from(alias));
            Ok(None)
        } else {
            cbor_head(out, 4, 2);
            cbor_head(out, 0, u64::from(alias));
            cbor_text(out, id);
            Ok(Some(alias))
        }
    }

    fn op_join(&mut self, device: &str, req: &Repr<'_>, token: &str) -> CompactResponse {
        let http = match translate::coap_to_http(req, Dialect::TrickleV1, Some(token)) {
            Ok(h) => h,
            Err(resp) => return resp,
        };
        let body = match self.exchange(Op::Join, &http) {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        let Some(room_id) = body.get("room_id").and_then(Value::as_str) else {
            return CompactResponse::bare(Code::BAD_GATEWAY);
        };
        let result = (|| {
            let alias = self.db.alias_for(device, AliasKind::Room, room_id)?;
            self.db.mark_introduced(device, AliasKind::Room, alias)?;
            Ok::<_, AliasError>(alias)
        })();
        match result {
            Ok(alias) => {
                let mut payload = Vec::new();
                cbor_head(&mut payload, 4, 2);
                cbor_head(&mut payload, 0, u64::from(alias));
                cbor_text(&mut payload, room_id);
                CompactResponse {
                    code: Code::CHANGED,
                    max_age: None,
                    content_format: None,
                    payload,
                }
            }
            Err(e) => {
                warn!(error = %e, "alias database");
                CompactResponse::bare(Code::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn op_send(
        &mut self,
        device: &str,
        key: &[u8; 32],
        req: &Repr<'_>,
        counter: u64,
        token: &str,
    ) -> CompactResponse {
        let bad =
            || CompactResponse::gateway_error(Code::BAD_REQUEST, "M_BAD_JSON", Dialect::TrickleV1);
        let Some(items) = read_array(req.payload) else {
            return bad();
        };
        let room_id = match items.first() {
            Some(Item::Text(t)) => (*t).to_owned(),
            Some(Item::Uint(a)) => {
                let resolved = u16::try_from(*a)
                    .ok()
                    .and_then(|a| self.db.resolve(device, AliasKind::Room, a).ok().flatten());
                match resolved {
                    Some(r) => r,
                    None => {
                        return CompactResponse::gateway_error(
                            Code::NOT_FOUND,
                            "M_NOT_FOUND",
                            Dialect::TrickleV1,
                        );
                    }
                }
            }
            None => return bad(),
        };
        let (body, msgtype) = match items.as_slice() {
            [_, Item::Text(b)] => (*b, "m.text"),
            [_, Item::Text(b), Item::Text(t)] => (*b, *t),
            _ => return bad(),
        };
        let txn = txn_id(key, counter);
        let http = HttpRequest {
            method: Method::Put,
            target: format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
                encode_segment(&room_id),
                encode_segment(&txn)
            ),
            access_token: Some(token.to_owned()),
            body: Some(
                json!({ "msgtype": msgtype, "body": body })
                    .to_string()
                    .into_bytes(),
            ),
        };
        match self.exchange(Op::Send, &http) {
            Ok(_) => {
                info!(%device, txn, room = %room_id, "message sent");
                CompactResponse::bare(Code::CHANGED)
            }
            Err(resp) => resp,
        }
    }

    // --- Observe --------------------------------------------------------------------------------

    fn start_observer(&mut self, device: &str, token: Vec<u8>) {
        let rec = match self.db.device(device) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "device database");
                return;
            }
        };
        let (Some(access_token), Some(user_id)) = (rec.access_token, rec.user_id) else {
            return;
        };
        self.generation += 1;
        let generation = self.generation;
        let stop = Arc::new(AtomicBool::new(false));
        let (resume_tx, resume_rx) = channel();
        let ctx = SyncThread {
            client: self.client.clone(),
            device: device.to_owned(),
            generation,
            access_token,
            user_id,
            since: rec.next_batch.clone(),
            skip: rec.batch_index as usize,
            timeout_ms: self.config.sync_timeout_ms,
            stop: stop.clone(),
            resume: resume_rx,
            out: self.sync_tx.clone(),
        };
        std::thread::spawn(move || ctx.run());
        // Replacing an observer drops (and stops) the previous one.
        self.observers.insert(
            device.to_owned(),
            Observer {
                token,
                generation,
                stop,
                resume: resume_tx,
                batch_since: None,
                batch_next: None,
                queue: VecDeque::new(),
                in_flight: None,
            },
        );
    }

    fn on_sync(&mut self, now: Instant, msg: SyncMsg) -> Vec<Transmit> {
        match msg {
            SyncMsg::Failed {
                device,
                generation,
                bytes,
            } => {
                self.count(Op::Notification, bytes);
                if self
                    .observers
                    .get(&device)
                    .is_some_and(|o| o.generation == generation)
                {
                    warn!(%device, "event delivery stopped: the homeserver refused /sync");
                    self.observers.remove(&device);
                }
                Vec::new()
            }
            SyncMsg::Batch {
                device,
                generation,
                since,
                next_batch,
                events,
                bytes,
            } => {
                self.count(Op::Notification, bytes);
                let Some(o) = self.observers.get_mut(&device) else {
                    return Vec::new();
                };
                if o.generation != generation {
                    return Vec::new();
                }
                debug!(%device, events = events.len(), "sync batch");
                o.batch_since = since;
                o.batch_next = Some(next_batch);
                o.queue = events.into();
                self.pump(now, &device)
            }
        }
    }

    /// Sends the next queued notification if none is in flight; finishes the batch when the
    /// queue is empty.
    fn pump(&mut self, now: Instant, device: &str) -> Vec<Transmit> {
        let Some(cid) = self.cids.get(device).copied() else {
            return Vec::new();
        };
        let Some(o) = self.observers.get_mut(device) else {
            return Vec::new();
        };
        if o.in_flight.is_some() {
            return Vec::new();
        }
        let Some(event) = o.queue.front().cloned() else {
            // Batch done: persist its next_batch, let the thread poll again.
            if let Some(next) = o.batch_next.take() {
                let acked = self.db.device(device).map(|r| r.acked_seq).unwrap_or(0);
                if let Err(e) = self.db.set_progress(device, Some(&next), 0, acked) {
                    warn!(error = %e, "device database");
                }
                let _ = o.resume.send(());
            }
            return Vec::new();
        };
        let token = o.token.clone();
        let rec = self.db.device(device).unwrap_or_default();
        let seq = rec.acked_seq.wrapping_add(1);
        let mut payload = Vec::new();
        cbor_head(
            &mut payload,
            4,
            if event.msgtype == "m.text" { 3 } else { 4 },
        );
        let mut introduces = Vec::new();
        for (kind, id) in [
            (AliasKind::Room, &event.room_id),
            (AliasKind::User, &event.sender),
        ] {
            match self.alias_item(device, kind, id, &mut payload) {
                Ok(Some(a)) => introduces.push((kind, a)),
                Ok(None) => {}
                Err(e) => {
                    warn!(error = %e, "alias database");
                    return Vec::new();
                }
            }
        }
        cbor_text(&mut payload, &event.body);
        if event.msgtype != "m.text" {
            cbor_text(&mut payload, &event.msgtype);
        }
        let mut repr = Repr::new(Kind::Confirmable, Code::CONTENT, 0, &token);
        let _ = repr.push_option(CoapOption::uint(OptionNumber::OBSERVE, seq));
        repr.payload = &payload;
        let mut msg = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut msg).unwrap_or(0);
        msg.truncate(n);
        let mut f = vec![0u8; msg.len() + 64];
        let sealed = match self.pipe.seal(cid, &msg, &mut f) {
            Ok(s) => s,
            Err(e) => {
                warn!(cid, error = %e, "notification could not be sealed");
                return Vec::new();
            }
        };
        f.truncate(sealed.len);
        let base = self.config.ack_timeout();
        // Initial timeout uniformly in [ACK_TIMEOUT, 1.5 × ACK_TIMEOUT] (RFC 7252 §4.2).
        let timeout = base + base.mul_f64(f64::from(self.rng.next_u32() % 1000) / 2000.0);
        info!(%device, cid, seq, bytes = f.len(), "notification sent");
        if let Some(o) = self.observers.get_mut(device) {
            o.in_flight = Some(InFlight {
                cid,
                stale: false,
                seq,
                mid: sealed.mid,
                frame: f.clone(),
                introduces,
                deadline: now + timeout,
                timeout,
                retransmits: 0,
                stalled_since: None,
            });
        }
        self.air_out(Op::Notification, f.len());
        vec![Transmit { cid, frame: f }]
    }

    /// A message from `device` arrived on session `cid`: a notification in flight that was
    /// sealed for an older session of the device (the device gave up a request and started a new
    /// handshake) can never be opened by it, so retransmitting it until MAX_RETRANSMIT would only
    /// drop the registration and stall delivery. Seal it again for the current session (same
    /// event and sequence number; the device drops what it already accepted); the frame goes
    /// out with the next [`poll`](Self::poll).
    ///
    /// A notification that stalled (MAX_RETRANSMIT exhausted while the device was out of reach)
    /// on the current session starts its retransmissions over, the first one due at once:
    /// hearing from the device proves it is back. (If this message is its late ACK, the ACK is
    /// taken as usual.)
    fn reseal_if_stale(&mut self, now: Instant, device: &str, cid: u8) {
        let Some(o) = self.observers.get_mut(device) else {
            return;
        };
        if let Some(f) = o
            .in_flight
            .as_mut()
            .filter(|f| f.stalled_since.is_some() && !f.stale && f.cid == cid)
        {
            info!(%device, seq = f.seq, "device heard from: stalled notification sent again");
            f.stalled_since = None;
            f.timeout /= 1 << f.retransmits.min(16);
            f.retransmits = 0;
            f.deadline = now;
            return;
        }
        if !o
            .in_flight
            .as_ref()
            .is_some_and(|f| f.stale || f.cid != cid)
        {
            return;
        }
        // Sealed by the next `poll`, once the new session can carry it (an IK session is
        // established only after the gateway's reply to the request carried in message 1).
        o.in_flight = None;
        info!(%device, cid, "notification to be sealed again for the device's new session");
    }

    fn retransmit(&mut self, now: Instant, device: &str) -> Vec<Transmit> {
        let Some(cid) = self.cids.get(device).copied() else {
            return Vec::new();
        };
        let Some(o) = self.observers.get_mut(device) else {
            return Vec::new();
        };
        let Some(f) = o.in_flight.as_mut() else {
            return Vec::new();
        };
        if let Some(since) = f.stalled_since {
            if now.saturating_duration_since(since) >= STALL_LIMIT {
                warn!(%device, seq = f.seq, "device not heard from: registration removed");
                self.observers.remove(device);
                let _ = self.db.set_observe_token(device, None);
            }
            return Vec::new();
        }
        if now < f.deadline {
            return Vec::new();
        }
        if f.retransmits >= MAX_RETRANSMIT {
            // Keep the registration: the device may only be out of reach (or busy on a
            // half-duplex link). The first frame heard from it sends the notification again.
            warn!(%device, seq = f.seq, "notification never acknowledged: stalled until the device is heard from");
            f.stalled_since = Some(now);
            return Vec::new();
        }
        f.retransmits += 1;
        f.timeout *= 2;
        f.deadline = now + f.timeout;
        let frame = f.frame.clone();
        debug!(%device, seq = f.seq, n = f.retransmits, "notification retransmitted");
        self.air_out(Op::Notification, frame.len());
        vec![Transmit { cid, frame }]
    }

    fn on_answer(&mut self, now: Instant, device: &str, kind: Kind, mid: u16) -> Vec<Transmit> {
        let Some(o) = self.observers.get_mut(device) else {
            return Vec::new();
        };
        if o.in_flight.as_ref().is_none_or(|f| f.mid != mid) {
            debug!(%device, mid, "answer to nothing in flight ignored");
            return Vec::new();
        }
        let Some(f) = o.in_flight.take() else {
            return Vec::new();
        };
        if kind == Kind::Reset {
            info!(%device, "device reset the notification: registration removed");
            self.observers.remove(device);
            let _ = self.db.set_observe_token(device, None);
            return Vec::new();
        }
        o.queue.pop_front();
        let since = o.batch_since.clone();
        let rec = self.db.device(device).unwrap_or_default();
        let result = (|| {
            for (kind, alias) in &f.introduces {
                self.db.mark_introduced(device, *kind, *alias)?;
            }
            self.db
                .set_progress(device, since.as_deref(), rec.batch_index + 1, f.seq)
        })();
        if let Err(e) = result {
            warn!(error = %e, "device database");
        }
        debug!(%device, seq = f.seq, "notification acknowledged");
        self.pump(now, device)
    }
}

/// Keeps only `error`-less error bodies (ops spec "Errors"): `{"errcode": …}`.
fn strip_error(mut resp: CompactResponse) -> CompactResponse {
    if resp.code.class() == 2 || resp.payload.is_empty() {
        return resp;
    }
    let table = Dialect::TrickleV1.cbor_table();
    let errcode = cbor_bytes_to_json(&resp.payload, table)
        .and_then(|j| serde_json::from_slice::<Value>(&j).ok())
        .and_then(|v| v.get("errcode").and_then(Value::as_str).map(str::to_owned));
    resp.payload = match errcode {
        Some(e) => json_bytes_to_cbor(json!({ "errcode": e }).to_string().as_bytes(), table)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    resp
}

struct SyncThread {
    client: HomeserverClient,
    device: String,
    generation: u64,
    access_token: String,
    user_id: String,
    since: Option<String>,
    skip: usize,
    timeout_ms: u32,
    stop: Arc<AtomicBool>,
    resume: Receiver<()>,
    out: Sender<SyncMsg>,
}

impl SyncThread {
    /// The events a `limited` timeline of `body` skipped since `since`, oldest first, per room
    /// (read back with `/messages` from the timeline's `prev_batch` down to `since`). `None` if
    /// the homeserver failed (the caller retries the whole `/sync`).
    fn fill_gaps(
        &self,
        body: &Value,
        since: &str,
        bytes: &mut OpBytes,
    ) -> Option<Vec<crate::sync::TinyEvent>> {
        let mut out = Vec::new();
        let Some(join) = body
            .get("rooms")
            .and_then(|r| r.get("join"))
            .and_then(Value::as_object)
        else {
            return Some(out);
        };
        let filter = json!({ "types": ["m.room.message"] }).to_string();
        for (room_id, room) in join {
            let timeline = room.get("timeline");
            let limited = timeline
                .and_then(|t| t.get("limited"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let Some(prev) = timeline
                .and_then(|t| t.get("prev_batch"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if !limited {
                continue;
            }
            let mut from = prev.to_owned();
            let mut gap = Vec::new();
            // Bounded: at most 100 pages of 100 events.
            for _ in 0..100 {
                let target = format!(
                    "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100&from={}&to={}&filter={}",
                    encode_segment(room_id),
                    encode_segment(&from),
                    encode_segment(since),
                    encode_segment(&filter)
                );
                let http = HttpRequest {
                    method: Method::Get,
                    target,
                    access_token: Some(self.access_token.clone()),
                    body: None,
                };
                let (r, b) = send_counted(&self.client, &http);
                bytes.add(&b);
                let page = match r {
                    Ok(resp) if resp.status == 200 => resp.json()?,
                    _ => return None,
                };
                let chunk = page.get("chunk").and_then(Value::as_array)?;
                for e in chunk {
                    gap.push(crate::sync::TinyEvent {
                        room_id: room_id.clone(),
                        event: e.clone(),
                    });
                }
                match page.get("end").and_then(Value::as_str) {
                    Some(end) if !chunk.is_empty() => from = end.to_owned(),
                    _ => break,
                }
            }
            gap.reverse();
            out.append(&mut gap);
        }
        Some(out)
    }

    fn run(mut self) {
        let mut bytes = OpBytes::default();
        let filter = loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let http = HttpRequest {
                method: Method::Post,
                target: format!(
                    "/_matrix/client/v3/user/{}/filter",
                    encode_segment(&self.user_id)
                ),
                access_token: Some(self.access_token.clone()),
                body: Some(
                    tiny_filter(TinyFilterOptions::default())
                        .to_string()
                        .into_bytes(),
                ),
            };
            let (r, b) = send_counted(&self.client, &http);
            bytes.add(&b);
            match r {
                Ok(resp) if resp.status == 200 => {
                    if let Some(id) = resp.json().and_then(|j| {
                        j.get("filter_id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    }) {
                        break id;
                    }
                }
                Ok(resp) if (400..500).contains(&resp.status) => {
                    let _ = self.out.send(SyncMsg::Failed {
                        device: self.device,
                        generation: self.generation,
                        bytes,
                    });
                    return;
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_secs(2));
        };
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let timeout = if self.since.is_some() {
                self.timeout_ms
            } else {
                0
            };
            let mut target = format!(
                "/_matrix/client/v3/sync?filter={}&timeout={timeout}",
                encode_segment(&filter)
            );
            if let Some(s) = &self.since {
                target.push_str("&since=");
                target.push_str(&encode_segment(s));
            }
            let http = HttpRequest {
                method: Method::Get,
                target,
                access_token: Some(self.access_token.clone()),
                body: None,
            };
            let (r, b) = send_counted(&self.client, &http);
            bytes.add(&b);
            let body = match r {
                Ok(resp) if resp.status == 200 => resp.json(),
                Ok(resp) if (400..500).contains(&resp.status) && resp.status != 429 => {
                    let _ = self.out.send(SyncMsg::Failed {
                        device: self.device,
                        generation: self.generation,
                        bytes,
                    });
                    return;
                }
                _ => None,
            };
            let Some((body, mut batch)) = body.and_then(|b| parse_sync(&b).ok().map(|s| (b, s)))
            else {
                std::thread::sleep(Duration::from_secs(2));
                continue;
            };
            // A `limited` timeline left out events between `since` and the batch (the device
            // was slower than the room): fetch the gap with `/messages` so none is lost.
            if let Some(since) = self.since.clone() {
                match self.fill_gaps(&body, &since, &mut bytes) {
                    Some(gap) if !gap.is_empty() => {
                        debug!(device = %self.device, events = gap.len(), "sync gap filled");
                        let mut all = gap;
                        all.append(&mut batch.events);
                        batch.events = all;
                    }
                    Some(_) => {}
                    None => {
                        std::thread::sleep(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            let mut events: Vec<Event> = batch
                .events
                .iter()
                .filter_map(|e| {
                    let ev = &e.event;
                    if ev.get("type").and_then(Value::as_str) != Some("m.room.message") {
                        return None;
                    }
                    let sender = ev.get("sender").and_then(Value::as_str)?;
                    if sender == self.user_id {
                        return None;
                    }
                    let content = ev.get("content")?;
                    Some(Event {
                        room_id: e.room_id.clone(),
                        sender: sender.to_owned(),
                        body: content.get("body").and_then(Value::as_str)?.to_owned(),
                        msgtype: content
                            .get("msgtype")
                            .and_then(Value::as_str)
                            .unwrap_or("m.text")
                            .to_owned(),
                    })
                })
                .collect();
            if self.since.is_none() {
                // First registration: start from "now".
                events.clear();
            }
            let skip = std::mem::take(&mut self.skip).min(events.len());
            events.drain(..skip);
            let msg = SyncMsg::Batch {
                device: self.device.clone(),
                generation: self.generation,
                since: self.since.clone(),
                next_batch: batch.next_batch.clone(),
                events,
                bytes: std::mem::take(&mut bytes),
            };
            if self.out.send(msg).is_err() || self.resume.recv().is_err() {
                return;
            }
            self.since = Some(batch.next_batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_id_is_hash_prefix_and_counter() {
        let key = [0u8; 32];
        let d = Blake2s256::digest(key);
        let expect = format!("t{}.42", hex(&d[..8]));
        assert_eq!(txn_id(&key, 42), expect);
        assert_eq!(txn_id(&key, 42).len(), 1 + 16 + 1 + 2);
        assert_ne!(txn_id(&key, 42), txn_id(&key, 43));
        assert_ne!(txn_id(&key, 42), txn_id(&[1; 32], 42));
    }

    #[test]
    fn send_payloads_parse_and_garbage_is_refused() {
        assert_eq!(
            read_array(&[0x82, 0x00, 0x65, b'H', b'e', b'l', b'l', b'o']),
            Some(vec![Item::Uint(0), Item::Text("Hello")])
        );
        assert_eq!(
            read_array(&[
                0x83, 0x61, b'!', 0x61, b'x', 0x66, b'm', b'.', b'n', b'o', b't', b'e'
            ]),
            Some(vec![Item::Text("!"), Item::Text("x"), Item::Text("m.note")])
        );
        assert_eq!(read_array(&[0x82, 0x00]), None, "truncated");
        assert_eq!(
            read_array(&[0x82, 0x00, 0x00, 0x00]),
            None,
            "trailing bytes"
        );
        assert_eq!(read_array(&[0x9f, 0x00, 0xff]), None, "indefinite length");
        assert_eq!(
            read_array(&[0x82, 0x00, 0x62, 0xff, 0xfe]),
            None,
            "bad UTF-8"
        );
        assert_eq!(
            read_array(&[
                0x82, 0x00, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            None
        );
        // Every 1..3-byte input and a pseudo-random sweep: never a panic.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = read_array(&[a, b]);
                let _ = read_array(&[0x82, a, b]);
                let _ = read_item(&[a, b, 0x00]);
            }
        }
    }

    #[test]
    fn cbor_heads_are_shortest() {
        let mut v = Vec::new();
        for n in [0u64, 23, 24, 255, 256, 65535, 65536] {
            cbor_head(&mut v, 0, n);
        }
        assert_eq!(
            v,
            [
                0x00, 0x17, 0x18, 0x18, 0x18, 0xff, 0x19, 0x01, 0x00, 0x19, 0xff, 0xff, 0x1a, 0x00,
                0x01, 0x00, 0x00
            ]
        );
        let mut t = Vec::new();
        cbor_text(&mut t, "Hi");
        assert_eq!(t, [0x62, b'H', b'i']);
    }

    #[test]
    fn ack_timeout_follows_the_link() {
        let lora = SessionConfig::default();
        assert_eq!(lora.ack_timeout(), Duration::from_millis(42_800));
        let fast = SessionConfig {
            bitrate: 1_000_000,
            ..lora
        };
        assert_eq!(fast.ack_timeout(), Duration::from_millis(2_004));
    }
}

#[cfg(test)]
mod garbage {
    use super::*;
    use crate::client::ClientConfig;

    /// Thousands of random and mutated frames: no panic, no homeserver request, and nothing
    /// sent back except handshake answers to frames that are valid `XX` message 1s.
    #[test]
    fn random_frames_never_reach_the_homeserver() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on port 9: a request would fail, but would still be counted.
        let client = HomeserverClient::new("http://127.0.0.1:9", ClientConfig::default()).unwrap();
        let mut gw = SessionGateway::open(dir.path(), client, SessionConfig::default()).unwrap();
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let now = Instant::now();
        for i in 0..3000usize {
            let len = (rng.next_u32() % 120) as usize;
            let mut f = vec![0u8; len];
            rng.fill_bytes(&mut f);
            if i % 3 == 0 && len > 5 {
                // Plausible header: CoAP version 1, small TKL, existing or fresh CID.
                f[0] = (i % 4) as u8;
                f[1] = 0x40 | (f[1] & 0x33);
            }
            for t in gw.handle_frame(now, &f) {
                assert!(!t.frame.is_empty());
            }
            let _ = gw.poll(now);
        }
        assert_eq!(gw.total_bytes().http_requests, 0);
        assert!(gw.bytes(Op::Rejected).frames_in > 1000);
    }
}
