//! `trickle-gprs` against the simulated modem (`trickle_tests::modem_sim`), which carries the
//! datagrams over real UDP sockets on 127.0.0.1 to a peer here: bring-up with a boot delay,
//! echo on, a SIM PIN and slow registration; datagrams both ways; network loss and reconnect;
//! and the exact UART overhead of one 32-byte frame each way.

use std::net::UdpSocket;
use std::time::Duration;

use trickle_core::link::FrameLink;
use trickle_gprs::{Config, Dialect, Error, GprsLink, Timeouts};
use trickle_tests::modem_sim::{ModemConfig, SimModem, SimUart, StdClock};

const TIMEOUTS: Timeouts = Timeouts {
    power_up_ms: 5_000,
    at_retry_ms: 100,
    command_ms: 2_000,
    registration_ms: 10_000,
    poll_ms: 50,
    context_ms: 5_000,
    open_ms: 5_000,
    send_ms: 2_000,
};

struct Rig {
    modem: SimModem,
    link: GprsLink<'static, SimUart, StdClock>,
    peer: UdpSocket,
}

fn rig(dialect: Dialect, pin: Option<&'static str>) -> Rig {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = peer.local_addr().unwrap().port();
    let mut mc = ModemConfig::new(dialect);
    mc.pin = pin.map(str::to_owned);
    mc.power_up_ms = 300;
    mc.searching_polls = 3;
    let (modem, uart) = SimModem::start(mc);
    let mut config = Config::new(dialect, "internet", "127.0.0.1", port);
    config.pin = pin;
    config.timeouts = TIMEOUTS;
    let link = GprsLink::new(uart, StdClock::new(), config);
    Rig { modem, link, peer }
}

/// Polls `receive` until a datagram arrives (or 5 s pass).
fn recv(
    link: &mut GprsLink<'static, SimUart, StdClock>,
) -> Result<Vec<u8>, Error<core::convert::Infallible>> {
    let mut buf = [0u8; 256];
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(n) = link.receive(&mut buf)? {
            return Ok(buf[..n].to_vec());
        }
        assert!(std::time::Instant::now() < end, "no datagram within 5 s");
    }
}

#[test]
fn both_dialects_carry_datagrams_and_survive_network_loss() {
    for dialect in [Dialect::Sim800, Dialect::Bg96] {
        let mut r = rig(dialect, Some("4321"));
        r.link.connect().expect("bring-up");
        let cmds = r.modem.stats().commands;
        assert!(cmds.iter().any(|c| c == "AT+CPIN=\"4321\""), "{cmds:?}");
        assert!(
            cmds.iter().filter(|c| c.ends_with("REG?")).count() >= 4,
            "{cmds:?}"
        );

        // Up: one datagram per transmit, byte for byte.
        let frame: Vec<u8> = (0..=255u8).collect();
        r.link.transmit(&frame[..255]).unwrap();
        let mut buf = [0u8; 512];
        let (n, from) = r.peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &frame[..255]);
        // Down: two datagrams in a row arrive separately and in order.
        r.peer.send_to(b"\r\nOK\r\n", from).unwrap();
        r.peer.send_to(&frame[..200], from).unwrap();
        assert_eq!(recv(&mut r.link).unwrap(), b"\r\nOK\r\n");
        assert_eq!(recv(&mut r.link).unwrap(), &frame[..200]);

        // The network goes away: reported once, then the next transmit reconnects and the
        // datagram arrives exactly once, from a new socket.
        r.modem.lose_network();
        assert_eq!(recv(&mut r.link), Err(Error::NetworkLost), "{dialect:?}");
        assert!(!r.link.is_connected());
        r.link.transmit(b"after").unwrap();
        let (n, from2) = r.peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
        assert_ne!(from, from2, "a new socket after the loss");
        r.peer
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        assert!(r.peer.recv_from(&mut buf).is_err(), "sent exactly once");
        r.peer.send_to(b"back", from2).unwrap();
        assert_eq!(recv(&mut r.link).unwrap(), b"back");
        let s = r.modem.stats();
        assert_eq!(
            (s.datagrams_up, s.datagrams_down, s.sockets_opened),
            (2, 3, 2)
        );
        let l = r.link.stats();
        assert_eq!((l.connects, l.losses, l.datagrams_sent), (2, 1, 2));
    }
}

#[test]
fn uart_overhead_of_one_32_byte_frame() {
    // (dialect, bytes on the UART around one 32-byte frame sent, around one received)
    let expected = [
        // AT+CIPSEND=32<CR> 14 + <CR><LF>> 4 + <CR><LF>SEND OK<CR><LF> 11.
        // <CR><LF>+IPD,32: 10.
        (Dialect::Sim800, 29, 10),
        // AT+QISEND=0,32<CR> 15 + 4 + 11.
        // <CR><LF>+QIURC: "recv",0<CR><LF> 20 + AT+QIRD=0,1500<CR> 15 + <CR><LF>+QIRD: 32<CR><LF>
        // 13 + <CR><LF><CR><LF>OK<CR><LF> 8 + AT+QIRD=0,1500<CR> 15 +
        // <CR><LF>+QIRD: 0<CR><LF><CR><LF>OK<CR><LF> 18.
        (Dialect::Bg96, 30, 89),
    ];
    for (dialect, up, down) in expected {
        let mut r = rig(dialect, None);
        r.link.connect().unwrap();
        let bring_up = r.link.stats();
        println!(
            "{dialect:?}: bring-up {} B to the modem, {} B from it",
            bring_up.uart_tx_bytes, bring_up.uart_rx_bytes
        );
        let s0 = r.link.stats();
        r.link.transmit(&[0x55; 32]).unwrap();
        let mut buf = [0u8; 64];
        let (_, from) = r.peer.recv_from(&mut buf).unwrap();
        let s1 = r.link.stats();
        let sent = (s1.uart_tx_bytes + s1.uart_rx_bytes) - (s0.uart_tx_bytes + s0.uart_rx_bytes);
        r.peer.send_to(&[0xAA; 32], from).unwrap();
        assert_eq!(recv(&mut r.link).unwrap(), [0xAA; 32]);
        // BG96: the read that finds the buffer empty (re-arming the URC).
        let mut b = [0u8; 64];
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(r.link.receive(&mut b), Ok(None));
        let s2 = r.link.stats();
        let received =
            (s2.uart_tx_bytes + s2.uart_rx_bytes) - (s1.uart_tx_bytes + s1.uart_rx_bytes);
        println!(
            "{dialect:?}: 32-byte frame up: {sent} B on the UART ({} overhead); down: {received} B ({} overhead)",
            sent - 32,
            received - 32
        );
        assert_eq!((sent - 32, received - 32), (up, down), "{dialect:?}");
    }
}

#[test]
fn wrong_pin_and_silent_modem_are_errors_not_hangs() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = peer.local_addr().unwrap().port();
    let mut mc = ModemConfig::new(Dialect::Bg96);
    mc.pin = Some("1111".into());
    let (_modem, uart) = SimModem::start(mc);
    let mut config = Config::new(Dialect::Bg96, "internet", "127.0.0.1", port);
    config.pin = Some("2222");
    config.timeouts = TIMEOUTS;
    let mut link: GprsLink<'_, _, _> = GprsLink::new(uart, StdClock::new(), config);
    assert_eq!(
        link.connect(),
        Err(Error::Sim(trickle_gprs::SimProblem::PinRejected))
    );

    // A modem that never boots within the power-up timeout.
    let mut mc = ModemConfig::new(Dialect::Sim800);
    mc.power_up_ms = 60_000;
    let (_modem, uart) = SimModem::start(mc);
    let mut config = Config::new(Dialect::Sim800, "internet", "127.0.0.1", port);
    config.timeouts = TIMEOUTS;
    config.timeouts.power_up_ms = 800;
    let mut link: GprsLink<'_, _, _> = GprsLink::new(uart, StdClock::new(), config);
    let t = std::time::Instant::now();
    assert_eq!(
        link.connect(),
        Err(Error::Timeout(trickle_gprs::Step::PowerUp))
    );
    assert!(t.elapsed() < Duration::from_secs(3));
}
