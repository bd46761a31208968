//! Delivery of OTP codes and security alerts. The outbox file is one
//! implementation; SMTP and an SMS webhook plug in behind the same trait.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

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
    pub text: String,
    pub sent_at: i64,
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

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("outbox write failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    async fn send(&self, message: Message) -> Result<(), NotifyError>;
}

/// Appends each message as one JSON line to a file (development, tests, and
/// operators who forward the file to their own gateway).
pub struct Outbox {
    path: PathBuf,
    // One writer at a time keeps lines whole.
    lock: Mutex<()>,
}

impl Outbox {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Outbox {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }
}

#[async_trait]
impl Notifier for Outbox {
    async fn send(&self, message: Message) -> Result<(), NotifyError> {
        let mut line = serde_json::to_vec(&message)?;
        line.push(b'\n');
        let _guard = self.lock.lock().await;
        let mut file = tokio::fs::File::from_std(crate::private_files::open_append(&self.path)?);
        file.write_all(&line).await?;
        file.flush().await?;
        Ok(())
    }
}
