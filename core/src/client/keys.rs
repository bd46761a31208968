//! Every call into the platform key store goes through here: each gets a
//! timeout (a prompt may wait for the user, the other calls may not), a
//! panic in a Rust key store becomes `Internal` (not a key-store error), and
//! the key store's errors become the SDK's.
//!
//! Cancellation needs nothing here: when the SDK's future is dropped (the
//! app cancelled, or the timeout below ran out), the key store's future is
//! dropped with it, and uniffi cancels the foreign side (Kotlin: the
//! coroutine's `Job`, Python: the asyncio task), which dismisses the prompt.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{map_key_error, DeviceTrust};
use crate::error::{DeviceTrustError, Result};
use crate::keystore::{GeneratedKey, PlatformKeyError, PromptText, UserVerification};

/// Polls a future, turning a panic while polling into an error.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic_text(panic.as_ref()))),
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs one key-store call: at most `limit`, a panic is `Internal`.
pub(crate) async fn guarded<T>(
    limit: Duration,
    call: impl Future<Output = std::result::Result<T, PlatformKeyError>> + Send,
) -> Result<T> {
    let call = CatchUnwind(Box::pin(call));
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(result)) => result.map_err(map_key_error),
        Ok(Err(panic)) => Err(DeviceTrustError::Internal {
            reason: format!("the key store panicked: {panic}"),
        }),
        Err(_) => Err(DeviceTrustError::KeyStoreTimeout {
            after_ms: limit.as_millis().try_into().unwrap_or(u64::MAX),
        }),
    }
}

impl DeviceTrust {
    pub(super) async fn key_generate(
        &self,
        alias: &str,
        user_verification: UserVerification,
        challenge: Vec<u8>,
    ) -> Result<GeneratedKey> {
        let limit = self.inner.config.key_store_timeout();
        guarded(
            limit,
            self.inner
                .keys
                .generate_key(alias.to_owned(), user_verification, challenge),
        )
        .await
    }

    /// Shows the prompt: the generous timeout.
    pub(super) async fn key_sign(
        &self,
        alias: &str,
        data: Vec<u8>,
        prompt: PromptText,
    ) -> Result<Vec<u8>> {
        let limit = self.inner.config.key_store_prompt_timeout();
        guarded(limit, self.inner.keys.sign(alias.to_owned(), data, prompt)).await
    }

    pub(super) async fn key_delete(&self, alias: &str) -> Result<()> {
        let limit = self.inner.config.key_store_timeout();
        guarded(limit, self.inner.keys.delete_key(alias.to_owned())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_call_times_out_and_is_dropped() {
        struct Dropped(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = Dropped(flag.clone());
        let slow = async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), PlatformKeyError>(())
        };
        let err = guarded(Duration::from_millis(20), slow).await.unwrap_err();
        assert_eq!(err, DeviceTrustError::KeyStoreTimeout { after_ms: 20 });
        // The key store's future was dropped: the foreign call is cancelled.
        assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panic_is_internal_not_a_key_store_error() {
        let panicking = async {
            if true {
                panic!("boom");
            }
            Ok::<(), PlatformKeyError>(())
        };
        let err = guarded(Duration::from_secs(1), panicking)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeviceTrustError::Internal { reason } if reason.contains("boom")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn key_store_errors_map_as_before() {
        let cancelled = async { Err::<(), _>(PlatformKeyError::Cancelled) };
        assert_eq!(
            guarded(Duration::from_secs(1), cancelled).await,
            Err(DeviceTrustError::BiometricCancelled)
        );
    }
}
