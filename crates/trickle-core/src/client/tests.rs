use super::*;

#[test]
fn timers_scale_with_the_link() {
    let l = LinkConfig::LORA_100;
    assert_eq!(l.airtime_ms(255), 20_400);
    assert_eq!(l.airtime_ms(536_870), 42_949_600);
    assert_eq!(l.airtime_ms(536_871), u64::from(u32::MAX));
    assert_eq!(l.airtime_ms(usize::MAX), u64::from(u32::MAX));
    assert_eq!(l.ack_timeout_ms(), 42_800);
    assert_eq!(l.max_transmit_wait_ms(), 42_800 * 31 * 3 / 2);
    let fast = LinkConfig {
        bitrate_bps: 115_200,
        max_frame: 255,
    };
    // 255 × 8 / 115200 s = 17.7 ms, rounded up to 18 ms, twice.
    assert_eq!(fast.ack_timeout_ms(), 2_036);
}

#[test]
fn observe_freshness_is_serial_arithmetic() {
    assert!(fresher(2, 1));
    assert!(!fresher(1, 1));
    assert!(!fresher(1, 2));
    // Wrap-around of the 24-bit value.
    assert!(fresher(0, 0x00ff_ffff));
    assert!(!fresher(0x00ff_ffff, 0));
    assert!(!fresher(1 + (1 << 23), 1));
}

#[test]
fn block1_size_is_the_largest_that_fits() {
    // CON POST, Uri-Path "*", 240-byte payload: 4 + 2 + 1 + 240 = 247 bytes.
    let mut msg = std::vec![0x40, 0x02, 0, 0, 0xb1, b'*', 0xff];
    msg.extend(core::iter::repeat_n(b'a', 240));
    let b = block1_for(&msg, 255 - TRANSPORT_OVERHEAD).unwrap();
    assert_eq!((b.num, b.more, b.size()), (0, true, 128));
    // 64 bytes left over: 32-byte blocks.
    let b = block1_for(&msg, 4 + 2 + 1 + 4 + 63).unwrap();
    assert_eq!(b.size(), 32);
    assert_eq!(block1_for(&msg, 10), None);
}

#[test]
fn remove_keeping_order_is_vec_remove() {
    for len in 0..=5usize {
        for at in 0..=6usize {
            let mut a: Vec<u32, 5> = (0..len as u32).collect();
            let mut b = a.clone();
            let got = remove_keeping_order(&mut a, at);
            let want = (at < len).then(|| b.remove(at));
            assert_eq!(got, want, "len {len} at {at}");
            assert_eq!(a, b, "len {len} at {at}");
        }
    }
}
