//! Running a [`Link`] against the wall clock, for demos.
//!
//! [`RealTime`] owns a link and a [`Clock`]. Its virtual time is the clock's elapsed time
//! multiplied by a [`Speed`] factor (1.0 = real time), or, with [`Speed::Fast`], jumps straight to
//! the next event without waiting. While waiting for a delivery it calls a progress callback for
//! every frame on the air, with the fraction of its airtime elapsed, so a UI can draw a live
//! progress bar per frame.
//!
//! ```
//! use std::time::Duration;
//! use trickle_sim::realtime::{RealTime, Speed, SystemClock};
//! use trickle_sim::{End, Link, LinkConfig};
//!
//! let link = Link::pair(LinkConfig::default()).unwrap();
//! let mut rt = RealTime::new(link, SystemClock::new(), Speed::Fast);
//! rt.send(End::A, b"hi").unwrap();
//! let mut last = 0.0;
//! let d = rt.recv(|p| last = p.fraction).unwrap();
//! assert_eq!(d.at, Duration::from_millis(160)); // 16 bits at 100 bit/s
//! assert_eq!(last, 1.0);
//! ```

use std::time::{Duration, Instant};

use crate::{Delivery, End, Link, SendError, TxInfo};

/// A source of elapsed real time that can sleep.
pub trait Clock {
    /// Time elapsed since the clock started.
    fn elapsed(&self) -> Duration;
    /// Blocks for `d` (a test clock just advances).
    fn sleep(&mut self, d: Duration);
}

/// The system's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// How virtual time relates to real time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Virtual time runs this many times faster than real time (1.0 = real time). Must be in
    /// `(0, 1e9]`; anything else (zero, negative, NaN, huge) is treated as [`Speed::Fast`].
    Factor(f64),
    /// No waiting: virtual time jumps to the next event (`--fast`).
    Fast,
}

/// A frame's progress on the air, reported while [`RealTime`] waits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The frame.
    pub tx: TxInfo,
    /// Fraction of its airtime elapsed, in `[0, 1]`; every frame is reported with exactly `1.0`
    /// once, when its airtime is over.
    pub fraction: f64,
    /// Virtual time of the report.
    pub now: Duration,
}

/// A [`Link`] driven by a real clock.
#[derive(Debug)]
pub struct RealTime<C: Clock = SystemClock> {
    link: Link,
    clock: C,
    speed: Speed,
    /// Virtual time in fast mode; in factor mode, the offset added to the scaled clock.
    virtual_now: Duration,
    tick: Duration,
    on_air: Vec<TxInfo>,
}

impl<C: Clock> RealTime<C> {
    /// Drives `link` with `clock` at `speed`; virtual time starts at zero now. A factor outside
    /// `(0, 1e9]` is treated as [`Speed::Fast`].
    pub fn new(link: Link, clock: C, speed: Speed) -> Self {
        let speed = match speed {
            Speed::Factor(f) if f > 0.0 && f <= 1e9 => speed,
            _ => Speed::Fast,
        };
        Self {
            link,
            clock,
            speed,
            virtual_now: Duration::ZERO,
            tick: Duration::from_millis(50),
            on_air: Vec::new(),
        }
    }

    /// Sets the real-time interval between progress reports (default 50 ms).
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick.max(Duration::from_micros(1));
        self
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The current virtual time.
    pub fn now(&self) -> Duration {
        match self.speed {
            Speed::Fast => self.virtual_now,
            Speed::Factor(f) => self.clock.elapsed().mul_f64(f).max(self.virtual_now),
        }
    }

    /// Sends `frame` from `from` now; see [`Link::send`].
    pub fn send(&mut self, from: End, frame: &[u8]) -> Result<TxInfo, SendError> {
        let tx = self.link.send(self.now(), from, frame)?;
        self.on_air.push(tx);
        Ok(tx)
    }

    /// Waits for the next delivery, reporting progress; `None` if nothing is in flight.
    pub fn recv(&mut self, progress: impl FnMut(&Progress)) -> Option<Delivery> {
        self.recv_until(None, progress)
    }

    /// Waits for the next delivery or until virtual time `deadline` (for a protocol timer),
    /// reporting progress of every frame on the air; `None` at the deadline, or at once if
    /// nothing is in flight and there is no deadline.
    pub fn recv_until(
        &mut self,
        deadline: Option<Duration>,
        mut progress: impl FnMut(&Progress),
    ) -> Option<Delivery> {
        loop {
            let now = self.now();
            self.report(now, &mut progress);
            if let Some(d) = self.link.poll(now) {
                return Some(d);
            }
            if deadline.is_some_and(|t| now >= t) {
                return None;
            }
            let next = match (self.link.next_event(), deadline) {
                (Some(e), Some(t)) => e.min(t),
                (Some(e), None) => e,
                (None, Some(t)) => t,
                (None, None) => return None,
            };
            match self.speed {
                Speed::Fast => self.virtual_now = next.max(now),
                Speed::Factor(f) => {
                    // At least a nanosecond, so even a coarse clock makes progress.
                    let real_left = (next - now).div_f64(f).max(Duration::from_nanos(1));
                    self.clock.sleep(real_left.min(self.tick));
                    // Never let virtual time lag behind what we already reported.
                    self.virtual_now = now;
                }
            }
        }
    }

    fn report(&mut self, now: Duration, progress: &mut impl FnMut(&Progress)) {
        for tx in &self.on_air {
            if tx.start <= now {
                progress(&Progress {
                    tx: *tx,
                    fraction: tx.progress(now),
                    now,
                });
            }
        }
        self.on_air.retain(|tx| tx.end > now);
    }
}
