//! Behaviour of the simulated link on the virtual clock.

use std::time::Duration;

use trickle_core::link::lora::{Bandwidth, LoraParams, SpreadingFactor};
use trickle_sim::{ConfigError, Delivery, End, Link, LinkConfig, Mode, Reorder, SendError};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Steps the link to the end, returning every delivery in order.
fn drain(link: &mut Link) -> Vec<Delivery> {
    let mut out = Vec::new();
    while let Some(t) = link.next_event() {
        while let Some(d) = link.poll(t) {
            out.push(d);
        }
    }
    out
}

#[test]
fn frame_at_100_bps_arrives_after_airtime_plus_latency() {
    let cfg = LinkConfig {
        latency: ms(500),
        ..LinkConfig::default()
    };
    let mut link = Link::pair(cfg).unwrap();
    let tx = link.send(ms(1000), End::A, &[7u8; 32]).unwrap();
    assert_eq!(
        (tx.start, tx.end, tx.airtime),
        (ms(1000), ms(3560), ms(2560))
    );
    assert_eq!(link.next_event(), Some(ms(4060)));
    assert_eq!(link.poll(ms(4059)), None);
    let d = link.poll(ms(4060)).unwrap();
    assert_eq!(d.at, ms(4060));
    assert_eq!(
        (d.from, d.to, d.id, d.duplicate),
        (End::A, End::B, 0, false)
    );
    assert_eq!(d.frame, vec![7u8; 32]);
    assert_eq!(link.poll(ms(10_000)), None);
    assert_eq!(link.next_event(), None);
}

#[test]
fn uart_8n1_costs_ten_bits_per_byte() {
    let cfg = LinkConfig {
        mode: Mode::Serial {
            bitrate: 100,
            bits_per_byte: 10,
        },
        ..LinkConfig::default()
    };
    let mut link = Link::pair(cfg).unwrap();
    assert_eq!(
        link.send(ms(0), End::B, &[0; 32]).unwrap().airtime,
        ms(3200)
    );
    let packet = LinkConfig {
        mode: Mode::Packet { bitrate: 9600 },
        latency: ms(800),
        ..LinkConfig::default()
    };
    let mut link = Link::pair(packet).unwrap();
    // 120 bytes = 960 bits at 9600 bit/s = 100 ms, plus 800 ms latency.
    link.send(ms(0), End::A, &[0; 120]).unwrap();
    assert_eq!(link.next_event(), Some(ms(900)));
}

#[test]
fn lora_mode_uses_the_core_time_on_air() {
    let p = LoraParams::new(SpreadingFactor::Sf7, Bandwidth::Khz125);
    let mut link = Link::pair(LinkConfig::lora(p)).unwrap();
    let tx = link.send(ms(0), End::A, &[0; 32]).unwrap();
    assert_eq!(tx.airtime, Duration::from_micros(71_936));
    assert_eq!(tx.airtime.as_micros() as u64, p.time_on_air_us(32).unwrap());
    let p12 = LoraParams::new(SpreadingFactor::Sf12, Bandwidth::Khz125);
    let mut link = Link::pair(LinkConfig::lora(p12)).unwrap();
    let tx = link.send(ms(0), End::A, &[0; 10]).unwrap();
    assert_eq!(tx.airtime, Duration::from_micros(991_232));
}

#[test]
fn oversize_frames_are_refused_without_side_effects() {
    let p = LoraParams::new(SpreadingFactor::Sf9, Bandwidth::Khz125);
    let mut link = Link::pair(LinkConfig::lora(p)).unwrap();
    assert_eq!(
        link.send(ms(0), End::A, &[0; 256]),
        Err(SendError::FrameTooLarge { len: 256, max: 255 })
    );
    assert!(link.send(ms(0), End::A, &[0; 255]).is_ok());

    let lossy = LinkConfig {
        max_frame: 40,
        loss: 0.5,
        seed: 9,
        ..LinkConfig::default()
    };
    let mut a = Link::pair(lossy).unwrap();
    let mut b = Link::pair(lossy).unwrap();
    assert_eq!(
        a.send(ms(0), End::A, &[0; 41]),
        Err(SendError::FrameTooLarge { len: 41, max: 40 })
    );
    assert_eq!(a.sender_stats(End::A).frames, 0);
    for i in 0..50u64 {
        a.send(ms(i * 1000), End::A, &[1; 40]).unwrap();
        b.send(ms(i * 1000), End::A, &[1; 40]).unwrap();
    }
    // The refused frame drew no random numbers: both links took identical decisions.
    assert_eq!(drain(&mut a), drain(&mut b));
    assert_eq!(
        a.send(ms(0), End(2), &[]),
        Err(SendError::UnknownEnd(End(2)))
    );
    assert!(matches!(
        a.send(ms(1), End::A, &[]),
        Err(SendError::ClockWentBackwards { .. })
    ));
}

#[test]
fn invalid_configs_are_rejected() {
    let bad = |cfg: LinkConfig| Link::pair(cfg).unwrap_err();
    assert_eq!(
        bad(LinkConfig {
            loss: 1.5,
            ..LinkConfig::default()
        }),
        ConfigError::InvalidProbability { name: "loss" }
    );
    assert_eq!(
        bad(LinkConfig {
            duplicate: f64::NAN,
            ..LinkConfig::default()
        }),
        ConfigError::InvalidProbability { name: "duplicate" }
    );
    assert_eq!(
        bad(LinkConfig {
            mode: Mode::Packet { bitrate: 0 },
            ..LinkConfig::default()
        }),
        ConfigError::ZeroBitrate
    );
    let mut lora = LinkConfig::lora(LoraParams::new(SpreadingFactor::Sf7, Bandwidth::Khz125));
    lora.max_frame = 256;
    assert_eq!(
        bad(lora),
        ConfigError::MaxFrameTooLarge {
            max_frame: 256,
            limit: 255
        }
    );
    assert_eq!(
        Link::new(LinkConfig::default(), 1).unwrap_err(),
        ConfigError::EndCount { ends: 1 }
    );
}

#[test]
fn full_duplex_ends_transmit_at_once_but_each_sends_one_frame_at_a_time() {
    let mut link = Link::pair(LinkConfig::default()).unwrap();
    let a1 = link.send(ms(0), End::A, &[0; 10]).unwrap(); // 800 ms
    let b1 = link.send(ms(100), End::B, &[0; 10]).unwrap();
    let a2 = link.send(ms(200), End::A, &[0; 5]).unwrap(); // waits for a1
    assert_eq!((a1.start, a1.end), (ms(0), ms(800)));
    assert_eq!((b1.start, b1.end), (ms(100), ms(900)));
    assert_eq!((a2.start, a2.end), (ms(800), ms(1200)));
    assert_eq!(link.sender_stats(End::A).waiting, ms(600));
    let at: Vec<_> = drain(&mut link).iter().map(|d| (d.to, d.at)).collect();
    assert_eq!(
        at,
        [(End::B, ms(800)), (End::A, ms(900)), (End::B, ms(1200))]
    );
}

#[test]
fn half_duplex_queues_behind_the_busy_channel() {
    let cfg = LinkConfig {
        half_duplex: true,
        latency: ms(50),
        ..LinkConfig::default()
    };
    let mut link = Link::pair(cfg).unwrap();
    let a1 = link.send(ms(0), End::A, &[0; 10]).unwrap(); // on air 0..800, arrives 850
    let b1 = link.send(ms(100), End::B, &[0; 10]).unwrap(); // waits for the channel
    let a2 = link.send(ms(100), End::A, &[0; 1]).unwrap();
    assert_eq!((a1.start, a1.end), (ms(0), ms(800)));
    assert_eq!((b1.start, b1.end), (ms(850), ms(1650)));
    assert_eq!((a2.start, a2.end), (ms(1700), ms(1780)));
    assert_eq!(link.free_at(End::B), ms(1830));
    let at: Vec<_> = drain(&mut link).iter().map(|d| (d.to, d.at)).collect();
    assert_eq!(
        at,
        [(End::B, ms(850)), (End::A, ms(1700)), (End::B, ms(1830))]
    );
    assert_eq!(link.sender_stats(End::B).waiting, ms(750));
}

/// Random traffic, half duplex: no end ever receives while it transmits.
#[test]
fn half_duplex_never_receives_while_transmitting() {
    let cfg = LinkConfig {
        half_duplex: true,
        latency: ms(20),
        loss: 0.2,
        duplicate: 0.1,
        seed: 5,
        ..LinkConfig::default()
    };
    let mut link = Link::new(cfg, 3).unwrap();
    let mut rng = trickle_sim::Rng::new(77);
    let mut txs = Vec::new();
    let mut now = Duration::ZERO;
    for _ in 0..300 {
        now += Duration::from_millis(rng.below(2000));
        let from = End(rng.below(3) as u8);
        let len = rng.below(40) as usize;
        txs.push(link.send(now, from, &vec![0; len]).unwrap());
    }
    let deliveries = drain(&mut link);
    assert!(deliveries.len() > 500);
    for d in &deliveries {
        let frame = txs[d.id as usize];
        // The frame was being received by d.to from frame.start to d.at.
        for tx in txs.iter().filter(|t| t.from == d.to) {
            assert!(
                tx.end <= frame.start || tx.start >= d.at,
                "{d:?} overlaps {tx:?}"
            );
        }
    }
    // And the channel carried one frame at a time.
    let mut sorted = txs.clone();
    sorted.sort_by_key(|t| t.start);
    for w in sorted.windows(2) {
        assert!(w[0].end + ms(20) <= w[1].start);
    }
}

#[test]
fn broadcast_reaches_every_other_end() {
    let mut link = Link::new(LinkConfig::default(), 3).unwrap();
    link.send(ms(0), End(2), b"beacon").unwrap();
    let got: Vec<_> = drain(&mut link).iter().map(|d| (d.from, d.to)).collect();
    assert_eq!(got, [(End(2), End::A), (End(2), End::B)]);
    assert_eq!(link.direction_stats(End(2), End::A).delivered, 1);
    assert_eq!(link.direction_stats(End(2), End::B).bytes_delivered, 6);
    assert_eq!(End(2).to_string(), "C");
}

fn lossy_trace(seed: u64) -> Vec<(End, u64, Duration, bool)> {
    let cfg = LinkConfig {
        latency: ms(100),
        loss: 0.3,
        duplicate: 0.1,
        reorder: Reorder {
            probability: 0.2,
            max_extra_delay: ms(3000),
        },
        seed,
        ..LinkConfig::default()
    };
    let mut link = Link::pair(cfg).unwrap();
    for i in 0..200u64 {
        let from = if i % 3 == 0 { End::B } else { End::A };
        link.send(ms(i * 900), from, &i.to_be_bytes()).unwrap();
    }
    drain(&mut link)
        .into_iter()
        .map(|d| (d.to, d.id, d.at, d.duplicate))
        .collect()
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let a = lossy_trace(1);
    assert_eq!(a, lossy_trace(1));
    assert_ne!(a, lossy_trace(2));
    assert!(a.len() > 100);
}

#[test]
fn loss_duplication_and_reordering_rates_over_10000_frames() {
    let cfg = LinkConfig {
        latency: ms(100),
        loss: 0.3,
        duplicate: 0.1,
        reorder: Reorder {
            probability: 0.2,
            max_extra_delay: ms(5000),
        },
        seed: 2026,
        ..LinkConfig::default()
    };
    let mut link = Link::pair(cfg).unwrap();
    for i in 0..10_000u64 {
        // 8 bytes = 640 ms of airtime, one frame a second.
        link.send(ms(i * 1000), End::A, &i.to_be_bytes()).unwrap();
    }
    let deliveries = drain(&mut link);
    let s = link.direction_stats(End::A, End::B);
    assert_eq!(s.frames, 10_000);
    assert_eq!(s.delivered as usize, deliveries.len());
    assert_eq!(s.delivered, s.frames - s.lost + s.duplicated);
    assert_eq!(s.bytes_delivered, 8 * s.delivered);
    // Every copy that arrived is intact and carries its own sequence number.
    for d in &deliveries {
        assert_eq!(d.frame, d.id.to_be_bytes());
    }
    // Loose bounds, each more than six standard deviations wide.
    assert!((2700..=3300).contains(&s.lost), "{s:?}");
    assert!((550..=850).contains(&s.duplicated), "{s:?}");
    let copies = s.frames - s.lost + s.duplicated;
    assert!(
        (copies * 17 / 100..=copies * 23 / 100).contains(&s.delayed),
        "{s:?}"
    );
    assert!(s.out_of_order > 0 && s.out_of_order <= s.delayed, "{s:?}");
    // Exact for this seed (the simulator is deterministic).
    assert_eq!(
        (s.lost, s.duplicated, s.delayed, s.out_of_order),
        (2963, 708, 1546, 1018),
        "{s:?}"
    );
    let tx = link.sender_stats(End::A);
    assert_eq!((tx.frames, tx.bytes), (10_000, 80_000));
    assert_eq!(tx.airtime, ms(6_400_000));
    assert_eq!(link.direction_stats(End::B, End::A).frames, 0);
}
