//! Becoming a user: the password policy, and setting up online access from
//! a card ("create a user ID and password with your card details").

use crate::http::Method;
use serde_json::json;

use super::DeviceTrust;
use crate::error::{DeviceTrustError, Result};
use crate::http::Repeat;
use crate::input;
use crate::model::PasswordPolicy;
use crate::wire::{WireAccountCreated, WirePasswordPolicy};

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl DeviceTrust {
    /// The server's password rules, to show while the user types (no session
    /// needed). Pair it with `check_password` for live feedback; the server
    /// still decides.
    pub async fn password_policy(&self) -> Result<PasswordPolicy> {
        let p: WirePasswordPolicy = self
            .inner
            .http
            .call(Method::GET, "/v1/password-policy", None, None, Repeat::Safe)
            .await
            .map_err(super::map_call)?;
        Ok(PasswordPolicy {
            min_length: p.min_length,
            max_length: p.max_length,
            classes_required: p.classes_required,
            description: p.description,
        })
    }

    /// Sets up online access from a card: the card number (spaces allowed),
    /// the 4-digit card ID, the name as on the card, and the user ID and
    /// password the card holder chooses. Returns the new user ID (as the
    /// server stores it). The user then signs in with
    /// `sign_in_with_password`, which starts the one-time enrolment.
    ///
    /// Card details are checked here first (length, Luhn, 4-digit ID): a typo
    /// costs no request and no attempt. Wrong details that look right count
    /// per card like wrong passwords.
    pub async fn create_account(
        &self,
        card_number: &str,
        card_id: &str,
        name: &str,
        user_id: &str,
        password: &str,
    ) -> Result<String> {
        let card_number = input::card_number(card_number)?;
        input::card_id(card_id)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(DeviceTrustError::invalid("enter the name as on the card"));
        }
        input::user_id(user_id)?;
        if password.is_empty() {
            return Err(DeviceTrustError::invalid("choose a password"));
        }
        let body = json!({
            "card_number": card_number,
            "card_id": card_id,
            "name": name,
            "user_id": user_id,
            "password": password,
        });
        let created: WireAccountCreated = self
            .inner
            .http
            .call(
                Method::POST,
                "/v1/accounts",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
            .map_err(super::map_call)?;
        Ok(created.user_id)
    }
}
