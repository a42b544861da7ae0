//! A deterministic, sans-I/O simulator of the slow links Trickle runs over.
//!
//! [`Link`] models one shared channel between two or more ends: a serial line or radio modem
//! ([`Mode::Serial`]), a LoRa radio whose airtime comes from [`trickle_core::link::lora`]
//! ([`Mode::Lora`]), or a packet network ([`Mode::Packet`]). On top of airtime it adds latency,
//! frame loss, duplication, reordering, a frame size limit and, optionally, half duplex. It has no
//! clock, no sockets and no threads: the caller passes the virtual time to every call
//! ([`Link::send`], [`Link::poll`]) and asks [`Link::next_event`] when something will next
//! happen, so tests step endpoints on a virtual clock until idle, fast and without sleeps.
//! [`realtime::RealTime`] maps the same link onto the wall clock for demos, with a progress
//! callback per frame in airtime.
//!
//! # Model
//!
//! - **Time** is a [`Duration`] since the start of the simulation, at microsecond resolution.
//! - **Airtime**: a frame of `n` bytes occupies its sender's transmitter for
//!   [`LinkConfig::airtime`]`(n)`. An end sends one frame at a time: a frame sent while the
//!   transmitter is busy waits behind the previous one. In **half duplex** the whole channel
//!   carries one frame at a time: it stays busy from the start of a frame until the frame has
//!   reached every receiver (end of airtime plus latency), and a frame sent meanwhile by *any*
//!   end queues behind it. Hence no end ever receives while it transmits.
//! - **Broadcast**: a frame from one end is offered to every other end (LoRa is a broadcast
//!   medium). Loss, duplication and reordering are drawn independently per receiver. A two-end
//!   link ([`Link::pair`], ends [`End::A`] and [`End::B`]) is the common case.
//! - **Delivery** is at end of airtime plus latency; a reordered copy gets an extra delay drawn
//!   uniformly from `1 µs ..= max_extra_delay` (as if buffered by a gateway after reception, so it
//!   does not occupy the air). A duplicated frame is delivered twice, each copy drawing its own
//!   reordering.
//! - **Whole frames only.** A frame is delivered intact or not at all. Bit errors are modelled as
//!   loss: Trickle's Noise transport authenticates every frame, so a corrupted frame is dropped by
//!   its tag check exactly as if it had never arrived.
//! - **Determinism**: every random choice comes from [`rng::Rng`] seeded with
//!   [`LinkConfig::seed`], a fixed number of draws per frame and receiver. The same seed and the
//!   same sequence of calls give the same trace on every platform.
//!
//! ```
//! use std::time::Duration;
//! use trickle_sim::{End, Link, LinkConfig};
//!
//! let mut link = Link::pair(LinkConfig::default()).unwrap(); // 100 bit/s, 8 bits per byte
//! let tx = link.send(Duration::ZERO, End::A, &[0u8; 32]).unwrap();
//! assert_eq!(tx.airtime, Duration::from_millis(2560));
//! assert_eq!(link.next_event(), Some(Duration::from_millis(2560)));
//! assert!(link.poll(Duration::from_millis(2559)).is_none());
//! let d = link.poll(Duration::from_millis(2560)).unwrap();
//! assert_eq!((d.to, d.frame.len()), (End::B, 32));
//! ```

#![deny(missing_docs)]

pub mod realtime;
pub mod rng;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::Duration;

use trickle_core::link::lora::{self, LoraError, LoraParams};
use trickle_core::link::serial_airtime_us;

pub use rng::Rng;

/// One end of a link (index `0..ends`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct End(pub u8);

impl End {
    /// The first end (device side, by convention).
    pub const A: End = End(0);
    /// The second end (gateway side, by convention).
    pub const B: End = End(1);

    fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n @ 0..=25 => write!(f, "{}", char::from(b'A' + n)),
            n => write!(f, "#{n}"),
        }
    }
}

/// How a frame's length becomes airtime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// A byte-oriented line: `bits_per_byte` bit times per byte at `bitrate` bit/s (10 for a UART
    /// in 8N1, 8 for a radio modem quoted in payload bits).
    Serial {
        /// Bits per second.
        bitrate: u32,
        /// Bit times spent per byte.
        bits_per_byte: u32,
    },
    /// A LoRa radio: airtime is the Semtech time on air of the frame as the LoRa payload.
    Lora(LoraParams),
    /// A packet network (GPRS and the like): 8 bits per byte at `bitrate`; latency usually
    /// dominates.
    Packet {
        /// Bits per second.
        bitrate: u32,
    },
}

/// Reordering: with `probability`, a delivered copy is held back by an extra delay drawn
/// uniformly from `1 µs ..= max_extra_delay`, so later frames may overtake it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reorder {
    /// Probability in `[0, 1]` that a copy is delayed.
    pub probability: f64,
    /// The largest extra delay.
    pub max_extra_delay: Duration,
}

impl Reorder {
    /// No reordering.
    pub const NONE: Reorder = Reorder {
        probability: 0.0,
        max_extra_delay: Duration::ZERO,
    };
}

/// Everything that defines a link's behaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Airtime model.
    pub mode: Mode,
    /// Fixed delay from the end of a frame's airtime to its delivery.
    pub latency: Duration,
    /// Probability in `[0, 1]` that a frame does not reach a given receiver.
    pub loss: f64,
    /// Probability in `[0, 1]` that a received frame is delivered twice.
    pub duplicate: f64,
    /// Reordering.
    pub reorder: Reorder,
    /// Largest frame [`Link::send`] accepts, in bytes (at most 255 in LoRa mode).
    pub max_frame: usize,
    /// One frame on the channel at a time, and no end receives while transmitting.
    pub half_duplex: bool,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for LinkConfig {
    /// A perfect 100 bit/s radio-modem link (8 bits per byte), no latency, 255-byte frames,
    /// full duplex, seed 0.
    fn default() -> Self {
        Self {
            mode: Mode::Serial {
                bitrate: 100,
                bits_per_byte: 8,
            },
            latency: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: Reorder::NONE,
            max_frame: lora::MAX_PAYLOAD,
            half_duplex: false,
            seed: 0,
        }
    }
}

impl LinkConfig {
    /// A perfect LoRa link with `params`: half duplex, 255-byte frames, no latency.
    pub fn lora(params: LoraParams) -> Self {
        Self {
            mode: Mode::Lora(params),
            half_duplex: true,
            ..Self::default()
        }
    }

    /// Checks every field; [`Link::new`] calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder.probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::InvalidProbability { name });
            }
        }
        match self.mode {
            Mode::Serial { bitrate: 0, .. } | Mode::Packet { bitrate: 0 } => {
                Err(ConfigError::ZeroBitrate)
            }
            Mode::Serial {
                bits_per_byte: 0, ..
            } => Err(ConfigError::ZeroBitsPerByte),
            Mode::Lora(p) => {
                p.validate().map_err(ConfigError::Lora)?;
                if self.max_frame > lora::MAX_PAYLOAD {
                    return Err(ConfigError::MaxFrameTooLarge {
                        max_frame: self.max_frame,
                        limit: lora::MAX_PAYLOAD,
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Airtime of a frame of `len` bytes (microsecond resolution; serial times are rounded up to
    /// the next microsecond). Saturates at [`Duration::MAX`]; a LoRa frame longer than 255 bytes
    /// gives the LoRa error.
    pub fn airtime(&self, len: usize) -> Result<Duration, LoraError> {
        let us = match self.mode {
            Mode::Serial {
                bitrate,
                bits_per_byte,
            } => serial_airtime_us(bitrate, len, bits_per_byte).unwrap_or(u64::MAX),
            Mode::Packet { bitrate } => serial_airtime_us(bitrate, len, 8).unwrap_or(u64::MAX),
            Mode::Lora(p) => p.time_on_air_us(len)?,
        };
        Ok(Duration::from_micros(us))
    }
}

/// A [`LinkConfig`] that cannot be simulated (the caller's mistake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A probability outside `[0, 1]` (or NaN).
    InvalidProbability {
        /// Which field.
        name: &'static str,
    },
    /// A bitrate of zero.
    ZeroBitrate,
    /// Zero bits per byte.
    ZeroBitsPerByte,
    /// LoRa parameters the chip cannot use.
    Lora(LoraError),
    /// `max_frame` above what the mode can carry.
    MaxFrameTooLarge {
        /// The configured value.
        max_frame: usize,
        /// The mode's limit.
        limit: usize,
    },
    /// Fewer than two ends, or more than 256.
    EndCount {
        /// The number asked for.
        ends: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidProbability { name } => {
                write!(f, "link probability `{name}` must be within [0, 1]")
            }
            Self::ZeroBitrate => f.write_str("link bitrate must not be zero"),
            Self::ZeroBitsPerByte => f.write_str("bits per byte must not be zero"),
            Self::Lora(e) => write!(f, "LoRa parameters: {e}"),
            Self::MaxFrameTooLarge { max_frame, limit } => {
                write!(
                    f,
                    "max_frame {max_frame} exceeds the mode's limit of {limit} bytes"
                )
            }
            Self::EndCount { ends } => write!(f, "a link needs 2 to 256 ends, not {ends}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why [`Link::send`] refused a frame (the caller's mistake; nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The frame is longer than [`LinkConfig::max_frame`].
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No such end on this link.
    UnknownEnd(End),
    /// `now` is earlier than a time already passed to the link.
    ClockWentBackwards {
        /// The time given.
        now: Duration,
        /// The latest time seen before.
        latest: Duration,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the link's limit of {max}")
            }
            Self::UnknownEnd(e) => write!(f, "end {e} is not on this link"),
            Self::ClockWentBackwards { now, latest } => {
                write!(f, "time went backwards: {now:?} after {latest:?}")
            }
        }
    }
}

impl std::error::Error for SendError {}

/// Identifies a frame given to [`Link::send`] (counting from 0 per link).
pub type FrameId = u64;

/// When a sent frame occupies the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxInfo {
    /// The frame.
    pub id: FrameId,
    /// Its sender.
    pub from: End,
    /// Its length in bytes.
    pub len: usize,
    /// When [`Link::send`] was called.
    pub queued: Duration,
    /// When its first bit goes on the air (later than `queued` if the transmitter or, in half
    /// duplex, the channel was busy).
    pub start: Duration,
    /// When its last bit leaves the air.
    pub end: Duration,
    /// `end - start`.
    pub airtime: Duration,
}

impl TxInfo {
    /// The fraction in `[0, 1]` of this frame's airtime elapsed at `now`.
    pub fn progress(&self, now: Duration) -> f64 {
        if now >= self.end {
            1.0
        } else if now <= self.start {
            0.0
        } else {
            (now - self.start).as_secs_f64() / self.airtime.as_secs_f64()
        }
    }
}

/// A frame arriving at an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The receiving end.
    pub to: End,
    /// The sending end.
    pub from: End,
    /// The frame's id (a duplicate shares its original's id).
    pub id: FrameId,
    /// The frame, intact.
    pub frame: Vec<u8>,
    /// When it arrives.
    pub at: Duration,
    /// `true` for the second copy of a duplicated frame.
    pub duplicate: bool,
}

/// Counters of one sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Frames accepted by [`Link::send`].
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Their total airtime.
    pub airtime: Duration,
    /// Total time frames waited for a busy transmitter or channel before going on the air.
    pub waiting: Duration,
}

/// Counters of one direction (sender → receiver).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Frames offered to this receiver.
    pub frames: u64,
    /// Of those, lost.
    pub lost: u64,
    /// Of those not lost, duplicated.
    pub duplicated: u64,
    /// Copies given a reordering delay.
    pub delayed: u64,
    /// Copies handed out by [`Link::poll`].
    pub delivered: u64,
    /// Bytes handed out by [`Link::poll`].
    pub bytes_delivered: u64,
    /// Copies delivered after a later-sent frame in the same direction had been delivered.
    pub out_of_order: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at: Duration,
    seq: u64,
    to: End,
    from: End,
    id: FrameId,
    duplicate: bool,
    frame: std::sync::Arc<[u8]>,
}

/// A simulated shared channel between two or more ends; see the [crate docs](crate) for the
/// model.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    ends: usize,
    rng: Rng,
    latest: Duration,
    tx_free: Vec<Duration>,
    channel_free: Duration,
    pending: BinaryHeap<Reverse<Pending>>,
    next_id: FrameId,
    next_seq: u64,
    senders: Vec<SenderStats>,
    directions: Vec<DirectionStats>,
    highest_delivered: Vec<Option<FrameId>>,
}

impl Link {
    /// A link between ends `End(0) .. End(ends - 1)`, all on one channel.
    pub fn new(config: LinkConfig, ends: usize) -> Result<Self, ConfigError> {
        config.validate()?;
        if !(2..=256).contains(&ends) {
            return Err(ConfigError::EndCount { ends });
        }
        Ok(Self {
            config,
            ends,
            rng: Rng::new(config.seed),
            latest: Duration::ZERO,
            tx_free: vec![Duration::ZERO; ends],
            channel_free: Duration::ZERO,
            pending: BinaryHeap::new(),
            next_id: 0,
            next_seq: 0,
            senders: vec![SenderStats::default(); ends],
            directions: vec![DirectionStats::default(); ends * ends],
            highest_delivered: vec![None; ends * ends],
        })
    }

    /// A link between [`End::A`] and [`End::B`].
    pub fn pair(config: LinkConfig) -> Result<Self, ConfigError> {
        Self::new(config, 2)
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The number of ends.
    pub fn ends(&self) -> usize {
        self.ends
    }

    fn check_end(&self, end: End) -> Result<(), SendError> {
        if end.index() < self.ends {
            Ok(())
        } else {
            Err(SendError::UnknownEnd(end))
        }
    }

    fn advance(&mut self, now: Duration) -> Result<(), SendError> {
        if now < self.latest {
            return Err(SendError::ClockWentBackwards {
                now,
                latest: self.latest,
            });
        }
        self.latest = now;
        Ok(())
    }

    /// Hands `frame` from `from` to the link at time `now`.
    ///
    /// The frame goes on the air as soon as `from`'s transmitter (in half duplex: the channel) is
    /// free, and is offered to every other end. Returns when it occupies the air. Call
    /// [`poll`](Self::poll) to collect deliveries. Fails, sending nothing and drawing no random
    /// numbers, if the frame is too large, `from` is not on the link, or `now` is earlier than a
    /// time given before.
    pub fn send(&mut self, now: Duration, from: End, frame: &[u8]) -> Result<TxInfo, SendError> {
        self.check_end(from)?;
        if frame.len() > self.config.max_frame {
            return Err(SendError::FrameTooLarge {
                len: frame.len(),
                max: self.config.max_frame,
            });
        }
        // Validated: in LoRa mode max_frame <= 255, so this cannot fail.
        let airtime = self
            .config
            .airtime(frame.len())
            .map_err(|_| SendError::FrameTooLarge {
                len: frame.len(),
                max: lora::MAX_PAYLOAD,
            })?;
        self.advance(now)?;

        let free = if self.config.half_duplex {
            self.channel_free
        } else {
            self.tx_free[from.index()]
        };
        let start = now.max(free);
        let end = start.saturating_add(airtime);
        self.tx_free[from.index()] = end;
        if self.config.half_duplex {
            self.channel_free = end.saturating_add(self.config.latency);
        }
        let id = self.next_id;
        self.next_id += 1;
        let s = &mut self.senders[from.index()];
        s.frames += 1;
        s.bytes += frame.len() as u64;
        s.airtime = s.airtime.saturating_add(airtime);
        s.waiting = s.waiting.saturating_add(start - now);

        let frame: std::sync::Arc<[u8]> = frame.into();
        let arrival = end.saturating_add(self.config.latency);
        for to in 0..self.ends {
            if to == from.index() {
                continue;
            }
            // Always the same six draws per receiver, whatever the outcomes.
            let lost = self.rng.chance(self.config.loss);
            let dup = self.rng.chance(self.config.duplicate);
            let delays = [self.reorder_delay(), self.reorder_delay()];
            let dir = &mut self.directions[from.index() * self.ends + to];
            dir.frames += 1;
            if lost {
                dir.lost += 1;
                continue;
            }
            if dup {
                dir.duplicated += 1;
            }
            let copies = if dup { 2 } else { 1 };
            for (copy, delay) in delays.into_iter().take(copies).enumerate() {
                if delay.is_some() {
                    self.directions[from.index() * self.ends + to].delayed += 1;
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                self.pending.push(Reverse(Pending {
                    at: arrival.saturating_add(delay.unwrap_or(Duration::ZERO)),
                    seq,
                    to: End(to as u8),
                    from,
                    id,
                    duplicate: copy == 1,
                    frame: frame.clone(),
                }));
            }
        }
        Ok(TxInfo {
            id,
            from,
            len: frame.len(),
            queued: now,
            start,
            end,
            airtime,
        })
    }

    /// Two draws: whether to delay, and by how much.
    fn reorder_delay(&mut self) -> Option<Duration> {
        let hit = self.rng.chance(self.config.reorder.probability);
        let max =
            u64::try_from(self.config.reorder.max_extra_delay.as_micros()).unwrap_or(u64::MAX);
        let extra = 1 + self.rng.below(max);
        (hit && max > 0).then(|| Duration::from_micros(extra))
    }

    /// The next frame that has arrived by `now`, earliest first (ties in the order they were
    /// scheduled), or `None`. Call repeatedly until `None`, then again after
    /// [`next_event`](Self::next_event). A `now` earlier than a time given before is treated as
    /// that time.
    pub fn poll(&mut self, now: Duration) -> Option<Delivery> {
        let now = now.max(self.latest);
        self.latest = now;
        if self.pending.peek().is_none_or(|Reverse(p)| p.at > now) {
            return None;
        }
        let Reverse(p) = self.pending.pop()?;
        let slot = p.from.index() * self.ends + p.to.index();
        let dir = &mut self.directions[slot];
        dir.delivered += 1;
        dir.bytes_delivered += p.frame.len() as u64;
        match self.highest_delivered[slot] {
            Some(h) if p.id < h => dir.out_of_order += 1,
            _ => self.highest_delivered[slot] = Some(p.id),
        }
        Some(Delivery {
            to: p.to,
            from: p.from,
            id: p.id,
            frame: p.frame.to_vec(),
            at: p.at,
            duplicate: p.duplicate,
        })
    }

    /// When the next delivery is due, or `None` if nothing is in flight.
    pub fn next_event(&self) -> Option<Duration> {
        self.pending.peek().map(|Reverse(p)| p.at)
    }

    /// When `end`'s transmitter (in half duplex: the channel) is next free: a frame sent now
    /// starts then at the earliest.
    pub fn free_at(&self, end: End) -> Duration {
        let own = self.tx_free.get(end.index()).copied().unwrap_or_default();
        if self.config.half_duplex {
            own.max(self.channel_free)
        } else {
            own
        }
    }

    /// Counters of `from` as a sender (zero for an unknown end).
    pub fn sender_stats(&self, from: End) -> SenderStats {
        self.senders.get(from.index()).copied().unwrap_or_default()
    }

    /// Counters of the direction `from` → `to` (zero for unknown ends).
    pub fn direction_stats(&self, from: End, to: End) -> DirectionStats {
        if from.index() >= self.ends || to.index() >= self.ends {
            return DirectionStats::default();
        }
        self.directions[from.index() * self.ends + to.index()]
    }
}
