//! The service team's operator accounts (docs/CONSOLE.md): who they are,
//! their password and TOTP second factor, and their lockout. The console
//! and the CLI both call these; nothing here knows about HTTP or cookies.
//!
//! - Passwords are argon2id on the server's bounded hashing pool, under the
//!   card holders' password policy.
//! - TOTP secrets (RFC 6238, SHA-1, 6 digits, 30 s, from the `totp-rs`
//!   crate) are 160 random bits from the OS CSPRNG, sealed at rest with
//!   AES-256-GCM under a key derived from the server key (not in the
//!   database), the operator's name as associated data.
//! - A code is accepted for the current step or one step either side, in
//!   constant time, and each step at most once (`Store::use_totp_step`):
//!   a code seen over a shoulder cannot be replayed in the same 30 s.
//! - The first sign-in (and the one after an admin's reset of the second
//!   factor) needs a one-time enrolment code besides the password: 120
//!   bits from the OS CSPRNG, shown once to the admin (`operator add`, the
//!   operators page), kept only as its SHA-256, refused after 24 hours and
//!   cleared once TOTP is enrolled. Knowing the password alone does not let
//!   anyone enrol their own authenticator.
//! - Wrong passwords and wrong codes count together per lower-cased name
//!   (existing or not) and client network (an IPv4 address, an IPv6 /64):
//!   5 lock that name from that network for 15 minutes. Across networks,
//!   20 lock the name everywhere for 15 minutes (a guesser spread over many
//!   addresses). One outsider cannot lock an operator out of the console
//!   from elsewhere: their own network's lock stops them after 5. Every lock
//!   has an end.

use std::net::IpAddr;

use ring::aead::{self, LessSafeKey, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::app::AppState;
use crate::error::ApiError;
use crate::password_policy::PasswordPolicy;
use crate::secrets::{Hasher, Secret};
use crate::storage::{LockoutPolicy, Operator};

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Finds card holders, verifies callers, unlocks, removes devices,
    /// revokes sessions, corrects name and e-mail.
    Support,
    /// All of that, and markets and operators.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "support" => Some(Role::Support),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Support => "support",
            Role::Admin => "admin",
        }
    }
}

/// A signed-in operator, as every service-team flow receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

impl Actor {
    /// `forbidden` unless the operator is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs the admin role"))
        }
    }
}

/// TOTP time step, seconds.
pub const TOTP_STEP_S: i64 = 30;
const TOTP_DIGITS: usize = 6;
const SECRET_BYTES: usize = 20;

/// Failures of one name from one client network.
fn network_policy() -> LockoutPolicy {
    LockoutPolicy {
        threshold: 5,
        duration_s: 15 * 60,
        memory_s: 24 * 3600,
    }
}

/// Failures of one name from every network together.
fn name_policy() -> LockoutPolicy {
    LockoutPolicy {
        threshold: 20,
        duration_s: 15 * 60,
        memory_s: 24 * 3600,
    }
}

/// The lockout keys of a sign-in attempt: per name, and per name and
/// client network. Bounded whatever was typed: a well-formed name is at
/// most 32 ASCII bytes; anything else is keyed by its SHA-256 (never the
/// raw text, which may be 16 KiB or cut inside a character).
pub(crate) struct LockKeys {
    name: String,
    network: String,
}

pub(crate) fn lock_keys(raw_name: &str, ip: IpAddr) -> LockKeys {
    let name = match name(raw_name) {
        Ok(n) => format!("operator:{n}"),
        Err(_) => {
            use base64::Engine;
            let digest = crate::secrets::token_hash(&raw_name.to_lowercase());
            format!(
                "operator:~{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
            )
        }
    };
    let network = format!("{name}@{}", crate::ratelimit::client_network(ip));
    LockKeys { name, network }
}

/// Counts an attempt on both keys (the network's first: a locked network
/// is refused without counting against the name everywhere).
async fn reserve(app: &AppState, keys: &LockKeys) -> Result<(i64, i64), ApiError> {
    let on_network = app
        .reserve_attempt_with(&keys.network, network_policy())
        .await?;
    match app.reserve_attempt_with(&keys.name, name_policy()).await {
        Ok(on_name) => Ok((on_network, on_name)),
        Err(e) => {
            app.refund_attempt(&keys.network).await?;
            Err(e)
        }
    }
}

async fn refund(app: &AppState, keys: &LockKeys) -> Result<(), ApiError> {
    app.refund_attempt(&keys.network).await?;
    app.refund_attempt(&keys.name).await
}

/// How long an enrolment code is accepted.
pub const ENROLMENT_CODE_TTL_S: i64 = 24 * 3600;

/// A new one-time enrolment code (shown once, e.g. `ABCD-EFGH-...`: 24
/// base32 characters, 120 bits) and its hash, to store.
pub fn new_enrolment_code() -> Result<(Secret, Vec<u8>), ApiError> {
    let mut bytes = [0u8; 15];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::Internal)?;
    let base32 = totp_rs::Secret::Raw(bytes.to_vec())
        .to_encoded()
        .to_string();
    let shown = base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    let hash = enrolment_code_hash(&shown);
    Ok((Secret::new(shown), hash))
}

/// The stored hash of an enrolment code as typed: case, spaces and dashes
/// do not matter.
pub fn enrolment_code_hash(typed: &str) -> Vec<u8> {
    let normal: String = typed
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    crate::secrets::token_hash(&normal)
}

/// An operator name: 1–32 of `a-z 0-9 . _ -` (any case in, lower-case out).
pub fn name(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid(
            "operator name must be 1-32 characters of a-z 0-9 . _ -",
        ))
    }
}

/// The AES-256-GCM key sealing TOTP secrets, from its server-key-derived bytes.
pub(crate) fn totp_key(bytes: &[u8; 32]) -> LessSafeKey {
    // 32 bytes is exactly AES-256's key length: this cannot fail.
    #[allow(clippy::expect_used)]
    LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, bytes).expect("a 32-byte AES-256 key"))
}

/// A new operator with a hashed password (the policy of card holders'
/// passwords applies) and its one-time enrolment code (to show once to
/// whoever adds the operator); enrols TOTP at first sign-in with both.
/// Shared with the CLI.
pub async fn new_operator(
    hasher: &Hasher,
    policy: &PasswordPolicy,
    now: i64,
    raw_name: &str,
    role: Role,
    password: &Secret,
) -> Result<(Operator, Secret), ApiError> {
    let name = name(raw_name)?;
    let password = policy.new_password(password, &name)?;
    let password_hash = hasher.hash(&password).await?;
    let (code, code_hash) = new_enrolment_code()?;
    let operator = Operator {
        name,
        role: role.as_str().to_owned(),
        password_hash,
        totp_sealed: None,
        totp_enrolled: false,
        totp_last_step: 0,
        disabled_at: None,
        created_at: now,
        enrolment_code_hash: Some(code_hash),
        enrolment_expires_at: Some(now + ENROLMENT_CODE_TTL_S),
    };
    Ok((operator, code))
}

/// What a correct password leads to.
#[derive(Debug)]
pub enum PasswordOutcome {
    /// TOTP enrolled: a code next.
    CodeNext(Operator),
    /// No TOTP yet: the enrolment code next (then a fresh secret to scan).
    EnrolmentCodeNext(Operator),
}

/// Step one of a console sign-in. A wrong name, a wrong password and a
/// disabled operator are the same `invalid_credentials` after the same
/// argon2id work; failures count per lower-cased name, existing or not.
pub async fn check_password(
    app: &AppState,
    raw_name: &str,
    password: &Secret,
    ip: IpAddr,
) -> Result<PasswordOutcome, ApiError> {
    // A malformed name is counted like any other: the answer must not
    // differ from a well-formed unknown one.
    let keys = lock_keys(raw_name, ip);
    let count = reserve(app, &keys).await?;
    let operator = match name(raw_name) {
        Ok(n) => app.store().operator(&n).await?,
        Err(_) => None,
    };
    let stored = operator.as_ref().map(|o| o.password_hash.clone());
    let ok = match app.hasher().verify(stored, password).await {
        Ok(ok) => ok,
        Err(e) => {
            refund(app, &keys).await?;
            return Err(e);
        }
    };
    let operator = match operator {
        Some(op) if ok && op.disabled_at.is_none() => op,
        op => {
            return Err(fail(app, &keys, count, op.as_ref(), ip, "operator_password").await);
        }
    };
    refund(app, &keys).await?;
    // Audited (never the password): a right password without the second
    // factor is a sign the password is known to someone.
    app.audit_by(
        &operator.name,
        "operator_password_accepted",
        None,
        None,
        Some(ip),
        None,
    )
    .await?;
    if operator.totp_enrolled && operator.totp_sealed.is_some() {
        return Ok(PasswordOutcome::CodeNext(operator));
    }
    Ok(PasswordOutcome::EnrolmentCodeNext(operator))
}

/// Step two of a first sign-in: the one-time enrolment code the admin
/// handed over. Counted with the password failures (a wrong, expired or
/// missing code is a failure). A right one stores a fresh TOTP secret (a
/// new one at each unfinished enrolment: one shown earlier and never
/// confirmed is worthless) and is audited; the code itself stays valid
/// until TOTP is enrolled or it expires.
pub async fn check_enrolment_code(
    app: &AppState,
    operator_name: &str,
    code: &Secret,
    ip: IpAddr,
) -> Result<Operator, ApiError> {
    let keys = lock_keys(operator_name, ip);
    let count = reserve(app, &keys).await?;
    let operator = app.store().operator(operator_name).await?;
    let typed = enrolment_code_hash(code.expose());
    let valid = operator.as_ref().is_some_and(|op| {
        op.disabled_at.is_none()
            && !op.totp_enrolled
            && op.enrolment_expires_at.is_some_and(|t| t > app.now())
            && op
                .enrolment_code_hash
                .as_deref()
                .is_some_and(|h| bool::from(h.ct_eq(&typed)))
    });
    let operator = match operator {
        Some(op) if valid => op,
        op => {
            return Err(fail(
                app,
                &keys,
                count,
                op.as_ref(),
                ip,
                "operator_enrolment_code",
            )
            .await)
        }
    };
    refund(app, &keys).await?;
    let mut secret = [0u8; SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| ApiError::Internal)?;
    let sealed = seal(app, &operator.name, &secret)?;
    app.store()
        .set_operator_totp(&operator.name, Some(sealed.clone()), false)
        .await?;
    app.audit_by(
        &operator.name,
        "operator_enrolment_code_accepted",
        None,
        None,
        Some(ip),
        None,
    )
    .await?;
    Ok(Operator {
        totp_sealed: Some(sealed),
        totp_enrolled: false,
        ..operator
    })
}

/// A failed password or code: counted, audited with the operator's name
/// (only when one exists), and at the limit a lock with an end.
async fn fail(
    app: &AppState,
    keys: &LockKeys,
    (on_network, on_name): (i64, i64),
    operator: Option<&Operator>,
    ip: IpAddr,
    reason: &str,
) -> ApiError {
    let actor = operator.map(|o| o.name.as_str()).unwrap_or("-");
    let mut outcome = app
        .audit_by(
            actor,
            "operator_signin_failed",
            None,
            None,
            Some(ip),
            Some(reason),
        )
        .await;
    let locks = [
        (&keys.network, on_network, network_policy(), "network"),
        (&keys.name, on_name, name_policy(), "all_networks"),
    ];
    for (key, count, policy, scope) in locks {
        if count < policy.threshold || outcome.is_err() {
            continue;
        }
        let until = app.now() + policy.duration_s;
        outcome = match app.store().lock(key, until).await {
            Ok(()) => {
                let why = format!("{reason} scope={scope}");
                app.audit_by(actor, "operator_locked", None, None, Some(ip), Some(&why))
                    .await
            }
            Err(e) => Err(e.into()),
        };
    }
    match outcome {
        Ok(()) => ApiError::InvalidCredentials,
        Err(e) => e,
    }
}

/// The secret of an operator's (pending or enrolled) TOTP, to show at
/// enrolment: base32 and the `otpauth://` URI an authenticator app scans.
pub fn enrolment_secret(app: &AppState, operator: &Operator) -> Result<(String, String), ApiError> {
    if operator.totp_enrolled {
        return Err(ApiError::Forbidden("TOTP is enrolled already"));
    }
    let secret = open(app, operator)?;
    let base32 = totp_rs::Secret::Raw(secret).to_encoded().to_string();
    let issuer = "devicetrust console";
    let brand = &app.settings().brand_name;
    let label = format!("{brand} console:{}", operator.name);
    let uri = format!(
        "otpauth://totp/{}?secret={base32}&issuer={}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_S}",
        percent(&label),
        percent(issuer)
    );
    Ok((base32, uri))
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Step two: the code from the authenticator. On enrolment (`enrolling`)
/// a correct code also marks TOTP enrolled. Counted with the password
/// failures; a replayed step is a failure like a wrong code.
pub async fn check_code(
    app: &AppState,
    operator_name: &str,
    code: &Secret,
    enrolling: bool,
    ip: IpAddr,
) -> Result<Operator, ApiError> {
    let code = code.expose().trim();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("the code is 6 digits"));
    }
    let keys = lock_keys(operator_name, ip);
    let count = reserve(app, &keys).await?;
    let operator = app.store().operator(operator_name).await?;
    let operator = match operator {
        Some(op) if op.disabled_at.is_none() && op.totp_enrolled != enrolling => op,
        op => return Err(fail(app, &keys, count, op.as_ref(), ip, "operator_totp").await),
    };
    let secret = open(app, &operator)?;
    let now = app.now();
    let step = matching_step(&secret, code, now)?;
    let accepted = match step {
        Some(step) => app.store().use_totp_step(&operator.name, step).await?,
        None => false,
    };
    if !accepted {
        let reason = if step.is_some() {
            "operator_totp_replayed"
        } else {
            "operator_totp"
        };
        return Err(fail(app, &keys, count, Some(&operator), ip, reason).await);
    }
    if enrolling {
        app.store()
            .set_operator_totp(&operator.name, operator.totp_sealed.clone(), true)
            .await?;
        // The enrolment code is spent.
        app.store()
            .set_operator_enrolment(&operator.name, None, None)
            .await?;
        app.audit_by(
            &operator.name,
            "operator_totp_enrolled",
            None,
            None,
            Some(ip),
            None,
        )
        .await?;
    }
    app.store().reset_attempts(&keys.network, now).await?;
    app.store().reset_attempts(&keys.name, now).await?;
    app.audit_by(
        &operator.name,
        "operator_signed_in",
        None,
        None,
        Some(ip),
        None,
    )
    .await?;
    Ok(operator)
}

/// The time step (now, or one either side) whose code is `code`; every
/// candidate is compared, in constant time.
fn matching_step(secret: &[u8], code: &str, now: i64) -> Result<Option<i64>, ApiError> {
    let totp = TOTP::new(
        Algorithm::SHA1,
        TOTP_DIGITS,
        1,
        TOTP_STEP_S as u64,
        secret.to_vec(),
    )
    .map_err(|_| ApiError::Internal)?;
    let current = now.div_euclid(TOTP_STEP_S);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        let Ok(at) = u64::try_from(step * TOTP_STEP_S) else {
            continue;
        };
        let expected = totp.generate(at);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    Ok(found)
}

/// The code of `secret` at `unix_time` (for tests and the CLI's checks).
pub fn code_at(secret_base32: &str, unix_time: u64) -> Option<String> {
    let secret = totp_rs::Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .ok()?;
    let totp = TOTP::new(Algorithm::SHA1, TOTP_DIGITS, 1, TOTP_STEP_S as u64, secret).ok()?;
    Some(totp.generate(unix_time))
}

fn seal(app: &AppState, name: &str, secret: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut nonce = [0u8; aead::NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| ApiError::Internal)?;
    let mut data = secret.to_vec();
    app.totp_key
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(name.as_bytes()),
            &mut data,
        )
        .map_err(|_| ApiError::Internal)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(out)
}

fn open(app: &AppState, operator: &Operator) -> Result<Vec<u8>, ApiError> {
    let sealed = operator
        .totp_sealed
        .as_deref()
        .ok_or(ApiError::Forbidden("no TOTP secret"))?;
    if sealed.len() < aead::NONCE_LEN {
        return Err(ApiError::Internal);
    }
    let (nonce, rest) = sealed.split_at(aead::NONCE_LEN);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| ApiError::Internal)?;
    let mut data = rest.to_vec();
    let plain = app
        .totp_key
        .open_in_place(nonce, aead::Aad::from(operator.name.as_bytes()), &mut data)
        .map_err(|_| {
            tracing::error!("an operator's TOTP secret does not open with this server key");
            ApiError::Internal
        })?;
    Ok(plain.to_vec())
}

/// Admin: disable or re-enable an operator (disabling ends their sessions).
pub async fn set_disabled(
    app: &AppState,
    actor: &Actor,
    target: &str,
    disabled: bool,
    ip: IpAddr,
) -> Result<(), ApiError> {
    actor.require_admin()?;
    let target = name(target)?;
    if target == actor.name {
        return Err(ApiError::invalid("an operator cannot disable themselves"));
    }
    let at = disabled.then(|| app.now());
    if !app.store().set_operator_disabled(&target, at).await? {
        return Err(ApiError::NotFound);
    }
    let event = if disabled {
        "operator_disabled"
    } else {
        "operator_enabled"
    };
    app.audit_by(
        &actor.name,
        event,
        None,
        None,
        Some(ip),
        Some(&format!("operator={target}")),
    )
    .await
}

/// Admin: the operator enrols TOTP again at next sign-in (a lost phone),
/// with the new one-time enrolment code returned here (to hand over; shown
/// once); their console sessions end at once (like disabling).
pub async fn reset_totp(
    app: &AppState,
    actor: &Actor,
    target: &str,
    ip: IpAddr,
) -> Result<Secret, ApiError> {
    actor.require_admin()?;
    let target = name(target)?;
    if app.store().operator(&target).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let (code, code_hash) = new_enrolment_code()?;
    app.store().set_operator_totp(&target, None, false).await?;
    app.store()
        .set_operator_enrolment(
            &target,
            Some(code_hash),
            Some(app.now() + ENROLMENT_CODE_TTL_S),
        )
        .await?;
    let ended = app.store().end_operator_sessions(&target).await?;
    app.audit_by(
        &actor.name,
        "operator_totp_reset",
        None,
        None,
        Some(ip),
        Some(&format!("operator={target} sessions={ended}")),
    )
    .await?;
    Ok(code)
}

/// Admin: every operator.
pub async fn list(app: &AppState, actor: &Actor) -> Result<Vec<Operator>, ApiError> {
    actor.require_admin()?;
    Ok(app.store().operators().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_codes_are_random_and_typed_loosely() {
        let (a, hash) = new_enrolment_code().unwrap();
        let (b, _) = new_enrolment_code().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 24 + 5, "{}", a.expose());
        let typed = a.expose().replace('-', " ").to_ascii_lowercase();
        assert_eq!(enrolment_code_hash(&typed), hash);
        assert_ne!(enrolment_code_hash(b.expose()), hash);
    }

    #[test]
    fn names_are_checked_and_lower_cased() {
        assert_eq!(name("Alice.B").unwrap(), "alice.b");
        assert!(name("").is_err());
        assert!(name("a b").is_err());
        assert!(name(&"a".repeat(33)).is_err());
    }

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59: 94287082 (8 digits); the
        // last 6 digits are the 6-digit code.
        let secret = b"12345678901234567890";
        let base32 = totp_rs::Secret::Raw(secret.to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(code_at(&base32, 59).as_deref(), Some("287082"));
        assert_eq!(matching_step(secret, "287082", 59).unwrap(), Some(1));
        // One step either side is accepted, two are not.
        assert_eq!(matching_step(secret, "287082", 59 + 30).unwrap(), Some(1));
        assert_eq!(matching_step(secret, "287082", 59 + 60).unwrap(), None);
        assert_eq!(matching_step(secret, "000000", 59).unwrap(), None);
    }
}
