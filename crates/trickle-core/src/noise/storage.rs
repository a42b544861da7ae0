//! Persistence of the pipe: own static key, pinned gateway key, session (keys, CID, counters).
//!
//! Firmware implements [`Storage`] over flash (six small slots on a device, two more per CID on
//! a gateway, see [`Slot::index`]); the host gets [`FileStorage`]
//! (feature `std`) and everyone gets [`RamStorage`]. A raw slot write may tear on power loss:
//! the pipe never relies on a write being atomic. Every record kind lives in two slots (A/B),
//! each record carries a generation number and a CRC-32, and a new record always overwrites the
//! *older* slot, so a torn write leaves the previous record intact ([`Records`]).
//!
//! Record layout (all integers little-endian), normative in `docs/PROTOCOL.md`:
//!
//! ```text
//! 0      version (1)
//! 1      kind: 1 identity, 2 pin, 3 session
//! 2..6   generation (u32)
//! 6..n   body (identity 32, pin 33, session 123 bytes)
//! n..n+4 CRC-32 (IEEE 802.3, reflected, as zlib) over bytes 0..n
//! ```

use core::fmt;
use zeroize::Zeroize;

/// Record format version written in byte 0.
pub const RECORD_VERSION: u8 = 1;
/// Bytes of record header (version, kind, generation) before the body.
pub const RECORD_HEADER_LEN: usize = 6;
/// Bytes of CRC after the body.
pub const RECORD_CRC_LEN: usize = 4;
/// Largest record (a session record).
pub const MAX_RECORD_LEN: usize = RECORD_HEADER_LEN + SESSION_BODY_LEN + RECORD_CRC_LEN;

const IDENTITY_BODY_LEN: usize = 32;
const PIN_BODY_LEN: usize = 33;
/// Length of a session record body.
pub const SESSION_BODY_LEN: usize = 123;

/// Byte ranges of a session record body.
mod session_field {
    use core::ops::Range;
    pub const PRESENT: usize = 0;
    pub const ROLE: usize = 1;
    pub const CID: usize = 2;
    pub const SEND_EPOCH: Range<usize> = 3..7;
    pub const RECV_EPOCH: Range<usize> = 7..11;
    pub const SEND_BOUND: Range<usize> = 11..19;
    pub const RECV_FLOOR: Range<usize> = 19..27;
    pub const SEND_KEY: Range<usize> = 27..59;
    pub const RECV_KEY: Range<usize> = 59..91;
    pub const REMOTE_STATIC: Range<usize> = 91..123;
}

/// A storage slot. Each record kind has an A and a B slot; sessions have a pair per connection
/// ID (the device keeps its one session under `cid` 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Slot {
    /// Own static key, slot A.
    IdentityA,
    /// Own static key, slot B.
    IdentityB,
    /// Pinned peer key, slot A.
    PinA,
    /// Pinned peer key, slot B.
    PinB,
    /// Session record of a connection ID, slot A (`b == false`) or B.
    Session {
        /// Connection ID (0 on the device).
        cid: u8,
        /// Slot B of the pair.
        b: bool,
    },
}

impl Slot {
    /// A stable small number for the slot: identity 0–1, pin 2–3, session `4 + 2·cid + b`
    /// (e.g. a flash sector index or a file name). The device uses slots 0–5 only.
    pub const fn index(self) -> u16 {
        match self {
            Slot::IdentityA => 0,
            Slot::IdentityB => 1,
            Slot::PinA => 2,
            Slot::PinB => 3,
            Slot::Session { cid, b } => 4 + 2 * cid as u16 + b as u16,
        }
    }
}

/// Failure of the storage medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StorageError {
    /// The medium failed to read or write (or power was lost during the write).
    Io,
    /// The slot cannot hold a record of this length.
    TooLarge,
    /// This storage has no such slot.
    NoSlot,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io => f.write_str("storage medium failed"),
            StorageError::TooLarge => f.write_str("record larger than the storage slot"),
            StorageError::NoSlot => f.write_str("no such storage slot"),
        }
    }
}

impl core::error::Error for StorageError {}

/// Raw slot storage, implemented by firmware over flash.
///
/// Contract: `write` replaces the whole slot content; it may be torn by a power cut (any prefix
/// of the new bytes over any garbage) — the pipe detects that by CRC. `read` copies the slot
/// into `buf` and returns its length (0 for an empty slot; at most `buf.len()` bytes are read).
pub trait Storage {
    /// Reads a slot into `buf`, returning the number of bytes read (0 if empty).
    fn read(&mut self, slot: Slot, buf: &mut [u8]) -> Result<usize, StorageError>;
    /// Writes `data` as the new content of a slot.
    fn write(&mut self, slot: Slot, data: &[u8]) -> Result<(), StorageError>;
}

impl<S: Storage + ?Sized> Storage for &mut S {
    fn read(&mut self, slot: Slot, buf: &mut [u8]) -> Result<usize, StorageError> {
        (**self).read(slot, buf)
    }
    fn write(&mut self, slot: Slot, data: &[u8]) -> Result<(), StorageError> {
        (**self).write(slot, data)
    }
}

/// CRC-32 (IEEE 802.3 polynomial, reflected, initial and final XOR `0xFFFFFFFF`) — the zlib CRC.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// The persisted session: everything needed to resume without a handshake.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `true` for the device (Noise initiator), `false` for the gateway.
    pub initiator: bool,
    /// Connection ID.
    pub cid: u8,
    /// Rekey epoch of `send_key`.
    pub send_epoch: u32,
    /// Rekey epoch of `recv_key`.
    pub recv_epoch: u32,
    /// Every own counter below this may have been used: resume sending at it.
    pub send_bound: u64,
    /// Every accepted peer counter is below this: after a reboot accept only counters at or above.
    pub recv_floor: u64,
    /// Send key at `send_epoch`.
    pub send_key: [u8; 32],
    /// Receive key at `recv_epoch`.
    pub recv_key: [u8; 32],
    /// The peer's static public key.
    pub remote_static: [u8; 32],
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("initiator", &self.initiator)
            .field("cid", &self.cid)
            .field("send_epoch", &self.send_epoch)
            .field("recv_epoch", &self.recv_epoch)
            .field("send_bound", &self.send_bound)
            .field("recv_floor", &self.recv_floor)
            .finish_non_exhaustive()
    }
}

impl Drop for SessionRecord {
    fn drop(&mut self) {
        self.send_key.zeroize();
        self.recv_key.zeroize();
    }
}

impl SessionRecord {
    fn emit(&self, body: &mut [u8; SESSION_BODY_LEN]) {
        use session_field as f;
        body[f::PRESENT] = 1;
        body[f::ROLE] = u8::from(!self.initiator);
        body[f::CID] = self.cid;
        body[f::SEND_EPOCH].copy_from_slice(&self.send_epoch.to_le_bytes());
        body[f::RECV_EPOCH].copy_from_slice(&self.recv_epoch.to_le_bytes());
        body[f::SEND_BOUND].copy_from_slice(&self.send_bound.to_le_bytes());
        body[f::RECV_FLOOR].copy_from_slice(&self.recv_floor.to_le_bytes());
        body[f::SEND_KEY].copy_from_slice(&self.send_key);
        body[f::RECV_KEY].copy_from_slice(&self.recv_key);
        body[f::REMOTE_STATIC].copy_from_slice(&self.remote_static);
    }

    fn parse(body: &[u8; SESSION_BODY_LEN]) -> Option<Self> {
        use session_field as f;
        if body[f::PRESENT] != 1 || body[f::ROLE] > 1 {
            return None;
        }
        let u32_at = |r: core::ops::Range<usize>| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&body[r]);
            u32::from_le_bytes(b)
        };
        let u64_at = |r: core::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[r]);
            u64::from_le_bytes(b)
        };
        let key_at = |r: core::ops::Range<usize>| {
            let mut b = [0u8; 32];
            b.copy_from_slice(&body[r]);
            b
        };
        Some(SessionRecord {
            initiator: body[f::ROLE] == 0,
            cid: body[f::CID],
            send_epoch: u32_at(f::SEND_EPOCH),
            recv_epoch: u32_at(f::RECV_EPOCH),
            send_bound: u64_at(f::SEND_BOUND),
            recv_floor: u64_at(f::RECV_FLOOR),
            send_key: key_at(f::SEND_KEY),
            recv_key: key_at(f::RECV_KEY),
            remote_static: key_at(f::REMOTE_STATIC),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordKind {
    Identity = 1,
    Pin = 2,
    Session = 3,
}

impl RecordKind {
    const fn body_len(self) -> usize {
        match self {
            RecordKind::Identity => IDENTITY_BODY_LEN,
            RecordKind::Pin => PIN_BODY_LEN,
            RecordKind::Session => SESSION_BODY_LEN,
        }
    }
}

/// Where the next record of one A/B pair goes: its generation and slot. Obtained by loading the
/// pair (a fresh cursor writes generation 0 to slot A).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecordCursor {
    generation: u32,
    slot_b: bool,
}

/// A/B record store over a raw [`Storage`]: versioned, CRC-checked, torn-write safe.
///
/// A new record always goes to the slot that does *not* hold the newest valid record, with the
/// next generation; loading picks the valid record (version, kind, length and CRC all right)
/// with the highest generation.
#[derive(Debug)]
pub struct Records<S: Storage> {
    storage: S,
    identity: RecordCursor,
    pin: RecordCursor,
}

impl<S: Storage> Records<S> {
    /// Wraps a storage. Reads nothing yet.
    pub fn new(storage: S) -> Self {
        Records {
            storage,
            identity: RecordCursor::default(),
            pin: RecordCursor::default(),
        }
    }

    /// Gives the raw storage back.
    pub fn into_inner(self) -> S {
        self.storage
    }

    /// The raw storage.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Loads the newest valid record body of a pair into `body`; returns its cursor and whether
    /// a valid record was found.
    fn load(
        &mut self,
        kind: RecordKind,
        slots: [Slot; 2],
        body: &mut [u8],
    ) -> Result<(bool, RecordCursor), StorageError> {
        let len = kind.body_len();
        let total = RECORD_HEADER_LEN + len + RECORD_CRC_LEN;
        let crc_at = RECORD_HEADER_LEN + len;
        let mut best: Option<(u32, usize)> = None;
        let mut buf = [0u8; MAX_RECORD_LEN];
        for (i, slot) in slots.into_iter().enumerate() {
            let n = self.storage.read(slot, &mut buf)?;
            if n != total || buf[0] != RECORD_VERSION || buf[1] != kind as u8 {
                continue;
            }
            let stored = u32::from_le_bytes([
                buf[crc_at],
                buf[crc_at + 1],
                buf[crc_at + 2],
                buf[crc_at + 3],
            ]);
            if crc32(&buf[..crc_at]) != stored {
                continue;
            }
            let generation = u32::from_le_bytes([buf[2], buf[3], buf[4], buf[5]]);
            if best.is_none_or(|(g, _)| generation > g) {
                best = Some((generation, i));
                if let Some(dst) = body.get_mut(..len) {
                    dst.copy_from_slice(&buf[RECORD_HEADER_LEN..crc_at]);
                }
            }
        }
        buf.zeroize();
        Ok(match best {
            Some((generation, i)) => (
                true,
                RecordCursor {
                    generation: generation.wrapping_add(1),
                    slot_b: i == 0,
                },
            ),
            None => (false, RecordCursor::default()),
        })
    }

    fn save(
        &mut self,
        kind: RecordKind,
        slots: [Slot; 2],
        cursor: &mut RecordCursor,
        body: &[u8],
    ) -> Result<(), StorageError> {
        let len = kind.body_len();
        let body = body.get(..len).ok_or(StorageError::TooLarge)?;
        let mut buf = [0u8; MAX_RECORD_LEN];
        buf[0] = RECORD_VERSION;
        buf[1] = kind as u8;
        buf[2..6].copy_from_slice(&cursor.generation.to_le_bytes());
        buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len].copy_from_slice(body);
        let crc_at = RECORD_HEADER_LEN + len;
        let crc = crc32(&buf[..crc_at]);
        buf[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
        let slot = slots[usize::from(cursor.slot_b)];
        let result = self.storage.write(slot, &buf[..crc_at + 4]);
        buf.zeroize();
        result?;
        *cursor = RecordCursor {
            generation: cursor.generation.wrapping_add(1),
            slot_b: !cursor.slot_b,
        };
        Ok(())
    }

    /// Loads the own static secret key.
    pub fn load_identity(&mut self) -> Result<Option<[u8; 32]>, StorageError> {
        let mut key = [0u8; 32];
        let (found, cursor) = self.load(
            RecordKind::Identity,
            [Slot::IdentityA, Slot::IdentityB],
            &mut key,
        )?;
        self.identity = cursor;
        Ok(found.then_some(key))
    }

    /// Stores the own static secret key.
    pub fn save_identity(&mut self, secret: &[u8; 32]) -> Result<(), StorageError> {
        let mut cursor = self.identity;
        let r = self.save(
            RecordKind::Identity,
            [Slot::IdentityA, Slot::IdentityB],
            &mut cursor,
            secret,
        );
        self.identity = cursor;
        r
    }

    /// Loads the pinned peer key (`None` if never pinned or cleared).
    pub fn load_pin(&mut self) -> Result<Option<[u8; 32]>, StorageError> {
        let mut body = [0u8; PIN_BODY_LEN];
        let (found, cursor) = self.load(RecordKind::Pin, [Slot::PinA, Slot::PinB], &mut body)?;
        self.pin = cursor;
        if !found || body[0] != 1 {
            return Ok(None);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&body[1..]);
        Ok(Some(key))
    }

    /// Stores (or with `None` clears) the pinned peer key.
    pub fn save_pin(&mut self, key: Option<&[u8; 32]>) -> Result<(), StorageError> {
        let mut body = [0u8; PIN_BODY_LEN];
        if let Some(k) = key {
            body[0] = 1;
            body[1..].copy_from_slice(k);
        }
        let mut cursor = self.pin;
        let r = self.save(
            RecordKind::Pin,
            [Slot::PinA, Slot::PinB],
            &mut cursor,
            &body,
        );
        self.pin = cursor;
        r
    }

    /// Loads the session record of `cid` (the device uses 0), with the cursor for its next write.
    pub fn load_session(
        &mut self,
        cid: u8,
    ) -> Result<(Option<SessionRecord>, RecordCursor), StorageError> {
        let mut body = [0u8; SESSION_BODY_LEN];
        let (found, cursor) = self.load(RecordKind::Session, session_slots(cid), &mut body)?;
        let rec = if found {
            SessionRecord::parse(&body)
        } else {
            None
        };
        body.zeroize();
        Ok((rec, cursor))
    }

    /// Stores the session record of `cid` (or with `None` a "no session" record).
    pub fn save_session(
        &mut self,
        cid: u8,
        cursor: &mut RecordCursor,
        rec: Option<&SessionRecord>,
    ) -> Result<(), StorageError> {
        let mut body = [0u8; SESSION_BODY_LEN];
        if let Some(r) = rec {
            r.emit(&mut body);
        }
        let result = self.save(RecordKind::Session, session_slots(cid), cursor, &body);
        body.zeroize();
        result
    }
}

const fn session_slots(cid: u8) -> [Slot; 2] {
    [
        Slot::Session { cid, b: false },
        Slot::Session { cid, b: true },
    ]
}

/// Storage in RAM: `N` fixed slots (by [`Slot::index`]) of [`MAX_RECORD_LEN`] bytes. For tests
/// and for boards that keep state in retained RAM. The default 6 slots hold a device's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamStorage<const N: usize = 6> {
    slots: [[u8; MAX_RECORD_LEN]; N],
    lens: [usize; N],
}

impl<const N: usize> Default for RamStorage<N> {
    fn default() -> Self {
        RamStorage {
            slots: [[0; MAX_RECORD_LEN]; N],
            lens: [0; N],
        }
    }
}

impl<const N: usize> RamStorage<N> {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a torn write: the first `keep` bytes of `data` land over the old content, the
    /// rest of the slot keeps whatever was there (the slot is at least `keep` bytes long).
    pub fn write_torn(&mut self, slot: Slot, data: &[u8], keep: usize) {
        let i = usize::from(slot.index());
        let (Some(dst), Some(len)) = (self.slots.get_mut(i), self.lens.get_mut(i)) else {
            return;
        };
        let keep = keep.min(data.len()).min(MAX_RECORD_LEN);
        dst[..keep].copy_from_slice(&data[..keep]);
        *len = (*len).max(keep);
    }
}

impl<const N: usize> Storage for RamStorage<N> {
    fn read(&mut self, slot: Slot, buf: &mut [u8]) -> Result<usize, StorageError> {
        let i = usize::from(slot.index());
        let (Some(src), Some(&len)) = (self.slots.get(i), self.lens.get(i)) else {
            return Err(StorageError::NoSlot);
        };
        let n = len.min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }

    fn write(&mut self, slot: Slot, data: &[u8]) -> Result<(), StorageError> {
        let i = usize::from(slot.index());
        let (Some(dst), Some(len)) = (self.slots.get_mut(i), self.lens.get_mut(i)) else {
            return Err(StorageError::NoSlot);
        };
        if data.len() > MAX_RECORD_LEN {
            return Err(StorageError::TooLarge);
        }
        dst[..data.len()].copy_from_slice(data);
        *len = data.len();
        Ok(())
    }
}

#[cfg(feature = "std")]
pub use file::FileStorage;

#[cfg(feature = "std")]
mod file {
    use super::{Slot, Storage, StorageError};
    use std::fs;
    use std::io::Write;
    use std::path::PathBuf;

    /// Host storage: one file per slot (`slot-N.bin`) in a directory; every write goes to a
    /// temporary file that is synced and then renamed over the slot file (atomic on POSIX).
    #[derive(Debug, Clone)]
    pub struct FileStorage {
        dir: PathBuf,
    }

    impl FileStorage {
        /// Uses (and creates if needed) `dir`.
        pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
            let dir = dir.into();
            fs::create_dir_all(&dir)?;
            Ok(FileStorage { dir })
        }

        fn path(&self, slot: Slot) -> PathBuf {
            self.dir.join(std::format!("slot-{}.bin", slot.index()))
        }
    }

    impl Storage for FileStorage {
        fn read(&mut self, slot: Slot, buf: &mut [u8]) -> Result<usize, StorageError> {
            match fs::read(self.path(slot)) {
                Ok(bytes) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    Ok(n)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                Err(_) => Err(StorageError::Io),
            }
        }

        fn write(&mut self, slot: Slot, data: &[u8]) -> Result<(), StorageError> {
            let path = self.path(slot);
            let tmp = path.with_extension("tmp");
            let result = (|| -> std::io::Result<()> {
                let mut f = fs::File::create(&tmp)?;
                f.write_all(data)?;
                f.sync_all()?;
                fs::rename(&tmp, &path)?;
                if let Ok(d) = fs::File::open(&self.dir) {
                    let _ = d.sync_all();
                }
                Ok(())
            })();
            result.map_err(|_| StorageError::Io)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    fn sample() -> SessionRecord {
        SessionRecord {
            initiator: true,
            cid: 7,
            send_epoch: 1,
            recv_epoch: 2,
            send_bound: 0x0102_0304_0506_0708,
            recv_floor: 99,
            send_key: [0x11; 32],
            recv_key: [0x22; 32],
            remote_static: [0x33; 32],
        }
    }

    #[test]
    fn session_record_bytes() {
        let mut records = Records::new(RamStorage::<6>::new());
        let mut cursor = RecordCursor::default();
        records
            .save_session(0, &mut cursor, Some(&sample()))
            .unwrap();
        let mut raw = [0u8; MAX_RECORD_LEN];
        let n = records
            .storage_mut()
            .read(Slot::Session { cid: 0, b: false }, &mut raw)
            .unwrap();
        assert_eq!(n, 133);
        assert_eq!(&raw[..6], &[1, 3, 0, 0, 0, 0]);
        assert_eq!(&raw[6..9], &[1, 0, 7]);
        assert_eq!(&raw[9..13], &[1, 0, 0, 0]);
        assert_eq!(&raw[13..17], &[2, 0, 0, 0]);
        assert_eq!(&raw[17..25], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&raw[25..33], &[99, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&raw[33..65], &[0x11; 32]);
        assert_eq!(&raw[129..133], &crc32(&raw[..129]).to_le_bytes());
        assert_eq!(records.load_session(0).unwrap().0, Some(sample()));
        assert_eq!(records.load_session(1).unwrap_err(), StorageError::NoSlot);
    }

    #[test]
    fn ab_survives_every_torn_write() {
        let mut records = Records::new(RamStorage::<6>::new());
        let mut cursor = RecordCursor::default();
        let rec = sample();
        records.save_session(0, &mut cursor, Some(&rec)).unwrap();
        for round in 0..60usize {
            let bound = rec.send_bound + round as u64;
            let mut newer = sample();
            newer.send_bound = bound + 1;
            // Produce the next record's bytes on a copy, then tear it into the real storage.
            let mut copy = Records::new(records.storage_mut().clone());
            let mut c2 = cursor;
            copy.save_session(0, &mut c2, Some(&newer)).unwrap();
            let slot = Slot::Session {
                cid: 0,
                b: cursor.slot_b,
            };
            let mut full = [0u8; MAX_RECORD_LEN];
            let n = copy.storage_mut().read(slot, &mut full).unwrap();
            let keep = (round * 7) % n; // never the whole record
            records.storage_mut().write_torn(slot, &full[..n], keep);
            // A reboot still finds the previous record.
            let mut reboot = Records::new(records.into_inner());
            let (got, mut c3) = reboot.load_session(0).unwrap();
            assert_eq!(got.unwrap().send_bound, bound);
            // Then a complete write lands and wins.
            reboot.save_session(0, &mut c3, Some(&newer)).unwrap();
            let mut again = Records::new(reboot.into_inner());
            let (got, c4) = again.load_session(0).unwrap();
            assert_eq!(got.unwrap().send_bound, bound + 1);
            records = again;
            cursor = c4;
        }
    }

    #[test]
    fn pin_and_identity_round_trip() {
        let mut records = Records::new(RamStorage::<6>::new());
        assert_eq!(records.load_pin().unwrap(), None);
        records.save_pin(Some(&[5; 32])).unwrap();
        assert_eq!(records.load_pin().unwrap(), Some([5; 32]));
        records.save_pin(None).unwrap();
        let mut reboot = Records::new(records.into_inner());
        assert_eq!(reboot.load_pin().unwrap(), None);
        reboot.save_identity(&[9; 32]).unwrap();
        assert_eq!(reboot.load_identity().unwrap(), Some([9; 32]));
    }

    #[cfg(feature = "std")]
    #[test]
    fn file_storage_round_trip() {
        let dir = std::env::temp_dir().join(std::format!("trickle-pipe-{}", std::process::id()));
        let mut records = Records::new(FileStorage::open(&dir).unwrap());
        let mut cursor = RecordCursor::default();
        records
            .save_session(3, &mut cursor, Some(&sample()))
            .unwrap();
        records.save_pin(Some(&[1; 32])).unwrap();
        let mut reboot = Records::new(FileStorage::open(&dir).unwrap());
        assert_eq!(reboot.load_session(3).unwrap().0, Some(sample()));
        assert_eq!(reboot.load_pin().unwrap(), Some([1; 32]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
