//! The queues that wire the fleet together (SQS semantics: at-least-once delivery,
//! visibility timeout, receive count, dead-letter queue).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;

/// A message handed out by [`QueueReceiver::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Handle for `delete` and `change_visibility`; a new one on every receive.
    pub receipt_handle: String,
    /// The message body.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// Stable id of the message across receives.
    pub message_id: String,
}

/// Sends messages to one queue.
///
/// # Contract
/// - `send` returns once the message is durably queued; it is then delivered at least once.
/// - `send_batch` sends every body or returns an error naming how many failed; a partial
///   failure is never reported as success.
#[async_trait]
pub trait QueueSender: Send + Sync + std::fmt::Debug + 'static {
    /// Queues one message; returns its id.
    async fn send(&self, body: &str) -> Result<String>;
    /// Queues several messages, checking every entry's result.
    async fn send_batch(&self, bodies: &[String]) -> Result<()> {
        for b in bodies {
            self.send(b).await?;
        }
        Ok(())
    }
}

/// Receives messages from one queue.
///
/// # Contract
/// - `receive(max)` returns up to `max` visible messages, waiting a short while (long poll)
///   when none is visible; an empty list is normal. Each returned message becomes invisible
///   for the queue's visibility timeout and its receive count goes up by one.
/// - A message received and not deleted becomes visible again after the visibility timeout,
///   with a new receipt handle: nothing is lost when a receiver dies.
/// - No two receivers hold the same invisible message at the same time.
/// - A message received more than the queue's max-receives times moves to the dead-letter
///   queue instead of being delivered again.
/// - `delete` with the latest handle removes the message. With a stale handle (the message
///   was received again since) the message is NOT removed; the call returns `Ok` or
///   [`crate::Error::StaleReceipt`] depending on the backend (SQS accepts it silently).
///   A handle that was never issued is [`crate::Error::InvalidInput`] or `StaleReceipt`.
/// - `change_visibility` with the latest handle makes the message invisible for `timeout`
///   from now (a heartbeat for long work); with a stale handle it fails.
#[async_trait]
pub trait QueueReceiver: Send + Sync + std::fmt::Debug + 'static {
    /// Receives up to `max_messages` (1..=10).
    async fn receive(&self, max_messages: usize) -> Result<Vec<ReceivedMessage>>;
    /// Deletes a received message.
    async fn delete(&self, receipt_handle: &str) -> Result<()>;
    /// Extends (or shortens) a received message's invisibility.
    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<()>;
    /// Approximate number of messages waiting or in flight (for dashboards and tests).
    async fn approximate_len(&self) -> Result<u64>;
}

/// How a queue behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received message stays invisible.
    pub visibility_timeout: Duration,
    /// Receives after which a message goes to the dead-letter queue.
    pub max_receives: u32,
    /// How long `receive` waits for a message when none is visible.
    pub wait_time: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(60),
            max_receives: 5,
            wait_time: Duration::from_secs(1),
        }
    }
}
