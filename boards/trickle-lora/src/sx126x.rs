//! Semtech SX1261/SX1262 in LoRa mode (datasheet "SX1261/2 Long Range, Low Power, sub-GHz RF
//! Transceiver", rev. 2.1, December 2021; section numbers below refer to it).
//!
//! The chip is driven by commands (§13): an opcode and its parameters in one SPI transaction.
//! Before each command the host waits for BUSY to go low (§8.3.1). Commands that return data
//! answer with a status byte during the byte after the opcode (read here as part of the
//! written header) and then the data.
//!
//! DIO1 carries TxDone, RxDone, Timeout, CrcErr and HeaderErr (`SetDioIrqParams`, §13.3.1).

use trickle_core::link::lora::{Bandwidth, Chip};

use crate::bus::Bus;
use crate::driver::{Radio, RxEvent, Sealed};
use crate::{Config, ConfigError, Error, PacketStatus};

/// Command opcodes (§13, table 13-1).
pub mod op {
    /// SetStandby(StdbyConfig).
    pub const SET_STANDBY: u8 = 0x80;
    /// SetTx(timeout\[23:0\]).
    pub const SET_TX: u8 = 0x83;
    /// SetRx(timeout\[23:0\]).
    pub const SET_RX: u8 = 0x82;
    /// SetRegulatorMode(mode).
    pub const SET_REGULATOR_MODE: u8 = 0x96;
    /// CalibrateImage(freq1, freq2).
    pub const CALIBRATE_IMAGE: u8 = 0x98;
    /// SetPaConfig(paDutyCycle, hpMax, deviceSel, paLut).
    pub const SET_PA_CONFIG: u8 = 0x95;
    /// WriteRegister(address\[15:0\], data…).
    pub const WRITE_REGISTER: u8 = 0x0D;
    /// ReadRegister(address\[15:0\]) → status, data…
    pub const READ_REGISTER: u8 = 0x1D;
    /// WriteBuffer(offset, data…).
    pub const WRITE_BUFFER: u8 = 0x0E;
    /// ReadBuffer(offset) → status, data…
    pub const READ_BUFFER: u8 = 0x1E;
    /// SetDioIrqParams(IrqMask, DIO1Mask, DIO2Mask, DIO3Mask).
    pub const SET_DIO_IRQ_PARAMS: u8 = 0x08;
    /// GetIrqStatus → status, IrqStatus\[15:0\].
    pub const GET_IRQ_STATUS: u8 = 0x12;
    /// ClearIrqStatus(ClearIrqParam\[15:0\]).
    pub const CLEAR_IRQ_STATUS: u8 = 0x02;
    /// SetDIO2AsRfSwitchCtrl(enable).
    pub const SET_DIO2_AS_RF_SWITCH_CTRL: u8 = 0x9D;
    /// SetDIO3AsTCXOCtrl(voltage, delay\[23:0\]).
    pub const SET_DIO3_AS_TCXO_CTRL: u8 = 0x97;
    /// Calibrate(calibParam).
    pub const CALIBRATE: u8 = 0x89;
    /// SetRfFrequency(RfFreq\[31:0\]).
    pub const SET_RF_FREQUENCY: u8 = 0x86;
    /// SetPacketType(PacketType).
    pub const SET_PACKET_TYPE: u8 = 0x8A;
    /// SetTxParams(power, RampTime).
    pub const SET_TX_PARAMS: u8 = 0x8E;
    /// SetModulationParams(SF, BW, CR, LowDataRateOptimize).
    pub const SET_MODULATION_PARAMS: u8 = 0x8B;
    /// SetPacketParams(PreambleLength\[15:0\], HeaderType, PayloadLength, CRCType, InvertIQ).
    pub const SET_PACKET_PARAMS: u8 = 0x8C;
    /// SetBufferBaseAddress(TX base, RX base).
    pub const SET_BUFFER_BASE_ADDRESS: u8 = 0x8F;
    /// GetRxBufferStatus → status, PayloadLengthRx, RxStartBufferPointer.
    pub const GET_RX_BUFFER_STATUS: u8 = 0x13;
    /// GetPacketStatus → status, RssiPkt, SnrPkt, SignalRssiPkt.
    pub const GET_PACKET_STATUS: u8 = 0x14;
}

/// IRQ bits (§13.3.1, table 13-29).
pub mod irq {
    /// Packet sent.
    pub const TX_DONE: u16 = 1 << 0;
    /// Packet received.
    pub const RX_DONE: u16 = 1 << 1;
    /// Header with a bad CRC received.
    pub const HEADER_ERR: u16 = 1 << 5;
    /// Payload CRC failed.
    pub const CRC_ERR: u16 = 1 << 6;
    /// RX or TX timeout.
    pub const TIMEOUT: u16 = 1 << 9;
    /// Everything this driver routes to DIO1.
    pub const USED: u16 = TX_DONE | RX_DONE | HEADER_ERR | CRC_ERR | TIMEOUT;
}

/// LoRa sync word register, MSB (§12.1, table 12-1); LSB at 0x0741. Reset value 0x1424.
pub const REG_SYNC_WORD: u16 = 0x0740;

/// `SetRx` timeout meaning "stay in receive until told otherwise" (§13.1.5).
pub const RX_CONTINUOUS: u32 = 0xFF_FFFF;

/// `RfFreq` for `frequency_hz`: `RfFreq = f × 2^25 / 32 MHz` (§13.4.1), i.e.
/// `f × 1 048 576 / 10^6`, rounded down.
pub const fn rf_freq(frequency_hz: u32) -> u32 {
    ((frequency_hz as u64 * 1_048_576) / 1_000_000) as u32
}

/// A timeout in the 15.625 µs steps of `SetTx`/`SetRx` (§13.1.4), rounded up and capped below
/// the special value 0xFFFFFF.
pub const fn timeout_steps(us: u32) -> u32 {
    // 15.625 µs = 125/8 µs.
    let steps = (us as u64 * 8).div_ceil(125);
    if steps >= RX_CONTINUOUS as u64 {
        RX_CONTINUOUS - 1
    } else {
        steps as u32
    }
}

/// `BW` parameter of `SetModulationParams` (§13.4.5.2, table 13-48).
pub const fn bandwidth_code(bw: Bandwidth) -> u8 {
    match bw {
        Bandwidth::Khz7_8 => 0x00,
        Bandwidth::Khz10_4 => 0x08,
        Bandwidth::Khz15_6 => 0x01,
        Bandwidth::Khz20_8 => 0x09,
        Bandwidth::Khz31_25 => 0x02,
        Bandwidth::Khz41_7 => 0x0A,
        Bandwidth::Khz62_5 => 0x03,
        Bandwidth::Khz125 => 0x04,
        Bandwidth::Khz250 => 0x05,
        Bandwidth::Khz500 => 0x06,
    }
}

/// `CalibrateImage` arguments for the band holding `frequency_hz` (§9.2.1, table 9-2).
pub const fn image_calibration(frequency_hz: u32) -> [u8; 2] {
    match frequency_hz {
        0..=440_000_000 => [0x6B, 0x6F],
        440_000_001..=510_000_000 => [0x75, 0x81],
        510_000_001..=787_000_000 => [0xC1, 0xC5],
        787_000_001..=870_000_000 => [0xD7, 0xDB],
        _ => [0xE1, 0xE9],
    }
}

/// The SX126x sync word for an SX127x-style byte `0xXY`: `0xX4Y4` (0x12 → 0x1424, 0x34 →
/// 0x3444), the form in which the two families receive each other.
pub const fn sync_word(sx127x: u8) -> [u8; 2] {
    [(sx127x & 0xF0) | 0x04, (sx127x << 4) | 0x04]
}

/// Packet RSSI and SNR from `GetPacketStatus` (§13.5.3): `RSSI = −RssiPkt / 2` dBm,
/// `SNR = SnrPkt / 4` dB (two's complement).
pub const fn packet_status(rssi_pkt: u8, snr_pkt: u8) -> PacketStatus {
    PacketStatus {
        rssi_dbm: -(rssi_pkt as i16) / 2,
        snr_quarter_db: snr_pkt as i8 as i16,
    }
}

/// `SetPacketParams` for `config` and payload length `len` (§13.4.6.2): preamble length,
/// explicit header (0), payload length, CRC on/off, standard IQ.
pub const fn packet_params(config: &Config, len: u8) -> [u8; 7] {
    let [p1, p0] = config.modem.preamble_symbols.to_be_bytes();
    let crc = if config.modem.crc { 1 } else { 0 };
    [op::SET_PACKET_PARAMS, p1, p0, 0x00, len, crc, 0x00]
}

/// Which chip of the family, for its power amplifier (§13.1.14, table 13-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Variant {
    /// SX1261: low-power PA, −17..=14 dBm.
    Sx1261,
    /// SX1262: high-power PA, −9..=22 dBm.
    Sx1262,
}

/// TCXO supply voltage on DIO3 (§13.3.6, table 13-35).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TcxoVoltage {
    /// 1.6 V.
    V1_6 = 0,
    /// 1.7 V.
    V1_7 = 1,
    /// 1.8 V.
    V1_8 = 2,
    /// 2.2 V.
    V2_2 = 3,
    /// 2.4 V.
    V2_4 = 4,
    /// 2.7 V.
    V2_7 = 5,
    /// 3.0 V.
    V3_0 = 6,
    /// 3.3 V.
    V3_3 = 7,
}

/// An SX1261 or SX1262 and how the board wires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sx126x {
    /// Which chip.
    pub variant: Variant,
    /// Use the DC-DC regulator (`SetRegulatorMode(1)`) instead of the LDO; needs the inductor.
    pub dcdc: bool,
    /// DIO2 switches the antenna between TX and RX (`SetDIO2AsRfSwitchCtrl`).
    pub dio2_rf_switch: bool,
    /// DIO3 powers a TCXO at this voltage (`SetDIO3AsTCXOCtrl`, 5 ms start-up).
    pub tcxo: Option<TcxoVoltage>,
}

impl Sx126x {
    /// A chip on the LDO with a crystal and no RF switch on DIO2.
    pub const fn new(variant: Variant) -> Self {
        Self {
            variant,
            dcdc: false,
            dio2_rf_switch: false,
            tcxo: None,
        }
    }

    /// `SetPaConfig` parameters for the chip's full power (table 13-21: SX1262 +22 dBm:
    /// 0x04, 0x07, 0x00, 0x01; SX1261 +14 dBm: 0x04, 0x00, 0x01, 0x01).
    pub const fn pa_config(&self) -> [u8; 4] {
        match self.variant {
            Variant::Sx1262 => [0x04, 0x07, 0x00, 0x01],
            Variant::Sx1261 => [0x04, 0x00, 0x01, 0x01],
        }
    }

    /// One command: opcode and parameters.
    async fn cmd<B: Bus>(bus: &mut B, command: &[u8]) -> Result<(), Error<B::SpiError>> {
        bus.wait_not_busy().await?;
        bus.write(command, &[]).await
    }

    /// A command returning data: `[op, NOP]` then the data bytes (the status byte comes during
    /// the NOP and is not needed here).
    async fn query<B: Bus>(bus: &mut B, op: u8, out: &mut [u8]) -> Result<(), Error<B::SpiError>> {
        bus.wait_not_busy().await?;
        bus.read(&[op, 0x00], out).await
    }

    async fn clear_irq<B: Bus>(bus: &mut B, mask: u16) -> Result<(), Error<B::SpiError>> {
        let [m1, m0] = mask.to_be_bytes();
        Self::cmd(bus, &[op::CLEAR_IRQ_STATUS, m1, m0]).await
    }

    async fn irq_status<B: Bus>(bus: &mut B) -> Result<u16, Error<B::SpiError>> {
        let mut r = [0; 2];
        Self::query(bus, op::GET_IRQ_STATUS, &mut r).await?;
        Ok(u16::from_be_bytes(r))
    }
}

impl Sealed for Sx126x {}

impl Radio for Sx126x {
    const FAMILY: Chip = Chip::Sx126x;

    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        // §3.1: 150–960 MHz.
        if !(150_000_000..=960_000_000).contains(&config.frequency_hz) {
            return Err(ConfigError::Frequency);
        }
        let range = match self.variant {
            Variant::Sx1261 => -17..=14,
            Variant::Sx1262 => -9..=22,
        };
        if range.contains(&config.tx_power_dbm) {
            Ok(())
        } else {
            Err(ConfigError::TxPower)
        }
    }

    async fn init<B: Bus>(
        &mut self,
        bus: &mut B,
        config: &Config,
    ) -> Result<(), Error<B::SpiError>> {
        // §8.1: NRESET low for at least 100 µs; the chip raises BUSY until it is ready.
        bus.set_reset(false)?;
        bus.delay_us(100).await;
        bus.set_reset(true)?;
        bus.delay_us(1_000).await;
        Self::cmd(bus, &[op::SET_STANDBY, 0x00]).await?;
        // There is no version register; the LoRa sync word's reset value 0x1424 (table 12-1)
        // proves an SX126x answers.
        let mut sw = [0; 2];
        bus.wait_not_busy().await?;
        let [a1, a0] = REG_SYNC_WORD.to_be_bytes();
        bus.read(&[op::READ_REGISTER, a1, a0, 0x00], &mut sw)
            .await?;
        if sw != [0x14, 0x24] {
            return Err(Error::ChipNotFound {
                found: u16::from_be_bytes(sw),
            });
        }
        let rf = rf_freq(config.frequency_hz).to_be_bytes();
        let [c1, c2] = image_calibration(config.frequency_hz);
        let [pa1, pa2, pa3, pa4] = self.pa_config();
        let m = &config.modem;
        let [i1, i0] = irq::USED.to_be_bytes();
        let sw = sync_word(config.sync_word);
        let none: &[u8] = &[];
        let tcxo = self.tcxo.map(|v| v as u8);
        let tcxo_cmd = [
            op::SET_DIO3_AS_TCXO_CTRL,
            tcxo.unwrap_or(0),
            0x00,
            0x01,
            0x40,
        ];
        let sequence: [&[u8]; 16] = [
            if self.dcdc {
                &[op::SET_REGULATOR_MODE, 0x01]
            } else {
                none
            },
            // 5 ms start-up in 15.625 µs steps: 320 = 0x000140; then recalibrate everything
            // (§13.3.6: calibration needs the TCXO running).
            if tcxo.is_some() { &tcxo_cmd } else { none },
            if tcxo.is_some() {
                &[op::CALIBRATE, 0x7F]
            } else {
                none
            },
            if self.dio2_rf_switch {
                &[op::SET_DIO2_AS_RF_SWITCH_CTRL, 0x01]
            } else {
                none
            },
            // §14.2 / §14.3 "basic Tx/Rx operation": packet type first, then frequency, PA,
            // buffer, modulation, packet, IRQ and sync word.
            &[op::SET_PACKET_TYPE, 0x01],
            &[op::SET_RF_FREQUENCY, rf[0], rf[1], rf[2], rf[3]],
            &[op::CALIBRATE_IMAGE, c1, c2],
            &[op::SET_PA_CONFIG, pa1, pa2, pa3, pa4],
            // Ramp time 0x04 = 200 µs (table 13-41).
            &[op::SET_TX_PARAMS, config.tx_power_dbm as u8, 0x04],
            &[op::SET_BUFFER_BASE_ADDRESS, 0x00, 0x00],
            &[
                op::SET_MODULATION_PARAMS,
                m.sf.value(),
                bandwidth_code(m.bandwidth),
                m.coding_rate.denominator() as u8 - 4,
                u8::from(m.ldro_enabled()),
            ],
            &packet_params(config, 0xFF),
            &[op::SET_DIO_IRQ_PARAMS, i1, i0, i1, i0, 0, 0, 0, 0],
            &[op::WRITE_REGISTER, a1, a0, sw[0], sw[1]],
            &[op::CLEAR_IRQ_STATUS, 0xFF, 0xFF],
            &[op::SET_RX, 0xFF, 0xFF, 0xFF],
        ];
        for command in sequence {
            if !command.is_empty() {
                Self::cmd(bus, command).await?;
            }
        }
        Ok(())
    }

    async fn start_tx<B: Bus>(
        &mut self,
        bus: &mut B,
        config: &Config,
        frame: &[u8],
        timeout_us: u32,
    ) -> Result<(), Error<B::SpiError>> {
        let len = u8::try_from(frame.len()).map_err(|_| Error::FrameTooLong {
            len: frame.len(),
            max: crate::MAX_FRAME_LEN,
        })?;
        Self::cmd(bus, &[op::SET_STANDBY, 0x00]).await?;
        bus.wait_not_busy().await?;
        bus.write(&[op::WRITE_BUFFER, 0x00], frame).await?;
        let t = timeout_steps(timeout_us).to_be_bytes();
        let sequence: [&[u8]; 3] = [
            &packet_params(config, len),
            &[op::CLEAR_IRQ_STATUS, 0xFF, 0xFF],
            &[op::SET_TX, t[1], t[2], t[3]],
        ];
        for command in sequence {
            Self::cmd(bus, command).await?;
        }
        Ok(())
    }

    async fn tx_done<B: Bus>(&mut self, bus: &mut B) -> Result<bool, Error<B::SpiError>> {
        let flags = Self::irq_status(bus).await?;
        Self::clear_irq(bus, flags).await?;
        Ok(flags & irq::TX_DONE != 0)
    }

    async fn start_rx<B: Bus>(
        &mut self,
        bus: &mut B,
        config: &Config,
    ) -> Result<(), Error<B::SpiError>> {
        // In receive, SetPacketParams' payload length is the largest packet accepted
        // (§13.4.6.2): put it back to 255 after a transmission set it to the frame's length.
        let sequence: [&[u8]; 2] = [
            &packet_params(config, 0xFF),
            &[op::SET_RX, 0xFF, 0xFF, 0xFF],
        ];
        for command in sequence {
            Self::cmd(bus, command).await?;
        }
        Ok(())
    }

    async fn read_rx<B: Bus>(
        &mut self,
        bus: &mut B,
        buf: &mut [u8],
    ) -> Result<RxEvent, Error<B::SpiError>> {
        let flags = Self::irq_status(bus).await?;
        Self::clear_irq(bus, flags).await?;
        if flags & irq::HEADER_ERR != 0 {
            return Ok(RxEvent::HeaderError);
        }
        if flags & irq::RX_DONE == 0 {
            return Ok(RxEvent::Nothing);
        }
        if flags & irq::CRC_ERR != 0 {
            return Ok(RxEvent::CrcError);
        }
        let mut b = [0; 2];
        Self::query(bus, op::GET_RX_BUFFER_STATUS, &mut b).await?;
        let [len, start] = b;
        let len = usize::from(len);
        let Some(out) = buf.get_mut(..len) else {
            return Ok(RxEvent::TooLong { len });
        };
        bus.wait_not_busy().await?;
        bus.read(&[op::READ_BUFFER, start, 0x00], out).await?;
        let mut p = [0; 3];
        Self::query(bus, op::GET_PACKET_STATUS, &mut p).await?;
        Ok(RxEvent::Frame {
            len,
            status: packet_status(p[0], p[1]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rf_freq_examples() {
        // §13.4.1: RfFreq = f × 2^25 / Fxtal, Fxtal = 32 MHz. 868 MHz = 0x3640_0000 exactly;
        // 915 MHz = 0x3930_0000; 868.1 MHz = 910 268 825.6 → 0x3641_9999.
        assert_eq!(rf_freq(868_000_000), 0x3640_0000);
        assert_eq!(rf_freq(915_000_000), 0x3930_0000);
        assert_eq!(rf_freq(868_100_000), 0x3641_9999);
    }

    #[test]
    fn timeouts_in_15_625_us_steps() {
        assert_eq!(timeout_steps(15_625), 1_000);
        assert_eq!(timeout_steps(1), 1);
        assert_eq!(timeout_steps(1_000_000), 64_000);
        // 262 s is the largest timeout (0xFFFFFE steps).
        assert_eq!(timeout_steps(u32::MAX), 0xFF_FFFE);
    }

    #[test]
    fn sync_words_match_sx127x() {
        assert_eq!(sync_word(0x12), [0x14, 0x24]);
        assert_eq!(sync_word(0x34), [0x34, 0x44]);
    }

    #[test]
    fn packet_status_formula() {
        // RssiPkt 190 → −95 dBm; SnrPkt −30 (0xE2) → −7.5 dB.
        assert_eq!(
            packet_status(190, 0xE2),
            PacketStatus {
                rssi_dbm: -95,
                snr_quarter_db: -30
            }
        );
    }
}
