//! The outbox file: one JSON line per message handed over.

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{Message, Notifier, NotifyError};

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

    /// The file written to.
    pub fn path(&self) -> &std::path::Path {
        &self.path
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
