//! The simulator driving two sans-I/O endpoints on the virtual clock until idle: a toy
//! stop-and-wait ARQ (not Trickle's protocol) moves 200 messages over a 100 bit/s half-duplex
//! link with 30 % loss, duplication and reordering. It shows the stepping loop tests will use.

use std::time::Duration;

use trickle_sim::{End, Link, LinkConfig, Reorder};

const MESSAGES: u16 = 200;

fn config(seed: u64) -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(100),
        loss: 0.3,
        duplicate: 0.1,
        reorder: Reorder {
            probability: 0.2,
            max_extra_delay: Duration::from_secs(2),
        },
        half_duplex: true,
        seed,
        ..LinkConfig::default()
    }
}

/// Runs the exchange; returns (messages in the order the receiver accepted them, virtual time at
/// the end, data frames sent).
fn run(seed: u64) -> (Vec<u16>, Duration, u64) {
    let cfg = config(seed);
    let mut link = Link::pair(cfg).unwrap();
    // Data: 2-byte sequence number + 30 bytes = 32 bytes (2.56 s); ACK: 2 bytes (160 ms).
    // Retransmit after the worst case of a round trip: both airtimes, both latencies, the
    // largest reordering delay, and a margin.
    let timeout = Duration::from_millis(2560 + 160 + 2 * 100 + 2000 + 100);
    let data = |seq: u16| {
        let mut f = vec![seq as u8; 32];
        f[..2].copy_from_slice(&seq.to_be_bytes());
        f
    };
    let mut now = Duration::ZERO;
    let mut current = 0u16;
    let mut expected = 0u16;
    let mut accepted = Vec::new();
    let tx = link.send(now, End::A, &data(current)).unwrap();
    let mut timer = tx.end + timeout;
    while current < MESSAGES {
        now = link.next_event().map_or(timer, |e| e.min(timer));
        while let Some(d) = link.poll(now) {
            let seq = u16::from_be_bytes([d.frame[0], d.frame[1]]);
            match d.to {
                End::B => {
                    assert_eq!(d.frame, data(seq), "frames arrive intact");
                    if seq == expected {
                        accepted.push(seq);
                        expected += 1;
                    }
                    if seq < expected {
                        link.send(now, End::B, &seq.to_be_bytes()).unwrap();
                    }
                }
                _ if seq == current => {
                    current += 1;
                    if current < MESSAGES {
                        let tx = link.send(now, End::A, &data(current)).unwrap();
                        timer = tx.end + timeout;
                    }
                }
                _ => {} // a stale or duplicated ACK
            }
        }
        if current < MESSAGES && now >= timer {
            let tx = link.send(now, End::A, &data(current)).unwrap();
            timer = tx.end + timeout;
        }
    }
    (accepted, now, link.sender_stats(End::A).frames)
}

#[test]
fn two_hundred_messages_through_a_lossy_half_duplex_link() {
    let (accepted, elapsed, sent) = run(42);
    assert_eq!(accepted, (0..MESSAGES).collect::<Vec<_>>());
    // Each message needs at least one 2.56 s frame; loss forces retransmissions.
    assert!(sent > u64::from(MESSAGES) && elapsed > Duration::from_millis(2560 * 200));
    // Deterministic: the exact figures for this seed.
    assert_eq!((sent, elapsed), (432, Duration::from_micros(2_432_705_021)));
    assert_eq!(run(42), (accepted, elapsed, sent));
}
