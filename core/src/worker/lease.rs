//! A received message's lease: the heartbeat that keeps it invisible while it is worked on,
//! and the two ways out (delete when done, release for another worker).

use std::time::Duration;

use crate::error::Error;
use crate::queue::{QueueReceiver, ReceivedMessage};

/// Why [`hold_lease`] stopped: the message may be in another worker's hands now, so the
/// work on it must stop.
#[derive(Debug, thiserror::Error)]
pub enum LeaseLost {
    /// The receipt went stale: the message was received again by someone else.
    #[error("the message was received again meanwhile: {0}")]
    Taken(Error),
    /// No heartbeat got through for a whole visibility timeout, so the message may be
    /// visible again (the last error is kept).
    #[error("no heartbeat got through for {timeout:?}; the message may be visible again: {last}")]
    Expired {
        /// The visibility timeout.
        timeout: Duration,
        /// The last heartbeat's error.
        last: Error,
    },
}

impl From<LeaseLost> for Error {
    /// The queue's own error: the stale receipt, or the last heartbeat's failure.
    fn from(lost: LeaseLost) -> Self {
        match lost {
            LeaseLost::Taken(e) | LeaseLost::Expired { last: e, .. } => e,
        }
    }
}

/// The heartbeat interval for a visibility timeout: a third of it, so two beats may fail
/// before the message reappears.
pub fn heartbeat_interval(visibility: Duration) -> Duration {
    (visibility / 3).max(Duration::from_millis(100))
}

/// Keeps the message with `receipt` invisible for `visibility` from now, every `interval`,
/// for as long as it is polled. Returns only when the lease is lost: the receipt is stale, or
/// no heartbeat succeeded for a whole `visibility` (transient failures before that are
/// logged and retried at the next beat). The caller then stops working on the message.
pub async fn hold_lease(
    receiver: &dyn QueueReceiver,
    receipt: &str,
    visibility: Duration,
    interval: Duration,
) -> LeaseLost {
    // The receive itself started the lease, a moment before this.
    let mut held_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        let beat = tokio::time::Instant::now();
        match receiver.change_visibility(receipt, visibility).await {
            Ok(()) => {
                held_since = beat;
                tracing::trace!("heartbeat");
            }
            Err(e @ Error::StaleReceipt { .. }) => return LeaseLost::Taken(e),
            Err(e) if beat.duration_since(held_since) >= visibility => {
                return LeaseLost::Expired {
                    timeout: visibility,
                    last: e,
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying at the next beat"),
        }
    }
}

/// Deletes a handled message. A stale receipt (the message was handed to someone else after
/// our lease lapsed) is logged, not fatal: the other holder finishes it, and every step is
/// idempotent. Other errors are logged too; the message then comes back and is handled again.
pub async fn acknowledge(receiver: &dyn QueueReceiver, msg: &ReceivedMessage) {
    match receiver.delete(&msg.receipt_handle).await {
        Ok(()) => {}
        Err(Error::StaleReceipt { queue }) => {
            tracing::warn!(%queue, message_id = %msg.message_id, "delete with a stale receipt: the message was received again meanwhile and will be handled again (idempotently)");
        }
        Err(e) => {
            tracing::warn!(error = %e, message_id = %msg.message_id, "could not delete a handled message; it will come back and be handled again (idempotently)");
        }
    }
}

/// Makes a message visible again after `delay` (zero: at once), for a retry or for another
/// worker to take over.
pub async fn release(receiver: &dyn QueueReceiver, msg: &ReceivedMessage, delay: Duration) {
    if let Err(e) = receiver.change_visibility(&msg.receipt_handle, delay).await {
        tracing::warn!(error = %e, message_id = %msg.message_id, "could not release the message; it comes back when its visibility timeout ends");
    }
}
