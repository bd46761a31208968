//! Cards and online enrolment: the bank feeds cards in; a card holder
//! creates a user ID and password from card details, and links more cards.
//!
//! Card numbers and card IDs are kept only as HMACs under a key derived from
//! the server key (and the last four digits for display). Card-ID guessing
//! is counted per card number before evaluation, like passwords per user ID.

use std::net::IpAddr;

use ring::hmac;
use unicode_normalization::UnicodeNormalization;

use crate::app::AppState;
use crate::error::ApiError;
use crate::notify::Channel;
use crate::secrets::{ct_eq, new_id, Secret};
use crate::storage::{Card, CardLinkOutcome, LockoutPolicy, StorageError, User};
use crate::validate;

/// A card number as typed: 15–19 digits (spaces and dashes allowed) that
/// pass the Luhn check; returned as digits only.
pub fn card_number(raw: &str) -> Result<String, ApiError> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let ok = (15..=19).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && luhn(&digits);
    if ok {
        Ok(digits)
    } else {
        Err(ApiError::invalid(
            "card_number must be 15 to 19 digits that pass the Luhn check",
        ))
    }
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// A card ID: 4 ASCII digits.
pub fn card_id(raw: &str) -> Result<(), ApiError> {
    if raw.len() == 4 && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::invalid("card_id must be 4 digits"))
    }
}

/// A name as compared with the card's: letters and digits only, without
/// case, accents, punctuation or spaces ("Ångström-Lind, J." equals
/// "angstrom lind j").
pub fn name_key(name: &str) -> String {
    name.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl AppState {
    fn card_mac(&self, parts: &[&str]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.card_key);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                ctx.update(b":");
            }
            ctx.update(p.as_bytes());
        }
        ctx.sign().as_ref().to_vec()
    }

    pub(crate) fn card_number_hash(&self, number: &str) -> Vec<u8> {
        self.card_mac(&[number])
    }

    fn card_id_hash(&self, number: &str, card_id: &str) -> Vec<u8> {
        self.card_mac(&[number, card_id])
    }

    /// The lockout keys of a card number (its hash, never the number): the
    /// short one (the sign-in rules) and the long one.
    fn card_keys_for(&self, number: &str) -> (String, String) {
        let hash = self.card_number_hash(number);
        let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
        (format!("card:{hex}"), format!("card-week:{hex}"))
    }
}

/// What the bank sends for a new card.
pub struct NewCard {
    pub card_number: String,
    pub card_id: String,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    pub primary_market: String,
    pub activated: bool,
}

/// Administration: stores a card; `card_exists` if the number is known.
pub async fn create_card(app: &AppState, new: NewCard) -> Result<String, ApiError> {
    let number = card_number(&new.card_number)?;
    card_id(&new.card_id)?;
    let name = validate::label("name", &new.name, 128)?;
    let email = validate::email(&new.email)?;
    if let Some(m) = &new.mobile {
        validate::e164(m)?;
    }
    let market = validate::market(&new.primary_market)?;
    let now = app.now();
    let card = Card {
        card_ref: new_id(),
        number_hash: app.card_number_hash(&number),
        card_id_hash: app.card_id_hash(&number, &new.card_id),
        last4: number[number.len() - 4..].to_owned(),
        name,
        email,
        mobile: new.mobile,
        primary_market: market,
        activated_at: new.activated.then_some(now),
        created_at: now,
        user_id: None,
        linked_at: None,
    };
    let card_ref = card.card_ref.clone();
    match app.store().create_card(card).await {
        Ok(()) => {}
        Err(StorageError::Conflict) => return Err(ApiError::CardExists),
        Err(e) => return Err(e.into()),
    }
    app.audit("card_created", None, None, None, Some(&card_ref))
        .await?;
    Ok(card_ref)
}

/// Administration: activates a card; `not_found` if unknown.
pub async fn activate_card(app: &AppState, card_ref: &str) -> Result<(), ApiError> {
    let card_ref = validate::server_id("card_ref", card_ref)?;
    if !app.store().activate_card(card_ref, app.now()).await? {
        return Err(ApiError::NotFound);
    }
    app.audit("card_activated", None, None, None, Some(card_ref))
        .await?;
    Ok(())
}

/// The long rule on card numbers: 30-minute locks alone would let 240
/// guesses a day at a 4-digit card ID (all 10⁴ in six weeks). 20 failures
/// without a week's pause stop the number for a week.
fn card_week_policy() -> LockoutPolicy {
    LockoutPolicy {
        threshold: 20,
        duration_s: 7 * 24 * 3600,
        memory_s: 7 * 24 * 3600,
    }
}

/// Proves card details: counted per card number before evaluation, under
/// the sign-in rules (5 → 30 minutes) and a weekly rule (20 → a week); one
/// answer, `card_not_recognized`, for a wrong number, card ID or name. A
/// lock on a known card tells its holder by e-mail.
async fn prove_card(
    app: &AppState,
    number: &str,
    id: &str,
    name: &str,
    ip: IpAddr,
) -> Result<Card, ApiError> {
    let (key, week_key) = app.card_keys_for(number);
    let count = app.reserve_attempt(&key).await?;
    let week_count = match app
        .reserve_attempt_with(&week_key, card_week_policy())
        .await
    {
        Ok(n) => n,
        Err(e) => {
            app.refund_attempt(&key).await?;
            return Err(e);
        }
    };
    let card = app
        .store()
        .card_by_number(&app.card_number_hash(number))
        .await?;
    let matches = card.as_ref().is_some_and(|c| {
        // Both compared, always, in constant time.
        let id_ok = ct_eq(&app.card_id_hash(number, id), &c.card_id_hash);
        let name_ok = ct_eq(name_key(name).as_bytes(), name_key(&c.name).as_bytes());
        id_ok & name_ok
    });
    match card {
        Some(card) if matches => {
            app.refund_attempt(&key).await?;
            app.refund_attempt(&week_key).await?;
            Ok(card)
        }
        card => {
            let week = card_week_policy();
            let err = ApiError::CardNotRecognized;
            let _ = app
                .fail_with(
                    week,
                    "card_locked",
                    &week_key,
                    week_count,
                    None,
                    ip,
                    "card",
                    err,
                )
                .await;
            let locks = count >= app.settings().lockout_threshold || week_count >= week.threshold;
            if let (Some(card), true) = (card, locks) {
                let detail = format!(
                    "Someone entered wrong details for your card ending {} too many times, \
                     so setting up online access with it is paused.",
                    card.last4
                );
                app.alert_to(
                    &card.card_ref,
                    "card_locked",
                    Channel::Email,
                    &card.email,
                    &detail,
                )
                .await;
            }
            Err(app
                .fail(&key, count, None, ip, "card", ApiError::CardNotRecognized)
                .await)
        }
    }
}

/// What a card holder types to create online access.
pub struct NewAccount {
    pub card_number: String,
    pub card_id: String,
    pub name: String,
    pub user_id: String,
    pub password: Secret,
}

/// `POST /v1/accounts`: a user ID and password from card details. The new
/// user takes the card's name, e-mail, mobile and market, is not enrolled
/// in the second factor yet, and the card is linked to it.
pub async fn create_account(
    app: &AppState,
    req: NewAccount,
    ip: IpAddr,
) -> Result<String, ApiError> {
    // Malformed input is 400 and not counted.
    let number = card_number(&req.card_number)?;
    card_id(&req.card_id)?;
    let user_id = validate::user_id(&req.user_id)?;
    validate::password(req.password.expose())?;
    let card = prove_card(app, &number, &req.card_id, &req.name, ip).await?;
    if card.activated_at.is_none() {
        return Err(ApiError::CardNotActivated);
    }
    if card.user_id.is_some() {
        return Err(ApiError::CardAlreadyEnrolled);
    }
    let password = app
        .settings()
        .password_policy
        .new_password(&req.password, &user_id)?;
    let now = app.now();
    let user = User {
        user_id: user_id.clone(),
        name: card.name.clone(),
        email: card.email.clone(),
        mobile: card.mobile.clone(),
        primary_market: card.primary_market.clone(),
        password_hash: app.hasher().hash(&password).await?,
        security_code_hash: None,
        enrolled_at: None,
        created_at: now,
        // The bank's own data: an OTP channel from the start.
        mobile_verified: true,
    };
    match app
        .store()
        .create_user_from_card(user, &card.card_ref, now)
        .await?
    {
        CardLinkOutcome::Linked => {}
        CardLinkOutcome::AlreadyEnrolled => return Err(ApiError::CardAlreadyEnrolled),
        CardLinkOutcome::UserExists => return Err(ApiError::UserExists),
    }
    app.audit("user_created", Some(&user_id), None, Some(ip), Some("card"))
        .await?;
    Ok(user_id)
}

/// `POST /v1/cards`: links another card whose name matches the user's.
pub async fn link_card(
    app: &AppState,
    user: &User,
    number: &str,
    id: &str,
    ip: IpAddr,
) -> Result<Card, ApiError> {
    let number = card_number(number)?;
    card_id(id)?;
    let card = prove_card(app, &number, id, &user.name, ip).await?;
    if card.activated_at.is_none() {
        return Err(ApiError::CardNotActivated);
    }
    if card.user_id.is_some() {
        return Err(ApiError::CardAlreadyEnrolled);
    }
    let now = app.now();
    match app
        .store()
        .link_card(&card.card_ref, &user.user_id, now)
        .await?
    {
        CardLinkOutcome::Linked => {}
        _ => return Err(ApiError::CardAlreadyEnrolled),
    }
    app.audit(
        "card_linked",
        Some(&user.user_id),
        None,
        Some(ip),
        Some(&card.card_ref),
    )
    .await?;
    Ok(Card {
        user_id: Some(user.user_id.clone()),
        linked_at: Some(now),
        ..card
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_lengths() {
        assert!(card_number("4111 1111 1111 1111").is_ok());
        assert!(card_number("378282246310005").is_ok());
        assert!(card_number("4111111111111112").is_err());
        assert!(card_number("41111111111").is_err());
        assert!(card_number("4111x11111111111").is_err());
        assert!(card_id("1234").is_ok());
        assert!(card_id("123").is_err() && card_id("12a4").is_err());
    }

    #[test]
    fn names_compare_on_letters_and_digits() {
        assert_eq!(name_key("Ångström-Lind, J."), name_key("angstrom lind j"));
        assert_ne!(name_key("Jane Doe"), name_key("Jane Do"));
        assert_eq!(name_key("ÉLODIE  O'Neil"), "elodieoneil");
    }
}
