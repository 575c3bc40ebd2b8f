//! What both queue loops share: acknowledging and releasing messages, and the visibility
//! heartbeat that keeps a message hidden while long work runs.

use std::sync::Arc;
use std::time::Duration;

use parallax_core::queue::{QueueReceiver, ReceivedMessage};
use parallax_core::Error;
use tokio_util::sync::CancellationToken;

/// A token cancelled on Ctrl-C or SIGTERM. The SIGTERM handler is installed before this
/// returns (not later, in a task that may not have run yet), so a signal that arrives while
/// the first message is being received is not fatal: the worker still releases its message.
/// Call it inside the runtime.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received: stopping"),
                _ = parallax_core::telemetry::shutdown_signal() => {}
            }
            t.cancel();
            return;
        }
        parallax_core::telemetry::shutdown_signal().await;
        t.cancel();
    });
    token
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

/// Keeps `msg` invisible for `visibility` from now, every `interval`, for as long as it is
/// polled. Returns only when the lease is lost (the receipt went stale: another worker may
/// hold the message now), so the caller can stop working on it. Transient failures of a
/// heartbeat are logged and retried at the next beat.
pub async fn heartbeat(
    receiver: Arc<dyn QueueReceiver>,
    msg: ReceivedMessage,
    visibility: Duration,
    interval: Duration,
) -> Error {
    loop {
        tokio::time::sleep(interval).await;
        match receiver
            .change_visibility(&msg.receipt_handle, visibility)
            .await
        {
            Ok(()) => tracing::trace!("heartbeat"),
            Err(e @ Error::StaleReceipt { .. }) => return e,
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying at the next beat"),
        }
    }
}

/// The heartbeat interval for a visibility timeout: a third of it, so two beats may fail
/// before the message reappears.
pub fn heartbeat_interval(visibility: Duration) -> Duration {
    (visibility / 3).max(Duration::from_millis(100))
}

/// Whether any error in the chain is a core "input is bad" error (as opposed to an
/// infrastructure failure worth a retry).
pub fn is_core_invalid_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<Error>(),
            Some(Error::InvalidInput { .. } | Error::NotFound { .. })
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_beats_well_inside_the_timeout() {
        assert_eq!(
            heartbeat_interval(Duration::from_secs(60)),
            Duration::from_secs(20)
        );
        assert!(heartbeat_interval(Duration::from_millis(1)) >= Duration::from_millis(100));
    }

    #[test]
    fn core_input_errors_are_recognised_through_context() {
        let e = anyhow::Error::new(Error::NotFound {
            what: "object",
            id: "k".into(),
        })
        .context("downloading");
        assert!(is_core_invalid_input(&e));
        let e = anyhow::Error::new(Error::backend("sqlite", "locked")).context("downloading");
        assert!(!is_core_invalid_input(&e));
    }
}
