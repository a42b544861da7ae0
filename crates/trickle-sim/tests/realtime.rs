//! The wall-clock driver, run against a test clock (no real sleeping).

use std::time::Duration;

use trickle_sim::realtime::{Clock, Progress, RealTime, Speed};
use trickle_sim::{End, Link, LinkConfig};

/// A clock that advances only when slept on, recording every sleep.
#[derive(Debug, Default)]
struct TestClock {
    elapsed: Duration,
    sleeps: Vec<Duration>,
}

impl Clock for TestClock {
    fn elapsed(&self) -> Duration {
        self.elapsed
    }
    fn sleep(&mut self, d: Duration) {
        self.elapsed += d;
        self.sleeps.push(d);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn run(speed: Speed) -> (RealTime<TestClock>, Vec<Progress>, trickle_sim::Delivery) {
    let link = Link::pair(LinkConfig::default()).unwrap();
    let mut rt = RealTime::new(link, TestClock::default(), speed).with_tick(ms(50));
    let tx = rt.send(End::A, &[0; 32]).unwrap();
    assert_eq!(tx.airtime, ms(2560));
    let mut reports = Vec::new();
    let d = rt.recv(|p| reports.push(*p)).unwrap();
    (rt, reports, d)
}

fn check_progress(reports: &[Progress]) {
    assert!(reports.windows(2).all(|w| w[0].fraction <= w[1].fraction));
    assert!(reports.windows(2).all(|w| w[0].now <= w[1].now));
    assert_eq!(reports.first().unwrap().fraction, 0.0);
    assert_eq!(reports.last().unwrap().fraction, 1.0);
    assert_eq!(reports.iter().filter(|p| p.fraction == 1.0).count(), 1);
}

#[test]
fn real_time_reports_progress_every_tick() {
    let (rt, reports, d) = run(Speed::Factor(1.0));
    assert_eq!(d.at, ms(2560));
    check_progress(&reports);
    // 2.56 s in 50 ms ticks: 52 reports (0 ms, 50 ms … 2550 ms, then completion).
    assert!((52..=54).contains(&reports.len()), "{}", reports.len());
    let now = rt.now();
    assert!(now >= ms(2560) && now < ms(2561), "{now:?}");
    assert!(rt.clock().sleeps.iter().all(|s| *s <= ms(50)));
    assert!(d.at <= rt.now());
}

#[test]
fn speed_factor_scales_real_waiting() {
    let (rt, reports, d) = run(Speed::Factor(10.0));
    assert_eq!(d.at, ms(2560));
    check_progress(&reports);
    // 256 ms of real time in 50 ms ticks.
    assert!((6..=8).contains(&reports.len()), "{}", reports.len());
    assert!(
        rt.now() >= ms(2560) && rt.now() < ms(2561),
        "{:?}",
        rt.now()
    );
}

#[test]
fn fast_mode_never_sleeps() {
    let (rt, reports, d) = run(Speed::Fast);
    assert_eq!(d.at, ms(2560));
    assert_eq!(rt.now(), ms(2560));
    assert!(rt.clock().sleeps.is_empty());
    check_progress(&reports);
    assert_eq!(reports.len(), 2);
    // A non-positive, NaN or absurd factor means fast too.
    for f in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
        let (rt, _, d) = run(Speed::Factor(f));
        assert_eq!(d.at, ms(2560));
        assert!(rt.clock().sleeps.is_empty());
    }
}

#[test]
fn very_fast_factor_still_terminates() {
    // 1e9: one real nanosecond is a virtual second; the loop must not spin on zero sleeps.
    let (rt, reports, d) = run(Speed::Factor(1e9));
    assert_eq!(d.at, ms(2560));
    check_progress(&reports);
    assert!(rt.clock().sleeps.len() <= 4, "{:?}", rt.clock().sleeps);
}

#[test]
fn deadline_returns_without_a_delivery() {
    let link = Link::pair(LinkConfig::default()).unwrap();
    let mut rt = RealTime::new(link, TestClock::default(), Speed::Fast);
    rt.send(End::A, &[0; 32]).unwrap();
    assert!(rt.recv_until(Some(ms(1000)), |_| {}).is_none());
    assert_eq!(rt.now(), ms(1000));
    // The reply goes out at 1 s, behind nothing (full duplex).
    let reply = rt.send(End::B, &[0; 1]).unwrap();
    assert_eq!((reply.start, reply.end), (ms(1000), ms(1080)));
    let first = rt.recv(|_| {}).unwrap();
    assert_eq!((first.to, first.at), (End::A, ms(1080)));
    let second = rt.recv(|_| {}).unwrap();
    assert_eq!((second.to, second.at), (End::B, ms(2560)));
    assert!(rt.recv(|_| {}).is_none());
    assert_eq!(rt.link().sender_stats(End::A).frames, 1);
}

#[test]
fn queued_frames_report_progress_only_once_on_air() {
    let cfg = LinkConfig {
        half_duplex: true,
        ..LinkConfig::default()
    };
    let link = Link::pair(cfg).unwrap();
    let mut rt = RealTime::new(link, TestClock::default(), Speed::Factor(1.0)).with_tick(ms(100));
    rt.send(End::A, &[0; 5]).unwrap(); // 0..400 ms
    let queued = rt.send(End::B, &[0; 5]).unwrap(); // 400..800 ms
    assert_eq!(queued.start, ms(400));
    let mut reports = Vec::new();
    while rt.recv(|p| reports.push(*p)).is_some() {}
    let second: Vec<_> = reports.iter().filter(|p| p.tx.id == queued.id).collect();
    assert!(second.iter().all(|p| p.now >= ms(400)));
    assert_eq!(second.first().unwrap().fraction, 0.0);
    assert_eq!(second.last().unwrap().fraction, 1.0);
}
