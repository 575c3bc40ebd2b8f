//! The receive loop and the supervision of each message (see the module docs of
//! [`crate::worker`] for the policies).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::lease::{acknowledge, heartbeat_interval, hold_lease, release, LeaseLost};
use super::{Context, Handler, HandlerError, LoopConfig, Outcome, Slot};
use crate::queue::{QueueReceiver, ReceivedMessage};

/// Receives from `receiver` and hands every message to `handler` until `shutdown` is
/// cancelled; returns once the messages in hand are finished or released.
pub async fn run(
    receiver: Arc<dyn QueueReceiver>,
    handler: Arc<dyn Handler>,
    cfg: LoopConfig,
    shutdown: CancellationToken,
) {
    let cfg = Arc::new(cfg);
    let concurrency = cfg.concurrency.max(1);
    // A slot per message being worked on; with overlap, a message that is draining gives
    // its slot back early but keeps its place in hand until it is settled.
    let slots = Arc::new(Semaphore::new(concurrency));
    let in_hand_limit = Arc::new(Semaphore::new(if cfg.overlap {
        2 * concurrency
    } else {
        concurrency
    }));
    let mut in_hand = JoinSet::new();
    tracing::info!(queue = %cfg.queue, concurrency, overlap = cfg.overlap, "loop started");
    while !shutdown.is_cancelled() {
        let first = tokio::select! {
            p = places(&slots, &in_hand_limit) => p,
            _ = shutdown.cancelled() => break,
        };
        let mut permits = vec![first];
        while permits.len() < 10 {
            match (
                slots.clone().try_acquire_owned(),
                in_hand_limit.clone().try_acquire_owned(),
            ) {
                (Ok(slot), Ok(place)) => permits.push((slot, place)),
                _ => break,
            }
        }
        // Not raced against shutdown: a receive cut off midway could hide messages without
        // handing them over. It is a short poll, and what it returns is released at once if
        // the shutdown came meanwhile.
        let messages = match receiver.receive(permits.len()).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(queue = %cfg.queue, error = %e, "receive failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(cfg.receive_error_pause) => continue,
                }
            }
        };
        for msg in messages {
            if shutdown.is_cancelled() {
                release(&*receiver, &msg, Duration::ZERO).await;
                continue;
            }
            let (slot, place) = permits.pop().expect("never more messages than asked for");
            let one = Supervisor {
                receiver: receiver.clone(),
                handler: handler.clone(),
                cfg: cfg.clone(),
                shutdown: shutdown.clone(),
            };
            in_hand.spawn(one.supervise(msg, Slot::holding(slot), place));
        }
        while let Some(r) = in_hand.try_join_next() {
            log_join(r);
        }
    }
    while let Some(r) = in_hand.join_next().await {
        log_join(r);
    }
    tracing::info!(queue = %cfg.queue, "loop stopped");
}

/// A free slot and a free place in hand, waiting for both (a slot first: the places are
/// given back by messages as they are settled, which needs no slot, so this cannot wait on
/// itself).
async fn places(
    slots: &Arc<Semaphore>,
    in_hand: &Arc<Semaphore>,
) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    let place = in_hand
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    (slot, place)
}

fn log_join(r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r {
        tracing::error!(error = %e, "a message's supervisor failed");
    }
}

/// How the handling of one message ended, before the message is settled.
enum Ended {
    Finished(Result<Result<Outcome, HandlerError>, tokio::task::JoinError>),
    LeaseLost(LeaseLost),
    GraceOver,
}

struct Supervisor {
    receiver: Arc<dyn QueueReceiver>,
    handler: Arc<dyn Handler>,
    cfg: Arc<LoopConfig>,
    shutdown: CancellationToken,
}

impl Supervisor {
    /// Works on `msg` and settles it. `slot` is freed when this returns, or earlier if the
    /// handler says it is draining and the loop overlaps; `_place` when this returns.
    async fn supervise(self, msg: ReceivedMessage, slot: Slot, _place: OwnedSemaphorePermit) {
        let span = tracing::info_span!("message", queue = %self.cfg.queue, message_id = %msg.message_id, receives = msg.receive_count);
        let inner = span.in_scope(|| self.handler.span(&msg));
        let ended = self
            .work(&msg, &slot)
            .instrument(inner.clone())
            .instrument(span.clone())
            .await;
        self.settle(&msg, ended)
            .instrument(inner)
            .instrument(span)
            .await
    }

    async fn work(&self, msg: &ReceivedMessage, slot: &Slot) -> Ended {
        let mut ctx = Context::new(
            msg.receive_count,
            self.cfg.max_receives,
            self.shutdown.clone(),
        );
        if self.cfg.overlap {
            ctx.slot = slot.clone();
        }
        let (handler, m) = (self.handler.clone(), msg.clone());
        // Its own task: a panic in the handler fails this message only.
        let mut task = tokio::spawn(
            async move { handler.handle(&m, &ctx).await }.instrument(tracing::Span::current()),
        );
        let visibility = self.cfg.visibility_timeout;
        let lease = hold_lease(
            &*self.receiver,
            &msg.receipt_handle,
            visibility,
            heartbeat_interval(visibility),
        );
        let grace = async {
            self.shutdown.cancelled().await;
            tracing::info!(grace = ?self.cfg.grace, "shutting down: letting the message in hand finish");
            tokio::time::sleep(self.cfg.grace).await;
        };
        let ended = tokio::select! {
            r = &mut task => Ended::Finished(r),
            lost = lease => Ended::LeaseLost(lost),
            () = grace => Ended::GraceOver,
        };
        if !matches!(ended, Ended::Finished(_)) {
            // Drops the handler's future; a handler is cut off only at an `.await`.
            task.abort();
            let _ = task.await;
        }
        ended
    }

    async fn settle(&self, msg: &ReceivedMessage, ended: Ended) {
        let receiver = &*self.receiver;
        let result = match ended {
            Ended::LeaseLost(lost) => {
                tracing::warn!(error = %lost, "lost the message's lease (another worker may have it now); stopped handling it");
                return;
            }
            Ended::GraceOver => {
                tracing::warn!(
                    "not finished within the grace period; releasing the message for another worker"
                );
                release(receiver, msg, Duration::ZERO).await;
                return;
            }
            Ended::Finished(Ok(r)) => r,
            Ended::Finished(Err(e)) => Err(HandlerError::Retry(anyhow::anyhow!(
                "the handler {}: {e}",
                if e.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                }
            ))),
        };
        match result {
            Ok(Outcome::Done) => acknowledge(receiver, msg).await,
            Ok(Outcome::Release(after)) => release(receiver, msg, after).await,
            Err(HandlerError::Reject { code, message }) => {
                tracing::warn!(code, reason = %message, "bad input: failing the job");
                match self.handler.fail_job(msg, code, &message).await {
                    Ok(()) => acknowledge(receiver, msg).await,
                    Err(e) => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "could not mark the job failed; the message will be retried"
                        );
                        release(receiver, msg, self.cfg.backoff(msg.receive_count)).await;
                    }
                }
            }
            Err(HandlerError::Retry(e)) if msg.receive_count >= self.cfg.max_receives => {
                let (code, message) = self.handler.give_up(msg, &e);
                tracing::error!(code, reason = %message, "giving up after the last allowed receive: failing the job; the message goes to the dead-letter queue");
                if let Err(e) = self.handler.fail_job(msg, code, &message).await {
                    tracing::error!(error = format!("{e:#}"), "could not mark the job failed");
                }
                // Visible again at once: the next receive moves it to the dead-letter queue.
                release(receiver, msg, Duration::ZERO).await;
            }
            Err(HandlerError::Retry(e)) => {
                let after = self.cfg.backoff(msg.receive_count);
                tracing::warn!(error = format!("{e:#}"), retry_in = ?after, "failed; the message will be retried");
                release(receiver, msg, after).await;
            }
        }
    }
}
