//! TEMPORARY: a SLIP `FrameLink` over a byte stream, until `trickle-serial` lands.

use embedded_io::{Read, ReadReady, Write};
use trickle_core::link::FrameLink;
use trickle_core::wire::slip;

const MAX: usize = 255;

/// SLIP frames over `U`.
pub struct SlipLink<U> {
    uart: U,
    dec: slip::Decoder<MAX>,
}

/// Link errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The UART failed.
    Uart,
    /// A frame was longer than the buffer or the link, or badly stuffed.
    Frame,
}

impl<U: Read + Write + ReadReady> SlipLink<U> {
    /// Wraps `uart`.
    pub fn new(uart: U) -> Self {
        SlipLink {
            uart,
            dec: slip::Decoder::new(),
        }
    }
}

impl<U: Read + Write + ReadReady> FrameLink for SlipLink<U> {
    type Error = LinkError;

    fn max_frame_len(&self) -> usize {
        MAX
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let mut out = [0u8; 2 * MAX + 2];
        let n = slip::encode(frame, &mut out).map_err(|_| LinkError::Frame)?;
        self.uart
            .write_all(out.get(..n).ok_or(LinkError::Frame)?)
            .map_err(|_| LinkError::Uart)?;
        self.uart.flush().map_err(|_| LinkError::Uart)
    }

    fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>, LinkError> {
        while self.uart.read_ready().map_err(|_| LinkError::Uart)? {
            let mut b = [0u8; 1];
            if self.uart.read(&mut b).map_err(|_| LinkError::Uart)? == 0 {
                return Ok(None);
            }
            match self.dec.push(b[0]) {
                Some(Ok(frame)) => {
                    let dst = buf.get_mut(..frame.len()).ok_or(LinkError::Frame)?;
                    dst.copy_from_slice(frame);
                    return Ok(Some(frame.len()));
                }
                Some(Err(_)) => return Err(LinkError::Frame),
                None => {}
            }
        }
        Ok(None)
    }
}
