//! SegmentCompletionStore on the local SQLite database.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::SegmentCompletionStore;
use crate::clock::{self, micros, Clock};
use crate::error::{Error, Result};
use crate::model::SegmentCompletion;
use crate::sqlite::Db;

/// Completions keyed by (job_id, segment_index); the claim and the last re-send are rows in
/// tables of their own.
#[derive(Debug, Clone)]
pub struct SqliteCompletionStore {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl SqliteCompletionStore {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            clock: clock::system(),
        }
    }

    /// The same store stamping reassembly claims with `clock`'s time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl SegmentCompletionStore for SqliteCompletionStore {
    async fn put(&self, completion: &SegmentCompletion) -> Result<bool> {
        let c = completion.clone();
        let body = serde_json::to_string(&c).map_err(|e| Error::backend("sqlite", e))?;
        self.db
            .call(move |conn| {
                let n = conn.execute(
                    "INSERT INTO completions (job_id, segment_index, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (job_id, segment_index) DO NOTHING",
                    params![c.job_id, c.segment_index, body],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn query_by_job(&self, job_id: &str) -> Result<Vec<SegmentCompletion>> {
        let id = job_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT body FROM completions WHERE job_id = ?1 ORDER BY segment_index",
                )?;
                let rows = stmt.query_map([&id], |r| r.get::<_, String>(0))?;
                rows.map(|r| serde_json::from_str(&r?).map_err(|e| Error::backend("sqlite", e)))
                    .collect()
            })
            .await
    }

    async fn claim_reassembly(&self, job_id: &str, total_segments: u32) -> Result<bool> {
        let id = job_id.to_owned();
        let clock = self.clock.clone();
        self.db
            .call(move |conn| {
                // One statement: SQLite runs it under the database write lock, so the count and
                // the insert cannot be split by another writer in any process.
                let n = conn.execute(
                    "INSERT INTO reassembly_claims (job_id, claimed_at)
                     SELECT ?1, ?2 WHERE (SELECT COUNT(*) FROM completions WHERE job_id = ?1) = ?3
                     ON CONFLICT (job_id) DO NOTHING",
                    params![id, micros(&*clock), total_segments],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn reassembly_claimed_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>> {
        let id = job_id.to_owned();
        self.db
            .call(move |conn| {
                let at: Option<i64> = conn
                    .query_row(
                        "SELECT claimed_at FROM reassembly_claims WHERE job_id = ?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(at.and_then(DateTime::from_timestamp_micros))
            })
            .await
    }

    async fn claim_resend(
        &self,
        job_id: &str,
        now: DateTime<Utc>,
        every: std::time::Duration,
    ) -> Result<bool> {
        let id = job_id.to_owned();
        let now = now.timestamp_micros();
        let cutoff = now.saturating_sub(i64::try_from(every.as_micros()).unwrap_or(i64::MAX));
        self.db
            .call(move |conn| {
                // One statement under the write lock: the claim's age and the last re-send are
                // checked and the new re-send recorded together.
                let n = conn.execute(
                    "INSERT INTO reassembly_resends (job_id, resent_at)
                     SELECT ?1, ?2 WHERE EXISTS (
                         SELECT 1 FROM reassembly_claims WHERE job_id = ?1 AND claimed_at <= ?3)
                     ON CONFLICT (job_id) DO UPDATE SET resent_at = excluded.resent_at
                     WHERE reassembly_resends.resent_at <= ?3",
                    params![id, now, cutoff],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn reassembly_resent_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>> {
        let id = job_id.to_owned();
        self.db
            .call(move |conn| {
                let at: Option<i64> = conn
                    .query_row(
                        "SELECT resent_at FROM reassembly_resends WHERE job_id = ?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(at.and_then(DateTime::from_timestamp_micros))
            })
            .await
    }
}
