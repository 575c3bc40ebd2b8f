//! Which segments of a job are converted, and the exactly-once reassembly trigger.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::SegmentCompletion;

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;

/// Records converted segments as set membership and decides, exactly once per job, that a
/// job's segments are all done.
///
/// # Contract
/// - `put` records a completion only if none is stored for its (job_id, segment_index); it
///   returns `true` when this call recorded it and `false` when one was already there (the
///   stored one is kept). A duplicate message can therefore never count twice.
/// - `query_by_job` returns the job's completions ordered by `segment_index` ascending;
///   an unknown job gives an empty list.
/// - `claim_reassembly(job_id, total_segments)` is ONE conditional write: it marks the job's
///   reassembly as requested only if it is not yet marked and the job has exactly
///   `total_segments` completions. It returns `true` to exactly one caller per job, however
///   many call it at once from however many processes; only that caller sends the request.
/// - `reassembly_claimed_at` tells when the claim was made (`None` if never), so a reconciler
///   can re-send requests whose sender died between the claim and the send.
/// - `claim_resend(job_id, now, every)` is ONE conditional write, the reconcilers' memory of
///   re-sent requests, shared by every process: it records `now` as the job's "last re-sent
///   at" only if the job's reassembly is claimed, the claim is at least `every` older than
///   `now`, and no re-send is recorded within `every` before `now`. It returns `true` to the
///   one caller that may re-send; `false` when the job is not claimed, claimed too recently,
///   or re-sent too recently (by any process).
/// - `reassembly_resent_at` tells the last recorded re-send (`None` if never).
#[async_trait]
pub trait SegmentCompletionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records a completion if absent; `true` if this call recorded it.
    async fn put(&self, completion: &SegmentCompletion) -> Result<bool>;
    /// The job's completions by segment index.
    async fn query_by_job(&self, job_id: &str) -> Result<Vec<SegmentCompletion>>;
    /// The exactly-once trigger; `true` for the one winner.
    async fn claim_reassembly(&self, job_id: &str, total_segments: u32) -> Result<bool>;
    /// When the reassembly claim was made.
    async fn reassembly_claimed_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>>;
    /// Records a re-send of the job's reassembly request at `now` if none is due to wait;
    /// `true` for the one caller that may re-send.
    async fn claim_resend(
        &self,
        job_id: &str,
        now: DateTime<Utc>,
        every: std::time::Duration,
    ) -> Result<bool>;
    /// When the job's reassembly request was last re-sent.
    async fn reassembly_resent_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>>;
}
