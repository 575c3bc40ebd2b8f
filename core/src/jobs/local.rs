//! JobStore on the local SQLite database.

use async_trait::async_trait;
use base64::Engine as _;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::JobStore;
use crate::error::{Error, Result};
use crate::model::{Job, JobListItem, JobStatus, JobUpdate, Page};
use crate::sqlite::Db;

/// Jobs in SQLite: indexed columns for the listings, the job itself as JSON.
#[derive(Debug, Clone)]
pub struct SqliteJobStore {
    db: Db,
}

impl SqliteJobStore {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn decode(body: &str) -> Result<Job> {
    serde_json::from_str(body).map_err(|e| Error::backend("sqlite", e))
}

fn encode(job: &Job) -> Result<String> {
    serde_json::to_string(job).map_err(|e| Error::backend("sqlite", e))
}

fn cursor_encode(completed_at: i64, job_id: &str) -> String {
    let raw = serde_json::json!([completed_at, job_id]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn cursor_decode(key: &str) -> Result<(i64, String)> {
    let bad = || Error::invalid("cursor", "not a cursor returned by this listing");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| bad())?;
    serde_json::from_slice::<(i64, String)>(&raw).map_err(|_| bad())
}

fn list_query(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Job>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    rows.map(|r| decode(&r?)).collect()
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn get(&self, job_id: &str) -> Result<Option<Job>> {
        let id = job_id.to_owned();
        self.db
            .call(move |c| {
                let body: Option<String> = c
                    .prepare_cached("SELECT body FROM jobs WHERE job_id = ?1")?
                    .query_row([&id], |r| r.get(0))
                    .optional()?;
                body.as_deref().map(decode).transpose()
            })
            .await
    }

    async fn put(&self, job: &Job) -> Result<()> {
        let job = job.clone();
        self.db
            .call(move |c| {
                let n = c.execute(
                    "INSERT INTO jobs (job_id, status, created_at, completed_at, body)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (job_id) DO NOTHING",
                    params![
                        job.job_id,
                        job.status.as_str(),
                        job.created_at.timestamp_micros(),
                        job.completed_at.map(|t| t.timestamp_micros()),
                        encode(&job)?
                    ],
                )?;
                if n == 0 {
                    return Err(Error::Conflict {
                        what: "job",
                        id: job.job_id.clone(),
                        reason: "a job with this id already exists".to_owned(),
                    });
                }
                Ok(())
            })
            .await
    }

    async fn update(&self, job_id: &str, update: &JobUpdate) -> Result<Job> {
        let (id, update) = (job_id.to_owned(), update.clone());
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let body: Option<String> = tx
                    .query_row("SELECT body FROM jobs WHERE job_id = ?1", [&id], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let mut job = decode(&body.ok_or_else(|| Error::NotFound {
                    what: "job",
                    id: id.clone(),
                })?)?;
                job.apply(&update)?;
                tx.execute(
                    "UPDATE jobs SET status = ?2, completed_at = ?3, body = ?4 WHERE job_id = ?1",
                    params![
                        id,
                        job.status.as_str(),
                        job.completed_at.map(|t| t.timestamp_micros()),
                        encode(&job)?
                    ],
                )?;
                tx.commit()?;
                Ok(job)
            })
            .await
    }

    async fn list_completed(
        &self,
        limit: usize,
        exclusive_start_key: Option<&str>,
    ) -> Result<Page<JobListItem>> {
        let start = exclusive_start_key.map(cursor_decode).transpose()?;
        let limit = limit.clamp(1, 1000);
        self.db
            .call(move |c| {
                let fetch = (limit + 1) as i64;
                let jobs = match &start {
                    None => list_query(
                        c,
                        // INDEXED BY: without statistics the planner prefers the status
                        // index and sorts every completed job (10 ms at 10,000 jobs).
                        "SELECT body FROM jobs INDEXED BY jobs_completed WHERE status = 'completed'
                         ORDER BY completed_at DESC, job_id DESC LIMIT ?1",
                        params![fetch],
                    )?,
                    Some((at, id)) => list_query(
                        c,
                        "SELECT body FROM jobs INDEXED BY jobs_completed WHERE status = 'completed'
                           AND (completed_at < ?1 OR (completed_at = ?1 AND job_id < ?2))
                         ORDER BY completed_at DESC, job_id DESC LIMIT ?3",
                        params![at, id, fetch],
                    )?,
                };
                let more = jobs.len() > limit;
                let items: Vec<JobListItem> = jobs.iter().take(limit).map(Into::into).collect();
                let next_key = more.then(|| items.last()).flatten().map(|last| {
                    let at = last.completed_at.map(|t| t.timestamp_micros()).unwrap_or(0);
                    cursor_encode(at, &last.job_id)
                });
                Ok(Page { items, next_key })
            })
            .await
    }

    async fn list_in_progress(&self, limit: usize) -> Result<Vec<JobListItem>> {
        let limit = limit.clamp(1, 1000) as i64;
        self.db
            .call(move |c| {
                let jobs = list_query(
                    c,
                    "SELECT body FROM jobs WHERE status IN
                       ('awaiting_upload','uploaded','chunking','chunking_complete','reassembling')
                     ORDER BY created_at DESC LIMIT ?1",
                    params![limit],
                )?;
                Ok(jobs.iter().map(Into::into).collect())
            })
            .await
    }

    async fn list_failed(
        &self,
        limit: usize,
        exclusive_start_key: Option<&str>,
    ) -> Result<Page<JobListItem>> {
        let start = exclusive_start_key.map(cursor_decode).transpose()?;
        let limit = limit.clamp(1, 1000);
        self.db
            .call(move |c| {
                let fetch = (limit + 1) as i64;
                let failed = JobStatus::Failed.as_str();
                let jobs = match &start {
                    None => list_query(
                        c,
                        "SELECT body FROM jobs WHERE status = ?1
                         ORDER BY created_at DESC, job_id DESC LIMIT ?2",
                        params![failed, fetch],
                    )?,
                    Some((at, id)) => list_query(
                        c,
                        "SELECT body FROM jobs WHERE status = ?1
                           AND (created_at < ?2 OR (created_at = ?2 AND job_id < ?3))
                         ORDER BY created_at DESC, job_id DESC LIMIT ?4",
                        params![failed, at, id, fetch],
                    )?,
                };
                let more = jobs.len() > limit;
                let items: Vec<JobListItem> = jobs.iter().take(limit).map(Into::into).collect();
                let next_key = more
                    .then(|| items.last())
                    .flatten()
                    .map(|last| cursor_encode(last.created_at.timestamp_micros(), &last.job_id));
                Ok(Page { items, next_key })
            })
            .await
    }
}
