//! `cargo xtask demo --fast` as a test: the whole demo (real Synapse, gateway, device over the
//! simulated 100 bit/s link) in fast mode, with its table checked against the frames.

use trickle_tests::demo::{self, Options};

#[test]
fn demo_runs_in_fast_mode_and_reports_every_step() {
    let options = Options {
        fast: true,
        ..Options::default()
    };
    let mut out = Vec::new();
    let report = demo::run(&options, &mut out).expect("the demo must run");
    let text = String::from_utf8(out).unwrap();
    assert_eq!(report.replies, ["Loud and clear!"]);
    assert_eq!(report.rows.len(), 6, "{text}");
    let [login, join, observe, send, receive, resend] = &report.rows[..] else {
        unreachable!()
    };
    // First contact: XX 1, XX 2, XX 3 carrying the login, the response.
    assert_eq!((login.frames, login.handshake_frames), (4, 3), "{text}");
    assert_eq!(login.http_requests, 1, "one POST /login");
    assert_eq!((join.frames, join.handshake_frames), (2, 0));
    assert_eq!((observe.frames, observe.handshake_frames), (2, 0));
    // "Hello?" in a known room: 1 + 4 + 2 + 1 + 9 + 16 = 33 bytes, its ACK 21, at 100 bit/s.
    for s in [send, resend] {
        assert_eq!((s.frames, s.air_bytes, s.handshake_frames), (2, 33 + 21, 0));
        assert_eq!(s.airtime.as_millis(), (33 + 21) * 80);
        // The PUT, and the /sync long poll woken by the device's own message.
        assert!((1..=2).contains(&s.http_requests), "{text}");
        assert!(s.http_bytes > 5 * s.air_bytes, "{text}");
        // The PUT finished inside the step; the exact TCP count includes every header.
        assert!(s.tcp_bytes > s.http_bytes, "{text}");
        // As IPv4 packets: at least a request and a response segment, 40 bytes of headers each.
        assert!(s.ip_bytes >= s.tcp_bytes + 2 * 40, "{text}");
    }
    // The notification (introducing @bob) and the device's 21-byte empty ACK.
    assert_eq!(receive.frames, 2);
    assert!(
        receive.http_requests >= 1,
        "the /sync poll that brought the reply"
    );
    assert!(observe.http_requests >= 1, "the initial /sync");
    for row in &report.rows {
        let line = format!("| {} | {} | {} |", row.step, row.frames, row.air_bytes);
        assert!(text.contains(&line), "table row missing: {line}\n{text}");
    }
    assert!(text.contains("empty ACK") && text.contains("handshake XX 3"));
    assert!(report.total().tcp_bytes > report.total().http_bytes);
    assert!(report.total().ip_bytes > report.total().tcp_bytes);
    // The bytes report's renderings of the same measurements.
    let md = trickle_tests::bytes_report::markdown(&report).unwrap();
    assert!(md.contains(&format!("| total | 14 | {} |", report.total().air_bytes)));
    let json = trickle_tests::bytes_report::json(&report).unwrap();
    assert_eq!(
        json["rows"].as_array().unwrap().len(),
        7,
        "6 steps and the total"
    );
    assert_eq!(
        json["rows"][3]["frame_lengths"],
        serde_json::json!([33, 21])
    );
    let svg = trickle_tests::bytes_report::svg(&report);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        report.total().air_bytes,
        report.rows.iter().map(|r| r.air_bytes).sum::<u64>()
    );
}

#[test]
fn demo_flags_are_checked() {
    let parse = |a: &[&str]| Options::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let o = parse(&[
        "--fast",
        "--bitrate",
        "300",
        "--loss",
        "0.1",
        "--lora",
        "12/125",
    ])
    .unwrap();
    assert!(o.fast);
    assert_eq!((o.bitrate, o.loss, o.lora), (300, 0.1, Some((12, 125))));
    for bad in [
        &["--bitrate", "0"][..],
        &["--loss", "2"],
        &["--lora", "13/125"],
        &["--lora", "12/123"],
        &["--lora", "12"],
        &["--bogus"],
        &["--bitrate"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} must be refused");
    }
}
