use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ConversionSettings, S3EventNotification, S3TestEvent, StereoMode};
use crate::error::{Error, Result};

/// A converted segment recorded by the completion trigger. One record per (job, segment):
/// completions are set membership, never a counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentCompletion {
    /// Job id.
    pub job_id: String,
    /// Zero-based segment index.
    pub segment_index: u32,
    /// Storage key (or URI) of the converted segment.
    pub output_uri: String,
    /// When the trigger recorded it.
    pub completed_at: DateTime<Utc>,
    /// Frames in the converted segment.
    #[serde(default)]
    pub frame_count: Option<u64>,
}

/// What keeps depth continuous across a segment seam: the video-worker warms its temporal
/// normalisation up on the tail of the previous segment before converting this one, so the
/// first frame of segment k sees the state a single pass would have had there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DepthSeam {
    /// Storage key of the previous segment's source, when there is one.
    pub prev_source_key: Option<String>,
    /// How many frames from the end of the previous segment to run through the depth model
    /// (without output) before this segment's first frame.
    pub warmup_frames: u32,
}

/// Work for a video-worker: convert one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentTask {
    /// Job id.
    pub job_id: String,
    /// Zero-based segment index.
    pub segment_index: u32,
    /// How many segments the job has.
    pub total_segments: u32,
    /// Storage key of the segment's source (video only).
    pub source_key: String,
    /// Storage key the converted segment must be written to.
    pub output_key: String,
    /// Index of the segment's first frame in the whole source.
    #[serde(default)]
    pub first_frame: u64,
    /// Frames in the segment; the converted segment must have exactly as many.
    #[serde(default)]
    pub frame_count: u64,
    /// 3D format.
    #[serde(default)]
    pub mode: StereoMode,
    /// Conversion knobs.
    #[serde(default)]
    pub settings: ConversionSettings,
    /// Seam continuity.
    #[serde(default)]
    pub seam: DepthSeam,
    /// Set on a re-render: the storage key of this segment's stored depth
    /// ([`crate::keys::depth`] of the job that computed it). The worker renders from it and
    /// runs no depth model (`seam` does not apply: the stored depth is already normalised
    /// and continuous across seams). Unset: the worker computes depth and stores it at
    /// [`crate::keys::depth`] of this task's job and segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_key: Option<String>,
}

/// Sent by a video-worker when a segment is converted and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentOutput {
    /// Job id.
    pub job_id: String,
    /// Zero-based segment index.
    pub segment_index: u32,
    /// Storage key of the converted segment.
    pub output_key: String,
    /// Frames in the converted segment.
    #[serde(default)]
    pub frame_count: u64,
}

/// Asks a media-worker to stitch a job's converted segments together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReassemblyRequest {
    /// Job id.
    pub job_id: String,
    /// How many segments there must be.
    #[serde(default)]
    pub total_segments: Option<u32>,
}

/// A plain "chunk this job" message, for re-running chunking by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PlainJob {
    job_id: String,
}

/// What arrives on the chunking queue.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkingMessage {
    /// Objects were created (S3's event notification, or the local adapter's copy of it).
    ObjectCreated(S3EventNotification),
    /// S3's `s3:TestEvent`, sent when a notification is configured: log and drop.
    Test(S3TestEvent),
    /// A plain job id.
    Job {
        /// Job id.
        job_id: String,
    },
}

impl ChunkingMessage {
    /// Parses a chunking queue body. The error says what the body was expected to look like.
    pub fn parse(body: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| Error::invalid("chunking message", format!("not JSON: {e}")))?;
        if value.get("Records").is_some() {
            return serde_json::from_value(value)
                .map(ChunkingMessage::ObjectCreated)
                .map_err(|e| Error::invalid("chunking message", format!("bad S3 event: {e}")));
        }
        if value.get("Event").and_then(|v| v.as_str()) == Some("s3:TestEvent") {
            return serde_json::from_value(value)
                .map(ChunkingMessage::Test)
                .map_err(|e| Error::invalid("chunking message", format!("bad test event: {e}")));
        }
        if let Ok(p) = serde_json::from_value::<PlainJob>(value) {
            return Ok(ChunkingMessage::Job { job_id: p.job_id });
        }
        Err(Error::invalid(
            "chunking message",
            "expected an S3 event notification, an s3:TestEvent or {\"job_id\": ...}",
        ))
    }

    /// The job ids this message asks to chunk: the `{job_id}` of every created
    /// `uploads/{job_id}/...` key (other keys are ignored), or the plain job id.
    pub fn job_ids(&self) -> Vec<String> {
        match self {
            ChunkingMessage::ObjectCreated(n) => n
                .records
                .iter()
                .filter(|r| r.event_name.starts_with("ObjectCreated"))
                .filter_map(|r| crate::keys::job_id_of_upload(&r.s3.object.decoded_key()))
                .collect(),
            ChunkingMessage::Test(_) => Vec::new(),
            ChunkingMessage::Job { job_id } => vec![job_id.clone()],
        }
    }
}
