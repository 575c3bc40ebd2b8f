//! The queue-worker pieces of video-worker, all from core's one runtime
//! ([`parallax_core::worker`]): the shutdown token, acknowledging and releasing messages,
//! and the heartbeat that keeps a message hidden while long work runs.

use std::sync::Arc;
use std::time::Duration;

use parallax_core::queue::{QueueReceiver, ReceivedMessage};
pub use parallax_core::worker::{acknowledge, heartbeat_interval, release, shutdown_token};
use parallax_core::Error;

/// Keeps `msg` invisible for `visibility` from now, every `interval`, for as long as it is
/// polled; returns only when the lease is lost (the stale receipt's error, or the last
/// heartbeat's), so the caller can stop working on it: core's
/// [`parallax_core::worker::hold_lease`] for an owned receiver and message.
pub async fn heartbeat(
    receiver: Arc<dyn QueueReceiver>,
    msg: ReceivedMessage,
    visibility: Duration,
    interval: Duration,
) -> Error {
    parallax_core::worker::hold_lease(&*receiver, &msg.receipt_handle, visibility, interval)
        .await
        .into()
}
