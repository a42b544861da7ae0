//! The blocking sx127x driver: init, transmit, receive.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::hint::black_box;
use trickle_core::link::FrameLink;
use trickle_lora::bus::BlockingBus;
use trickle_lora::{Bandwidth, Config, LoRa, LoraParams, SpreadingFactor};
use trickle_lora_size_probe::{Delay, Pin, Spi, Ticks};

#[cortex_m_rt::entry]
fn main() -> ! {
    let config = black_box(Config::eu868(
        868_100_000,
        LoraParams::new(SpreadingFactor::Sf9, Bandwidth::Khz125),
    ));
    let bus = BlockingBus::new(Spi, Pin, trickle_lora::bus::NoPin, Pin, Delay);
    if let Ok(mut radio) = LoRa::new(trickle_lora::sx127x::Sx127x::new(), bus, Ticks, config) {
        let mut frame = black_box([0u8; 255]);
        let len = black_box(32);
        black_box(radio.transmit(&frame[..len]).ok());
        black_box(radio.receive(&mut frame).ok());
        black_box(radio.last_packet());
    }
    loop {}
}
