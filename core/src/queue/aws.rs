//! Queues on SQS: long polling, batch receive and send, visibility heartbeats
//! (ChangeMessageVisibility) and dead-letter queues by the queue's redrive policy (set by the
//! deployment, `maxReceiveCount` = QUEUE_MAX_RECEIVES).
//!
//! # Receipt handles
//! SQS accepts a message's older receipt handles too (AWS documents that such a delete "might
//! not" remove the message; moto always removes it), so a worker whose visibility ran out could
//! delete a message that another worker holds now. The contract says a stale handle must never
//! delete. This adapter therefore hands out `{deadline_ms}:{sqs_handle}`, where the deadline is
//! when the message's invisibility ends at the earliest (taken from before the receive request
//! was sent, so never later than SQS's own). Before `delete` or `change_visibility`, the handle's
//! current deadline (extended in this process by each heartbeat) must be ahead by a safety
//! margin; otherwise the call is refused with [`Error::StaleReceipt`] and nothing is sent. While
//! the deadline is ahead, nobody else can have received the message, so the handle is the
//! latest. A worker that lets its lease lapse gets `StaleReceipt` and the message is redelivered
//! (at-least-once), which is what the queue contract promises.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};

use super::{QueueReceiver, QueueSender, QueueSettings, ReceivedMessage};
use crate::aws::{error_code, sdk_error};
use crate::error::{Error, Result};

/// SQS's limit on one batch's total payload.
const BATCH_BYTES: usize = 256 * 1024;
/// Attempts for batch entries that SQS failed on its side.
const BATCH_ATTEMPTS: u32 = 3;

/// One SQS queue. Cheap to clone; clones share the heartbeat deadlines.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    name: String,
    url: String,
    settings: QueueSettings,
    /// Latest known invisibility deadline (ms since the epoch) per SQS receipt handle.
    deadlines: Arc<Mutex<HashMap<String, u64>>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How close to its deadline a lease is treated as gone: requests need time to reach SQS.
fn margin_ms(timeout: Duration) -> u64 {
    (timeout.as_millis() as u64 / 10).clamp(50, 2000)
}

impl SqsQueue {
    /// The queue `name` at `url`. The visibility timeout and long-poll wait come from
    /// `settings`; `settings.max_receives` is the queue's redrive policy, set where the queue
    /// is created.
    pub fn new(
        client: aws_sdk_sqs::Client,
        name: impl Into<String>,
        url: impl Into<String>,
        settings: QueueSettings,
    ) -> Self {
        Self {
            client,
            name: name.into(),
            url: url.into(),
            settings,
            deadlines: Arc::default(),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn stale(&self) -> Error {
        Error::StaleReceipt {
            queue: self.name.clone(),
        }
    }

    /// The SQS handle inside one of our handles, if its lease is still held.
    fn live_handle<'h>(&self, handle: &'h str) -> Result<&'h str> {
        let (deadline, sqs_handle) = handle
            .split_once(':')
            .and_then(|(d, h)| Some((d.parse::<u64>().ok()?, h)))
            .filter(|(_, h)| !h.is_empty())
            .ok_or_else(|| Error::invalid("receipt handle", "not a handle this queue issued"))?;
        let known = self
            .deadlines
            .lock()
            .map_err(poisoned)?
            .get(sqs_handle)
            .copied();
        // This process's record (heartbeats, releases) wins over the handle's own deadline.
        let deadline = known.unwrap_or(deadline);
        if now_ms() + margin_ms(self.settings.visibility_timeout) >= deadline {
            return Err(self.stale());
        }
        Ok(sqs_handle)
    }

    fn set_deadline(&self, sqs_handle: &str, deadline: u64) -> Result<()> {
        let mut map = self.deadlines.lock().map_err(poisoned)?;
        if map.len() > 10_000 {
            let now = now_ms();
            map.retain(|_, d| *d > now);
        }
        map.insert(sqs_handle.to_owned(), deadline);
        Ok(())
    }

    /// Maps a receipt-handle error of SQS onto the queue contract's errors.
    fn handle_error<E, R>(&self, what: &str, err: aws_sdk_sqs::error::SdkError<E, R>) -> Error
    where
        E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match error_code(&err) {
            Some(c) if c.contains("ReceiptHandleIsInvalid") => {
                Error::invalid("receipt handle", "SQS does not know this receipt handle")
            }
            Some(c) if c.contains("MessageNotInflight") => self.stale(),
            _ => sdk_error("sqs", format!("{what} on queue {}", self.name), err),
        }
    }

    async fn receive_once(&self, max: usize, wait_secs: i32) -> Result<Vec<ReceivedMessage>> {
        let visibility = self.settings.visibility_timeout;
        let deadline = now_ms() + visibility.as_millis() as u64;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(wait_secs)
            .visibility_timeout(visibility.as_secs().clamp(0, 43_200) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sdk_error("sqs", format!("receive from queue {}", self.name), e))?;
        let mut got = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let (Some(handle), Some(message_id)) = (m.receipt_handle, m.message_id) else {
                continue;
            };
            let receive_count = m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            self.set_deadline(&handle, deadline)?;
            got.push(ReceivedMessage {
                receipt_handle: format!("{deadline}:{handle}"),
                body: m.body.unwrap_or_default(),
                receive_count,
                message_id,
            });
        }
        Ok(got)
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::backend("sqs", "receipt handle table poisoned by a panic")
}

#[async_trait]
impl QueueSender for SqsQueue {
    async fn send(&self, body: &str) -> Result<String> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sdk_error("sqs", format!("send to queue {}", self.name), e))?;
        out.message_id
            .ok_or_else(|| Error::backend("sqs", "SendMessage returned no message id"))
    }

    async fn send_batch(&self, bodies: &[String]) -> Result<()> {
        // Batches of at most 10 entries and BATCH_BYTES.
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let mut size = 0;
        for (i, b) in bodies.iter().enumerate() {
            let fits = batches
                .last()
                .is_some_and(|last| last.len() < 10 && size + b.len() <= BATCH_BYTES);
            if !fits {
                batches.push(Vec::new());
                size = 0;
            }
            batches.last_mut().expect("a batch").push(i);
            size += b.len();
        }
        let mut failed: Vec<String> = Vec::new();
        for batch in batches {
            let mut pending = batch;
            for attempt in 1..=BATCH_ATTEMPTS {
                let entries = pending
                    .iter()
                    .map(|&i| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&bodies[i])
                            .build()
                            .map_err(|e| Error::backend("sqs", e))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_error("sqs", format!("batch send to queue {}", self.name), e)
                    })?;
                let ok: std::collections::HashSet<&str> =
                    out.successful.iter().map(|s| s.id.as_str()).collect();
                let mut retry = Vec::new();
                for &i in &pending {
                    if ok.contains(i.to_string().as_str()) {
                        continue;
                    }
                    let why = out.failed.iter().find(|f| f.id == i.to_string());
                    let sender_fault = why.is_some_and(|f| f.sender_fault);
                    if sender_fault || attempt == BATCH_ATTEMPTS {
                        failed.push(match why {
                            Some(f) => format!(
                                "entry {i}: {} {}",
                                f.code,
                                f.message.as_deref().unwrap_or_default()
                            ),
                            None => format!("entry {i}: no result"),
                        });
                    } else {
                        retry.push(i);
                    }
                }
                if retry.is_empty() {
                    break;
                }
                pending = retry;
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::backend(
                "sqs",
                format!(
                    "{} of {} messages were not sent to queue {}: {}",
                    failed.len(),
                    bodies.len(),
                    self.name,
                    failed.join("; ")
                ),
            ))
        }
    }
}

#[async_trait]
impl QueueReceiver for SqsQueue {
    async fn receive(&self, max_messages: usize) -> Result<Vec<ReceivedMessage>> {
        let max = max_messages.clamp(1, 10);
        let wait = self.settings.wait_time;
        let wait_secs = wait.as_secs().min(20) as i32;
        let got = self.receive_once(max, wait_secs).await?;
        if !got.is_empty() || wait_secs > 0 || wait.is_zero() {
            return Ok(got);
        }
        // SQS waits in whole seconds: a shorter wait is one pause between two short polls.
        tokio::time::sleep(wait).await;
        self.receive_once(max, 0).await
    }

    async fn delete(&self, receipt_handle: &str) -> Result<()> {
        let handle = self.live_handle(receipt_handle)?;
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| self.handle_error("delete", e))?;
        self.deadlines.lock().map_err(poisoned)?.remove(handle);
        Ok(())
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<()> {
        if timeout > Duration::from_secs(43_200) {
            return Err(Error::invalid(
                "visibility timeout",
                "SQS allows at most 12 hours (43200 s)",
            ));
        }
        let handle = self.live_handle(receipt_handle)?;
        let deadline = now_ms() + timeout.as_millis() as u64;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .visibility_timeout(timeout.as_secs() as i32)
            .send()
            .await
            .map_err(|e| self.handle_error("change visibility", e))?;
        if timeout.is_zero() {
            // Released: the message may go to another receiver at once.
            self.deadlines
                .lock()
                .map_err(poisoned)?
                .insert(handle.to_owned(), 0);
        } else {
            self.set_deadline(handle, deadline)?;
        }
        Ok(())
    }

    async fn approximate_len(&self) -> Result<u64> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| sdk_error("sqs", format!("attributes of queue {}", self.name), e))?;
        Ok(out
            .attributes
            .unwrap_or_default()
            .values()
            .filter_map(|v| v.parse::<u64>().ok())
            .sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> SqsQueue {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .build();
        SqsQueue::new(
            aws_sdk_sqs::Client::from_conf(conf),
            "q",
            "http://127.0.0.1:9/q",
            QueueSettings::default(),
        )
    }

    #[test]
    fn handles_past_their_lease_are_stale_and_foreign_ones_invalid() {
        let q = queue();
        let live = format!("{}:abc", now_ms() + 60_000);
        assert_eq!(q.live_handle(&live).unwrap(), "abc");
        let lapsed = format!("{}:abc2", now_ms() - 1);
        assert!(matches!(
            q.live_handle(&lapsed),
            Err(Error::StaleReceipt { .. })
        ));
        for bad in ["garbage", "12:", ":abc", "x:abc"] {
            assert!(
                matches!(q.live_handle(bad), Err(Error::InvalidInput { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_heartbeat_extends_the_lease_and_a_release_ends_it() {
        let q = queue();
        let handle = format!("{}:h", now_ms() + 200);
        q.set_deadline("h", now_ms() + 60_000).unwrap();
        // Past the handle's own deadline minus the margin, but extended in this process.
        assert!(q.live_handle(&handle).is_ok());
        q.deadlines.lock().unwrap().insert("h".into(), 0);
        // Released: stale even though the handle itself names a later deadline.
        let far = format!("{}:h", now_ms() + 60_000);
        assert!(matches!(
            q.live_handle(&far),
            Err(Error::StaleReceipt { .. })
        ));
    }
}
