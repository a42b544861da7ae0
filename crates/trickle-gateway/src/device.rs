//! Per-device state of the session layer, in the same SQLite database as the aliases (schema
//! version 2): the access token bound to a device's Noise static key, its Matrix user and device
//! IDs, the aliases already introduced to it, and its Observe progress (`next_batch`, the index
//! of the next event inside that batch, the last event sequence number it ACKed, the
//! registration token). Everything is written before the device sees its effect, so a gateway
//! restart loses nothing.

use rusqlite::{Connection, OptionalExtension, params};

use crate::alias::{AliasKind, AliasStore};
use crate::error::AliasError;

pub(crate) fn migrate_1_to_2(conn: &Connection) -> Result<(), AliasError> {
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS device (
             device        TEXT    PRIMARY KEY,
             access_token  TEXT,
             user_id       TEXT,
             device_id     TEXT,
             next_batch    TEXT,
             batch_index   INTEGER NOT NULL DEFAULT 0,
             acked_seq     INTEGER NOT NULL DEFAULT 0,
             observe_token BLOB
         );
         CREATE TABLE IF NOT EXISTS introduced (
             device TEXT    NOT NULL,
             kind   INTEGER NOT NULL,
             alias  INTEGER NOT NULL,
             PRIMARY KEY (device, kind, alias)
         );
         CREATE TABLE IF NOT EXISTS response (
             device TEXT    NOT NULL,
             mid    INTEGER NOT NULL,
             frame  BLOB    NOT NULL,
             at     INTEGER NOT NULL,
             PRIMARY KEY (device, mid)
         );
         PRAGMA user_version = 2;
         COMMIT;",
    )?;
    Ok(())
}

/// What the gateway keeps about one device (keyed by the hex of its Noise static key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The bound Matrix access token.
    pub access_token: Option<String>,
    /// The Matrix user ID of that token.
    pub user_id: Option<String>,
    /// The Matrix device ID of that token.
    pub device_id: Option<String>,
    /// `/sync` token of the first batch not completely ACKed (`None`: never synced).
    pub next_batch: Option<String>,
    /// Events of that batch already ACKed by the device.
    pub batch_index: u32,
    /// The last event sequence number (Observe value) the device ACKed.
    pub acked_seq: u32,
    /// Token of the device's `+` registration, if registered.
    pub observe_token: Option<Vec<u8>>,
}

fn kind_code(kind: AliasKind) -> i64 {
    match kind {
        AliasKind::Room => 0,
        AliasKind::Event => 1,
        AliasKind::User => 2,
        AliasKind::SyncToken => 3,
    }
}

impl AliasStore {
    /// The stored state of `device` (all defaults if unknown).
    pub fn device(&self, device: &str) -> Result<DeviceRecord, AliasError> {
        let rec = self
            .conn
            .query_row(
                "SELECT access_token, user_id, device_id, next_batch, batch_index, acked_seq,
                        observe_token FROM device WHERE device = ?1",
                params![device],
                |r| {
                    Ok(DeviceRecord {
                        access_token: r.get(0)?,
                        user_id: r.get(1)?,
                        device_id: r.get(2)?,
                        next_batch: r.get(3)?,
                        batch_index: r.get(4)?,
                        acked_seq: r.get(5)?,
                        observe_token: r.get(6)?,
                    })
                },
            )
            .optional()?;
        Ok(rec.unwrap_or_default())
    }

    fn ensure_device(&self, device: &str) -> Result<(), AliasError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO device (device) VALUES (?1)",
            params![device],
        )?;
        Ok(())
    }

    /// Binds an access token (and its user and device IDs) to `device`.
    pub fn bind_token(
        &self,
        device: &str,
        access_token: &str,
        user_id: &str,
        device_id: Option<&str>,
    ) -> Result<(), AliasError> {
        self.ensure_device(device)?;
        self.conn.execute(
            "UPDATE device SET access_token = ?2, user_id = ?3, device_id = ?4 WHERE device = ?1",
            params![device, access_token, user_id, device_id],
        )?;
        Ok(())
    }

    /// Stores the Observe progress of `device`.
    pub fn set_progress(
        &self,
        device: &str,
        next_batch: Option<&str>,
        batch_index: u32,
        acked_seq: u32,
    ) -> Result<(), AliasError> {
        self.ensure_device(device)?;
        self.conn.execute(
            "UPDATE device SET next_batch = ?2, batch_index = ?3, acked_seq = ?4 WHERE device = ?1",
            params![device, next_batch, batch_index, acked_seq],
        )?;
        Ok(())
    }

    /// Stores (or with `None` clears) the `+` registration token of `device`.
    pub fn set_observe_token(&self, device: &str, token: Option<&[u8]>) -> Result<(), AliasError> {
        self.ensure_device(device)?;
        self.conn.execute(
            "UPDATE device SET observe_token = ?2 WHERE device = ?1",
            params![device, token],
        )?;
        Ok(())
    }

    /// Whether `alias` of `kind` was already introduced to `device`.
    pub fn is_introduced(
        &self,
        device: &str,
        kind: AliasKind,
        alias: u16,
    ) -> Result<bool, AliasError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM introduced WHERE device = ?1 AND kind = ?2 AND alias = ?3",
                params![device, kind_code(kind), i64::from(alias)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records that `alias` of `kind` was introduced to `device`.
    pub fn mark_introduced(
        &self,
        device: &str,
        kind: AliasKind,
        alias: u16,
    ) -> Result<(), AliasError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO introduced (device, kind, alias) VALUES (?1, ?2, ?3)",
            params![device, kind_code(kind), i64::from(alias)],
        )?;
        Ok(())
    }
}

impl AliasStore {
    /// Remembers the response frame sent for the request `mid` of `device` (the newest
    /// `keep` per device are kept), so a retransmitted request is answered byte for byte, also
    /// after a restart.
    pub fn cache_response(
        &self,
        device: &str,
        mid: u16,
        frame: &[u8],
        keep: usize,
    ) -> Result<(), AliasError> {
        let at: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(at) + 1, 0) FROM response WHERE device = ?1",
            params![device],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "INSERT OR REPLACE INTO response (device, mid, frame, at) VALUES (?1, ?2, ?3, ?4)",
            params![device, i64::from(mid), frame, at],
        )?;
        self.conn.execute(
            "DELETE FROM response WHERE device = ?1 AND at < ?2",
            params![device, at - keep as i64 + 1],
        )?;
        Ok(())
    }

    /// The response frame cached for the request `mid` of `device`.
    pub fn cached_response(&self, device: &str, mid: u16) -> Result<Option<Vec<u8>>, AliasError> {
        Ok(self
            .conn
            .query_row(
                "SELECT frame FROM response WHERE device = ?1 AND mid = ?2",
                params![device, i64::from(mid)],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_state_survives_reopen_and_v1_databases_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.sqlite");
        {
            // A version-1 database (aliases only), as the first gateway release wrote it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE alias (device TEXT NOT NULL, kind INTEGER NOT NULL,
                   alias INTEGER NOT NULL, full_id TEXT NOT NULL,
                   PRIMARY KEY (device, kind, alias), UNIQUE (device, kind, full_id));
                 INSERT INTO alias VALUES ('d', 0, 0, '!r:x');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        {
            let db = AliasStore::open(&path).unwrap();
            assert_eq!(
                db.resolve("d", AliasKind::Room, 0).unwrap().as_deref(),
                Some("!r:x")
            );
            assert_eq!(db.device("d").unwrap(), DeviceRecord::default());
            db.bind_token("d", "tok", "@a:x", Some("DEV")).unwrap();
            db.set_progress("d", Some("s1"), 2, 7).unwrap();
            db.set_observe_token("d", Some(&[1, 2])).unwrap();
            assert!(!db.is_introduced("d", AliasKind::Room, 0).unwrap());
            db.mark_introduced("d", AliasKind::Room, 0).unwrap();
        }
        let db = AliasStore::open(&path).unwrap();
        let rec = db.device("d").unwrap();
        assert_eq!(
            rec,
            DeviceRecord {
                access_token: Some("tok".into()),
                user_id: Some("@a:x".into()),
                device_id: Some("DEV".into()),
                next_batch: Some("s1".into()),
                batch_index: 2,
                acked_seq: 7,
                observe_token: Some(vec![1, 2]),
            }
        );
        assert!(db.is_introduced("d", AliasKind::Room, 0).unwrap());
        assert!(!db.is_introduced("d", AliasKind::User, 0).unwrap());
        for mid in 0..10u16 {
            db.cache_response("d", mid, &[mid as u8], 8).unwrap();
        }
        assert_eq!(db.cached_response("d", 1).unwrap(), None);
        assert_eq!(db.cached_response("d", 2).unwrap(), Some(vec![2]));
        assert_eq!(db.cached_response("d", 9).unwrap(), Some(vec![9]));
        assert_eq!(db.cached_response("e", 9).unwrap(), None);
    }
}
