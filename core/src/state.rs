//! Local state in one JSON file under the app's state folder: which users
//! enabled biometric sign-in on this phone, their device ids and key
//! aliases, and removals to finish on the server; the accounts signed in
//! here, and their sessions sealed by the app's `SessionSealer` when it gave
//! one. Nothing secret is stored in clear.
//!
//! The file replaced SQLite to shrink the mobile library (docs/PERFORMANCE.md,
//! "Mobile library size"): the state is a few records per account, so
//! reading the whole file and replacing it at each change is cheap. Every
//! change is written to a temporary file, flushed to disk (`fsync`), renamed
//! over the old file and its folder flushed: a crash or power loss leaves
//! the old state or the new one, never a mix (the guarantee SQLite's
//! transactions gave). A process-wide lock and (Unix) a `flock` on a lock
//! file order read-modify-write cycles, so neither several `DeviceTrust`
//! objects in one process nor several processes on one folder lose each
//! other's changes; the file is read afresh at every call.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{DeviceTrustError, Result};
use crate::keystore::{KeyStorage, UserVerification};
use crate::model::{at, unix_secs};

/// The state file, and the version of its format this SDK writes.
const FILE: &str = "devicetrust-state.json";
const TMP: &str = "devicetrust-state.json.tmp";
/// Locked (`flock`) around every read-modify-write, across processes.
const LOCK_FILE: &str = "devicetrust-state.lock";
/// SQLite state of SDK builds before 2026-11-23 (pre-release; not read).
const OLD_SQLITE_FILE: &str = "devicetrust-state.db";
const FORMAT: u32 = 1;
/// The largest state file read (a few KB per account in practice).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Orders every read-modify-write of state files in this process; the lock
/// file orders processes (`flock` locks belong to an open file, so threads
/// of one process would not exclude each other with it alone).
static LOCK: Mutex<()> = Mutex::new(());

/// Both locks, released on drop (closing the lock file releases `flock`).
struct Guard {
    _file: Option<File>,
    _process: MutexGuard<'static, ()>,
}

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

/// Bytes as standard base64 in the file.
mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// This phone's trusted device for one user (keyed by user id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DeviceEntry {
    device_id: String,
    key_alias: String,
    #[serde(with = "b64")]
    public_key: Vec<u8>,
    name: String,
    key_storage: KeyStorage,
    user_verification: UserVerification,
    trusted_until: i64,
    registered_at: i64,
}

/// A device to delete on the server at the next sign-in (keyed by device id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Removal {
    user_id: String,
    queued_at: i64,
}

/// An account signed in here (keyed by user id). `name` and `email` are
/// what `profile()` last returned: personal data, no secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct AccountEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    last_sign_in_at: Option<i64>,
}

/// A session sealed by the app's sealer (keyed by user id): the refresh
/// token never appears in clear. `expires_at` stays in clear so a dead
/// session is dropped without opening it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SealedEntry {
    #[serde(with = "b64")]
    sealed: Vec<u8>,
    #[serde(default)]
    expires_at: Option<i64>,
    sealed_at: i64,
}

/// The whole file. Maps keyed by their unique id, as SQLite's primary keys
/// were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Doc {
    format: u32,
    #[serde(default)]
    devices: BTreeMap<String, DeviceEntry>,
    #[serde(default)]
    pending_removals: BTreeMap<String, Removal>,
    #[serde(default)]
    accounts: BTreeMap<String, AccountEntry>,
    #[serde(default)]
    sealed_sessions: BTreeMap<String, SealedEntry>,
    /// Small settings: `active_user`, the account calls act for.
    #[serde(default)]
    meta: BTreeMap<String, String>,
}

impl Default for Doc {
    fn default() -> Self {
        Doc {
            format: FORMAT,
            devices: BTreeMap::new(),
            pending_removals: BTreeMap::new(),
            accounts: BTreeMap::new(),
            sealed_sessions: BTreeMap::new(),
            meta: BTreeMap::new(),
        }
    }
}

fn storage_error(what: &str, path: &Path, e: impl std::fmt::Display) -> DeviceTrustError {
    DeviceTrustError::LocalStorage {
        reason: format!("{what} {}: {e}", path.display()),
    }
}

fn record(user_id: &str, d: &DeviceEntry) -> DeviceRecord {
    DeviceRecord {
        enrolment: LocalEnrolment {
            user_id: user_id.to_owned(),
            device_id: d.device_id.clone(),
            device_name: d.name.clone(),
            key_storage: d.key_storage,
            user_verification: d.user_verification,
            trusted_until: at(d.trusted_until),
            registered_at: at(d.registered_at),
        },
        key_alias: d.key_alias.clone(),
        public_key: d.public_key.clone(),
    }
}

/// Creates the state folder (and missing parents) readable by the app
/// alone: on a desktop (Python, the terminal sample) its file holds
/// accounts' names, e-mails and sealed sessions, and a phone's app sandbox
/// is not there to hide them. A folder that exists is the app's choice and
/// is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

pub(crate) struct LocalState {
    dir: PathBuf,
    path: PathBuf,
}

impl LocalState {
    /// Creates the folder and checks that its state file (if any) is one
    /// this SDK reads, so a damaged file fails at construction.
    pub fn open(dir: &Path) -> Result<Self> {
        create_private_dir(dir).map_err(|e| storage_error("cannot create", dir, e))?;
        let state = LocalState {
            dir: dir.to_owned(),
            path: dir.join(FILE),
        };
        let _guard = state.lock()?;
        state.load()?;
        if !state.path.exists() && dir.join(OLD_SQLITE_FILE).exists() {
            // docs/SDK.md, "Local state": pre-release SQLite state is not
            // migrated; its users enable biometric sign-in again.
            tracing::warn!("ignoring the SQLite local state of a pre-release SDK build");
        }
        Ok(state)
    }

    /// The process-wide lock, then (Unix) an exclusive `flock` on the lock
    /// file: another process using the folder waits for this call. Elsewhere
    /// (Windows) only the process-wide lock (docs/SDK.md, "Local state").
    fn lock(&self) -> Result<Guard> {
        let process = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        #[cfg(unix)]
        {
            use rustix::fs::{flock, open, FlockOperation, Mode, OFlags};
            let path = self.dir.join(LOCK_FILE);
            let fd = open(
                &path,
                OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| storage_error("cannot open", &path, e))?;
            loop {
                match flock(&fd, FlockOperation::LockExclusive) {
                    Ok(()) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(storage_error("cannot lock", &path, e)),
                }
            }
            Ok(Guard {
                _file: Some(File::from(fd)),
                _process: process,
            })
        }
        #[cfg(not(unix))]
        Ok(Guard {
            _file: None,
            _process: process,
        })
    }

    /// Opens the state file without following a symbolic link (Unix): a
    /// link there was not made by the SDK, which only renames regular
    /// files into place.
    fn open_state_file(&self) -> std::io::Result<File> {
        #[cfg(unix)]
        {
            use rustix::fs::{open, Mode, OFlags};
            match open(
                &self.path,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => Ok(File::from(fd)),
                Err(rustix::io::Errno::LOOP) => Err(std::io::Error::other(
                    "the state file is a symbolic link (not followed)",
                )),
                Err(e) => Err(e.into()),
            }
        }
        #[cfg(not(unix))]
        File::open(&self.path)
    }

    fn load(&self) -> Result<Doc> {
        let file = match self.open_state_file() {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Doc::default()),
            Err(e) => return Err(storage_error("cannot read", &self.path, e)),
        };
        // Bounded: the file is read whole at every call.
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| storage_error("cannot read", &self.path, e))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(storage_error(
                "local state too large in",
                &self.path,
                format!("over {MAX_FILE_BYTES} bytes"),
            ));
        }
        let doc: Doc = serde_json::from_slice(&bytes)
            .map_err(|e| storage_error("unreadable local state in", &self.path, e))?;
        if doc.format != FORMAT {
            return Err(storage_error(
                "local state of an unknown format in",
                &self.path,
                format!("format {} (this SDK reads {FORMAT})", doc.format),
            ));
        }
        Ok(doc)
    }

    /// Replaces the file atomically: temporary file, fsync, rename, fsync of
    /// the folder (so the rename itself survives a power loss).
    fn store(&self, doc: &Doc) -> Result<()> {
        let bytes =
            serde_json::to_vec(doc).map_err(|e| storage_error("cannot encode", &self.path, e))?;
        let tmp = self.dir.join(TMP);
        // A file left at the temporary name (a crash before the rename, or
        // planted in a folder others can write) is removed, not reused:
        // `create_new` (O_EXCL) neither follows a symbolic link there nor
        // keeps someone else's file and its mode. The lock makes the fixed
        // name safe between our own writers.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(storage_error("cannot remove", &tmp, e)),
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Personal data (names, e-mails): readable by the app only.
            options.mode(0o600);
        }
        let write = |mut f: File| -> std::io::Result<()> {
            f.write_all(&bytes)?;
            f.sync_all()
        };
        options
            .open(&tmp)
            .and_then(write)
            .map_err(|e| storage_error("cannot write", &tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| storage_error("cannot replace", &self.path, e))?;
        #[cfg(unix)]
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| storage_error("cannot flush", &self.dir, e))?;
        Ok(())
    }

    fn read<T>(&self, f: impl FnOnce(&Doc) -> T) -> Result<T> {
        let _guard = self.lock()?;
        Ok(f(&self.load()?))
    }

    /// Applies `f` and writes the result, unless it changed nothing.
    fn change(&self, f: impl FnOnce(&mut Doc)) -> Result<()> {
        let _guard = self.lock()?;
        let before = self.load()?;
        let mut doc = before.clone();
        f(&mut doc);
        if doc == before {
            return Ok(());
        }
        self.store(&doc)
    }

    pub fn device(&self, user_id: &str) -> Result<Option<DeviceRecord>> {
        self.read(|d| d.devices.get(user_id).map(|e| record(user_id, e)))
    }

    /// Every device, oldest registration first.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>> {
        self.read(|d| {
            let mut all: Vec<DeviceRecord> = d.devices.iter().map(|(u, e)| record(u, e)).collect();
            // BTreeMap order is by user id; a stable sort keeps it for ties.
            all.sort_by_key(|r| unix_secs(r.enrolment.registered_at));
            all
        })
    }

    pub fn save_device(&self, d: &DeviceRecord) -> Result<()> {
        let e = &d.enrolment;
        let entry = DeviceEntry {
            device_id: e.device_id.clone(),
            key_alias: d.key_alias.clone(),
            public_key: d.public_key.clone(),
            name: e.device_name.clone(),
            key_storage: e.key_storage,
            user_verification: e.user_verification,
            trusted_until: unix_secs(e.trusted_until),
            registered_at: unix_secs(e.registered_at),
        };
        self.change(|doc| {
            doc.devices.insert(e.user_id.clone(), entry);
        })
    }

    pub fn forget_device(&self, user_id: &str) -> Result<()> {
        self.change(|doc| {
            doc.devices.remove(user_id);
        })
    }

    pub fn set_trusted_until(&self, user_id: &str, until: i64) -> Result<()> {
        self.change(|doc| {
            if let Some(d) = doc.devices.get_mut(user_id) {
                d.trusted_until = until;
            }
        })
    }

    /// Queues a removal; one already queued for the device is kept.
    pub fn queue_removal(&self, user_id: &str, device_id: &str, now: i64) -> Result<()> {
        self.change(|doc| {
            doc.pending_removals
                .entry(device_id.to_owned())
                .or_insert_with(|| Removal {
                    user_id: user_id.to_owned(),
                    queued_at: now,
                });
        })
    }

    pub fn pending_removals(&self, user_id: &str) -> Result<Vec<String>> {
        self.read(|d| {
            d.pending_removals
                .iter()
                .filter(|(_, r)| r.user_id == user_id)
                .map(|(device_id, _)| device_id.clone())
                .collect()
        })
    }

    pub fn removal_done(&self, device_id: &str) -> Result<()> {
        self.change(|doc| {
            doc.pending_removals.remove(device_id);
        })
    }
}

/// Several accounts and sealed sessions.
impl LocalState {
    /// Every account, by user id.
    pub fn accounts(&self) -> Result<Vec<AccountRow>> {
        self.read(|d| {
            d.accounts
                .iter()
                .map(|(user_id, a)| AccountRow {
                    user_id: user_id.clone(),
                    name: a.name.clone(),
                    email: a.email.clone(),
                    last_sign_in_at: a.last_sign_in_at,
                })
                .collect()
        })
    }

    /// Records a sign-in of `user_id` now (the account joins the list).
    pub fn account_signed_in(&self, user_id: &str, now: i64) -> Result<()> {
        self.change(|doc| {
            doc.accounts
                .entry(user_id.to_owned())
                .or_default()
                .last_sign_in_at = Some(now);
        })
    }

    /// The name and e-mail to show in the account picker (no new entry: only
    /// accounts that signed in here are listed).
    pub fn set_account_profile(&self, user_id: &str, name: &str, email: &str) -> Result<()> {
        self.change(|doc| {
            if let Some(a) = doc.accounts.get_mut(user_id) {
                a.name = Some(name.to_owned());
                a.email = Some(email.to_owned());
            }
        })
    }

    /// Forgets the account and its sealed session (not its device), in one
    /// write.
    pub fn forget_account(&self, user_id: &str) -> Result<()> {
        self.change(|doc| {
            doc.accounts.remove(user_id);
            doc.sealed_sessions.remove(user_id);
        })
    }

    pub fn sealed_session(&self, user_id: &str) -> Result<Option<SealedRow>> {
        self.read(|d| {
            d.sealed_sessions.get(user_id).map(|s| SealedRow {
                sealed: s.sealed.clone(),
                expires_at: s.expires_at,
            })
        })
    }

    /// `(user_id, expires_at)` of every sealed session.
    pub fn sealed_sessions(&self) -> Result<Vec<(String, Option<i64>)>> {
        self.read(|d| {
            d.sealed_sessions
                .iter()
                .map(|(u, s)| (u.clone(), s.expires_at))
                .collect()
        })
    }

    /// Replaces the account's sealed session in one atomic file replace: a
    /// crash leaves the old copy or the new one, never a mix.
    pub fn save_sealed(
        &self,
        user_id: &str,
        sealed: &[u8],
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        self.change(|doc| {
            doc.sealed_sessions.insert(
                user_id.to_owned(),
                SealedEntry {
                    sealed: sealed.to_vec(),
                    expires_at,
                    sealed_at: now,
                },
            );
        })
    }

    pub fn delete_sealed(&self, user_id: &str) -> Result<()> {
        self.change(|doc| {
            doc.sealed_sessions.remove(user_id);
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.read(|d| d.meta.get(key).cloned())
    }

    pub fn set_meta(&self, key: &str, value: Option<&str>) -> Result<()> {
        self.change(|doc| match value {
            Some(v) => {
                doc.meta.insert(key.to_owned(), v.to_owned());
            }
            None => {
                doc.meta.remove(key);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(user: &str, registered_at: i64) -> DeviceRecord {
        DeviceRecord {
            enrolment: LocalEnrolment {
                user_id: user.into(),
                device_id: format!("dev-{user}"),
                device_name: "Phone".into(),
                key_storage: KeyStorage::Software,
                user_verification: UserVerification::Biometric,
                trusted_until: at(2_000_000_000),
                registered_at: at(registered_at),
            },
            key_alias: format!("alias-{user}"),
            public_key: vec![4, 0, 255, 7],
        }
    }

    #[test]
    fn what_is_written_reads_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        state.save_device(&device("bob", 20)).unwrap();
        state.save_device(&device("ann", 20)).unwrap();
        state.save_device(&device("cid", 10)).unwrap();
        state.set_trusted_until("ann", 1_900_000_000).unwrap();
        state.queue_removal("ann", "old-1", 5).unwrap();
        state.queue_removal("bob", "old-1", 6).unwrap(); // kept: first wins
        state.queue_removal("ann", "old-2", 7).unwrap();
        state.account_signed_in("ann", 100).unwrap();
        state
            .set_account_profile("ann", "Ann", "ann@example.com")
            .unwrap();
        state
            .save_sealed("ann", &[1, 2, 3], Some(500), 100)
            .unwrap();
        state.set_meta("active_user", Some("ann")).unwrap();
        drop(state);

        let state = LocalState::open(dir.path()).unwrap();
        let users: Vec<_> = state
            .devices()
            .unwrap()
            .into_iter()
            .map(|d| d.enrolment.user_id)
            .collect();
        // Oldest registration first, then by user id.
        assert_eq!(users, ["cid", "ann", "bob"]);
        let ann = state.device("ann").unwrap().unwrap();
        assert_eq!(ann.enrolment.trusted_until, at(1_900_000_000));
        assert_eq!(ann.public_key, vec![4, 0, 255, 7]);
        assert_eq!(ann.key_alias, "alias-ann");
        assert_eq!(ann.enrolment.user_verification, UserVerification::Biometric);
        assert_eq!(state.pending_removals("ann").unwrap(), ["old-1", "old-2"]);
        assert!(state.pending_removals("bob").unwrap().is_empty());
        assert_eq!(
            state.accounts().unwrap(),
            vec![AccountRow {
                user_id: "ann".into(),
                name: Some("Ann".into()),
                email: Some("ann@example.com".into()),
                last_sign_in_at: Some(100),
            }]
        );
        assert_eq!(
            state.sealed_session("ann").unwrap(),
            Some(SealedRow {
                sealed: vec![1, 2, 3],
                expires_at: Some(500),
            })
        );
        assert_eq!(state.meta("active_user").unwrap().as_deref(), Some("ann"));

        state.removal_done("old-1").unwrap();
        state.forget_account("ann").unwrap();
        state.forget_device("bob").unwrap();
        state.set_meta("active_user", None).unwrap();
        assert_eq!(state.pending_removals("ann").unwrap(), ["old-2"]);
        assert!(state.accounts().unwrap().is_empty());
        assert_eq!(state.sealed_session("ann").unwrap(), None);
        assert!(state.device("bob").unwrap().is_none());
        assert_eq!(state.meta("active_user").unwrap(), None);
        // The device outlives the account's row.
        assert!(state.device("ann").unwrap().is_some());
    }

    #[test]
    fn a_profile_for_an_account_never_signed_in_here_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        state
            .set_account_profile("eve", "Eve", "eve@example.com")
            .unwrap();
        state.set_trusted_until("eve", 5).unwrap();
        assert!(state.accounts().unwrap().is_empty());
        assert!(state.devices().unwrap().is_empty());
        // Nothing changed, so nothing was written.
        assert!(!dir.path().join(FILE).exists());
    }

    #[test]
    fn a_crash_mid_write_leaves_the_previous_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        state.save_sealed("ann", b"first", None, 1).unwrap();
        // A write killed before its rename leaves a partial temporary file;
        // the state is the last complete one, and the next write succeeds.
        std::fs::write(dir.path().join(TMP), b"{\"format\":1,\"sealed_ses").unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        assert_eq!(
            state.sealed_session("ann").unwrap().unwrap().sealed,
            b"first"
        );
        state.save_sealed("ann", b"second", None, 2).unwrap();
        assert_eq!(
            state.sealed_session("ann").unwrap().unwrap().sealed,
            b"second"
        );
        assert!(!dir.path().join(TMP).exists());
    }

    #[test]
    fn a_damaged_or_newer_file_is_a_clear_error_not_a_reset() {
        for (content, expected) in [
            (&b"\x00garbage"[..], "unreadable local state"),
            (&b"{\"format\":2}"[..], "unknown format"),
            (
                &b"{\"format\":1,\"sealed_sessions\":{\"a\":{\"sealed\":\"%%\",\"sealed_at\":1}}}"
                    [..],
                "unreadable local state",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(FILE), content).unwrap();
            match LocalState::open(dir.path()) {
                Err(DeviceTrustError::LocalStorage { reason }) => {
                    assert!(reason.contains(expected), "{reason}")
                }
                other => panic!("{:?}", other.map(|_| ())),
            }
            // The file is left for inspection, not overwritten.
            assert_eq!(std::fs::read(dir.path().join(FILE)).unwrap(), content);
        }
    }

    #[test]
    fn an_old_sqlite_state_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(OLD_SQLITE_FILE), b"SQLite format 3\0").unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        assert!(state.devices().unwrap().is_empty());
        assert!(dir.path().join(OLD_SQLITE_FILE).exists());
    }

    #[test]
    fn two_handles_on_one_folder_lose_no_change() {
        let dir = tempfile::tempdir().unwrap();
        let a = std::sync::Arc::new(LocalState::open(dir.path()).unwrap());
        let b = std::sync::Arc::new(LocalState::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                std::thread::spawn(move || {
                    for j in 0..10 {
                        s.account_signed_in(&format!("u{i}-{j}"), j).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(a.accounts().unwrap().len(), 80);
        assert_eq!(b.accounts().unwrap().len(), 80);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_to_the_app() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        state.account_signed_in("ann", 1).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_the_sdk_creates_is_private_to_the_app() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        LocalState::open(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    /// Not a test on its own: the writer process of
    /// `two_processes_on_one_folder_lose_no_change` (it does nothing unless
    /// that test starts it).
    #[test]
    fn state_writer_process() {
        let (Ok(dir), Ok(prefix)) = (
            std::env::var("DEVICETRUST_STATE_WRITER_DIR"),
            std::env::var("DEVICETRUST_STATE_WRITER_PREFIX"),
        ) else {
            return;
        };
        let state = LocalState::open(Path::new(&dir)).unwrap();
        for j in 0..40 {
            state
                .account_signed_in(&format!("{prefix}-{j}"), j)
                .unwrap();
        }
    }

    #[test]
    fn two_processes_on_one_folder_lose_no_change() {
        // An app's main process and its widget or service process, or two
        // desktop processes: the process-wide mutex does not order them.
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|prefix| {
                std::process::Command::new(&exe)
                    .args(["--exact", "state::tests::state_writer_process", "--quiet"])
                    .env("DEVICETRUST_STATE_WRITER_DIR", dir.path())
                    .env("DEVICETRUST_STATE_WRITER_PREFIX", prefix)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        let state = LocalState::open(dir.path()).unwrap();
        assert_eq!(state.accounts().unwrap().len(), 120);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_temporary_file_is_neither_written_through_nor_kept() {
        use std::os::unix::fs::PermissionsExt;
        // A state folder others can write (a shared desktop folder): a
        // symbolic link at the temporary name must not make the SDK
        // overwrite its target, and a file planted there (readable by all,
        // owned by someone else) must not become the state file.
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(TMP)).unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        state.account_signed_in("ann", 1).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let meta = std::fs::symlink_metadata(dir.path().join(FILE)).unwrap();
        assert!(meta.file_type().is_file());

        std::fs::write(dir.path().join(TMP), b"planted").unwrap();
        std::fs::set_permissions(dir.path().join(TMP), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        state.account_signed_in("bob", 2).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(state.accounts().unwrap().len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_state_file_that_is_a_symbolic_link_is_refused() {
        // Someone who can write the folder points the file at state of his
        // choosing (an active account, devices, key aliases).
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let planted = outside.path().join("planted.json");
        std::fs::write(&planted, br#"{"format":1,"meta":{"active_user":"eve"}}"#).unwrap();
        std::os::unix::fs::symlink(&planted, dir.path().join(FILE)).unwrap();
        match LocalState::open(dir.path()) {
            Err(DeviceTrustError::LocalStorage { reason }) => {
                assert!(reason.contains("symbolic link"), "{reason}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_huge_or_deeply_nested_file_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        // Held whole in memory otherwise, at every call.
        let mut huge = b"{\"format\":1,\"meta\":{\"x\":\"".to_vec();
        huge.resize((MAX_FILE_BYTES + 1) as usize, b'a');
        huge.extend_from_slice(b"\"}}");
        std::fs::write(dir.path().join(FILE), &huge).unwrap();
        match LocalState::open(dir.path()) {
            Err(DeviceTrustError::LocalStorage { reason }) => {
                assert!(reason.contains("too large"), "{reason}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // An unknown field is skipped without recursion (serde_json skips
        // iteratively), so deep nesting there cannot overflow the stack; a
        // newer SDK's unknown fields are dropped at the next write.
        let deep = format!(
            "{{\"format\":1,\"x\":{}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        std::fs::write(dir.path().join(FILE), deep).unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        state.account_signed_in("ann", 1).unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!text.contains("\"x\""), "{text}");
        // In a known field, past serde_json's depth limit: an error.
        let deep = format!(
            "{{\"format\":1,\"meta\":{}1{}}}",
            "{\"a\":".repeat(1_000),
            "}".repeat(1_000)
        );
        std::fs::write(dir.path().join(FILE), deep).unwrap();
        match LocalState::open(dir.path()) {
            Err(DeviceTrustError::LocalStorage { reason }) => {
                assert!(reason.contains("unreadable"), "{reason}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
