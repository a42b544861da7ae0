//! A byte-counting TCP relay: put it between an HTTP client and a server to count exactly the
//! bytes each direction carries (request line + headers + body, and the same for responses), and
//! the TCP segments the kernel exchanged with the client for them (`TCP_INFO`), so that the
//! client's traffic can also be counted as IP packets.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result};

/// IPv4 header without options.
pub const IPV4_HEADER: u64 = 20;
/// TCP header without options.
pub const TCP_HEADER: u64 = 20;
/// The TCP timestamps option (RFC 7323) as Linux sends it on every segment once negotiated:
/// 10 bytes padded to 12 with two NOPs.
pub const TCP_TIMESTAMPS: u64 = 12;

/// Bytes counted since the last [`ByteTap::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bytes {
    /// Client → server, TCP payload.
    pub up: u64,
    /// Server → client, TCP payload.
    pub down: u64,
    /// TCP segments the client sent to the relay (data, pure ACKs, SYN, FIN).
    pub segments_up: u64,
    /// TCP segments the relay sent to the client.
    pub segments_down: u64,
    /// IPv4 and TCP headers of those segments: `IPV4_HEADER + TCP_HEADER`, plus
    /// `TCP_TIMESTAMPS` on connections that negotiated timestamps. SYN options beyond the
    /// timestamps (MSS, SACK-permitted, window scale: 8 bytes per SYN) are not counted.
    pub header_bytes: u64,
}

impl Bytes {
    /// TCP payload, both directions.
    pub fn total(&self) -> u64 {
        self.up + self.down
    }

    /// The same traffic as IPv4 packets: payload plus every segment's IP and TCP header.
    pub fn as_ip_packets(&self) -> u64 {
        self.total() + self.header_bytes
    }
}

/// One relayed client connection, and the segment counts already reported for it.
#[derive(Debug)]
struct Conn {
    client: TcpStream,
    segs_in: u32,
    segs_out: u32,
}

/// A relay from a local port to `upstream`, counting bytes. The relay threads end when their
/// connections close; the listener thread lives as long as the process (tests only). The relay
/// keeps a handle on each client socket so that its segment counters stay readable after it
/// closed.
#[derive(Debug)]
pub struct ByteTap {
    addr: SocketAddr,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<Conn>>>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, counter: Arc<AtomicU64>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Count before forwarding: once the peer has seen the bytes, they are counted.
                counter.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl ByteTap {
    /// Starts a relay on 127.0.0.1 (ephemeral port) to `upstream`.
    pub fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the byte tap")?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (u, d, registry) = (up.clone(), down.clone(), conns.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (c2, c3, s2) =
                    match (client.try_clone(), client.try_clone(), server.try_clone()) {
                        (Ok(c), Ok(c3), Ok(s)) => (c, c3, s),
                        _ => continue,
                    };
                if let Ok(mut list) = registry.lock() {
                    list.push(Conn {
                        client: c3,
                        segs_in: 0,
                        segs_out: 0,
                    });
                }
                let (u, d) = (u.clone(), d.clone());
                thread::spawn(move || pump(client, server, u));
                thread::spawn(move || pump(s2, c2, d));
            }
        });
        Ok(Self {
            addr,
            up,
            down,
            conns,
        })
    }

    /// The relay's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<relay address>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bytes and segments counted since the last call, and resets the counters.
    ///
    /// Segments are read from the kernel (`TCP_INFO`) on the client side of each relayed
    /// connection. A segment still in flight (a delayed ACK) is counted by the next call.
    ///
    /// # Panics
    /// If the kernel does not report segment counts (Linux before 4.2): the count would
    /// otherwise be silently wrong.
    pub fn take(&self) -> Bytes {
        let mut b = Bytes {
            up: self.up.swap(0, Ordering::SeqCst),
            down: self.down.swap(0, Ordering::SeqCst),
            ..Bytes::default()
        };
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for c in conns.iter_mut() {
            let info = tcp_info::segments(&c.client).expect("TCP_INFO segment counts");
            let seg_in = u64::from(info.segs_in.wrapping_sub(c.segs_in));
            let seg_out = u64::from(info.segs_out.wrapping_sub(c.segs_out));
            c.segs_in = info.segs_in;
            c.segs_out = info.segs_out;
            let per_segment =
                IPV4_HEADER + TCP_HEADER + if info.timestamps { TCP_TIMESTAMPS } else { 0 };
            b.segments_up += seg_in;
            b.segments_down += seg_out;
            b.header_bytes += (seg_in + seg_out) * per_segment;
        }
        b
    }
}

/// `getsockopt(TCP_INFO)`, the one place of this crate that calls into libc.
#[allow(unsafe_code)]
mod tcp_info {
    use std::io;
    use std::mem::{MaybeUninit, offset_of, size_of};
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    /// `TCPI_OPT_TIMESTAMPS` of `<linux/tcp.h>`.
    const TCPI_OPT_TIMESTAMPS: u8 = 1;

    /// What the relay needs of `struct tcp_info`.
    pub struct Segments {
        pub segs_in: u32,
        pub segs_out: u32,
        pub timestamps: bool,
    }

    pub fn segments(stream: &TcpStream) -> io::Result<Segments> {
        let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: the fd is open for the lifetime of `stream`; the kernel writes at most `len`
        // bytes into `info`, which is exactly `len` bytes long and owned by this frame.
        let r = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel fills a prefix of the struct (older kernels know fewer fields).
        let needed = offset_of!(libc::tcp_info, tcpi_segs_in) + size_of::<u32>();
        if (len as usize) < needed {
            return Err(io::Error::other(format!(
                "TCP_INFO of {len} bytes has no segment counts (needs {needed})"
            )));
        }
        // SAFETY: `tcp_info` is plain integers, so the zeroed value is valid, and the kernel
        // overwrote a prefix of it with integers.
        let info = unsafe { info.assume_init() };
        Ok(Segments {
            segs_in: info.tcpi_segs_in,
            segs_out: info.tcpi_segs_out,
            timestamps: info.tcpi_options & TCPI_OPT_TIMESTAMPS != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay to a one-shot echo server: payload counted exactly, and at least the segments
    /// that carried it (handshake, one data segment each way, their ACKs may be delayed).
    #[test]
    fn counts_payload_and_segments() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = server.local_addr().unwrap();
        let echo = thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf[..3]).unwrap();
        });
        let tap = ByteTap::start(upstream).unwrap();
        let mut c = TcpStream::connect(tap.addr()).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 3];
        c.read_exact(&mut back).unwrap();
        echo.join().unwrap();
        assert_eq!(&back, b"hel");
        let b = tap.take();
        assert_eq!((b.up, b.down), (5, 3));
        // Client → relay: at least the final handshake ACK and the data segment.
        assert!(b.segments_up >= 2, "{b:?}");
        // Relay → client: at least SYN-ACK and the data segment.
        assert!(b.segments_down >= 2, "{b:?}");
        // Linux negotiates timestamps on loopback by default; either way the headers are
        // whole per-segment sizes.
        let segs = b.segments_up + b.segments_down;
        assert!(
            b.header_bytes == segs * 40 || b.header_bytes == segs * 52,
            "{b:?}"
        );
        assert_eq!(b.as_ip_packets(), 8 + b.header_bytes);
        // Nothing new: nothing counted.
        let again = tap.take();
        assert_eq!((again.up, again.down), (0, 0));
    }
}
