//! The composite notifier: each channel to its carrier, and every message
//! also to the outbox when there is one.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Channel, ConfigError, Message, Notifier, NotifyError, Outbox, SmsWebhook, Smtp};

/// E-mail to its carrier (SMTP), SMS to its carrier (the webhook), and a
/// copy of every message handed over in the outbox, if one is configured.
///
/// A message goes to the carrier first; the outbox records it once the
/// carrier has accepted it, so the outbox never holds a code the user did
/// not get (a carrier failure is returned and nothing is recorded). A
/// channel without a carrier is delivered to the outbox alone; a channel
/// with neither is not supported.
#[derive(Default)]
pub struct Delivery {
    email: Option<Arc<dyn Notifier>>,
    sms: Option<Arc<dyn Notifier>>,
    outbox: Option<Outbox>,
}

impl Delivery {
    /// Nothing configured: every channel unsupported.
    pub fn new() -> Self {
        Delivery::default()
    }

    /// E-mails go to `carrier`.
    pub fn with_email(mut self, carrier: impl Notifier) -> Self {
        self.email = Some(Arc::new(carrier));
        self
    }

    /// SMS go to `carrier`.
    pub fn with_sms(mut self, carrier: impl Notifier) -> Self {
        self.sms = Some(Arc::new(carrier));
        self
    }

    /// Every message handed over is also appended to `outbox`.
    pub fn with_outbox(mut self, outbox: Outbox) -> Self {
        self.outbox = Some(outbox);
        self
    }

    fn carrier(&self, channel: Channel) -> Option<&Arc<dyn Notifier>> {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
        }
    }
}

#[async_trait]
impl Notifier for Delivery {
    async fn send(&self, message: Message) -> Result<(), NotifyError> {
        let Some(carrier) = self.carrier(message.channel) else {
            return match &self.outbox {
                Some(outbox) => outbox.send(message).await,
                None => Err(NotifyError::NoCarrier(message.channel)),
            };
        };
        let (channel, purpose) = (message.channel, message.purpose);
        if let Err(e) = carrier.send(message.clone()).await {
            tracing::warn!(
                ?channel,
                ?purpose,
                user_id = %message.user_id,
                message_id = %message.message_id,
                error = %e,
                "message not delivered"
            );
            return Err(e);
        }
        if let Some(outbox) = &self.outbox {
            // Delivered: an outbox that cannot be written is the operator's
            // problem, not the user's.
            if let Err(e) = outbox.send(message).await {
                tracing::error!(error = %e, "message delivered but not recorded in the outbox");
            }
        }
        Ok(())
    }

    fn supports(&self, channel: Channel) -> bool {
        self.carrier(channel).is_some() || self.outbox.is_some()
    }
}

/// The delivery flags of `serve`. No `Debug`: it holds the SMTP password
/// and the webhook secret.
#[derive(Default, Clone)]
pub struct DeliveryConfig {
    /// `smtp://`, `smtp+starttls://` or `smtps://` with optional
    /// `user:password@`.
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    /// Extra trusted roots (PEM) for the relay's certificate.
    pub smtp_ca_file: Option<PathBuf>,
    pub sms_webhook: Option<String>,
    pub sms_webhook_secret: Option<String>,
    pub outbox: Option<PathBuf>,
}

impl DeliveryConfig {
    /// The composite notifier these settings describe. Refuses settings
    /// that cannot work, and a configuration without any e-mail delivery
    /// (neither SMTP nor the outbox): e-mail is every user's second factor.
    pub fn build(&self) -> Result<Delivery, ConfigError> {
        let mut delivery = Delivery::new();
        match (&self.smtp_url, &self.smtp_from) {
            (Some(url), Some(from)) => {
                let roots = match &self.smtp_ca_file {
                    Some(path) => Some(std::fs::read(path).map_err(|e| {
                        ConfigError(format!("--smtp-ca-file {}: {e}", path.display()))
                    })?),
                    None => None,
                };
                let smtp = Smtp::new(url, from, roots.as_deref())?;
                if smtp.credentials_in_clear() {
                    tracing::warn!(
                        relay = smtp.endpoint(),
                        "the SMTP password crosses the network unencrypted: use smtp+starttls:// or smtps://"
                    );
                }
                tracing::info!(relay = smtp.endpoint(), "e-mail delivery: SMTP");
                delivery = delivery.with_email(smtp);
            }
            (Some(_), None) => return Err(ConfigError("--smtp-url needs --smtp-from".into())),
            (None, Some(_)) => return Err(ConfigError("--smtp-from needs --smtp-url".into())),
            (None, None) if self.smtp_ca_file.is_some() => {
                return Err(ConfigError("--smtp-ca-file needs --smtp-url".into()))
            }
            (None, None) => {}
        }
        match (&self.sms_webhook, &self.sms_webhook_secret) {
            (Some(url), Some(secret)) => {
                let webhook = SmsWebhook::new(url, secret)?;
                if webhook.in_clear() {
                    tracing::warn!(
                        endpoint = %webhook.endpoint(),
                        "SMS codes cross the network unencrypted: use an https:// webhook"
                    );
                }
                tracing::info!(endpoint = %webhook.endpoint(), "SMS delivery: webhook");
                delivery = delivery.with_sms(webhook);
            }
            (Some(_), None) => {
                return Err(ConfigError(
                    "--sms-webhook needs --sms-webhook-secret (requests are signed)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError(
                    "--sms-webhook-secret needs --sms-webhook".into(),
                ))
            }
            (None, None) => {}
        }
        if let Some(path) = &self.outbox {
            tracing::info!(path = %path.display(), "every message is also recorded in the outbox");
            delivery = delivery.with_outbox(Outbox::new(path));
        }
        if !delivery.supports(Channel::Email) {
            return Err(ConfigError(
                "no e-mail delivery is configured: pass --smtp-url and --smtp-from \
                 (DEVICETRUST_SMTP_URL, DEVICETRUST_SMTP_FROM), or --outbox PATH \
                 (DEVICETRUST_OUTBOX) for development; e-mail is every user's second factor"
                    .into(),
            ));
        }
        if !delivery.supports(Channel::Sms) {
            tracing::info!("no SMS delivery configured: codes are offered by e-mail only");
        }
        Ok(delivery)
    }
}
