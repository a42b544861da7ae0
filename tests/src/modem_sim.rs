//! A simulated cellular modem for `trickle-gprs`: it speaks the AT dialogue of a SIM800 or a
//! BG96 on an in-memory UART and carries the datagrams over a real `std::net::UdpSocket`.
//!
//! What it models, from the vendors' manuals (SIM800 Series AT Command Manual V1.09, BG96
//! AT Commands Manual and BG96 TCP/IP AT Commands Manual V1.0):
//!
//! - power-up delay (input is ignored until the modem booted; BG96 then says `RDY`),
//! - echo on at boot (`ATE0` / `ATE1`), verbose result codes framed by `<CR><LF>`,
//! - SIM PIN state (`AT+CPIN?`, `AT+CPIN="…"`, `+CME ERROR: 16` for a wrong PIN),
//! - registration progress (`+CGREG`/`+CEREG` status 2 "searching" for a number of polls),
//! - SIM800: the IP state machine IP INITIAL → IP START (`AT+CSTT`) → IP GPRSACT (`AT+CIICR`)
//!   → IP STATUS (`AT+CIFSR`) → CONNECT OK (`AT+CIPSTART`), `AT+CIPSHUT`, `AT+CIPHEAD=1` and
//!   received datagrams pushed as `+IPD,<len>:<data>`, `AT+CIPSEND=<n>` → `> ` → `SEND OK`,
//! - BG96: `AT+QICSGP`, `AT+QIACT`, `AT+QIDEACT`, `AT+QIOPEN` → `OK` and `+QIOPEN: 0,0`,
//!   `AT+QISEND=0,<n>` → `> ` → `SEND OK`, buffer access mode (`+QIURC: "recv",0` once until
//!   `AT+QIRD` read the buffer empty; one datagram per `AT+QIRD`),
//! - injected network loss: the socket is dropped, `+PDP: DEACT` / `+QIURC: "pdpdeact",1` is
//!   sent, and the registration searches again for a few polls.
//!
//! Data sent after the prompt is not echoed (the driver turns echo off first).

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use trickle_gprs::Dialect;

/// One direction of the UART.
#[derive(Default)]
struct Pipe {
    q: Mutex<VecDeque<u8>>,
    cv: Condvar,
}

impl Pipe {
    fn put(&self, bytes: &[u8]) {
        self.q.lock().unwrap().extend(bytes.iter().copied());
        self.cv.notify_all();
    }

    /// Takes what is there, waiting at most `wait` for the first byte.
    fn take(&self, wait: Duration, max: usize) -> Vec<u8> {
        let mut q = self.q.lock().unwrap();
        if q.is_empty() {
            q = self.cv.wait_timeout(q, wait).unwrap().0;
        }
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    fn is_empty(&self) -> bool {
        self.q.lock().unwrap().is_empty()
    }
}

/// The MCU's end of the UART to the simulated modem (`embedded_io` Read/Write/ReadReady).
#[derive(Clone)]
pub struct SimUart {
    to_modem: Arc<Pipe>,
    from_modem: Arc<Pipe>,
}

impl embedded_io::ErrorType for SimUart {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for SimUart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let got = self.from_modem.take(Duration::from_millis(50), buf.len());
            if !got.is_empty() {
                buf[..got.len()].copy_from_slice(&got);
                return Ok(got.len());
            }
        }
    }
}

impl embedded_io::ReadReady for SimUart {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        if self.from_modem.is_empty() {
            // A real UART would not wait; here it keeps a polling driver from spinning a core.
            let q = self.from_modem.q.lock().unwrap();
            let q = self
                .from_modem
                .cv
                .wait_timeout(q, Duration::from_micros(500))
                .unwrap()
                .0;
            return Ok(!q.is_empty());
        }
        Ok(true)
    }
}

impl embedded_io::Write for SimUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.to_modem.put(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A monotonic millisecond clock for the driver.
#[derive(Clone, Copy)]
pub struct StdClock(pub Instant);

impl StdClock {
    /// Starts now.
    pub fn new() -> Self {
        StdClock(Instant::now())
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl trickle_core::link::Clock for StdClock {
    fn now(&mut self) -> trickle_core::client::Instant {
        trickle_core::client::Instant(self.0.elapsed().as_millis() as u64)
    }
}

/// How the simulated modem behaves.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// SIM800 or BG96.
    pub dialect: Dialect,
    /// Milliseconds after start before the modem reacts to anything.
    pub power_up_ms: u64,
    /// The SIM's PIN, if it asks for one.
    pub pin: Option<String>,
    /// Registration polls answered "searching" (status 2) after boot.
    pub searching_polls: u32,
    /// Registration polls answered "searching" after an injected loss.
    pub searching_after_loss: u32,
    /// Echo at boot (V.250 default: on).
    pub echo: bool,
}

impl ModemConfig {
    /// A modem that boots in 200 ms, echo on, no PIN, registered after two polls.
    pub fn new(dialect: Dialect) -> Self {
        ModemConfig {
            dialect,
            power_up_ms: 200,
            pin: None,
            searching_polls: 2,
            searching_after_loss: 2,
            echo: true,
        }
    }
}

/// Counters of the simulated modem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModemStats {
    /// Bytes the MCU wrote to the modem.
    pub uart_in: usize,
    /// Bytes the modem wrote to the MCU.
    pub uart_out: usize,
    /// Datagrams sent to the network.
    pub datagrams_up: usize,
    /// Datagrams received from the network and handed to the MCU (pushed or read).
    pub datagrams_down: usize,
    /// Datagrams that arrived while the network was down (dropped, as a network would).
    pub dropped_while_down: usize,
    /// Every command line received (without `<CR>`).
    pub commands: Vec<String>,
    /// Sockets opened (one per `AT+CIPSTART` / `AT+QIOPEN` that succeeded).
    pub sockets_opened: usize,
}

struct Shared {
    stats: ModemStats,
    lose: bool,
}

/// The simulated modem, running on its own thread until dropped.
pub struct SimModem {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SimModem {
    /// Starts a modem; returns it and the MCU's end of its UART.
    pub fn start(config: ModemConfig) -> (SimModem, SimUart) {
        let uart = SimUart {
            to_modem: Arc::default(),
            from_modem: Arc::default(),
        };
        let shared = Arc::new(Mutex::new(Shared {
            stats: ModemStats::default(),
            lose: false,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut m = Machine::new(config, uart.clone(), shared.clone());
        let s = stop.clone();
        let thread = std::thread::spawn(move || m.run(&s));
        (
            SimModem {
                shared,
                stop,
                thread: Some(thread),
            },
            uart,
        )
    }

    /// Takes the network away: context deactivated, socket gone, registration searching.
    pub fn lose_network(&self) {
        self.shared.lock().unwrap().lose = true;
    }

    /// The counters so far.
    pub fn stats(&self) -> ModemStats {
        self.shared.lock().unwrap().stats.clone()
    }
}

impl Drop for SimModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpState {
    Initial,
    Start,
    GprsAct,
    Status,
    Connected,
    PdpDeact,
}

struct Machine {
    cfg: ModemConfig,
    uart: SimUart,
    shared: Arc<Mutex<Shared>>,
    start: Instant,
    booted: bool,
    echo: bool,
    line: Vec<u8>,
    /// Bytes still expected after the prompt, and what came so far.
    sending: Option<(usize, Vec<u8>)>,
    pin_ok: bool,
    searching: u32,
    socket: Option<UdpSocket>,
    // SIM800
    ip: IpState,
    head: bool,
    // BG96
    context_active: bool,
    rx_buffer: VecDeque<Vec<u8>>,
    recv_notified: bool,
}

impl Machine {
    fn new(cfg: ModemConfig, uart: SimUart, shared: Arc<Mutex<Shared>>) -> Self {
        Machine {
            pin_ok: cfg.pin.is_none(),
            searching: cfg.searching_polls,
            echo: cfg.echo,
            cfg,
            uart,
            shared,
            start: Instant::now(),
            booted: false,
            line: Vec::new(),
            sending: None,
            socket: None,
            ip: IpState::Initial,
            head: false,
            context_active: false,
            rx_buffer: VecDeque::new(),
            recv_notified: false,
        }
    }

    fn out(&self, bytes: &[u8]) {
        self.shared.lock().unwrap().stats.uart_out += bytes.len();
        self.uart.from_modem.put(bytes);
    }

    /// `<CR><LF>text<CR><LF>` (V.250 verbose result code framing).
    fn say(&self, text: &str) {
        self.out(format!("\r\n{text}\r\n").as_bytes());
    }

    fn run(&mut self, stop: &AtomicBool) {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if !self.booted && self.start.elapsed() >= Duration::from_millis(self.cfg.power_up_ms) {
                self.booted = true;
                if self.cfg.dialect == Dialect::Bg96 {
                    self.say("RDY");
                }
            }
            let input = self.uart.to_modem.take(Duration::from_millis(1), 4096);
            if !input.is_empty() {
                self.shared.lock().unwrap().stats.uart_in += input.len();
            }
            if self.booted {
                for b in input {
                    self.byte(b);
                }
            }
            let lose = std::mem::take(&mut self.shared.lock().unwrap().lose);
            if lose {
                self.lose();
            }
            while let Some(sock) = &self.socket {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        let d = buf[..n].to_vec();
                        self.datagram(d);
                    }
                    Err(_) => break,
                }
            }
        }
    }

    fn lose(&mut self) {
        self.socket = None;
        self.searching = self.cfg.searching_after_loss;
        self.rx_buffer.clear();
        self.recv_notified = false;
        match self.cfg.dialect {
            Dialect::Sim800 => {
                self.ip = IpState::PdpDeact;
                self.say("+PDP: DEACT");
            }
            _ => {
                self.context_active = false;
                self.say("+QIURC: \"pdpdeact\",1");
            }
        }
    }

    fn datagram(&mut self, d: Vec<u8>) {
        // Pushed at once, even between a prompt's data and its SEND OK: a real modem may do
        // that too, and the driver must cope.
        self.shared.lock().unwrap().stats.datagrams_down += 1;
        match self.cfg.dialect {
            Dialect::Sim800 => {
                let mut o = if self.head {
                    format!("\r\n+IPD,{}:", d.len()).into_bytes()
                } else {
                    Vec::new()
                };
                o.extend_from_slice(&d);
                self.out(&o);
            }
            _ => {
                self.rx_buffer.push_back(d);
                if !self.recv_notified {
                    self.recv_notified = true;
                    self.say("+QIURC: \"recv\",0");
                }
            }
        }
    }

    fn byte(&mut self, b: u8) {
        if let Some((n, data)) = &mut self.sending {
            data.push(b);
            if data.len() == *n {
                let data = std::mem::take(data);
                self.sending = None;
                let sent = self.socket.as_ref().is_some_and(|s| s.send(&data).is_ok());
                if sent {
                    self.shared.lock().unwrap().stats.datagrams_up += 1;
                    self.say("SEND OK");
                } else {
                    self.say("SEND FAIL");
                }
            }
            return;
        }
        if self.echo {
            self.out(&[b]);
        }
        match b {
            b'\r' => {
                let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                if !line.is_empty() {
                    self.shared
                        .lock()
                        .unwrap()
                        .stats
                        .commands
                        .push(line.clone());
                    self.command(&line);
                }
            }
            b'\n' => {}
            _ => self.line.push(b),
        }
    }

    fn ok(&self) {
        self.say("OK");
    }

    fn error(&self) {
        self.say("ERROR");
    }

    fn registration(&mut self) -> u32 {
        if !self.pin_ok {
            return 0;
        }
        if self.searching > 0 {
            self.searching -= 1;
            return 2;
        }
        1
    }

    fn open(&mut self, args: &[String]) -> bool {
        let (Some(host), Some(port)) = (args.get(1), args.get(2)) else {
            return false;
        };
        let Ok(port) = port.parse::<u16>() else {
            return false;
        };
        let Ok(addr) = format!("{host}:{port}").parse::<SocketAddr>() else {
            return false;
        };
        let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
            return false;
        };
        if sock.connect(addr).is_err() || sock.set_nonblocking(true).is_err() {
            return false;
        }
        self.socket = Some(sock);
        self.shared.lock().unwrap().stats.sockets_opened += 1;
        true
    }

    fn command(&mut self, line: &str) {
        let upper = line.to_ascii_uppercase();
        let (name, args) = match line.split_once('=') {
            Some((n, a)) => (n.to_ascii_uppercase(), split_args(a)),
            None => (upper.clone(), Vec::new()),
        };
        let sim800 = self.cfg.dialect == Dialect::Sim800;
        match (name.as_str(), args.as_slice()) {
            ("AT", []) => self.ok(),
            ("ATE0", []) => {
                self.echo = false;
                self.ok();
            }
            ("ATE1", []) => {
                self.echo = true;
                self.ok();
            }
            ("AT+CPIN?", []) => {
                self.say(if self.pin_ok {
                    "+CPIN: READY"
                } else {
                    "+CPIN: SIM PIN"
                });
                self.ok();
            }
            ("AT+CPIN", [pin]) => {
                if self.cfg.pin.as_deref() == Some(pin.as_str()) {
                    self.pin_ok = true;
                    self.ok();
                } else {
                    self.say("+CME ERROR: 16");
                }
            }
            ("AT+CGREG?", []) if sim800 => {
                let s = self.registration();
                self.say(&format!("+CGREG: 0,{s}"));
                self.ok();
            }
            ("AT+CEREG?", []) if !sim800 => {
                let s = self.registration();
                self.say(&format!("+CEREG: 0,{s}"));
                self.ok();
            }
            // SIM800 Series AT Command Manual V1.09 §8.2.
            ("AT+CIPSHUT", []) if sim800 => {
                self.socket = None;
                self.ip = IpState::Initial;
                self.say("SHUT OK");
            }
            ("AT+CIPHEAD", [m]) if sim800 => {
                self.head = m == "1";
                self.ok();
            }
            ("AT+CSTT", [_apn, ..]) if sim800 && self.ip == IpState::Initial => {
                self.ip = IpState::Start;
                self.ok();
            }
            ("AT+CIICR", []) if sim800 && self.ip == IpState::Start && self.searching == 0 => {
                self.ip = IpState::GprsAct;
                self.ok();
            }
            ("AT+CIFSR", []) if sim800 && matches!(self.ip, IpState::GprsAct | IpState::Status) => {
                self.ip = IpState::Status;
                self.say("10.64.0.2");
            }
            ("AT+CIPSTART", [mode, ..]) if sim800 && mode == "UDP" => match self.ip {
                IpState::Connected => self.say("ALREADY CONNECT"),
                IpState::Status | IpState::Initial => {
                    self.ok();
                    if self.ip == IpState::Status && self.open(&args) {
                        self.ip = IpState::Connected;
                        self.say("CONNECT OK");
                    } else {
                        self.say("STATE: IP INITIAL");
                        self.say("CONNECT FAIL");
                    }
                }
                _ => self.error(),
            },
            ("AT+CIPSEND", [n]) if sim800 => self.prompt(n),
            ("AT+CIPCLOSE", _) if sim800 => {
                self.socket = None;
                self.ip = IpState::Status;
                self.say("CLOSE OK");
            }
            // BG96 TCP/IP AT Commands Manual V1.0 §2.1.
            ("AT+QICSGP", [ctx, ..]) if !sim800 && ctx == "1" => self.ok(),
            ("AT+QIDEACT", [ctx]) if !sim800 && ctx == "1" => {
                self.context_active = false;
                self.socket = None;
                self.ok();
            }
            ("AT+QIACT", [ctx]) if !sim800 && ctx == "1" => {
                if self.pin_ok && self.searching == 0 && !self.context_active {
                    self.context_active = true;
                    self.ok();
                } else {
                    self.error();
                }
            }
            ("AT+QIOPEN", [ctx, id, kind, _host, _port, local, mode])
                if !sim800
                    && ctx == "1"
                    && id == "0"
                    && kind == "UDP"
                    && local == "0"
                    && mode == "0" =>
            {
                self.ok();
                let err = if !self.context_active {
                    561
                } else if self.socket.is_some() {
                    563
                } else if self.open(&args[2..]) {
                    0
                } else {
                    565
                };
                self.say(&format!("+QIOPEN: 0,{err}"));
            }
            ("AT+QISEND", [id, n]) if !sim800 && id == "0" => self.prompt(n),
            ("AT+QIRD", [id, _len]) if !sim800 && id == "0" => {
                if self.socket.is_none() {
                    return self.error();
                }
                match self.rx_buffer.pop_front() {
                    Some(d) => {
                        let mut o = format!("\r\n+QIRD: {}\r\n", d.len()).into_bytes();
                        o.extend_from_slice(&d);
                        o.extend_from_slice(b"\r\n\r\nOK\r\n");
                        self.out(&o);
                    }
                    None => {
                        self.recv_notified = false;
                        self.say("+QIRD: 0");
                        self.ok();
                    }
                }
            }
            ("AT+QICLOSE", [id]) if !sim800 && id == "0" => {
                self.socket = None;
                self.ok();
            }
            _ => self.error(),
        }
    }

    /// `AT+CIPSEND=<n>` / `AT+QISEND=0,<n>`: the prompt, then `n` bytes of data.
    fn prompt(&mut self, n: &str) {
        let ok = self.socket.is_some()
            && (self.cfg.dialect != Dialect::Sim800 || self.ip == IpState::Connected);
        match n.parse::<usize>() {
            Ok(n) if ok && (1..=1460).contains(&n) => {
                self.out(b"\r\n> ");
                self.sending = Some((n, Vec::new()));
            }
            _ => self.error(),
        }
    }
}

/// `"a","b",3` → `[a, b, 3]` (quotes removed; no quote escaping in AT strings).
fn split_args(a: &str) -> Vec<String> {
    a.split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .collect()
}
