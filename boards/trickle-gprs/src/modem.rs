//! The driver: AT dialogue per dialect, datagram queue, network-loss handling.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_io::{Read, ReadReady, Write};
use trickle_core::link::{Clock, FrameLink};

use crate::parser::{AtParser, Event, parse_usize};
use crate::{Config, Dialect, Error, SimProblem, Step};

/// Longest text line kept (longer lines are skipped): `+QIURC: "pdpdeact",1` is 21 bytes,
/// an IPv4 address 15.
const LINE_LEN: usize = 64;

/// Bytes read from the UART per `read` call.
const CHUNK: usize = 32;

/// What `AT+QIRD` asks for: a whole datagram (BG96 TCP/IP AT Commands Manual V1.0, AT+QIRD,
/// `<read_length>` 0–1500). Asking for less than a datagram would split it.
const QIRD_LEN: &[u8] = b"1500";

/// Counters, for diagnostics and for measuring the AT overhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Bytes written to the modem.
    pub uart_tx_bytes: u32,
    /// Bytes read from the modem.
    pub uart_rx_bytes: u32,
    /// Datagrams the modem confirmed with `SEND OK`.
    pub datagrams_sent: u32,
    /// Datagrams received and queued.
    pub datagrams_received: u32,
    /// Datagrams dropped: longer than the MTU, queue full, or larger than the caller's buffer.
    pub datagrams_dropped: u32,
    /// Lines longer than the line buffer (garbage) that were skipped.
    pub lines_skipped: u32,
    /// Successful [`GprsLink::connect`] calls (the first one included).
    pub connects: u32,
    /// Times the network or socket was lost.
    pub losses: u32,
}

/// A small FIFO of received datagrams.
#[derive(Debug)]
struct Queue<const MTU: usize, const N: usize> {
    slots: [[u8; MTU]; N],
    lens: [usize; N],
    head: usize,
    count: usize,
}

impl<const MTU: usize, const N: usize> Queue<MTU, N> {
    const fn new() -> Self {
        Queue {
            slots: [[0; MTU]; N],
            lens: [0; N],
            head: 0,
            count: 0,
        }
    }

    /// Appends a copy of `d`; false if the queue is full or `d` is too long.
    fn push(&mut self, d: &[u8]) -> bool {
        if self.count >= N || d.len() > MTU {
            return false;
        }
        let i = (self.head + self.count) % N;
        let (Some(slot), Some(len)) = (self.slots.get_mut(i), self.lens.get_mut(i)) else {
            return false;
        };
        let Some(dst) = slot.get_mut(..d.len()) else {
            return false;
        };
        dst.copy_from_slice(d);
        *len = d.len();
        self.count += 1;
        true
    }

    /// The oldest datagram, removed: copied into `buf`, or `Err(len)` if it does not fit.
    fn pop(&mut self, buf: &mut [u8]) -> Option<Result<usize, usize>> {
        if self.count == 0 {
            return None;
        }
        let i = self.head;
        self.head = (self.head + 1) % N;
        self.count -= 1;
        let len = *self.lens.get(i)?;
        let src = self.slots.get(i)?.get(..len)?;
        Some(match buf.get_mut(..len) {
            Some(dst) => {
                dst.copy_from_slice(src);
                Ok(len)
            }
            None => Err(len),
        })
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn clear(&mut self) {
        self.count = 0;
    }
}

/// What a wait hands to its step: a line (echo and URCs already removed) or the prompt.
#[derive(Clone, Copy)]
enum Input<'l> {
    Line(&'l [u8]),
    Prompt,
}

/// What [`GprsLink::next`] found.
#[derive(Clone, Copy)]
enum Got {
    Line,
    Prompt,
}

/// Unsolicited result codes the driver acts on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Urc {
    /// The PDP context or the socket is gone.
    Lost,
    /// BG96: data waits in the modem's buffer.
    Recv,
}

/// Classifies an unsolicited line.
///
/// SIM800 Series AT Command Manual V1.09 (TCP/IP chapter and its URC summary): `CLOSED` when
/// the connection closes, `+PDP: DEACT` when the network deactivates the context,
/// `NORMAL POWER DOWN` and `UNDER-VOLTAGE POWER DOWN`. BG96 TCP/IP AT Commands Manual V1.0,
/// "Description of URCs": `+QIURC: "closed",<connectID>`, `+QIURC: "recv",<connectID>`,
/// `+QIURC: "pdpdeact",<contextID>`; BG96 AT Commands Manual `POWERED DOWN`.
fn urc(dialect: Dialect, line: &[u8]) -> Option<Urc> {
    const SIM800: &[(&[u8], Urc)] = &[
        (b"CLOSED", Urc::Lost),
        (b"+PDP: DEACT", Urc::Lost),
        (b"NORMAL POWER DOWN", Urc::Lost),
        (b"UNDER-VOLTAGE POWER DOWN", Urc::Lost),
    ];
    const BG96: &[(&[u8], Urc)] = &[
        (b"+QIURC: \"recv\",0", Urc::Recv),
        (b"+QIURC: \"closed\",0", Urc::Lost),
        (b"+QIURC: \"pdpdeact\",1", Urc::Lost),
        (b"POWERED DOWN", Urc::Lost),
    ];
    let table = match dialect {
        Dialect::Sim800 => SIM800,
        Dialect::Bg96 => BG96,
    };
    table.iter().find(|(t, _)| *t == line).map(|&(_, u)| u)
}

/// `ERROR`, `+CME ERROR: <n>` (V.250 §5.7.1, 3GPP TS 27.007 §9.2).
fn is_error(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"+CME ERROR")
}

/// The `index`-th comma-separated field after `prefix`, as a number.
fn field(line: &[u8], prefix: &[u8], index: usize) -> Option<usize> {
    let rest = line.strip_prefix(prefix)?;
    let f = rest.split(|&b| b == b',').nth(index)?;
    parse_usize(f.trim_ascii())
}

/// A number in decimal, without allocation.
struct Num {
    buf: [u8; 5],
    start: usize,
}

impl Num {
    fn new(mut n: usize) -> Num {
        let mut buf = [b'0'; 5];
        let mut start = buf.len();
        loop {
            start -= 1;
            if let Some(d) = buf.get_mut(start) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || start == 0 {
                break;
            }
        }
        Num { buf, start }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(b"0")
    }
}

/// A configuration string that can go between quotes on the AT line.
fn quotable(s: &str) -> bool {
    s.bytes().all(|b| b != b'"' && (0x20..0x7f).contains(&b))
}

/// Powers a modem on by pulsing its PWRKEY line: asserted (`set_high`, as through the NPN
/// open-collector stage both vendors' hardware designs show) for 1.1 s on SIM800 (SIM800
/// Hardware Design, "Power on/down": PWRKEY low for at least 1 s) and 0.75 s on BG96 (BG96
/// Hardware Design, "Turn on": at least 500 ms), then released. The modem answers `AT` a few seconds later:
/// [`GprsLink::connect`] probes for that.
pub fn pulse_pwrkey<P: OutputPin, D: DelayNs>(
    pin: &mut P,
    delay: &mut D,
    dialect: Dialect,
) -> Result<(), P::Error> {
    pin.set_high()?;
    delay.delay_ms(match dialect {
        Dialect::Sim800 => 1_100,
        Dialect::Bg96 => 750,
    });
    pin.set_low()
}

/// One UDP socket through an AT modem, as a Trickle [`FrameLink`].
///
/// `MTU` is the largest datagram carried (both ways; default 256, a Trickle frame is at most
/// 255 bytes); `QUEUE` how many received datagrams wait for [`FrameLink::receive`] (default
/// 2). RAM: `MTU × (QUEUE + 1) + 96` bytes plus the UART and clock.
pub struct GprsLink<'a, U, C, const MTU: usize = 256, const QUEUE: usize = 2> {
    uart: U,
    clock: C,
    config: Config<'a>,
    parser: AtParser<LINE_LEN, MTU>,
    rx: [u8; CHUNK],
    rx_pos: usize,
    rx_len: usize,
    queue: Queue<MTU, QUEUE>,
    connected: bool,
    /// A loss seen by a URC that `receive` has not reported yet.
    loss_unreported: bool,
    /// BG96: `+QIURC: "recv"` came and the buffer was not read empty yet.
    recv_pending: bool,
    /// BG96: the length of the last `+QIRD: <len>`.
    qird_len: Option<usize>,
    stats: Stats,
}

impl<'a, U, C, const MTU: usize, const QUEUE: usize> GprsLink<'a, U, C, MTU, QUEUE>
where
    U: Read + Write + ReadReady,
    C: Clock,
{
    /// A driver for the modem on `uart`. Nothing is sent until [`connect`](Self::connect) or
    /// the first transmit.
    pub fn new(uart: U, clock: C, config: Config<'a>) -> Self {
        GprsLink {
            uart,
            clock,
            config,
            parser: AtParser::new(),
            rx: [0; CHUNK],
            rx_pos: 0,
            rx_len: 0,
            queue: Queue::new(),
            connected: false,
            loss_unreported: false,
            recv_pending: false,
            qird_len: None,
            stats: Stats::default(),
        }
    }

    /// True while the PDP context and the socket are up (as far as the driver knows).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config<'a> {
        &self.config
    }

    /// Gives the UART and the clock back.
    pub fn release(self) -> (U, C) {
        (self.uart, self.clock)
    }

    /// Brings the link up from any state: waits for the modem to answer `AT`, turns echo off,
    /// checks the SIM (entering [`Config::pin`] if asked), waits for the network registration,
    /// (re)activates the PDP context and opens the UDP socket to the gateway.
    ///
    /// Used for the first connection and after a loss. Datagrams still queued from before are
    /// kept; datagrams that arrived at the modem while the link was down are lost (as on any
    /// network).
    pub fn connect(&mut self) -> Result<(), Error<U::Error>> {
        let c = self.config;
        if [c.apn, c.user, c.password, c.host, c.pin.unwrap_or("")]
            .iter()
            .any(|s| !quotable(s))
            || c.host.is_empty()
            || c.port == 0
        {
            return Err(Error::InvalidConfig);
        }
        self.connected = false;
        self.recv_pending = false;
        self.power_up()?;
        // V.250 §6.2.4: echo off, so the data we send is not echoed back either.
        self.command(&[b"ATE0"], Step::Setup)?;
        self.sim()?;
        self.registration()?;
        match c.dialect {
            Dialect::Sim800 => self.open_sim800()?,
            Dialect::Bg96 => self.open_bg96()?,
        }
        self.connected = true;
        self.loss_unreported = false;
        self.stats.connects = self.stats.connects.saturating_add(1);
        Ok(())
    }

    /// Same as [`connect`](Self::connect): the name firmware reaches for after
    /// [`Error::NetworkLost`].
    pub fn reconnect(&mut self) -> Result<(), Error<U::Error>> {
        self.connect()
    }

    fn now(&mut self) -> u64 {
        self.clock.now().0
    }

    fn deadline(&mut self, ms: u32) -> u64 {
        self.now().saturating_add(u64::from(ms))
    }

    fn write(&mut self, mut bytes: &[u8]) -> Result<(), Error<U::Error>> {
        while !bytes.is_empty() {
            let n = self.uart.write(bytes).map_err(Error::Uart)?;
            if n == 0 {
                return Err(Error::UartStalled);
            }
            self.stats.uart_tx_bytes = self.stats.uart_tx_bytes.saturating_add(n as u32);
            bytes = bytes.get(n..).unwrap_or(&[]);
        }
        Ok(())
    }

    /// Writes the parts of one command line and its `<CR>` (V.250 §5.2.1).
    fn send_line(&mut self, parts: &[&[u8]]) -> Result<(), Error<U::Error>> {
        for p in parts {
            self.write(p)?;
        }
        self.write(b"\r")?;
        self.uart.flush().map_err(Error::Uart)
    }

    /// A command whose only answer is `OK`.
    fn command(&mut self, parts: &[&[u8]], step: Step) -> Result<(), Error<U::Error>> {
        self.command_within(parts, step, self.config.timeouts.command_ms)
    }

    fn command_within(
        &mut self,
        parts: &[&[u8]],
        step: Step,
        ms: u32,
    ) -> Result<(), Error<U::Error>> {
        self.send_line(parts)?;
        let d = self.deadline(ms);
        self.wait(step, d, |i| match i {
            Input::Line(b"OK") => Some(Ok(())),
            _ => None,
        })
    }

    fn next_byte(&mut self) -> Result<Option<u8>, Error<U::Error>> {
        if self.rx_pos >= self.rx_len {
            if !self.uart.read_ready().map_err(Error::Uart)? {
                return Ok(None);
            }
            let n = self.uart.read(&mut self.rx).map_err(Error::Uart)?;
            self.rx_pos = 0;
            self.rx_len = n.min(CHUNK);
            self.stats.uart_rx_bytes = self.stats.uart_rx_bytes.saturating_add(n as u32);
        }
        let b = self.rx.get(self.rx_pos).copied();
        self.rx_pos += 1;
        Ok(b)
    }

    /// Waits until `f` finishes the step, handling payloads, echo and URCs on the way. A line
    /// `f` does not take that is `ERROR` / `+CME ERROR` fails the step.
    ///
    /// Small on purpose: it is instantiated once per closure, the work is in [`Self::next`].
    fn wait<T>(
        &mut self,
        step: Step,
        deadline: u64,
        mut f: impl FnMut(Input<'_>) -> Option<Result<T, Error<U::Error>>>,
    ) -> Result<T, Error<U::Error>> {
        loop {
            let input = match self.next(step, Some(deadline))? {
                Some(Got::Prompt) => Input::Prompt,
                Some(Got::Line) => Input::Line(self.parser.line()),
                None => continue,
            };
            if let Some(r) = f(input) {
                return r;
            }
            if matches!(input, Input::Line(l) if is_error(l)) {
                return Err(Error::Rejected(step));
            }
        }
    }

    /// Handles what the modem sends until a line or the prompt is there for the caller, the
    /// deadline passes (error), or — with no deadline — no byte is waiting (`Ok(None)`).
    /// Payloads are queued, the echo of our commands is dropped, URCs are acted on (a loss
    /// during a send or a read fails it with [`Error::NetworkLost`]).
    fn next(&mut self, step: Step, deadline: Option<u64>) -> Result<Option<Got>, Error<U::Error>> {
        loop {
            if let Some(d) = deadline {
                if self.now() >= d {
                    // Whatever was half received is lost; start over at the next line.
                    self.parser.reset();
                    return Err(Error::Timeout(step));
                }
            }
            let Some(byte) = self.next_byte()? else {
                if deadline.is_none() {
                    return Ok(None);
                }
                continue;
            };
            let Some(event) = self.parser.push(byte) else {
                continue;
            };
            match event {
                Event::Data => {
                    if self.queue.push(self.parser.data()) {
                        self.stats.datagrams_received += 1;
                    } else {
                        self.stats.datagrams_dropped += 1;
                    }
                }
                Event::DataTooLong { .. } => self.stats.datagrams_dropped += 1,
                Event::Overflow => self.stats.lines_skipped += 1,
                Event::Prompt => return Ok(Some(Got::Prompt)),
                Event::Line => {
                    let line = self.parser.line();
                    // The echo of our own command line (before ATE0 took effect).
                    if line.starts_with(b"AT") {
                        continue;
                    }
                    // BG96 TCP/IP AT Commands Manual V1.0, AT+QIRD: `+QIRD: <len>` then
                    // <CR><LF> and exactly <len> bytes of data.
                    if self.config.dialect == Dialect::Bg96 && step == Step::Receive {
                        if let Some(len) = field(line, b"+QIRD: ", 0) {
                            self.qird_len = Some(len);
                            if len > 0 {
                                // Not zero, so no event comes back.
                                let _ = self.parser.expect_data(len);
                            }
                            continue;
                        }
                    }
                    match urc(self.config.dialect, line) {
                        Some(Urc::Lost) => {
                            if self.connected {
                                self.connected = false;
                                self.loss_unreported = true;
                                self.stats.losses += 1;
                            }
                            if matches!(step, Step::Send | Step::Receive) && deadline.is_some() {
                                return Err(Error::NetworkLost);
                            }
                        }
                        Some(Urc::Recv) => self.recv_pending = true,
                        None => return Ok(Some(Got::Line)),
                    }
                }
            }
        }
    }

    /// Handles whatever the modem sent meanwhile, without waiting (stray lines are dropped).
    fn pump(&mut self) -> Result<(), Error<U::Error>> {
        while self.next(Step::Receive, None)?.is_some() {}
        Ok(())
    }

    /// Handles what the modem sends for `ms` milliseconds.
    fn pause(&mut self, ms: u32) -> Result<(), Error<U::Error>> {
        let d = self.deadline(ms);
        while self.now() < d {
            self.pump()?;
        }
        Ok(())
    }

    /// `AT` until `OK` (the modem boots, possibly with echo on and autobauding).
    fn power_up(&mut self) -> Result<(), Error<U::Error>> {
        let end = self.deadline(self.config.timeouts.power_up_ms);
        loop {
            let left = end.saturating_sub(self.now());
            let probe = u64::from(self.config.timeouts.at_retry_ms).min(left) as u32;
            match self.command_within(&[b"AT"], Step::PowerUp, probe) {
                Ok(()) => return Ok(()),
                Err(Error::Timeout(_) | Error::Rejected(_)) if self.now() < end => {}
                Err(Error::Rejected(_)) => return Err(Error::Timeout(Step::PowerUp)),
                Err(e) => return Err(e),
            }
        }
    }

    /// `AT+CPIN?` (3GPP TS 27.007 §8.3): `READY`, or `SIM PIN` and a configured PIN.
    fn sim(&mut self) -> Result<(), Error<U::Error>> {
        let end = self.deadline(self.config.timeouts.power_up_ms);
        let mut pin_sent = false;
        loop {
            self.send_line(&[b"AT+CPIN?"])?;
            let d = self.deadline(self.config.timeouts.command_ms);
            let mut state: Option<bool> = None; // Some(true): READY, Some(false): SIM PIN
            let mut other = false;
            let r = self.wait(Step::Sim, d, |i| match i {
                Input::Line(b"+CPIN: READY") => {
                    state = Some(true);
                    None
                }
                Input::Line(b"+CPIN: SIM PIN") => {
                    state = Some(false);
                    None
                }
                Input::Line(l) if l.starts_with(b"+CPIN: ") => {
                    other = true;
                    None
                }
                Input::Line(b"OK") => Some(Ok(())),
                _ => None,
            });
            match r {
                Ok(()) => {}
                // +CME ERROR: 10 (SIM not inserted) / 14 (SIM busy) while the SIM starts.
                Err(Error::Rejected(_)) if self.now() < end => {
                    self.pause(self.config.timeouts.poll_ms)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            match (state, other) {
                (Some(true), _) => return Ok(()),
                (Some(false), _) if !pin_sent => {
                    let Some(pin) = self.config.pin else {
                        return Err(Error::Sim(SimProblem::PinRequired));
                    };
                    match self.command(&[b"AT+CPIN=\"", pin.as_bytes(), b"\""], Step::Sim) {
                        Ok(()) => pin_sent = true,
                        Err(Error::Rejected(_)) => return Err(Error::Sim(SimProblem::PinRejected)),
                        Err(e) => return Err(e),
                    }
                }
                (Some(false), _) => return Err(Error::Sim(SimProblem::PinRejected)),
                (None, true) => return Err(Error::Sim(SimProblem::Locked)),
                (None, false) => {}
            }
            if self.now() >= end {
                return Err(Error::Timeout(Step::Sim));
            }
            self.pause(self.config.timeouts.poll_ms)?;
        }
    }

    /// `AT+CGREG?` (SIM800, GPRS) / `AT+CEREG?` (BG96, EPS) until status 1 (home) or 5
    /// (roaming); 3 is a denial (3GPP TS 27.007 §10.1.20 and §10.1.22).
    fn registration(&mut self) -> Result<(), Error<U::Error>> {
        let (query, prefix): (&[u8], &[u8]) = match self.config.dialect {
            Dialect::Sim800 => (b"AT+CGREG?", b"+CGREG: "),
            Dialect::Bg96 => (b"AT+CEREG?", b"+CEREG: "),
        };
        let end = self.deadline(self.config.timeouts.registration_ms);
        loop {
            self.send_line(&[query])?;
            let d = self.deadline(self.config.timeouts.command_ms);
            let mut stat = None;
            self.wait(Step::Registration, d, |i| match i {
                Input::Line(b"OK") => Some(Ok(())),
                Input::Line(l) => {
                    if let Some(s) = field(l, prefix, 1) {
                        stat = Some(s);
                    }
                    None
                }
                Input::Prompt => None,
            })?;
            match stat {
                Some(1 | 5) => return Ok(()),
                Some(3) => return Err(Error::RegistrationDenied),
                _ => {}
            }
            if self.now() >= end {
                return Err(Error::Timeout(Step::Registration));
            }
            self.pause(self.config.timeouts.poll_ms)?;
        }
    }

    /// SIM800 Series AT Command Manual V1.09 §8.2: AT+CIPSHUT (back to IP INITIAL, the only
    /// state AT+CSTT accepts), AT+CIPHEAD=1 (received data as `+IPD,<len>:`), AT+CSTT,
    /// AT+CIICR, AT+CIFSR (the local address, without OK), AT+CIPSTART="UDP".
    fn open_sim800(&mut self) -> Result<(), Error<U::Error>> {
        let t = self.config.timeouts;
        let c = self.config;
        self.send_line(&[b"AT+CIPSHUT"])?;
        let d = self.deadline(t.command_ms);
        self.wait(Step::Context, d, |i| match i {
            Input::Line(b"SHUT OK") => Some(Ok(())),
            _ => None,
        })?;
        self.command(&[b"AT+CIPHEAD=1"], Step::Setup)?;
        self.command(
            &[
                b"AT+CSTT=\"",
                c.apn.as_bytes(),
                b"\",\"",
                c.user.as_bytes(),
                b"\",\"",
                c.password.as_bytes(),
                b"\"",
            ],
            Step::Context,
        )?;
        self.command_within(&[b"AT+CIICR"], Step::Context, t.context_ms)?;
        self.send_line(&[b"AT+CIFSR"])?;
        let d = self.deadline(t.command_ms);
        self.wait(Step::Context, d, |i| match i {
            Input::Line(l)
                if !l.is_empty() && l.iter().all(|&b| b.is_ascii_digit() || b == b'.') =>
            {
                Some(Ok(()))
            }
            _ => None,
        })?;
        let port = Num::new(usize::from(c.port));
        self.send_line(&[
            b"AT+CIPSTART=\"UDP\",\"",
            c.host.as_bytes(),
            b"\",",
            port.as_bytes(),
        ])?;
        let d = self.deadline(t.open_ms);
        self.wait(Step::Socket, d, |i| match i {
            Input::Line(b"CONNECT OK" | b"ALREADY CONNECT") => Some(Ok(())),
            Input::Line(b"CONNECT FAIL") => Some(Err(Error::Rejected(Step::Socket))),
            _ => None,
        })
    }

    /// BG96 TCP/IP AT Commands Manual V1.0 §2.1: AT+QIDEACT=1 (a clean start: closes every
    /// socket of context 1), AT+QICSGP=1,1 (IPv4, APN, credentials, authentication),
    /// AT+QIACT=1, AT+QIOPEN=1,0,"UDP",<host>,<port>,0,0 (local port auto, buffer access
    /// mode) answered by `+QIOPEN: 0,<err>`.
    fn open_bg96(&mut self) -> Result<(), Error<U::Error>> {
        let t = self.config.timeouts;
        let c = self.config;
        self.command_within(&[b"AT+QIDEACT=1"], Step::Context, t.context_ms)?;
        let auth: &[u8] = if c.user.is_empty() { b"0" } else { b"3" };
        self.command(
            &[
                b"AT+QICSGP=1,1,\"",
                c.apn.as_bytes(),
                b"\",\"",
                c.user.as_bytes(),
                b"\",\"",
                c.password.as_bytes(),
                b"\",",
                auth,
            ],
            Step::Context,
        )?;
        self.command_within(&[b"AT+QIACT=1"], Step::Context, t.context_ms)?;
        let port = Num::new(usize::from(c.port));
        self.send_line(&[
            b"AT+QIOPEN=1,0,\"UDP\",\"",
            c.host.as_bytes(),
            b"\",",
            port.as_bytes(),
            b",0,0",
        ])?;
        let d = self.deadline(t.open_ms);
        self.wait(Step::Socket, d, |i| match i {
            Input::Line(l) if l.starts_with(b"+QIOPEN: 0,") => {
                Some(match field(l, b"+QIOPEN: ", 1) {
                    Some(0) => Ok(()),
                    _ => Err(Error::Rejected(Step::Socket)),
                })
            }
            _ => None,
        })
    }

    /// One datagram: `AT+CIPSEND=<n>` / `AT+QISEND=0,<n>`, the prompt `> `, the bytes,
    /// `SEND OK`.
    fn send_datagram(&mut self, frame: &[u8]) -> Result<(), Error<U::Error>> {
        let n = Num::new(frame.len());
        match self.config.dialect {
            Dialect::Sim800 => self.send_line(&[b"AT+CIPSEND=", n.as_bytes()])?,
            Dialect::Bg96 => self.send_line(&[b"AT+QISEND=0,", n.as_bytes()])?,
        }
        let d = self.deadline(self.config.timeouts.send_ms);
        // ERROR before the prompt: no connection (SIM800 §8.2.3, BG96 AT+QISEND).
        self.wait(Step::Send, d, |i| match i {
            Input::Prompt => Some(Ok(())),
            Input::Line(l) if is_error(l) => Some(Err(Error::NetworkLost)),
            _ => None,
        })?;
        self.write(frame)?;
        self.uart.flush().map_err(Error::Uart)?;
        self.wait(Step::Send, d, |i| match i {
            Input::Line(b"SEND OK") => Some(Ok(())),
            Input::Line(b"SEND FAIL") => Some(Err(Error::Rejected(Step::Send))),
            Input::Line(l) if is_error(l) => Some(Err(Error::NetworkLost)),
            _ => None,
        })?;
        self.stats.datagrams_sent += 1;
        Ok(())
    }

    /// BG96: `AT+QIRD=0,1500` until it answers `+QIRD: 0`, while the queue has room.
    fn read_bg96(&mut self) -> Result<(), Error<U::Error>> {
        while self.recv_pending && self.connected && self.queue.is_empty() {
            self.send_line(&[b"AT+QIRD=0,", QIRD_LEN])?;
            let d = self.deadline(self.config.timeouts.command_ms);
            self.qird_len = None;
            self.wait(Step::Receive, d, |i| match i {
                Input::Line(b"OK") => Some(Ok(())),
                _ => None,
            })?;
            match self.qird_len {
                Some(0) => self.recv_pending = false,
                Some(_) => {}
                None => return Err(Error::Rejected(Step::Receive)),
            }
        }
        Ok(())
    }

    fn fail_down<T>(&mut self, e: Error<U::Error>) -> Result<T, Error<U::Error>> {
        if self.connected {
            self.stats.losses += 1;
        }
        self.connected = false;
        self.loss_unreported = false;
        Err(e)
    }
}

impl<U, C, const MTU: usize, const QUEUE: usize> FrameLink for GprsLink<'_, U, C, MTU, QUEUE>
where
    U: Read + Write + ReadReady,
    C: Clock,
{
    type Error = Error<U::Error>;

    fn max_frame_len(&self) -> usize {
        MTU
    }

    /// Sends `frame` as one datagram and returns once the modem said `SEND OK`. If the link is
    /// down it first reconnects ([`GprsLink::connect`]). On any failure after the command went
    /// out the link is marked down and the error returned; the frame is never sent twice by
    /// the driver.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        if frame.len() > MTU {
            return Err(Error::FrameTooLong { max: MTU });
        }
        self.pump()?;
        if !self.connected {
            self.connect()?;
        }
        match self.send_datagram(frame) {
            Ok(()) => Ok(()),
            Err(e @ (Error::Uart(_) | Error::UartStalled)) => Err(e),
            Err(e) => self.fail_down(e),
        }
    }

    /// Handles what the modem sent meanwhile and returns the oldest received datagram. A loss
    /// of network seen here is returned once as [`Error::NetworkLost`]. On BG96 a pending
    /// `+QIURC: "recv"` costs one `AT+QIRD` exchange (a few milliseconds on the UART).
    fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        self.pump()?;
        if self.loss_unreported {
            self.loss_unreported = false;
            self.recv_pending = false;
            return Err(Error::NetworkLost);
        }
        if self.queue.is_empty() && self.config.dialect == Dialect::Bg96 {
            if let Err(e) = self.read_bg96() {
                return match e {
                    Error::Uart(_) | Error::UartStalled => Err(e),
                    e => self.fail_down(e),
                };
            }
        }
        match self.queue.pop(buf) {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(required)) => {
                self.stats.datagrams_dropped += 1;
                Err(Error::BufferTooSmall { required })
            }
        }
    }
}

impl<U, C, const MTU: usize, const QUEUE: usize> GprsLink<'_, U, C, MTU, QUEUE> {
    /// Drops every queued datagram (e.g. after a reset of the session above).
    pub fn clear_received(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests;
