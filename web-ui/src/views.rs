//! What the API returns for a job and what the pages show: the stored job plus progress
//! (completed segments), ETA figures and links. Also the download file name.

use chrono::{DateTime, Utc};
use parallax_core::keys;
use parallax_core::model::{ConversionSettings, Job, JobError, JobListItem, JobStatus, StereoMode};
use serde::Serialize;

use crate::error::AppResult;
use crate::eta::{conversion_seconds, remaining_seconds, MB};
use crate::AppState;

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = Job)]
pub struct JobView {
    /// Job id.
    pub job_id: String,
    /// Title.
    pub title: String,
    /// 3D format.
    pub mode: StereoMode,
    /// Status.
    pub status: JobStatus,
    /// Segments the source was cut into, once known.
    pub total_segments: Option<u32>,
    /// Segments converted so far (in-progress jobs and single-job answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_segments: Option<u32>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Upload time.
    pub uploaded_at: Option<DateTime<Utc>>,
    /// Completion time.
    pub completed_at: Option<DateTime<Utc>>,
    /// Source size in bytes.
    pub source_file_size_bytes: Option<u64>,
    /// Conversion settings (single-job answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<ConversionSettings>,
    /// Why the job failed.
    pub error: Option<JobError>,
    /// Estimated seconds left (in-progress jobs, once the average is known).
    pub eta_seconds: Option<f64>,
    /// Seconds from upload to completion (completed jobs).
    pub conversion_seconds: Option<f64>,
    /// Conversion seconds per MB of source (completed jobs).
    pub seconds_per_mb: Option<f64>,
    /// Where to download the result (completed jobs).
    pub download_url: Option<String>,
    /// What the conversion did to the source's picture (single-job answers, when any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The job this one re-renders from its stored depth (single-job answers, re-renders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerender_of: Option<String>,
    /// Where each segment is, by index (single-job answers, once the segments are known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<SegmentState>>,
    /// What the job waits for, in words ("waiting for a worker with model X (since ...)"),
    /// while no running worker holds the model its settings name (single-job answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// A preview: a few short samples of the video, without sound.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
    /// The job whose upload this one converts ("Convert all" from a preview).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_of: Option<String>,
}

/// Where one segment of a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SegmentState {
    /// Converted and recorded.
    Done,
    /// Its converted output is stored but not yet recorded as done (the last step of its
    /// conversion).
    InProgress,
    /// Not converted yet (queued or converting: the stores do not record when a worker
    /// takes a segment).
    Waiting,
}

/// How many of the lowest-numbered unfinished segments are checked for a stored output per
/// view. Tasks are queued in segment order, so the ones being finished are among them; the
/// bound keeps a view of a long job at a few storage HEADs.
pub const IN_PROGRESS_PROBE: usize = 16;

/// Each segment's state: done from the completion store; in progress where a video-worker
/// has noted it started it (`keys::segment_started`), or its converted output is already in
/// storage (checked for the first [`IN_PROGRESS_PROBE`] unfinished segments of a live job);
/// waiting otherwise.
pub async fn segment_states(
    state: &AppState,
    job: &Job,
    done: &[u32],
) -> AppResult<Option<Vec<SegmentState>>> {
    let Some(total) = job.total_segments else {
        return Ok(None);
    };
    if job.status == JobStatus::Completed {
        return Ok(Some(vec![SegmentState::Done; total as usize]));
    }
    let mut states = vec![SegmentState::Waiting; total as usize];
    for &i in done {
        if let Some(s) = states.get_mut(i as usize) {
            *s = SegmentState::Done;
        }
    }
    if !job.status.is_terminal() {
        let probe: Vec<u32> = (0..total)
            .filter(|&i| states[i as usize] == SegmentState::Waiting)
            .take(IN_PROGRESS_PROBE)
            .collect();
        let heads = futures::future::try_join_all(probe.iter().map(|&i| async move {
            let started = state
                .storage
                .head(&keys::segment_started(&job.job_id, i))
                .await?;
            match started {
                Some(n) => Ok(Some(n)),
                None => state.storage.head(&keys::output(&job.job_id, i)).await,
            }
        }))
        .await?;
        for (i, head) in probe.into_iter().zip(heads) {
            if head.is_some() {
                states[i as usize] = SegmentState::InProgress;
            }
        }
    }
    Ok(Some(states))
}

impl JobView {
    /// The view of a listed job; `completed_segments` and `sec_per_mb` as known.
    pub fn from_item(
        item: &JobListItem,
        completed_segments: Option<u32>,
        sec_per_mb: Option<f64>,
    ) -> Self {
        let conv = conversion_seconds(item.uploaded_at, item.completed_at);
        let done = item.status == JobStatus::Completed;
        // A preview converts a few seconds of its upload: its size says nothing of its time.
        let eta = match (
            item.status.is_terminal() || item.preview,
            sec_per_mb,
            item.source_file_size_bytes,
            item.uploaded_at,
        ) {
            (false, Some(r), Some(size), Some(up)) => {
                Some(remaining_seconds(r, size, up, Utc::now()))
            }
            _ => None,
        };
        Self {
            job_id: item.job_id.clone(),
            title: item.title.clone(),
            mode: item.mode,
            status: item.status,
            total_segments: item.total_segments,
            completed_segments: if done {
                item.total_segments
            } else {
                completed_segments
            },
            created_at: item.created_at,
            uploaded_at: item.uploaded_at,
            completed_at: item.completed_at,
            source_file_size_bytes: item.source_file_size_bytes,
            settings: None,
            error: item.error.clone(),
            eta_seconds: eta,
            conversion_seconds: conv.filter(|_| done),
            seconds_per_mb: match (conv, item.source_file_size_bytes) {
                (Some(s), Some(b)) if done && b > 0 => Some(s / (b as f64 / MB)),
                _ => None,
            },
            download_url: done.then(|| format!("/api/jobs/{}/download", item.job_id)),
            notes: Vec::new(),
            rerender_of: None,
            waiting: None,
            preview: item.preview,
            upload_of: None,
            segments: None,
        }
    }

    /// Progress in percent, when the segment count is known.
    pub fn percent(&self) -> Option<u32> {
        let total = self.total_segments.filter(|&t| t > 0)?;
        let done = self.completed_segments.unwrap_or(0).min(total);
        Some(done * 100 / total)
    }
}

/// The full view of one job, with its completed segments counted.
pub async fn job_view(state: &AppState, job: &Job) -> AppResult<JobView> {
    let indices: Vec<u32> = if job.status == JobStatus::Completed {
        Vec::new()
    } else {
        state
            .completions
            .query_by_job(&job.job_id)
            .await?
            .iter()
            .map(|c| c.segment_index)
            .collect()
    };
    let done = if job.status == JobStatus::Completed {
        job.total_segments
    } else {
        Some(indices.len() as u32)
    };
    let sec_per_mb = if job.status.is_terminal() {
        None
    } else {
        state.eta.seconds_per_mb(state.jobs.as_ref()).await
    };
    let mut v = JobView::from_item(&JobListItem::from(job), done, sec_per_mb);
    v.completed_segments = done.or(Some(0));
    v.settings = Some(job.settings.clone());
    v.notes = job.notes.clone();
    v.rerender_of = job.rerender_of.clone();
    v.waiting = job.waiting.as_ref().map(|w| w.to_string());
    v.preview = job.preview;
    v.upload_of = job.upload_of.clone();
    v.segments = segment_states(state, job, &indices).await?;
    Ok(v)
}

/// Views of finished (completed or failed) jobs: they have no progress or ETA to add.
pub fn finished_views(items: &[JobListItem]) -> Vec<JobView> {
    items
        .iter()
        .map(|item| JobView::from_item(item, None, None))
        .collect()
}

/// Views of in-progress jobs, each with its completed segments counted (concurrently).
pub async fn in_progress_views(state: &AppState, items: &[JobListItem]) -> AppResult<Vec<JobView>> {
    let sec_per_mb = state.eta.seconds_per_mb(state.jobs.as_ref()).await;
    let counts = futures::future::try_join_all(items.iter().map(|i| async move {
        if i.total_segments.is_some() {
            state
                .completions
                .query_by_job(&i.job_id)
                .await
                .map(|c| Some(c.len() as u32))
        } else {
            Ok(Some(0))
        }
    }))
    .await?;
    Ok(items
        .iter()
        .zip(counts)
        .map(|(i, c)| JobView::from_item(i, c, sec_per_mb))
        .collect())
}

/// The download name of a result: the title as a slug, "3d", the layout's suffix that players
/// read ([`StereoMode::file_suffix`]) and the result's extension: "Attack on Titan" as full
/// SBS + `final/j/x.mp4` -> `attack-on-titan3d_LR.mp4`. ASCII only, so it fits a quoted
/// `Content-Disposition` file name as it is.
pub fn download_file_name(title: &str, mode: StereoMode, output_key: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 80 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "video" } else { slug };
    let file = output_key.rsplit('/').next().unwrap_or("");
    let ext = file
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("mp4")
        .to_ascii_lowercase();
    format!("{slug}3d{}.{ext}", mode.file_suffix())
}

#[cfg(test)]
mod tests {
    use super::download_file_name;
    use parallax_core::model::StereoMode;

    #[test]
    fn download_names_follow_the_title() {
        assert_eq!(
            download_file_name("Attack on Titan", StereoMode::FullSbs, "final/j/out_LR.mp4"),
            "attack-on-titan3d_LR.mp4"
        );
        assert_eq!(
            download_file_name("  ¡Olé! \"x\"/..", StereoMode::HalfTb, "final/j/a.MKV"),
            "ol-x3d_Half_TB.mkv"
        );
        assert_eq!(
            download_file_name("<script>", StereoMode::Anaglyph, "final/j/noext"),
            "script3d_Anaglyph.mp4"
        );
        assert_eq!(
            download_file_name("日本", StereoMode::Vr180, "final/j/a.mp4"),
            "video3d_180_LR.mp4"
        );
    }
}
