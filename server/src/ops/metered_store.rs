//! Storage call latency: a decorator over any `Store`, so both backends
//! (and any future one) are timed in one place instead of in each of their
//! methods. The label is the method's name (a closed set: the trait's), and
//! the result `ok`, `unavailable` (the database cannot be reached) or
//! `error` (anything else, conflicts included).
//!
//! A method added to `Store` needs its signature added to the list below:
//! the compiler says so (the impl is incomplete without it).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::ops::metrics::Metrics;
use crate::storage::*;

/// A `Store` that times every call of the one it wraps.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn wrap(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<dyn Store> {
        Arc::new(MeteredStore { inner, metrics })
    }
}

fn outcome<T>(r: &Result<T, StorageError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(StorageError::Unavailable(_)) => "unavailable",
        Err(_) => "error",
    }
}

macro_rules! metered {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        #[async_trait]
        impl Store for MeteredStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    let start = Instant::now();
                    let out = self.inner.$name($($arg),*).await;
                    self.metrics
                        .observe_storage(stringify!($name), outcome(&out), start.elapsed());
                    out
                }
            )*
        }
    };
}

metered! {
    fn ping(&self) -> Result<(), StorageError>;
    fn migrations_pending(&self) -> Result<bool, StorageError>;
    fn take_legacy_secret(&self) -> Result<Option<Vec<u8>>, StorageError>;
    fn server_key_check(&self, check: &[u8]) -> Result<bool, StorageError>;
    fn create_user(&self, user: User) -> Result<(), StorageError>;
    fn user(&self, user_id: &str) -> Result<Option<User>, StorageError>;
    fn set_market(&self, market: &str, second_factor: bool) -> Result<(), StorageError>;
    fn market_requires_second_factor(&self, market: &str) -> Result<bool, StorageError>;
    fn reserve_attempt(&self, key: &str, now: i64, policy: LockoutPolicy) -> Result<Reservation, StorageError>;
    fn refund_attempt(&self, key: &str) -> Result<(), StorageError>;
    fn lock(&self, key: &str, until: i64) -> Result<(), StorageError>;
    fn locked_until(&self, key: &str, now: i64) -> Result<Option<i64>, StorageError>;
    fn reset_attempts(&self, key: &str, now: i64) -> Result<(), StorageError>;
    fn unlock(&self, key: &str, scope: UnlockScope) -> Result<(), StorageError>;
    fn create_login(&self, login: Login) -> Result<(), StorageError>;
    fn login(&self, login_id: &str, now: i64) -> Result<Option<Login>, StorageError>;
    fn enrol(&self, login_id: &str, security_code_hash: &str, mobile: Option<&str>, now: i64) -> Result<EnrolOutcome, StorageError>;
    fn confirm_mobile(&self, user_id: &str) -> Result<(), StorageError>;
    fn consume_login(&self, login_id: &str, now: i64) -> Result<Option<Login>, StorageError>;
    fn store_otp(&self, login_id: &str, channel: &str, mac: Vec<u8>, expires_at: i64, resend_after_s: i64, max_sends: i64, caps: SendCaps, now: i64) -> Result<OtpSendOutcome, StorageError>;
    fn unsend_otp(&self, login_id: &str, undo: SendUndo) -> Result<(), StorageError>;
    fn try_otp(&self, login_id: &str) -> Result<Option<OtpTry>, StorageError>;
    fn create_challenge(&self, challenge: Challenge) -> Result<(), StorageError>;
    fn challenge(&self, challenge_id: &str, now: i64) -> Result<Option<Challenge>, StorageError>;
    fn redeem_challenge(&self, key: ChallengeKey, now: i64, redemption: Redemption) -> Result<ChallengeOutcome, StorageError>;
    fn create_registration(&self, registration: Registration) -> Result<(), StorageError>;
    fn registration(&self, registration_id: &str, now: i64) -> Result<Option<Registration>, StorageError>;
    fn spend_registration(&self, registration_id: &str) -> Result<(), StorageError>;
    fn finish_registration(&self, registration_id: &str, session_id: &str, device: Device, max_devices: i64, now: i64) -> Result<RegistrationOutcome, StorageError>;
    fn device(&self, device_id: &str) -> Result<Option<Device>, StorageError>;
    fn devices(&self, user_id: &str) -> Result<Vec<Device>, StorageError>;
    fn remove_device(&self, user_id: &str, device_id: &str, now: i64) -> Result<Vec<Device>, StorageError>;
    fn renew_trust(&self, device_id: &str, until: i64) -> Result<(), StorageError>;
    fn create_session(&self, session: SessionRecord, tokens: TokenPair) -> Result<(), StorageError>;
    fn session_for_access(&self, access_hash: &[u8], now: i64) -> Result<Option<SessionRecord>, StorageError>;
    fn rotate_refresh(&self, refresh_hash: &[u8], tokens: TokenPair, now: i64) -> Result<RefreshOutcome, StorageError>;
    fn revoke_session(&self, session_id: &str, reason: &str, now: i64) -> Result<(), StorageError>;
    fn create_card(&self, card: Card) -> Result<(), StorageError>;
    fn activate_card(&self, card_ref: &str, now: i64) -> Result<bool, StorageError>;
    fn card_by_number(&self, number_hash: &[u8]) -> Result<Option<Card>, StorageError>;
    fn create_user_from_card(&self, user: User, card_ref: &str, now: i64) -> Result<CardLinkOutcome, StorageError>;
    fn link_card(&self, card_ref: &str, user_id: &str, now: i64) -> Result<CardLinkOutcome, StorageError>;
    fn cards_of(&self, user_id: &str) -> Result<Vec<Card>, StorageError>;
    fn users_by_email(&self, email: &str) -> Result<Vec<User>, StorageError>;
    fn complete_recovery(&self, recovery_id: &str, password_hash: &str, lockout_key: &str, now: i64) -> Result<Option<PasswordReset>, StorageError>;
    fn change_password(&self, user_id: &str, password_hash: &str, keep_session: &str, now: i64) -> Result<(), StorageError>;
    fn set_security_code(&self, user_id: &str, hash: &str) -> Result<(), StorageError>;
    fn start_contact_change(&self, login: Login) -> Result<(), StorageError>;
    fn apply_contact_change(&self, change_id: &str, user_id: &str, now: i64) -> Result<Option<(User, User)>, StorageError>;
    fn remove_mobile(&self, user_id: &str) -> Result<Option<User>, StorageError>;
    fn security_events(&self, user_id: &str, types: &[&str], limit: i64) -> Result<Vec<(AuditEvent, Option<String>)>, StorageError>;
    fn sign_ins_since(&self, user_id: &str, since: i64) -> Result<i64, StorageError>;
    fn risk_profile(&self, user_id: &str) -> Result<Option<String>, StorageError>;
    fn update_risk_profile(&self, user_id: &str, now: i64, update: RiskUpdate) -> Result<(), StorageError>;
    fn create_operator(&self, operator: Operator) -> Result<(), StorageError>;
    fn operator(&self, name: &str) -> Result<Option<Operator>, StorageError>;
    fn operators(&self) -> Result<Vec<Operator>, StorageError>;
    fn set_operator_totp(&self, name: &str, sealed: Option<Vec<u8>>, enrolled: bool) -> Result<(), StorageError>;
    fn set_operator_enrolment(&self, name: &str, code_hash: Option<Vec<u8>>, expires_at: Option<i64>) -> Result<bool, StorageError>;
    fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StorageError>;
    fn set_operator_disabled(&self, name: &str, disabled_at: Option<i64>) -> Result<bool, StorageError>;
    fn create_console_session(&self, session: ConsoleSession) -> Result<(), StorageError>;
    fn end_operator_sessions(&self, name: &str) -> Result<usize, StorageError>;
    fn console_session(&self, session_hash: &[u8], now: i64, idle_s: i64) -> Result<Option<ConsoleSession>, StorageError>;
    fn delete_console_session(&self, session_hash: &[u8]) -> Result<(), StorageError>;
    fn find_users(&self, search: &UserSearch, after: Option<&str>, limit: i64) -> Result<Vec<User>, StorageError>;
    fn user_sessions(&self, user_id: &str, now: i64) -> Result<Vec<SessionRecord>, StorageError>;
    fn revoke_user_sessions(&self, user_id: &str, reason: &str, now: i64) -> Result<usize, StorageError>;
    fn correct_profile(&self, user_id: &str, expected: (&str, &str), name: &str, email: &str) -> Result<Option<User>, StorageError>;
    fn markets(&self) -> Result<Vec<MarketSummary>, StorageError>;
    fn audit_page(&self, filter: &AuditFilter, limit: i64) -> Result<Vec<(i64, AuditEvent)>, StorageError>;
    fn audit(&self, event: AuditEvent) -> Result<(), StorageError>;
    fn audit_events(&self, user_id: &str) -> Result<Vec<AuditEvent>, StorageError>;
    fn purge_expired(&self, now: i64, retention: Retention) -> Result<u64, StorageError>;
}
