//! The demo behind `cargo xtask demo`: a device (the core's [`Client`], what firmware runs)
//! talks to a real Synapse through the gateway's session layer ([`SessionGateway`]) over a
//! simulated slow link ([`trickle_sim`], on the wall clock or in fast mode).
//!
//! Scenario: first contact (XX handshake carrying the password login), join `#lobby`, register
//! for events, send "Hello?", receive Bob's reply (Bob talks plain HTTP+JSON to Synapse), reboot
//! the device keeping only its storage, send again (no handshake: the session was persisted).
//! Every frame is shown as it crosses the link, with a bar that fills as its airtime elapses;
//! the run ends with a table of bytes on air, airtime and the HTTP+JSON bytes the gateway
//! exchanged with Synapse for each step (from the gateway's counters, [`SessionGateway::bytes`]).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use serde_json::json;
use trickle_core::client::{self, Client, ClientConfig, LinkConfig as DeviceLink, Peer};
use trickle_core::link::lora::{Bandwidth, LoraParams, MAX_PAYLOAD, SpreadingFactor};
use trickle_core::noise::storage::RamStorage;
use trickle_gateway::{HomeserverClient, OpBytes, SessionConfig, SessionGateway};
use trickle_sim::realtime::{Progress, RealTime, Speed, SystemClock};
use trickle_sim::{End, FrameId, Link, LinkConfig, Mode};

use crate::seen::Seen;
use crate::synapse::Synapse;
use crate::tap::ByteTap;

type Device = Client<RamStorage, ChaCha20Rng>;

const ALICE_PW: &str = "alice-demo-password";
const BOB_PW: &str = "bob-demo-password";

/// Demo settings (the flags of `cargo xtask demo`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Link bit rate in bit/s (serial radio modem, 8 bits per byte); ignored with `lora`.
    pub bitrate: u32,
    /// Frame loss probability in `[0, 1]`.
    pub loss: f64,
    /// LoRa spreading factor and bandwidth in kHz: the core's exact time on air.
    pub lora: Option<(u8, u32)>,
    /// No real-time waiting (virtual time jumps to the next event).
    pub fast: bool,
    /// Seed of the link's random choices (loss).
    pub seed: u64,
    /// Draw live progress bars (a terminal); otherwise one line per finished frame.
    pub live: bool,
    /// Set (e.g. by a ctrl-c handler) to stop the demo; everything is cleaned up.
    pub interrupted: Arc<AtomicBool>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bitrate: 100,
            loss: 0.0,
            lora: None,
            fast: false,
            seed: 1,
            live: false,
            interrupted: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The usage text of the flags.
pub const USAGE: &str = "flags:\n  \
    --bitrate BPS   link bit rate (default 100)\n  \
    --loss P        frame loss probability 0..1 (default 0)\n  \
    --lora SF/BW    LoRa mode, e.g. 12/125 (spreading factor / bandwidth in kHz)\n  \
    --seed N        seed of the link's random choices (default 1)\n  \
    --fast          no real-time waiting";

impl Options {
    /// Parses the flags (see [`USAGE`]).
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value\n{USAGE}"))
            };
            match a.as_str() {
                "--fast" => o.fast = true,
                "--bitrate" => {
                    o.bitrate = value("--bitrate")?
                        .parse()
                        .context("--bitrate: a positive integer")?;
                    if o.bitrate == 0 {
                        bail!("--bitrate must be at least 1");
                    }
                }
                "--loss" => {
                    o.loss = value("--loss")?
                        .parse()
                        .context("--loss: a number in [0, 1]")?;
                    if !(0.0..=1.0).contains(&o.loss) {
                        bail!("--loss must be within [0, 1]");
                    }
                }
                "--seed" => o.seed = value("--seed")?.parse().context("--seed: an integer")?,
                "--lora" => {
                    let v = value("--lora")?;
                    let (sf, bw) = v.split_once('/').context("--lora SF/BW, e.g. 12/125")?;
                    let sf: u8 = sf.parse().context("--lora: spreading factor 5..12")?;
                    let bw: u32 = bw.parse().context("--lora: bandwidth in kHz")?;
                    lora_params(sf, bw)?;
                    o.lora = Some((sf, bw));
                }
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown flag `{other}`\n{USAGE}"),
            }
        }
        Ok(o)
    }

    fn link(&self) -> Result<LinkConfig> {
        let mut c = match self.lora {
            Some((sf, bw)) => LinkConfig::lora(lora_params(sf, bw)?),
            None => LinkConfig {
                mode: Mode::Serial {
                    bitrate: self.bitrate,
                    bits_per_byte: 8,
                },
                ..LinkConfig::default()
            },
        };
        c.loss = self.loss;
        c.seed = self.seed;
        c.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(c)
    }

    fn describe(&self) -> String {
        let loss = if self.loss > 0.0 {
            format!(", {:.0} % frame loss", self.loss * 100.0)
        } else {
            String::new()
        };
        match self.lora {
            Some((sf, bw)) => format!("LoRa SF{sf}/{bw} kHz, CR 4/5, half duplex{loss}"),
            None => format!("{} bit/s{loss}", self.bitrate),
        }
    }
}

fn lora_params(sf: u8, bw_khz: u32) -> Result<LoraParams> {
    let sf = SpreadingFactor::from_u8(sf).context("LoRa spreading factor must be 5..12")?;
    let bw = Bandwidth::from_hz(bw_khz.saturating_mul(1000))
        .context("LoRa bandwidth (kHz) must be one of 7.8 … 500, e.g. 125, 250, 500")?;
    let p = LoraParams::new(sf, bw);
    p.validate().map_err(|e| anyhow::anyhow!("LoRa: {e}"))?;
    Ok(p)
}

/// One step of the scenario, as it appears in the final table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What the step did.
    pub step: String,
    /// Frames put on the air (both directions, retransmissions included).
    pub frames: u64,
    /// Their bytes.
    pub air_bytes: u64,
    /// Their airtime on the chosen link.
    pub airtime: Duration,
    /// Handshake frames among them.
    pub handshake_frames: u64,
    /// The length of each of those frames, in order.
    pub frame_lens: Vec<usize>,
    /// HTTP requests the gateway completed with Synapse for the step (`/sync` long polls
    /// count under the step whose event woke them).
    pub http_requests: u64,
    /// HTTP+JSON bytes of those requests and responses (the gateway's counter: request line,
    /// `Authorization`, `Content-Type`, bodies, status lines).
    pub http_bytes: u64,
    /// Exact bytes that crossed TCP between gateway and Synapse's HTTPS listener for the step
    /// (TLS handshakes and records, all HTTP headers; counted by a relay).
    pub tcp_bytes: u64,
    /// The same traffic as the IPv4 packets that carried it: `tcp_bytes` plus the IP and TCP
    /// headers of every segment (SYN, FIN and pure ACKs included), segments counted by the
    /// kernel on the gateway's side of the relay ([`ByteTap::take`]). What the HTTPS client
    /// would put on an IP radio link such as GPRS.
    pub ip_bytes: u64,
}

/// What the demo measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One row per step.
    pub rows: Vec<Row>,
    /// The messages Bob's replies delivered to the device, in order.
    pub replies: Vec<String>,
    /// Link description.
    pub link: String,
}

impl Report {
    /// The sum of all rows.
    pub fn total(&self) -> Row {
        let mut t = Row {
            step: "total".into(),
            frames: 0,
            air_bytes: 0,
            airtime: Duration::ZERO,
            handshake_frames: 0,
            frame_lens: Vec::new(),
            http_requests: 0,
            http_bytes: 0,
            tcp_bytes: 0,
            ip_bytes: 0,
        };
        for r in &self.rows {
            t.frame_lens.extend_from_slice(&r.frame_lens);
            t.frames += r.frames;
            t.air_bytes += r.air_bytes;
            t.airtime += r.airtime;
            t.handshake_frames += r.handshake_frames;
            t.http_requests += r.http_requests;
            t.http_bytes += r.http_bytes;
            t.tcp_bytes += r.tcp_bytes;
            t.ip_bytes += r.ip_bytes;
        }
        t
    }

    /// The table as Markdown.
    pub fn table(&self) -> String {
        let mut s = format!(
            "| step | frames | bytes on air | airtime ({}) | HTTP requests | HTTP bytes (counter) | HTTPS bytes on TCP | TCP ÷ air | as IP packets | IP ÷ air |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            self.link
        );
        let total = self.total();
        for r in self.rows.iter().chain(std::iter::once(&total)) {
            let ratio = |baseline: u64| {
                if r.air_bytes > 0 {
                    format!("{:.1}×", baseline as f64 / r.air_bytes as f64)
                } else {
                    "–".into()
                }
            };
            s.push_str(&format!(
                "| {} | {} | {} | {:.2} s | {} | {} | {} | {} | {} | {} |\n",
                r.step,
                r.frames,
                r.air_bytes,
                r.airtime.as_secs_f64(),
                r.http_requests,
                r.http_bytes,
                r.tcp_bytes,
                ratio(r.tcp_bytes),
                r.ip_bytes,
                ratio(r.ip_bytes),
            ));
        }
        s
    }
}

/// A frame on the link, as the display knows it.
#[derive(Debug, Clone)]
struct FrameInfo {
    from_device: bool,
    len: usize,
    what: String,
    lost: bool,
    airtime: Duration,
    start: Duration,
}

/// What a pipe frame is, from its clear header (CID, CoAP type, code; docs/PROTOCOL.md "Noise
/// pipe framing") and the operation in progress.
fn describe(frame: &[u8], op: &str) -> String {
    let (Some(&b1), Some(&code)) = (frame.get(1), frame.get(2)) else {
        return "malformed".into();
    };
    let t = (b1 >> 4) & 3;
    let (class, detail) = (code >> 5, code & 31);
    match code {
        0xEA => return "handshake XX 1 (-> e)".into(),
        0xEB => return "handshake XX 2 (<- e, ee, s, es; CID)".into(),
        0xEC => return format!("handshake XX 3 (-> s, se) + request: {op}"),
        0xF4 => return format!("handshake IK 1 + request (0-RTT): {op}"),
        0xF5 => return "handshake IK 2 + response".into(),
        0xFE => return "handshake XXfallback 1".into(),
        0xFF => return format!("handshake XXfallback 2 + request: {op}"),
        _ => {}
    }
    let method = match code {
        1 => "GET",
        2 => "POST",
        3 => "PUT",
        4 => "DELETE",
        _ => "?",
    };
    match (t, class) {
        (0, 0) if code != 0 => format!("request CON {method}: {op}"),
        (0, _) => format!("notification CON {class}.{detail:02}"),
        (1, _) => format!("NON {class}.{detail:02}"),
        (2, 0) => "empty ACK".into(),
        (2, _) => format!("ACK + response {class}.{detail:02}"),
        _ => "RST".into(),
    }
}

/// Draws frames as they cross the link.
struct Display<'w> {
    out: &'w mut dyn Write,
    live: bool,
    frames: HashMap<FrameId, FrameInfo>,
    /// The frame whose bar is being drawn on the current line.
    active: Option<FrameId>,
    /// Cells of the bar drawn last (redraw only when it grows).
    drawn: usize,
}

const BAR: usize = 24;

impl Display<'_> {
    fn line(&self, info: &FrameInfo, fraction: f64) -> String {
        let dir = if info.from_device {
            "device  -> gateway"
        } else {
            "gateway -> device "
        };
        let filled = ((fraction * BAR as f64).round() as usize).min(BAR);
        let bar: String = "#".repeat(filled) + &".".repeat(BAR - filled);
        let mut s = format!(
            "{:>8.2}s  {dir} {:>4} B  [{bar}] {:>6.2} s  {}",
            info.start.as_secs_f64(),
            info.len,
            info.airtime.as_secs_f64(),
            info.what
        );
        if fraction >= 1.0 && info.lost {
            s.push_str("  ** LOST **");
        }
        s
    }

    fn progress(&mut self, p: &Progress) {
        let Some(info) = self.frames.get(&p.tx.id) else {
            return;
        };
        let done = p.fraction >= 1.0;
        if !self.live {
            if done {
                let l = self.line(info, 1.0);
                let _ = writeln!(self.out, "{l}");
            }
            return;
        }
        if self.active.is_none() || self.active == Some(p.tx.id) {
            let cells = ((p.fraction * BAR as f64).round() as usize).min(BAR);
            if self.active == Some(p.tx.id) && cells == self.drawn && !done {
                return;
            }
            self.drawn = cells;
            let l = self.line(info, p.fraction);
            let _ = write!(self.out, "\r{l}\x1b[K");
            if done {
                let _ = writeln!(self.out);
                self.active = None;
            } else {
                self.active = Some(p.tx.id);
            }
        } else if done {
            // Another frame finished while the active one is drawn: give it its own line.
            let l = self.line(info, 1.0);
            let _ = writeln!(self.out, "\r{l}\x1b[K");
        }
        let _ = self.out.flush();
    }

    fn text(&mut self, s: &str) {
        if self.live && self.active.is_some() {
            let _ = writeln!(self.out);
            self.active = None;
        }
        let _ = writeln!(self.out, "{s}");
        let _ = self.out.flush();
    }
}

/// Everything the demo drives.
struct Run<'w> {
    rt: RealTime<SystemClock>,
    device: Option<Device>,
    device_config: ClientConfig,
    gateway: SessionGateway,
    epoch: Instant,
    fast: bool,
    display: Display<'w>,
    interrupted: Arc<AtomicBool>,
    op: String,
    tap: ByteTap,
}

impl Run<'_> {
    fn dev_now(&self, t: Duration) -> client::Instant {
        client::Instant(t.as_millis() as u64)
    }

    fn gw_now(&self, t: Duration) -> Instant {
        self.epoch + t
    }

    fn device(&mut self) -> &mut Device {
        self.device.as_mut().expect("device is running")
    }

    fn send(&mut self, from: End, frame: &[u8]) -> Result<()> {
        let to = if from == End::A { End::B } else { End::A };
        let lost_before = self.rt.link().direction_stats(from, to).lost;
        let tx = self
            .rt
            .send(from, frame)
            .map_err(|e| anyhow::anyhow!("link: {e}"))?;
        let lost = self.rt.link().direction_stats(from, to).lost > lost_before;
        self.display.frames.insert(
            tx.id,
            FrameInfo {
                from_device: from == End::A,
                len: frame.len(),
                what: describe(frame, &self.op),
                lost,
                airtime: tx.airtime,
                start: tx.start,
            },
        );
        Ok(())
    }

    /// Moves frames both ways until `until` accepts an event and the link is quiet.
    fn pump(&mut self, mut until: impl FnMut(&Seen) -> bool) -> Result<Vec<Seen>> {
        let real_start = Instant::now();
        let virtual_start = self.rt.now();
        let mut seen = Vec::new();
        let mut done = false;
        let mut idle_since: Option<Instant> = None;
        let mut buf = [0u8; client::MAX_FRAME_LEN];
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                bail!("interrupted");
            }
            let now = self.rt.now();
            let dnow = self.dev_now(now);
            if self.device().poll_timeout().is_some_and(|t| t <= dnow) {
                self.device().handle_timeout(dnow);
            }
            let mut sent = false;
            while let Some(n) = self.device().poll_transmit(dnow, &mut buf) {
                self.send(End::A, &buf[..n])?;
                sent = true;
            }
            let gnow = self.gw_now(now);
            for t in self.gateway.poll(gnow) {
                self.send(End::B, &t.frame)?;
                sent = true;
            }
            let mut events = Vec::new();
            while let Some(event) = self.device().poll_event() {
                let Some(s) = Seen::from_event(&event) else {
                    continue;
                };
                events.push(s);
            }
            for s in events {
                self.display.text(&format!("          device event: {s:?}"));
                if let Seen::Failed(why) = &s {
                    bail!("{} failed on the device: {why}", self.op);
                }
                done |= until(&s);
                seen.push(s);
            }
            // A message's ACK is released once its event was read.
            while let Some(n) = self.device().poll_transmit(dnow, &mut buf) {
                self.send(End::A, &buf[..n])?;
                sent = true;
            }
            let in_flight = self.rt.link().next_event().is_some();
            if done && !in_flight && self.device().pending() == 0 {
                return Ok(seen);
            }
            if now.saturating_sub(virtual_start) > Duration::from_secs(3600)
                || (self.fast && real_start.elapsed() > Duration::from_secs(120))
            {
                bail!("{}: timed out; seen so far: {seen:?}", self.op);
            }
            // Protocol timers on the virtual clock.
            let dev_deadline = self
                .device()
                .poll_timeout()
                .map(|t| Duration::from_millis(t.0));
            let gw_deadline = self
                .gateway
                .poll_timeout()
                .map(|t| t.saturating_duration_since(self.epoch));
            let timer = match (dev_deadline, gw_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let delivery = if in_flight {
                idle_since = None;
                let cap = if self.fast {
                    timer
                } else {
                    Some(timer.map_or(now + Duration::from_millis(100), |t| {
                        t.min(now + Duration::from_millis(100))
                    }))
                };
                let display = &mut self.display;
                self.rt.recv_until(cap, |p| display.progress(p))
            } else if self.fast {
                // Nothing on the air: the gateway may be waiting for Synapse (a /sync long
                // poll), in real time. Only when nothing happens for a while do the protocol
                // timers (a lost frame) move virtual time forward.
                let since = *idle_since.get_or_insert_with(Instant::now);
                let busy = self.device().pending() > 0 || self.gateway.has_pending_notifications();
                if !sent && busy && since.elapsed() > Duration::from_millis(300) {
                    if let Some(t) = timer {
                        idle_since = None;
                        let display = &mut self.display;
                        self.rt.recv_until(Some(t), |p| display.progress(p))
                    } else {
                        None
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                    None
                }
            } else {
                let cap = timer.map_or(now + Duration::from_millis(100), |t| {
                    t.min(now + Duration::from_millis(100))
                });
                let display = &mut self.display;
                self.rt.recv_until(Some(cap), |p| display.progress(p))
            };
            if let Some(d) = delivery {
                if d.to == End::B {
                    let at = self.gw_now(d.at);
                    let replies = self.gateway.handle_frame(at, &d.frame);
                    for t in replies {
                        self.send(End::B, &t.frame)?;
                    }
                } else {
                    let at = self.dev_now(d.at);
                    self.device().handle_rx(at, &d.frame);
                }
            }
        }
    }

    /// Runs one step: `start` queues the operation, `until` says when it is over.
    fn step(
        &mut self,
        rows: &mut Vec<Row>,
        name: &str,
        op: &str,
        start: impl FnOnce(&mut Self) -> Result<()>,
        until: impl FnMut(&Seen) -> bool,
    ) -> Result<Vec<Seen>> {
        self.display.text(&format!("\n== {name}"));
        self.op = op.to_owned();
        let first_frame = self.display.frames.keys().max().map_or(0, |m| m + 1);
        let http_before = self.gateway.total_bytes();
        start(self)?;
        let seen = self.pump(until)?;
        self.settle()?;
        let http_after = self.gateway.total_bytes();
        let mut row = Row {
            step: name.to_owned(),
            frames: 0,
            air_bytes: 0,
            airtime: Duration::ZERO,
            handshake_frames: 0,
            frame_lens: Vec::new(),
            http_requests: http_after.http_requests - http_before.http_requests,
            http_bytes: http_total(&http_after) - http_total(&http_before),
            tcp_bytes: 0,
            ip_bytes: 0,
        };
        let tcp = self.tap.take();
        row.tcp_bytes = tcp.total();
        row.ip_bytes = tcp.as_ip_packets();
        let mut ids: Vec<FrameId> = self
            .display
            .frames
            .keys()
            .copied()
            .filter(|id| *id >= first_frame)
            .collect();
        ids.sort_unstable();
        for f in ids.iter().filter_map(|id| self.display.frames.get(id)) {
            row.frame_lens.push(f.len);
            row.frames += 1;
            row.air_bytes += f.len as u64;
            row.airtime += f.airtime;
            row.handshake_frames += u64::from(f.what.starts_with("handshake"));
        }
        rows.push(row);
        Ok(seen)
    }
}

impl Run<'_> {
    /// Lets the HTTP traffic a step caused finish (the `/sync` long poll woken by the step's
    /// event, the initial sync after registering) so it counts under that step: polls the
    /// gateway for [`SETTLE`] of real time.
    fn settle(&mut self) -> Result<()> {
        let until = Instant::now() + SETTLE;
        while Instant::now() < until {
            let now = self.gw_now(self.rt.now());
            for t in self.gateway.poll(now) {
                self.send(End::B, &t.frame)?;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

/// Real time given to the HTTP traffic a step caused before the step's bytes are counted.
const SETTLE: Duration = Duration::from_millis(300);

fn http_total(b: &OpBytes) -> u64 {
    b.http_in + b.http_out
}

/// Runs the demo against a Synapse started here (stopped on return, also on errors); writes
/// the frames and the table to `out`.
pub fn run(options: &Options, out: &mut dyn Write) -> Result<Report> {
    run_scenario(options, &demo_scenario(), out)
}

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// First contact: the XX handshake carrying the password login.
    Login,
    /// Join `#lobby:localhost`.
    Join,
    /// Register for events (Observe).
    Subscribe,
    /// Send a text message to the room.
    Send(String),
    /// Bob sends these over plain HTTP; the device receives them by Observe.
    Receive(Vec<String>),
    /// Reboot the device, keeping its storage.
    Reboot,
}

/// The demo: login, join, register, send "Hello?", receive a reply, reboot, send again.
pub fn demo_scenario() -> Vec<Action> {
    vec![
        Action::Login,
        Action::Join,
        Action::Subscribe,
        Action::Send("Hello?".into()),
        Action::Receive(vec!["Loud and clear!".into()]),
        Action::Reboot,
        Action::Send("Hello?".into()),
    ]
}

/// A 60-character message of the standard scenario.
pub const SIXTY: &str = "Battery 87%, temperature 21.5 C, all sensors nominal. Over!!";

/// The standard scenario of the bytes report: first contact and login, join, register, send
/// "Hello?" three times and one 60-character message, receive two replies, reboot, send once
/// more.
pub fn standard_scenario() -> Vec<Action> {
    vec![
        Action::Login,
        Action::Join,
        Action::Subscribe,
        Action::Send("Hello?".into()),
        Action::Send("Hello?".into()),
        Action::Send("Hello?".into()),
        Action::Send(SIXTY.into()),
        Action::Receive(vec!["Loud and clear!".into(), "Copy that.".into()]),
        Action::Reboot,
        Action::Send("Hello?".into()),
    ]
}

/// Runs `scenario` like [`run`].
pub fn run_scenario(options: &Options, scenario: &[Action], out: &mut dyn Write) -> Result<Report> {
    let started = Instant::now();
    let link_config = options.link()?;
    // The device's and the gateway's timers use the link's effective bit rate.
    let effective_bps = match link_config.mode {
        Mode::Lora(p) => {
            let us = p
                .time_on_air_us(MAX_PAYLOAD)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            ((MAX_PAYLOAD as u64 * 8 * 1_000_000) / us.max(1)).max(1) as u32
        }
        _ => options.bitrate,
    };
    writeln!(
        out,
        "Trickle demo: a device talks to a real Matrix homeserver over {}.",
        options.describe()
    )?;
    writeln!(out, "Starting Synapse on 127.0.0.1 …")?;
    let synapse = Synapse::start()?;
    let data_dir = tempfile::Builder::new()
        .prefix("trickle-demo-gateway-")
        .tempdir()?;
    let result = run_with(
        options,
        scenario,
        out,
        &synapse,
        data_dir.path(),
        link_config,
        effective_bps,
    );
    let report = result?;
    writeln!(out, "\n{}", report.table())?;
    writeln!(
        out,
        "HTTP: what the gateway exchanged with Synapse for the step, including the /sync long \
         poll it keeps open once the device registered (the initial sync when it registers; \
         wake-ups by the device's own messages and by the replies). Counter: the gateway's own \
         count (request line, Authorization and Content-Type headers, JSON bodies, status \
         lines). HTTPS on TCP: every byte on the TLS connections to Synapse's HTTPS listener \
         (handshakes, record overhead, all headers; a relay counts them). As IP packets: the \
         same plus 20 bytes of IPv4 and 20–32 of TCP header for every segment the kernel \
         counted, SYN, FIN and pure ACKs included, as an HTTPS client would send them over an IP \
         radio (GPRS).\n\
         Demo finished in {:.1} s.",
        started.elapsed().as_secs_f64()
    )?;
    drop(synapse);
    Ok(report)
}

fn run_with(
    options: &Options,
    scenario: &[Action],
    out: &mut dyn Write,
    synapse: &Synapse,
    data_dir: &std::path::Path,
    link_config: LinkConfig,
    effective_bps: u32,
) -> Result<Report> {
    synapse.register_user("alice", ALICE_PW)?;
    let bob = synapse.user("bob", BOB_PW)?;
    let room_id = bob.create_room(&json!({"room_alias_name": "lobby", "preset": "public_chat"}))?;
    writeln!(
        out,
        "Synapse at {}: users @alice:localhost (the device) and @bob:localhost (plain HTTP), \
         room #lobby:localhost = {room_id}",
        synapse.base_url()
    )?;
    // The gateway reaches Synapse's HTTPS listener through a byte-counting relay: the exact
    // bytes on TCP, TLS handshakes and record overhead included, as a device speaking HTTPS+JSON
    // itself would have sent them.
    let tap = ByteTap::start(([127, 0, 0, 1], synapse.tls_port()).into())?;
    let http = HomeserverClient::with_trust_anchors(
        &format!("https://{}", tap.addr()),
        Default::default(),
        &synapse.ca_pem()?,
    )?;
    let gateway = SessionGateway::open(
        data_dir,
        http,
        SessionConfig {
            bitrate: effective_bps,
            max_frame: link_config.max_frame,
            sync_timeout_ms: 30_000,
        },
    )?;
    let device_config = ClientConfig::new(DeviceLink {
        bitrate_bps: effective_bps,
        max_frame: link_config.max_frame,
    });
    let device = Device::new(
        RamStorage::new(),
        ChaCha20Rng::from_seed([1; 32]),
        device_config,
    )
    .map_err(|e| anyhow::anyhow!("device: {e}"))?;
    let link = Link::pair(link_config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let speed = if options.fast {
        Speed::Fast
    } else {
        Speed::Factor(1.0)
    };
    let mut run = Run {
        rt: RealTime::new(link, SystemClock::new(), speed),
        device: Some(device),
        device_config,
        gateway,
        epoch: Instant::now(),
        fast: options.fast,
        display: Display {
            out,
            live: options.live,
            frames: HashMap::new(),
            active: None,
            drawn: 0,
        },
        interrupted: options.interrupted.clone(),
        op: String::new(),
        tap,
    };
    let mut rows = Vec::new();
    let mut room_alias = None;
    let mut replies = Vec::new();
    let mut sent = Vec::new();
    let mut rebooted = false;
    for action in scenario {
        let n = rows.len() + 1;
        match action {
            Action::Login => {
                let seen = run.step(
                    &mut rows,
                    &format!("{n}. first contact (XX) + login"),
                    "login",
                    |r| {
                        r.device()
                            .login_password("alice", ALICE_PW)
                            .map(drop)
                            .map_err(|e| anyhow::anyhow!("{e}"))
                    },
                    |s| matches!(s, Seen::LoggedIn(_)),
                )?;
                if !seen.contains(&Seen::LoggedIn("@alice:localhost".into())) {
                    bail!("login: {seen:?}");
                }
            }
            Action::Join => {
                let seen = run.step(
                    &mut rows,
                    &format!("{n}. join #lobby"),
                    "join",
                    |r| {
                        r.device()
                            .join("#lobby:localhost")
                            .map(drop)
                            .map_err(|e| anyhow::anyhow!("{e}"))
                    },
                    |s| matches!(s, Seen::Joined(..)),
                )?;
                room_alias = seen.iter().find_map(|s| match s {
                    Seen::Joined(a, id) if *id == room_id => Some(*a),
                    _ => None,
                });
                if room_alias.is_none() {
                    bail!("join: {seen:?}");
                }
            }
            Action::Subscribe => {
                run.step(
                    &mut rows,
                    &format!("{n}. register for events (Observe)"),
                    "subscribe",
                    |r| {
                        r.device()
                            .subscribe()
                            .map(drop)
                            .map_err(|e| anyhow::anyhow!("{e}"))
                    },
                    |s| matches!(s, Seen::Subscribed),
                )?;
            }
            Action::Send(text) => {
                let alias = room_alias.context("send before join")?;
                let name = if rebooted {
                    format!("{n}. after reboot: send {text:?} (no handshake)")
                } else {
                    format!("{n}. send {text:?}")
                };
                run.step(
                    &mut rows,
                    &name,
                    &format!("send {text:?}"),
                    |r| {
                        r.device()
                            .send_text(Peer::Alias(alias), text)
                            .map(drop)
                            .map_err(|e| anyhow::anyhow!("{e}"))
                    },
                    |s| matches!(s, Seen::Delivered),
                )?;
                sent.push(text.clone());
            }
            Action::Receive(texts) => {
                let name = if texts.len() == 1 {
                    format!("{n}. receive Bob's reply (Observe notification)")
                } else {
                    format!(
                        "{n}. receive {} replies (Observe notifications)",
                        texts.len()
                    )
                };
                let mut left = texts.len();
                let seen = run.step(
                    &mut rows,
                    &name,
                    "receive",
                    |_| {
                        for (i, t) in texts.iter().enumerate() {
                            bob.send_text(&room_id, &format!("reply-{n}-{i}"), t)
                                .context("Bob's reply over plain HTTP")?;
                        }
                        Ok(())
                    },
                    |s| {
                        left -= usize::from(matches!(s, Seen::Message { .. }));
                        left == 0
                    },
                )?;
                for s in seen {
                    if let Seen::Message { body, .. } = s {
                        replies.push(body);
                    }
                }
            }
            Action::Reboot => {
                // Volatile state is gone; the storage (keys, pinned gateway key, session) stays.
                let storage = run.device.take().context("no device")?.into_storage();
                run.device = Some(
                    Device::new(storage, ChaCha20Rng::from_seed([2; 32]), run.device_config)
                        .map_err(|e| anyhow::anyhow!("device after reboot: {e}"))?,
                );
                run.display
                    .text("\n-- device reboots: RAM state gone, storage (keys, session) kept --");
                rebooted = true;
            }
        }
    }

    // Synapse has every message the device sent, once each.
    let mut stored: Vec<String> = bob
        .messages(&room_id, 100)?
        .iter()
        .filter(|e| e["sender"] == "@alice:localhost")
        .filter_map(|e| e["content"]["body"].as_str().map(String::from))
        .collect();
    stored.sort();
    sent.sort();
    if stored != sent {
        bail!("Synapse has {stored:?} from the device, expected {sent:?}");
    }
    let expected: Vec<String> = scenario
        .iter()
        .filter_map(|a| match a {
            Action::Receive(t) => Some(t.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    if replies != expected {
        bail!("the device received {replies:?}, expected {expected:?}");
    }
    // The /sync long polls run in the background from the registration on (the initial sync,
    // wake-ups by the device's own echoes, the reply): all of them are the cost of receiving.
    let all = run.gateway.total_bytes();
    let counted: u64 = rows.iter().map(|r| r.http_bytes).sum();
    if counted != http_total(&all) {
        bail!(
            "HTTP bytes per step ({counted}) do not add up to the gateway's total ({})",
            http_total(&all)
        );
    }
    drop(run);
    Ok(Report {
        rows,
        replies,
        link: options.describe(),
    })
}
