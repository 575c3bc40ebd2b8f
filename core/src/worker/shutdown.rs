//! The one shutdown signal of every worker process.

use tokio_util::sync::CancellationToken;

/// A token cancelled on Ctrl-C or SIGTERM. The SIGTERM handler is installed before this
/// returns (not later, in a task that may not have run yet), so a signal that arrives while
/// the first message is being received is not fatal: the worker still finishes or releases
/// its message. Call it inside the runtime.
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
                _ = crate::telemetry::shutdown_signal() => {}
            }
            t.cancel();
            return;
        }
        crate::telemetry::shutdown_signal().await;
        t.cancel();
    });
    token
}
