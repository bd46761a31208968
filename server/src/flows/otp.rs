//! Sending a one-time code on a login (sign-in, recovery or contact
//! change): spacing, caps, the code at rest, delivery, and nothing counted
//! when the carrier refuses.

use std::net::IpAddr;

use crate::app::AppState;
use crate::error::ApiError;
use crate::messages;
use crate::notify::{Channel, Message, Purpose};
use crate::secrets::{ct_eq, new_id, OtpKey};
use crate::storage::{Login, OtpSendOutcome, SendCaps};

/// The verdict on a code typed for a login.
pub enum CodeCheck {
    /// Right; the channel it was sent on.
    Right { channel: String },
    /// Wrong; this many tries are left for it.
    Wrong { attempts_left: i64 },
    /// No code to compare: none sent, expired, or out of tries.
    Spent,
}

/// Counts one try against the login's code (before comparing) and compares
/// in constant time.
pub async fn check_code(app: &AppState, login_id: &str, code: &str) -> Result<CodeCheck, ApiError> {
    let s = app.settings();
    let now = app.now();
    let attempt = app.store().try_otp(login_id).await?;
    let Some(attempt) = attempt.filter(|a| a.expires_at > now && a.attempts <= s.otp_max_tries)
    else {
        return Ok(CodeCheck::Spent);
    };
    if ct_eq(&app.otp_key.mac(login_id, code), &attempt.mac) {
        Ok(CodeCheck::Right {
            channel: attempt.channel,
        })
    } else {
        Ok(CodeCheck::Wrong {
            attempts_left: s.otp_max_tries - attempt.attempts,
        })
    }
}

/// A code on its way.
pub struct CodeSent {
    pub expires_at: i64,
    pub resend_after_s: i64,
}

/// Makes a new code for `login`, stores its HMAC (replacing any earlier
/// code), and hands it to the carrier of `channel` at `to`. If the carrier
/// refuses, the send is taken back (no spacing or cap consumed) and the
/// answer is `delivery_failed`.
pub async fn send_code(
    app: &AppState,
    login: &Login,
    channel: Channel,
    to: &str,
    what: &str,
    ip: IpAddr,
) -> Result<CodeSent, ApiError> {
    let s = app.settings();
    if !app.notifier.supports(channel) {
        return Err(ApiError::invalid("that channel cannot deliver codes here"));
    }
    let now = app.now();
    let code = OtpKey::new_code();
    let expires_at = now + s.otp_ttl_s;
    let channel_name = match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
    };
    let outcome = app
        .store()
        .store_otp(
            &login.login_id,
            channel_name,
            app.otp_key.mac(&login.login_id, &code),
            expires_at,
            s.otp_resend_after_s,
            s.otp_max_sends,
            SendCaps {
                destination_key: app.destination_hash(to),
                // A step-up after a device proof is the phone's holder
                // asking: it has the login's own caps (resend spacing, 5
                // sends) but not the hourly ones, which whoever holds only
                // the password could otherwise use up to keep the holder
                // from signing in anywhere new.
                per_hour: if device_step_up(login) {
                    i64::MAX
                } else {
                    s.otp_sends_per_hour
                },
            },
            now,
        )
        .await?;
    let taken_back = match outcome {
        OtpSendOutcome::Sent { taken_back } => taken_back,
        OtpSendOutcome::TooSoon(wait) => {
            return Err(ApiError::RateLimited {
                retry_after_s: wait,
            })
        }
        OtpSendOutcome::CapReached => {
            return Err(ApiError::RateLimited {
                retry_after_s: login.expires_at - now,
            })
        }
        OtpSendOutcome::HourlyCapReached(wait) => {
            app.audit(
                "otp_capped",
                Some(&login.user_id),
                login.device_id.as_deref(),
                Some(ip),
                Some(channel_name),
            )
            .await?;
            return Err(ApiError::RateLimited {
                retry_after_s: wait,
            });
        }
        OtpSendOutcome::LoginGone => return Err(ApiError::LoginExpired),
    };
    let text = messages::otp(&s.brand_name, &code, s.otp_ttl_s / 60, what);
    let message = Message {
        channel,
        to: to.to_owned(),
        user_id: login.user_id.clone(),
        purpose: Purpose::Otp,
        code: Some(code),
        event: None,
        subject: text.subject,
        text: text.body,
        sent_at: now,
        message_id: new_id(),
    };
    if let Err(e) = app.notifier.send(message).await {
        tracing::error!(error = %e, user_id = %login.user_id, "code delivery failed");
        app.metrics.otp_delivery_failed(channel_name);
        app.store().unsend_otp(&login.login_id, taken_back).await?;
        return Err(ApiError::DeliveryFailed);
    }
    app.audit(
        "otp_sent",
        Some(&login.user_id),
        login.device_id.as_deref(),
        Some(ip),
        Some(channel_name),
    )
    .await?;
    Ok(CodeSent {
        expires_at,
        resend_after_s: s.otp_resend_after_s,
    })
}

/// A login made by a device proof the risk policy wanted more for (its
/// `amr` holds the device's factor and no password).
fn device_step_up(login: &Login) -> bool {
    !login.amr.iter().any(|m| m == "pwd") && login.amr.iter().any(|m| m == "hwk" || m == "swk")
}
