//! SMS through the operator's gateway: a signed JSON `POST` per message.

use std::time::Duration;

use async_trait::async_trait;
use ring::hmac;
use serde::Serialize;

use super::{Channel, ConfigError, Message, Notifier, NotifyError, Purpose, Retry};

const CARRIER: &str = "SMS webhook";

/// The header carrying `sha256=HEX`, the HMAC-SHA256 of the exact body.
pub const SIGNATURE_HEADER: &str = "X-Devicetrust-Signature";

/// The shortest webhook secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// The body of each `POST`: the contract's fields, in this order.
#[derive(Serialize)]
struct Body<'a> {
    to: &'a str,
    text: &'a str,
    user_id: &'a str,
    purpose: Purpose,
    message_id: &'a str,
}

/// `sha256=HEX`: HMAC-SHA256 of `body` under `secret`, as the header
/// carries it (receivers compute the same over the bytes they received).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body)
}

fn sign(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Posts each SMS to the operator's gateway. Any 2xx is success; 408, 429
/// and 5xx answers, timeouts and connection failures are retried (the same
/// body, so the same `message_id`: a gateway that saw the first attempt can
/// drop the repeat); other answers are final. Redirects are not followed.
pub struct SmsWebhook {
    client: reqwest::Client,
    url: reqwest::Url,
    key: hmac::Key,
    retry: Retry,
}

// Hand-written: the key is the webhook secret, and the URL may carry a token.
impl std::fmt::Debug for SmsWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsWebhook")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

impl SmsWebhook {
    /// A carrier posting to `url` (`http://` or `https://`; https is
    /// verified against the system's roots) signed with `secret` (at least
    /// 16 characters).
    pub fn new(url: &str, secret: &str) -> Result<SmsWebhook, ConfigError> {
        let url =
            reqwest::Url::parse(url).map_err(|e| ConfigError(format!("--sms-webhook: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError(
                "--sms-webhook must be an http:// or https:// URL".into(),
            ));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError(format!(
                "--sms-webhook-secret must be at least {MIN_SECRET_LEN} characters"
            )));
        }
        // reqwest is built without a rustls provider: the workspace uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("devicetrust-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError(format!("SMS webhook client: {e}")))?;
        Ok(SmsWebhook {
            client,
            url,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            retry: Retry::REQUEST,
        })
    }

    /// Replaces the request-path retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Whether messages (and their codes) would cross the network
    /// unencrypted: `http://` to anything but the loopback interface.
    pub fn in_clear(&self) -> bool {
        let host = self.url.host_str().unwrap_or("");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.url.scheme() == "http" && !loopback
    }

    /// Scheme, host and port only (no path or query: they may hold a token).
    pub fn endpoint(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        match self.url.port_or_known_default() {
            Some(port) => format!("{}://{host}:{port}", self.url.scheme()),
            None => format!("{}://{host}", self.url.scheme()),
        }
    }

    /// One `POST`; `Retry::run` bounds its time.
    async fn attempt(&self, body: &[u8], signature: &str) -> Result<(), NotifyError> {
        let unavailable = |detail: String| NotifyError::Unavailable {
            carrier: CARRIER,
            detail,
        };
        let mut trace = reqwest::header::HeaderMap::new();
        crate::ops::trace::inject(&mut trace);
        let response = self
            .client
            .post(self.url.clone())
            .headers(trace)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await
            // Without the URL: its path or query may carry a token.
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = format!("the gateway answered {}", status.as_u16());
        if status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429) {
            Err(unavailable(detail))
        } else {
            Err(NotifyError::Refused {
                carrier: CARRIER,
                detail,
            })
        }
    }
}

#[async_trait]
impl Notifier for SmsWebhook {
    async fn send(&self, message: Message) -> Result<(), NotifyError> {
        if message.channel != Channel::Sms {
            return Err(NotifyError::NoCarrier(message.channel));
        }
        let body = serde_json::to_vec(&Body {
            to: &message.to,
            text: &message.text,
            user_id: &message.user_id,
            purpose: message.purpose,
            message_id: &message.message_id,
        })?;
        let signature = sign(&self.key, &body);
        self.retry
            .run(CARRIER, || self.attempt(&body, &signature))
            .await
    }

    fn supports(&self, channel: Channel) -> bool {
        channel == Channel::Sms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn configuration() {
        assert!(SmsWebhook::new("ftp://x.example", "0123456789abcdef").is_err());
        assert!(SmsWebhook::new("https://x.example/hook", "short").is_err());
        let w = SmsWebhook::new("https://x.example/hook?token=abc", "0123456789abcdef").unwrap();
        assert_eq!(w.endpoint(), "https://x.example:443");
        assert!(!w.in_clear());
        let secret = "0123456789abcdef";
        assert!(SmsWebhook::new("http://gw.example/x", secret)
            .unwrap()
            .in_clear());
        assert!(!SmsWebhook::new("http://127.0.0.1:9/x", secret)
            .unwrap()
            .in_clear());
        assert!(!SmsWebhook::new("http://[::1]:9/x", secret)
            .unwrap()
            .in_clear());
        assert!(!format!("{w:?}").contains("abc"));
    }
}
