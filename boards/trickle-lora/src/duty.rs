//! Duty-cycle accounting for the EU868 sub-bands.
//!
//! ETSI EN 300 220-2 (V3.2.1, Annex B / table B.1, bands h1.3–h1.7) limits each SRD sub-band of
//! 863–870 MHz to a fraction of every hour on air; LoRaWAN's Regional Parameters (RP002-1.0.x,
//! EU863-870 §"Duty cycle") use the same split:
//!
//! | sub-band          | limit | hourly budget |
//! |-------------------|-------|---------------|
//! | 863.0 – 868.0 MHz | 1 %   | 36 s          |
//! | 868.0 – 868.6 MHz | 1 %   | 36 s          |
//! | 868.7 – 869.2 MHz | 0.1 % | 3.6 s         |
//! | 869.4 – 869.65 MHz| 10 %  | 360 s         |
//! | 869.7 – 870.0 MHz | 1 %   | 36 s          |
//!
//! A channel belongs to a sub-band when its whole bandwidth (`f ± BW/2`) lies inside it.
//!
//! The window slides: a transmission counts against its sub-band until one hour after it
//! **ended**. That is never less than its real share of any hour-long window, so the limiter
//! errs on the safe side. Each sub-band keeps the last [`LEDGER_LEN`] transmissions; when the
//! ledger is full the two oldest merge into one (the sum of their airtime, ending when the later
//! ended), which again only ever over-counts.

use trickle_core::client::Instant;

/// The observation window: one hour, in milliseconds.
pub const WINDOW_MS: u64 = 3_600_000;

/// Transmissions remembered per sub-band before the oldest merge.
pub const LEDGER_LEN: usize = 8;

/// Which duty-cycle rules the driver enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Region {
    /// Europe 863–870 MHz: the sub-band limits above; frequencies outside them are refused.
    Eu868,
    /// No duty-cycle limit (regions regulated by dwell time or LBT instead; test benches).
    Unlimited,
}

/// An EU868 sub-band and its duty-cycle limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubBand {
    /// Lowest frequency, Hz.
    pub low_hz: u32,
    /// Highest frequency, Hz.
    pub high_hz: u32,
    /// The limit in parts per thousand (10 = 1 %).
    pub permille: u32,
}

impl SubBand {
    /// Airtime allowed per hour, in microseconds.
    pub const fn budget_us(&self) -> u64 {
        // 3600 s = 3.6e9 µs; × ‰ / 1000.
        3_600_000 * self.permille as u64
    }
}

/// The EU868 sub-bands, in order of frequency.
pub const EU868: [SubBand; 5] = [
    SubBand {
        low_hz: 863_000_000,
        high_hz: 868_000_000,
        permille: 10,
    },
    SubBand {
        low_hz: 868_000_000,
        high_hz: 868_600_000,
        permille: 10,
    },
    SubBand {
        low_hz: 868_700_000,
        high_hz: 869_200_000,
        permille: 1,
    },
    SubBand {
        low_hz: 869_400_000,
        high_hz: 869_650_000,
        permille: 100,
    },
    SubBand {
        low_hz: 869_700_000,
        high_hz: 870_000_000,
        permille: 10,
    },
];

/// The index into [`EU868`] of the sub-band that holds a channel of `bandwidth_hz` centred on
/// `frequency_hz`, or `None`.
pub fn eu868_sub_band(frequency_hz: u32, bandwidth_hz: u32) -> Option<usize> {
    let half = bandwidth_hz / 2;
    let low = frequency_hz.checked_sub(half)?;
    let high = frequency_hz.checked_add(half)?;
    EU868
        .iter()
        .position(|b| low >= b.low_hz && high <= b.high_hz)
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// When the transmission ended, ms.
    end_ms: u64,
    /// Its airtime, µs.
    airtime_us: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Ledger {
    /// Ordered by `end_ms`; the first `len` are in use.
    entries: [Entry; LEDGER_LEN],
    len: usize,
}

impl Ledger {
    fn live(&self) -> &[Entry] {
        self.entries.get(..self.len).unwrap_or_default()
    }

    /// Forgets transmissions that ended an hour or more before `now`.
    fn expire(&mut self, now: u64) {
        let dead = self
            .live()
            .iter()
            .take_while(|e| e.end_ms.saturating_add(WINDOW_MS) <= now)
            .count();
        self.entries.copy_within(dead..self.len, 0);
        self.len -= dead;
    }

    fn used_us(&self) -> u64 {
        self.live().iter().map(|e| e.airtime_us).sum()
    }

    /// Adds `e`, keeping the entries ordered by end time (transmissions given out of order, or
    /// overlapping, are still accounted for correctly).
    fn push(&mut self, e: Entry) {
        if self.len == LEDGER_LEN {
            let first = self.entries[0];
            self.entries[1].airtime_us += first.airtime_us;
            self.entries.copy_within(1.., 0);
            self.len -= 1;
        }
        let at = self
            .live()
            .iter()
            .position(|x| x.end_ms > e.end_ms)
            .unwrap_or(self.len);
        self.entries.copy_within(at..self.len, at + 1);
        self.entries[at] = e;
        self.len += 1;
    }
}

/// Why a transmission may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refusal {
    /// It fits after this many milliseconds.
    Wait {
        /// Milliseconds to wait.
        wait_ms: u64,
    },
    /// It is longer than the whole hourly budget.
    TooLong,
}

/// Per-sub-band airtime ledgers for one radio.
#[derive(Debug, Clone, Copy, Default)]
pub struct DutyCycle {
    ledgers: [Ledger; EU868.len()],
}

impl DutyCycle {
    /// Nothing sent yet.
    pub const fn new() -> Self {
        Self {
            ledgers: [Ledger {
                entries: [Entry {
                    end_ms: 0,
                    airtime_us: 0,
                }; LEDGER_LEN],
                len: 0,
            }; EU868.len()],
        }
    }

    /// Airtime still counted against sub-band `band` at `now`, in microseconds.
    pub fn used_us(&mut self, band: usize, now: Instant) -> u64 {
        match self.ledgers.get_mut(band) {
            Some(l) => {
                l.expire(now.0);
                l.used_us()
            }
            None => 0,
        }
    }

    /// Whether a transmission of `airtime_us` may start at `now` in sub-band `band`.
    pub fn check(&mut self, band: usize, now: Instant, airtime_us: u64) -> Result<(), Refusal> {
        let (Some(ledger), Some(sub)) = (self.ledgers.get_mut(band), EU868.get(band)) else {
            return Ok(());
        };
        let budget = sub.budget_us();
        if airtime_us > budget {
            return Err(Refusal::TooLong);
        }
        ledger.expire(now.0);
        let mut used = ledger.used_us();
        if used + airtime_us <= budget {
            return Ok(());
        }
        for e in ledger.live() {
            used -= e.airtime_us;
            if used + airtime_us <= budget {
                let wait_ms = (e.end_ms + WINDOW_MS).saturating_sub(now.0);
                return Err(Refusal::Wait { wait_ms });
            }
        }
        // Unreachable: with every entry expired, `used` is 0 and the frame fits the budget.
        Err(Refusal::TooLong)
    }

    /// Records a transmission of `airtime_us` that started at `start` in sub-band `band`. It
    /// counts as ending at `start` plus its airtime rounded up to whole milliseconds.
    pub fn record(&mut self, band: usize, start: Instant, airtime_us: u64) {
        if let Some(l) = self.ledgers.get_mut(band) {
            l.expire(start.0);
            l.push(Entry {
                end_ms: start.0.saturating_add(airtime_us.div_ceil(1000)),
                airtime_us,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        /// Whatever the sequence of attempts, the airtime inside any one-hour window never
        /// exceeds the budget, and a refusal's wait is exact: one millisecond earlier is still
        /// refused, at the wait the frame fits.
        #[test]
        fn never_exceeds_the_budget_and_waits_are_exact(
            band in 0usize..5,
            attempts in proptest::collection::vec((0u64..400_000, 1u64..20_000_000), 1..60),
        ) {
            let budget = EU868[band].budget_us();
            let mut d = DutyCycle::new();
            let mut now = 0u64;
            let mut sent: Vec<(u64, u64)> = Vec::new(); // (start ms, airtime µs)
            for (gap, airtime) in attempts {
                now += gap;
                match d.check(band, Instant(now), airtime) {
                    Ok(()) => {
                        d.record(band, Instant(now), airtime);
                        sent.push((now, airtime));
                    }
                    Err(Refusal::TooLong) => prop_assert!(airtime > budget),
                    Err(Refusal::Wait { wait_ms }) => {
                        prop_assert!(wait_ms > 0);
                        let mut probe = d;
                        if wait_ms > 1 {
                            prop_assert!(probe.check(band, Instant(now + wait_ms - 1), airtime).is_err());
                        }
                        prop_assert_eq!(probe.check(band, Instant(now + wait_ms), airtime), Ok(()));
                    }
                }
            }
            // Every window [w, w + 1 h) starting at a transmission's start: the airtime of the
            // transmissions that overlap it at all is within the budget.
            for &(w, _) in &sent {
                let total: u64 = sent
                    .iter()
                    .filter(|&&(s, a)| s < w + WINDOW_MS && s * 1000 + a > w * 1000)
                    .map(|&(_, a)| a)
                    .sum();
                prop_assert!(total <= budget, "window at {} ms: {} µs", w, total);
            }
        }
    }

    const G2: usize = 2; // 868.7–869.2 MHz, 0.1 %.

    #[test]
    fn sub_bands_of_common_channels() {
        // LoRaWAN default channels 868.1/868.3/868.5 MHz at 125 kHz: 1 % band g1.
        assert_eq!(eu868_sub_band(868_100_000, 125_000), Some(1));
        assert_eq!(eu868_sub_band(868_500_000, 125_000), Some(1));
        // RX2 869.525 MHz: the 10 % band.
        assert_eq!(eu868_sub_band(869_525_000, 125_000), Some(3));
        assert_eq!(EU868[3].budget_us(), 360_000_000);
        // 867.1 MHz: band g (1 %); 868.9 MHz: 0.1 %.
        assert_eq!(eu868_sub_band(867_100_000, 125_000), Some(0));
        assert_eq!(eu868_sub_band(868_900_000, 125_000), Some(G2));
        assert_eq!(EU868[G2].budget_us(), 3_600_000);
        // 868.55 MHz at 125 kHz spills over 868.6 MHz; 868.65 is between bands; 915 MHz is not
        // in EU868.
        assert_eq!(eu868_sub_band(868_550_000, 125_000), None);
        assert_eq!(eu868_sub_band(868_650_000, 125_000), None);
        assert_eq!(eu868_sub_band(915_000_000, 125_000), None);
        // 869.5 MHz at 250 kHz: 869.375..869.625 starts below 869.4.
        assert_eq!(eu868_sub_band(869_500_000, 250_000), None);
        assert_eq!(eu868_sub_band(869_525_000, 250_000), Some(3));
    }

    #[test]
    fn refuses_past_the_budget_and_says_when() {
        // Trickle's 32-byte Hello at SF12/125 kHz: 1 810 432 µs (trickle_core::link::lora).
        let toa = 1_810_432;
        let mut d = DutyCycle::new();
        assert_eq!(d.check(G2, Instant(0), toa), Ok(()));
        d.record(G2, Instant(0), toa); // ends at 1811 ms
        assert_eq!(d.used_us(G2, Instant(5_000)), toa);
        // A second one would make 3 620 864 µs > 3 600 000 µs.
        assert_eq!(
            d.check(G2, Instant(2_000), toa),
            Err(Refusal::Wait {
                wait_ms: 1_811 + 3_600_000 - 2_000
            })
        );
        // A smaller frame still fits now: 3 600 000 − 1 810 432 = 1 789 568 µs left.
        assert_eq!(d.check(G2, Instant(2_000), 1_789_568), Ok(()));
        assert!(d.check(G2, Instant(2_000), 1_789_569).is_err());
        assert_eq!(
            d.check(G2, Instant(3_601_810), toa),
            Err(Refusal::Wait { wait_ms: 1 })
        );
        assert_eq!(d.check(G2, Instant(3_601_811), toa), Ok(()));
        // Other sub-bands are unaffected.
        assert_eq!(d.check(1, Instant(2_000), toa), Ok(()));
        // More than the whole budget never fits.
        assert_eq!(d.check(G2, Instant(0), 3_600_001), Err(Refusal::TooLong));
    }

    #[test]
    fn waits_for_as_many_transmissions_as_needed() {
        // 1 % band: 36 s per hour. Seven 5 s transmissions, one every minute: 35 s used.
        let mut d = DutyCycle::new();
        for i in 0..7 {
            let t = Instant(i * 60_000);
            assert_eq!(d.check(1, t, 5_000_000), Ok(()), "tx {i}");
            d.record(1, t, 5_000_000);
        }
        let now = Instant(420_000);
        // A 2 s frame: 37 s > 36 s; without the first (ended at 5 000 ms) 32 s fit.
        assert_eq!(
            d.check(1, now, 2_000_000),
            Err(Refusal::Wait {
                wait_ms: 5_000 + WINDOW_MS - 420_000
            })
        );
        // A 9 s frame needs two to expire (44 − 5 − 5 = 34); the second ended at 65 000 ms.
        assert_eq!(
            d.check(1, now, 9_000_000),
            Err(Refusal::Wait {
                wait_ms: 65_000 + WINDOW_MS - 420_000
            })
        );
        // A 1 s frame fits now.
        assert_eq!(d.check(1, now, 1_000_000), Ok(()));
    }

    #[test]
    fn full_ledger_merges_and_never_under_counts() {
        let mut d = DutyCycle::new();
        for i in 0..20u64 {
            d.record(3, Instant(i * 1_000), 100_000);
        }
        // All 20 × 100 ms still count.
        assert_eq!(d.used_us(3, Instant(20_000)), 2_000_000);
        // The merged oldest entry ends with the 13th transmission (12 100 ms): before an hour
        // after that, nothing expires; at exactly that time the 13 merged ones do.
        assert_eq!(d.used_us(3, Instant(12_100 + WINDOW_MS - 1)), 2_000_000);
        assert_eq!(d.used_us(3, Instant(12_100 + WINDOW_MS)), 700_000);
        assert_eq!(d.used_us(3, Instant(19_100 + WINDOW_MS)), 0);
    }
}
