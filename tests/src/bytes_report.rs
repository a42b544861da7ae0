//! The bytes report (`cargo xtask bytes`): the standard scenario
//! ([`demo::standard_scenario`]) run once against a real Synapse, every frame measured on the
//! simulated link; airtime computed from those frames at 100 bit/s and at LoRa SF12/125 kHz,
//! beside the HTTP bytes the gateway exchanged with Synapse in the same run (the gateway's
//! counter, the exact HTTPS bytes on TCP through a relay, and those bytes as IPv4 packets with
//! the kernel's segment count). Writes `bytes.md`, `bytes.json` and
//! `bytes.svg`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use trickle_core::link::lora::{Bandwidth, LoraParams, SpreadingFactor};
use trickle_sim::LinkConfig;

use crate::demo::{self, Options, Report, Row};

/// The LoRa setting of the report.
fn lora() -> LinkConfig {
    LinkConfig::lora(LoraParams::new(SpreadingFactor::Sf12, Bandwidth::Khz125))
}

fn lora_airtime(row: &Row) -> Result<Duration> {
    let l = lora();
    let mut t = Duration::ZERO;
    for n in &row.frame_lens {
        t += l
            .airtime(*n)
            .map_err(|e| anyhow::anyhow!("LoRa airtime of {n} bytes: {e}"))?;
    }
    Ok(t)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The report as Markdown.
pub fn markdown(report: &Report) -> Result<String> {
    let mut s = String::from(
        "| step | frames | bytes on air | airtime 100 bit/s | airtime LoRa SF12/125 | HTTP requests | HTTP bytes (gateway counter) | HTTPS bytes on TCP (exact) | TCP ÷ air | HTTPS as IPv4 packets | IP ÷ air |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let total = report.total();
    for r in report.rows.iter().chain(std::iter::once(&total)) {
        s.push_str(&format!(
            "| {} | {} | {} | {:.2} s | {:.2} s | {} | {} | {} | {:.1}× | {} | {:.1}× |\n",
            r.step,
            r.frames,
            r.air_bytes,
            r.airtime.as_secs_f64(),
            lora_airtime(r)?.as_secs_f64(),
            r.http_requests,
            r.http_bytes,
            r.tcp_bytes,
            ratio(r.tcp_bytes, r.air_bytes),
            r.ip_bytes,
            ratio(r.ip_bytes, r.air_bytes),
        ));
    }
    let first = report.rows.first().context("empty report")?;
    let steady: Vec<&Row> = report.rows.iter().skip(1).collect();
    let steady_air: u64 = steady.iter().map(|r| r.air_bytes).sum();
    let steady_tcp: u64 = steady.iter().map(|r| r.tcp_bytes).sum();
    let steady_ip: u64 = steady.iter().map(|r| r.ip_bytes).sum();
    let steady_counter: u64 = steady.iter().map(|r| r.http_bytes).sum();
    s.push_str(&format!(
        "\nWhole scenario: {} bytes on air against {} HTTPS bytes on TCP ({:.1}× fewer; {:.1}× \
         by the gateway's header-less, TLS-less counter, {} bytes).\n\
         As the IPv4 packets an HTTPS client would put on an IP radio such as GPRS (every \
         segment's IP and TCP header added, SYN, FIN and pure ACKs included, segments counted by \
         the kernel): {} bytes, {:.1}× fewer on air. Trickle's frames need no IP header on a \
         LoRa or serial link.\n\
         First contact + login alone is {} bytes on air ({:.0} % of the air total) for {} HTTPS \
         bytes. The baseline is conservative: loopback's 64 KiB MSS never splits a TLS record \
         that a real link's 1 460-byte MSS would, the 8 bytes of SYN options besides timestamps \
         are not counted, and the test certificates are smaller than a public CA's (no CT \
         timestamps or revocation URLs).\n\
         Everything after first contact: {} bytes on air against {} on TCP ({:.1}× fewer; \
         {:.1}× by the counter; {:.1}× as IP packets).\n",
        total.air_bytes,
        total.tcp_bytes,
        ratio(total.tcp_bytes, total.air_bytes),
        ratio(total.http_bytes, total.air_bytes),
        total.http_bytes,
        total.ip_bytes,
        ratio(total.ip_bytes, total.air_bytes),
        first.air_bytes,
        100.0 * ratio(first.air_bytes, total.air_bytes),
        first.tcp_bytes,
        steady_air,
        steady_tcp,
        ratio(steady_tcp, steady_air),
        ratio(steady_counter, steady_air),
        ratio(steady_ip, steady_air),
    ));
    Ok(s)
}

/// The report as JSON.
pub fn json(report: &Report) -> Result<serde_json::Value> {
    let mut rows = Vec::new();
    let total = report.total();
    for r in report.rows.iter().chain(std::iter::once(&total)) {
        rows.push(json!({
            "step": r.step,
            "frames": r.frames,
            "frame_lengths": r.frame_lens,
            "handshake_frames": r.handshake_frames,
            "air_bytes": r.air_bytes,
            "airtime_s_100bps": r.airtime.as_secs_f64(),
            "airtime_s_lora_sf12_bw125": lora_airtime(r)?.as_secs_f64(),
            "http_requests": r.http_requests,
            "http_bytes_counter": r.http_bytes,
            "http_bytes_tcp": r.tcp_bytes,
            "tcp_over_air": ratio(r.tcp_bytes, r.air_bytes),
            "https_bytes_as_ipv4_packets": r.ip_bytes,
            "ip_over_air": ratio(r.ip_bytes, r.air_bytes),
        }));
    }
    Ok(json!({
        "scenario": "first contact + login, join, register, send \"Hello?\" ×3 and one 60-character message, receive two replies, reboot, send once more",
        "rows": rows,
        "replies_received": report.replies,
    }))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A step label cut to fit the label column.
fn short(s: &str) -> String {
    if s.chars().count() <= 58 {
        s.to_owned()
    } else {
        s.chars().take(56).collect::<String>() + "…"
    }
}

/// A horizontal bar chart: per step, bytes on air beside HTTPS bytes on TCP (and, lighter, the
/// same as IPv4 packets).
pub fn svg(report: &Report) -> String {
    let label_w = 420.0;
    let bar_w = 520.0;
    let row_h = 34.0;
    let top = 50.0;
    let max = report
        .rows
        .iter()
        .map(|r| r.ip_bytes.max(r.tcp_bytes).max(r.air_bytes))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let height = top + row_h * report.rows.len() as f64 + 40.0;
    let width = label_w + bar_w + 90.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">Trickle standard scenario: \
         bytes on air vs HTTPS bytes on TCP (same run)</text>\n\
         <rect x=\"10\" y=\"30\" width=\"12\" height=\"10\" fill=\"#2a7ab9\"/>\
         <text x=\"26\" y=\"39\">bytes on air (Trickle)</text>\n\
         <rect x=\"190\" y=\"30\" width=\"12\" height=\"10\" fill=\"#d9822b\"/>\
         <text x=\"206\" y=\"39\">HTTPS+JSON bytes on TCP (gateway ↔ Synapse)</text>\n\
         <rect x=\"500\" y=\"30\" width=\"12\" height=\"10\" fill=\"#f2c69b\"/>\
         <text x=\"516\" y=\"39\">+ TCP/IPv4 headers</text>\n"
    );
    for (i, r) in report.rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let air = bar_w * r.air_bytes as f64 / max;
        let tcp = bar_w * r.tcp_bytes as f64 / max;
        let ip = bar_w * r.ip_bytes as f64 / max;
        s.push_str(&format!(
            "<text x=\"10\" y=\"{:.1}\">{}</text>\n\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{air:.1}\" height=\"12\" fill=\"#2a7ab9\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{ip:.1}\" height=\"12\" fill=\"#f2c69b\"/>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{tcp:.1}\" height=\"12\" fill=\"#d9822b\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{} / {}</text>\n",
            y + 18.0,
            esc(&short(&r.step)),
            y + 2.0,
            label_w + air + 4.0,
            y + 12.0,
            r.air_bytes,
            y + 15.0,
            y + 15.0,
            label_w + ip + 4.0,
            y + 25.0,
            r.tcp_bytes,
            r.ip_bytes,
        ));
    }
    let t = report.total();
    s.push_str(&format!(
        "<text x=\"10\" y=\"{:.1}\">total: {} bytes on air, {} HTTPS bytes on TCP ({:.1}× fewer on air), {} as IPv4 packets ({:.1}×)</text>\n</svg>\n",
        height - 12.0,
        t.air_bytes,
        t.tcp_bytes,
        ratio(t.tcp_bytes, t.air_bytes),
        t.ip_bytes,
        ratio(t.ip_bytes, t.air_bytes)
    ));
    s
}

/// Runs the standard scenario (fast mode, 100 bit/s, no loss) and writes `bytes.md`,
/// `bytes.json` and `bytes.svg` into `dir`; prints the frames and the Markdown to `out`.
pub fn run(dir: &Path, options: &Options, out: &mut dyn Write) -> Result<Report> {
    let options = Options {
        fast: true,
        bitrate: 100,
        loss: 0.0,
        lora: None,
        ..options.clone()
    };
    let report = demo::run_scenario(&options, &demo::standard_scenario(), out)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let md = markdown(&report)?;
    std::fs::write(dir.join("bytes.md"), &md)?;
    std::fs::write(
        dir.join("bytes.json"),
        serde_json::to_string_pretty(&json(&report)?)? + "\n",
    )?;
    std::fs::write(dir.join("bytes.svg"), svg(&report))?;
    writeln!(
        out,
        "\n# Bytes report\n\n{md}\nWritten: {}/bytes.md, bytes.json, bytes.svg",
        dir.display()
    )?;
    Ok(report)
}
