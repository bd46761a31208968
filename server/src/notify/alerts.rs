//! Messages sent off the request path (security alerts, the user-ID
//! reminder): a bounded queue and a worker that retries each message with
//! back-off for about a minute.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::{Message, Notifier, Retry};

/// The producer side: cheap to clone; [`AlertQueue::enqueue`] never waits.
#[derive(Clone)]
pub struct AlertQueue {
    tx: mpsc::Sender<Message>,
    /// Queued or being delivered.
    pending: Arc<AtomicUsize>,
}

/// The consumer side: [`AlertWorker::run`] (or [`AlertWorker::spawn`])
/// delivers what is enqueued until it is told to stop
/// ([`AlertTask::finish`]) or every `AlertQueue` clone is gone.
pub struct AlertWorker {
    rx: mpsc::Receiver<Message>,
    notifier: Arc<dyn Notifier>,
    retry: Retry,
    concurrency: usize,
    pending: Arc<AtomicUsize>,
    stop: Arc<Notify>,
}

/// A spawned worker, to stop at shutdown.
pub struct AlertTask {
    handle: JoinHandle<()>,
    pending: Arc<AtomicUsize>,
    stop: Arc<Notify>,
}

impl AlertQueue {
    /// Messages waiting at most; beyond that new ones are logged and dropped.
    pub const CAPACITY: usize = 10_000;
    /// Messages being delivered at once (each may wait on its retries).
    pub const CONCURRENCY: usize = 32;
    /// Per message: tries for up to a minute, 1 s, 2 s, 4 s… apart (each
    /// try is a full `send`, with the carrier's own quick retries).
    pub const RETRY: Retry = Retry {
        attempts: 16,
        attempt_timeout: Duration::from_secs(15),
        backoff: Duration::from_secs(1),
        budget: Duration::from_secs(60),
    };

    /// A queue of [`Self::CAPACITY`] in front of `notifier`, and its worker.
    pub fn new(notifier: Arc<dyn Notifier>) -> (AlertQueue, AlertWorker) {
        Self::with_options(notifier, Self::CAPACITY, Self::CONCURRENCY, Self::RETRY)
    }

    /// As [`Self::new`] with another size, concurrency or retry policy.
    pub fn with_options(
        notifier: Arc<dyn Notifier>,
        capacity: usize,
        concurrency: usize,
        retry: Retry,
    ) -> (AlertQueue, AlertWorker) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let pending = Arc::new(AtomicUsize::new(0));
        (
            AlertQueue {
                tx,
                pending: pending.clone(),
            },
            AlertWorker {
                rx,
                notifier,
                retry,
                concurrency: concurrency.max(1),
                pending,
                stop: Arc::new(Notify::new()),
            },
        )
    }

    /// Queues `message` and returns at once: it never waits for delivery
    /// and never fails. A full or stopped queue drops the message with a
    /// warning (its text is never logged).
    pub fn enqueue(&self, message: Message) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        let (message, why) = match self.tx.try_send(message) {
            Ok(()) => return,
            Err(TrySendError::Full(m)) => (m, "the alert queue is full"),
            Err(TrySendError::Closed(m)) => (m, "the alert queue has stopped"),
        };
        self.pending.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(
            user_id = %message.user_id,
            purpose = ?message.purpose,
            event = message.event.as_deref().unwrap_or("-"),
            message_id = %message.message_id,
            "{why}: message dropped"
        );
    }

    /// Messages queued or being delivered.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

impl AlertWorker {
    /// Delivers queued messages, up to the concurrency limit at once, each
    /// with retries; returns once it is told to stop (or every
    /// `AlertQueue` clone is dropped) and what was queued by then has been
    /// delivered or given up.
    pub async fn run(mut self) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = JoinSet::new();
        let mut stopping = false;
        loop {
            let next = if stopping {
                self.rx.recv().await
            } else {
                tokio::select! {
                    next = self.rx.recv() => next,
                    () = self.stop.notified() => {
                        // Refuse new messages; drain what is queued.
                        self.rx.close();
                        stopping = true;
                        continue;
                    }
                }
            };
            let Some(message) = next else {
                break;
            };
            while tasks.try_join_next().is_some() {}
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let notifier = self.notifier.clone();
            let pending = self.pending.clone();
            let retry = self.retry;
            tasks.spawn(async move {
                deliver(notifier.as_ref(), retry, message).await;
                pending.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Runs the worker in a task of its own.
    pub fn spawn(self) -> AlertTask {
        let pending = self.pending.clone();
        let stop = self.stop.clone();
        AlertTask {
            handle: tokio::spawn(self.run()),
            pending,
            stop,
        }
    }
}

impl AlertTask {
    /// At shutdown: closes the queue (later `enqueue`s are dropped with a
    /// warning), waits up to `grace` for what is queued to be delivered,
    /// then stops the worker and logs how many messages were left
    /// undelivered.
    pub async fn finish(self, grace: Duration) {
        self.stop.notify_one();
        let mut handle = self.handle;
        if tokio::time::timeout(grace, &mut handle).await.is_err() {
            handle.abort();
            tracing::warn!(
                undelivered = self.pending.load(Ordering::SeqCst),
                "alert queue stopped at shutdown with messages undelivered"
            );
        }
    }
}

async fn deliver(notifier: &dyn Notifier, retry: Retry, message: Message) {
    let (user_id, message_id, purpose, channel) = (
        message.user_id.clone(),
        message.message_id.clone(),
        message.purpose,
        message.channel,
    );
    let event = message.event.clone();
    let result = retry
        .run("alert queue", || notifier.send(message.clone()))
        .await;
    if let Err(e) = result {
        tracing::warn!(
            %user_id,
            %message_id,
            ?purpose,
            ?channel,
            event = event.as_deref().unwrap_or("-"),
            error = %e,
            "message given up after retries"
        );
    }
}
