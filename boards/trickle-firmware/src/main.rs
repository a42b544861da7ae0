//! The Trickle device client as firmware for the TI Stellaris LM3S6965 (Cortex-M3), the MCU of
//! QEMU's `lm3s6965evb` board.
//!
//! At reset it reads its configuration from the host (semihosting, [`host::CONFIG_FILE`]),
//! starts a 1 ms SysTick clock, and runs the real `trickle_core::client::Client` over UART0:
//! log in (Noise XX carrying the password), join the room, subscribe to pushes, send the
//! configured message, and wait for one message from someone else. It prints what it received
//! and its stack high-water mark, and exits with code 0 (1 on any failure).
#![no_std]
#![no_main]
// `unsafe` only where the hardware needs it (UART registers, the vector table, reading the
// painted stack), each with its `SAFETY:` comment.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

// Logs through defmt over semihosting (feature `defmt`; decode with `defmt-print -e ELF`).
#[cfg(feature = "defmt")]
use defmt_semihosting as _;

/// `defmt::info!` with the `defmt` feature, nothing without.
macro_rules! log {
    ($($arg:tt)*) => {
        #[cfg(feature = "defmt")]
        defmt::info!($($arg)*);
    };
}

mod clock;
mod config;
mod host;
mod uart;

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use cortex_m_rt::entry;
use static_cell::StaticCell;
use trickle_core::client::{Client, ClientConfig, ClientError, Event, LinkConfig, Peer};
use trickle_core::link::{Clock, FrameLink};
use trickle_core::noise::storage::RamStorage;

use trickle_serial::SerialLink;

use crate::clock::SysTickClock;
use crate::config::Config;
use crate::uart::Uart0;

/// Processor clock of the LM3S6965 after reset (12 MHz), which QEMU's model also uses.
const CORE_HZ: u32 = 12_000_000;
/// UART bit rate (QEMU moves bytes as fast as the socket does; the client's timers use it).
const BAUD: u32 = 115_200;
/// Largest frame on the UART (as on LoRa).
const LINK_MTU: usize = 255;
/// The whole scenario must finish within this time (ms of SysTick), or the firmware fails.
const SCENARIO_LIMIT_MS: u64 = 120_000;

/// Response bodies and unread event strings: the answers of this scenario are under 100 bytes.
const BODY: usize = 256;
/// Room and user aliases remembered.
const ALIASES: usize = 4;
/// Requests queued behind the one in flight: this scenario queues at most two at once
/// (subscribe and send).
const QUEUE: usize = 2;

/// The link: the core's byte-stream framing over UART0.
type Link = SerialLink<Uart0, LINK_MTU>;

/// The client as this firmware instantiates it.
type Device = Client<RamStorage, ChaCha20Rng, BODY, ALIASES, QUEUE>;

#[entry]
fn main() -> ! {
    let result = run();
    let mut digits = [0u8; 10];
    host::say(&[
        b"stack high-water: ",
        host::decimal(host::stack_high_water(), &mut digits),
        b" bytes",
    ]);
    match result {
        Ok(()) => host::exit(0),
        Err(why) => {
            host::say(&[b"FAILED: ", why.as_bytes()]);
            host::exit(1)
        }
    }
}

/// Hands a received frame, if any, to the client. Its own frame: the stack the client needs to
/// open a frame is not live while it seals one (and the reverse).
#[inline(never)]
fn receive(device: &mut Device, clock: &mut SysTickClock, link: &mut Link, frame: &mut [u8]) {
    match link.receive(frame) {
        Ok(Some(n)) => device.handle_rx(clock.now(), frame.get(..n).unwrap_or(&[])),
        Ok(None) => {}
        Err(_e) => {
            log!("link: frame dropped: {}", _e);
            host::say(&[b"link: damaged frame dropped"]);
        }
    }
}

/// Sends what the client has to send: requests, and the ACK of a notification whose event was
/// read.
#[inline(never)]
fn transmit(
    device: &mut Device,
    clock: &mut SysTickClock,
    link: &mut Link,
    frame: &mut [u8],
) -> Result<(), &'static str> {
    while let Some(n) = device.poll_transmit(clock.now(), frame) {
        link.transmit(frame.get(..n).unwrap_or(&[]))
            .map_err(|_| "link transmit")?;
    }
    Ok(())
}

/// Opens the client in a static (`.bss`), initialised in place (`StaticCell::init_with`), so the
/// 4.7 KiB client is not built on the stack and moved; the temporaries of `Client::new` live in
/// this function's frame, which is gone before the main loop runs.
#[inline(never)]
fn new_client(seed: [u8; 32], link: LinkConfig) -> Option<&'static mut Device> {
    // Real hardware seeds from its TRNG; QEMU's board has none, so the host supplies entropy.
    let rng = ChaCha20Rng::from_seed(seed);
    static CLIENT: StaticCell<Result<Device, ClientError>> = StaticCell::new();
    let client =
        CLIENT.try_init_with(|| Client::new(RamStorage::new(), rng, ClientConfig::new(link)))?;
    client.as_mut().ok()
}

/// What the firmware does next, decided from the client's events.
enum Next {
    Nothing,
    Join,
    SubscribeAndSend(u16),
}

fn run() -> Result<(), &'static str> {
    let mut file = [0u8; 256];
    let len = host::read_config(&mut file).ok_or("cannot read trickle-firmware.cfg")?;
    let config = Config::parse(file.get(..len).ok_or("config")?).map_err(|e| e.text())?;

    let peripherals = cortex_m::Peripherals::take().ok_or("peripherals taken")?;
    let mut clock = SysTickClock::start(peripherals.SYST, CORE_HZ);
    let uart = Uart0::take(CORE_HZ, BAUD).ok_or("UART0 taken")?;
    let mut link: SerialLink<Uart0, LINK_MTU> =
        SerialLink::new(uart, trickle_serial::Config::new());
    let link_config = LinkConfig {
        bitrate_bps: BAUD,
        max_frame: link.max_frame_len(),
    };
    let device = new_client(config.seed, link_config).ok_or("client")?;
    scenario(device, &config, &mut clock, &mut link)
}

/// Log in, join, subscribe, send, and wait for a message (the main loop, in its own frame).
#[inline(never)]
fn scenario(
    device: &mut Device,
    config: &Config<'_>,
    clock: &mut SysTickClock,
    link: &mut Link,
) -> Result<(), &'static str> {
    device
        .login_password(config.user, config.password)
        .map_err(|_| "login")?;
    host::say(&[b"logging in as ", config.user.as_bytes()]);
    let (mut subscribed, mut delivered, mut received) = (false, false, false);
    // The client never builds a frame longer than its `LinkConfig::max_frame` (the link's MTU).
    let mut frame = [0u8; LINK_MTU];
    let deadline = clock.now().add_ms(SCENARIO_LIMIT_MS);
    loop {
        let now = clock.now();
        if now >= deadline {
            return Err("scenario timed out");
        }
        if device.poll_timeout().is_some_and(|t| t <= now) {
            device.handle_timeout(now);
        }
        receive(device, clock, link, &mut frame);
        transmit(device, clock, link, &mut frame)?;
        if subscribed && delivered && received {
            return Ok(());
        }
        let mut next = Next::Nothing;
        while let Some(event) = device.poll_event() {
            match event {
                Event::LoggedIn { user_id, .. } => {
                    log!("logged in as {=str}", user_id);
                    host::say(&[b"logged in: ", user_id.as_bytes()]);
                    next = Next::Join;
                }
                Event::Joined { alias, room_id, .. } => {
                    log!("joined {=str} (alias {=u16})", room_id, alias);
                    host::say(&[b"joined: ", room_id.as_bytes()]);
                    next = Next::SubscribeAndSend(alias);
                }
                Event::Subscribed { .. } => {
                    host::say(&[b"subscribed"]);
                    subscribed = true;
                }
                Event::Delivered { .. } => {
                    host::say(&[b"delivered: ", config.message.as_bytes()]);
                    delivered = true;
                }
                Event::Message { sender, body, .. } => {
                    let mut digits = [0u8; 10];
                    let from = match sender {
                        Peer::Id(id) => id.as_bytes(),
                        Peer::Alias(a) => host::decimal(u32::from(a), &mut digits),
                    };
                    host::say(&[b"received: ", body.as_bytes(), b" from ", from]);
                    received = true;
                }
                Event::Failed {
                    handle: _handle,
                    reason: _reason,
                } => {
                    log!("operation {} failed: {}", _handle, _reason);
                    return Err("an operation failed");
                }
                _ => {}
            }
        }
        match next {
            Next::Nothing => {}
            Next::Join => {
                device.join(config.room).map_err(|_| "join")?;
            }
            Next::SubscribeAndSend(alias) => {
                device.subscribe().map_err(|_| "subscribe")?;
                device
                    .send_text(Peer::Alias(alias), config.message)
                    .map_err(|_| "send")?;
            }
        }
    }
}

/// The device interrupt vectors (after the 16 system exceptions). The firmware polls UART0 and
/// enables no peripheral interrupt in the NVIC, so the table holds a single reserved entry
/// (cortex-m-rt requires at least one) instead of cortex-m-rt's default 240 entries (960 bytes
/// of flash). A firmware that enables interrupts lists its handlers here.
// SAFETY: the name and section are the ones cortex-m-rt's linker script places right after
// the exception vectors; nothing else defines `__INTERRUPTS` (no PAC is linked).
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [usize; 1] = [0];

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // No formatting: `core::fmt` costs kilobytes of flash. The core never panics on input.
    host::say(&[b"PANIC"]);
    host::exit(101)
}
