use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::settings::ConversionSettings;
pub use super::status::JobStatus;

/// The 3D output format (layout of the left and right views).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StereoMode {
    /// Left and right side by side at full width each (output twice as wide).
    #[default]
    FullSbs,
    /// Left and right squeezed into the source width.
    HalfSbs,
    /// Left above right at full height each (output twice as tall).
    FullTb,
    /// Left above right squeezed into the source height.
    HalfTb,
    /// Red-cyan anaglyph (the method is a setting, Dubois by default).
    Anaglyph,
    /// The depth map as a grey video, for checking what the model sees.
    DepthMap,
    /// Cross-eyed viewing: right and left side by side at full width each.
    FullCross,
    /// Cross-eyed viewing: right and left squeezed into the source width.
    HalfCross,
    /// RGB-D: the source's colour and its depth (grey) side by side.
    Rgbd,
    /// VR180: each view projected onto the front half of a sphere (equirectangular, 180 by
    /// 180 degrees), left and right side by side, declared so headsets show it as VR180.
    Vr180,
}

impl StereoMode {
    /// Every mode.
    pub const ALL: [StereoMode; 10] = [
        StereoMode::FullSbs,
        StereoMode::HalfSbs,
        StereoMode::FullTb,
        StereoMode::HalfTb,
        StereoMode::Anaglyph,
        StereoMode::DepthMap,
        StereoMode::FullCross,
        StereoMode::HalfCross,
        StereoMode::Rgbd,
        StereoMode::Vr180,
    ];

    /// The snake_case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            StereoMode::FullSbs => "full_sbs",
            StereoMode::HalfSbs => "half_sbs",
            StereoMode::FullTb => "full_tb",
            StereoMode::HalfTb => "half_tb",
            StereoMode::Anaglyph => "anaglyph",
            StereoMode::DepthMap => "depth_map",
            StereoMode::FullCross => "full_cross",
            StereoMode::HalfCross => "half_cross",
            StereoMode::Rgbd => "rgbd",
            StereoMode::Vr180 => "vr180",
        }
    }

    /// Parses the snake_case name (dashes are accepted too).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "mode",
                    format!(
                        "unknown 3D format {s:?}; use one of full_sbs, half_sbs, full_tb, half_tb, anaglyph, depth_map, full_cross, half_cross, rgbd, vr180"
                    ),
                )
            })
    }

    /// The suffix that tells players the layout from the file name, put before the
    /// extension (`holiday_LR.mp4`).
    ///
    /// One token per layout that DeoVR, SKYBOX and Pigasus all document: `_LR` for side by
    /// side and `_TB` for top-bottom (`_SBS`/`_3dh` and `_OU`/`_3dv` are missing from DeoVR's
    /// list). The token ends the name, where players that look only there (Meta's `_LR.mp4`,
    /// `_TB.mp4`) find it too, and no other token of either kind comes before it (the old
    /// `_LRF_Full_TB` led with `LR`, and some players took it for side by side). Half
    /// layouts put `_Half` before it, for people; no player takes it for a layout. Cross-eyed
    /// layouts, right view first, are `_RL` (Meta's and rad.live's token; none of the three
    /// lists one for right first). VR180 is `_180_LR`, the field of view before the layout.
    /// Outputs that are not a stereo pair carry no layout token.
    pub fn file_suffix(self) -> &'static str {
        match self {
            StereoMode::FullSbs => "_LR",
            StereoMode::HalfSbs => "_Half_LR",
            StereoMode::FullTb => "_TB",
            StereoMode::HalfTb => "_Half_TB",
            StereoMode::Anaglyph => "_Anaglyph",
            StereoMode::DepthMap => "_Depth",
            StereoMode::FullCross => "_RL",
            StereoMode::HalfCross => "_Half_RL",
            StereoMode::Rgbd => "_RGBD",
            // DeoVR's and SKYBOX's token for 180-degree side by side.
            StereoMode::Vr180 => "_180_LR",
        }
    }
}

impl fmt::Display for StereoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed: a stable kebab-case code for programs and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobError {
    /// Stable kebab-case code, e.g. `not-a-video`, `too-long`, `segment-failed`.
    pub code: String,
    /// A readable reason a person can act on.
    pub message: String,
}

impl JobError {
    /// Builds a job error.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// One conversion: a source video turned into one 3D video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique id (a UUID); every storage key and message of the job derives from it.
    pub job_id: String,
    /// The 3D output format.
    #[serde(default)]
    pub mode: StereoMode,
    /// Where the job is in the flow.
    pub status: JobStatus,
    /// How many segments the source was cut into (known after chunking).
    #[serde(default)]
    pub total_segments: Option<u32>,
    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// When the browser finished uploading the source.
    #[serde(default)]
    pub uploaded_at: Option<DateTime<Utc>>,
    /// When the result was stored.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// A human title (from the file name by default); names the download.
    #[serde(default)]
    pub title: String,
    /// Size of the uploaded source in bytes.
    #[serde(default)]
    pub source_file_size_bytes: Option<u64>,
    /// The conversion's quality knobs.
    #[serde(default)]
    pub settings: ConversionSettings,
    /// Why the job failed, when it did.
    #[serde(default)]
    pub error: Option<JobError>,
    /// Storage key of the result, once completed.
    #[serde(default)]
    pub output_key: Option<String>,
    /// What the conversion did to the source's picture (tone-mapped HDR, deinterlaced,
    /// chroma or range converted), in words, once the first segment is converted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Set on a re-render: the completed job whose stored depth (and source) this job
    /// renders again with its own layout and settings, without running the depth model.
    /// Such a job has no upload of its own; its audio and subtitles come from the original
    /// upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerender_of: Option<String>,
    /// Set while the job's segments wait for a video-worker that holds the model they
    /// need (none running holds it); cleared when one takes a segment. The job fails with
    /// `no-worker-for-model` when the wait outlasts the workers' deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// A preview: only a few short samples spread over the video are converted (see
    /// [`PREVIEW_SAMPLES`]), one after the other, without sound, so that the settings can be
    /// judged in a small fraction of the full time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
    /// Set on a job that converts another job's upload (a preview's "Convert all"): that
    /// job's id. Such a job has no upload of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_of: Option<String>,
}

/// How many samples a preview converts.
pub const PREVIEW_SAMPLES: usize = 3;
/// About how long each preview sample is, in seconds (cut at the first clean keyframe after
/// this, so a sample may be longer where keyframes are far apart).
pub const PREVIEW_SAMPLE_SECS: f64 = 2.0;

/// What a job is waiting for (see [`Job::waiting`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The catalogue name of the model no running worker holds.
    pub model: String,
    /// When the wait was first noticed.
    pub since: DateTime<Utc>,
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waiting for a worker with model {} (since {})",
            self.model,
            self.since.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

impl Job {
    /// A new job awaiting its upload, with a fresh id.
    pub fn new(title: impl Into<String>, mode: StereoMode, settings: ConversionSettings) -> Self {
        Self {
            job_id: uuid::Uuid::new_v4().to_string(),
            mode,
            status: JobStatus::AwaitingUpload,
            total_segments: None,
            created_at: Utc::now(),
            uploaded_at: None,
            completed_at: None,
            title: title.into(),
            source_file_size_bytes: None,
            settings,
            error: None,
            output_key: None,
            notes: Vec::new(),
            rerender_of: None,
            waiting: None,
            preview: false,
            upload_of: None,
        }
    }

    /// Applies `update` to this job in memory, checking the status transition. Adapters use this
    /// to compute the new row, then write it only if the stored status is still the one read.
    pub fn apply(&mut self, update: &JobUpdate) -> Result<()> {
        if let Some(next) = update.status {
            if next != self.status && !self.status.can_become(next) {
                return Err(Error::InvalidTransition {
                    job_id: self.job_id.clone(),
                    from: self.status,
                    to: next,
                });
            }
            if next == self.status && self.status.is_terminal() {
                return Err(Error::InvalidTransition {
                    job_id: self.job_id.clone(),
                    from: self.status,
                    to: next,
                });
            }
            self.status = next;
        }
        if let Some(v) = update.total_segments {
            self.total_segments = Some(v);
        }
        if let Some(v) = update.completed_at {
            self.completed_at = Some(v);
        }
        if let Some(v) = &update.title {
            self.title = v.clone();
        }
        if let Some(v) = update.uploaded_at {
            self.uploaded_at = Some(v);
        }
        if let Some(v) = update.source_file_size_bytes {
            self.source_file_size_bytes = Some(v);
        }
        if let Some(v) = &update.error {
            self.error = Some(v.clone());
        }
        if let Some(v) = &update.output_key {
            self.output_key = Some(v.clone());
        }
        if let Some(v) = &update.notes {
            self.notes = v.clone();
        }
        if let Some(v) = &update.waiting {
            self.waiting = v.clone();
        }
        Ok(())
    }

    /// The job whose upload this job converts: its own, or the one it names in `upload_of`.
    pub fn upload_job(&self) -> &str {
        self.upload_of.as_deref().unwrap_or(&self.job_id)
    }

    /// Seconds from upload to completion, when both are known.
    pub fn conversion_seconds(&self) -> Option<f64> {
        let (u, c) = (self.uploaded_at?, self.completed_at?);
        Some((c - u).num_milliseconds() as f64 / 1000.0)
    }
}

/// A partial change to a job: only the fields that are `Some` are written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobUpdate {
    /// New status; must be a legal transition from the stored one.
    pub status: Option<JobStatus>,
    /// Number of segments.
    pub total_segments: Option<u32>,
    /// Completion time.
    pub completed_at: Option<DateTime<Utc>>,
    /// Title.
    pub title: Option<String>,
    /// Upload time.
    pub uploaded_at: Option<DateTime<Utc>>,
    /// Source size in bytes.
    pub source_file_size_bytes: Option<u64>,
    /// Failure reason.
    pub error: Option<JobError>,
    /// Result key.
    pub output_key: Option<String>,
    /// What the conversion did to the picture (replaces the job's notes).
    pub notes: Option<Vec<String>>,
    /// Sets (`Some(Some(_))`) or clears (`Some(None)`) what the job waits for. Only workers
    /// write it, so it is never read from a request.
    #[serde(skip)]
    pub waiting: Option<Option<Waiting>>,
}

impl JobUpdate {
    /// An update that only moves the status.
    pub fn status(status: JobStatus) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// An update that fails the job with a code and a readable reason.
    pub fn failed(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: Some(JobStatus::Failed),
            error: Some(JobError::new(code, message)),
            ..Self::default()
        }
    }
}

/// The summary of a job shown in lists (dashboard, `GET /api/jobs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobListItem {
    /// Job id.
    pub job_id: String,
    /// Title.
    pub title: String,
    /// 3D format.
    pub mode: StereoMode,
    /// Status.
    pub status: JobStatus,
    /// Segment count, once known.
    pub total_segments: Option<u32>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Upload time.
    pub uploaded_at: Option<DateTime<Utc>>,
    /// Completion time.
    pub completed_at: Option<DateTime<Utc>>,
    /// Source size in bytes.
    pub source_file_size_bytes: Option<u64>,
    /// Failure reason.
    pub error: Option<JobError>,
    /// A preview (a few samples of its source): its time per MB says nothing of a whole
    /// conversion's.
    #[serde(default)]
    pub preview: bool,
}

impl From<&Job> for JobListItem {
    fn from(j: &Job) -> Self {
        Self {
            job_id: j.job_id.clone(),
            title: j.title.clone(),
            mode: j.mode,
            status: j.status,
            total_segments: j.total_segments,
            created_at: j.created_at,
            uploaded_at: j.uploaded_at,
            completed_at: j.completed_at,
            source_file_size_bytes: j.source_file_size_bytes,
            error: j.error.clone(),
            preview: j.preview,
        }
    }
}

/// One page of a paged listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Opaque key to pass as `exclusive_start_key` for the next page; `None` on the last page.
    pub next_key: Option<String>,
}
