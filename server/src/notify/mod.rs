//! Delivery of OTP codes, security alerts and recovery reminders.
//!
//! Every carrier sits behind the [`Notifier`] trait: the [`Outbox`] file,
//! [`Smtp`] for e-mail, [`SmsWebhook`] for SMS, and [`Delivery`], the
//! composite chosen by configuration (`serve` builds it from
//! [`DeliveryConfig`]). [`AlertQueue`] sends messages off the request path.
//! Carriers retry a failed attempt a bounded number of times ([`Retry`]);
//! what they still could not hand over is an error (the caller answers
//! `delivery_failed`).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

mod alerts;
mod outbox;
mod router;
pub(crate) mod sms_webhook;
mod smtp;

pub use alerts::{AlertQueue, AlertTask, AlertWorker};
pub use outbox::Outbox;
pub use router::{Delivery, DeliveryConfig};
pub use sms_webhook::{signature, SmsWebhook, SIGNATURE_HEADER};
pub use smtp::{Smtp, SmtpSecurity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Otp,
    Alert,
    /// The user-ID reminder of recovery.
    Recovery,
}

/// One message, in the outbox's line format.
#[derive(Clone, Serialize)]
pub struct Message {
    pub channel: Channel,
    pub to: String,
    pub user_id: String,
    pub purpose: Purpose,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// With alerts: the security event's type (`device_added`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The e-mail's subject line (not in the outbox line).
    #[serde(skip)]
    pub subject: String,
    pub text: String,
    pub sent_at: i64,
    /// Unique per message: the SMS webhook's `message_id`, the e-mail's
    /// Message-ID (not in the outbox line).
    #[serde(skip)]
    pub message_id: String,
}

// Hand-written so a code never reaches a log through `{:?}`.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("channel", &self.channel)
            .field("user_id", &self.user_id)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

/// Why a message was not handed over. The texts never hold the message's
/// text, its code, a password or the webhook secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("outbox write failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// The carrier answered with a final "no" (SMTP 5xx, HTTP 4xx, a bad
    /// address): trying again cannot help.
    #[error("{carrier} refused the message: {detail}")]
    Refused {
        carrier: &'static str,
        detail: String,
    },
    /// The carrier could not be reached, timed out or answered "later"
    /// (SMTP 4xx, HTTP 5xx/408/429), on every attempt.
    #[error("{carrier} unavailable: {detail}")]
    Unavailable {
        carrier: &'static str,
        detail: String,
    },
    /// Neither a carrier nor the outbox handles this channel.
    #[error("no delivery is configured for {0:?} messages")]
    NoCarrier(Channel),
}

impl NotifyError {
    /// Whether trying again later could succeed (the alert queue retries
    /// these).
    pub fn is_transient(&self) -> bool {
        matches!(self, NotifyError::Io(_) | NotifyError::Unavailable { .. })
    }
}

/// A delivery setting that cannot work; `serve` refuses to start with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Hands the message to its carrier; an error means it was not handed
    /// over (the caller answers `delivery_failed` and counts nothing).
    async fn send(&self, message: Message) -> Result<(), NotifyError>;
    /// Whether messages on `channel` can be delivered at all: a channel with
    /// neither a carrier nor the outbox is not offered to users.
    fn supports(&self, _channel: Channel) -> bool {
        true
    }
}

/// Bounded retries of one carrier: `attempts` tries, each cut off after
/// `attempt_timeout`, with a doubling pause (from `backoff`) between them,
/// and no new try once `budget` has passed since the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub attempt_timeout: Duration,
    pub backoff: Duration,
    pub budget: Duration,
}

impl Retry {
    /// On the request path (OTPs): 3 tries, 4 s each, 0.25 s then 0.5 s
    /// apart, none started after 6 s; a user waits 10 s at the very worst
    /// (a carrier that hangs), well under a second when it refuses at once.
    pub const REQUEST: Retry = Retry {
        attempts: 3,
        attempt_timeout: Duration::from_secs(4),
        backoff: Duration::from_millis(250),
        budget: Duration::from_secs(6),
    };

    /// Runs `attempt` until it succeeds, fails for good, or the tries or the
    /// budget are spent; the last error is returned.
    pub(crate) async fn run<F, Fut>(
        &self,
        carrier: &'static str,
        mut attempt: F,
    ) -> Result<(), NotifyError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), NotifyError>>,
    {
        let start = tokio::time::Instant::now();
        let mut pause = self.backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            let left = self.budget.saturating_sub(start.elapsed());
            let limit = self
                .attempt_timeout
                .min(left.max(Duration::from_millis(100)));
            let result = match tokio::time::timeout(limit, attempt()).await {
                Ok(result) => result,
                Err(_) => Err(NotifyError::Unavailable {
                    carrier,
                    detail: format!("no answer within {} ms", limit.as_millis()),
                }),
            };
            let error = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let out_of_time = start.elapsed() + pause >= self.budget;
            if !error.is_transient() || tries >= self.attempts || out_of_time {
                return Err(error);
            }
            tracing::debug!(carrier, attempt = tries, error = %error, "delivery attempt failed; retrying");
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry::REQUEST
    }
}
