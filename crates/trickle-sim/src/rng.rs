//! The simulator's pseudo-random numbers: xoshiro256** seeded through SplitMix64.
//!
//! Small, fast, and fully determined by the seed on every platform (only integer arithmetic and
//! one exact integer-to-float conversion), which is all a simulator needs. Not for cryptography.

/// xoshiro256** (Blackman and Vigna, 2018), state expanded from a 64-bit seed with SplitMix64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (`p <= 0` never, `p >= 1` always).
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A number in `0..n` (`0` if `n == 0`), by multiply-shift (bias below 2^-64 · n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn splitmix_and_xoshiro_reference_values() {
        // SplitMix64 from seed 0 starts e220a8397b1dcdaf (Vigna's splitmix64.c).
        let mut r = Rng::new(0);
        assert_eq!(r.s[0], 0xe220_a839_7b1d_cdaf);
        // Same seed, same stream; another seed, another stream.
        let a: Vec<u64> = (0..8).map(|_| r.next_u64()).collect();
        let mut r2 = Rng::new(0);
        let b: Vec<u64> = (0..8).map(|_| r2.next_u64()).collect();
        assert_eq!(a, b);
        let mut r3 = Rng::new(1);
        assert_ne!(a[0], r3.next_u64());
    }

    #[test]
    fn ranges() {
        let mut r = Rng::new(42);
        for _ in 0..10_000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(7) < 7);
            assert!(!r.chance(0.0));
            assert!(r.chance(1.0));
        }
        assert_eq!(r.below(0), 0);
    }
}
