//! `trickle report noise`: bytes on air of every Noise pipe flow, measured from real frames.

use std::fmt::Write as _;

use anyhow::{Result, anyhow};
use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use trickle_core::noise::pipe::{BytesReport, handshake_report};

/// The request the report uses by default: CON POST, token `99`, `Uri-Path "r"`, payload
/// `Hello` (the example of docs/PROTOCOL.md, "Noise pipe framing", "Numbers").
pub const DEFAULT_REQUEST: &[u8] = &[
    0x41, 0x02, 0x00, 0x00, 0x99, 0xb1, b'r', 0xff, b'H', b'e', b'l', b'l', b'o',
];
/// The default response: an empty ACK.
pub const DEFAULT_RESPONSE: &[u8] = &[0x60, 0x00, 0x00, 0x00];

/// Runs a device and a gateway in memory (fresh keys from the OS RNG) and measures every flow.
pub fn noise(request: &[u8], response: &[u8]) -> Result<BytesReport> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow!("no OS randomness: {e}"))?;
    let mut rng = ChaCha20Rng::from_seed(seed);
    handshake_report(&mut rng, request, response)
        .map_err(|e| anyhow!("measuring the Noise pipe failed: {e}"))
}

/// Seconds on air at `bps` bits per second.
fn airtime(bytes: usize, bps: f64) -> f64 {
    bytes as f64 * 8.0 / bps
}

/// A table with bytes and airtime per flow; `plain` is the plain CoAP request + response size.
pub fn render(r: &BytesReport, plain: usize, bps: f64, json: bool) -> String {
    let [x1, x2, x3] = r.xx;
    let [i1, i2] = r.ik;
    let [f0, f1, f2] = r.fallback;
    let rows: [(&str, Vec<usize>); 5] = [
        ("XX first contact", vec![x1, x2, x3, r.xx_response]),
        ("IK reconnect (0-RTT)", vec![i1, i2]),
        ("IK -> XXfallback", vec![f0, f1, f2, r.fallback_response]),
        (
            "established request + response",
            vec![r.request, r.response],
        ),
        ("established empty ACK", vec![r.empty_ack]),
    ];
    let overhead = r.request + r.response - plain;
    if json {
        let flows: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, frames)| {
                let total: usize = frames.iter().sum();
                serde_json::json!({
                    "flow": name,
                    "frames": frames,
                    "bytes": total,
                    "seconds": airtime(total, bps),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "bitrate_bps": bps,
            "flows": flows,
            "per_message_overhead_bytes": overhead / 2,
        });
        return format!("{doc:#}\n");
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Noise pipe, bytes on air (CID + CoAP + Noise), airtime at {bps} bit/s"
    );
    let _ = writeln!(
        s,
        "{:<32} {:<24} {:>6} {:>9}",
        "flow", "frames", "bytes", "seconds"
    );
    for (name, frames) in &rows {
        let total: usize = frames.iter().sum();
        let list = frames
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" + ");
        let _ = writeln!(
            s,
            "{name:<32} {list:<24} {total:>6} {:>9.2}",
            airtime(total, bps)
        );
    }
    let _ = writeln!(
        s,
        "per-message overhead on an established session: {} bytes (CID 1 + tag 16)",
        overhead / 2
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_documented_numbers() {
        let r = noise(DEFAULT_REQUEST, DEFAULT_RESPONSE).unwrap();
        // docs/PROTOCOL.md, "Noise pipe framing", "Numbers": p = 9, empty ACK.
        assert_eq!(r.xx.iter().sum::<usize>() + r.xx_response, 240);
        assert_eq!(r.ik.iter().sum::<usize>(), 168);
        assert_eq!(r.fallback.iter().sum::<usize>() + r.fallback_response, 315);
        assert_eq!(r.request, 30);
        assert_eq!(r.empty_ack, 21);
        let text = render(
            &r,
            DEFAULT_REQUEST.len() + DEFAULT_RESPONSE.len(),
            100.0,
            false,
        );
        assert!(
            text.contains("per-message overhead on an established session: 17 bytes"),
            "{text}"
        );
        assert!(text.contains("37 + 102 + 80 + 21"), "{text}");
    }
}
