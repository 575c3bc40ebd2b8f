//! Reassembly: once every segment is converted, concatenate the converted segments without
//! re-encoding (concat demuxer, each segment placed at its start on the source timeline) and
//! mux every audio and subtitle track of the original upload back in, tags included. The
//! result is MP4 with `+faststart` when every stream fits MP4, MKV otherwise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::Utc;
use parallax_core::backends::Backends;
use parallax_core::keys;
use parallax_core::model::{Job, JobStatus, JobUpdate, ReassemblyRequest};
use parallax_core::storage::ObjectStorageExt as _;
use parallax_media::process::{ProcessError, ToolCommand};
use parallax_media::{mkv, mp4, packets};

use crate::batch::try_batched;
use crate::failure::{HandlerError, RetryContext};
use crate::manifest::Manifest;
use crate::settings::Settings;
use crate::source::TrackInfo;

/// The result's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// MP4 with the index up front (`+faststart`).
    Mp4,
    /// Matroska, for streams MP4 does not take.
    Mkv,
}

impl Container {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mkv => "mkv",
        }
    }
}

const MP4_VIDEO: &[&str] = &["h264", "hevc", "av1", "mpeg4", "vp9"];
const MP4_AUDIO: &[&str] = &["aac", "mp3", "ac3", "eac3", "alac"];
/// Text subtitles that become MP4's mov_text.
const MP4_TEXT_SUBS: &[&str] = &["mov_text", "subrip", "text", "webvtt"];

/// MP4 when the converted video and every audio and subtitle track fit it, MKV otherwise.
/// An unknown video codec is taken to fit (reassembly falls back to MKV if MP4 refuses it).
pub fn choose_container(
    video_codec: Option<&str>,
    audio: &[TrackInfo],
    subs: &[TrackInfo],
) -> Container {
    let fits = video_codec.is_none_or(|c| MP4_VIDEO.contains(&c))
        && audio.iter().all(|a| MP4_AUDIO.contains(&a.codec.as_str()))
        && subs
            .iter()
            .all(|s| MP4_TEXT_SUBS.contains(&s.codec.as_str()));
    if fits {
        Container::Mp4
    } else {
        Container::Mkv
    }
}

/// The result's file name: the title as a slug, the 3D layout suffix players recognise, and
/// the extension (`holiday-in-rome_LR.mp4`).
pub fn file_name(job: &Job, container: Container) -> String {
    let mut slug = String::new();
    for c in job.title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        slug = "video".to_owned();
    }
    slug.truncate(slug.char_indices().nth(80).map_or(slug.len(), |(i, _)| i));
    let preview = if job.preview { "-preview" } else { "" };
    format!(
        "{slug}{preview}{}.{}",
        job.mode.file_suffix(),
        container.extension()
    )
}

fn concat_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// The assembled file.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// Where it is.
    pub path: PathBuf,
    /// Its container.
    pub container: Container,
    /// Video frames in it.
    pub frame_count: u64,
    /// Whether the segments were joined in-process ([`mkv::join_in_place`]) rather
    /// than by ffmpeg's concat demuxer.
    pub joined: bool,
}

/// Concatenates `outputs` (converted segments in order) and muxes the audio and subtitle
/// tracks of `source` into `work_dir/result.{mp4,mkv}`; checks the frame count.
pub async fn assemble(
    source: &Path,
    manifest: &Manifest,
    outputs: &[PathBuf],
    work_dir: &Path,
    settings: &Settings,
) -> Result<Assembled, HandlerError> {
    if outputs.len() != manifest.segments.len() || outputs.is_empty() {
        return Err(HandlerError::Retry(anyhow::anyhow!(
            "{} converted segments for {} planned",
            outputs.len(),
            manifest.segments.len()
        )));
    }
    // The codec from the Matroska header (no extra process); unknown is tried as MP4.
    let video_codec = mkv_video_codec(&outputs[0]).await;
    let (audio, subtitles) = tracks(manifest);
    let container = choose_container(video_codec, audio, subtitles);

    // Each segment placed at its start on the source timeline, whatever timestamps the
    // converted file carries. Joined in-process into one file when the segments allow it
    // (one open and probe for ffmpeg instead of one per segment), else by the concat demuxer.
    let mut starts = Vec::with_capacity(outputs.len());
    let mut at = 0.0;
    for seg in &manifest.segments {
        starts.push(at);
        at += seg.duration_secs;
    }
    let job = (outputs.to_vec(), starts, work_dir.to_owned());
    let join = tokio::task::spawn_blocking(move || mkv::join_in_place(&job.0, &job.1, &job.2))
        .await
        .retry("joining the converted segments")?
        .retry("joining the converted segments")?;
    let input = match join {
        Ok(url) => VideoInput::Joined(url),
        Err(why) => {
            tracing::debug!(reason = %why, "segments joined by ffmpeg's concat demuxer");
            let mut list = String::from("ffconcat version 1.0\n");
            for (i, (seg, out)) in manifest.segments.iter().zip(outputs).enumerate() {
                let abs = std::path::absolute(out).retry("resolving a segment path")?;
                list.push_str(&format!("file {}\n", concat_quote(&abs)));
                if i + 1 < manifest.segments.len() {
                    list.push_str(&format!("duration {:.9}\n", seg.duration_secs));
                }
            }
            let list_path = work_dir.join("concat.txt");
            tokio::fs::write(&list_path, list)
                .await
                .retry("writing the concat list")?;
            VideoInput::ConcatList(list_path)
        }
    };

    let progress = work_dir.join("progress.txt");
    let mux = |container: Container| {
        mux_command(
            source,
            &input,
            &progress,
            manifest,
            video_codec,
            container,
            work_dir,
            settings,
        )
    };
    let (out, container) = match mux(container).run().await {
        Ok(_) => (
            work_dir.join(format!("result.{}", container.extension())),
            container,
        ),
        Err(ProcessError::Failed { stderr_tail, .. })
            if container == Container::Mp4
                && (stderr_tail.contains("not currently supported in container")
                    || stderr_tail.contains("Could not find tag for codec")) =>
        {
            tracing::info!("the converted video does not fit MP4; writing MKV");
            mux(Container::Mkv)
                .run()
                .await
                .retry("concatenating and muxing with ffmpeg")?;
            (work_dir.join("result.mkv"), Container::Mkv)
        }
        Err(e) => {
            return Err(HandlerError::Retry(
                anyhow::Error::new(e).context("concatenating and muxing with ffmpeg"),
            ))
        }
    };

    // ffmpeg's progress report counts the video packets it wrote.
    let frames = match read_progress_frames(&progress).await {
        Some(n) => n,
        None => packets::count_frames(&out, settings.probe_timeout)
            .await
            .retry("counting the result's frames")?,
    };
    let expected = manifest.total_frames();
    if frames != expected {
        return Err(HandlerError::reject(
            "reassembly-mismatch",
            format!("the result has {frames} video frames where the source has {expected}"),
        ));
    }
    Ok(Assembled {
        path: out,
        container,
        frame_count: frames,
        joined: matches!(input, VideoInput::Joined(_)),
    })
}

/// Where the converted video comes from.
#[derive(Debug, Clone)]
enum VideoInput {
    /// The segments read as one Matroska file with every segment in place
    /// ([`mkv::join_in_place`]): an ffmpeg input URL.
    Joined(String),
    /// An ffconcat list of the segments.
    ConcatList(PathBuf),
}

/// The audio and subtitle tracks muxed in: the source's, none for a preview.
fn tracks(manifest: &Manifest) -> (&[TrackInfo], &[TrackInfo]) {
    if manifest.preview {
        (&[], &[])
    } else {
        (&manifest.source.audio, &manifest.source.subtitles)
    }
}

/// The ffmpeg command that concatenates the segments and muxes the original's tracks.
#[allow(clippy::too_many_arguments)]
fn mux_command(
    source: &Path,
    input: &VideoInput,
    progress: &Path,
    manifest: &Manifest,
    video_codec: Option<&str>,
    container: Container,
    work_dir: &Path,
    settings: &Settings,
) -> ToolCommand {
    let src = &manifest.source;
    // The video starts where it started in the source relative to the other streams.
    let offset = (src.video.start_secs - src.start_secs).max(0.0);
    let out = work_dir.join(format!("result.{}", container.extension()));
    let mut cmd = ToolCommand::ffmpeg(settings.ffmpeg_timeout)
        .args(["-v", "error", "-progress"])
        .arg(progress)
        .args(["-itsoffset", &format!("{offset:.6}")]);
    cmd = match input {
        VideoInput::Joined(url) => cmd.args(["-f", "matroska", "-i"]).arg(url),
        VideoInput::ConcatList(list) => cmd.args(["-f", "concat", "-safe", "0", "-i"]).arg(list),
    };
    if src.format_name == mp4::FORMAT_NAME {
        // The MP4/MOV header describes the audio and subtitle tracks fully; probing them
        // would also decode the source's first pictures for nothing.
        cmd = cmd.arg("-nofind_stream_info");
    }
    cmd = cmd.arg("-i").arg(source).args(["-map", "0:v:0"]);
    let (audio, subtitles) = tracks(manifest);
    for t in audio.iter().chain(subtitles) {
        cmd = cmd.args(["-map", &format!("1:{}", t.index)]);
    }
    cmd = cmd.args(["-map_metadata", "1", "-c", "copy"]);
    for (i, t) in audio.iter().enumerate() {
        if let Some(lang) = &t.language {
            cmd = cmd.args([format!("-metadata:s:a:{i}"), format!("language={lang}")]);
        }
    }
    for (i, t) in subtitles.iter().enumerate() {
        if let Some(lang) = &t.language {
            cmd = cmd.args([format!("-metadata:s:s:{i}"), format!("language={lang}")]);
        }
    }
    match container {
        Container::Mp4 => {
            if !subtitles.is_empty() {
                cmd = cmd.args(["-c:s", "mov_text"]);
            }
            if video_codec == Some("hevc") {
                cmd = cmd.args(["-tag:v", "hvc1"]);
            }
            // The converted video's Stereo 3D side data (the segments' Matroska StereoMode)
            // becomes MP4's `st3d` box only at this level; Matroska keeps StereoMode as is.
            cmd = cmd.args([
                "-movflags",
                "+faststart",
                "-strict",
                "unofficial",
                "-f",
                "mp4",
            ]);
        }
        Container::Mkv => cmd = cmd.args(["-f", "matroska"]),
    }
    cmd.arg(out)
}

/// The last `frame=` of an ffmpeg `-progress` file.
async fn read_progress_frames(path: &Path) -> Option<u64> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("frame=")?.trim().parse().ok())
}

/// The video codec named by a Matroska file's CodecID (in the header, within the first
/// kilobytes), for the codecs that matter to the container choice.
async fn mkv_video_codec(path: &Path) -> Option<&'static str> {
    use tokio::io::AsyncReadExt as _;
    let mut f = tokio::fs::File::open(path).await.ok()?;
    let mut head = vec![0u8; 64 * 1024];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &head[..n];
    let has = |id: &[u8]| head.windows(id.len()).any(|w| w == id);
    [
        (&b"V_MPEG4/ISO/AVC"[..], "h264"),
        (b"V_MPEGH/ISO/HEVC", "hevc"),
        (b"V_AV1", "av1"),
        (b"V_VP9", "vp9"),
        (b"V_FFV1", "ffv1"),
        (b"V_MS/VFW/FOURCC", "vfw"),
    ]
    .into_iter()
    .find(|(id, _)| has(id))
    .map(|(_, c)| c)
}

/// What a reassembly run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassemblyOutcome {
    /// The result is stored and the job completed.
    Completed {
        /// The result's key.
        output_key: String,
    },
    /// Nothing to do (unknown job, already completed or failed, ...).
    Dropped(String),
}

/// Reassembles one job: the whole step. Retries (leaves the message) while a segment is
/// missing; does nothing for a job that is already completed.
pub async fn reassemble_job(
    backends: &Backends,
    settings: &Settings,
    request: &ReassemblyRequest,
) -> Result<ReassemblyOutcome, HandlerError> {
    let job_id = request.job_id.as_str();
    let Some(job) = backends.jobs.get(job_id).await.retry("reading the job")? else {
        return Ok(ReassemblyOutcome::Dropped("unknown job".into()));
    };
    if job.status.is_terminal() {
        return Ok(ReassemblyOutcome::Dropped(format!(
            "job is already {}",
            job.status
        )));
    }
    let Some(total) = job.total_segments.or(request.total_segments) else {
        return Err(HandlerError::Retry(anyhow::anyhow!(
            "the job has no total_segments yet (chunking not finished)"
        )));
    };
    let completions = backends
        .completions
        .query_by_job(job_id)
        .await
        .retry("reading the completions")?;
    let present: BTreeSet<u32> = completions.iter().map(|c| c.segment_index).collect();
    let missing: Vec<u32> = (0..total).filter(|i| !present.contains(i)).collect();
    if !missing.is_empty() {
        return Err(HandlerError::Retry(anyhow::anyhow!(
            "{} of {total} segments are not converted yet (first missing: {}); retrying later",
            missing.len(),
            missing[0]
        )));
    }
    match backends
        .jobs
        .update(job_id, &JobUpdate::status(JobStatus::Reassembling))
        .await
    {
        Ok(_) => {}
        Err(parallax_core::Error::InvalidTransition { .. }) => {
            return Ok(ReassemblyOutcome::Dropped("job moved on meanwhile".into()))
        }
        Err(e) => {
            return Err(HandlerError::Retry(
                anyhow::Error::new(e).context("updating the job"),
            ))
        }
    }
    let manifest = Manifest::load(backends.storage.as_ref(), job_id)
        .await
        .retry("reading the manifest")?
        .ok_or_else(|| {
            HandlerError::reject(
                "manifest-missing",
                "the segment list of this job is gone; upload the video again",
            )
        })?;
    if manifest.segments.len() != total as usize {
        return Err(HandlerError::reject(
            "segment-count-mismatch",
            format!(
                "the job expects {total} segments but its segment list has {}",
                manifest.segments.len()
            ),
        ));
    }
    let mut output_keys = Vec::with_capacity(total as usize);
    for seg in &manifest.segments {
        let c = completions
            .iter()
            .find(|c| c.segment_index == seg.index)
            .expect("presence checked above");
        if let Some(n) = c.frame_count.filter(|n| *n != seg.frame_count) {
            return Err(HandlerError::reject(
                "segment-frame-mismatch",
                format!(
                    "converted segment {} has {n} frames where its source has {}",
                    seg.index, seg.frame_count
                ),
            ));
        }
        let key = if c.output_uri.is_empty() || c.output_uri.contains("://") {
            keys::output(job_id, seg.index)
        } else {
            c.output_uri.clone()
        };
        output_keys.push(key);
    }

    let dir = tempfile::Builder::new()
        .prefix("reassemble-")
        .tempdir_in(&settings.work_dir)
        .retry("creating a work folder")?;
    // The upload with the audio and subtitles: the original's, for a re-render.
    let src = dir.path().join("source");
    backends
        .storage
        .download(&manifest.source_key(), &src)
        .await
        .retry("downloading the source")?;
    let outputs: Vec<PathBuf> = (0..total)
        .map(|i| dir.path().join(format!("out-{i:05}.mkv")))
        .collect();
    let downloads: Vec<(String, PathBuf)> = output_keys
        .iter()
        .cloned()
        .zip(outputs.iter().cloned())
        .collect();
    let storage = backends.storage.clone();
    try_batched(downloads, 4, |(key, path)| {
        let storage = storage.clone();
        async move { storage.download(&key, &path).await }
    })
    .await
    .retry("downloading the converted segments")?;
    let assembled = assemble(&src, &manifest, &outputs, dir.path(), settings).await?;
    let output_key = keys::final_output(job_id, &file_name(&job, assembled.container));
    backends
        .storage
        .upload(&output_key, &assembled.path)
        .await
        .retry("uploading the result")?;
    let done = JobUpdate {
        status: Some(JobStatus::Completed),
        completed_at: Some(Utc::now()),
        output_key: Some(output_key.clone()),
        ..JobUpdate::default()
    };
    match backends.jobs.update(job_id, &done).await {
        Ok(_) => {}
        Err(parallax_core::Error::InvalidTransition { .. }) => {
            return Ok(ReassemblyOutcome::Dropped("job moved on meanwhile".into()))
        }
        Err(e) => {
            return Err(HandlerError::Retry(
                anyhow::Error::new(e).context("completing the job"),
            ))
        }
    }
    tracing::info!(%output_key, frames = assembled.frame_count, "job completed");
    Ok(ReassemblyOutcome::Completed { output_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parallax_core::model::{ConversionSettings, StereoMode};

    fn track(codec: &str) -> TrackInfo {
        TrackInfo {
            index: 1,
            codec: codec.into(),
            language: None,
            title: None,
            channels: None,
            default: false,
        }
    }

    #[test]
    fn containers_follow_the_streams() {
        assert_eq!(
            choose_container(Some("h264"), &[track("aac")], &[]),
            Container::Mp4
        );
        assert_eq!(
            choose_container(Some("h264"), &[track("aac")], &[track("subrip")]),
            Container::Mp4
        );
        assert_eq!(
            choose_container(Some("h264"), &[track("opus")], &[]),
            Container::Mkv
        );
        assert_eq!(
            choose_container(Some("h264"), &[], &[track("ass")]),
            Container::Mkv
        );
        assert_eq!(choose_container(Some("ffv1"), &[], &[]), Container::Mkv);
    }

    #[test]
    fn file_names_are_slugs_with_the_layout_suffix() {
        let mut job = Job::new(
            "Attack on Titan: S3!",
            StereoMode::FullSbs,
            ConversionSettings::default(),
        );
        assert_eq!(file_name(&job, Container::Mp4), "attack-on-titan-s3_LR.mp4");
        job.mode = StereoMode::HalfTb;
        assert_eq!(
            file_name(&job, Container::Mkv),
            "attack-on-titan-s3_Half_TB.mkv"
        );
        job.title = "  ".into();
        job.mode = StereoMode::Anaglyph;
        assert_eq!(file_name(&job, Container::Mkv), "video_Anaglyph.mkv");
    }
}
