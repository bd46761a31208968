//! Local state in SQLite under the app's state folder: which users enabled
//! biometric sign-in on this phone, their device ids and key aliases, and
//! removals to finish on the server; the accounts signed in here, and their
//! sessions sealed by the app's `SessionSealer` when it gave one. Nothing
//! secret is stored in clear.

use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};

use crate::error::{DeviceTrustError, Result};
use crate::keystore::{KeyStorage, UserVerification};
use crate::model::{at, unix_secs};

/// What this phone knows about a user's biometric sign-in, without asking
/// the server.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEnrolment {
    pub user_id: String,
    pub device_id: String,
    pub device_name: String,
    pub key_storage: KeyStorage,
    pub user_verification: UserVerification,
    /// When this phone's trust ends, as last seen from the server.
    pub trusted_until: SystemTime,
    pub registered_at: SystemTime,
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceRecord {
    pub enrolment: LocalEnrolment,
    pub key_alias: String,
    pub public_key: Vec<u8>,
}

pub(crate) struct LocalState {
    conn: Mutex<Connection>,
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        enrolment: LocalEnrolment {
            user_id: r.get("user_id")?,
            device_id: r.get("device_id")?,
            device_name: r.get("name")?,
            key_storage: parse(&r.get::<_, String>("key_storage")?)?,
            user_verification: parse(&r.get::<_, String>("user_verification")?)?,
            trusted_until: at(r.get("trusted_until")?),
            registered_at: at(r.get("registered_at")?),
        },
        key_alias: r.get("key_alias")?,
        public_key: r.get("public_key")?,
    })
}

impl LocalState {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| DeviceTrustError::LocalStorage {
            reason: format!("cannot create {}: {e}", dir.display()),
        })?;
        let mut conn = Connection::open(dir.join("devicetrust-state.db"))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        Migrations::new(vec![
            M::up(include_str!("state_migrations/0001_initial.sql")),
            M::up(include_str!("state_migrations/0002_accounts.sql")),
        ])
        .to_latest(&mut conn)
        .map_err(|e| DeviceTrustError::LocalStorage {
            reason: format!("migrating local state: {e}"),
        })?;
        Ok(LocalState {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&conn)?)
    }

    pub fn device(&self, user_id: &str) -> Result<Option<DeviceRecord>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM devices WHERE user_id = ?1",
                params![user_id],
                record,
            )
            .optional()
        })
    }

    pub fn devices(&self) -> Result<Vec<DeviceRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT * FROM devices ORDER BY registered_at, user_id")?;
            let rows = stmt.query_map([], record)?.collect();
            rows
        })
    }

    pub fn save_device(&self, d: &DeviceRecord) -> Result<()> {
        let e = &d.enrolment;
        self.with(|c| {
            c.execute(
                "INSERT INTO devices (user_id, device_id, key_alias, public_key, name, key_storage,
                                      user_verification, trusted_until, registered_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (user_id) DO UPDATE SET
                   device_id = excluded.device_id, key_alias = excluded.key_alias,
                   public_key = excluded.public_key, name = excluded.name,
                   key_storage = excluded.key_storage,
                   user_verification = excluded.user_verification,
                   trusted_until = excluded.trusted_until,
                   registered_at = excluded.registered_at",
                params![
                    e.user_id,
                    e.device_id,
                    d.key_alias,
                    d.public_key,
                    e.device_name,
                    name(&e.key_storage),
                    name(&e.user_verification),
                    unix_secs(e.trusted_until),
                    unix_secs(e.registered_at)
                ],
            )
            .map(|_| ())
        })
    }

    pub fn forget_device(&self, user_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM devices WHERE user_id = ?1", params![user_id])
                .map(|_| ())
        })
    }

    pub fn set_trusted_until(&self, user_id: &str, until: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET trusted_until = ?2 WHERE user_id = ?1",
                params![user_id, until],
            )
            .map(|_| ())
        })
    }

    pub fn queue_removal(&self, user_id: &str, device_id: &str, now: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO pending_removals (device_id, user_id, queued_at)
                 VALUES (?1, ?2, ?3)",
                params![device_id, user_id, now],
            )
            .map(|_| ())
        })
    }

    pub fn pending_removals(&self, user_id: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT device_id FROM pending_removals WHERE user_id = ?1")?;
            let rows = stmt.query_map(params![user_id], |r| r.get(0))?.collect();
            rows
        })
    }

    pub fn removal_done(&self, device_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM pending_removals WHERE device_id = ?1",
                params![device_id],
            )
            .map(|_| ())
        })
    }
}

/// An account that signed in on this phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountRow {
    pub user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub last_sign_in_at: Option<i64>,
}

/// A session sealed by the app's `SessionSealer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SealedRow {
    pub sealed: Vec<u8>,
    pub expires_at: Option<i64>,
}

/// Several accounts and sealed sessions (migration 0002).
impl LocalState {
    pub fn accounts(&self) -> Result<Vec<AccountRow>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT user_id, name, email, last_sign_in_at FROM accounts ORDER BY user_id",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(AccountRow {
                        user_id: r.get(0)?,
                        name: r.get(1)?,
                        email: r.get(2)?,
                        last_sign_in_at: r.get(3)?,
                    })
                })?
                .collect();
            rows
        })
    }

    /// Records a sign-in of `user_id` now (the account joins the list).
    pub fn account_signed_in(&self, user_id: &str, now: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO accounts (user_id, last_sign_in_at) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET last_sign_in_at = excluded.last_sign_in_at",
                params![user_id, now],
            )
            .map(|_| ())
        })
    }

    /// The name and e-mail to show in the account picker (no new row: only
    /// accounts that signed in here are listed).
    pub fn set_account_profile(&self, user_id: &str, name: &str, email: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE accounts SET name = ?2, email = ?3 WHERE user_id = ?1",
                params![user_id, name, email],
            )
            .map(|_| ())
        })
    }

    /// Forgets the account's row and its sealed session (not its device).
    pub fn forget_account(&self, user_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM accounts WHERE user_id = ?1", params![user_id])?;
            c.execute(
                "DELETE FROM sealed_sessions WHERE user_id = ?1",
                params![user_id],
            )
            .map(|_| ())
        })
    }

    pub fn sealed_session(&self, user_id: &str) -> Result<Option<SealedRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT sealed, expires_at FROM sealed_sessions WHERE user_id = ?1",
                params![user_id],
                |r| {
                    Ok(SealedRow {
                        sealed: r.get(0)?,
                        expires_at: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    /// `(user_id, expires_at)` of every sealed session.
    pub fn sealed_sessions(&self) -> Result<Vec<(String, Option<i64>)>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT user_id, expires_at FROM sealed_sessions")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect();
            rows
        })
    }

    /// Replaces the account's sealed session in one statement: a crash
    /// leaves the old copy or the new one, never a mix.
    pub fn save_sealed(
        &self,
        user_id: &str,
        sealed: &[u8],
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO sealed_sessions (user_id, sealed, expires_at, sealed_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed,
                   expires_at = excluded.expires_at, sealed_at = excluded.sealed_at",
                params![user_id, sealed, expires_at, now],
            )
            .map(|_| ())
        })
    }

    pub fn delete_sealed(&self, user_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM sealed_sessions WHERE user_id = ?1",
                params![user_id],
            )
            .map(|_| ())
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    pub fn set_meta(&self, key: &str, value: Option<&str>) -> Result<()> {
        self.with(|c| {
            match value {
                Some(v) => c.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, v],
                ),
                None => c.execute("DELETE FROM meta WHERE key = ?1", params![key]),
            }
            .map(|_| ())
        })
    }
}
