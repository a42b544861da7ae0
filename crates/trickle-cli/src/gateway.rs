//! `trickle gateway`: runs the gateway's session layer on real links.
//!
//! Links (any combination): UDP with the Trickle profile (one pipe frame per datagram), UDP with
//! the plain MSC3079 profile (bare CoAP, option 256 sticky per source address), a serial device
//! (COBS/R framing, `trickle_core::wire::serial`), a Unix stream socket (same framing, any number
//! of connections), TCP byte streams (same framing; a listening socket, or an outgoing
//! connection to a ser2net-style serial server or an emulator's UART, re-established whenever it
//! drops) and stdin/stdout (same framing).
//!
//! One thread owns the [`SessionGateway`]; reader threads hand it frames through a channel.
//! Every piece of state is persisted as it changes, so stopping the process (SIGTERM, ctrl-c)
//! loses nothing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use tracing::{debug, info, warn};
use trickle_core::wire::coap::Repr;
use trickle_core::wire::serial;
use trickle_gateway::translate::msc3079_access_token;
use trickle_gateway::{
    ClientConfig, Dialect, Gateway, HomeserverClient, Op, SessionConfig, SessionGateway,
};

/// Largest frame accepted from a byte stream (the decoder drops longer ones).
const MAX_STREAM_FRAME: usize = 2048;

/// Options of `trickle gateway` (each also settable in the `--config` TOML file, same name with
/// `_` for `-`; flags override the file).
#[derive(Args, Debug, Default)]
pub struct GatewayArgs {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Homeserver base URL (`http://` or `https://`).
    #[arg(long)]
    homeserver: Option<String>,
    /// PEM file of the CA certificate(s) to trust for an `https://` homeserver instead of the
    /// public roots (a private homeserver with its own CA).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Directory for the gateway's Noise key, pipe sessions and SQLite database.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// UDP address for Trickle-profile devices (pipe frames), e.g. `0.0.0.0:5684`.
    #[arg(long)]
    udp: Option<SocketAddr>,
    /// UDP address for plain MSC3079 CoAP clients, e.g. `0.0.0.0:5683`.
    #[arg(long)]
    udp_plain: Option<SocketAddr>,
    /// Serial device (COBS/R framing). Configure it first, e.g. `stty -F /dev/ttyUSB0 raw 9600`.
    #[arg(long)]
    serial: Option<PathBuf>,
    /// Unix stream socket path to listen on (COBS/R framing).
    #[arg(long)]
    unix: Option<PathBuf>,
    /// TCP address to listen on for byte-stream devices (COBS/R framing, any number of
    /// connections), e.g. `127.0.0.1:5685`.
    #[arg(long)]
    tcp_listen: Option<SocketAddr>,
    /// TCP address to connect to for one byte-stream device (COBS/R framing): a serial port
    /// server (ser2net in raw mode) or an emulator's UART such as QEMU's
    /// `-serial tcp:HOST:PORT,server`. Retried every 200 ms until it answers, and again
    /// whenever the connection drops.
    #[arg(long)]
    tcp_connect: Option<SocketAddr>,
    /// Use stdin/stdout as one byte-stream link (simulations); logs stay on stderr.
    #[arg(long)]
    stdio: bool,
    /// Append a CRC-16/X-25 to every frame on the byte-stream links (serial, Unix socket,
    /// stdio), and require it on received frames. The devices must be configured the same.
    /// Off by default: Trickle frames carry a 16-byte Poly1305 tag.
    #[arg(long)]
    frame_crc: bool,
    /// Link bit rate in bit/s (retransmission timer).
    #[arg(long)]
    bitrate: Option<u32>,
    /// Largest pipe frame of the link in bytes.
    #[arg(long)]
    max_frame: Option<usize>,
    /// `/sync` long-poll timeout in milliseconds.
    #[arg(long)]
    sync_timeout_ms: Option<u32>,
}

impl GatewayArgs {
    /// Fills unset options from the `--config` file.
    fn merge_file(mut self) -> Result<Self> {
        let Some(path) = &self.config else {
            return Ok(self);
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("parsing {}", path.display()))?;
        for key in table.keys() {
            if ![
                "homeserver",
                "ca_file",
                "data_dir",
                "udp",
                "udp_plain",
                "serial",
                "unix",
                "tcp_listen",
                "tcp_connect",
                "stdio",
                "frame_crc",
                "bitrate",
                "max_frame",
                "sync_timeout_ms",
            ]
            .contains(&key.as_str())
            {
                bail!("{}: unknown key `{key}`", path.display());
            }
        }
        let s = |k: &str| -> Result<Option<String>> {
            match table.get(k) {
                None => Ok(None),
                Some(toml::Value::String(v)) => Ok(Some(v.clone())),
                Some(_) => bail!("{}: `{k}` must be a string", path.display()),
            }
        };
        let n = |k: &str| -> Result<Option<u64>> {
            match table.get(k) {
                None => Ok(None),
                Some(toml::Value::Integer(v)) if *v >= 0 => Ok(Some(*v as u64)),
                Some(_) => bail!("{}: `{k}` must be a non-negative integer", path.display()),
            }
        };
        self.homeserver = self.homeserver.or(s("homeserver")?);
        self.ca_file = self.ca_file.or(s("ca_file")?.map(PathBuf::from));
        self.data_dir = self.data_dir.or(s("data_dir")?.map(PathBuf::from));
        if self.udp.is_none() {
            self.udp = s("udp")?.map(|v| v.parse()).transpose().context("`udp`")?;
        }
        if self.udp_plain.is_none() {
            self.udp_plain = s("udp_plain")?
                .map(|v| v.parse())
                .transpose()
                .context("`udp_plain`")?;
        }
        self.serial = self.serial.or(s("serial")?.map(PathBuf::from));
        self.unix = self.unix.or(s("unix")?.map(PathBuf::from));
        if self.tcp_listen.is_none() {
            self.tcp_listen = s("tcp_listen")?
                .map(|v| v.parse())
                .transpose()
                .context("`tcp_listen`")?;
        }
        if self.tcp_connect.is_none() {
            self.tcp_connect = s("tcp_connect")?
                .map(|v| v.parse())
                .transpose()
                .context("`tcp_connect`")?;
        }
        if !self.stdio {
            self.stdio = matches!(table.get("stdio"), Some(toml::Value::Boolean(true)));
        }
        if !self.frame_crc {
            self.frame_crc = match table.get("frame_crc") {
                None | Some(toml::Value::Boolean(false)) => false,
                Some(toml::Value::Boolean(true)) => true,
                Some(_) => bail!("{}: `frame_crc` must be true or false", path.display()),
            };
        }
        self.bitrate = self
            .bitrate
            .or(n("bitrate")?.map(u32::try_from).transpose()?);
        self.max_frame = self
            .max_frame
            .or(n("max_frame")?.map(usize::try_from).transpose()?);
        self.sync_timeout_ms = self
            .sync_timeout_ms
            .or(n("sync_timeout_ms")?.map(u32::try_from).transpose()?);
        Ok(self)
    }
}

/// Where a frame came from / goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Peer {
    Udp(SocketAddr),
    Stream(usize),
}

enum Input {
    Frame(Peer, Vec<u8>),
    StreamOpened(usize, Box<dyn Write + Send>),
    StreamClosed(usize),
}

/// Identifiers of byte streams, unique across all stream links of the process.
static NEXT_STREAM: AtomicUsize = AtomicUsize::new(0);

fn next_stream_id() -> usize {
    NEXT_STREAM.fetch_add(1, Ordering::Relaxed)
}

/// Reads frames (framing: `trickle_core::wire::serial`) from one byte stream until it ends,
/// handing them to the gateway thread. Returns `false` if the gateway thread is gone.
fn read_stream(id: usize, reader: &mut dyn Read, crc: serial::Crc, tx: &Sender<Input>) -> bool {
    let mut dec = serial::Decoder::<MAX_STREAM_FRAME>::new(crc);
    let mut buf = [0u8; 512];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            match dec.push(b) {
                Some(Ok(frame))
                    if tx
                        .send(Input::Frame(Peer::Stream(id), frame.to_vec()))
                        .is_err() =>
                {
                    return false;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => warn!(stream = id, error = %e, "stream frame dropped"),
                None => {}
            }
        }
    }
    tx.send(Input::StreamClosed(id)).is_ok()
}

/// Starts a reader thread for one byte stream (framing: `trickle_core::wire::serial`).
fn spawn_stream(
    id: usize,
    mut reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    crc: serial::Crc,
    tx: &Sender<Input>,
) {
    let _ = tx.send(Input::StreamOpened(id, writer));
    let tx = tx.clone();
    std::thread::spawn(move || read_stream(id, &mut reader, crc, &tx));
}

/// Serves every connection a listener accepts as its own byte-stream link, until the listener
/// fails. `split` gives the reading half (a clone of the connection); a connection it refuses
/// is dropped.
fn accept_streams<C: Read + Write + Send + 'static>(
    incoming: impl Iterator<Item = std::io::Result<C>>,
    split: impl Fn(&C) -> std::io::Result<C>,
    crc: serial::Crc,
    tx: &Sender<Input>,
) {
    for conn in incoming {
        let Ok(conn) = conn else { continue };
        let Ok(reader) = split(&conn) else { continue };
        spawn_stream(next_stream_id(), Box::new(reader), Box::new(conn), crc, tx);
    }
}

/// One byte-stream device behind an outgoing TCP connection, kept connected: the connection is
/// retried every 200 ms until it answers and again whenever it drops. Frames for the device
/// while it is disconnected are dropped (the device's CoAP layer retransmits). The stream keeps
/// one identifier across reconnections, since the same device is on the other end.
fn spawn_tcp_connect(addr: SocketAddr, crc: serial::Crc, tx: &Sender<Input>) {
    let tx = tx.clone();
    let id = next_stream_id();
    std::thread::spawn(move || {
        let mut logged_wait = false;
        loop {
            let conn = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(c) => c,
                Err(e) => {
                    if !logged_wait {
                        info!(%addr, error = %e, "TCP stream: waiting for the peer");
                        logged_wait = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            };
            logged_wait = false;
            let _ = conn.set_nodelay(true);
            let Ok(writer) = conn.try_clone() else {
                continue;
            };
            info!(%addr, stream = id, "TCP stream connected");
            if tx.send(Input::StreamOpened(id, Box::new(writer))).is_err() {
                return;
            }
            let mut reader = conn;
            if !read_stream(id, &mut reader, crc, &tx) {
                return;
            }
            info!(%addr, stream = id, "TCP stream dropped: reconnecting");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

/// Plain MSC3079 clients: bare CoAP over UDP, answered by the generic translation with the
/// access token of option 256, sticky per source address.
fn spawn_plain(sock: UdpSocket, gateway: Gateway) {
    std::thread::spawn(move || {
        let mut tokens: HashMap<SocketAddr, String> = HashMap::new();
        let mut buf = [0u8; 2048];
        let mut mid: u16 = 1;
        loop {
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "plain UDP receive failed");
                    continue;
                }
            };
            let Ok(req) = Repr::parse_bytes(&buf[..n]) else {
                warn!(%from, "undecodable CoAP datagram dropped");
                continue;
            };
            if !req.code.is_request() {
                debug!(%from, "non-request datagram ignored");
                continue;
            }
            if let Some(t) = msc3079_access_token(&req) {
                tokens.insert(from, t.to_owned());
            }
            let resp = gateway.handle(&req, tokens.get(&from).map(String::as_str));
            mid = mid.wrapping_add(1);
            let bytes = resp.to_bytes(&req, mid);
            if let Err(e) = sock.send_to(&bytes, from) {
                warn!(%from, error = %e, "plain UDP send failed");
            }
        }
    });
}

/// Runs the gateway until the process is stopped.
pub fn run(args: GatewayArgs) -> Result<()> {
    let args = args.merge_file()?;
    let homeserver = args
        .homeserver
        .context("--homeserver (or `homeserver` in the config file) is required")?;
    let data_dir = args
        .data_dir
        .context("--data-dir (or `data_dir` in the config file) is required")?;
    if args.udp.is_none()
        && args.udp_plain.is_none()
        && args.serial.is_none()
        && args.unix.is_none()
        && args.tcp_listen.is_none()
        && args.tcp_connect.is_none()
        && !args.stdio
    {
        bail!(
            "no link: give at least one of --udp, --udp-plain, --serial, --unix, --tcp-listen, \
             --tcp-connect, --stdio"
        );
    }
    let defaults = SessionConfig::default();
    let config = SessionConfig {
        bitrate: args.bitrate.unwrap_or(defaults.bitrate),
        max_frame: args.max_frame.unwrap_or(defaults.max_frame),
        sync_timeout_ms: args.sync_timeout_ms.unwrap_or(defaults.sync_timeout_ms),
    };
    if config.bitrate == 0 || config.max_frame < 21 {
        bail!("--bitrate must be > 0 and --max-frame at least 21 bytes");
    }
    let client = match &args.ca_file {
        None => HomeserverClient::new(&homeserver, ClientConfig::default()),
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            HomeserverClient::with_trust_anchors(&homeserver, ClientConfig::default(), &pem)
        }
    }
    .with_context(|| format!("homeserver URL {homeserver}"))?;
    let mut core = SessionGateway::open(&data_dir, client.clone(), config)
        .with_context(|| format!("opening {}", data_dir.display()))?;
    info!(
        public_key = %hex(&core.public_key()),
        data_dir = %data_dir.display(),
        homeserver,
        ack_timeout_ms = config.ack_timeout().as_millis() as u64,
        "gateway ready"
    );

    let (tx, rx) = channel::<Input>();
    let mut udp: Option<UdpSocket> = None;
    if let Some(addr) = args.udp {
        let sock = UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}"))?;
        info!(addr = %sock.local_addr()?, "Trickle profile on UDP");
        let reader = sock.try_clone()?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = reader.recv_from(&mut buf) {
                if tx
                    .send(Input::Frame(Peer::Udp(from), buf[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
        });
        udp = Some(sock);
    }
    if let Some(addr) = args.udp_plain {
        let sock = UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}"))?;
        info!(addr = %sock.local_addr()?, "plain MSC3079 profile on UDP");
        spawn_plain(sock, Gateway::new(client, Dialect::TrickleV1));
    }
    let framing = serial::Config {
        crc: if args.frame_crc {
            serial::Crc::X25
        } else {
            serial::Crc::None
        },
        leading_delimiter: false,
    };
    if let Some(path) = &args.serial {
        let port = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening serial device {}", path.display()))?;
        info!(path = %path.display(), crc = ?framing.crc, "COBS/R framing on serial device");
        spawn_stream(
            next_stream_id(),
            Box::new(port.try_clone()?),
            Box::new(port),
            framing.crc,
            &tx,
        );
    }
    if args.stdio {
        info!(crc = ?framing.crc, "COBS/R framing on stdin/stdout");
        spawn_stream(
            next_stream_id(),
            Box::new(std::io::stdin()),
            Box::new(std::io::stdout()),
            framing.crc,
            &tx,
        );
    }
    if let Some(path) = &args.unix {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        info!(path = %path.display(), crc = ?framing.crc, "COBS/R framing on Unix socket");
        let tx = tx.clone();
        std::thread::spawn(move || {
            accept_streams(listener.incoming(), UnixStream::try_clone, framing.crc, &tx)
        });
    }
    if let Some(addr) = args.tcp_listen {
        let listener = TcpListener::bind(addr).with_context(|| format!("binding TCP {addr}"))?;
        info!(addr = %listener.local_addr()?, crc = ?framing.crc, "COBS/R framing on TCP (listening)");
        let tx = tx.clone();
        std::thread::spawn(move || {
            let clone = |c: &TcpStream| {
                let _ = c.set_nodelay(true);
                c.try_clone()
            };
            accept_streams(listener.incoming(), clone, framing.crc, &tx)
        });
    }
    if let Some(addr) = args.tcp_connect {
        info!(%addr, crc = ?framing.crc, "COBS/R framing on TCP (connecting)");
        spawn_tcp_connect(addr, framing.crc, &tx);
    }
    drop(tx);

    // Each stream's writer and framing state (its first frame gets a leading delimiter).
    type Streams = HashMap<usize, (Box<dyn Write + Send>, serial::Sender)>;
    let streams: Arc<Mutex<Streams>> = Arc::default();
    let mut routes: HashMap<u8, Peer> = HashMap::new();
    let send = |peer: Peer, frame: &[u8]| match peer {
        Peer::Udp(addr) => {
            if let Some(Err(e)) = udp.as_ref().map(|sock| sock.send_to(frame, addr)) {
                warn!(%addr, error = %e, "UDP send failed");
            }
        }
        Peer::Stream(id) => {
            let mut streams = streams.lock().unwrap_or_else(|p| p.into_inner());
            let Some((w, sender)) = streams.get_mut(&id) else {
                return;
            };
            let Ok(bytes) = sender.frame(frame) else {
                warn!(stream = id, "empty frame not sent");
                return;
            };
            let out: Vec<u8> = bytes.collect();
            if w.write_all(&out).is_err() || w.flush().is_err() {
                sender.interrupted();
                warn!(stream = id, "stream write failed");
            }
        }
    };
    let mut last_report = Instant::now();
    loop {
        let wait = core
            .poll_timeout()
            .map_or(Duration::from_millis(100), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(Input::Frame(peer, frame)) => {
                let out = core.handle_frame(Instant::now(), &frame);
                if let Some(cid) = core.last_rx_cid() {
                    routes.insert(cid, peer);
                }
                for t in out {
                    send(peer, &t.frame);
                }
            }
            Ok(Input::StreamOpened(id, w)) => {
                streams
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, (w, serial::Sender::new(framing)));
            }
            Ok(Input::StreamClosed(id)) => {
                streams
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                debug!(stream = id, "stream closed");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if args.udp.is_none() && args.unix.is_none() && args.udp_plain.is_none() {
                    info!("all links closed: exiting");
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for t in core.poll(Instant::now()) {
            match routes.get(&t.cid) {
                Some(peer) => send(*peer, &t.frame),
                None => debug!(cid = t.cid, "no route to session yet: notification held"),
            }
        }
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            for op in [
                Op::Handshake,
                Op::Login,
                Op::Token,
                Op::Join,
                Op::Send,
                Op::Observe,
                Op::Notification,
                Op::Other,
                Op::Rejected,
            ] {
                let b = core.bytes(op);
                if b != Default::default() {
                    info!(
                        ?op,
                        air_in = b.air_in,
                        air_out = b.air_out,
                        http_out = b.http_out,
                        http_in = b.http_in,
                        "bytes so far"
                    );
                }
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::GatewayArgs;

    fn from_toml(name: &str, text: &str) -> anyhow::Result<GatewayArgs> {
        let path =
            std::env::temp_dir().join(format!("trickle-gw-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let r = GatewayArgs {
            config: Some(path.clone()),
            ..GatewayArgs::default()
        }
        .merge_file();
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn frame_crc_from_the_config_file() {
        assert!(from_toml("on", "frame_crc = true\n").unwrap().frame_crc);
        assert!(!from_toml("off", "frame_crc = false\n").unwrap().frame_crc);
        assert!(!from_toml("unset", "stdio = true\n").unwrap().frame_crc);
        let e = from_toml("bad", "frame_crc = 1\n").unwrap_err();
        assert!(
            e.to_string().contains("`frame_crc` must be true or false"),
            "{e}"
        );
        // The flag wins over the file.
        let path =
            std::env::temp_dir().join(format!("trickle-gw-{}-flag.toml", std::process::id()));
        std::fs::write(&path, "frame_crc = false\n").unwrap();
        let args = GatewayArgs {
            config: Some(path.clone()),
            frame_crc: true,
            ..GatewayArgs::default()
        }
        .merge_file()
        .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(args.frame_crc);
    }
}
