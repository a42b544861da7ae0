//! The Noise pipe: sans-I/O device ([`Initiator`]) and gateway ([`Responder`]) ends of a secured
//! CoAP link, with trust on first use, 0-RTT IK, XXfallback, persisted sessions and connection
//! IDs. Normative byte layout: `docs/PROTOCOL.md`, section "Noise pipe framing".
//!
//! # Flow
//! - First contact (no pinned key): the device sends `XX` message 1; the gateway answers with
//!   message 2 carrying the connection ID it assigns; the device pins the gateway's static key
//!   and sends its first request inside message 3. Later contacts: `IK` message 1 carries the
//!   first request (0-RTT) and `IK` message 2 carries the response. A gateway that cannot decrypt
//!   an `IK` message 1 answers with `XXfallback`; the device then re-sends its request in the
//!   fallback's last message. A gateway presenting a key other than the pinned one is refused
//!   with [`PipeError::PinnedKeyMismatch`]; only [`Initiator::repin`] or
//!   [`Initiator::accept_presented_key`] change the pin.
//! - Established frames: `CID | CoAP header | token | ChaChaPoly(options, payload) | tag`, the
//!   first three being the associated data. The nonce is a 64-bit counter of which only the low
//!   16 bits travel, as the CoAP Message ID.
//!
//! # Nonces
//! Each direction has its own key. Within it, CON/NON messages use the sender's own counter
//! (nonce = counter, bit 63 clear), ACK/RST answer a message of the peer and use the *peer's*
//! counter of that message with bit 63 set (OSCORE's request/response rule). A received CON/NON
//! yields exactly one [`ReplyTicket`]; sealing an ACK/RST consumes one, so no echoed nonce can be
//! used for two plaintexts. A retransmitted message is reported as [`Received::Duplicate`]
//! (never a second ticket): CoAP deduplication re-sends the cached answer byte for byte.
//!
//! # Persistence
//! Before an own counter at or above the persisted bound is used, the bound is moved
//! `send_reserve` ahead and stored; before a peer counter at or above the persisted receive floor
//! is accepted, the floor is moved to `counter + recv_reserve` and stored. After a reboot the
//! pipe resumes sending at `max(send bound, receive floor)` and accepts only peer counters at or
//! above the floor. On every accepted CON/NON the own counter jumps to at least the peer's counter
//! plus one (a Lamport clock), so a rebooted device's first frame lifts the gateway's counter
//! above the device's floor.

use core::fmt;

use blake2::{Blake2s256, Digest};
use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::frame::{
    CID_LEN, CID_NONE, Frame, FrameError, HEADER_LEN, HandshakeCode, Kind, MAX_TOKEN_LEN,
    PlainParts, TAG_LEN,
};
use super::replay::{Freshness, ReplayWindow, reconstruct, reconstruct_at_most};
use super::storage::{RecordCursor, Records, SessionRecord, Storage, StorageError};
use super::{
    CipherKey, Error as NoiseError, HandshakeState, Keypair, Pattern, Role, Transport, ct_eq,
};

/// Prologue label; the prologue is this label followed by the handshake's first Message ID
/// (2 bytes, big-endian), which authenticates that clear field.
pub const PROLOGUE_LABEL: &[u8; 15] = b"trickle-pipe-v1";
/// Bit 63 of the nonce marks an echoed counter (ACK/RST answering a peer message).
pub const ECHO_BIT: u64 = 1 << 63;
/// A key epoch spans 2^16 counters: the keys are rekeyed (Noise §11.3) each time the 16-bit
/// Message ID wraps. Epoch `e` key = `REKEY` applied `e` times to the `Split()` key.
pub const EPOCH_SHIFT: u32 = 16;
/// Own counters must stay below 2^48 (then a new handshake is needed); epochs fit in 32 bits.
pub const COUNTER_LIMIT: u64 = 1 << 48;
/// Largest handshake payload (carried request or response, with its 2–3 byte prefix).
pub const MAX_HANDSHAKE_PAYLOAD: usize = 256;
/// Largest handshake frame the pipe writes or caches.
pub const MAX_HANDSHAKE_FRAME: usize = CID_LEN + HEADER_LEN + 32 + 48 + MAX_HANDSHAKE_PAYLOAD + 16;
/// Largest epoch distance walked forward in one step.
const MAX_EPOCH_SKIP: u32 = 8;

/// A short public identifier of a key: the first 8 bytes of
/// BLAKE2s("trickle-pipe key id" ‖ key). For audits and tests; it reveals nothing of the key.
pub type KeyId = [u8; 8];

fn key_id(key: &CipherKey) -> KeyId {
    let mut bytes = key.to_bytes();
    let mut h = Blake2s256::new();
    h.update(b"trickle-pipe key id");
    h.update(bytes);
    bytes.zeroize();
    let full: [u8; 32] = h.finalize().into();
    let mut id = [0u8; 8];
    id.copy_from_slice(&full[..8]);
    id
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut h = Blake2s256::new();
    h.update(bytes);
    h.finalize().into()
}

const fn epoch_of(counter: u64) -> u32 {
    ((counter & !ECHO_BIT) >> EPOCH_SHIFT) as u32
}

fn prologue(base: u16) -> [u8; 17] {
    let mut p = [0u8; 17];
    p[..15].copy_from_slice(PROLOGUE_LABEL);
    p[15..].copy_from_slice(&base.to_be_bytes());
    p
}

/// Errors of the pipe, grouped by whose fault they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PipeError {
    // --- malformed input ---
    /// The frame or plaintext CoAP message is malformed.
    Frame(FrameError),
    /// A handshake payload does not have the documented layout.
    BadHandshakePayload,
    // --- the peer (or an attacker) ---
    /// Authentication failed: forged, corrupted, or protected under another session's key.
    Auth,
    /// The counter is below the replay window or the receive floor (possible replay).
    TooOld,
    /// No session has this connection ID (gateway), or the frame is for another device.
    UnknownSession,
    /// The frame is valid but not expected now (wrong handshake step, type or Message ID).
    Unexpected,
    /// The gateway proved a static key other than the pinned one. Nothing was sent; see
    /// [`Initiator::presented_key`], [`Initiator::accept_presented_key`], [`Initiator::repin`].
    PinnedKeyMismatch,
    /// The Noise engine rejected a handshake message.
    Handshake(NoiseError),
    // --- the caller ---
    /// No established session (device): start one by sealing a request.
    NoSession,
    /// A handshake is waiting for the peer's message; nothing can be sent now.
    HandshakeInProgress,
    /// ACK and RST answer a peer message: seal them with `seal_reply` and its ticket.
    NeedsTicket,
    /// The ticket belongs to another session (or was made for a finished handshake).
    StaleTicket,
    /// The message type is not allowed here (requests in handshakes must be CON; replies
    /// must be ACK or RST).
    WrongKind,
    /// The own counter reached [`COUNTER_LIMIT`]: run a new handshake.
    CounterExhausted,
    /// [`Config`] values out of range.
    BadConfig,
    /// A CoAP code of class 7: reserved for handshake frames on this link.
    ReservedCode,
    /// There is no presented key to accept.
    NoPresentedKey,
    // --- buffers and storage ---
    /// The output buffer is too small; `required` bytes are needed.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// A handshake payload longer than [`MAX_HANDSHAKE_PAYLOAD`].
    PayloadTooLarge,
    /// Persistent storage failed; the operation had no effect on counters or keys.
    Storage(StorageError),
}

impl fmt::Display for PipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeError::Frame(e) => write!(f, "malformed frame: {e}"),
            PipeError::BadHandshakePayload => f.write_str("malformed handshake payload"),
            PipeError::Auth => f.write_str("frame failed authentication"),
            PipeError::TooOld => f.write_str("counter below the replay window"),
            PipeError::UnknownSession => f.write_str("no session for this connection ID"),
            PipeError::Unexpected => f.write_str("frame not expected in this state"),
            PipeError::PinnedKeyMismatch => {
                f.write_str("gateway static key differs from the pinned key")
            }
            PipeError::Handshake(e) => write!(f, "handshake failed: {e}"),
            PipeError::NoSession => f.write_str("no established session"),
            PipeError::HandshakeInProgress => f.write_str("handshake in progress"),
            PipeError::NeedsTicket => f.write_str("ACK/RST must be sealed with a reply ticket"),
            PipeError::StaleTicket => f.write_str("reply ticket of another session"),
            PipeError::WrongKind => f.write_str("CoAP message type not allowed here"),
            PipeError::CounterExhausted => f.write_str("counter space exhausted, re-handshake"),
            PipeError::BadConfig => f.write_str("pipe configuration out of range"),
            PipeError::ReservedCode => f.write_str("CoAP code class 7 is reserved for handshakes"),
            PipeError::NoPresentedKey => f.write_str("no presented key to accept"),
            PipeError::BufferTooSmall { required } => {
                write!(f, "buffer too small: {required} bytes required")
            }
            PipeError::PayloadTooLarge => f.write_str("handshake payload too large"),
            PipeError::Storage(e) => write!(f, "storage failed: {e}"),
        }
    }
}

impl core::error::Error for PipeError {}

impl From<FrameError> for PipeError {
    fn from(e: FrameError) -> Self {
        PipeError::Frame(e)
    }
}

impl From<StorageError> for PipeError {
    fn from(e: StorageError) -> Self {
        PipeError::Storage(e)
    }
}

impl From<NoiseError> for PipeError {
    fn from(e: NoiseError) -> Self {
        match e {
            NoiseError::BufferTooSmall { required } => PipeError::BufferTooSmall { required },
            NoiseError::Decrypt => PipeError::Auth,
            other => PipeError::Handshake(other),
        }
    }
}

/// Counter reservation steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// How far ahead of use the send bound is persisted (1..=8192). One storage write per this
    /// many own messages; after a reboot up to this many counters are skipped.
    pub send_reserve: u64,
    /// How far ahead of the highest accepted peer counter the receive floor is persisted
    /// (1..=8192). 1 writes on every accepted CON/NON and loses nothing on reboot.
    pub recv_reserve: u64,
}

impl Config {
    /// Device default: a flash write every 64 sent and every 16 received own-sequence messages.
    pub const DEVICE: Config = Config {
        send_reserve: 64,
        recv_reserve: 16,
    };
    /// Gateway default: write-through receive floor (disk writes are cheap).
    pub const GATEWAY: Config = Config {
        send_reserve: 64,
        recv_reserve: 1,
    };

    fn check(&self) -> Result<(), PipeError> {
        if (1..=8192).contains(&self.send_reserve) && (1..=8192).contains(&self.recv_reserve) {
            Ok(())
        } else {
            Err(PipeError::BadConfig)
        }
    }
}

/// Proof that a CON/NON from the peer was accepted once; consumed by `seal_reply` to answer it
/// with an ACK or RST under the echoed nonce. Neither `Clone` nor `Copy`, by design.
#[derive(Debug, PartialEq, Eq)]
pub struct ReplyTicket {
    cid: u8,
    generation: u32,
    counter: u64,
}

impl ReplyTicket {
    /// Connection ID of the session.
    pub fn cid(&self) -> u8 {
        self.cid
    }
    /// The Message ID the reply must carry.
    pub fn mid(&self) -> u16 {
        self.counter as u16
    }
    /// The peer's full counter of the message being answered.
    pub fn counter(&self) -> u64 {
        self.counter
    }
}

/// `seal_reply` failed; nothing was encrypted and the ticket is handed back, so the message can
/// still be answered. Converts into [`PipeError`] for `?`.
#[derive(Debug, PartialEq, Eq)]
pub struct ReplyFailed {
    /// What went wrong.
    pub error: PipeError,
    /// The unused ticket.
    pub ticket: ReplyTicket,
}

impl fmt::Display for ReplyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl core::error::Error for ReplyFailed {}

impl From<ReplyFailed> for PipeError {
    fn from(e: ReplyFailed) -> Self {
        e.error
    }
}

/// What `open` produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A CoAP message from the peer, rebuilt in clear in `out[..len]`. CON and NON come with the
    /// ticket to answer them; ACK and RST (answers to our messages) come without.
    Message {
        /// Connection ID of the session.
        cid: u8,
        /// Length of the plaintext CoAP message in `out`.
        len: usize,
        /// Ticket for the ACK/RST answering a CON/NON.
        ticket: Option<ReplyTicket>,
    },
    /// A handshake step: transmit `out[..len]`. Also returned for a retransmitted handshake
    /// message, with the cached answer.
    Handshake {
        /// Connection ID assigned to the session.
        cid: u8,
        /// Length of the frame in `out`.
        len: usize,
    },
    /// Device only: the handshake now carries the first request. Call `seal` with it.
    NeedRequest,
    /// A message already accepted (a retransmission): answer from the CoAP cache, byte for byte.
    Duplicate {
        /// Connection ID.
        cid: u8,
        /// Message ID of the duplicate.
        mid: u16,
        /// Its message type.
        kind: Kind,
    },
}

/// What `seal` produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// Length of the frame in `out`.
    pub len: usize,
    /// Message ID put on the air (own counter's low 16 bits, or the echoed one).
    pub mid: u16,
    /// The AEAD nonce used (`None` for handshake frames, protected by handshake keys).
    pub nonce: Option<u64>,
    /// Identifier of the key used (`None` for handshake frames).
    pub key_id: Option<KeyId>,
    /// Whether the plaintext message was carried. `false` only for `XX` message 1, which
    /// carries nothing: seal the request again after [`Received::NeedRequest`].
    pub carried: bool,
    /// Whether this is a handshake frame.
    pub handshake: bool,
}

/// Pipe state as seen by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PipeState {
    /// No session: the next `seal` starts a handshake.
    NoSession,
    /// Waiting for the peer's handshake message.
    Handshaking(Pattern),
    /// Handshake needs the first request (`seal` it).
    NeedRequest(Pattern),
    /// Transport keys established.
    Established,
}

// ---------------------------------------------------------------------------------------------
// Key chain and session (shared by both ends)
// ---------------------------------------------------------------------------------------------

/// Keys of one direction by epoch: the current one and the one before.
#[derive(Clone)]
struct KeyChain {
    epoch: u32,
    key: CipherKey,
    id: KeyId,
    prev: Option<(CipherKey, KeyId)>,
}

impl KeyChain {
    fn new(key: CipherKey, epoch: u32) -> Self {
        let id = key_id(&key);
        KeyChain {
            epoch,
            key,
            id,
            prev: None,
        }
    }

    /// Walks forward to `epoch` (no-op if already there or past it).
    fn advance_to(&mut self, epoch: u32) -> Result<(), PipeError> {
        if epoch > self.epoch && epoch - self.epoch > MAX_EPOCH_SKIP {
            return Err(PipeError::TooOld);
        }
        while self.epoch < epoch {
            let mut next = self.key.clone();
            next.rekey();
            let id = key_id(&next);
            let old = core::mem::replace(&mut self.key, next);
            self.prev = Some((old, self.id));
            self.id = id;
            self.epoch += 1;
        }
        Ok(())
    }

    fn get(&self, epoch: u32) -> Option<(&CipherKey, KeyId)> {
        if epoch == self.epoch {
            Some((&self.key, self.id))
        } else if epoch.checked_add(1) == Some(self.epoch) {
            self.prev.as_ref().map(|(k, id)| (k, *id))
        } else {
            None
        }
    }
}

struct Session {
    cid: u8,
    slot: u8,
    initiator: bool,
    send: KeyChain,
    recv: KeyChain,
    send_next: u64,
    send_bound: u64,
    recv_floor: u64,
    rx: ReplayWindow,
    echo: ReplayWindow,
    remote_static: [u8; 32],
    generation: u32,
    cursor: RecordCursor,
}

struct Fresh {
    cid: u8,
    slot: u8,
    initiator: bool,
    send_next: u64,
    rx: ReplayWindow,
    echo_floor: u64,
    generation: u32,
}

impl Session {
    fn from_transport(t: Transport, f: Fresh) -> Self {
        let remote_static = t.remote_static().unwrap_or([0; 32]);
        Session {
            cid: f.cid,
            slot: f.slot,
            initiator: f.initiator,
            send: KeyChain::new(t.send_key().clone(), 0),
            recv: KeyChain::new(t.recv_key().clone(), 0),
            send_next: f.send_next,
            send_bound: 0,
            recv_floor: f.rx.top(),
            rx: f.rx,
            echo: ReplayWindow::new(f.echo_floor),
            remote_static,
            generation: f.generation,
            cursor: RecordCursor::default(),
        }
    }

    fn resume(rec: &SessionRecord, slot: u8, cursor: RecordCursor, generation: u32) -> Self {
        let send_next = rec.send_bound.max(rec.recv_floor);
        Session {
            cid: rec.cid,
            slot,
            initiator: rec.initiator,
            send: KeyChain::new(CipherKey::from_bytes(rec.send_key), rec.send_epoch),
            recv: KeyChain::new(CipherKey::from_bytes(rec.recv_key), rec.recv_epoch),
            send_next,
            send_bound: rec.send_bound,
            recv_floor: rec.recv_floor,
            rx: ReplayWindow::new(rec.recv_floor),
            echo: ReplayWindow::new(send_next),
            remote_static: rec.remote_static,
            generation,
            cursor,
        }
    }

    fn persist<S: Storage>(
        &mut self,
        records: &mut Records<S>,
        send: &KeyChain,
        send_bound: u64,
        recv_floor: u64,
    ) -> Result<(), PipeError> {
        let rec = SessionRecord {
            initiator: self.initiator,
            cid: self.cid,
            send_epoch: send.epoch,
            recv_epoch: self.recv.epoch,
            send_bound,
            recv_floor,
            send_key: send.key.to_bytes(),
            recv_key: self.recv.key.to_bytes(),
            remote_static: self.remote_static,
        };
        let mut cursor = self.cursor;
        records.save_session(self.slot, &mut cursor, Some(&rec))?;
        self.cursor = cursor;
        self.send_bound = send_bound;
        self.recv_floor = recv_floor;
        Ok(())
    }

    /// Persists the current state with a fresh send reservation (at establishment).
    fn persist_now<S: Storage>(
        &mut self,
        records: &mut Records<S>,
        config: &Config,
    ) -> Result<(), PipeError> {
        let send = self.send.clone();
        let bound = self.send_next + config.send_reserve;
        let floor = self.recv_floor.max(self.rx.top());
        self.persist(records, &send, bound, floor)
    }

    /// Writes `CID | header(mid) | token | E(rest) | tag` into `out`.
    fn write_frame(
        &self,
        key: &CipherKey,
        nonce: u64,
        mid: u16,
        plain: &PlainParts<'_>,
        out: &mut [u8],
    ) -> Result<usize, PipeError> {
        if plain.code() >> 5 == super::frame::HANDSHAKE_CLASS {
            return Err(PipeError::ReservedCode);
        }
        let required = plain.sealed_len();
        let out = out
            .get_mut(..required)
            .ok_or(PipeError::BufferTooSmall { required })?;
        let ad_len = CID_LEN + HEADER_LEN + plain.token.len();
        out[0] = self.cid;
        out[1] = plain.header[0];
        out[2] = plain.header[1];
        out[3..5].copy_from_slice(&mid.to_be_bytes());
        out[5..ad_len].copy_from_slice(plain.token);
        let ct_end = ad_len + plain.rest.len();
        out[ad_len..ct_end].copy_from_slice(plain.rest);
        let (ad, tail) = out.split_at_mut(ad_len);
        let (ct, tag_out) = tail.split_at_mut(plain.rest.len());
        let tag = key.encrypt_in_place(nonce, ad, ct);
        tag_out.copy_from_slice(&tag);
        Ok(required)
    }

    fn seal_own<S: Storage>(
        &mut self,
        records: &mut Records<S>,
        config: &Config,
        plain: &PlainParts<'_>,
        out: &mut [u8],
    ) -> Result<Sealed, PipeError> {
        if plain.kind().is_echo() {
            return Err(PipeError::NeedsTicket);
        }
        if plain.code() >> 5 == super::frame::HANDSHAKE_CLASS {
            return Err(PipeError::ReservedCode);
        }
        let required = plain.sealed_len();
        if out.len() < required {
            return Err(PipeError::BufferTooSmall { required });
        }
        let c = self.send_next;
        if c >= COUNTER_LIMIT {
            return Err(PipeError::CounterExhausted);
        }
        let mut send = self.send.clone();
        send.advance_to(epoch_of(c))?;
        if c >= self.send_bound {
            // Reserve before use: a power cut after this write can only skip counters.
            let floor = self.recv_floor;
            self.persist(records, &send, c + config.send_reserve, floor)?;
        }
        self.send = send;
        let (key, id) = self.send.get(epoch_of(c)).ok_or(PipeError::TooOld)?;
        let len = self.write_frame(key, c, c as u16, plain, out)?;
        self.send_next = c + 1;
        Ok(Sealed {
            len,
            mid: c as u16,
            nonce: Some(c),
            key_id: Some(id),
            carried: true,
            handshake: false,
        })
    }

    fn seal_reply(
        &mut self,
        ticket: &ReplyTicket,
        plain: &PlainParts<'_>,
        out: &mut [u8],
    ) -> Result<Sealed, PipeError> {
        if ticket.generation != self.generation || ticket.cid != self.cid {
            return Err(PipeError::StaleTicket);
        }
        if !plain.kind().is_echo() {
            return Err(PipeError::WrongKind);
        }
        let c = ticket.counter;
        let nonce = ECHO_BIT | c;
        self.send.advance_to(epoch_of(c))?;
        let (key, id) = self.send.get(epoch_of(c)).ok_or(PipeError::TooOld)?;
        let len = self.write_frame(key, nonce, c as u16, plain, out)?;
        Ok(Sealed {
            len,
            mid: c as u16,
            nonce: Some(nonce),
            key_id: Some(id),
            carried: true,
            handshake: false,
        })
    }

    fn open<S: Storage>(
        &mut self,
        records: &mut Records<S>,
        config: &Config,
        frame: &Frame<&[u8]>,
        out: &mut [u8],
    ) -> Result<Received, PipeError> {
        let body = frame.body();
        let ct_len = body
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(PipeError::Frame(FrameError::Truncated))?;
        let (ct, tag) = body.split_at(ct_len);
        let mut tag_arr = [0u8; TAG_LEN];
        tag_arr.copy_from_slice(tag);
        let tkl = frame.token_len();
        let required = HEADER_LEN + tkl + ct_len;
        let out = out
            .get_mut(..required)
            .ok_or(PipeError::BufferTooSmall { required })?;
        let kind = frame.kind();
        let mid = frame.mid();
        let echo = kind.is_echo();
        let counter = if echo {
            let latest = self.send_next.checked_sub(1).ok_or(PipeError::TooOld)?;
            reconstruct_at_most(latest, mid).ok_or(PipeError::TooOld)?
        } else {
            let c = reconstruct(self.rx.top().max(self.send_next), mid);
            if c >= COUNTER_LIMIT {
                return Err(PipeError::TooOld);
            }
            c
        };
        let window = if echo { &self.echo } else { &self.rx };
        let fresh = window.check(counter).map_err(|_| PipeError::TooOld)?;
        let nonce = if echo { ECHO_BIT | counter } else { counter };
        // Authenticate with the key of the counter's epoch (walking forward on a copy only).
        let epoch = epoch_of(counter);
        let mut recv = self.recv.clone();
        if epoch > recv.epoch {
            recv.advance_to(epoch)?;
        }
        let (key, _) = recv.get(epoch).ok_or(PipeError::TooOld)?;
        out[..HEADER_LEN].copy_from_slice(frame.header());
        out[HEADER_LEN..HEADER_LEN + tkl].copy_from_slice(frame.token());
        out[HEADER_LEN + tkl..].copy_from_slice(ct);
        key.decrypt_in_place(
            nonce,
            frame.associated_data(),
            &mut out[HEADER_LEN + tkl..],
            &tag_arr,
        )
        .map_err(|_| PipeError::Auth)?;
        if fresh == Freshness::Duplicate {
            return Ok(Received::Duplicate {
                cid: self.cid,
                mid,
                kind,
            });
        }
        if !echo && counter >= self.recv_floor {
            // Persist the floor before accepting, so a reboot can never accept it again.
            let send = self.send.clone();
            let bound = self.send_bound;
            self.persist(records, &send, bound, counter + config.recv_reserve)?;
        }
        self.recv = recv;
        let ticket = if echo {
            self.echo.accept(counter).map_err(|_| PipeError::TooOld)?;
            None
        } else {
            self.rx.accept(counter).map_err(|_| PipeError::TooOld)?;
            self.send_next = self.send_next.max(counter + 1);
            Some(ReplyTicket {
                cid: self.cid,
                generation: self.generation,
                counter,
            })
        };
        Ok(Received::Message {
            cid: self.cid,
            len: required,
            ticket,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Handshake payload helpers
// ---------------------------------------------------------------------------------------------

/// Handshake payload for a carried message: `[cid]? TKL code token rest`.
fn encode_inner(
    cid: Option<u8>,
    plain: &PlainParts<'_>,
    buf: &mut [u8; MAX_HANDSHAKE_PAYLOAD],
) -> Result<usize, PipeError> {
    let pre = usize::from(cid.is_some());
    let len = pre + 2 + plain.token.len() + plain.rest.len();
    let dst = buf.get_mut(..len).ok_or(PipeError::PayloadTooLarge)?;
    if let Some(c) = cid {
        dst[0] = c;
    }
    dst[pre] = plain.token.len() as u8;
    dst[pre + 1] = plain.code();
    let t_end = pre + 2 + plain.token.len();
    dst[pre + 2..t_end].copy_from_slice(plain.token);
    dst[t_end..].copy_from_slice(plain.rest);
    Ok(len)
}

/// Rebuilds a plaintext CoAP message of type `kind` and Message ID `mid` from `TKL code token
/// rest` into `out`.
fn decode_inner(payload: &[u8], kind: Kind, mid: u16, out: &mut [u8]) -> Result<usize, PipeError> {
    let [tkl, code, rest @ ..] = payload else {
        return Err(PipeError::BadHandshakePayload);
    };
    let tkl = usize::from(*tkl);
    if tkl > MAX_TOKEN_LEN || rest.len() < tkl {
        return Err(PipeError::BadHandshakePayload);
    }
    let required = HEADER_LEN + rest.len();
    let out = out
        .get_mut(..required)
        .ok_or(PipeError::BufferTooSmall { required })?;
    out[0] = 0x40 | (kind.bits() << 4) | tkl as u8;
    out[1] = *code;
    out[2..4].copy_from_slice(&mid.to_be_bytes());
    out[4..].copy_from_slice(rest);
    Ok(required)
}

/// Writes a handshake frame header (`cid`, version 1, `code`'s type, TKL 0, `code`, `mid`) and
/// returns the offset of the Noise message.
fn handshake_header(
    out: &mut [u8],
    cid: u8,
    code: HandshakeCode,
    mid: u16,
) -> Result<usize, PipeError> {
    let hdr = out
        .get_mut(..CID_LEN + HEADER_LEN)
        .ok_or(PipeError::BufferTooSmall {
            required: CID_LEN + HEADER_LEN,
        })?;
    hdr[0] = cid;
    hdr[1] = 0x40 | (code.kind().bits() << 4);
    hdr[2] = code.code();
    hdr[3..5].copy_from_slice(&mid.to_be_bytes());
    Ok(CID_LEN + HEADER_LEN)
}

/// Checks the clear fields of a received handshake frame against what the step requires.
fn expect_handshake(
    frame: &Frame<&[u8]>,
    code: HandshakeCode,
    cid: u8,
    mid: u16,
) -> Result<(), PipeError> {
    if frame.kind() != code.kind()
        || frame.token_len() != 0
        || frame.cid() != cid
        || frame.mid() != mid
    {
        return Err(PipeError::Unexpected);
    }
    Ok(())
}

fn with_room(out: &mut [u8], at: usize) -> &mut [u8] {
    out.get_mut(at..).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Device end
// ---------------------------------------------------------------------------------------------

// Every handshake step works on the `HandshakeState` where it lies in `state` (the state is
// hundreds of bytes): moving it out and back would put copies of it on the stack.
enum DevState {
    Idle,
    /// `XX` message 1 sent (`cid == None`), or message 2 read and message 3 due (`Some`).
    Xx {
        hs: HandshakeState,
        base: u64,
        cid: Option<u8>,
    },
    Ik1Sent {
        hs: HandshakeState,
        base: u64,
        /// The ephemeral of IK message 1, kept to start XXfallback without consuming `hs`
        /// (so a forged fallback message leaves the IK handshake intact).
        e: Keypair,
    },
    FallbackReady {
        hs: HandshakeState,
        base: u64,
        cid: u8,
    },
    Established(Session),
}

/// The device end of the pipe (Noise initiator). Sans-I/O: feed it received frames with
/// [`open`](Self::open), get frames to transmit from [`seal`](Self::seal) /
/// [`seal_reply`](Self::seal_reply); retransmit a CON by re-sending the same frame bytes.
pub struct Initiator<S: Storage> {
    records: Records<S>,
    identity: Keypair,
    pin: Option<[u8; 32]>,
    presented: Option<[u8; 32]>,
    config: Config,
    state: DevState,
    generation: u32,
    handshake_bytes: usize,
}

impl<S: Storage> fmt::Debug for Initiator<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("state", &self.state())
            .field("pinned", &self.pin.is_some())
            .finish_non_exhaustive()
    }
}

/// The static key from storage, or on first boot a new one, stored before it is used.
fn load_or_create_identity<S: Storage, R: CryptoRng + ?Sized>(
    records: &mut Records<S>,
    rng: &mut R,
) -> Result<Keypair, PipeError> {
    if let Some(secret) = records.load_identity()? {
        return Ok(Keypair::from_secret(secret));
    }
    let kp = Keypair::generate(rng);
    let mut secret = kp.secret_bytes();
    let stored = records.save_identity(&secret);
    secret.zeroize();
    stored?;
    Ok(kp)
}

impl<S: Storage> Initiator<S> {
    /// Opens the device end over `storage`: loads (or on first boot generates and stores) the
    /// static key, the pinned gateway key and a persisted session. A persisted session resumes
    /// at once: no handshake byte is sent.
    pub fn new<R: CryptoRng + ?Sized>(
        storage: S,
        config: Config,
        rng: &mut R,
    ) -> Result<Self, PipeError> {
        config.check()?;
        let mut records = Records::new(storage);
        let identity = load_or_create_identity(&mut records, rng)?;
        let pin = records.load_pin()?;
        let generation = rng.next_u32();
        let (rec, cursor) = records.load_session(0)?;
        let state = match rec {
            Some(rec) if rec.initiator => {
                DevState::Established(Session::resume(&rec, 0, cursor, generation))
            }
            _ => DevState::Idle,
        };
        Ok(Initiator {
            records,
            identity,
            pin,
            presented: None,
            config,
            state,
            generation,
            handshake_bytes: 0,
        })
    }

    /// The device's static public key.
    pub fn public_key(&self) -> [u8; 32] {
        *self.identity.public()
    }

    /// The pinned gateway key.
    pub fn pinned_key(&self) -> Option<[u8; 32]> {
        self.pin
    }

    /// The key the gateway presented in the last [`PipeError::PinnedKeyMismatch`].
    pub fn presented_key(&self) -> Option<[u8; 32]> {
        self.presented
    }

    /// Explicit re-pinning: sets (or with `None` clears, for a new first contact) the pinned
    /// gateway key and drops the session.
    pub fn repin(&mut self, key: Option<[u8; 32]>) -> Result<(), PipeError> {
        self.records.save_pin(key.as_ref())?;
        self.pin = key;
        self.presented = None;
        self.reset_session()
    }

    /// Explicit re-pinning to the key presented in the last [`PipeError::PinnedKeyMismatch`].
    pub fn accept_presented_key(&mut self) -> Result<(), PipeError> {
        let key = self.presented.ok_or(PipeError::NoPresentedKey)?;
        self.repin(Some(key))
    }

    /// Forgets the session (e.g. the gateway lost it and CoAP timed out): the next
    /// [`seal`](Self::seal) starts a handshake (IK if a key is pinned).
    pub fn reset_session(&mut self) -> Result<(), PipeError> {
        let (_, mut cursor) = self.records.load_session(0)?;
        self.records.save_session(0, &mut cursor, None)?;
        self.state = DevState::Idle;
        Ok(())
    }

    /// Current state.
    pub fn state(&self) -> PipeState {
        match &self.state {
            DevState::Idle => PipeState::NoSession,
            DevState::Xx { cid: None, .. } => PipeState::Handshaking(Pattern::XX),
            DevState::Ik1Sent { .. } => PipeState::Handshaking(Pattern::IK),
            DevState::Xx { cid: Some(_), .. } => PipeState::NeedRequest(Pattern::XX),
            DevState::FallbackReady { .. } => PipeState::NeedRequest(Pattern::XXfallback),
            DevState::Established(_) => PipeState::Established,
        }
    }

    /// Turns a finished handshake into the established session (own counters from
    /// `send_next`, answers to own counters from `echo_floor` on) and persists it before use.
    fn establish(
        &mut self,
        transport: Transport,
        cid: u8,
        send_next: u64,
        echo_floor: u64,
    ) -> Result<(), PipeError> {
        self.generation = self.generation.wrapping_add(1);
        let mut s = Session::from_transport(
            transport,
            Fresh {
                cid,
                slot: 0,
                initiator: true,
                send_next,
                rx: ReplayWindow::new(0),
                echo_floor,
                generation: self.generation,
            },
        );
        s.persist_now(&mut self.records, &self.config)?;
        self.state = DevState::Established(s);
        Ok(())
    }

    /// The connection ID of the established session.
    pub fn cid(&self) -> Option<u8> {
        match &self.state {
            DevState::Established(s) => Some(s.cid),
            _ => None,
        }
    }

    /// Total bytes of handshake frames sealed and opened by this instance.
    pub fn handshake_bytes(&self) -> usize {
        self.handshake_bytes
    }

    /// Gives the storage back (e.g. to simulate a reboot in tests).
    pub fn into_storage(self) -> S {
        self.records.into_inner()
    }

    /// Seals a plaintext CoAP message (`header | token | options [| 0xFF payload]`; its Message
    /// ID is ignored and replaced). In order of state:
    /// - no session, key pinned: `IK` message 1 carrying the message (0-RTT; must be CON);
    /// - no session, nothing pinned: `XX` message 1, carrying nothing (`carried == false`);
    /// - [`PipeState::NeedRequest`]: the last handshake message, carrying the message (CON);
    /// - established: a transport frame under the own counter (CON/NON only).
    pub fn seal<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        message: &[u8],
        out: &mut [u8],
    ) -> Result<Sealed, PipeError> {
        let plain = PlainParts::split(message)?;
        match &mut self.state {
            DevState::Established(s) => s.seal_own(&mut self.records, &self.config, &plain, out),
            DevState::Idle => self.start(rng, &plain, out),
            DevState::Xx { cid: Some(_), .. } | DevState::FallbackReady { .. } => {
                self.finish(rng, &plain, out)
            }
            _ => Err(PipeError::HandshakeInProgress),
        }
    }

    // Not inlined into `seal`: its handshake temporaries would otherwise stay reserved in the
    // caller's frame under the other branches (`finish`, transport), the device's deepest stack.
    #[inline(never)]
    fn start<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plain: &PlainParts<'_>,
        out: &mut [u8],
    ) -> Result<Sealed, PipeError> {
        let base = u64::from(rng.next_u32() as u16);
        let (code, pattern) = match self.pin {
            Some(_) => (HandshakeCode::Ik1, Pattern::IK),
            None => (HandshakeCode::Xx1, Pattern::XX),
        };
        let mut scratch = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let payload_len = if pattern == Pattern::IK {
            if plain.kind() != Kind::Con {
                return Err(PipeError::WrongKind);
            }
            encode_inner(None, plain, &mut scratch)?
        } else {
            0
        };
        // Built in `state` and written there; any failure below leaves the state `Idle`.
        self.begin(rng, pattern, base)?;
        let hs = match &mut self.state {
            DevState::Ik1Sent { hs, .. } | DevState::Xx { hs, .. } => hs,
            _ => return Err(PipeError::Unexpected),
        };
        let n = handshake_header(out, CID_NONE, code, base as u16).and_then(|at| {
            let n = hs.write_message(&scratch[..payload_len], with_room(out, at), rng)?;
            Ok(at + n)
        });
        scratch.zeroize();
        let len = match n {
            Ok(len) => len,
            Err(e) => {
                self.state = DevState::Idle;
                return Err(e);
            }
        };
        self.handshake_bytes += len;
        Ok(Sealed {
            len,
            mid: base as u16,
            nonce: None,
            key_id: None,
            carried: pattern == Pattern::IK,
            handshake: true,
        })
    }

    /// Puts a new handshake of `pattern` with a fresh ephemeral into `state`. Its own frame: the
    /// temporaries of building the state are not live while the first message is written.
    #[inline(never)]
    fn begin<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        pattern: Pattern,
        base: u64,
    ) -> Result<(), PipeError> {
        let mut hs = HandshakeState::new(
            pattern,
            Role::Initiator,
            &prologue(base as u16),
            self.identity.clone(),
            self.pin,
        )?;
        let e = Keypair::generate(rng);
        self.state = match pattern {
            Pattern::IK => {
                hs.set_ephemeral(e.clone());
                DevState::Ik1Sent { hs, base, e }
            }
            _ => {
                hs.set_ephemeral(e);
                DevState::Xx {
                    hs,
                    base,
                    cid: None,
                }
            }
        };
        Ok(())
    }

    /// Writes the last handshake message (`XX` 3 or `XXfallback` 2) carrying `plain`, in place
    /// in `state`; a failure before the message is written leaves the handshake as it was.
    #[inline(never)]
    fn finish<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plain: &PlainParts<'_>,
        out: &mut [u8],
    ) -> Result<Sealed, PipeError> {
        let (hs, base, cid, code) = match &mut self.state {
            DevState::Xx {
                hs,
                base,
                cid: Some(cid),
            } => (hs, *base, *cid, HandshakeCode::Xx3),
            DevState::FallbackReady { hs, base, cid } => {
                (hs, *base, *cid, HandshakeCode::Fallback2)
            }
            _ => return Err(PipeError::Unexpected),
        };
        if plain.kind() != Kind::Con {
            return Err(PipeError::WrongKind);
        }
        let mut scratch = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let payload_len = encode_inner(None, plain, &mut scratch)?;
        let mid = (base + 1) as u16;
        let at = handshake_header(out, cid, code, mid)?;
        // A failed write leaves `hs` unchanged.
        let n = hs.write_message(&scratch[..payload_len], with_room(out, at), rng);
        scratch.zeroize();
        let n = n?;
        // The handshake is complete: the transport takes over. The reply to the carried request
        // (counter base+1) arrives as a transport ACK under the echoed nonce.
        let transport = hs.transport();
        self.state = DevState::Idle;
        self.establish(transport?, cid, base + 2, base + 1)?;
        let len = at + n;
        self.handshake_bytes += len;
        Ok(Sealed {
            len,
            mid,
            nonce: None,
            key_id: None,
            carried: true,
            handshake: true,
        })
    }

    /// Seals an ACK or RST answering the peer message the ticket stands for (its Message ID is
    /// set from the ticket). Consumes the ticket on success: a message is answered once; a
    /// retransmission arrives as [`Received::Duplicate`] and is answered from the CoAP cache.
    /// On failure nothing was encrypted and the ticket comes back in [`ReplyFailed`].
    pub fn seal_reply(
        &mut self,
        ticket: ReplyTicket,
        message: &[u8],
        out: &mut [u8],
    ) -> Result<Sealed, ReplyFailed> {
        let r = PlainParts::split(message)
            .map_err(PipeError::from)
            .and_then(|plain| match &mut self.state {
                DevState::Established(s) => s.seal_reply(&ticket, &plain, out),
                _ => Err(PipeError::StaleTicket),
            });
        r.map_err(|error| ReplyFailed { error, ticket })
    }

    /// Processes a received frame; plaintext or the frame to send goes to `out`.
    pub fn open(&mut self, frame: &[u8], out: &mut [u8]) -> Result<Received, PipeError> {
        let f = Frame::new_checked(frame)?;
        if !f.is_handshake() {
            return match &mut self.state {
                DevState::Established(s) => {
                    if f.cid() != s.cid {
                        return Err(PipeError::UnknownSession);
                    }
                    s.open(&mut self.records, &self.config, &f, out)
                }
                _ => Err(PipeError::NoSession),
            };
        }
        self.open_handshake_frame(&f, frame.len(), out)
    }

    /// A received handshake frame. Its own frame: the decrypted-payload buffer is not on the
    /// caller's stack while the caller goes on (e.g. seals the next message).
    #[inline(never)]
    fn open_handshake_frame(
        &mut self,
        f: &Frame<&[u8]>,
        frame_len: usize,
        out: &mut [u8],
    ) -> Result<Received, PipeError> {
        let code = HandshakeCode::from_code(f.code());
        let mut payload = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let result = self.open_handshake(f, code, &mut payload, out);
        payload.zeroize();
        if result.is_ok() {
            self.handshake_bytes += frame_len;
        }
        result
    }

    fn open_handshake(
        &mut self,
        f: &Frame<&[u8]>,
        code: HandshakeCode,
        payload: &mut [u8; MAX_HANDSHAKE_PAYLOAD],
        out: &mut [u8],
    ) -> Result<Received, PipeError> {
        // A carried message is never longer than the handshake message that carries it.
        let body_len = f.body().len();
        if out.len() < body_len {
            return Err(PipeError::BufferTooSmall { required: body_len });
        }
        match (&mut self.state, code) {
            (
                DevState::Xx {
                    hs,
                    base,
                    cid: next_cid @ None,
                },
                HandshakeCode::Xx2,
            ) => {
                let base = *base;
                expect_handshake(f, code, CID_NONE, base as u16)?;
                // A failed read (forged or foreign frame) leaves `hs` unchanged.
                let n = hs.read_message(f.body(), payload)?;
                let rs = hs.remote_static();
                // The handshake has advanced: from here any failure abandons it.
                let cid = match payload.get(..n) {
                    Some(&[cid]) if cid != CID_NONE => Some(cid),
                    _ => None,
                };
                let (Some(cid), Some(rs)) = (cid, rs) else {
                    self.state = DevState::Idle;
                    return Err(match cid {
                        None => PipeError::BadHandshakePayload,
                        Some(_) => PipeError::Unexpected,
                    });
                };
                *next_cid = Some(cid);
                // Trust on first use: pin the key the gateway just proved.
                if let Err(e) = self.records.save_pin(Some(&rs)) {
                    self.state = DevState::Idle;
                    return Err(e.into());
                }
                self.pin = Some(rs);
                Ok(Received::NeedRequest)
            }
            (DevState::Ik1Sent { hs, base, .. }, HandshakeCode::Ik2) => {
                let base = *base;
                expect_handshake(f, code, CID_NONE, base as u16)?;
                let n = hs.read_message(f.body(), payload)?;
                // The handshake is complete (or abandoned on any failure below).
                let transport = hs.transport();
                self.state = DevState::Idle;
                let (cid, inner) = match payload.get(..n) {
                    Some([cid, inner @ ..]) if *cid != CID_NONE => (*cid, inner),
                    _ => return Err(PipeError::BadHandshakePayload),
                };
                let len = decode_inner(inner, Kind::Ack, base as u16, out)?;
                self.establish(transport?, cid, base + 1, base + 1)?;
                Ok(Received::Message {
                    cid,
                    len,
                    ticket: None,
                })
            }
            (DevState::Ik1Sent { base, e, .. }, HandshakeCode::Fallback1) => {
                let base = *base;
                expect_handshake(f, code, CID_NONE, base as u16)?;
                let mut fb = HandshakeState::new_xxfallback_responder(
                    self.identity.clone(),
                    e.clone(),
                    &prologue(base as u16),
                )?;
                // On failure the IK handshake is still waiting for the real answer.
                let n = fb.read_message(f.body(), payload)?;
                self.state = DevState::Idle;
                let cid = match payload.get(..n) {
                    Some(&[cid]) if cid != CID_NONE => cid,
                    _ => return Err(PipeError::BadHandshakePayload),
                };
                let rs = fb.remote_static().ok_or(PipeError::Unexpected)?;
                let matches = self.pin.is_some_and(|p| ct_eq(&p, &rs));
                if !matches {
                    // No silent re-pinning: abandon the handshake, report the presented key.
                    self.presented = Some(rs);
                    return Err(PipeError::PinnedKeyMismatch);
                }
                self.state = DevState::FallbackReady { hs: fb, base, cid };
                Ok(Received::NeedRequest)
            }
            _ => Err(PipeError::Unexpected),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway end
// ---------------------------------------------------------------------------------------------

enum GwState {
    Xx2Sent {
        hs: HandshakeState,
        base: u64,
    },
    IkReplyPending {
        hs: HandshakeState,
        base: u64,
        generation: u32,
    },
    Fb1Sent {
        hs: HandshakeState,
        base: u64,
    },
    Established(Session),
    /// A handshake that failed after its state advanced; the slot is about to be freed.
    Abandoned,
}

struct GwSlot {
    cid: u8,
    last_used: u64,
    /// Digest of the last handshake frame received for this slot (retransmission detection).
    hs_digest: Option<[u8; 32]>,
    /// The handshake frame sent in answer to it (re-sent on retransmission).
    hs_reply: heapless::Vec<u8, MAX_HANDSHAKE_FRAME>,
    state: GwState,
}

/// The gateway end of the pipe (Noise responder) for up to `N` sessions, found by connection ID.
pub struct Responder<S: Storage, const N: usize> {
    records: Records<S>,
    identity: Keypair,
    config: Config,
    slots: [Option<GwSlot>; N],
    generation: u32,
    clock: u64,
    handshake_bytes: usize,
}

impl<S: Storage, const N: usize> fmt::Debug for Responder<S, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("sessions", &self.slots.iter().flatten().count())
            .finish_non_exhaustive()
    }
}

impl<S: Storage, const N: usize> Responder<S, N> {
    /// Opens the gateway end: loads (or generates and stores) the static key and every persisted
    /// session (CIDs 1–255, up to `N`; slots the storage lacks count as empty).
    pub fn new<R: CryptoRng + ?Sized>(
        storage: S,
        config: Config,
        rng: &mut R,
    ) -> Result<Self, PipeError> {
        config.check()?;
        let mut records = Records::new(storage);
        let identity = load_or_create_identity(&mut records, rng)?;
        let mut generation = rng.next_u32();
        let mut slots: [Option<GwSlot>; N] = core::array::from_fn(|_| None);
        let mut free = slots.iter_mut();
        for cid in 1..=u8::MAX {
            let (rec, cursor) = match records.load_session(cid) {
                Ok(x) => x,
                Err(StorageError::NoSlot) => break,
                Err(e) => return Err(e.into()),
            };
            let Some(rec) = rec.filter(|r| !r.initiator && r.cid == cid) else {
                continue;
            };
            let Some(slot) = free.next() else { break };
            generation = generation.wrapping_add(1);
            *slot = Some(GwSlot {
                cid,
                last_used: 0,
                hs_digest: None,
                hs_reply: heapless::Vec::new(),
                state: GwState::Established(Session::resume(&rec, cid, cursor, generation)),
            });
        }
        Ok(Responder {
            records,
            identity,
            config,
            slots,
            generation,
            clock: 0,
            handshake_bytes: 0,
        })
    }

    /// Creates the gateway end with a given static key (stored, replacing any other).
    pub fn with_identity<R: CryptoRng + ?Sized>(
        storage: S,
        config: Config,
        secret: [u8; 32],
        rng: &mut R,
    ) -> Result<Self, PipeError> {
        let mut records = Records::new(storage);
        records.load_identity()?;
        records.save_identity(&secret)?;
        Self::new(records.into_inner(), config, rng)
    }

    /// The gateway's static public key.
    pub fn public_key(&self) -> [u8; 32] {
        *self.identity.public()
    }

    /// The authenticated static key of the device behind `cid`.
    pub fn remote_static(&self, cid: u8) -> Option<[u8; 32]> {
        match self.slot(cid).map(|s| &s.state) {
            Some(GwState::Established(s)) => Some(s.remote_static),
            // IK message 1 authenticated the device's static key (`ss`); the gateway needs it
            // to serve the 0-RTT request before IK message 2 completes the handshake.
            Some(GwState::IkReplyPending { hs, .. }) => hs.remote_static(),
            _ => None,
        }
    }

    /// Number of sessions (established or handshaking).
    pub fn session_count(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Total bytes of handshake frames sealed and opened by this instance.
    pub fn handshake_bytes(&self) -> usize {
        self.handshake_bytes
    }

    /// Gives the storage back.
    pub fn into_storage(self) -> S {
        self.records.into_inner()
    }

    fn slot(&self, cid: u8) -> Option<&GwSlot> {
        self.slots.iter().flatten().find(|s| s.cid == cid)
    }

    /// Picks a slot (evicting the least recently used session if all are taken) and the lowest
    /// free connection ID for a new handshake.
    fn allocate(&mut self) -> Result<(usize, u8), PipeError> {
        let idx = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                let i = self
                    .slots
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.as_ref().map_or(0, |s| s.last_used))
                    .map(|(i, _)| i)
                    .ok_or(PipeError::Unexpected)?;
                if let Some(old) = self.slots.get_mut(i).and_then(Option::take) {
                    let (_, mut c) = self.records.load_session(old.cid)?;
                    self.records.save_session(old.cid, &mut c, None)?;
                }
                i
            }
        };
        let cid = (1..=u8::MAX)
            .find(|c| self.slot(*c).is_none())
            .ok_or(PipeError::Unexpected)?;
        Ok((idx, cid))
    }

    /// Processes a received frame. A handshake answer or plaintext goes to `out`.
    pub fn open<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<Received, PipeError> {
        let f = Frame::new_checked(frame)?;
        self.clock += 1;
        let now = self.clock;
        if !f.is_handshake() {
            let Some(slot) = self.slots.iter_mut().flatten().find(|s| s.cid == f.cid()) else {
                return Err(PipeError::UnknownSession);
            };
            let GwState::Established(s) = &mut slot.state else {
                return Err(PipeError::Unexpected);
            };
            let r = s.open(&mut self.records, &self.config, &f, out)?;
            // The device has its transport keys: the cached handshake answer is done with.
            slot.hs_digest = None;
            slot.hs_reply.clear();
            slot.last_used = now;
            return Ok(r);
        }
        let d = digest(frame);
        if let Some(slot) = self.slots.iter().flatten().find(|s| s.hs_digest == Some(d)) {
            // A retransmitted handshake message: re-send the cached answer, byte for byte.
            if slot.hs_reply.is_empty() {
                return Ok(Received::Duplicate {
                    cid: slot.cid,
                    mid: f.mid(),
                    kind: f.kind(),
                });
            }
            let len = slot.hs_reply.len();
            let dst = out
                .get_mut(..len)
                .ok_or(PipeError::BufferTooSmall { required: len })?;
            dst.copy_from_slice(&slot.hs_reply);
            return Ok(Received::Handshake { cid: slot.cid, len });
        }
        let mut payload = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let r = self.open_handshake(rng, &f, d, &mut payload, out);
        payload.zeroize();
        if r.is_ok() {
            self.handshake_bytes += frame.len();
            if let Ok(Received::Handshake { len, .. }) = r {
                self.handshake_bytes += len;
            }
        }
        r
    }

    fn open_handshake<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        f: &Frame<&[u8]>,
        d: [u8; 32],
        payload: &mut [u8; MAX_HANDSHAKE_PAYLOAD],
        out: &mut [u8],
    ) -> Result<Received, PipeError> {
        let code = HandshakeCode::from_code(f.code());
        let now = self.clock;
        // A carried message is never longer than the handshake message that carries it.
        let body_len = f.body().len();
        if out.len() < body_len {
            return Err(PipeError::BufferTooSmall { required: body_len });
        }
        match code {
            HandshakeCode::Xx1 | HandshakeCode::Ik1 => {
                expect_handshake(f, code, CID_NONE, f.mid())?;
                let base = u64::from(f.mid());
                let p = prologue(f.mid());
                let pattern = if code == HandshakeCode::Xx1 {
                    Pattern::XX
                } else {
                    Pattern::IK
                };
                let mut hs =
                    HandshakeState::new(pattern, Role::Responder, &p, self.identity.clone(), None)?;
                let read = hs.read_message(f.body(), payload);
                if code == HandshakeCode::Xx1 {
                    if read? != 0 {
                        return Err(PipeError::BadHandshakePayload);
                    }
                    let (idx, cid) = self.allocate()?;
                    let at = handshake_header(out, CID_NONE, HandshakeCode::Xx2, f.mid())?;
                    let n = hs.write_message(&[cid], with_room(out, at), rng)?;
                    return self.install(
                        idx,
                        cid,
                        now,
                        d,
                        &out[..at + n],
                        GwState::Xx2Sent { hs, base },
                    );
                }
                match read {
                    Ok(n) => {
                        let len = decode_inner(
                            payload.get(..n).unwrap_or_default(),
                            Kind::Con,
                            f.mid(),
                            out,
                        )?;
                        let (idx, cid) = self.allocate()?;
                        self.generation = self.generation.wrapping_add(1);
                        let ticket = ReplyTicket {
                            cid,
                            generation: self.generation,
                            counter: base,
                        };
                        self.install(
                            idx,
                            cid,
                            now,
                            d,
                            &[],
                            GwState::IkReplyPending {
                                hs,
                                base,
                                generation: self.generation,
                            },
                        )?;
                        Ok(Received::Message {
                            cid,
                            len,
                            ticket: Some(ticket),
                        })
                    }
                    Err(NoiseError::Decrypt) => {
                        // Noise Pipes: cannot decrypt IK message 1 → answer with XXfallback.
                        let mut fb = HandshakeState::fallback_responder_side(
                            self.identity.clone(),
                            &p,
                            f.body(),
                        )?;
                        let (idx, cid) = self.allocate()?;
                        let at =
                            handshake_header(out, CID_NONE, HandshakeCode::Fallback1, f.mid())?;
                        let n = fb.write_message(&[cid], with_room(out, at), rng)?;
                        self.install(
                            idx,
                            cid,
                            now,
                            d,
                            &out[..at + n],
                            GwState::Fb1Sent { hs: fb, base },
                        )
                    }
                    Err(e) => Err(e.into()),
                }
            }
            HandshakeCode::Xx3 | HandshakeCode::Fallback2 => {
                let cid = f.cid();
                let generation = self.generation.wrapping_add(1);
                let Some(slot) = self
                    .slots
                    .iter_mut()
                    .find(|s| s.as_ref().is_some_and(|s| s.cid == cid))
                else {
                    return Err(PipeError::UnknownSession);
                };
                let Some(gw_slot) = slot.as_mut() else {
                    return Err(PipeError::UnknownSession);
                };
                let (hs, base) = match (&mut gw_slot.state, code) {
                    (GwState::Xx2Sent { hs, base }, HandshakeCode::Xx3)
                    | (GwState::Fb1Sent { hs, base }, HandshakeCode::Fallback2) => (hs, *base),
                    _ => return Err(PipeError::Unexpected),
                };
                expect_handshake(f, code, cid, (base + 1) as u16)?;
                // A failed read (forged frame) leaves the handshake unchanged.
                let n = hs.read_message(f.body(), payload)?;
                // The handshake has advanced: any failure from here drops the half-open session.
                let (GwState::Xx2Sent { hs, .. } | GwState::Fb1Sent { hs, .. }) =
                    core::mem::replace(&mut gw_slot.state, GwState::Abandoned)
                else {
                    return Err(PipeError::Unexpected);
                };
                let result = (|| {
                    let len = decode_inner(
                        payload.get(..n).unwrap_or_default(),
                        Kind::Con,
                        f.mid(),
                        out,
                    )?;
                    let transport = hs.into_transport()?;
                    let mut rx = ReplayWindow::new(base);
                    rx.accept(base).map_err(|_| PipeError::TooOld)?;
                    rx.accept(base + 1).map_err(|_| PipeError::TooOld)?;
                    let mut s = Session::from_transport(
                        transport,
                        Fresh {
                            cid,
                            slot: cid,
                            initiator: false,
                            send_next: base + 2,
                            rx,
                            echo_floor: 0,
                            generation,
                        },
                    );
                    s.persist_now(&mut self.records, &self.config)?;
                    Ok((len, s))
                })();
                let (len, s) = match result {
                    Ok(x) => x,
                    Err(e) => {
                        *slot = None;
                        return Err(e);
                    }
                };
                self.generation = generation;
                gw_slot.state = GwState::Established(s);
                gw_slot.hs_digest = Some(d);
                gw_slot.hs_reply.clear();
                gw_slot.last_used = now;
                Ok(Received::Message {
                    cid,
                    len,
                    ticket: Some(ReplyTicket {
                        cid,
                        generation,
                        counter: base + 1,
                    }),
                })
            }
            _ => Err(PipeError::Unexpected),
        }
    }

    fn install(
        &mut self,
        idx: usize,
        cid: u8,
        now: u64,
        d: [u8; 32],
        reply: &[u8],
        state: GwState,
    ) -> Result<Received, PipeError> {
        let mut hs_reply = heapless::Vec::new();
        hs_reply
            .extend_from_slice(reply)
            .map_err(|_| PipeError::PayloadTooLarge)?;
        let slot = self.slots.get_mut(idx).ok_or(PipeError::Unexpected)?;
        *slot = Some(GwSlot {
            cid,
            last_used: now,
            hs_digest: Some(d),
            hs_reply,
            state,
        });
        Ok(Received::Handshake {
            cid,
            len: reply.len(),
        })
    }

    /// Seals a CON/NON of the gateway (e.g. an Observe notification) for session `cid` under the
    /// gateway's own counter (its Message ID is replaced).
    pub fn seal(&mut self, cid: u8, message: &[u8], out: &mut [u8]) -> Result<Sealed, PipeError> {
        let plain = PlainParts::split(message)?;
        let Some(slot) = self.slots.iter_mut().flatten().find(|s| s.cid == cid) else {
            return Err(PipeError::UnknownSession);
        };
        let GwState::Established(s) = &mut slot.state else {
            return Err(PipeError::HandshakeInProgress);
        };
        s.seal_own(&mut self.records, &self.config, &plain, out)
    }

    /// Seals the ACK/RST answering the message the ticket stands for. For the request carried
    /// in an `IK` message 1 this writes `IK` message 2 carrying the answer (which completes the
    /// handshake); otherwise a transport frame under the echoed nonce.
    ///
    /// Consumes the ticket on success; on failure nothing was sent and the ticket comes back in
    /// [`ReplyFailed`].
    pub fn seal_reply<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        ticket: ReplyTicket,
        message: &[u8],
        out: &mut [u8],
    ) -> Result<Sealed, ReplyFailed> {
        self.seal_reply_inner(rng, &ticket, message, out)
            .map_err(|error| ReplyFailed { error, ticket })
    }

    fn seal_reply_inner<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        ticket: &ReplyTicket,
        message: &[u8],
        out: &mut [u8],
    ) -> Result<Sealed, PipeError> {
        let plain = PlainParts::split(message)?;
        if !plain.kind().is_echo() {
            return Err(PipeError::WrongKind);
        }
        let cid = ticket.cid;
        let idx = self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.cid == cid))
            .ok_or(PipeError::StaleTicket)?;
        let Some(Some(slot)) = self.slots.get_mut(idx) else {
            return Err(PipeError::StaleTicket);
        };
        let (hs, base, generation) = match &mut slot.state {
            GwState::Established(_) => {
                let GwState::Established(s) = &mut slot.state else {
                    return Err(PipeError::StaleTicket);
                };
                return s.seal_reply(ticket, &plain, out);
            }
            GwState::IkReplyPending {
                hs,
                base,
                generation,
            } => (hs, *base, *generation),
            _ => return Err(PipeError::StaleTicket),
        };
        if ticket.generation != generation || ticket.counter != base {
            return Err(PipeError::StaleTicket);
        }
        let mut scratch = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let payload_len = encode_inner(Some(cid), &plain, &mut scratch)?;
        let at = handshake_header(out, CID_NONE, HandshakeCode::Ik2, base as u16)?;
        // A failed write leaves the handshake unchanged (e.g. a too small `out`).
        let n = hs.write_message(&scratch[..payload_len], with_room(out, at), rng);
        scratch.zeroize();
        let len = at + n?;
        let GwState::IkReplyPending { hs, .. } =
            core::mem::replace(&mut slot.state, GwState::Abandoned)
        else {
            return Err(PipeError::Unexpected);
        };
        let records = &mut self.records;
        let config = &self.config;
        let result = (|| {
            let transport = hs.into_transport()?;
            let mut rx = ReplayWindow::new(base);
            rx.accept(base).map_err(|_| PipeError::TooOld)?;
            let mut s = Session::from_transport(
                transport,
                Fresh {
                    cid,
                    slot: cid,
                    initiator: false,
                    send_next: base + 1,
                    rx,
                    echo_floor: 0,
                    generation,
                },
            );
            s.persist_now(records, config)?;
            slot.state = GwState::Established(s);
            slot.hs_reply.clear();
            slot.hs_reply
                .extend_from_slice(out.get(..len).unwrap_or_default())
                .map_err(|_| PipeError::PayloadTooLarge)
        })();
        if let Err(e) = result {
            // Nothing was sent: drop the half-open session; a retransmitted IK message 1
            // starts over.
            if let Some(s) = self.slots.get_mut(idx) {
                *s = None;
            }
            return Err(e);
        }
        self.handshake_bytes += len;
        Ok(Sealed {
            len,
            mid: base as u16,
            nonce: None,
            key_id: None,
            carried: true,
            handshake: true,
        })
    }

    /// Drops the session `cid` (and its persisted record).
    pub fn drop_session(&mut self, cid: u8) -> Result<(), PipeError> {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|s| s.cid == cid))
        {
            *slot = None;
        }
        let (_, mut c) = self.records.load_session(cid)?;
        self.records.save_session(cid, &mut c, None)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Bytes report
// ---------------------------------------------------------------------------------------------

/// Frame sizes on air, measured from real frames by [`handshake_report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BytesReport {
    /// `XX` messages 1, 2 and 3 (3 carries the request).
    pub xx: [usize; 3],
    /// The transport frame answering the request carried in `XX` message 3.
    pub xx_response: usize,
    /// `IK` message 1 (carries the request) and message 2 (carries the response).
    pub ik: [usize; 2],
    /// `IK` message 1, `XXfallback` message 1, `XXfallback` message 2 (carries the request).
    pub fallback: [usize; 3],
    /// The transport frame answering the request carried in `XXfallback` message 2.
    pub fallback_response: usize,
    /// Established session: the request as a transport frame.
    pub request: usize,
    /// Established session: the response as a transport frame.
    pub response: usize,
    /// Established session: an empty ACK.
    pub empty_ack: usize,
}

impl fmt::Display for BytesReport {
    /// A plain-text table (bytes on air, link payload: CID + CoAP + Noise).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [x1, x2, x3] = self.xx;
        let [i1, i2] = self.ik;
        let [f0, f1, f2] = self.fallback;
        writeln!(
            f,
            "flow                     frames (bytes)              total"
        )?;
        writeln!(
            f,
            "XX first contact         {x1} + {x2} + {x3} + {}        {}",
            self.xx_response,
            x1 + x2 + x3 + self.xx_response
        )?;
        writeln!(
            f,
            "IK reconnect (0-RTT)     {i1} + {i2}                    {}",
            i1 + i2
        )?;
        writeln!(
            f,
            "IK -> XXfallback         {f0} + {f1} + {f2} + {}       {}",
            self.fallback_response,
            f0 + f1 + f2 + self.fallback_response
        )?;
        writeln!(
            f,
            "established              {} + {}                     {}",
            self.request,
            self.response,
            self.request + self.response
        )?;
        write!(f, "empty ACK                {}", self.empty_ack)
    }
}

/// Runs a device and a gateway in memory and measures every frame of first contact (`XX`),
/// reconnection (`IK`, 0-RTT), `IK` → `XXfallback` (forced by corrupting `IK` message 1 in
/// flight, which gives the same sizes as a gateway that cannot decrypt it) and an established
/// session, for one `request` (a CON) and its `response` (an ACK).
pub fn handshake_report<R: CryptoRng + ?Sized>(
    rng: &mut R,
    request: &[u8],
    response: &[u8],
) -> Result<BytesReport, PipeError> {
    use super::storage::RamStorage;
    let mut gw: Responder<RamStorage<8>, 1> =
        Responder::new(RamStorage::new(), Config::GATEWAY, rng)?;
    let mut dev: Initiator<RamStorage> = Initiator::new(RamStorage::new(), Config::DEVICE, rng)?;
    let mut a = [0u8; MAX_HANDSHAKE_FRAME];
    let mut b = [0u8; MAX_HANDSHAKE_FRAME];
    let unexpected = |_| PipeError::Unexpected;
    let ticket_of = |r: Received| match r {
        Received::Message {
            ticket: Some(t), ..
        } => Ok(t),
        _ => Err(PipeError::Unexpected),
    };
    let handshake_len = |r: Received| match r {
        Received::Handshake { len, .. } => Ok(len),
        _ => Err(PipeError::Unexpected),
    };

    // XX first contact.
    let x1 = dev.seal(rng, request, &mut a)?.len;
    let x2 = handshake_len(gw.open(rng, &a[..x1], &mut b)?)?;
    dev.open(&b[..x2], &mut a)?;
    let x3 = dev.seal(rng, request, &mut a)?.len;
    let t = ticket_of(gw.open(rng, &a[..x3], &mut b)?)?;
    let xx_response = gw.seal_reply(rng, t, response, &mut b)?.len;
    dev.open(&b[..xx_response], &mut a)?;

    // Established session.
    let req = dev.seal(rng, request, &mut a)?.len;
    let t = ticket_of(gw.open(rng, &a[..req], &mut b)?)?;
    let resp = gw.seal_reply(rng, t, response, &mut b)?.len;
    dev.open(&b[..resp], &mut a)?;
    let req2 = dev.seal(rng, request, &mut a)?.len;
    let t = ticket_of(gw.open(rng, &a[..req2], &mut b)?)?;
    let empty_ack = gw.seal_reply(rng, t, &[0x60, 0, 0, 0], &mut b)?.len;
    dev.open(&b[..empty_ack], &mut a)?;

    // IK reconnection.
    dev.reset_session()?;
    let i1 = dev.seal(rng, request, &mut a)?.len;
    let t = ticket_of(gw.open(rng, &a[..i1], &mut b)?)?;
    let i2 = gw.seal_reply(rng, t, response, &mut b)?.len;
    dev.open(&b[..i2], &mut a)?;

    // IK → XXfallback.
    dev.reset_session()?;
    let f0 = dev.seal(rng, request, &mut a)?.len;
    let last = a.get_mut(f0.wrapping_sub(1)).ok_or(PipeError::Unexpected)?;
    *last ^= 1;
    let f1 = handshake_len(gw.open(rng, &a[..f0], &mut b)?)?;
    dev.open(&b[..f1], &mut a).map_err(unexpected)?;
    let f2 = dev.seal(rng, request, &mut a)?.len;
    let t = ticket_of(gw.open(rng, &a[..f2], &mut b)?)?;
    let fallback_response = gw.seal_reply(rng, t, response, &mut b)?.len;
    dev.open(&b[..fallback_response], &mut a)?;

    Ok(BytesReport {
        xx: [x1, x2, x3],
        xx_response,
        ik: [i1, i2],
        fallback: [f0, f1, f2],
        fallback_response,
        request: req,
        response: resp,
        empty_ack,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn carried_message_bytes() {
        // CON POST, token AB, Uri-Path "r", payload "Hi" → TKL | code | token | rest.
        let msg = [0x41, 0x02, 0x12, 0x34, 0xAB, 0xB1, b'r', 0xFF, b'H', b'i'];
        let plain = PlainParts::split(&msg).unwrap();
        let mut buf = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let n = encode_inner(Some(9), &plain, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[9, 1, 0x02, 0xAB, 0xB1, b'r', 0xFF, b'H', b'i']);
        let mut out = [0u8; 32];
        let m = decode_inner(&buf[1..n], Kind::Con, 0x1234, &mut out).unwrap();
        assert_eq!(&out[..m], &msg);
        assert_eq!(
            decode_inner(&[9, 0x02], Kind::Con, 0, &mut out),
            Err(PipeError::BadHandshakePayload)
        );
        assert_eq!(
            decode_inner(&[1], Kind::Con, 0, &mut out),
            Err(PipeError::BadHandshakePayload)
        );
    }

    #[test]
    fn epochs_and_key_chain() {
        assert_eq!(epoch_of(0xFFFF), 0);
        assert_eq!(epoch_of(0x1_0000), 1);
        assert_eq!(epoch_of(ECHO_BIT | 0x2_0001), 2);
        let k0 = CipherKey::from_bytes([7; 32]);
        let mut chain = KeyChain::new(k0.clone(), 0);
        chain.advance_to(2).unwrap();
        let mut k2 = k0.clone();
        k2.rekey();
        let k1 = k2.clone();
        k2.rekey();
        assert_eq!(chain.get(2).unwrap().0.to_bytes(), k2.to_bytes());
        assert_eq!(chain.get(1).unwrap().0.to_bytes(), k1.to_bytes());
        assert!(chain.get(0).is_none());
        assert!(chain.get(3).is_none());
        assert_eq!(chain.get(2).unwrap().1, key_id(&k2));
        assert_eq!(
            chain.advance_to(2 + MAX_EPOCH_SKIP + 1),
            Err(PipeError::TooOld)
        );
    }

    proptest! {
        #[test]
        fn carried_message_round_trip(
            tkl in 0usize..=8,
            code in any::<u8>(),
            mid in any::<u16>(),
            bytes in proptest::collection::vec(any::<u8>(), 8..120),
        ) {
            let mut msg = std::vec![0x40 | tkl as u8, code];
            msg.extend_from_slice(&mid.to_be_bytes());
            msg.extend_from_slice(&bytes);
            let plain = PlainParts::split(&msg).unwrap();
            let mut buf = [0u8; MAX_HANDSHAKE_PAYLOAD];
            let n = encode_inner(None, &plain, &mut buf).unwrap();
            prop_assert_eq!(n, msg.len() - 2);
            let mut out = [0u8; 200];
            let m = decode_inner(&buf[..n], Kind::Con, mid, &mut out).unwrap();
            prop_assert_eq!(&out[..m], &msg[..]);
        }
    }
}
