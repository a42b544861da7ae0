//! Trickle over a cellular modem: one Trickle frame is one UDP datagram, carried by an
//! AT-command modem on a UART.
//!
//! [`GprsLink`] implements [`trickle_core::link::FrameLink`] over any UART that implements
//! `embedded_io::{Read, Write, ReadReady}` and a [`trickle_core::link::Clock`]. It speaks two
//! dialects ([`Dialect`]):
//!
//! - [`Dialect::Sim800`]: SIMCom SIM800 / SIM900 class GPRS modems (SIM800 Series AT Command
//!   Manual V1.09: `AT+CSTT`, `AT+CIICR`, `AT+CIFSR`, `AT+CIPSTART`, `AT+CIPSEND`, received
//!   datagrams pushed as `+IPD,<len>:<data>` after `AT+CIPHEAD=1`).
//! - [`Dialect::Bg96`]: Quectel BG96 class LTE-M / NB-IoT modems (BG96 TCP/IP AT Commands
//!   Manual V1.0: `AT+QICSGP`, `AT+QIACT`, `AT+QIOPEN`, `AT+QISEND`, buffer access mode with
//!   `+QIURC: "recv",0` and `AT+QIRD`).
//!
//! The driver is `no_std`, allocates nothing and never panics on what the modem sends: the
//! [`parser`] has fixed buffers and drops what does not fit. Every wait is bounded by a
//! timeout of [`Timeouts`]. It never retransmits a datagram by itself: a frame whose `SEND OK`
//! did not come is reported as an error, and retransmission is the client's decision (CoAP
//! message IDs let the gateway recognise a repeat), so no datagram is silently duplicated.
//!
//! Network loss (`+PDP: DEACT` / `CLOSED`, `+QIURC: "pdpdeact"` / `"closed"`, a send refused)
//! takes the link down. [`FrameLink::receive`](trickle_core::link::FrameLink::receive) reports it once as [`Error::NetworkLost`];
//! the next [`FrameLink::transmit`](trickle_core::link::FrameLink::transmit) brings the context and the socket back by itself before it
//! sends, and [`GprsLink::connect`] does the same on demand (an idle device that only listens
//! calls it).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod parser;

mod modem;

pub use modem::{GprsLink, Stats, pulse_pwrkey};

use core::fmt;

/// The AT dialect of the modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Dialect {
    /// SIMCom SIM800 class GPRS modem (2G).
    Sim800,
    /// Quectel BG96 class LTE-M / NB-IoT modem.
    Bg96,
}

/// How long the driver waits, in milliseconds. The defaults are the maximum response times of
/// the manuals (rounded up), so a healthy modem never times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timeouts {
    /// From the first `AT` until the modem answers `OK` and the SIM is ready.
    pub power_up_ms: u32,
    /// Between two `AT` probes while the modem boots.
    pub at_retry_ms: u32,
    /// An ordinary command (`ATE0`, `AT+CPIN?`, `AT+CIPHEAD`, `AT+QIRD`, …).
    pub command_ms: u32,
    /// Until the network registration reports "registered" (polled).
    pub registration_ms: u32,
    /// Between two registration polls.
    pub poll_ms: u32,
    /// Bringing the PDP context up (`AT+CIICR`: 85 s; `AT+QIACT`: 150 s).
    pub context_ms: u32,
    /// Opening the UDP socket (`AT+CIPSTART`: 160 s; `+QIOPEN`: 150 s).
    pub open_ms: u32,
    /// From `AT+CIPSEND`/`AT+QISEND` until `SEND OK`.
    pub send_ms: u32,
}

impl Timeouts {
    /// The manuals' maximum response times.
    pub const MANUAL: Timeouts = Timeouts {
        power_up_ms: 15_000,
        at_retry_ms: 500,
        command_ms: 5_000,
        registration_ms: 180_000,
        poll_ms: 1_000,
        context_ms: 160_000,
        open_ms: 160_000,
        send_ms: 10_000,
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::MANUAL
    }
}

/// What the driver needs to know: the dialect, the network and the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config<'a> {
    /// The modem's AT dialect.
    pub dialect: Dialect,
    /// Access point name of the operator.
    pub apn: &'a str,
    /// APN user name (often empty).
    pub user: &'a str,
    /// APN password (often empty).
    pub password: &'a str,
    /// The SIM PIN, if the SIM asks for one.
    pub pin: Option<&'a str>,
    /// The gateway's IP address or host name, as the modem resolves it.
    pub host: &'a str,
    /// The gateway's UDP port (`trickle gateway --udp`).
    pub port: u16,
    /// Timeouts.
    pub timeouts: Timeouts,
}

impl<'a> Config<'a> {
    /// A configuration with the manuals' timeouts, no PIN and no APN credentials.
    pub const fn new(dialect: Dialect, apn: &'a str, host: &'a str, port: u16) -> Self {
        Config {
            dialect,
            apn,
            user: "",
            password: "",
            pin: None,
            host,
            port,
            timeouts: Timeouts::MANUAL,
        }
    }
}

/// The step of the AT dialogue an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Step {
    /// `AT` probes while the modem boots.
    PowerUp,
    /// `ATE0`, `AT+CIPHEAD=1`.
    Setup,
    /// `AT+CPIN`.
    Sim,
    /// `AT+CGREG?` / `AT+CEREG?`.
    Registration,
    /// `AT+CIPSHUT`, `AT+CSTT`, `AT+CIICR`, `AT+CIFSR` / `AT+QIDEACT`, `AT+QICSGP`, `AT+QIACT`.
    Context,
    /// `AT+CIPSTART` / `AT+QIOPEN`.
    Socket,
    /// `AT+CIPSEND` / `AT+QISEND`.
    Send,
    /// `AT+QIRD`.
    Receive,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::PowerUp => "power-up",
            Step::Setup => "setup",
            Step::Sim => "SIM check",
            Step::Registration => "network registration",
            Step::Context => "PDP context",
            Step::Socket => "UDP socket",
            Step::Send => "send",
            Step::Receive => "receive",
        })
    }
}

/// What is wrong with the SIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SimProblem {
    /// The SIM asks for a PIN and [`Config::pin`] is `None`.
    PinRequired,
    /// The SIM refused the configured PIN.
    PinRejected,
    /// The SIM wants a PUK or another code the driver does not enter.
    Locked,
}

/// Errors of the driver, generic over the UART's error `E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The UART failed.
    Uart(E),
    /// The UART accepted no byte of a write (a HAL that returns `Ok(0)`).
    UartStalled,
    /// The modem did not answer in time.
    Timeout(Step),
    /// The modem answered `ERROR`, `+CME ERROR` or a failure code.
    Rejected(Step),
    /// The SIM is not usable.
    Sim(SimProblem),
    /// The network denied the registration (`+CGREG`/`+CEREG` status 3).
    RegistrationDenied,
    /// The network or the socket went away (PDP context deactivated, socket closed, send
    /// refused). The link is down until [`GprsLink::connect`] or the next transmit.
    NetworkLost,
    /// Caller misuse: the frame is longer than [`FrameLink::max_frame_len`](trickle_core::link::FrameLink::max_frame_len); nothing was sent.
    FrameTooLong {
        /// The largest frame the link carries.
        max: usize,
    },
    /// The received datagram does not fit the caller's buffer; it was dropped.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// Caller misuse: a configuration string contains `"` or a control character, or the host
    /// is empty, or the port is 0.
    InvalidConfig,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Uart(e) => write!(f, "UART error: {e:?}"),
            Error::UartStalled => f.write_str("UART accepted no bytes"),
            Error::Timeout(step) => write!(f, "modem timed out in {step}"),
            Error::Rejected(step) => write!(f, "modem refused {step}"),
            Error::Sim(SimProblem::PinRequired) => f.write_str("SIM needs a PIN, none configured"),
            Error::Sim(SimProblem::PinRejected) => f.write_str("SIM refused the PIN"),
            Error::Sim(SimProblem::Locked) => f.write_str("SIM locked (PUK or other code)"),
            Error::RegistrationDenied => f.write_str("network registration denied"),
            Error::NetworkLost => f.write_str("network or socket lost"),
            Error::FrameTooLong { max } => write!(f, "frame longer than {max} bytes"),
            Error::BufferTooSmall { required } => {
                write!(f, "datagram needs a {required}-byte buffer")
            }
            Error::InvalidConfig => f.write_str("invalid configuration string"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}
