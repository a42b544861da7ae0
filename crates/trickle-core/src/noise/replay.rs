//! Counter reconstruction from the 16-bit CoAP Message ID and the sliding replay window.
//!
//! Every frame of an established session is protected with a 64-bit counter, but only its low
//! 16 bits travel on the air, as the CoAP Message ID. The receiver rebuilds the full counter the
//! way QUIC decodes packet numbers (RFC 9000 §A.3): it picks the value with those low bits that
//! is closest to the counter it expects. It then checks the counter against a sliding window in
//! the manner of OSCORE (RFC 8613 §7.4): a counter is accepted once; reordering inside the window
//! is accepted; anything below the window is rejected.
//!
//! Nothing here does cryptography: the pipe authenticates a frame *between* [`ReplayWindow::check`]
//! and [`ReplayWindow::accept`], so an unauthenticated frame never moves the window.

use core::fmt;

/// Number of counters the replay window remembers below the highest accepted one.
pub const WINDOW: u64 = 64;

/// Half the span of the 16-bit Message ID: the farthest a counter may be from the expected one.
const HALF_SPAN: u64 = 1 << 15;
/// The span of the 16-bit Message ID.
const SPAN: u64 = 1 << 16;

/// Rebuilds a full counter from its low 16 bits (`mid`), choosing the candidate closest to
/// `expected` (RFC 9000 §A.3 with a 16-bit truncated value).
///
/// Ties and underflow resolve upwards; values that would pass `u64::MAX` resolve downwards.
/// Never panics.
pub fn reconstruct(expected: u64, mid: u16) -> u64 {
    let mask = SPAN - 1;
    let candidate = (expected & !mask) | u64::from(mid);
    if candidate.saturating_add(HALF_SPAN) <= expected && candidate <= u64::MAX - SPAN {
        candidate + SPAN
    } else if candidate > expected.saturating_add(HALF_SPAN) && candidate >= SPAN {
        candidate - SPAN
    } else {
        candidate
    }
}

/// Rebuilds a counter that must not exceed `latest`: the largest value `<= latest` whose low 16
/// bits are `mid`. Used for echoed Message IDs (an ACK can only answer a message already sent).
/// Returns `None` if no such value exists.
pub fn reconstruct_at_most(latest: u64, mid: u16) -> Option<u64> {
    let candidate = (latest & !(SPAN - 1)) | u64::from(mid);
    if candidate <= latest {
        Some(candidate)
    } else {
        candidate.checked_sub(SPAN)
    }
}

/// Why a counter was refused by the replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReplayError {
    /// The counter is below the window (or below the floor set after a reboot): it may have been
    /// accepted before and can no longer be told apart from a replay.
    TooOld,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::TooOld => f.write_str("counter below the replay window"),
        }
    }
}

impl core::error::Error for ReplayError {}

/// Outcome of [`ReplayWindow::check`] for a counter that is not too old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Freshness {
    /// Never accepted: process it, then call [`ReplayWindow::accept`].
    New,
    /// Already accepted: a retransmission or a replay (CoAP deduplication answers it from cache).
    Duplicate,
}

/// A sliding replay window over 64-bit counters (RFC 8613 §7.4), [`WINDOW`] counters wide.
///
/// `top` is one past the highest accepted counter; bit `i` of `seen` records whether counter
/// `top - 1 - i` was accepted. Counters below `floor` are always refused (after a reboot the
/// floor is the persisted receive bound, see `storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplayWindow {
    top: u64,
    seen: u64,
    floor: u64,
}

impl ReplayWindow {
    /// A window that accepts every counter `>= floor` once.
    pub const fn new(floor: u64) -> Self {
        ReplayWindow {
            top: floor,
            seen: 0,
            floor,
        }
    }

    /// One past the highest accepted counter (equals the floor while nothing was accepted).
    pub const fn top(&self) -> u64 {
        self.top
    }

    /// The lowest counter this window can still accept.
    pub const fn floor(&self) -> u64 {
        self.floor
    }

    /// The highest accepted counter, if any.
    pub fn highest(&self) -> Option<u64> {
        if self.seen & 1 == 1 {
            Some(self.top - 1)
        } else {
            None
        }
    }

    /// Classifies `counter` without changing the window.
    pub fn check(&self, counter: u64) -> Result<Freshness, ReplayError> {
        if counter < self.floor {
            return Err(ReplayError::TooOld);
        }
        if counter >= self.top {
            return Ok(Freshness::New);
        }
        let age = self.top - 1 - counter;
        if age >= WINDOW {
            return Err(ReplayError::TooOld);
        }
        if self.seen & (1u64 << age) != 0 {
            Ok(Freshness::Duplicate)
        } else {
            Ok(Freshness::New)
        }
    }

    /// Marks `counter` accepted. Call only after [`check`](Self::check) returned
    /// [`Freshness::New`] and the frame authenticated; otherwise this is a no-op or an error.
    pub fn accept(&mut self, counter: u64) -> Result<(), ReplayError> {
        if counter < self.floor {
            return Err(ReplayError::TooOld);
        }
        if counter >= self.top {
            let shift = counter - self.top + 1;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = counter + 1;
            return Ok(());
        }
        let age = self.top - 1 - counter;
        if age >= WINDOW {
            return Err(ReplayError::TooOld);
        }
        self.seen |= 1u64 << age;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn reconstruct_rfc9000_example_shape() {
        // RFC 9000 §A.3's example, scaled to 16 bits: expected 0xa82f30ea (largest 0xa82f30e9 + 1),
        // truncated 0x9b32 → 0xa82f9b32.
        assert_eq!(reconstruct(0xa82f_30ea, 0x9b32), 0xa82f_9b32);
        assert_eq!(reconstruct(0, 0), 0);
        assert_eq!(reconstruct(0, 0xffff), 0xffff); // cannot go below zero
        assert_eq!(reconstruct(0x1_0000, 0xffff), 0xffff);
        assert_eq!(reconstruct(0xfff0, 0x0005), 0x1_0005);
        assert_eq!(reconstruct(u64::MAX, 0), u64::MAX - 0xffff);
    }

    #[test]
    fn reconstruct_at_most_cases() {
        assert_eq!(reconstruct_at_most(10, 10), Some(10));
        assert_eq!(reconstruct_at_most(10, 11), None);
        assert_eq!(reconstruct_at_most(0x1_0005, 0xfffe), Some(0xfffe));
        assert_eq!(reconstruct_at_most(0x1_0005, 0x0003), Some(0x1_0003));
    }

    #[test]
    fn window_accepts_once_and_reordering() {
        let mut w = ReplayWindow::new(100);
        assert_eq!(w.check(99), Err(ReplayError::TooOld));
        assert_eq!(w.check(105), Ok(Freshness::New));
        w.accept(105).unwrap();
        assert_eq!(w.check(105), Ok(Freshness::Duplicate));
        assert_eq!(w.check(101), Ok(Freshness::New)); // reordered, inside window
        w.accept(101).unwrap();
        assert_eq!(w.check(101), Ok(Freshness::Duplicate));
        w.accept(105 + WINDOW).unwrap();
        assert_eq!(w.check(105), Err(ReplayError::TooOld));
        assert_eq!(w.check(106), Ok(Freshness::New));
        assert_eq!(w.highest(), Some(105 + WINDOW));
    }

    proptest! {
        #[test]
        fn reconstruct_inverts_truncation(expected in 0u64..(u64::MAX >> 1), delta in -32767i64..32768) {
            let actual = expected as i64 + delta;
            prop_assume!(actual >= 0);
            let actual = actual as u64;
            prop_assert_eq!(reconstruct(expected, actual as u16), actual);
        }

        #[test]
        fn window_matches_model(ops in proptest::collection::vec(0u64..300, 1..200)) {
            // Model: a set of accepted counters; anything more than WINDOW-1 below the highest
            // accepted is too old.
            let mut w = ReplayWindow::new(0);
            let mut accepted = BTreeSet::new();
            for c in ops {
                let highest = accepted.iter().next_back().copied();
                let expect = match highest {
                    Some(h) if c + WINDOW <= h => Err(ReplayError::TooOld),
                    _ if accepted.contains(&c) => Ok(Freshness::Duplicate),
                    _ => Ok(Freshness::New),
                };
                prop_assert_eq!(w.check(c), expect);
                if expect == Ok(Freshness::New) {
                    w.accept(c).unwrap();
                    accepted.insert(c);
                }
            }
        }
    }
}
