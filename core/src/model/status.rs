//! Where a job is in the flow, and which moves between statuses are allowed. A leaf module:
//! the crate's error type names statuses, so this module names no error.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a job is in the flow. Status only moves forward (see [`JobStatus::can_become`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Created; the browser has not finished uploading the source yet.
    AwaitingUpload,
    /// The source is in storage; chunking has not started.
    Uploaded,
    /// A media-worker is probing and splitting the source.
    Chunking,
    /// Segments exist and their tasks are sent: segments are being converted.
    ChunkingComplete,
    /// All segments are converted; a media-worker is stitching the result.
    Reassembling,
    /// The result is in storage. Terminal.
    Completed,
    /// The job failed; `Job::error` says why. Terminal.
    Failed,
}

impl JobStatus {
    /// Every status, in flow order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::AwaitingUpload,
        JobStatus::Uploaded,
        JobStatus::Chunking,
        JobStatus::ChunkingComplete,
        JobStatus::Reassembling,
        JobStatus::Completed,
        JobStatus::Failed,
    ];

    /// The snake_case name used in JSON, SQL and DynamoDB.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::AwaitingUpload => "awaiting_upload",
            JobStatus::Uploaded => "uploaded",
            JobStatus::Chunking => "chunking",
            JobStatus::ChunkingComplete => "chunking_complete",
            JobStatus::Reassembling => "reassembling",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }

    /// Completed and failed jobs never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed)
    }

    fn rank(self) -> u8 {
        match self {
            JobStatus::AwaitingUpload => 0,
            JobStatus::Uploaded => 1,
            JobStatus::Chunking => 2,
            JobStatus::ChunkingComplete => 3,
            JobStatus::Reassembling => 4,
            JobStatus::Completed => 5,
            JobStatus::Failed => 6,
        }
    }

    /// Whether a job in `self` may be moved to `next`. Forward moves (skipping steps is allowed:
    /// the storage event may overtake the browser's PATCH) and failing a live job are legal;
    /// staying in the same live status is a legal no-op so that a redelivered step can re-run.
    /// Anything backwards, and anything out of a terminal status, is not.
    pub fn can_become(self, next: JobStatus) -> bool {
        if self.is_terminal() {
            return false;
        }
        next == JobStatus::Failed || next.rank() >= self.rank()
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
