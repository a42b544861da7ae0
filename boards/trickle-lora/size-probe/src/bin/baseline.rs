//! The same peripherals, no driver: subtract this from the others.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::hint::black_box;
use embedded_hal::spi::SpiDevice;
use trickle_lora_size_probe::Spi;

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut frame = black_box([0u8; 255]);
    black_box(Spi.read(&mut frame).ok());
    loop {}
}
