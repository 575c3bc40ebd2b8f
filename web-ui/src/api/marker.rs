//! Starting a job that has no upload of its own (a re-render, a "Convert all"): a small
//! marker object under its uploads prefix starts it through the storage event, exactly as an
//! upload would, so the web-ui still never talks to a queue.

use axum::response::Response;
use chrono::Utc;
use parallax_core::model::{ConversionSettings, Job, JobStatus, JobUpdate, StereoMode};
use serde_json::json;

use super::create::created;
use crate::error::AppResult;
use crate::views;
use crate::AppState;

/// A new job with no upload of its own: it starts `uploaded`, now, as if its video had just
/// arrived.
pub(super) fn job_without_upload(
    title: String,
    mode: StereoMode,
    settings: ConversionSettings,
) -> Job {
    let mut job = Job::new(title, mode, settings);
    job.status = JobStatus::Uploaded;
    job.uploaded_at = Some(Utc::now());
    job
}

/// The object that starts a job with no upload of its own (a re-render, a "Convert all").
pub(super) struct Marker {
    /// Under the job's uploads prefix, so the storage event carries it to chunking.
    pub key: String,
    /// What it holds (never video).
    pub note: serde_json::Value,
    /// The failure code, and what the job is in words, when the marker cannot be written.
    pub failure: (&'static str, &'static str),
}

/// Stores `job` and writes its marker, which starts it through the storage event exactly as
/// an upload would (the web-ui never talks to a queue); answers 201 with the job. A marker
/// that cannot be written fails the job at once rather than leave it waiting for nothing.
pub(super) async fn start_by_marker(
    state: &AppState,
    job: &Job,
    marker: Marker,
) -> AppResult<Response> {
    state.jobs.put(job).await?;
    let body = marker.note.to_string().into_bytes();
    if let Err(e) = state
        .storage
        .put_stream(&marker.key, Box::pin(std::io::Cursor::new(body)))
        .await
    {
        let (code, what) = marker.failure;
        let failed = JobUpdate::failed(
            code,
            format!("The {what} could not be started; please try again."),
        );
        if let Err(e) = state.jobs.update(&job.job_id, &failed).await {
            tracing::warn!(job_id = %job.job_id, error = %e, "could not fail the unstarted {what}");
        }
        return Err(e.into());
    }
    let view = views::job_view(state, job).await?;
    Ok(created(&job.job_id, json!({ "job": view })))
}
