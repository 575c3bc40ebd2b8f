//! The segment list of a job, saved to `keys::manifest(job)` before any task is sent: what
//! video-workers and reassembly need, and what makes a redelivered chunking message resend
//! the same tasks instead of cutting a second, different set.

use parallax_core::keys;
use parallax_core::storage::ObjectStorage;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::plan::PlannedSegment;
use crate::source::SourceInfo;

/// Current manifest format.
pub const MANIFEST_VERSION: u32 = 1;

/// One source segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestSegment {
    /// Zero-based index.
    pub index: u32,
    /// Index of its first frame in the whole source.
    pub first_frame: u64,
    /// Frames in it.
    pub frame_count: u64,
    /// Where it starts on the source's timeline, in seconds from the video's first frame.
    pub start_secs: f64,
    /// How long it lasts on the source's timeline (up to the next segment's start).
    pub duration_secs: f64,
    /// Storage key of the segment.
    pub key: String,
}

/// A job's segments and what reassembly needs from the probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    #[serde(default)]
    pub version: u32,
    /// The job.
    pub job_id: String,
    /// The probed source.
    pub source: SourceInfo,
    /// The target segment length used.
    pub segment_secs: f64,
    /// Whether the segments were re-encoded upright because the source carries rotation
    /// metadata (MKV segments cannot carry it).
    #[serde(default)]
    pub rotated_upright: bool,
    /// The segments in order.
    pub segments: Vec<ManifestSegment>,
    /// Storage key of the upload the segments were cut from, whose audio and subtitle tracks
    /// reassembly muxes back in. `None`: this job's own upload (`keys::source(job_id)`); a
    /// re-render names the original upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key: Option<String>,
    /// The job whose stored depth (`keys::depth(depth_job, index)`) the segments are rendered
    /// from. `None`: this job computes (and stores) its own; a re-render names the job that
    /// computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_job: Option<String>,
    /// A preview's samples: not contiguous, so no seam warm-up between them, and no sound
    /// (the source's tracks would not match them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
}

impl Manifest {
    /// The manifest of `job_id`'s source cut as `plan` says, each segment at its
    /// `keys::segment` key.
    pub fn new(
        job_id: &str,
        source: SourceInfo,
        segment_secs: f64,
        plan: &[PlannedSegment],
    ) -> Self {
        let segments = plan
            .iter()
            .map(|p| ManifestSegment {
                index: p.index,
                first_frame: p.first_frame,
                frame_count: p.frame_count,
                start_secs: p.start_secs,
                duration_secs: p.duration_secs,
                key: keys::segment(job_id, p.index),
            })
            .collect();
        Self {
            version: MANIFEST_VERSION,
            job_id: job_id.to_owned(),
            rotated_upright: source.video.rotation != 0,
            source,
            segment_secs,
            segments,
            source_key: None,
            depth_job: None,
            preview: false,
        }
    }

    /// The manifest of `job_id`, a re-render of the job this manifest belongs to: the same
    /// source segments (at their original keys), rendered from the depth the original job
    /// stored, with the original upload's audio and subtitles. A re-render of a re-render
    /// names the original job and upload too.
    pub fn rerender(&self, job_id: &str) -> Self {
        Self {
            job_id: job_id.to_owned(),
            source_key: Some(self.source_key()),
            depth_job: Some(self.depth_job().to_owned()),
            ..self.clone()
        }
    }

    /// Storage key of the upload holding the audio and subtitle tracks.
    pub fn source_key(&self) -> String {
        self.source_key
            .clone()
            .unwrap_or_else(|| keys::source(&self.job_id))
    }

    /// The job whose stored depth the segments use.
    pub fn depth_job(&self) -> &str {
        self.depth_job.as_deref().unwrap_or(&self.job_id)
    }

    /// Frames in all segments together.
    pub fn total_frames(&self) -> u64 {
        self.segments.iter().map(|s| s.frame_count).sum()
    }

    /// Reads a job's manifest; `Ok(None)` when there is none.
    pub async fn load(storage: &dyn ObjectStorage, job_id: &str) -> anyhow::Result<Option<Self>> {
        let key = keys::manifest(job_id);
        let mut stream = match storage.get_stream(&key).await {
            Ok(s) => s,
            Err(parallax_core::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await?;
        Ok(Some(serde_json::from_slice(&buf)?))
    }

    /// Writes the manifest to its key.
    pub async fn save(&self, storage: &dyn ObjectStorage) -> anyhow::Result<()> {
        let body = serde_json::to_vec_pretty(self)?;
        storage
            .put_stream(
                &keys::manifest(&self.job_id),
                Box::pin(std::io::Cursor::new(body)),
            )
            .await?;
        Ok(())
    }
}
