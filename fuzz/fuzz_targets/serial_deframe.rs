//! Byte-stream framing (COBS/R, optional CRC-16): no byte stream may make the decoder panic;
//! every frame it delivers re-encodes and decodes to itself; after any input, a frame sent with
//! a leading delimiter arrives intact; and the input itself, sent as a frame, round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trickle_core::wire::serial::{Config, Crc, Decoder, Encoded, Sender};

const N: usize = 255;

fn decode_one(dec: &mut Decoder<N>, bytes: impl Iterator<Item = u8>) -> Option<Vec<u8>> {
    let mut last = None;
    for b in bytes {
        if let Some(r) = dec.push(b) {
            last = Some(r.map(<[u8]>::to_vec));
        }
    }
    last.and_then(Result::ok)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else { return };
    let crc = if flags & 1 == 1 { Crc::X25 } else { Crc::None };
    let config = Config { crc, leading_delimiter: flags & 2 == 2 };
    let mut dec = Decoder::<N>::new(crc);
    for &b in stream {
        if let Some(Ok(frame)) = dec.push(b) {
            assert!(!frame.is_empty() && frame.len() <= N);
            let frame = frame.to_vec();
            let mut check = Decoder::<N>::new(crc);
            let enc = Encoded::new(&frame, &config, false).expect("non-empty frame encodes");
            assert_eq!(decode_one(&mut check, enc).as_deref(), Some(&frame[..]));
        }
    }
    // Resynchronisation: a restarted sender's first frame comes out intact whatever preceded it.
    let probe = [0x01, 0x60, 0x00, 0x12, 0x34, 0xAB];
    let mut sender = Sender::new(config);
    let enc = sender.frame(&probe).expect("non-empty frame encodes");
    assert_eq!(decode_one(&mut dec, enc).as_deref(), Some(&probe[..]));
    // The input as a frame round-trips.
    if !stream.is_empty() && stream.len() <= N {
        let mut fresh = Decoder::<N>::new(crc);
        let enc = Encoded::new(stream, &config, false).expect("non-empty frame encodes");
        assert_eq!(decode_one(&mut fresh, enc).as_deref(), Some(stream));
    }
});
