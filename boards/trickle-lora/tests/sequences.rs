//! The exact SPI transactions each driver makes, checked against the datasheets' sequences.

mod emu;

use emu::{Txn, World};
use trickle_core::link::FrameLink;
use trickle_lora::sx126x::{Sx126x, Variant};
use trickle_lora::sx127x::Sx127x;
use trickle_lora::{Bandwidth, Config, LoRa, LoraParams, PacketStatus, SpreadingFactor};

fn config() -> Config {
    Config::eu868(
        868_100_000,
        LoraParams::new(SpreadingFactor::Sf9, Bandwidth::Khz125),
    )
}

fn w(bytes: &[u8]) -> Txn {
    (bytes.to_vec(), 0)
}

fn r(bytes: &[u8], n: usize) -> Txn {
    (bytes.to_vec(), n)
}

#[test]
fn sx1276_init_transmit_receive() {
    let world = World::new();
    let (a, bus_a) = emu::sx1276(&world);
    let (b, bus_b) = emu::sx1276(&world);
    let mut tx = LoRa::new(Sx127x::new(), bus_a, emu::clock(&world), config()).unwrap();
    let mut rx = LoRa::new(Sx127x::new(), bus_b, emu::clock(&world), config()).unwrap();

    // SX1276 datasheet: §7.2.2 reset, RegVersion (0x42) = 0x12; RegOpMode (0x01) to sleep in FSK
    // then sleep with LongRangeMode (it changes only in sleep); RegFrf 0x06..0x08 = 868.1 MHz ×
    // 2^19 / 32 MHz = 0xD90666; RegPaConfig 0x09 = PA_BOOST, 14 dBm; FIFO TX/RX base 0x0E/0x0F
    // = 0; RegModemConfig1/2 (0x1D/0x1E) = BW 125 kHz (7), CR 4/5 (1) | SF9, CRC on;
    // RegModemConfig3 (0x26) = AGC on, LDRO off; preamble 8 (0x20/0x21); RegMaxPayloadLength
    // 0x23 = 255; detection optimize/threshold for SF7..12 (0x31 = 0xC3, 0x37 = 0x0A); sync
    // word 0x39 = 0x12; clear RegIrqFlags (0x12); standby, then RXCONTINUOUS (0x85).
    let init = vec![
        r(&[0x42], 1),
        w(&[0x81, 0x00]),
        w(&[0x81, 0x80]),
        w(&[0x86, 0xD9, 0x06, 0x66]),
        w(&[0x89, 0x8C]),
        w(&[0x8E, 0x00, 0x00]),
        w(&[0x9D, 0x72, 0x94]),
        w(&[0xA6, 0x04]),
        w(&[0xA0, 0x00, 0x08]),
        w(&[0xA3, 0xFF]),
        w(&[0xB1, 0xC3]),
        w(&[0xB7, 0x0A]),
        w(&[0xB9, 0x12]),
        w(&[0x92, 0xFF]),
        w(&[0x81, 0x81]),
        w(&[0x81, 0x85]),
    ];
    assert_eq!(world.borrow_mut().take_log(a), init);
    assert_eq!(world.borrow_mut().take_log(b), init);

    // §4.1.6.1 transmission: standby, RegFifoAddrPtr = TX base, payload into RegFifo,
    // RegPayloadLength, clear flags, TX; after DIO0 (TxDone) read and clear RegIrqFlags, and
    // back to RXCONTINUOUS.
    let t0 = world.borrow().now_ns;
    tx.transmit(b"hi").unwrap();
    assert_eq!(
        world.borrow_mut().take_log(a),
        vec![
            w(&[0x81, 0x81]),
            w(&[0x8D, 0x00]),
            w(&[0x80, b'h', b'i']),
            w(&[0xA2, 0x02]),
            w(&[0x92, 0xFF]),
            w(&[0x81, 0x83]),
            r(&[0x12], 1),
            w(&[0x92, 0x08]),
            w(&[0x81, 0x85]),
        ]
    );
    // SF9/125 kHz, 2 bytes: 25.25 symbols of 4.096 ms = 103.424 ms; DIO0 is polled every ms.
    assert_eq!(world.borrow().now_ns - t0, 104_000_000);

    // The receiver only looks at DIO0 until it goes high: no SPI while idle.
    let mut buf = [0u8; 255];
    assert_eq!(rx.receive(&mut buf).unwrap(), Some(2));
    assert_eq!(&buf[..2], b"hi");
    // §4.1.6.2 reception: RegFifoRxCurrentAddr..RegRxNbBytes (0x10..0x13) in one burst, clear
    // the flags seen (RxDone | ValidHeader), RegFifoAddrPtr = current address, read the FIFO,
    // RegPktSnrValue and RegPktRssiValue (0x19, 0x1A).
    assert_eq!(
        world.borrow_mut().take_log(b),
        vec![
            r(&[0x10], 4),
            w(&[0x92, 0x50]),
            w(&[0x8D, 0x00]),
            r(&[0x00], 2),
            r(&[0x19], 2),
        ]
    );
    // The ether's −93 dBm / +8 dB, through §5.5.5's formulas.
    assert_eq!(
        rx.last_packet(),
        Some(PacketStatus {
            rssi_dbm: -93,
            snr_quarter_db: 32
        })
    );
    assert_eq!(rx.receive(&mut buf).unwrap(), None);
    assert!(world.borrow_mut().take_log(b).is_empty());
}

#[test]
fn sx1262_init_transmit_receive() {
    let world = World::new();
    let (a, bus_a) = emu::sx1262(&world);
    let (b, bus_b) = emu::sx1262(&world);
    let radio = Sx126x::new(Variant::Sx1262);
    let mut tx = LoRa::new(radio, bus_a, emu::clock(&world), config()).unwrap();
    let mut rx = LoRa::new(radio, bus_b, emu::clock(&world), config()).unwrap();

    // SX1261/2 datasheet §14.2/§14.3: SetStandby(STDBY_RC); presence check by reading the sync
    // word (0x0740, reset 0x1424); SetPacketType(LoRa); SetRfFrequency(868.1 MHz × 2^25 /
    // 32 MHz = 0x36419999); CalibrateImage(863–870 MHz: 0xD7, 0xDB; table 9-2); SetPaConfig for
    // SX1262 (0x04, 0x07, 0x00, 0x01; table 13-21); SetTxParams(14 dBm, 200 µs);
    // SetBufferBaseAddress(0, 0); SetModulationParams(SF9, BW125 = 0x04, CR 4/5, LDRO off);
    // SetPacketParams(preamble 8, explicit, 255, CRC on, standard IQ); SetDioIrqParams(TxDone |
    // RxDone | HeaderErr | CrcErr | Timeout = 0x0263 on DIO1); sync word 0x1424;
    // ClearIrqStatus(all); SetRx(continuous).
    let init = vec![
        w(&[0x80, 0x00]),
        r(&[0x1D, 0x07, 0x40, 0x00], 2),
        w(&[0x8A, 0x01]),
        w(&[0x86, 0x36, 0x41, 0x99, 0x99]),
        w(&[0x98, 0xD7, 0xDB]),
        w(&[0x95, 0x04, 0x07, 0x00, 0x01]),
        w(&[0x8E, 0x0E, 0x04]),
        w(&[0x8F, 0x00, 0x00]),
        w(&[0x8B, 0x09, 0x04, 0x01, 0x00]),
        w(&[0x8C, 0x00, 0x08, 0x00, 0xFF, 0x01, 0x00]),
        w(&[0x08, 0x02, 0x63, 0x02, 0x63, 0x00, 0x00, 0x00, 0x00]),
        w(&[0x0D, 0x07, 0x40, 0x14, 0x24]),
        w(&[0x02, 0xFF, 0xFF]),
        w(&[0x82, 0xFF, 0xFF, 0xFF]),
    ];
    assert_eq!(world.borrow_mut().take_log(a), init);
    assert_eq!(world.borrow_mut().take_log(b), init);

    // Transmit: standby, WriteBuffer at 0, SetPacketParams with the length, clear IRQs,
    // SetTx with a timeout of (103 424 µs airtime + 1/8 + 50 ms) = 166 352 µs in 15.625 µs
    // steps = 10 647 = 0x002997; on DIO1 GetIrqStatus, ClearIrqStatus(TxDone), then
    // SetPacketParams with the largest accepted length back at 255 (in RX it is a maximum,
    // §13.4.6.2), SetRx.
    world.borrow_mut().rssi_dbm = -95;
    tx.transmit(b"hi").unwrap();
    assert_eq!(
        world.borrow_mut().take_log(a),
        vec![
            w(&[0x80, 0x00]),
            w(&[0x0E, 0x00, b'h', b'i']),
            w(&[0x8C, 0x00, 0x08, 0x00, 0x02, 0x01, 0x00]),
            w(&[0x02, 0xFF, 0xFF]),
            w(&[0x83, 0x00, 0x29, 0x97]),
            r(&[0x12, 0x00], 2),
            w(&[0x02, 0x00, 0x01]),
            w(&[0x8C, 0x00, 0x08, 0x00, 0xFF, 0x01, 0x00]),
            w(&[0x82, 0xFF, 0xFF, 0xFF]),
        ]
    );

    // Receive: GetIrqStatus, ClearIrqStatus(RxDone | HeaderValid), GetRxBufferStatus,
    // ReadBuffer(start, NOP), GetPacketStatus.
    let mut buf = [0u8; 255];
    assert_eq!(rx.receive(&mut buf).unwrap(), Some(2));
    assert_eq!(&buf[..2], b"hi");
    assert_eq!(
        world.borrow_mut().take_log(b),
        vec![
            r(&[0x12, 0x00], 2),
            w(&[0x02, 0x00, 0x12]),
            r(&[0x13, 0x00], 2),
            r(&[0x1E, 0x00, 0x00], 2),
            r(&[0x14, 0x00], 3),
        ]
    );
    // RssiPkt = 190 → −95 dBm; SnrPkt 32 → +8 dB (§13.5.3).
    assert_eq!(
        rx.last_packet(),
        Some(PacketStatus {
            rssi_dbm: -95,
            snr_quarter_db: 32
        })
    );
    assert_eq!(world.borrow().busy_violations, 0);
}

#[test]
fn sx1262_board_options() {
    // DC-DC regulator, TCXO at 1.8 V on DIO3 (5 ms = 320 steps), calibration, RF switch on DIO2;
    // an SX1261 gets its own PA table entry and may not exceed 14 dBm.
    let world = World::new();
    let (a, bus) = emu::sx1262(&world);
    let mut radio = Sx126x::new(Variant::Sx1261);
    radio.dcdc = true;
    radio.tcxo = Some(trickle_lora::sx126x::TcxoVoltage::V1_8);
    radio.dio2_rf_switch = true;
    let mut c = config();
    c.tx_power_dbm = 15;
    assert!(matches!(
        LoRa::new(radio, bus, emu::clock(&world), c),
        Err(trickle_lora::Error::Config(
            trickle_lora::ConfigError::TxPower
        ))
    ));
    assert!(world.borrow_mut().take_log(a).is_empty());
    let (a, bus) = emu::sx1262(&world);
    LoRa::new(radio, bus, emu::clock(&world), config()).unwrap();
    let log = world.borrow_mut().take_log(a);
    assert_eq!(
        log[2..8],
        [
            w(&[0x96, 0x01]),
            w(&[0x97, 0x02, 0x00, 0x01, 0x40]),
            w(&[0x89, 0x7F]),
            w(&[0x9D, 0x01]),
            w(&[0x8A, 0x01]),
            w(&[0x86, 0x36, 0x41, 0x99, 0x99]),
        ]
    );
    assert_eq!(log[9], w(&[0x95, 0x04, 0x00, 0x01, 0x01]));
}
