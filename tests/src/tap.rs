//! A byte-counting TCP relay: put it between an HTTP client and a server to count exactly the
//! bytes each direction carries (request line + headers + body, and the same for responses).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use anyhow::{Context, Result};

/// Bytes counted since the last [`ByteTap::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bytes {
    /// Client → server.
    pub up: u64,
    /// Server → client.
    pub down: u64,
}

impl Bytes {
    /// Both directions.
    pub fn total(&self) -> u64 {
        self.up + self.down
    }
}

/// A relay from a local port to `upstream`, counting bytes. The relay threads end when their
/// connections close; the listener thread lives as long as the process (tests only).
#[derive(Debug)]
pub struct ByteTap {
    addr: SocketAddr,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
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
        let (u, d) = (up.clone(), down.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                let (u, d) = (u.clone(), d.clone());
                thread::spawn(move || pump(client, server, u));
                thread::spawn(move || pump(s2, c2, d));
            }
        });
        Ok(Self { addr, up, down })
    }

    /// The relay's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<relay address>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bytes counted since the last call, and resets the counters.
    pub fn take(&self) -> Bytes {
        Bytes {
            up: self.up.swap(0, Ordering::SeqCst),
            down: self.down.swap(0, Ordering::SeqCst),
        }
    }
}
