//! The device client: Trickle operations (login, join, send, receive) over the Noise pipe.
//!
//! Sans-I/O in the style of `quinn-proto`: the client owns no radio, no clock and no thread.
//! The firmware drives it with four calls and reads results with a fifth:
//!
//! - [`Client::handle_rx`]`(now, frame)`: every frame received from the link;
//! - [`Client::poll_transmit`]`(now, buf)`: call until `None` after any other call; each
//!   `Some(n)` is one frame `buf[..n]` to put on the air;
//! - [`Client::poll_timeout`]: when to call [`Client::handle_timeout`] next (if nothing was
//!   received before);
//! - [`Client::handle_timeout`]`(now)`: at (or after) that instant;
//! - [`Client::poll_event`]: results of operations and received messages.
//!
//! Time is a caller-supplied monotonic [`Instant`] in milliseconds. Randomness (handshake keys,
//! retransmission jitter) comes from the caller's `rand_core` [`CryptoRng`], owned by the
//! client.
//!
//! Operations ([`login_password`](Client::login_password), [`login_token`](Client::login_token),
//! [`join`](Client::join), [`send_text`](Client::send_text), [`subscribe`](Client::subscribe))
//! queue a request and return a [`Handle`]; its outcome arrives as an [`Event`] carrying the
//! same handle. Requests go one at a time (CoAP NSTART 1) as confirmable messages with RFC 7252
//! retransmission; large bodies use Block1/Block2 (RFC 7959). The behaviour visible on the air
//! is specified in `docs/PROTOCOL.md`, section "Device client behaviour"; the operations in
//! "Trickle operations".
//!
//! ```
//! # use trickle_core::client::{Client, ClientConfig, LinkConfig, Instant};
//! # use trickle_core::noise::storage::RamStorage;
//! # use chacha20::ChaCha20Rng; use chacha20::rand_core::SeedableRng;
//! let rng = ChaCha20Rng::from_seed([1; 32]);
//! let mut client: Client<RamStorage, ChaCha20Rng> =
//!     Client::new(RamStorage::new(), rng, ClientConfig::new(LinkConfig::LORA_100)).unwrap();
//! let h = client.send_text(trickle_core::client::Peer::Alias(1), "Hello").unwrap();
//! let mut frame = [0u8; trickle_core::client::MAX_FRAME_LEN];
//! // First contact: the XX handshake starts (37 bytes); the request follows in XX message 3.
//! let n = client.poll_transmit(Instant(0), &mut frame).unwrap();
//! assert_eq!(n, 37);
//! # let _ = h;
//! ```

use core::fmt;

use heapless::{Deque, String, Vec};
use rand_core::CryptoRng;

use crate::cbor::{Reader, Table, Writer};
use crate::noise::pipe::{
    Config as PipeConfig, Initiator, MAX_HANDSHAKE_FRAME, PipeError, PipeState, Received,
    ReplyTicket,
};
use crate::noise::storage::Storage;
use crate::wire::coap::{Block, CoapOption, Code, Kind, OptionNumber, Repr, observe};

/// Largest frame the client writes or keeps (a handshake frame carrying a request).
/// [`Client::poll_transmit`] needs a buffer of at least this size.
pub const MAX_FRAME_LEN: usize = MAX_HANDSHAKE_FRAME;
/// Largest plaintext CoAP request (header, options and whole body) the client queues; bodies
/// that do not fit one frame are sent with Block1.
pub const MAX_REQUEST_LEN: usize = 256;
/// Requests waiting behind the one in flight (NSTART 1): the default of [`Client`]'s `QUEUE`.
pub const QUEUE_LEN: usize = 4;
/// Longest Matrix ID kept in the alias table; longer IDs are delivered but not remembered.
pub const MAX_ID_LEN: usize = 64;
/// CoAP MAX_RETRANSMIT (RFC 7252 §4.8).
pub const MAX_RETRANSMIT: u8 = 4;
/// Frame bytes around a plaintext CoAP message on an established session (CID + tag).
pub const TRANSPORT_OVERHEAD: usize = 17;
/// Frame bytes around a plaintext CoAP message carried in a handshake (`IK` message 1, the
/// worst case: CID, ephemeral, encrypted static, two tags and the TKL/code prefix minus the
/// CoAP header).
pub const HANDSHAKE_OVERHEAD: usize = 99;

const ACK_CACHE: usize = 4;
const EVENTS: usize = 8;
const EMPTY_ACK: [u8; 4] = [0x60, 0x00, 0x00, 0x00];
const RST: [u8; 4] = [0x70, 0x00, 0x00, 0x00];

/// A point in time: milliseconds of a monotonic clock chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(pub u64);

impl Instant {
    /// This instant plus `ms` milliseconds (saturating).
    pub const fn add_ms(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms))
    }
}

/// The link the client talks over: it scales the CoAP timers and sizes Block-wise transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkConfig {
    /// Link bit rate in bits per second (at least 1).
    pub bitrate_bps: u32,
    /// Largest frame the link carries in bytes (LoRa: 255).
    pub max_frame: usize,
}

impl LinkConfig {
    /// LoRa at 100 bit/s with 255-byte frames: ACK_TIMEOUT 42.8 s, 128-byte blocks.
    pub const LORA_100: LinkConfig = LinkConfig {
        bitrate_bps: 100,
        max_frame: 255,
    };

    /// Air time of `bytes` bytes in milliseconds, rounded up; saturates at 2^32 − 1 ms
    /// (49 days) for sizes above 536 870 bytes.
    ///
    /// Computed in 32-bit arithmetic: a 64-bit division would link about 900 bytes of compiler
    /// intrinsics into 32-bit MCU firmware for this one call.
    pub fn airtime_ms(&self, bytes: usize) -> u64 {
        let rate = self.bitrate_bps.max(1);
        match u32::try_from(bytes).ok().and_then(|b| b.checked_mul(8_000)) {
            Some(bits) => u64::from(bits.div_ceil(rate)),
            None => u64::from(u32::MAX),
        }
    }

    /// `ACK_TIMEOUT = 2 s + 2 × airtime(max_frame)`, in milliseconds.
    pub fn ack_timeout_ms(&self) -> u64 {
        2_000u64.saturating_add(self.airtime_ms(self.max_frame).saturating_mul(2))
    }

    /// RFC 7252 MAX_TRANSMIT_WAIT = ACK_TIMEOUT × (2^(MAX_RETRANSMIT+1) − 1) × 1.5: how long the
    /// client waits for a separate response after an empty ACK.
    pub fn max_transmit_wait_ms(&self) -> u64 {
        self.ack_timeout_ms().saturating_mul(31).saturating_mul(3) / 2
    }
}

/// Client settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientConfig {
    /// The link.
    pub link: LinkConfig,
    /// Counter reservation of the pipe ([`PipeConfig::DEVICE`] by default).
    pub pipe: PipeConfig,
    /// With a subscription, re-register (`+`, Observe 0) when nothing was heard from the gateway
    /// for this many milliseconds (`None`: never refresh). Default one hour.
    pub reregister_after_ms: Option<u64>,
}

impl ClientConfig {
    /// Defaults for `link`.
    pub const fn new(link: LinkConfig) -> Self {
        ClientConfig {
            link,
            pipe: PipeConfig::DEVICE,
            reregister_after_ms: Some(3_600_000),
        }
    }
}

/// Identifies one operation; its outcome event carries the same handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Handle(pub u16);

/// A room or user: its full Matrix ID when known, else the gateway's alias number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Peer<'a> {
    /// A full ID (`!room:server`, `#alias:server`, `@user:server`).
    Id(&'a str),
    /// The gateway's alias number for this device.
    Alias(u16),
}

/// Why an operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Failure<'a> {
    /// No answer after MAX_RETRANSMIT retransmissions (or no separate response in time).
    Timeout,
    /// The gateway answered with an error code, and the Matrix `errcode` when it sent one.
    Status {
        /// The CoAP response code (4.xx, 5.xx, or an unexpected success code).
        code: Code,
        /// The Matrix `errcode` (e.g. `M_FORBIDDEN`).
        errcode: Option<&'a str>,
        /// Max-Age in seconds (sent with 4.29 and 5.03): do not repeat the request before.
        retry_after_s: Option<u32>,
    },
    /// The gateway reset the request (RST).
    Reset,
    /// The answer's body could not be read.
    BadResponse,
    /// The answer is larger than the client's reassembly buffer.
    ResponseTooLarge,
    /// The Noise pipe refused (e.g. [`PipeError::PinnedKeyMismatch`]).
    Pipe(PipeError),
}

impl fmt::Display for Failure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("no answer from the gateway"),
            Failure::Status { code, errcode, .. } => match errcode {
                Some(e) => write!(f, "gateway answered {code} ({e})"),
                None => write!(f, "gateway answered {code}"),
            },
            Failure::Reset => f.write_str("gateway reset the request"),
            Failure::BadResponse => f.write_str("malformed answer"),
            Failure::ResponseTooLarge => f.write_str("answer larger than the client buffer"),
            Failure::Pipe(e) => write!(f, "pipe: {e}"),
        }
    }
}

/// What happened; read with [`Client::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// A login succeeded: the gateway bound the access token to this device.
    LoggedIn {
        /// The operation.
        handle: Handle,
        /// Matrix user ID.
        user_id: &'a str,
        /// Matrix device ID.
        device_id: &'a str,
    },
    /// A join succeeded; `alias` now stands for `room_id` (see [`Client::room_alias`]).
    Joined {
        /// The operation.
        handle: Handle,
        /// The room's alias number.
        alias: u16,
        /// The room ID.
        room_id: &'a str,
    },
    /// A message was accepted by the homeserver (2.04).
    Delivered {
        /// The operation.
        handle: Handle,
    },
    /// The gateway confirmed the receive registration (2.05).
    Subscribed {
        /// The operation.
        handle: Handle,
    },
    /// An operation failed.
    Failed {
        /// The operation.
        handle: Handle,
        /// Why.
        reason: Failure<'a>,
    },
    /// A message from another user arrived (each notification is delivered exactly once).
    Message {
        /// The room.
        room: Peer<'a>,
        /// The sender.
        sender: Peer<'a>,
        /// The body text.
        body: &'a str,
        /// The msgtype when it is not `m.text`.
        msgtype: Option<&'a str>,
    },
}

/// Errors of the client API (the caller's side): nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClientError {
    /// The request queue is full; poll the client and retry later.
    QueueFull,
    /// The request would exceed [`MAX_REQUEST_LEN`]; `required` bytes needed.
    TooLarge {
        /// Bytes needed.
        required: usize,
    },
    /// The link configuration cannot carry a request (bit rate 0, or frames too small).
    BadLink,
    /// The pipe failed to open (storage, configuration).
    Pipe(PipeError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::QueueFull => f.write_str("request queue full"),
            ClientError::TooLarge { required } => {
                write!(f, "request too large: {required} bytes required")
            }
            ClientError::BadLink => f.write_str("link configuration out of range"),
            ClientError::Pipe(e) => write!(f, "pipe: {e}"),
        }
    }
}

impl core::error::Error for ClientError {}

impl From<PipeError> for ClientError {
    fn from(e: PipeError) -> Self {
        ClientError::Pipe(e)
    }
}

// ---------------------------------------------------------------------------------------------
// Internal records
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Login,
    Join,
    Send,
    Subscribe,
}

struct Request {
    handle: Handle,
    op: Op,
    /// Plaintext CoAP message (Message ID 0, replaced by the pipe), whole body.
    msg: Vec<u8, MAX_REQUEST_LEN>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `XX` message 1 sent; waiting for message 2 (the request goes in message 3).
    Xx1,
    /// Waiting for the ACK (piggybacked response or empty ACK) of Message ID `mid`.
    AwaitAck,
    /// Empty ACK received; waiting for the separate response.
    AwaitSeparate,
}

struct InFlight {
    req: Request,
    frame: Vec<u8, MAX_FRAME_LEN>,
    phase: Phase,
    mid: u16,
    /// Block1 block being sent (`None`: the body goes whole).
    block1: Option<Block>,
    /// Block2 block requested in the current message (follow-ups after the first).
    block2: Option<Block>,
    /// Bytes of the response body reassembled so far.
    body_len: usize,
    retransmits: u8,
    timeout_ms: u64,
    /// Transmit `frame` at the next `poll_transmit`.
    due: bool,
    deadline: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u16,
    len: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerRec {
    Id(Span),
    Alias(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailRec {
    Timeout,
    Status {
        code: Code,
        errcode: Option<Span>,
        retry_after_s: Option<u32>,
    },
    Reset,
    BadResponse,
    ResponseTooLarge,
    Pipe(PipeError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EvRec {
    LoggedIn {
        handle: Handle,
        user_id: Span,
        device_id: Span,
    },
    Joined {
        handle: Handle,
        alias: u16,
        room_id: Span,
    },
    Delivered {
        handle: Handle,
    },
    Subscribed {
        handle: Handle,
    },
    Failed {
        handle: Handle,
        reason: FailRec,
    },
    Message {
        room: PeerRec,
        sender: PeerRec,
        body: Span,
        msgtype: Option<Span>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AliasKind {
    Room,
    User,
}

struct AliasEntry {
    kind: AliasKind,
    number: u16,
    id: String<MAX_ID_LEN>,
}

/// Bytes for event strings; emptied once every event was read.
struct Arena<const N: usize> {
    buf: [u8; N],
    used: usize,
}

impl<const N: usize> Arena<N> {
    fn push(&mut self, s: &str) -> Option<Span> {
        let end = self.used.checked_add(s.len())?;
        let dst = self.buf.get_mut(self.used..end)?;
        dst.copy_from_slice(s.as_bytes());
        let span = Span {
            start: u16::try_from(self.used).ok()?,
            len: u16::try_from(s.len()).ok()?,
        };
        self.used = end;
        Some(span)
    }

    fn get(&self, span: Span) -> &str {
        let start = usize::from(span.start);
        let bytes = self
            .buf
            .get(start..start + usize::from(span.len))
            .unwrap_or_default();
        core::str::from_utf8(bytes).unwrap_or_default()
    }
}

/// A cached ACK/RST frame, re-sent when the message it answers is retransmitted.
struct CachedReply {
    mid: u16,
    frame: Vec<u8, 32>,
}

/// The device client. `BODY` bytes hold a reassembled response and, separately, the strings of
/// unread events (default 512); `ALIASES` entries of the alias table (default 8); `QUEUE`
/// requests of up to [`MAX_REQUEST_LEN`] bytes waiting behind the one in flight (default
/// [`QUEUE_LEN`]; each costs about 264 bytes of RAM; at least 1).
pub struct Client<
    S: Storage,
    R: CryptoRng,
    const BODY: usize = 512,
    const ALIASES: usize = 8,
    const QUEUE: usize = QUEUE_LEN,
> {
    pipe: Initiator<S>,
    rng: R,
    config: ClientConfig,
    next_handle: u16,
    queue: Deque<Request, QUEUE>,
    inflight: Option<InFlight>,
    /// Reassembly buffer for Block2 response bodies.
    body: [u8; BODY],
    events: Vec<EvRec, EVENTS>,
    arena: Arena<BODY>,
    aliases: Vec<AliasEntry, ALIASES>,
    replies: Deque<CachedReply, ACK_CACHE>,
    /// Indices (Message IDs) of cached replies waiting to be transmitted.
    tx_replies: Deque<u16, ACK_CACHE>,
    /// Ticket of the notification whose Message event is not read yet: its ACK is sealed when
    /// the event is read, so the gateway sends the next one only then.
    deferred_ack: Option<ReplyTicket>,
    /// Seal the deferred ACK at the next `poll_transmit` (the event was read).
    ack_ready: bool,
    last_seq: Option<u32>,
    subscribed: bool,
    resubscribe_at: Option<Instant>,
}

impl<S: Storage, R: CryptoRng, const BODY: usize, const ALIASES: usize, const QUEUE: usize>
    fmt::Debug for Client<S, R, BODY, ALIASES, QUEUE>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("pipe", &self.pipe)
            .field("queued", &self.queue.len())
            .field("in_flight", &self.inflight.is_some())
            .finish_non_exhaustive()
    }
}

fn wire_err<E>(_: E) -> ClientError {
    ClientError::TooLarge {
        required: MAX_REQUEST_LEN + 1,
    }
}

/// Serial-number freshness of Observe values (RFC 7641 §3.4, 24-bit), without the 128 s rule.
fn fresher(new: u32, last: u32) -> bool {
    const HALF: u32 = 1 << 23;
    (last < new && new - last < HALF) || (last > new && last - new > HALF)
}

impl<S: Storage, R: CryptoRng, const BODY: usize, const ALIASES: usize, const QUEUE: usize>
    Client<S, R, BODY, ALIASES, QUEUE>
{
    /// Opens the client over the pipe's `storage` (static key, pinned gateway key, session).
    /// A persisted session resumes without a handshake.
    pub fn new(storage: S, mut rng: R, config: ClientConfig) -> Result<Self, ClientError> {
        if config.link.bitrate_bps == 0 || config.link.max_frame < TRANSPORT_OVERHEAD + 32 {
            return Err(ClientError::BadLink);
        }
        let pipe = Initiator::new(storage, config.pipe, &mut rng)?;
        Ok(Client {
            pipe,
            rng,
            config,
            next_handle: 0,
            queue: Deque::new(),
            inflight: None,
            body: [0; BODY],
            events: Vec::new(),
            arena: Arena {
                buf: [0; BODY],
                used: 0,
            },
            aliases: Vec::new(),
            replies: Deque::new(),
            tx_replies: Deque::new(),
            deferred_ack: None,
            ack_ready: false,
            last_seq: None,
            subscribed: false,
            resubscribe_at: None,
        })
    }

    /// The underlying pipe (keys, pin, state).
    pub fn pipe(&self) -> &Initiator<S> {
        &self.pipe
    }

    /// The underlying pipe, e.g. to re-pin after [`PipeError::PinnedKeyMismatch`].
    pub fn pipe_mut(&mut self) -> &mut Initiator<S> {
        &mut self.pipe
    }

    /// Gives the storage back (drops the client's volatile state, as a reboot would).
    pub fn into_storage(self) -> S {
        self.pipe.into_storage()
    }

    /// The room ID the gateway introduced for `alias`, if remembered.
    pub fn room_id(&self, alias: u16) -> Option<&str> {
        self.lookup(AliasKind::Room, alias)
    }

    /// The user ID the gateway introduced for `alias`, if remembered.
    pub fn user_id(&self, alias: u16) -> Option<&str> {
        self.lookup(AliasKind::User, alias)
    }

    /// The alias number of a remembered room ID.
    pub fn room_alias(&self, room_id: &str) -> Option<u16> {
        self.aliases
            .iter()
            .find(|a| a.kind == AliasKind::Room && a.id.as_str() == room_id)
            .map(|a| a.number)
    }

    /// Requests waiting or in flight.
    pub fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.inflight.is_some())
    }

    fn lookup(&self, kind: AliasKind, number: u16) -> Option<&str> {
        self.aliases
            .iter()
            .find(|a| a.kind == kind && a.number == number)
            .map(|a| a.id.as_str())
    }

    fn remember(&mut self, kind: AliasKind, number: u16, id: &str) {
        let Ok(id) = String::try_from(id) else {
            return;
        };
        if let Some(a) = self
            .aliases
            .iter_mut()
            .find(|a| a.kind == kind && a.number == number)
        {
            a.id = id;
            return;
        }
        if self.aliases.is_full() && !self.aliases.is_empty() {
            // Forget the oldest introduction; its number is delivered bare from then on.
            remove_keeping_order(&mut self.aliases, 0);
        }
        let _ = self.aliases.push(AliasEntry { kind, number, id });
    }

    // -----------------------------------------------------------------------------------------
    // Operations
    // -----------------------------------------------------------------------------------------

    fn enqueue(
        &mut self,
        op: Op,
        code: Code,
        paths: &[&[u8]],
        observe_value: Option<u32>,
        body: &dyn Fn(&mut [u8]) -> Result<usize, ClientError>,
    ) -> Result<Handle, ClientError> {
        if self.queue.is_full() {
            return Err(ClientError::QueueFull);
        }
        let mut payload = [0u8; MAX_REQUEST_LEN];
        let plen = body(&mut payload)?;
        let mut repr = Repr::new(Kind::Confirmable, code, 0, &[]);
        if let Some(v) = observe_value {
            repr.push_option(observe::option(v).map_err(wire_err)?)
                .map_err(wire_err)?;
        }
        for p in paths {
            repr.push_option(CoapOption::new(OptionNumber::URI_PATH, p))
                .map_err(wire_err)?;
        }
        repr.payload = payload.get(..plen).unwrap_or_default();
        let required = repr.buffer_len();
        let mut msg = Vec::new();
        msg.resize(required.min(MAX_REQUEST_LEN), 0)
            .map_err(|_| ClientError::TooLarge { required })?;
        if required > MAX_REQUEST_LEN {
            return Err(ClientError::TooLarge { required });
        }
        repr.emit(&mut msg).map_err(wire_err)?;
        let handle = Handle(self.next_handle);
        self.next_handle = self.next_handle.wrapping_add(1);
        self.queue
            .push_back(Request { handle, op, msg })
            .map_err(|_| ClientError::QueueFull)?;
        Ok(handle)
    }

    /// Password login (Uri-Path `1`, body `{"type":"m.login.password","identifier":
    /// {"type":"m.id.user","user":…},"password":…}` in `trickle-v1`). Outcome:
    /// [`Event::LoggedIn`] or [`Event::Failed`].
    pub fn login_password(&mut self, user: &str, password: &str) -> Result<Handle, ClientError> {
        self.enqueue(Op::Login, Code::POST, &[b"1"], None, &|buf| {
            let total = buf.len();
            let mut w = Writer::new(&mut buf[..], &Table::TRICKLE_V1);
            let r: Result<(), minicbor::encode::Error<_>> = (|| {
                w.map(3)?.key("type")?.str_value("m.login.password")?;
                w.key("identifier")?.map(2)?;
                w.key("type")?.str_value("m.id.user")?;
                w.key("user")?.encoder().str(user)?;
                w.key("password")?.encoder().str(password)?;
                Ok(())
            })();
            r.map_err(|_| ClientError::TooLarge {
                required: total + 1,
            })?;
            Ok(total - w.into_writer().len())
        })
    }

    /// Binds a provisioned access token (Uri-Path `=`, body the token as CBOR text). Outcome:
    /// [`Event::LoggedIn`] or [`Event::Failed`].
    pub fn login_token(&mut self, token: &str) -> Result<Handle, ClientError> {
        self.enqueue(Op::Login, Code::POST, &[b"="], None, &|buf| {
            let total = buf.len();
            let mut w = Writer::new(&mut buf[..], &Table::TRICKLE_V1);
            w.encoder().str(token).map_err(|_| ClientError::TooLarge {
                required: total + 1,
            })?;
            Ok(total - w.into_writer().len())
        })
    }

    /// Joins a room by ID or alias (`!room:server` / `#alias:server`; Uri-Path `L`, the room).
    /// Outcome: [`Event::Joined`] with the room's alias number, or [`Event::Failed`].
    pub fn join(&mut self, room: &str) -> Result<Handle, ClientError> {
        self.enqueue(
            Op::Join,
            Code::POST,
            &[b"L", room.as_bytes()],
            None,
            &|_| Ok(0),
        )
    }

    /// Sends a text message (Uri-Path `*`, body `[room, body]`). A room ID the gateway already
    /// introduced is sent as its alias number. Outcome: [`Event::Delivered`] or
    /// [`Event::Failed`].
    pub fn send_text(&mut self, room: Peer<'_>, body: &str) -> Result<Handle, ClientError> {
        let room = match room {
            Peer::Id(id) => self.room_alias(id).map_or(Peer::Id(id), Peer::Alias),
            alias => alias,
        };
        self.enqueue(Op::Send, Code::POST, &[b"*"], None, &|buf| {
            let total = buf.len();
            let mut w = Writer::new(&mut buf[..], &Table::TRICKLE_V1);
            let r: Result<(), minicbor::encode::Error<_>> = (|| {
                w.array(2)?;
                match room {
                    Peer::Alias(a) => w.encoder().u16(a)?,
                    Peer::Id(id) => w.encoder().str(id)?,
                };
                w.encoder().str(body)?;
                Ok(())
            })();
            r.map_err(|_| ClientError::TooLarge {
                required: total + 1,
            })?;
            Ok(total - w.into_writer().len())
        })
    }

    /// Registers for incoming messages (GET, Uri-Path `+`, Observe 0). Outcome:
    /// [`Event::Subscribed`]; afterwards [`Event::Message`]s. The client re-registers by
    /// itself after a failed registration and after `reregister_after_ms` of silence. After a
    /// reboot, call it again.
    pub fn subscribe(&mut self) -> Result<Handle, ClientError> {
        self.subscribed = true;
        self.resubscribe_at = None;
        self.enqueue_subscribe()
    }

    fn enqueue_subscribe(&mut self) -> Result<Handle, ClientError> {
        self.enqueue(
            Op::Subscribe,
            Code::GET,
            &[b"+"],
            Some(observe::REGISTER),
            &|_| Ok(0),
        )
    }

    // -----------------------------------------------------------------------------------------
    // Driving
    // -----------------------------------------------------------------------------------------

    /// Frees event strings once every event was read (called on each mutating entry point).
    fn tidy(&mut self) {
        if self.events.is_empty() {
            self.arena.used = 0;
        }
    }

    /// The next frame to put on the air, written to `buf[..n]`; `None` when there is nothing
    /// to send now. Call after every other call until it returns `None`. `buf` must hold
    /// [`MAX_FRAME_LEN`] bytes (a frame that does not fit is treated as lost).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.tidy();
        if self.ack_ready {
            self.ack_ready = false;
            if let Some(ticket) = self.deferred_ack.take() {
                self.reply(ticket, &EMPTY_ACK);
            }
        }
        if let Some(mid) = self.tx_replies.pop_front() {
            if let Some(r) = self.replies.iter().find(|r| r.mid == mid) {
                return copy_out(&r.frame, buf);
            }
        }
        if self.inflight.is_none() {
            self.start_next(now);
        }
        let f = self.inflight.as_mut()?;
        if !f.due {
            return None;
        }
        f.due = false;
        f.deadline = Some(now.add_ms(f.timeout_ms));
        copy_out(&f.frame, buf)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called, if nothing arrives before.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.inflight.as_ref().and_then(|f| f.deadline);
        match (a, self.resubscribe_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Processes expired timers: retransmits the request in flight (byte for byte), fails it
    /// after [`MAX_RETRANSMIT`] retransmissions, re-registers a subscription.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tidy();
        let mut give_up = None;
        if let Some(f) = self.inflight.as_mut() {
            if f.deadline.is_some_and(|d| d <= now) {
                if f.phase == Phase::AwaitSeparate || f.retransmits >= MAX_RETRANSMIT {
                    give_up = Some(f.phase != Phase::AwaitSeparate);
                } else {
                    f.retransmits += 1;
                    f.timeout_ms = f.timeout_ms.saturating_mul(2);
                    f.deadline = None;
                    f.due = true;
                }
            }
        }
        if let Some(lost_session) = give_up {
            if lost_session {
                // The gateway may have lost the session (or the handshake is stuck): the next
                // request starts a new handshake.
                let _ = self.pipe.reset_session();
            }
            self.finish(FailRec::Timeout, now);
        }
        if self.resubscribe_at.is_some_and(|t| t <= now) {
            self.resubscribe_at = None;
            let queued = self.queue.iter().any(|r| r.op == Op::Subscribe)
                || self
                    .inflight
                    .as_ref()
                    .is_some_and(|f| f.req.op == Op::Subscribe);
            if self.subscribed && !queued && self.enqueue_subscribe().is_err() {
                self.resubscribe_at = Some(now.add_ms(self.config.link.ack_timeout_ms()));
            }
        }
    }

    /// The next event, if any. Strings borrow the client until the next call. Reading a
    /// [`Event::Message`] releases its ACK (sent by the next `poll_transmit`).
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if self.events.is_empty() {
            return None;
        }
        let rec = remove_keeping_order(&mut self.events, 0)?;
        if matches!(rec, EvRec::Message { .. }) && self.deferred_ack.is_some() {
            self.ack_ready = true;
        }
        let a = &self.arena;
        let peer = |p: PeerRec| match p {
            PeerRec::Id(s) => Peer::Id(a.get(s)),
            PeerRec::Alias(n) => Peer::Alias(n),
        };
        Some(match rec {
            EvRec::LoggedIn {
                handle,
                user_id,
                device_id,
            } => Event::LoggedIn {
                handle,
                user_id: a.get(user_id),
                device_id: a.get(device_id),
            },
            EvRec::Joined {
                handle,
                alias,
                room_id,
            } => Event::Joined {
                handle,
                alias,
                room_id: a.get(room_id),
            },
            EvRec::Delivered { handle } => Event::Delivered { handle },
            EvRec::Subscribed { handle } => Event::Subscribed { handle },
            EvRec::Failed { handle, reason } => Event::Failed {
                handle,
                reason: match reason {
                    FailRec::Timeout => Failure::Timeout,
                    FailRec::Status {
                        code,
                        errcode,
                        retry_after_s,
                    } => Failure::Status {
                        code,
                        errcode: errcode.map(|s| a.get(s)),
                        retry_after_s,
                    },
                    FailRec::Reset => Failure::Reset,
                    FailRec::BadResponse => Failure::BadResponse,
                    FailRec::ResponseTooLarge => Failure::ResponseTooLarge,
                    FailRec::Pipe(e) => Failure::Pipe(e),
                },
            },
            EvRec::Message {
                room,
                sender,
                body,
                msgtype,
            } => Event::Message {
                room: peer(room),
                sender: peer(sender),
                body: a.get(body),
                msgtype: msgtype.map(|s| a.get(s)),
            },
        })
    }

    fn push_event(&mut self, ev: EvRec) {
        // A full event queue drops the oldest operation outcome (the firmware is not reading
        // them); an unread message stays, its ACK waits for it.
        if self.events.is_full() {
            let at = self
                .events
                .iter()
                .position(|e| !matches!(e, EvRec::Message { .. }))
                .unwrap_or(0);
            remove_keeping_order(&mut self.events, at);
        }
        let _ = self.events.push(ev);
    }

    /// Seals an ACK/RST for `ticket`, caches it for duplicates and queues it for transmission.
    fn reply(&mut self, ticket: ReplyTicket, message: &[u8]) {
        let mut frame = [0u8; 32];
        let Ok(sealed) = self.pipe.seal_reply(ticket, message, &mut frame) else {
            return;
        };
        let mut v = Vec::new();
        if v.extend_from_slice(frame.get(..sealed.len).unwrap_or_default())
            .is_err()
        {
            return;
        }
        if self.replies.is_full() {
            self.replies.pop_front();
        }
        let _ = self.replies.push_back(CachedReply {
            mid: sealed.mid,
            frame: v,
        });
        if self.tx_replies.is_full() {
            self.tx_replies.pop_front();
        }
        let _ = self.tx_replies.push_back(sealed.mid);
    }

    /// Builds the plaintext of the current message of `f` (block options applied) into `out`.
    /// Not inlined: its two parsed messages would otherwise stay reserved in `seal_current`'s
    /// frame while the pipe seals (the device's deepest stack).
    #[inline(never)]
    fn build(f: &InFlight, out: &mut [u8]) -> Option<usize> {
        let full = Repr::parse_bytes(&f.req.msg).ok()?;
        let mut r = full.clone();
        if let Some(b) = f.block1 {
            let start = b.offset();
            let end = start.saturating_add(b.size()).min(full.payload.len());
            r.payload = full.payload.get(start..end)?;
            r.push_option(b.option(OptionNumber::BLOCK1).ok()?).ok()?;
        }
        if let Some(b) = f.block2 {
            r.payload = &[];
            r.options.retain(|o| o.number != OptionNumber::BLOCK1);
            r.push_option(b.option(OptionNumber::BLOCK2).ok()?).ok()?;
        }
        r.emit(out).ok()
    }

    /// Seals the current message of the request in flight into its frame buffer.
    fn seal_current(&mut self) -> Result<(), PipeError> {
        let Some(f) = self.inflight.as_mut() else {
            return Ok(());
        };
        let mut plain = [0u8; MAX_FRAME_LEN];
        let n = Self::build(f, &mut plain).ok_or(PipeError::PayloadTooLarge)?;
        // Sealed straight into the in-flight frame (no second frame-sized buffer on the stack).
        // On error the request is finished by every caller, so the cleared frame is never sent.
        f.frame.clear();
        let _ = f.frame.resize(MAX_FRAME_LEN, 0);
        let sealed = self.pipe.seal(
            &mut self.rng,
            plain.get(..n).unwrap_or_default(),
            &mut f.frame,
        );
        let sealed = match sealed {
            Ok(s) => s,
            Err(e) => {
                f.frame.clear();
                return Err(e);
            }
        };
        f.frame.truncate(sealed.len);
        f.mid = sealed.mid;
        f.phase = if sealed.carried {
            Phase::AwaitAck
        } else {
            Phase::Xx1
        };
        let t = self.config.link.ack_timeout_ms();
        // Uniform in [0, t/2] by multiply-and-shift (Lemire): no 64-bit division, which would
        // link ~900 bytes of compiler intrinsics into 32-bit firmware.
        let span = u32::try_from(t / 2 + 1).unwrap_or(u32::MAX);
        let jitter = (u64::from(self.rng.next_u32()) * u64::from(span)) >> 32;
        f.timeout_ms = t + jitter;
        f.retransmits = 0;
        f.due = true;
        f.deadline = None;
        Ok(())
    }

    /// Takes the next queued request and seals its first message.
    fn start_next(&mut self, now: Instant) {
        while self.inflight.is_none() {
            let Some(req) = self.queue.pop_front() else {
                return;
            };
            let overhead = if self.pipe.state() == PipeState::Established {
                TRANSPORT_OVERHEAD
            } else {
                HANDSHAKE_OVERHEAD
            };
            let limit = self.config.link.max_frame.saturating_sub(overhead);
            let block1 = if req.msg.len() > limit {
                block1_for(&req.msg, limit)
            } else {
                None
            };
            self.inflight = Some(InFlight {
                req,
                frame: Vec::new(),
                phase: Phase::AwaitAck,
                mid: 0,
                block1,
                block2: None,
                body_len: 0,
                retransmits: 0,
                timeout_ms: 0,
                due: false,
                deadline: None,
            });
            if let Err(e) = self.seal_current() {
                if matches!(e, PipeError::HandshakeInProgress) {
                    let _ = self.pipe.reset_session();
                }
                self.finish(FailRec::Pipe(e), now);
            }
        }
    }

    /// Ends the request in flight with `outcome` (a failure) and reports it.
    fn finish(&mut self, outcome: FailRec, now: Instant) {
        let Some(f) = self.inflight.take() else {
            return;
        };
        self.push_event(EvRec::Failed {
            handle: f.req.handle,
            reason: outcome,
        });
        if f.req.op == Op::Subscribe && self.subscribed {
            self.resubscribe_at = Some(now.add_ms(self.config.link.ack_timeout_ms()));
        }
    }

    /// Processes one frame received from the link. Forged, corrupted, replayed and unexpected
    /// frames are dropped silently. Afterwards read [`poll_event`](Self::poll_event) (a
    /// message's ACK waits until it is read) and [`poll_transmit`](Self::poll_transmit).
    pub fn handle_rx(&mut self, now: Instant, frame: &[u8]) {
        self.tidy();
        let mut out = [0u8; MAX_FRAME_LEN];
        match self.pipe.open(frame, &mut out) {
            Ok(Received::NeedRequest) => {
                if self
                    .inflight
                    .as_ref()
                    .is_some_and(|f| f.phase == Phase::Xx1)
                {
                    if let Err(e) = self.seal_current() {
                        self.finish(FailRec::Pipe(e), now);
                    }
                }
            }
            Ok(Received::Duplicate { mid, kind, .. }) => {
                // A retransmitted CON we already answered: the cached ACK/RST goes again.
                let cached = self.replies.iter().any(|r| r.mid == mid);
                let queued = self.tx_replies.iter().any(|m| *m == mid);
                if matches!(kind, crate::noise::frame::Kind::Con) && cached && !queued {
                    let _ = self.tx_replies.push_back(mid);
                }
            }
            Ok(Received::Message { len, ticket, .. }) => {
                let msg = out.get(..len).unwrap_or_default();
                self.on_message(now, msg, ticket);
            }
            Ok(Received::Handshake { .. }) => {}
            Err(e @ PipeError::PinnedKeyMismatch) => self.finish(FailRec::Pipe(e), now),
            // Forged, corrupted, replayed or unexpected frames are dropped.
            Err(_) => {}
        }
    }

    fn on_message(&mut self, now: Instant, msg: &[u8], ticket: Option<ReplyTicket>) {
        let Ok(repr) = Repr::parse_bytes(msg) else {
            if let Some(t) = ticket {
                self.reply(t, &RST);
            }
            return;
        };
        let Some(ticket) = ticket else {
            // ACK or RST answering our message.
            let matches = self
                .inflight
                .as_ref()
                .is_some_and(|f| f.phase == Phase::AwaitAck && f.mid == repr.message_id);
            if !matches {
                return;
            }
            if repr.kind == Kind::Reset {
                self.finish(FailRec::Reset, now);
            } else if repr.code.is_empty() {
                if let Some(f) = self.inflight.as_mut() {
                    f.phase = Phase::AwaitSeparate;
                    f.deadline = Some(now.add_ms(self.config.link.max_transmit_wait_ms()));
                }
            } else {
                self.on_response(now, &repr);
            }
            return;
        };
        if repr.kind != Kind::Confirmable && repr.kind != Kind::NonConfirmable {
            return;
        }
        // Notifications carry a payload; the registration's own (separate) answer has none.
        let notification = repr.option(OptionNumber::OBSERVE).is_some()
            && repr.code.is_response()
            && !(repr.payload.is_empty()
                && self
                    .inflight
                    .as_ref()
                    .is_some_and(|f| f.req.op == Op::Subscribe && f.phase != Phase::Xx1));
        if notification {
            self.on_notification(now, &repr, ticket);
            return;
        }
        let separate = repr.code.is_response()
            && self
                .inflight
                .as_ref()
                .is_some_and(|f| matches!(f.phase, Phase::AwaitAck | Phase::AwaitSeparate));
        if separate {
            if repr.kind == Kind::Confirmable {
                self.reply(ticket, &EMPTY_ACK);
            }
            self.on_response(now, &repr);
        } else if repr.kind == Kind::Confirmable {
            self.reply(ticket, &RST);
        }
    }

    fn on_notification(&mut self, now: Instant, repr: &Repr<'_>, ticket: ReplyTicket) {
        let seq = repr
            .option(OptionNumber::OBSERVE)
            .and_then(|o| observe::decode(o.value()).ok())
            .unwrap_or(0);
        if let Some(after) = self.config.reregister_after_ms {
            if self.subscribed {
                self.resubscribe_at = Some(now.add_ms(after));
            }
        }
        let fresh = self.last_seq.is_none_or(|last| fresher(seq, last));
        if !fresh || repr.code != Code::CONTENT {
            // Already delivered (or not a message): acknowledge, deliver nothing.
            self.reply(ticket, &EMPTY_ACK);
            return;
        }
        let room = BODY.saturating_sub(self.arena.used);
        if self.deferred_ack.is_some() || room < repr.payload.len() + 2 * MAX_ID_LEN {
            // The previous message is unread (or its strings would not fit): leave this one
            // unacknowledged, so the gateway keeps it (and, after giving up, re-sends it after
            // the next registration) rather than lose it.
            return;
        }
        let mark = self.arena.used;
        match self.parse_message(repr.payload) {
            Some(ev) => {
                self.last_seq = Some(seq);
                self.push_event(ev);
                self.deferred_ack = Some(ticket);
            }
            None => {
                // Unreadable payload: acknowledge it and drop it.
                self.arena.used = mark;
                self.last_seq = Some(seq);
                self.reply(ticket, &EMPTY_ACK);
            }
        }
    }

    /// Reads a room or sender: an alias number, an introduction `[alias, "id"]`, or a text ID.
    fn read_peer(&mut self, r: &mut Reader<'_, '_>, kind: AliasKind) -> Option<PeerRec> {
        use minicbor::data::Type;
        match r.decoder().datatype().ok()? {
            Type::U8 | Type::U16 => {
                let n = r.decoder().u16().ok()?;
                match self.lookup(kind, n) {
                    Some(id) => {
                        let mut tmp: String<MAX_ID_LEN> = String::new();
                        tmp.push_str(id).ok()?;
                        Some(PeerRec::Id(self.arena.push(&tmp)?))
                    }
                    None => Some(PeerRec::Alias(n)),
                }
            }
            Type::Array => {
                if r.array().ok()? != 2 {
                    return None;
                }
                let n = r.decoder().u16().ok()?;
                let id = r.str_value().ok()?;
                self.remember(kind, n, id);
                Some(PeerRec::Id(self.arena.push(id)?))
            }
            Type::String => Some(PeerRec::Id(self.arena.push(r.str_value().ok()?)?)),
            _ => None,
        }
    }

    fn parse_message(&mut self, payload: &[u8]) -> Option<EvRec> {
        let mut r = Reader::new(payload, &Table::TRICKLE_V1);
        let n = r.array().ok()?;
        if !(3..=4).contains(&n) {
            return None;
        }
        let room = self.read_peer(&mut r, AliasKind::Room)?;
        let sender = self.read_peer(&mut r, AliasKind::User)?;
        let body = self.arena.push(r.str_value().ok()?)?;
        let msgtype = if n == 4 {
            Some(self.arena.push(r.str_value().ok()?)?)
        } else {
            None
        };
        Some(EvRec::Message {
            room,
            sender,
            body,
            msgtype,
        })
    }

    /// A response (piggybacked or separate) to the request in flight.
    fn on_response(&mut self, now: Instant, repr: &Repr<'_>) {
        let Some(f) = self.inflight.as_mut() else {
            return;
        };
        // Block1: the gateway asks for the next block with 2.31 Continue.
        if let Some(b) = f.block1 {
            if repr.code == Code::CONTINUE && b.more {
                let size = b.size();
                let total = Repr::parse_bytes(&f.req.msg).map_or(0, |r| r.payload.len());
                let num = b.num + 1;
                let offset = (num as usize).saturating_mul(size);
                f.block1 = Some(Block {
                    num,
                    more: offset.saturating_add(size) < total,
                    szx: b.szx,
                });
                if let Err(e) = self.seal_current() {
                    self.finish(FailRec::Pipe(e), now);
                }
                return;
            }
        }
        let block2 = repr
            .option(OptionNumber::BLOCK2)
            .and_then(|o| Block::decode(o.value()).ok());
        let whole: bool;
        match block2 {
            Some(b) if b.more || b.num > 0 => {
                let offset = b.offset();
                if offset != f.body_len {
                    // Not the block we asked for: ignore it, retransmission will fix it.
                    return;
                }
                let end = offset.saturating_add(repr.payload.len());
                let Some(dst) = self.body.get_mut(offset..end) else {
                    self.finish(FailRec::ResponseTooLarge, now);
                    return;
                };
                dst.copy_from_slice(repr.payload);
                f.body_len = end;
                if b.more {
                    f.block2 = Some(Block {
                        num: b.num + 1,
                        more: false,
                        szx: b.szx,
                    });
                    if let Err(e) = self.seal_current() {
                        self.finish(FailRec::Pipe(e), now);
                    }
                    return;
                }
                whole = false;
            }
            _ => whole = true,
        }
        let Some(f) = self.inflight.take() else {
            return;
        };
        let mut body_copy = [0u8; BODY];
        let body: &[u8] = if whole {
            repr.payload
        } else {
            let n = f.body_len.min(BODY);
            body_copy[..n].copy_from_slice(&self.body[..n]);
            &body_copy[..n]
        };
        let handle = f.req.handle;
        let max_age = repr
            .option(OptionNumber::MAX_AGE)
            .and_then(|o| o.value_uint().ok());
        let ev = self.outcome(f.req.op, handle, repr.code, body, max_age);
        self.push_event(ev);
        if f.req.op == Op::Subscribe {
            if matches!(ev, EvRec::Subscribed { .. }) {
                self.resubscribe_at = self.config.reregister_after_ms.map(|t| now.add_ms(t));
            } else if self.subscribed {
                self.resubscribe_at = Some(now.add_ms(self.config.link.ack_timeout_ms()));
            }
        }
    }

    fn outcome(
        &mut self,
        op: Op,
        handle: Handle,
        code: Code,
        body: &[u8],
        retry_after_s: Option<u32>,
    ) -> EvRec {
        let mark = self.arena.used;
        let ok = match (op, code) {
            (Op::Send, Code::CHANGED) => Some(Some(EvRec::Delivered { handle })),
            (Op::Subscribe, Code::CONTENT) => Some(Some(EvRec::Subscribed { handle })),
            (Op::Login, Code::CHANGED) => Some(self.parse_login(handle, body)),
            (Op::Join, Code::CHANGED) => Some(self.parse_join(handle, body)),
            _ => None,
        };
        match ok {
            Some(Some(ev)) => ev,
            Some(None) => {
                self.arena.used = mark;
                EvRec::Failed {
                    handle,
                    reason: FailRec::BadResponse,
                }
            }
            None => {
                let errcode = self.parse_errcode(body);
                if errcode.is_none() {
                    self.arena.used = mark;
                }
                EvRec::Failed {
                    handle,
                    reason: FailRec::Status {
                        code,
                        errcode,
                        retry_after_s,
                    },
                }
            }
        }
    }

    fn parse_login(&mut self, handle: Handle, body: &[u8]) -> Option<EvRec> {
        let mut r = Reader::new(body, &Table::TRICKLE_V1);
        let mut user_id = None;
        let mut device_id = None;
        for _ in 0..r.map().ok()? {
            match r.key().ok()? {
                "user_id" => user_id = Some(self.arena.push(r.str_value().ok()?)?),
                "device_id" => device_id = Some(self.arena.push(r.str_value().ok()?)?),
                _ => r.skip().ok()?,
            }
        }
        Some(EvRec::LoggedIn {
            handle,
            user_id: user_id?,
            device_id: device_id?,
        })
    }

    fn parse_join(&mut self, handle: Handle, body: &[u8]) -> Option<EvRec> {
        let mut r = Reader::new(body, &Table::TRICKLE_V1);
        if r.array().ok()? != 2 {
            return None;
        }
        let alias = r.decoder().u16().ok()?;
        let id = r.str_value().ok()?;
        self.remember(AliasKind::Room, alias, id);
        Some(EvRec::Joined {
            handle,
            alias,
            room_id: self.arena.push(id)?,
        })
    }

    fn parse_errcode(&mut self, body: &[u8]) -> Option<Span> {
        let mut r = Reader::new(body, &Table::TRICKLE_V1);
        for _ in 0..r.map().ok()? {
            match r.key().ok()? {
                "errcode" => return self.arena.push(r.str_value().ok()?),
                _ => r.skip().ok()?,
            }
        }
        None
    }
}

fn copy_out(frame: &[u8], buf: &mut [u8]) -> Option<usize> {
    let dst = buf.get_mut(..frame.len())?;
    dst.copy_from_slice(frame);
    Some(frame.len())
}

/// The first Block1 block for a request whose plaintext `msg` exceeds `limit` bytes: the
/// largest size 2^(SZX+4) that fits with the request's header and options.
fn block1_for(msg: &[u8], limit: usize) -> Option<Block> {
    let repr = Repr::parse_bytes(msg).ok()?;
    // Header and options, payload marker, and up to 4 bytes for the Block1 option.
    let head = msg.len().saturating_sub(repr.payload.len()) + 4;
    let room = limit.checked_sub(head)?;
    let szx = (0u8..=6).rev().find(|s| (16usize << s) <= room)?;
    Some(Block {
        num: 0,
        more: repr.payload.len() > (16usize << szx),
        szx,
    })
}

/// `v.remove(at)` by adjacent swaps, then a pop: the same result and order, without the
/// `memmove` that `remove` links (1.6 KB on Cortex-M) for these few-element queues.
fn remove_keeping_order<T, const N: usize>(v: &mut Vec<T, N>, at: usize) -> Option<T> {
    let len = v.len();
    if at >= len {
        return None;
    }
    for i in at..len - 1 {
        v.swap(i, i + 1);
    }
    v.pop()
}

#[cfg(test)]
mod tests;
