//! `Account`: what a signed-in card holder manages — profile, password,
//! e-mail, mobile, security code, cards, security events.

use crate::http::Method;
use serde_json::{json, Value};

use super::{user_profile, DeviceTrust};
use crate::error::{DeviceTrustError, Result};
use crate::http::Repeat;
use crate::input;
use crate::model::*;
use crate::wire::*;

/// The signed-in user's account, from `DeviceTrust.account()`. A small
/// handle sharing the DeviceTrust object's session: keep it or get a new one
/// per call, as is convenient.
///
/// Every call needs a session (`NotSignedIn` otherwise). Changes (password,
/// e-mail, mobile, security code, linking a card) need a strong one: a
/// sign-in with a one-time code or with this device in the last 10 minutes.
/// With an older or weaker session they fail with `RecentSignInRequired`:
/// confirm it is the user (biometric sign-in, or password + code) and repeat.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
#[derive(Clone)]
pub struct Account {
    client: DeviceTrust,
}

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl DeviceTrust {
    /// The signed-in user's profile.
    pub async fn profile(&self) -> Result<Profile> {
        let me: WireMe = self
            .authed(Method::GET, "/v1/me", None, Repeat::Safe)
            .await?;
        let profile = user_profile(me);
        self.remember_profile(&profile);
        Ok(profile)
    }
}

impl DeviceTrust {
    pub(super) fn set_contact_change(&self, change: Option<(String, String)>) {
        *self
            .inner
            .contact_change
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = change;
    }

    fn contact_change(&self) -> Option<(String, String)> {
        self.inner
            .contact_change
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Account {
    pub(super) fn new(client: DeviceTrust) -> Self {
        Account { client }
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl Account {
    /// The signed-in user's profile (as `DeviceTrust.profile()`).
    pub async fn profile(&self) -> Result<Profile> {
        self.client.profile().await
    }

    /// Changes the password (strong session). The server revokes every other
    /// session of the user and alerts them; this one stays signed in.
    ///
    /// Errors: `InvalidCredentials` (wrong current password: it counts toward
    /// the lock, like a sign-in), `AccountLocked`, `PasswordRejected`,
    /// `RecentSignInRequired`, `NotSignedIn`.
    pub async fn change_password(&self, current_password: &str, new_password: &str) -> Result<()> {
        if current_password.is_empty() || new_password.is_empty() {
            return Err(DeviceTrustError::invalid(
                "enter your current and your new password",
            ));
        }
        if current_password == new_password {
            return Err(DeviceTrustError::PasswordRejected {
                reasons: vec![PasswordRule::SameAsCurrent],
            });
        }
        let body = json!({"current_password": current_password, "new_password": new_password});
        self.client
            .authed::<Value>(
                Method::POST,
                "/v1/account/password",
                Some(&body),
                Repeat::Once,
            )
            .await
            .map(drop)
    }

    /// Starts an e-mail change (strong session): a code goes to the new
    /// address; finish with `confirm_contact_change`.
    /// A new change replaces one waiting for its code.
    pub async fn change_email(&self, new_email: &str) -> Result<PendingContactChange> {
        let new_email = new_email.trim();
        input::email(new_email)?;
        self.change_contact(OtpChannel::Email, json!({"email": new_email}))
            .await
    }

    /// Starts a mobile change (strong session; E.164, e.g. `+447700900123`):
    /// a code goes by SMS to the new number; finish with
    /// `confirm_contact_change`.
    pub async fn change_mobile(&self, new_mobile: &str) -> Result<PendingContactChange> {
        let new_mobile = new_mobile.trim();
        input::mobile(new_mobile)?;
        self.change_contact(OtpChannel::Sms, json!({"mobile": new_mobile}))
            .await
    }

    /// Confirms the pending e-mail or mobile change with the code sent to the
    /// new address; returns the updated profile.
    ///
    /// Errors: `OtpInvalid { attempts_left }`; `OtpExpired` (the code, or the
    /// change itself, expired or ran out of tries: start the change again);
    /// `InvalidInput` when no change waits for a code.
    pub async fn confirm_contact_change(&self, code: &str) -> Result<Profile> {
        let code = input::otp_code(code)?;
        let user_id = self.client.active_user();
        let change_id = match (self.client.contact_change(), user_id) {
            (Some((owner, id)), Some(user)) if owner == user => (user, id),
            _ => {
                return Err(DeviceTrustError::invalid(
                    "no e-mail or mobile change is waiting for a code",
                ))
            }
        };
        let (user_id, change_id) = change_id;
        let body = json!({"change_id": change_id, "code": code});
        match self
            .client
            .authed_as::<WireMe>(
                &user_id,
                Method::POST,
                "/v1/account/contact/verify",
                Some(&body),
                Repeat::Once,
            )
            .await
        {
            Ok(me) => {
                self.client.set_contact_change(None);
                let profile = user_profile(me);
                self.client.remember_profile(&profile);
                Ok(profile)
            }
            // The change is unknown, used or expired: ask for it again.
            Err(DeviceTrustError::SignInExpired) | Err(DeviceTrustError::OtpExpired) => {
                self.client.set_contact_change(None);
                Err(DeviceTrustError::OtpExpired)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes the mobile number (strong session). SMS codes stop; the user
    /// is alerted by e-mail.
    pub async fn remove_mobile(&self) -> Result<()> {
        self.client
            .authed::<Value>(Method::DELETE, "/v1/account/mobile", None, Repeat::Once)
            .await
            .map(drop)
    }

    /// Sets a new security code (strong session): 6–9 digits, not one digit
    /// repeated, not a straight run (checked here first).
    pub async fn change_security_code(&self, security_code: &str) -> Result<()> {
        input::security_code(security_code)?;
        let body = json!({"security_code": security_code});
        self.client
            .authed::<Value>(
                Method::POST,
                "/v1/account/security-code",
                Some(&body),
                Repeat::Once,
            )
            .await
            .map(drop)
    }

    /// The cards linked to this user ID.
    pub async fn linked_cards(&self) -> Result<Vec<LinkedCard>> {
        let list: WireCardList = self
            .client
            .authed(Method::GET, "/v1/cards", None, Repeat::Safe)
            .await?;
        Ok(list.cards.into_iter().map(linked_card).collect())
    }

    /// Links another card in the user's name (strong session). Errors as
    /// `create_account`: `CardNotRecognized` (counted per card; 5 →
    /// `AccountLocked`), `CardNotActivated`, `CardAlreadyEnrolled`.
    pub async fn link_card(&self, card_number: &str, card_id: &str) -> Result<LinkedCard> {
        let card_number = input::card_number(card_number)?;
        input::card_id(card_id)?;
        let body = json!({"card_number": card_number, "card_id": card_id});
        let created: WireCardEnvelope = self
            .client
            .authed(Method::POST, "/v1/cards", Some(&body), Repeat::Once)
            .await?;
        Ok(linked_card(created.card))
    }

    /// The account's security events, newest first: at most `limit`
    /// (1 to 200).
    pub async fn security_events(&self, limit: u32) -> Result<Vec<SecurityEvent>> {
        if !(1..=200).contains(&limit) {
            return Err(DeviceTrustError::invalid("limit must be 1 to 200"));
        }
        let list: WireEventList = self
            .client
            .authed(
                Method::GET,
                &format!("/v1/account/events?limit={limit}"),
                None,
                Repeat::Safe,
            )
            .await?;
        Ok(list
            .events
            .into_iter()
            .map(|e| SecurityEvent {
                event_type: SecurityEventType::from_wire(&e.event_type),
                at: at(e.at),
                ip: e.ip,
                device_id: e.device_id,
                device_name: e.device_name,
            })
            .collect())
    }
}

impl Account {
    async fn change_contact(
        &self,
        channel: OtpChannel,
        body: Value,
    ) -> Result<PendingContactChange> {
        let user_id = self
            .client
            .session()
            .await
            .ok_or(DeviceTrustError::NotSignedIn)?
            .user_id;
        let change: WireContactChange = self
            .client
            .authed_as(
                &user_id,
                Method::POST,
                "/v1/account/contact",
                Some(&body),
                Repeat::Once,
            )
            .await?;
        self.client
            .set_contact_change(Some((user_id, change.change_id)));
        Ok(PendingContactChange {
            channel,
            destination: change.destination,
            expires_at: at(change.expires_at),
        })
    }
}

fn linked_card(c: WireCard) -> LinkedCard {
    LinkedCard {
        card_ref: c.card_ref,
        last4: c.last4,
        linked_at: at(c.linked_at),
    }
}
