//! The links against an in-memory UART: byte-exact output, non-blocking polled receive,
//! resynchronisation, counters, errors, and interoperation with the core's framing (which the
//! gateway uses).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;
use trickle_core::link::{AsyncFrameLink, FrameLink};
use trickle_core::wire::serial as framing;
use trickle_serial::{AsyncSerialLink, Config, Crc, Error, SerialLink};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UartError {
    /// `read` was called with nothing waiting: a real driver would have blocked.
    WouldBlock,
    Broken,
}

impl embedded_io::Error for UartError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// An in-memory UART: `rx` holds bytes that arrived on the line, `tx` what was written.
/// Reads and writes move at most `chunk` bytes per call, as interrupt-driven drivers do.
#[derive(Debug, Default)]
struct MemUart {
    rx: VecDeque<u8>,
    tx: Vec<u8>,
    chunk: usize,
    /// Accept this many more written bytes, then write 0 (`None`: unlimited).
    write_budget: Option<usize>,
    broken: bool,
    reads: usize,
    /// Async: pretend nothing has arrived for this many polls of `read`.
    pending_polls: usize,
}

impl MemUart {
    fn new(chunk: usize) -> Self {
        Self {
            chunk,
            ..Self::default()
        }
    }

    fn arrive(&mut self, bytes: &[u8]) {
        self.rx.extend(bytes);
    }
}

impl embedded_io::ErrorType for MemUart {
    type Error = UartError;
}

impl embedded_io::Read for MemUart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        self.reads += 1;
        if self.broken {
            return Err(UartError::Broken);
        }
        if self.rx.is_empty() {
            return Err(UartError::WouldBlock);
        }
        let n = buf.len().min(self.chunk).min(self.rx.len());
        for slot in &mut buf[..n] {
            *slot = self.rx.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for MemUart {
    fn read_ready(&mut self) -> Result<bool, UartError> {
        if self.broken {
            return Err(UartError::Broken);
        }
        Ok(!self.rx.is_empty())
    }
}

impl embedded_io::Write for MemUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, UartError> {
        if self.broken {
            return Err(UartError::Broken);
        }
        let mut n = buf.len().min(self.chunk);
        if let Some(budget) = &mut self.write_budget {
            n = n.min(*budget);
            *budget -= n;
        }
        self.tx.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), UartError> {
        Ok(())
    }
}

impl embedded_io_async::Read for MemUart {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        while self.pending_polls > 0 {
            self.pending_polls -= 1;
            YieldOnce(false).await;
        }
        if self.rx.is_empty() {
            // The line is idle and stays so: a real driver would wait forever.
            return Ok(0);
        }
        embedded_io::Read::read(self, buf)
    }
}

impl embedded_io_async::Write for MemUart {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, UartError> {
        YieldOnce(false).await;
        embedded_io::Write::write(self, buf)
    }
}

/// A future that is pending once.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A minimal executor: polls `f` until it completes (the in-memory UART wakes at once).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("future did not complete");
}

const CRC: Config = Config::new().with_crc(Crc::X25);

/// The gateway side: the core's framing.
fn gateway_encode(frame: &[u8], config: Config, lead: bool) -> Vec<u8> {
    let c = framing::Config {
        crc: config.crc,
        leading_delimiter: config.leading_delimiter,
    };
    framing::Encoded::new(frame, &c, lead).unwrap().collect()
}

fn gateway_decode(bytes: &[u8], crc: Crc) -> Vec<Result<Vec<u8>, framing::Error>> {
    let mut dec = framing::Decoder::<512>::new(crc);
    bytes
        .iter()
        .filter_map(|&b| dec.push(b).map(|r| r.map(<[u8]>::to_vec)))
        .collect()
}

#[test]
fn transmit_is_byte_exact() {
    let mut link: SerialLink<_, 255> = SerialLink::new(MemUart::new(4), CRC);
    assert_eq!(link.max_frame_len(), 255);
    link.transmit(b"123456789").unwrap();
    link.transmit(b"123456789").unwrap();
    // FCS 6E 90 appended; final block reduced (90 ≥ 0C); a leading 00 before the first frame
    // only.
    let one = [
        0x90, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x6E, 0x00,
    ];
    let mut want = vec![0x00];
    want.extend_from_slice(&one);
    want.extend_from_slice(&one);
    assert_eq!(link.uart_mut().tx, want);
    assert_eq!(link.stats().sent, 2);

    let mut link: SerialLink<_, 255> = SerialLink::new(MemUart::new(64), Config::default());
    link.transmit(&[0x11, 0x22, 0x00, 0x33]).unwrap();
    assert_eq!(link.release().tx, [0x00, 0x03, 0x11, 0x22, 0x33, 0x00]);

    let every = Config::default().with_leading_delimiter(true);
    let mut link: SerialLink<_, 255> = SerialLink::new(MemUart::new(64), every);
    link.transmit(&[0x01]).unwrap();
    link.transmit(&[0x01]).unwrap();
    assert_eq!(link.release().tx, [0, 2, 1, 0, 0, 2, 1, 0]);
}

#[test]
fn long_frames_cross_staging_chunks() {
    // 255-byte frames are written in several chunks and split in arbitrary reads.
    let frame: Vec<u8> = (0..=254u8).collect();
    let mut a: SerialLink<_, 255> = SerialLink::new(MemUart::new(7), CRC);
    a.transmit(&frame).unwrap();
    let wire = a.release().tx;
    assert_eq!(gateway_decode(&wire, Crc::X25), [Ok(frame.clone())]);
    let mut b: SerialLink<_, 255> = SerialLink::new(MemUart::new(5), CRC);
    b.uart_mut().arrive(&wire);
    let mut buf = [0u8; 255];
    assert_eq!(b.receive(&mut buf), Ok(Some(255)));
    assert_eq!(buf.to_vec(), frame);
}

#[test]
fn receive_never_blocks() {
    let mut link: SerialLink<_, 64> = SerialLink::new(MemUart::new(3), Config::default());
    let mut buf = [0u8; 64];
    // Nothing waiting: no read at all (the mock would report WouldBlock).
    assert_eq!(link.receive(&mut buf), Ok(None));
    assert_eq!(link.uart_mut().reads, 0);
    // Half a frame: consumed, no frame yet.
    let wire = gateway_encode(b"hello, device", Config::default(), true);
    link.uart_mut().arrive(&wire[..6]);
    assert_eq!(link.receive(&mut buf), Ok(None));
    assert!(link.uart_mut().rx.is_empty());
    link.uart_mut().arrive(&wire[6..]);
    assert_eq!(link.receive(&mut buf), Ok(Some(13)));
    assert_eq!(&buf[..13], b"hello, device");
    assert_eq!(link.receive(&mut buf), Ok(None));
}

#[test]
fn frames_read_together_come_out_one_per_call() {
    // Three frames arrive in one big read: the 2nd and 3rd come from the link's staging
    // buffer even though the UART has nothing more.
    let mut link: SerialLink<_, 64> = SerialLink::new(MemUart::new(32), CRC);
    let mut wire = Vec::new();
    for f in [&b"a1"[..], b"b22", b"c333"] {
        wire.extend(gateway_encode(f, CRC, false));
    }
    assert!(wire.len() <= 32);
    link.uart_mut().arrive(&wire);
    let mut buf = [0u8; 64];
    assert_eq!(link.receive(&mut buf), Ok(Some(2)));
    assert!(link.uart_mut().rx.is_empty());
    assert_eq!(link.receive(&mut buf), Ok(Some(3)));
    assert_eq!(&buf[..3], b"b22");
    assert_eq!(link.receive(&mut buf), Ok(Some(4)));
    assert_eq!(&buf[..4], b"c333");
    assert_eq!(link.receive(&mut buf), Ok(None));
    assert_eq!(link.stats().frames, 3);
}

#[test]
fn damaged_input_is_counted_and_the_next_frame_arrives() {
    let mut link: SerialLink<_, 16> = SerialLink::new(MemUart::new(8), CRC);
    let good = gateway_encode(b"good frame", CRC, false);
    let mut wire = Vec::new();
    // Line noise (ends at the next delimiter: a bad CRC).
    wire.extend_from_slice(&[0x37, 0xF1, 0x02]);
    wire.push(0);
    // A frame with a flipped bit.
    let mut flipped = good.clone();
    flipped[3] ^= 0x10;
    wire.extend(flipped);
    // An overlong frame (17 bytes > N = 16).
    wire.extend(gateway_encode(&[0x55; 17], CRC, false));
    // A runt (one decoded byte).
    wire.extend_from_slice(&[0x02, 0x09, 0x00]);
    // A frame cut off by the sender's reset, then the restarted sender's first frame.
    wire.extend_from_slice(&good[..5]);
    wire.extend(gateway_encode(b"good frame", CRC, true));
    link.uart_mut().arrive(&wire);
    let mut buf = [0u8; 16];
    assert_eq!(link.receive(&mut buf), Ok(Some(10)));
    assert_eq!(&buf[..10], b"good frame");
    assert_eq!(link.receive(&mut buf), Ok(None));
    let s = link.stats();
    assert_eq!((s.bad_crc, s.overlong, s.runt, s.frames), (3, 1, 1, 1));
    assert_eq!(s.dropped(), 5);
}

#[test]
fn frame_bigger_than_the_buffer_is_dropped_and_reported() {
    let mut link: SerialLink<_, 64> = SerialLink::new(MemUart::new(64), Config::default());
    let mut wire = gateway_encode(&[7; 20], Config::default(), false);
    wire.extend(gateway_encode(&[8; 4], Config::default(), false));
    link.uart_mut().arrive(&wire);
    let mut small = [0u8; 8];
    assert_eq!(
        link.receive(&mut small),
        Err(Error::BufferTooSmall { required: 20 })
    );
    assert_eq!(link.receive(&mut small), Ok(Some(4)));
    assert_eq!(small[..4], [8; 4]);
    assert_eq!(link.stats().too_big_for_buffer, 1);
}

#[test]
fn transmit_errors() {
    let mut link: SerialLink<_, 8> = SerialLink::new(MemUart::new(64), Config::default());
    assert_eq!(link.transmit(&[1; 9]), Err(Error::FrameTooLong { max: 8 }));
    assert_eq!(link.transmit(&[]), Err(Error::EmptyFrame));
    assert!(link.uart_mut().tx.is_empty());
    // The driver stops accepting bytes in the middle of a frame: reported, no panic; the next
    // frame gets a leading delimiter so the receiver drops only the cut-off one.
    link.uart_mut().write_budget = Some(2);
    assert_eq!(link.transmit(&[1, 2, 3, 4]), Err(Error::WriteZero));
    link.uart_mut().write_budget = None;
    link.transmit(&[5, 6]).unwrap();
    let wire = link.uart_mut().tx.clone();
    assert_eq!(wire, [0x00, 0x05, 0x00, 0x06, 0x05, 0x00]);
    // Without a CRC the cut-off frame's remains (`05`) decode as a 1-byte frame, which the
    // pipe rejects; the next frame is intact.
    assert_eq!(
        gateway_decode(&wire, Crc::None),
        [Ok(vec![5]), Ok(vec![5, 6])]
    );
    link.uart_mut().broken = true;
    assert_eq!(link.transmit(&[1]), Err(Error::Uart(UartError::Broken)));
    let mut buf = [0u8; 8];
    assert_eq!(link.receive(&mut buf), Err(Error::Uart(UartError::Broken)));
    assert_eq!(link.stats().sent, 1);
}

#[test]
fn async_link_round_trip_with_the_gateway_framing() {
    let mut link: AsyncSerialLink<_, 255> = AsyncSerialLink::new(MemUart::new(5), CRC);
    assert_eq!(AsyncFrameLink::max_frame_len(&link), 255);
    block_on(link.transmit(b"123456789")).unwrap();
    let tx = std::mem::take(&mut link.uart_mut().tx);
    assert_eq!(tx, gateway_encode(b"123456789", CRC, true));
    // Bytes arrive in pieces, with the driver pending in between; noise first.
    let mut wire = vec![0x12, 0x34, 0x00];
    wire.extend(gateway_encode(b"from the gateway", CRC, false));
    wire.extend(gateway_encode(b"second", CRC, false));
    link.uart_mut().arrive(&wire);
    link.uart_mut().pending_polls = 3;
    let mut buf = [0u8; 255];
    assert_eq!(block_on(link.receive(&mut buf)), Ok(16));
    assert_eq!(&buf[..16], b"from the gateway");
    assert_eq!(block_on(link.receive(&mut buf)), Ok(6));
    assert_eq!(
        link.stats().runt,
        1,
        "the noise decodes to 2 bytes: too short for a CRC"
    );
    // Idle line that ends: reported, not a hang.
    assert_eq!(block_on(link.receive(&mut buf)), Err(Error::EndOfStream));
    assert_eq!(
        block_on(link.transmit(&[0; 256])),
        Err(Error::FrameTooLong { max: 255 })
    );
    link.uart_mut().write_budget = Some(0);
    assert_eq!(block_on(link.transmit(&[1])), Err(Error::WriteZero));
}

proptest! {
    /// Device link → wire → gateway framing, and gateway framing → wire → device link, over
    /// random frames, chunk sizes and options.
    #[test]
    fn round_trip_both_directions(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..=255), 1..5),
        chunk in 1usize..40, crc in any::<bool>(), lead in any::<bool>()) {
        let config = Config::new()
            .with_crc(if crc { Crc::X25 } else { Crc::None })
            .with_leading_delimiter(lead);
        let mut dev: SerialLink<_, 255> = SerialLink::new(MemUart::new(chunk), config);
        for f in &frames {
            dev.transmit(f).unwrap();
        }
        let wire = std::mem::take(&mut dev.uart_mut().tx);
        let got: Vec<Vec<u8>> = gateway_decode(&wire, config.crc).into_iter().map(Result::unwrap).collect();
        prop_assert_eq!(&got, &frames);

        let mut first = true;
        for f in &frames {
            let bytes = gateway_encode(f, config, first);
            first = false;
            dev.uart_mut().arrive(&bytes);
        }
        let mut buf = [0u8; 255];
        for f in &frames {
            let n = dev.receive(&mut buf).unwrap();
            prop_assert_eq!(n.map(|n| buf[..n].to_vec()), Some(f.clone()));
        }
        prop_assert_eq!(dev.receive(&mut buf).unwrap(), None);
    }

    /// Arbitrary bytes on the line never make the link panic or return an error, and the next
    /// frame sent with a leading delimiter is received intact.
    #[test]
    fn arbitrary_input_then_a_good_frame(
        noise in proptest::collection::vec(any::<u8>(), 0..600),
        frame in proptest::collection::vec(any::<u8>(), 1..=64),
        chunk in 1usize..40, crc in any::<bool>()) {
        let config = Config::new().with_crc(if crc { Crc::X25 } else { Crc::None });
        let mut link: SerialLink<_, 64> = SerialLink::new(MemUart::new(chunk), config);
        link.uart_mut().arrive(&noise);
        let mut buf = [0u8; 64];
        while let Some(n) = link.receive(&mut buf).unwrap() {
            prop_assert!((1..=64).contains(&n));
        }
        link.uart_mut().arrive(&gateway_encode(&frame, config, true));
        let mut last = None;
        while let Some(n) = link.receive(&mut buf).unwrap() {
            last = Some(buf[..n].to_vec());
        }
        prop_assert_eq!(last, Some(frame));
    }
}
