//! Per-device aliases for long Matrix identifiers, kept in an embedded SQLite database.
//!
//! A room ID (`!7mqP7DYBUOmwAweF:example.org`, 30 bytes) costs 2.4 s on a 100 bit/s link; its
//! alias, a small integer, one or two bytes. Aliases are allocated on first use per
//! `(device, kind)`, counting up from 0, never reused, and survive reopening the database file.
//! How aliases travel on the air is the session layer's business; this module only stores them.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::AliasError;

/// Schema version stored in SQLite's `user_version`.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// What an alias stands for; each kind has its own alias space per device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AliasKind {
    /// A room ID (`!…:server`).
    Room,
    /// An event ID (`$…`).
    Event,
    /// A user ID (`@…:server`).
    User,
    /// A `/sync` `next_batch` token.
    SyncToken,
}

impl AliasKind {
    fn code(self) -> i64 {
        match self {
            AliasKind::Room => 0,
            AliasKind::Event => 1,
            AliasKind::User => 2,
            AliasKind::SyncToken => 3,
        }
    }
}

/// The alias database.
#[derive(Debug)]
pub struct AliasStore {
    pub(crate) conn: Connection,
}

impl AliasStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AliasError> {
        Self::init(Connection::open(path)?)
    }

    /// A database that lives only in memory (for tests and throwaway gateways).
    pub fn open_in_memory() -> Result<Self, AliasError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, AliasError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 0 {
            conn.execute_batch(
                "BEGIN;
                     CREATE TABLE IF NOT EXISTS alias (
                         device  TEXT    NOT NULL,
                         kind    INTEGER NOT NULL,
                         alias   INTEGER NOT NULL,
                         full_id TEXT    NOT NULL,
                         PRIMARY KEY (device, kind, alias),
                         UNIQUE (device, kind, full_id)
                     );
                     PRAGMA user_version = 1;
                     COMMIT;",
            )?;
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match version {
            // Version 2 adds the session layer's per-device state (`crate::device`).
            1 => crate::device::migrate_1_to_2(&conn)?,
            SCHEMA_VERSION => {}
            other => return Err(AliasError::SchemaVersion(other)),
        }
        Ok(Self { conn })
    }

    /// The alias of `full_id` for `device`, allocating the next free one on first use.
    pub fn alias_for(
        &mut self,
        device: &str,
        kind: AliasKind,
        full_id: &str,
    ) -> Result<u16, AliasError> {
        let tx = self.conn.transaction()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT alias FROM alias WHERE device = ?1 AND kind = ?2 AND full_id = ?3",
                params![device, kind.code(), full_id],
                |r| r.get(0),
            )
            .optional()?;
        let alias = match existing {
            Some(a) => a,
            None => {
                let next: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(alias) + 1, 0) FROM alias WHERE device = ?1 AND kind = ?2",
                    params![device, kind.code()],
                    |r| r.get(0),
                )?;
                if next > i64::from(u16::MAX) {
                    return Err(AliasError::Exhausted);
                }
                tx.execute(
                    "INSERT INTO alias (device, kind, alias, full_id) VALUES (?1, ?2, ?3, ?4)",
                    params![device, kind.code(), next, full_id],
                )?;
                tracing::debug!(device, ?kind, alias = next, full_id, "alias allocated");
                next
            }
        };
        tx.commit()?;
        u16::try_from(alias).map_err(|_| AliasError::Exhausted)
    }

    /// The identifier behind `alias` for `device`, if allocated.
    pub fn resolve(
        &self,
        device: &str,
        kind: AliasKind,
        alias: u16,
    ) -> Result<Option<String>, AliasError> {
        Ok(self
            .conn
            .query_row(
                "SELECT full_id FROM alias WHERE device = ?1 AND kind = ?2 AND alias = ?3",
                params![device, kind.code(), i64::from(alias)],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_in_order_and_is_stable() {
        let mut s = AliasStore::open_in_memory().unwrap();
        assert_eq!(s.alias_for("d1", AliasKind::Room, "!a:x").unwrap(), 0);
        assert_eq!(s.alias_for("d1", AliasKind::Room, "!b:x").unwrap(), 1);
        assert_eq!(s.alias_for("d1", AliasKind::Room, "!a:x").unwrap(), 0);
        // Separate spaces per kind and per device.
        assert_eq!(s.alias_for("d1", AliasKind::Event, "!a:x").unwrap(), 0);
        assert_eq!(s.alias_for("d2", AliasKind::Room, "!b:x").unwrap(), 0);
        assert_eq!(
            s.resolve("d1", AliasKind::Room, 1).unwrap().as_deref(),
            Some("!b:x")
        );
        assert_eq!(
            s.resolve("d2", AliasKind::Room, 0).unwrap().as_deref(),
            Some("!b:x")
        );
        assert_eq!(s.resolve("d1", AliasKind::Room, 2).unwrap(), None);
        assert_eq!(s.resolve("d1", AliasKind::User, 0).unwrap(), None);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alias.sqlite");
        {
            let mut s = AliasStore::open(&path).unwrap();
            for i in 0..300u16 {
                assert_eq!(
                    s.alias_for("dev", AliasKind::Event, &format!("$e{i}"))
                        .unwrap(),
                    i
                );
            }
            assert_eq!(
                s.alias_for("dev", AliasKind::User, "@alice:localhost")
                    .unwrap(),
                0
            );
        }
        let mut s = AliasStore::open(&path).unwrap();
        assert_eq!(
            s.resolve("dev", AliasKind::Event, 299).unwrap().as_deref(),
            Some("$e299")
        );
        assert_eq!(
            s.resolve("dev", AliasKind::User, 0).unwrap().as_deref(),
            Some("@alice:localhost")
        );
        assert_eq!(s.alias_for("dev", AliasKind::Event, "$e7").unwrap(), 7);
        assert_eq!(s.alias_for("dev", AliasKind::Event, "$new").unwrap(), 300);
    }

    #[test]
    fn exhaustion_is_an_error() {
        let mut s = AliasStore::open_in_memory().unwrap();
        // Fill the space quickly with one insert statement, then ask for one more.
        s.conn
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 65535)
                 INSERT INTO alias SELECT 'd', 3, i, 't' || i FROM n;",
            )
            .unwrap();
        assert_eq!(
            s.alias_for("d", AliasKind::SyncToken, "t65535").unwrap(),
            65535
        );
        assert!(matches!(
            s.alias_for("d", AliasKind::SyncToken, "fresh"),
            Err(AliasError::Exhausted)
        ));
        // The failed allocation left nothing behind.
        assert_eq!(
            s.resolve("d", AliasKind::SyncToken, 0).unwrap().as_deref(),
            Some("t0")
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alias.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 9;")
            .unwrap();
        assert!(matches!(
            AliasStore::open(&path),
            Err(AliasError::SchemaVersion(9))
        ));
    }
}
