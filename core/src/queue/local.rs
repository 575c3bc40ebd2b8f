//! Queues in the local SQLite database, with SQS's semantics: a receive hides a message for
//! the visibility timeout and hands out a fresh receipt handle; a message not deleted in time
//! comes back; after `max_receives` receives it moves to the dead-letter queue. Times are
//! read from the queue's [`Clock`] (the system clock unless a test gives it another).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, TransactionBehavior};

use super::{QueueReceiver, QueueSender, QueueSettings, ReceivedMessage};
use crate::clock::{self, micros, Clock};
use crate::error::{Error, Result};
use crate::sqlite::Db;

/// One queue (and the name of its dead-letter queue) in the local database.
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    db: Db,
    name: String,
    dlq: Option<String>,
    settings: QueueSettings,
    clock: Arc<dyn Clock>,
}

impl SqliteQueue {
    /// The queue `name` on `db`; messages received more than `settings.max_receives` times
    /// move to `dlq` (or stay forever when `dlq` is `None`, as for a dead-letter queue itself).
    pub fn new(
        db: Db,
        name: impl Into<String>,
        dlq: Option<String>,
        settings: QueueSettings,
    ) -> Self {
        Self {
            db,
            name: name.into(),
            dlq,
            settings,
            clock: clock::system(),
        }
    }

    /// The same queue reading `clock` for visibility timeouts (tests move a
    /// [`TestClock`](crate::clock::TestClock) instead of waiting for a lease to run out).
    /// Every process that shares the database must read the same time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn parse_handle(&self, handle: &str) -> Result<(i64, String)> {
        handle
            .split_once(':')
            .and_then(|(id, r)| Some((id.parse().ok()?, r.to_owned())))
            .ok_or_else(|| Error::invalid("receipt handle", "not a handle this queue issued"))
    }

    fn receive_once(
        &self,
        max: usize,
    ) -> impl FnOnce(&mut rusqlite::Connection) -> Result<Vec<ReceivedMessage>> + Send + 'static
    {
        let (queue, dlq, s) = (self.name.clone(), self.dlq.clone(), self.settings);
        let clock = self.clock.clone();
        move |conn| {
            // Most polls find nothing: a read (no lock in WAL mode) says so before the write
            // transaction that hands messages out.
            let now = micros(&*clock);
            let ready = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND visible_at <= ?2)",
                )?
                .query_row(params![queue, now], |r| r.get::<_, bool>(0))?;
            if !ready {
                return Ok(Vec::new());
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = micros(&*clock);
            let candidates: Vec<(i64, String, String, u32)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, message_id, body, receive_count FROM messages
                     WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![queue, now, (max * 2) as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::new();
            for (id, message_id, body, count) in candidates {
                if out.len() == max {
                    break;
                }
                if let Some(dlq) = dlq.as_deref().filter(|_| count >= s.max_receives) {
                    tx.execute(
                        "UPDATE messages SET queue = ?2, receive_count = 0, receipt = NULL,
                         visible_at = ?3 WHERE id = ?1",
                        params![id, dlq, now],
                    )?;
                    tracing::warn!(queue = %queue, %message_id, receives = count, "message moved to the dead-letter queue");
                    continue;
                }
                let receipt = uuid::Uuid::new_v4().simple().to_string();
                let visible_at = now + s.visibility_timeout.as_micros() as i64;
                tx.execute(
                    "UPDATE messages SET receipt = ?2, receive_count = receive_count + 1,
                     visible_at = ?3 WHERE id = ?1",
                    params![id, receipt, visible_at],
                )?;
                out.push(ReceivedMessage {
                    receipt_handle: format!("{id}:{receipt}"),
                    body,
                    receive_count: count + 1,
                    message_id,
                });
            }
            tx.commit()?;
            Ok(out)
        }
    }
}

#[async_trait]
impl QueueSender for SqliteQueue {
    async fn send(&self, body: &str) -> Result<String> {
        let (queue, body) = (self.name.clone(), body.to_owned());
        let message_id = uuid::Uuid::new_v4().to_string();
        let id = message_id.clone();
        let clock = self.clock.clone();
        self.db
            .call(move |c| {
                let now = micros(&*clock);
                c.execute(
                    "INSERT INTO messages (queue, message_id, body, sent_at, visible_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![queue, id, body, now],
                )?;
                Ok(())
            })
            .await?;
        Ok(message_id)
    }

    async fn send_batch(&self, bodies: &[String]) -> Result<()> {
        let (queue, bodies) = (self.name.clone(), bodies.to_vec());
        let clock = self.clock.clone();
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = micros(&*clock);
                for body in &bodies {
                    tx.execute(
                        "INSERT INTO messages (queue, message_id, body, sent_at, visible_at)
                         VALUES (?1, ?2, ?3, ?4, ?4)",
                        params![queue, uuid::Uuid::new_v4().to_string(), body, now],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl QueueReceiver for SqliteQueue {
    async fn receive(&self, max_messages: usize) -> Result<Vec<ReceivedMessage>> {
        let max = max_messages.clamp(1, 10);
        // tokio's clock, so that the long poll takes test time, not real time, when a test
        // pauses tokio's clock.
        let deadline = tokio::time::Instant::now() + self.settings.wait_time;
        loop {
            let got = self.db.call(self.receive_once(max)).await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !got.is_empty() || left.is_zero() {
                return Ok(got);
            }
            tokio::time::sleep(left.min(Duration::from_millis(50))).await;
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<()> {
        let (id, receipt) = self.parse_handle(receipt_handle)?;
        let queue = self.name.clone();
        self.db
            .call(move |c| {
                let n = c.execute(
                    "DELETE FROM messages WHERE id = ?1 AND receipt = ?2 AND queue = ?3",
                    params![id, receipt, queue],
                )?;
                if n == 1 {
                    Ok(())
                } else {
                    Err(Error::StaleReceipt { queue })
                }
            })
            .await
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<()> {
        let (id, receipt) = self.parse_handle(receipt_handle)?;
        let queue = self.name.clone();
        let clock = self.clock.clone();
        self.db
            .call(move |c| {
                let n = c.execute(
                    "UPDATE messages SET visible_at = ?4 WHERE id = ?1 AND receipt = ?2 AND queue = ?3",
                    params![id, receipt, queue, micros(&*clock) + timeout.as_micros() as i64],
                )?;
                if n == 1 {
                    Ok(())
                } else {
                    Err(Error::StaleReceipt { queue })
                }
            })
            .await
    }

    async fn approximate_len(&self) -> Result<u64> {
        let queue = self.name.clone();
        self.db
            .call(move |c| {
                let n: i64 = c.query_row(
                    "SELECT COUNT(*) FROM messages WHERE queue = ?1",
                    [&queue],
                    |r| r.get(0),
                )?;
                Ok(n as u64)
            })
            .await
    }
}
