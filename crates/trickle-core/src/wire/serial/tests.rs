extern crate std;
use super::*;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

const NO_CRC: Config = Config {
    crc: Crc::None,
    leading_delimiter: false,
};
const WITH_CRC: Config = Config {
    crc: Crc::X25,
    leading_delimiter: false,
};

fn enc(frame: &[u8], config: &Config, lead: bool) -> Vec<u8> {
    let mut out = vec![0u8; max_encoded_len(frame.len(), config.crc)];
    let n = encode(frame, config, lead, &mut out).unwrap();
    assert_eq!(n, encoded_len(frame, config, lead).unwrap());
    out.truncate(n);
    out
}

/// Plain COBS (no reduction, no CRC, no leading delimiter).
fn cobs(frame: &[u8]) -> Vec<u8> {
    Encoded::with_mode(frame, Crc::None, false, false).collect()
}

fn decode_all<const N: usize>(dec: &mut Decoder<N>, input: &[u8]) -> Vec<Result<Vec<u8>, Error>> {
    let mut out = Vec::new();
    for &b in input {
        if let Some(r) = dec.push(b) {
            out.push(r.map(<[u8]>::to_vec));
        }
    }
    out
}

/// CRC-16/X-25 check value (the CRC catalogue's "check" for ASCII `123456789`), and the RFC 1662
/// §C.2 "good final FCS" residue: the register after data ‖ FCS (before the final XOR) is F0B8.
#[test]
fn crc_x25_check_value_and_residue() {
    assert_eq!(crc16_x25(b"123456789"), 0x906E);
    assert_eq!(crc16_x25(b""), 0x0000);
    let mut data = b"123456789".to_vec();
    data.extend_from_slice(&0x906Eu16.to_le_bytes());
    let reg = data.iter().fold(0xFFFF, |c, &b| crc_x25_update(c, b));
    assert_eq!(reg, 0xF0B8);
}

/// The examples of the COBS article on Wikipedia (Cheshire & Baker's algorithm), with the
/// trailing delimiter: they pin down the block logic COBS/R shares.
#[test]
fn cobs_published_examples() {
    assert_eq!(cobs(&[0x00]), [0x01, 0x01, 0x00]);
    assert_eq!(cobs(&[0x00, 0x00]), [0x01, 0x01, 0x01, 0x00]);
    assert_eq!(cobs(&[0x00, 0x11, 0x00]), [0x01, 0x02, 0x11, 0x01, 0x00]);
    assert_eq!(
        cobs(&[0x11, 0x22, 0x00, 0x33]),
        [0x03, 0x11, 0x22, 0x02, 0x33, 0x00]
    );
    assert_eq!(
        cobs(&[0x11, 0x22, 0x33, 0x44]),
        [0x05, 0x11, 0x22, 0x33, 0x44, 0x00]
    );
    assert_eq!(
        cobs(&[0x11, 0x00, 0x00, 0x00]),
        [0x02, 0x11, 0x01, 0x01, 0x01, 0x00]
    );
    // 01 02 … FE (254 bytes) → FF 01 … FE 00.
    let d: Vec<u8> = (0x01..=0xFE).collect();
    let mut want = vec![0xFF];
    want.extend_from_slice(&d);
    want.push(0x00);
    assert_eq!(cobs(&d), want);
    // 00 01 … FE (255 bytes) → 01 FF 01 … FE 00.
    let d: Vec<u8> = (0x00..=0xFE).collect();
    let mut want = vec![0x01, 0xFF];
    want.extend(0x01..=0xFE);
    want.push(0x00);
    assert_eq!(cobs(&d), want);
    // 01 02 … FF (255 bytes) → FF 01 … FE 02 FF 00.
    let d: Vec<u8> = (0x01..=0xFF).collect();
    let mut want = vec![0xFF];
    want.extend(0x01..=0xFE);
    want.extend_from_slice(&[0x02, 0xFF, 0x00]);
    assert_eq!(cobs(&d), want);
    // 02 03 … FF 00 (255 bytes) → FF 02 … FF 01 01 00.
    let mut d: Vec<u8> = (0x02..=0xFF).collect();
    d.push(0x00);
    let mut want = vec![0xFF];
    want.extend(0x02..=0xFF);
    want.extend_from_slice(&[0x01, 0x01, 0x00]);
    assert_eq!(cobs(&d), want);
    // 03 04 … FF 00 01 (255 bytes) → FE 03 … FF 02 01 00.
    let mut d: Vec<u8> = (0x03..=0xFF).collect();
    d.extend_from_slice(&[0x00, 0x01]);
    let mut want = vec![0xFE];
    want.extend(0x03..=0xFF);
    want.extend_from_slice(&[0x02, 0x01, 0x00]);
    assert_eq!(cobs(&d), want);
}

/// COBS/R, computed by hand from the rule: when the final block's last byte is at least the
/// block's code, that byte replaces the code.
#[test]
fn cobsr_byte_exact() {
    let f = |d: &[u8]| enc(d, &NO_CRC, false);
    // 44 ≥ 05: the last byte replaces the code (COBS: 05 11 22 33 44 00).
    assert_eq!(f(&[0x11, 0x22, 0x33, 0x44]), [0x44, 0x11, 0x22, 0x33, 0x00]);
    // Final block 33 (code 02): reduced (COBS: 03 11 22 02 33 00).
    assert_eq!(f(&[0x11, 0x22, 0x00, 0x33]), [0x03, 0x11, 0x22, 0x33, 0x00]);
    // Empty final block: nothing to reduce, same as COBS.
    assert_eq!(
        f(&[0x11, 0x00, 0x00, 0x00]),
        [0x02, 0x11, 0x01, 0x01, 0x01, 0x00]
    );
    // 01 < 02 and 03 < 04: not reduced.
    assert_eq!(f(&[0x01]), [0x02, 0x01, 0x00]);
    assert_eq!(f(&[0x05, 0x04, 0x03]), [0x04, 0x05, 0x04, 0x03, 0x00]);
    // 02 ≥ 02 (equal suffices).
    assert_eq!(f(&[0x02]), [0x02, 0x00]);
    assert_eq!(f(&[0x00]), [0x01, 0x01, 0x00]);
    // 01 … FF (255 bytes): final block FF (code 02) reduced → FF 01 … FE FF 00.
    let d: Vec<u8> = (0x01..=0xFF).collect();
    let mut want = vec![0xFF];
    want.extend(0x01..=0xFE);
    want.extend_from_slice(&[0xFF, 0x00]);
    assert_eq!(f(&d), want);
    // 02 … FF (254 bytes, a full final block, last byte FF ≥ code FF) → FF 02 … FE 00.
    let d: Vec<u8> = (0x02..=0xFF).collect();
    let mut want = vec![0xFF];
    want.extend(0x02..=0xFE);
    want.push(0x00);
    assert_eq!(f(&d), want);
    // 01 … FE (254 bytes): FE < FF, same as COBS.
    let d: Vec<u8> = (0x01..=0xFE).collect();
    assert_eq!(f(&d), cobs(&d));
    // Each decodes back.
    for d in [
        vec![0x11, 0x22, 0x33, 0x44],
        vec![0x11, 0x22, 0x00, 0x33],
        vec![0x02],
        vec![0x05, 0x04, 0x03],
        (0x01..=0xFF).collect(),
        (0x02..=0xFF).collect(),
    ] {
        let mut dec = Decoder::<300>::new(Crc::None);
        assert_eq!(decode_all(&mut dec, &f(&d)), [Ok(d)]);
    }
}

/// The full framing with CRC: `123456789` ‖ 6E 90, stuffed (12-byte final block, last byte
/// 90 ≥ 0C: reduced), with the leading delimiter.
#[test]
fn framed_with_crc_byte_exact() {
    let want = [
        0x00, 0x90, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x6E, 0x00,
    ];
    assert_eq!(enc(b"123456789", &WITH_CRC, true), want);
    let leading = Config {
        crc: Crc::X25,
        leading_delimiter: true,
    };
    assert_eq!(enc(b"123456789", &leading, false), want);
    assert_eq!(enc(b"123456789", &WITH_CRC, false), want[1..]);
    let mut dec = Decoder::<9>::new(Crc::X25);
    assert_eq!(decode_all(&mut dec, &want), [Ok(b"123456789".to_vec())]);
    // The same bytes without CRC: final block code 0A, last byte 39 ≥ 0A: reduced.
    assert_eq!(
        enc(b"123456789", &NO_CRC, false),
        [0x39, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x00]
    );
    // A frame whose CRC contains a zero byte: the zero is stuffed like any other.
    let frame = (0u16..)
        .map(|i| i.to_be_bytes())
        .find(|f| crc16_x25(f).to_le_bytes().contains(&0))
        .unwrap();
    let e = enc(&frame, &WITH_CRC, false);
    assert!(!e[..e.len() - 1].contains(&0));
    let mut dec = Decoder::<2>::new(Crc::X25);
    assert_eq!(decode_all(&mut dec, &e), [Ok(frame.to_vec())]);
}

#[test]
fn encoder_errors_and_bounds() {
    let mut out = [0u8; 8];
    assert_eq!(encode(&[], &NO_CRC, false, &mut out), Err(Error::Empty));
    assert_eq!(
        encode(&[1, 2, 3, 4, 5, 6, 7, 8], &NO_CRC, true, &mut out),
        Err(Error::BufferTooSmall { required: 11 })
    );
    // 10 ≥ 09: reduced, one byte shorter.
    assert_eq!(
        encode(&[1, 2, 3, 4, 5, 6, 7, 0x10], &NO_CRC, true, &mut out),
        Err(Error::BufferTooSmall { required: 10 })
    );
    assert_eq!(max_encoded_len(32, Crc::None), 35);
    assert_eq!(max_encoded_len(32, Crc::X25), 37);
    assert_eq!(max_encoded_len(255, Crc::None), 259);
    // The worst 255-byte frame: no zero, last byte 01 (not reducible).
    let mut d = vec![0x80u8; 255];
    d[254] = 0x01;
    assert_eq!(
        encoded_len(&d, &NO_CRC, true),
        Ok(max_encoded_len(255, Crc::None))
    );
    // A sender's first frame gets a leading delimiter, later ones not (05 ≥ 02: reduced).
    let mut sender = Sender::new(NO_CRC);
    assert_eq!(sender.frame(&[5]).unwrap().collect::<Vec<_>>(), [0, 5, 0]);
    assert_eq!(sender.frame(&[5]).unwrap().collect::<Vec<_>>(), [5, 0]);
    assert_eq!(sender.frame(&[]).err(), Some(Error::Empty));
    sender.interrupted();
    assert_eq!(sender.frame(&[5]).unwrap().collect::<Vec<_>>(), [0, 5, 0]);
}

#[test]
fn empty_frames_are_skipped() {
    let mut dec = Decoder::<8>::new(Crc::None);
    // Idle delimiters, and an encoded empty payload (`01`).
    assert_eq!(decode_all(&mut dec, &[0, 0, 0, 0x01, 0x00, 0x00]), []);
    assert_eq!(decode_all(&mut dec, &[0x02, 0x07, 0x00]), [Ok(vec![7])]);
}

#[test]
fn resync_after_noise_partial_frame_and_reset() {
    let frame = b"\x01\x60\x00\x12\x34 trickle frame".to_vec();
    let mut dec = Decoder::<64>::new(Crc::X25);
    // Line noise, then the frame with its leading delimiter: the noise is dropped (as one bad
    // frame), the frame is delivered.
    let mut input = vec![0x55, 0xAA, 0x13];
    input.extend(enc(&frame, &WITH_CRC, true));
    let got = decode_all(&mut dec, &input);
    assert_eq!(got.last(), Some(&Ok(frame.clone())));
    assert_eq!(got.len(), 2);
    // A frame cut by the sender's reset, then the restarted sender's first frame (which always
    // has a leading delimiter): the cut frame is dropped, the new one arrives.
    let whole = enc(&frame, &WITH_CRC, false);
    let mut input = whole[..whole.len() / 2].to_vec();
    let mut restarted = Sender::new(WITH_CRC);
    input.extend(restarted.frame(&frame).unwrap());
    assert_eq!(
        decode_all(&mut dec, &input),
        [Err(Error::BadCrc), Ok(frame.clone())]
    );
    // A decoder (receiver) reset in the middle of a frame: the tail is dropped, the next frame
    // arrives.
    let mut input = whole[whole.len() / 2..].to_vec();
    input.extend_from_slice(&whole);
    dec.reset();
    assert_eq!(
        decode_all(&mut dec, &input),
        [Err(Error::BadCrc), Ok(frame.clone())]
    );
}

#[test]
fn flipped_bits_are_caught_by_the_crc() {
    let frame: Vec<u8> = (1..=40).collect();
    let good = enc(&frame, &WITH_CRC, false);
    let mut caught = 0;
    for i in 0..good.len() - 1 {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            let mut input = bad;
            input.extend_from_slice(&good);
            let mut dec = Decoder::<64>::new(Crc::X25);
            let got = decode_all(&mut dec, &input);
            // Whatever the flip did (changed data, moved a delimiter), the frame after it is
            // intact and no damaged frame is delivered.
            assert_eq!(got.last(), Some(&Ok(frame.clone())), "byte {i} bit {bit}");
            assert!(
                got[..got.len() - 1].iter().all(Result::is_err),
                "byte {i} bit {bit}: {got:?}"
            );
            caught += got.len() - 1;
        }
    }
    assert!(caught >= (good.len() - 1) * 8);
}

#[test]
fn runt_frames_with_crc() {
    let mut dec = Decoder::<8>::new(Crc::X25);
    // One and two decoded bytes: too short for CRC + payload.
    assert_eq!(
        decode_all(&mut dec, &[0x02, 0x07, 0x00, 0x03, 0x07, 0x08, 0x00]),
        [Err(Error::Runt), Err(Error::Runt)]
    );
    // An encoded empty payload is skipped without CRC, a runt with it.
    assert_eq!(decode_all(&mut dec, &[0x01, 0x00]), [Err(Error::Runt)]);
    let f = enc(&[9], &WITH_CRC, false);
    assert_eq!(decode_all(&mut dec, &f), [Ok(vec![9])]);
}

#[test]
fn overlong_frames_rejected_once_then_resync() {
    for config in [NO_CRC, WITH_CRC] {
        let mut dec = Decoder::<4>::new(config.crc);
        let mut input = enc(&[1, 2, 3, 4, 5, 6, 7], &config, false);
        input.extend(enc(&[9], &config, false));
        assert_eq!(
            decode_all(&mut dec, &input),
            [Err(Error::Overlong { capacity: 4 }), Ok(vec![9])]
        );
        // Exactly N bytes fit, with or without CRC (it is held outside the buffer).
        let input = enc(&[1, 2, 3, 4], &config, false);
        assert_eq!(decode_all(&mut dec, &input), [Ok(vec![1, 2, 3, 4])]);
        // Also when the last byte comes from a reduced final block, or an implied zero.
        for f in [[1, 2, 3, 0xF0], [1, 2, 0, 3]] {
            assert_eq!(
                decode_all(&mut dec, &enc(&f, &config, false)),
                [Ok(f.to_vec())]
            );
            let mut five = f.to_vec();
            five.push(0xF0);
            assert_eq!(
                decode_all(&mut dec, &enc(&five, &config, false)),
                [Err(Error::Overlong { capacity: 4 })]
            );
        }
    }
}

// --- overhead: the measurement behind the choice of COBS/R --------------------------------

/// SplitMix64, a fixed-seed generator for the sample (no dependency, reproducible).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// A frame of `len` bytes shaped like a Trickle pipe frame: CID, CoAP header
/// (`Ver|T|TKL`, Code, MID), token, then ciphertext and tag (uniformly random bytes).
fn real_looking_frame(rng: &mut SplitMix, len: usize, mid: u16) -> Vec<u8> {
    let tkl = if len >= 30 {
        1 + rng.byte() as usize % 2
    } else {
        0
    };
    let t = [0x40u8, 0x50, 0x60][rng.byte() as usize % 3];
    let code = [0x01u8, 0x02, 0x03, 0x44, 0x45, 0x00][rng.byte() as usize % 6];
    let mut f = vec![1 + rng.byte() % 4, t | tkl as u8, code];
    f.extend_from_slice(&mid.to_be_bytes());
    while f.len() < len {
        f.push(rng.byte());
    }
    f
}

/// Bytes SLIP (RFC 1055) adds to a frame besides its delimiters: one per `C0`/`DB`.
fn slip_stuffing(frame: &[u8]) -> usize {
    frame.iter().filter(|&&b| b == 0xC0 || b == 0xDB).count()
}

/// Exact expected COBS/R stuffing overhead for `n` ≤ 254 uniformly random bytes: 1 minus the
/// probability that the final block is reduced (its run has r ≥ 1 bytes, preceded by a zero or
/// the frame start, and its last byte — uniform on 1..=255 — is ≥ r + 1).
fn cobsr_expected(n: usize) -> f64 {
    let q = 255.0 / 256.0;
    let mut p = 0.0;
    for r in 1..=n {
        let run = if r < n {
            q_pow(q, r) / 256.0
        } else {
            q_pow(q, n)
        };
        p += run * (255 - r) as f64 / 255.0;
    }
    1.0 - p
}

fn q_pow(q: f64, k: usize) -> f64 {
    (0..k).fold(1.0, |a, _| a * q)
}

/// The table in docs/PROTOCOL.md and the crate README: stuffing overhead (delimiters not
/// counted) of SLIP, COBS and COBS/R for Trickle frame sizes, exact expectation over random
/// bytes and the mean over a fixed-seed sample of 20 000 real-looking frames per size, and the
/// worst case. Run with `--nocapture` to print it.
#[test]
fn overhead_table() {
    const SAMPLES: usize = 20_000;
    let mut rng = SplitMix(0x7472_6963_6B6C_6521);
    std::println!(
        "| frame | SLIP exp. | SLIP sample | SLIP worst | COBS | COBS/R exp. | COBS/R sample | COBS/R worst |"
    );
    std::println!("|---|---|---|---|---|---|---|---|");
    for n in [21usize, 30, 32, 64, 128, 170, 254, 255] {
        let (mut slip, mut cobs_total, mut cobsr, mut cobsr_max) = (0usize, 0usize, 0usize, 0usize);
        for i in 0..SAMPLES {
            let f = real_looking_frame(&mut rng, n, i as u16);
            slip += slip_stuffing(&f);
            // Encoded lengths minus the frame and the trailing delimiter.
            cobs_total += cobs(&f).len() - n - 1;
            let r = encoded_len(&f, &NO_CRC, false).unwrap() - n - 1;
            cobsr += r;
            cobsr_max = cobsr_max.max(r);
        }
        let mean = |t: usize| t as f64 / SAMPLES as f64;
        let slip_exp = n as f64 * 2.0 / 256.0;
        // Worst cases: SLIP doubles every byte; COBS/R never exceeds COBS (1 + n/254 bytes, one
        // less when the frame is a multiple of 254 bytes).
        let worst = max_encoded_len(n, Crc::None) - n - 2;
        if n <= 254 {
            let exp = cobsr_expected(n);
            std::println!(
                "| {n} | {slip_exp:.3} | {:.3} | {n} | 1 | {exp:.3} | {:.3} | {worst} |",
                mean(slip),
                mean(cobsr)
            );
            // The sample agrees with the exact expectation (5 standard errors at most; the
            // per-frame overhead is 0 or 1).
            let se = (exp * (1.0 - exp) / SAMPLES as f64).sqrt();
            assert!((mean(cobsr) - exp).abs() < 5.0 * se, "n={n}");
            // COBS adds exactly one byte to any frame of up to 254 bytes.
            assert_eq!(cobs_total, SAMPLES, "n={n}");
            assert!(cobsr_max <= 1);
        } else {
            std::println!(
                "| {n} | {slip_exp:.3} | {:.3} | {n} | {:.3} | — | {:.3} | {worst} |",
                mean(slip),
                mean(cobs_total),
                mean(cobsr)
            );
        }
        // (The SLIP sample is below the random-bytes expectation: the clear header bytes are
        // never C0/DB, apart from the MID.)
        // The decision: COBS/R has the lowest mean at every Trickle size and a worst case of
        // 1–2 bytes where SLIP's is n.
        assert!(mean(cobsr) < mean(slip).min(mean(cobs_total)), "n={n}");
        assert!(cobsr_max <= worst && worst <= 2);
    }
}

proptest! {
    #[test]
    fn round_trip(frames in proptest::collection::vec(
                      proptest::collection::vec(any::<u8>(), 1..600), 0..5),
                  crc in any::<bool>(), lead in any::<bool>(), zeros in any::<bool>()) {
        let config = Config { crc: if crc { Crc::X25 } else { Crc::None }, leading_delimiter: lead };
        let mut stream = Vec::new();
        for f in &frames {
            // Zero-heavy frames exercise the implied zeros.
            let f: Vec<u8> = if zeros { f.iter().map(|b| b & 0x03).collect() } else { f.clone() };
            let e = enc(&f, &config, false);
            prop_assert!(e.len() <= max_encoded_len(f.len(), config.crc));
            let body = if lead { &e[1..] } else { &e[..] };
            prop_assert_eq!(*body.last().unwrap(), 0);
            prop_assert!(!body[..body.len() - 1].contains(&0));
            // Never more than COBS, never more than one byte over COBS/R's bound.
            prop_assert!(body.len() - 1 <= f.len() + config.crc.len() + 1 + (f.len() + config.crc.len()) / 254);
            let mut dec = Decoder::<600>::new(config.crc);
            prop_assert_eq!(decode_all(&mut dec, &e), vec![Ok(f.clone())]);
            stream.extend_from_slice(&e);
        }
        let mut dec = Decoder::<600>::new(config.crc);
        let got: Vec<Vec<u8>> = decode_all(&mut dec, &stream).into_iter().map(Result::unwrap).collect();
        let want: Vec<Vec<u8>> = frames.iter().map(|f| if zeros { f.iter().map(|b| b & 0x03).collect() } else { f.clone() }).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_the_next_frame_arrives(
            noise in proptest::collection::vec(any::<u8>(), 0..400),
            frame in proptest::collection::vec(any::<u8>(), 1..32),
            crc in any::<bool>()) {
        let crc = if crc { Crc::X25 } else { Crc::None };
        let mut dec = Decoder::<32>::new(crc);
        for r in decode_all(&mut dec, &noise).into_iter().flatten() {
            prop_assert!(!r.is_empty() && r.len() <= 32);
        }
        // A restarted sender's first frame has a leading delimiter: it comes out intact.
        let mut sender = Sender::new(Config { crc, leading_delimiter: false });
        let e: Vec<u8> = sender.frame(&frame).unwrap().collect();
        let got = decode_all(&mut dec, &e);
        prop_assert_eq!(got.last().cloned(), Some(Ok(frame)));
    }
}
