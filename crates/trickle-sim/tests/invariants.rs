//! Properties that hold for every configuration and traffic pattern.

use std::time::Duration;

use proptest::prelude::*;
use trickle_sim::{End, Link, LinkConfig, Mode, Reorder};

fn config() -> impl Strategy<Value = LinkConfig> {
    (
        (
            50u32..20_000,
            prop_oneof![Just(8u32), Just(10u32)],
            any::<bool>(),
        ),
        0u64..2_000,
        0.0f64..=1.0,
        0.0f64..=1.0,
        (0.0f64..=1.0, 0u64..5_000),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                (bitrate, bpb, packet),
                latency,
                loss,
                duplicate,
                (reorder, extra),
                half_duplex,
                seed,
            )| {
                LinkConfig {
                    mode: if packet {
                        Mode::Packet { bitrate }
                    } else {
                        Mode::Serial {
                            bitrate,
                            bits_per_byte: bpb,
                        }
                    },
                    latency: Duration::from_millis(latency),
                    loss,
                    duplicate,
                    reorder: Reorder {
                        probability: reorder,
                        max_extra_delay: Duration::from_millis(extra),
                    },
                    max_frame: 255,
                    half_duplex,
                    seed,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn deliveries_respect_the_model(
        cfg in config(),
        ends in 2usize..5,
        sends in prop::collection::vec((0u64..3_000, 0u8..4, 0usize..=255), 0..60),
    ) {
        let mut link = Link::new(cfg, ends).unwrap();
        let mut now = Duration::ZERO;
        let mut txs = Vec::new();
        let mut frames = Vec::new();
        let mut sent_by = vec![0u64; ends];
        for (gap, from, len) in sends {
            now += Duration::from_millis(gap);
            let from = End(from % ends as u8);
            let frame: Vec<u8> = (0..len).map(|i| (i as u8) ^ (txs.len() as u8)).collect();
            let tx = link.send(now, from, &frame).unwrap();
            prop_assert_eq!(tx.id as usize, txs.len());
            prop_assert_eq!(tx.airtime, cfg.airtime(len).unwrap());
            prop_assert!(tx.start >= tx.queued && tx.end == tx.start + tx.airtime);
            sent_by[from.0 as usize] += 1;
            txs.push(tx);
            frames.push(frame);
        }
        let mut last = Duration::ZERO;
        while let Some(t) = link.next_event() {
            prop_assert!(t >= last);
            while let Some(d) = link.poll(t) {
                let tx = txs[d.id as usize];
                prop_assert_eq!(d.from, tx.from);
                prop_assert_ne!(d.to, d.from);
                prop_assert_eq!(&d.frame, &frames[d.id as usize]);
                let earliest = tx.end + cfg.latency;
                prop_assert!(d.at >= earliest);
                prop_assert!(d.at <= earliest + cfg.reorder.max_extra_delay);
                prop_assert!(d.at >= last);
                if cfg.half_duplex {
                    // The receiver was not transmitting while this frame reached it.
                    for own in txs.iter().filter(|o| o.from == d.to) {
                        prop_assert!(own.end <= tx.start || own.start >= earliest);
                    }
                }
                last = d.at;
            }
        }
        for (from, &sent) in sent_by.iter().enumerate() {
            for to in 0..ends {
                let s = link.direction_stats(End(from as u8), End(to as u8));
                let offered = if from == to { 0 } else { sent };
                prop_assert_eq!(s.frames, offered);
                prop_assert_eq!(s.delivered, s.frames - s.lost + s.duplicated);
                prop_assert!(s.out_of_order <= s.delivered);
            }
        }
    }
}
