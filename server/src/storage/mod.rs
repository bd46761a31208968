//! Everything the server keeps, behind one trait. Handlers see only `Store`;
//! the SQLite backend (one instance) lives in `sqlite`, the PostgreSQL one
//! (any number of instances on one database) in `postgres`.
//!
//! Every single-use thing (challenge, registration, OTP try, refresh token,
//! login) is consumed by one atomic statement or transaction, so of any number
//! of racing requests exactly one wins.

pub mod group_commit;
pub mod migrate;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(String),
    #[error("connection pool error: {0}")]
    Pool(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("a row with that key exists already")]
    Conflict,
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
    #[error("storage task failed: {0}")]
    Task(String),
    /// The database cannot be reached now (restarting, failing over): the
    /// request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(
        "the server key is not the one this database was first used with: every instance \
         (and a migrated database) needs the same key (--server-key or the key file)"
    )]
    KeyMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    pub primary_market: String,
    pub password_hash: String,
    pub security_code_hash: Option<String>,
    pub enrolled_at: Option<i64>,
    pub created_at: i64,
    /// False for a mobile given at enrolment until the same sign-in completes
    /// with a code sent to the e-mail on file: until then it is no OTP channel.
    pub mobile_verified: bool,
}

/// What a login is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStage {
    /// Password verified; enrolment (security code, optional mobile) next.
    Enrolment,
    /// Password (or a device proof, for step-up) verified; second factor next.
    SecondFactor,
    /// User ID and security code verified; an OTP and a new password next.
    Recovery,
    /// A signed-in user asked to change an address; the code sent to the new
    /// address next.
    ContactChange,
}

impl LoginStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginStage::Enrolment => "enrolment",
            LoginStage::SecondFactor => "second_factor",
            LoginStage::Recovery => "recovery",
            LoginStage::ContactChange => "contact_change",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enrolment" => Some(LoginStage::Enrolment),
            "second_factor" => Some(LoginStage::SecondFactor),
            "recovery" => Some(LoginStage::Recovery),
            "contact_change" => Some(LoginStage::ContactChange),
            _ => None,
        }
    }
}

/// A sign-in in progress, named by `login_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub login_id: String,
    pub user_id: String,
    /// The trusted device this sign-in happens on, when the client named one
    /// of the user's devices.
    pub device_id: Option<String>,
    pub stage: LoginStage,
    /// Factors already proven (`pwd`, or `hwk`/`bio` for a step-up).
    pub amr: Vec<String>,
    pub expires_at: i64,
    pub otp_sends: i64,
    pub last_send_at: Option<i64>,
    pub created_at: i64,
    /// This login's enrolment gave a mobile; an e-mail code completing it
    /// makes that mobile an OTP channel.
    pub pending_mobile: bool,
    /// A contact change: the new e-mail address, or the new mobile.
    pub change_email: Option<String>,
    pub change_mobile: Option<String>,
    /// The network the sign-in started from (`risk::network_of`), when known.
    pub network: Option<String>,
}

impl Login {
    /// A new step of `stage` for `user_id`, living until `expires_at`, with
    /// nothing sent yet and no device, pending mobile or contact change.
    pub fn new(
        login_id: String,
        user_id: &str,
        stage: LoginStage,
        amr: Vec<String>,
        expires_at: i64,
        now: i64,
    ) -> Self {
        Login {
            login_id,
            user_id: user_id.to_owned(),
            device_id: None,
            stage,
            amr,
            expires_at,
            otp_sends: 0,
            last_send_at: None,
            created_at: now,
            pending_mobile: false,
            change_email: None,
            change_mobile: None,
            network: None,
        }
    }
}

/// A stored OTP, after one try was counted against it.
#[derive(Debug, Clone)]
pub struct OtpTry {
    pub channel: String,
    pub mac: Vec<u8>,
    /// Tries used including this one.
    pub attempts: i64,
    pub expires_at: i64,
}

/// How to take a send back when the carrier refused it.
#[derive(Debug, Clone, Copy)]
pub struct SendUndo {
    pub send_id: i64,
    pub previous_last_send_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum OtpSendOutcome {
    Sent {
        taken_back: SendUndo,
    },
    /// Inside the resend spacing: retry after so many seconds.
    TooSoon(i64),
    /// The per-login cap on sends is used up.
    CapReached,
    /// The cap on sends to this user, or to this destination, across logins
    /// is used up for the window: retry after so many seconds.
    HourlyCapReached(i64),
    /// The login is unknown or expired.
    LoginGone,
}

/// The lockout rules storage applies when it counts an attempt.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub threshold: i64,
    pub duration_s: i64,
    /// A count that has not moved for this long is forgotten.
    pub memory_s: i64,
}

/// The answer to "may this attempt be evaluated?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Counted; the number of failures and in-flight attempts, this one included.
    Counted(i64),
    /// Not counted, not to be evaluated: locked until `until`.
    Locked { until: i64 },
    /// Not counted, not to be evaluated: attempts still being evaluated use
    /// up the allowance; whether they end in a lock is not known yet.
    InFlight,
}

/// What enrolment did.
// A short-lived answer, matched at once: boxing the login buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum EnrolOutcome {
    Enrolled(Login),
    /// The login is unknown, expired, not at enrolment, or the user enrolled
    /// meanwhile (through another login).
    LoginGone,
    /// A mobile was given but one is on file already.
    MobileOnFile,
}

/// Limits on OTP sends across logins (SMS pumping).
#[derive(Debug, Clone)]
pub struct SendCaps {
    /// Keyed hash of the destination address.
    pub destination_key: Vec<u8>,
    pub per_hour: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub challenge_id: String,
    pub device_id: String,
    pub challenge: String,
    /// Set when the challenge was offered as a `device` method of a password sign-in.
    pub login_id: Option<String>,
    pub expires_at: i64,
}

/// Which challenge a proof redeems.
#[derive(Debug, Clone)]
pub enum ChallengeKey {
    /// A stored challenge (the device step of a password sign-in): its row
    /// is deleted.
    Stored(String),
    /// A token whose MAC and expiry the caller checked
    /// (`challenge_token`): a row keyed by its hash is inserted, and a row
    /// already there means it was used.
    Token {
        hash: Vec<u8>,
        device_id: String,
        expires_at: i64,
    },
}

/// What a device proof that verified turns into, in the same transaction as
/// the challenge's consumption.
// Built once per sign-in and moved into the store: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Redemption {
    /// A session for the device; the failure count of `reset_key` restarts.
    Session {
        record: SessionRecord,
        tokens: TokenPair,
        reset_key: String,
        /// The risk policy's change for this sign-in, written in the same
        /// transaction when the stored document is still the one it was
        /// computed from (else `risk_written` is false and the caller
        /// applies it the slow way).
        risk: Option<RiskWrite>,
        /// The sign-in's audit line, committed with the session: one
        /// fsync per sign-in instead of two.
        audit: Option<AuditEvent>,
    },
    /// The risk policy wants an OTP: a login waiting for it.
    StepUp(Login),
}

// A short-lived answer, matched at once: boxing the login buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ChallengeOutcome {
    /// This request consumed it; the login it belonged to, if any, is consumed too.
    Consumed {
        login: Option<Login>,
        /// The redemption's `RiskWrite` was written.
        risk_written: bool,
    },
    /// Someone else consumed it, or it expired.
    Gone,
    /// The device was removed (before or while this sign-in was in flight).
    DeviceRemoved,
    /// The device's trust period ended.
    TrustEnded,
}

impl ChallengeOutcome {
    /// Whether a redemption stops at its device's row (`removed_at`,
    /// `trusted_until`; `None` when there is no row): one rule for every
    /// backend, read inside the redemption's transaction.
    pub(crate) fn refusal_for_device(device: Option<(Option<i64>, i64)>, now: i64) -> Option<Self> {
        match device {
            None | Some((Some(_), _)) => Some(ChallengeOutcome::DeviceRemoved),
            Some((None, trusted_until)) if trusted_until <= now => {
                Some(ChallengeOutcome::TrustEnded)
            }
            Some(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub registration_id: String,
    pub user_id: String,
    pub challenge: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub device_id: String,
    pub user_id: String,
    pub name: String,
    pub platform: String,
    pub key_storage: String,
    pub user_verification: String,
    /// Uncompressed SEC1 P-256 point.
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub trusted_until: i64,
    pub removed_at: Option<i64>,
    /// The device whose session registered this one, if any: removing that
    /// device removes this one too.
    pub registered_by: Option<String>,
    /// What the server verified of the key at registration, if anything.
    pub attestation: Option<DeviceAttestation>,
}

/// A verified key attestation, as stored with the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAttestation {
    /// `android-key` or `apple-appattest`.
    pub format: String,
    /// `strongbox`, `tee` or `secure_enclave`.
    pub security_level: String,
    pub verified_at: i64,
}

#[derive(Debug, Clone)]
pub enum RegistrationOutcome {
    Created,
    /// Unknown, expired, used or another user's registration.
    Gone,
    DeviceLimit,
}

/// A session (a refresh-token family) and the facts a token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: String,
    pub user_id: String,
    pub device_id: Option<String>,
    pub amr: Vec<String>,
    pub auth_time: i64,
    pub created_at: i64,
    /// Absolute end, whatever the refreshes.
    pub expires_at: i64,
}

/// Hashes and lifetimes of a freshly issued token pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_hash: Vec<u8>,
    pub access_expires_at: i64,
    pub refresh_hash: Vec<u8>,
    pub refresh_expires_at: i64,
}

#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    Rotated(SessionRecord),
    /// A used token came back: the family was revoked.
    Reused(SessionRecord),
    Invalid,
}

/// How long what is not needed any more is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Audit lines older than this are deleted.
    pub audit_s: i64,
    /// Failure counts idle this long (and not locked) are deleted.
    pub attempts_s: i64,
    /// The window of the hourly send caps.
    pub send_window_s: i64,
}

/// A card the bank fed in. Number and card ID only as keyed hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub card_ref: String,
    pub number_hash: Vec<u8>,
    pub card_id_hash: Vec<u8>,
    pub last4: String,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    pub primary_market: String,
    pub activated_at: Option<i64>,
    pub created_at: i64,
    pub user_id: Option<String>,
    pub linked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardLinkOutcome {
    Linked,
    /// Someone linked the card first.
    AlreadyEnrolled,
    /// Creating an account: that user ID is taken.
    UserExists,
}

/// What a completed recovery or password change did.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub user: User,
    pub sessions_revoked: usize,
    pub devices_to_reauthorise: usize,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: i64,
    pub event: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub ip: Option<String>,
    pub reason: Option<String>,
    /// The service-team operator who acted, when one did (the console).
    pub actor: Option<String>,
}

/// A service-team operator of the support console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Lower-case, 1–32 of `a-z 0-9 . _ -`.
    pub name: String,
    /// `support` or `admin`.
    pub role: String,
    /// argon2id, like card holders' passwords.
    pub password_hash: String,
    /// The TOTP secret, sealed with a key derived from the server key
    /// (`console::totp` opens it); `None` before the first sign-in.
    pub totp_sealed: Option<Vec<u8>>,
    /// The secret above was confirmed with a code (enrolment finished).
    pub totp_enrolled: bool,
    /// The last TOTP time step accepted (a code is never accepted twice).
    pub totp_last_step: i64,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    /// SHA-256 of the one-time enrolment code (`operator add`, an admin's
    /// reset of the second factor), needed with the password to enrol TOTP;
    /// cleared once TOTP is enrolled.
    pub enrolment_code_hash: Option<Vec<u8>>,
    /// The enrolment code is refused from then on.
    pub enrolment_expires_at: Option<i64>,
}

/// A browser session of the console; only the hash of its id is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub session_hash: Vec<u8>,
    pub operator: String,
    /// `totp` (password verified, second factor next), `enrol` (password
    /// verified, TOTP enrolment next) or `full`.
    pub stage: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Absolute end.
    pub expires_at: i64,
}

/// How the console looks for card holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSearch {
    /// User IDs starting with this (lower-case).
    UserIdPrefix(String),
    /// This e-mail address, any case.
    Email(String),
    /// Linked cards ending in these four digits.
    Last4(String),
}

/// A market as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketSummary {
    pub market: String,
    /// `None`: never configured (then a second factor is required).
    pub configured: Option<bool>,
    /// Card holders whose primary market this is.
    pub users: i64,
}

/// Which audit lines to read, newest first, before `before_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub event: Option<String>,
    pub actor: Option<String>,
    /// Only lines written by an operator.
    pub operators_only: bool,
    pub before_id: Option<i64>,
}

/// How many signed-in console sessions one operator keeps; older ones end.
/// Sessions stopped after the password (stages `totp`, `enrol`) are capped
/// separately, at the same number, and never end a signed-in one.
pub const CONSOLE_SESSIONS_PER_OPERATOR: i64 = 5;

/// What an unlock lifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockScope {
    /// The sign-in lock and count (password, OTP) only.
    SignIn,
    /// The security-code stops and counts (recovery, caller checks) of the
    /// user id and of its e-mail only.
    CodeChecks,
    /// Both.
    Both,
}

impl UnlockScope {
    pub fn sign_in(self) -> bool {
        matches!(self, UnlockScope::SignIn | UnlockScope::Both)
    }
    pub fn code_checks(self) -> bool {
        matches!(self, UnlockScope::CodeChecks | UnlockScope::Both)
    }
}

/// The smallest string greater than every string starting with `prefix`
/// (in code-point order, which is UTF-8 byte order): a prefix search is
/// the range `[prefix, end)`, bounded on both sides. `None` when there is
/// no such string (empty, or only `char::MAX`).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Turns the stored habits document (if any) into the new one.
pub type RiskUpdate = Box<dyn FnOnce(Option<&str>) -> String + Send>;

/// A habits document to store in place of `expected` (compare and swap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskWrite {
    pub user_id: String,
    /// The document it was computed from (`None`: there was none).
    pub expected: Option<String>,
    pub new: String,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn ping(&self) -> Result<(), StorageError>;

    /// Whether the database's schema is older than this server's (a
    /// migration is still to run): `/readyz` answers 503 until it is not.
    /// A newer schema is not pending (migrations only add).
    async fn migrations_pending(&self) -> Result<bool, StorageError>;

    /// Removes and returns the OTP key schema v1 kept in the database: the
    /// server key now lives outside it (see `server_key`).
    async fn take_legacy_secret(&self) -> Result<Option<Vec<u8>>, StorageError>;

    /// Keeps `check` (derived from the server key) the first time; answers
    /// whether it equals the one kept.
    async fn server_key_check(&self, check: &[u8]) -> Result<bool, StorageError>;

    // Users and markets
    async fn create_user(&self, user: User) -> Result<(), StorageError>;
    async fn user(&self, user_id: &str) -> Result<Option<User>, StorageError>;
    async fn set_market(&self, market: &str, second_factor: bool) -> Result<(), StorageError>;
    /// Markets never configured require a second factor.
    async fn market_requires_second_factor(&self, market: &str) -> Result<bool, StorageError>;

    // Lockout
    /// Counts one attempt for `key` before it is evaluated, atomically. A
    /// lock that ran out, or a count idle for `memory_s`, starts afresh; a
    /// count at the threshold without a lock (its last attempts never
    /// finished) ends `duration_s` after it last moved, so no lock is endless.
    async fn reserve_attempt(
        &self,
        key: &str,
        now: i64,
        policy: LockoutPolicy,
    ) -> Result<Reservation, StorageError>;
    /// Takes back a reserved attempt that turned out not to be a failure.
    async fn refund_attempt(&self, key: &str) -> Result<(), StorageError>;
    async fn lock(&self, key: &str, until: i64) -> Result<(), StorageError>;
    /// When `key` is locked at `now`, until when.
    async fn locked_until(&self, key: &str, now: i64) -> Result<Option<i64>, StorageError>;
    /// After a completed sign-in: the count starts again, but a running lock
    /// keeps running (a device sign-in does not lift a lock others caused).
    async fn reset_attempts(&self, key: &str, now: i64) -> Result<(), StorageError>;
    /// Lifts the lock and clears the count of user `key` (`SignIn`), and/or
    /// the user's security-code stops (recovery and caller checks, by user
    /// id and by e-mail: `CodeChecks`).
    async fn unlock(&self, key: &str, scope: UnlockScope) -> Result<(), StorageError>;

    // Logins and OTPs
    async fn create_login(&self, login: Login) -> Result<(), StorageError>;
    async fn login(&self, login_id: &str, now: i64) -> Result<Option<Login>, StorageError>;
    /// Moves a login from enrolment to second factor and records the user's
    /// enrolment, atomically; `None` if the login is not awaiting enrolment.
    /// A mobile is accepted only when none is on file, and stays unverified;
    /// every other enrolment login of the user dies.
    async fn enrol(
        &self,
        login_id: &str,
        security_code_hash: &str,
        mobile: Option<&str>,
        now: i64,
    ) -> Result<EnrolOutcome, StorageError>;
    /// The mobile given at enrolment becomes an OTP channel.
    async fn confirm_mobile(&self, user_id: &str) -> Result<(), StorageError>;
    async fn consume_login(&self, login_id: &str, now: i64) -> Result<Option<Login>, StorageError>;
    /// Replaces the login's OTP if the spacing, the per-login cap and the
    /// hourly caps per user and per destination allow, and records the send.
    #[allow(clippy::too_many_arguments)]
    async fn store_otp(
        &self,
        login_id: &str,
        channel: &str,
        mac: Vec<u8>,
        expires_at: i64,
        resend_after_s: i64,
        max_sends: i64,
        caps: SendCaps,
        now: i64,
    ) -> Result<OtpSendOutcome, StorageError>;
    /// Takes back a send the carrier refused: the spacing, the per-login cap
    /// and the hourly caps are as before it; the new code is deleted.
    async fn unsend_otp(&self, login_id: &str, undo: SendUndo) -> Result<(), StorageError>;
    /// Counts one try against the login's OTP and returns it.
    async fn try_otp(&self, login_id: &str) -> Result<Option<OtpTry>, StorageError>;

    // Device challenges
    async fn create_challenge(&self, challenge: Challenge) -> Result<(), StorageError>;
    async fn challenge(
        &self,
        challenge_id: &str,
        now: i64,
    ) -> Result<Option<Challenge>, StorageError>;
    /// In one transaction: consumes the challenge (and its login), checks the
    /// device is still active and trusted, marks it used, and stores what the
    /// proof turns into. A removal is serialised with it: either it sees the
    /// device removed, or the removal revokes the session made here.
    async fn redeem_challenge(
        &self,
        key: ChallengeKey,
        now: i64,
        redemption: Redemption,
    ) -> Result<ChallengeOutcome, StorageError>;

    // Registrations and devices
    async fn create_registration(&self, registration: Registration) -> Result<(), StorageError>;
    async fn registration(
        &self,
        registration_id: &str,
        now: i64,
    ) -> Result<Option<Registration>, StorageError>;
    /// Deletes the registration (a failed attestation spends it).
    async fn spend_registration(&self, registration_id: &str) -> Result<(), StorageError>;
    /// Consumes the registration and stores the device; the calling session
    /// (`session_id`) becomes that device's session.
    async fn finish_registration(
        &self,
        registration_id: &str,
        session_id: &str,
        device: Device,
        max_devices: i64,
        now: i64,
    ) -> Result<RegistrationOutcome, StorageError>;
    async fn device(&self, device_id: &str) -> Result<Option<Device>, StorageError>;
    async fn devices(&self, user_id: &str) -> Result<Vec<Device>, StorageError>;
    /// Removes the device, and every device registered from its sessions
    /// (recursively), and revokes their sessions; returns what was removed
    /// (empty if `device_id` was not the user's active device).
    async fn remove_device(
        &self,
        user_id: &str,
        device_id: &str,
        now: i64,
    ) -> Result<Vec<Device>, StorageError>;
    async fn renew_trust(&self, device_id: &str, until: i64) -> Result<(), StorageError>;

    // Sessions
    /// Stores a session; a `device_id` that is no longer active is dropped
    /// from it (a removal that raced this sign-in wins).
    async fn create_session(
        &self,
        session: SessionRecord,
        tokens: TokenPair,
    ) -> Result<(), StorageError>;
    async fn session_for_access(
        &self,
        access_hash: &[u8],
        now: i64,
    ) -> Result<Option<SessionRecord>, StorageError>;
    async fn rotate_refresh(
        &self,
        refresh_hash: &[u8],
        tokens: TokenPair,
        now: i64,
    ) -> Result<RefreshOutcome, StorageError>;
    async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StorageError>;

    // Cards and online enrolment
    async fn create_card(&self, card: Card) -> Result<(), StorageError>;
    /// False if no card has that reference.
    async fn activate_card(&self, card_ref: &str, now: i64) -> Result<bool, StorageError>;
    async fn card_by_number(&self, number_hash: &[u8]) -> Result<Option<Card>, StorageError>;
    /// Creates the user and links the card in one transaction.
    async fn create_user_from_card(
        &self,
        user: User,
        card_ref: &str,
        now: i64,
    ) -> Result<CardLinkOutcome, StorageError>;
    async fn link_card(
        &self,
        card_ref: &str,
        user_id: &str,
        now: i64,
    ) -> Result<CardLinkOutcome, StorageError>;
    async fn cards_of(&self, user_id: &str) -> Result<Vec<Card>, StorageError>;

    // Recovery and account changes
    async fn users_by_email(&self, email: &str) -> Result<Vec<User>, StorageError>;
    /// Consumes the recovery login and, in one transaction: replaces the
    /// password hash, clears the failure count and lock of `lockout_key`,
    /// revokes every session, and sends every trusted device back to
    /// re-authorisation. `None` if the recovery is gone.
    async fn complete_recovery(
        &self,
        recovery_id: &str,
        password_hash: &str,
        lockout_key: &str,
        now: i64,
    ) -> Result<Option<PasswordReset>, StorageError>;
    /// Replaces the password hash and revokes every session but `keep`.
    async fn change_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep_session: &str,
        now: i64,
    ) -> Result<(), StorageError>;
    async fn set_security_code(&self, user_id: &str, hash: &str) -> Result<(), StorageError>;
    /// Stores a contact change (a login at stage `contact_change`), ending
    /// any other pending change of the user.
    async fn start_contact_change(&self, login: Login) -> Result<(), StorageError>;
    /// Consumes the change and applies it; returns the user before and
    /// after. `None` if the change is unknown, used, expired or another
    /// user's.
    async fn apply_contact_change(
        &self,
        change_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<Option<(User, User)>, StorageError>;
    /// Removes the mobile; returns the user as it was, `None` if there was none.
    async fn remove_mobile(&self, user_id: &str) -> Result<Option<User>, StorageError>;
    /// The user's security events, newest first, with the device's name.
    async fn security_events(
        &self,
        user_id: &str,
        types: &[&str],
        limit: i64,
    ) -> Result<Vec<(AuditEvent, Option<String>)>, StorageError>;

    // Risk
    /// Sessions (sign-ins) of the user created after `since`: the risk
    /// engine's velocity.
    async fn sign_ins_since(&self, user_id: &str, since: i64) -> Result<i64, StorageError>;
    /// The user's sign-in habits as the risk engine wrote them (a JSON
    /// document the store does not interpret).
    async fn risk_profile(&self, user_id: &str) -> Result<Option<String>, StorageError>;
    /// Reads, changes and writes the user's habits in one transaction, so
    /// two sign-ins finishing at once both count.
    async fn update_risk_profile(
        &self,
        user_id: &str,
        now: i64,
        update: RiskUpdate,
    ) -> Result<(), StorageError>;

    // Support console: operators and their sessions
    /// `Conflict` when the name is taken.
    async fn create_operator(&self, operator: Operator) -> Result<(), StorageError>;
    async fn operator(&self, name: &str) -> Result<Option<Operator>, StorageError>;
    async fn operators(&self) -> Result<Vec<Operator>, StorageError>;
    /// Replaces the TOTP secret (a new enrolment, or a reset with `None`);
    /// the last accepted step is kept, so an old code never comes back.
    async fn set_operator_totp(
        &self,
        name: &str,
        sealed: Option<Vec<u8>>,
        enrolled: bool,
    ) -> Result<(), StorageError>;
    /// Sets (or with `None` clears) the operator's one-time enrolment code;
    /// false when there is no such operator.
    async fn set_operator_enrolment(
        &self,
        name: &str,
        code_hash: Option<Vec<u8>>,
        expires_at: Option<i64>,
    ) -> Result<bool, StorageError>;
    /// Accepts TOTP step `step` once: true when it is later than the last
    /// accepted one (and records it), false for a replay.
    async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StorageError>;
    /// Disables (`Some(now)`) or re-enables an operator; disabling ends
    /// the operator's console sessions.
    async fn set_operator_disabled(
        &self,
        name: &str,
        disabled_at: Option<i64>,
    ) -> Result<bool, StorageError>;
    /// Stores a console session; the operator's oldest sessions of the same
    /// kind (signed in: stage `full`; pending: any other) beyond
    /// `CONSOLE_SESSIONS_PER_OPERATOR` end. A pending session never ends a
    /// signed-in one.
    async fn create_console_session(&self, session: ConsoleSession) -> Result<(), StorageError>;
    /// Ends every console session of the operator (a second-factor reset);
    /// returns how many there were.
    async fn end_operator_sessions(&self, name: &str) -> Result<usize, StorageError>;
    /// The session, if it has not ended and was used within `idle_s`;
    /// its last use becomes `now`.
    async fn console_session(
        &self,
        session_hash: &[u8],
        now: i64,
        idle_s: i64,
    ) -> Result<Option<ConsoleSession>, StorageError>;
    async fn delete_console_session(&self, session_hash: &[u8]) -> Result<(), StorageError>;

    // Support console: card holders
    /// Card holders matching `search`, by user ID, after `after`; at most
    /// `limit`. A user-ID prefix is a bounded range (`prefix_end`), never a
    /// scan to the end of the table.
    async fn find_users(
        &self,
        search: &UserSearch,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>, StorageError>;
    /// The user's sessions that are neither revoked nor ended.
    async fn user_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StorageError>;
    /// Revokes every active session of the user; returns how many.
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<usize, StorageError>;
    /// Sets name and e-mail if they are still `expected` (name, e-mail);
    /// returns the user as it was, `None` if it changed meanwhile or is gone.
    async fn correct_profile(
        &self,
        user_id: &str,
        expected: (&str, &str),
        name: &str,
        email: &str,
    ) -> Result<Option<User>, StorageError>;
    /// Every configured market and every market of a card holder.
    async fn markets(&self) -> Result<Vec<MarketSummary>, StorageError>;
    /// Audit lines matching `filter`, newest first, with their ids.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<(i64, AuditEvent)>, StorageError>;

    // Audit and housekeeping
    async fn audit(&self, event: AuditEvent) -> Result<(), StorageError>;
    async fn audit_events(&self, user_id: &str) -> Result<Vec<AuditEvent>, StorageError>;
    /// Deletes what has expired or outlived its retention; returns the
    /// number of rows removed.
    async fn purge_expired(&self, now: i64, retention: Retention) -> Result<u64, StorageError>;
}

/// Opens the store a `--database` URL names.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StorageError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = sqlite::SqliteStore::open(path).await?;
        Ok(std::sync::Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PostgresStore::open(url).await?;
        Ok(std::sync::Arc::new(store))
    } else {
        Err(StorageError::UnsupportedUrl(format!(
            "{:?}: expected sqlite://PATH or postgres://…",
            postgres::redact(url)
        )))
    }
}

pub(crate) fn join_amr(amr: &[String]) -> String {
    amr.join(" ")
}

pub(crate) fn split_amr(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}
