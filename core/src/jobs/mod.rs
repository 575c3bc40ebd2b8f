//! Where jobs live. The web-ui creates and lists them; workers move their status forward.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Job, JobListItem, JobUpdate, Page};

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;

/// Stores jobs.
///
/// # Contract
/// - `get` of an unknown id is `Ok(None)`.
/// - `put` creates a job; a job with the same id already stored is [`Error::Conflict`]
///   (jobs are never overwritten whole, only [`JobStore::update`]d).
/// - `update` writes only the fields that are `Some` in the [`JobUpdate`], atomically against
///   concurrent updates (a conditional write on the stored status). A status change must be a
///   legal transition ([`crate::model::JobStatus::can_become`]), otherwise
///   [`Error::InvalidTransition`] and nothing is written. Unknown id: [`Error::NotFound`].
///   Returns the job as stored after the update.
/// - `list_completed` pages completed jobs newest `completed_at` first (ties by job id), with
///   an opaque `exclusive_start_key` taken from the previous [`Page::next_key`]; across pages no
///   job is repeated or skipped. A key that was not produced by this store is
///   [`Error::InvalidInput`].
/// - `list_in_progress` lists jobs neither completed nor failed, newest `created_at` first.
/// - `list_failed` pages failed jobs newest `created_at` first (ties by job id), with an
///   opaque `exclusive_start_key` as `list_completed` has; across pages no job is repeated or
///   skipped.
///
/// [`Error::Conflict`]: crate::Error::Conflict
/// [`Error::InvalidTransition`]: crate::Error::InvalidTransition
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::InvalidInput`]: crate::Error::InvalidInput
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug + 'static {
    /// The job, or `None`.
    async fn get(&self, job_id: &str) -> Result<Option<Job>>;
    /// Creates a job.
    async fn put(&self, job: &Job) -> Result<()>;
    /// Changes the given fields of a job.
    async fn update(&self, job_id: &str, update: &JobUpdate) -> Result<Job>;
    /// Completed jobs, newest first, one page.
    async fn list_completed(
        &self,
        limit: usize,
        exclusive_start_key: Option<&str>,
    ) -> Result<Page<JobListItem>>;
    /// Jobs in progress, newest first.
    async fn list_in_progress(&self, limit: usize) -> Result<Vec<JobListItem>>;
    /// Failed jobs, newest first, one page.
    async fn list_failed(
        &self,
        limit: usize,
        exclusive_start_key: Option<&str>,
    ) -> Result<Page<JobListItem>>;
}
