//! Looking at a source before any work: the streams, the exact frame count, the keyframes and
//! where a cut is clean, and the checks that turn hostile or broken uploads into a
//! [`Rejection`] with a stable code. The facts come from the media crate: MP4/MOV indexes are
//! read in-process ([`parallax_media::mp4`]); everything else goes through ffprobe (its JSON
//! in [`parallax_media::schema`]'s typed structs, plus one pass over the video packets,
//! [`parallax_media::packets::scan`]). Both paths feed the same checks here.

use std::path::Path;

use parallax_media::mp4;
use parallax_media::packets::{self, PacketScan};
use parallax_media::probe;
use parallax_media::process::{ProcessError, ToolCommand};
use parallax_media::schema::{ProbeJson, StreamJson};

use crate::failure::{HandlerError, Rejection, RetryContext};
use crate::settings::Settings;
use crate::source::{SourceInfo, TrackInfo, VideoInfo};

/// Whether the file starts like an ISO-BMFF (MP4/MOV) file: a `ftyp` box first.
fn looks_like_mp4(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 12];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|_| &head[4..8] == b"ftyp" || &head[4..8] == b"wide" || &head[4..8] == b"mdat")
        .unwrap_or(false)
}

/// Checks the size limit and that the file is not empty (before anything is run on it).
pub fn check_size(size: u64, settings: &Settings) -> Result<(), Rejection> {
    if size == 0 {
        return Err(Rejection::new(
            "empty-file",
            "the uploaded file is empty (0 bytes); upload the video again",
        ));
    }
    if size > settings.max_size_bytes {
        return Err(Rejection::new(
            "too-large",
            format!(
                "the file is {} and the limit is {}; shorten or compress the video",
                human_bytes(size),
                human_bytes(settings.max_size_bytes)
            ),
        ));
    }
    Ok(())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Picks the video stream (the first that is not cover art) and the audio and subtitle
/// tracks; refuses files without video. The packet-level facts are filled in later.
pub fn classify(
    json: &ProbeJson,
) -> Result<(&StreamJson, Vec<TrackInfo>, Vec<TrackInfo>), Rejection> {
    let video = json
        .streams
        .iter()
        .find(|s| s.kind() == "video" && !s.flag("attached_pic"));
    let audio: Vec<_> = json
        .streams
        .iter()
        .filter(|s| s.kind() == "audio")
        .map(TrackInfo::from_stream)
        .collect();
    let subtitles: Vec<_> = json
        .streams
        .iter()
        .filter(|s| s.kind() == "subtitle")
        .map(TrackInfo::from_stream)
        .collect();
    let Some(video) = video else {
        let what = if audio.is_empty() {
            "no video stream".to_owned()
        } else {
            format!("only audio ({} track(s)) and no video", audio.len())
        };
        return Err(Rejection::new(
            "no-video-stream",
            format!("the file has {what}; upload a video file"),
        ));
    };
    Ok((video, audio, subtitles))
}

/// Checks duration and resolution against the limits.
pub fn check_limits(
    duration_secs: f64,
    width: u32,
    height: u32,
    settings: &Settings,
) -> Result<(), Rejection> {
    if duration_secs > settings.max_duration_secs {
        return Err(Rejection::new(
            "too-long",
            format!(
                "the video lasts {} and the limit is {}; cut it into shorter parts",
                hms(duration_secs),
                hms(settings.max_duration_secs)
            ),
        ));
    }
    let (long, short) = (width.max(height), width.min(height));
    let (max_long, max_short) = (
        settings.max_width.max(settings.max_height),
        settings.max_width.min(settings.max_height),
    );
    if long > max_long || short > max_short {
        return Err(Rejection::new(
            "resolution-too-high",
            format!(
                "the video is {width}x{height} and the limit is {}x{}; scale it down first",
                settings.max_width, settings.max_height
            ),
        ));
    }
    if width == 0 || height == 0 {
        return Err(Rejection::new(
            "undecodable",
            "the video stream declares no picture size; the file is damaged",
        ));
    }
    Ok(())
}

fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Turns ffprobe's failure on a file into a rejection, or a retry when the tool itself is at
/// fault (missing, killed by the timeout).
fn probe_failure(path: &Path, e: parallax_media::Error) -> HandlerError {
    match &e {
        // ffprobe read the file but printed no JSON that parses: not a file it understands.
        parallax_media::Error::Output { .. } => HandlerError::reject(
            "not-a-video",
            "the file is not a video format that can be read",
        ),
        parallax_media::Error::Process(ProcessError::Failed { stderr_tail, .. }) => {
            if stderr_tail.contains("moov atom not found") && looks_like_mp4(path) {
                missing_index()
            } else {
                HandlerError::reject(
                    "not-a-video",
                    "the file is not a video format that can be read (not a media file, or damaged)",
                )
            }
        }
        _ => HandlerError::Retry(anyhow::Error::new(e).context("running ffprobe")),
    }
}

/// A probed source: the facts saved in the manifest and the packet scan that chunking plans
/// its cuts from.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// What the manifest keeps.
    pub info: SourceInfo,
    /// Keyframes and frame count.
    pub scan: PacketScan,
    /// Whether the first pictures were decoded already. The index path leaves that to the
    /// caller, which runs [`check_pictures`] next to the split (see [`inspect_headers`]).
    pub pictures_checked: bool,
    /// Which path read the source: `index` (in-process MP4/MOV index) or `ffprobe`.
    pub via: &'static str,
    /// The video samples' places in the file (index path), for splitting in-process.
    pub video_track: Option<std::sync::Arc<mp4::VideoTrack>>,
}

/// Probes `path` and applies every check, the decoding of the first pictures included.
pub async fn inspect(path: &Path, settings: &Settings) -> Result<Inspection, HandlerError> {
    let inspection = inspect_headers(path, settings).await?;
    if !inspection.pictures_checked {
        check_pictures(path, settings).await?;
    }
    Ok(inspection)
}

/// Probes `path` and applies every check that the headers and the packet index allow. MP4
/// and MOV files are read in-process ([`mp4`]), with no process at all, and then
/// `pictures_checked` is false: the caller must still run [`check_pictures`] before using
/// the file (chunking runs it next to the split, in parallel). Everything else, and any
/// MP4 the reader does not fully understand, goes through [`inspect_with_ffprobe`].
pub async fn inspect_headers(path: &Path, settings: &Settings) -> Result<Inspection, HandlerError> {
    let size = tokio::fs::metadata(path)
        .await
        .retry("reading the source's size")?
        .len();
    check_size(size, settings)?;
    let owned = path.to_owned();
    let read = tokio::task::spawn_blocking(move || mp4::read(&owned))
        .await
        .retry("reading the source's index")?;
    match read {
        Ok(mp4::Read::Index(p)) => {
            let mp4::Mp4Probe {
                json,
                scan,
                truncated,
                video,
            } = *p;
            let declared = scan.count;
            let truncated = truncated.map(|present| (present, Some(declared)));
            let mut inspection = evaluate(&json, scan, truncated, size, settings, false, "index")?;
            inspection.video_track = video.map(std::sync::Arc::new);
            Ok(inspection)
        }
        Ok(mp4::Read::MissingIndex) => Err(missing_index()),
        Ok(mp4::Read::Unsupported(why)) => {
            tracing::debug!(reason = %why, "index not read in-process; asking ffprobe");
            inspect_with_ffprobe(path, settings).await
        }
        Err(e) => Err(HandlerError::Retry(
            anyhow::Error::new(e).context("reading the source's index"),
        )),
    }
}

fn missing_index() -> HandlerError {
    HandlerError::reject(
        "undecodable",
        "the MP4/MOV file is incomplete (its index is missing, the upload was probably cut off); upload it again",
    )
}

/// The ffprobe path: container/stream probe, packet pass and a decode of the first pictures,
/// run together (three processes). Works for every container ffmpeg reads.
pub async fn inspect_with_ffprobe(
    path: &Path,
    settings: &Settings,
) -> Result<Inspection, HandlerError> {
    let size = tokio::fs::metadata(path)
        .await
        .retry("reading the source's size")?
        .len();
    check_size(size, settings)?;
    // The container/stream probe, the packet pass and a decode of the first pictures are
    // independent: run them together. `V:0` is the first video stream that is not cover art,
    // the one `classify` picks.
    let (json, scanned, decodes) = tokio::join!(
        probe::format_and_streams(path, settings.probe_timeout),
        packets::scan(path, "V:0", settings.probe_timeout),
        check_decodes(path, "0:V:0", settings)
    );
    let json = json.map_err(|e| probe_failure(path, e))?;
    if json.format.is_none() && json.streams.is_empty() {
        return Err(HandlerError::reject(
            "not-a-video",
            "the file is not a video format that can be read",
        ));
    }
    // Header-level rejections come first, whatever the packet pass said.
    let (video, _, _) = classify(&json)?;
    let format = json.format.clone().unwrap_or_default();
    let declared_duration = format.duration_secs().or_else(|| video.duration_secs());
    check_limits(
        declared_duration.unwrap_or(0.0),
        video.width.unwrap_or(0),
        video.height.unwrap_or(0),
        settings,
    )?;
    let (scan, stderr) = scanned.retry("scanning the video packets")?;
    let cut = ["partial file", "ended prematurely", "truncat"]
        .iter()
        .any(|m| stderr.contains(m));
    let declared_frames = video.declared_frames();
    let truncated = (cut || declared_frames.is_some_and(|d| d > scan.count))
        .then_some((scan.count, declared_frames));
    let mut inspection = evaluate(&json, scan, truncated, size, settings, true, "ffprobe")?;
    decodes?;
    inspection.pictures_checked = true;
    Ok(inspection)
}

/// The checks and facts common to both paths. `truncated` is (video frames present, frames
/// the index declares) for a cut-off file.
fn evaluate(
    json: &ProbeJson,
    scan: PacketScan,
    truncated: Option<(u64, Option<u64>)>,
    size: u64,
    settings: &Settings,
    pictures_checked: bool,
    via: &'static str,
) -> Result<Inspection, HandlerError> {
    if json.format.is_none() && json.streams.is_empty() {
        return Err(HandlerError::reject(
            "not-a-video",
            "the file is not a video format that can be read",
        ));
    }
    let (video, audio, subtitles) = classify(json)?;
    // A picture the engine cannot convert is refused now, before any work (an unknown pixel
    // format is left to the decode check).
    if let Some(pix_fmt) = video.pix_fmt.as_deref() {
        parallax_core::picture::check(Some(pix_fmt), video.color_transfer.as_deref())
            .map_err(|u| HandlerError::reject(u.code, u.message))?;
    }
    let format = json.format.clone().unwrap_or_default();
    let format_name = format.format_name.clone().unwrap_or_default();
    let declared_duration = format.duration_secs().or_else(|| video.duration_secs());
    let (width, height) = (video.width.unwrap_or(0), video.height.unwrap_or(0));
    check_limits(declared_duration.unwrap_or(0.0), width, height, settings)?;

    let time_base = video
        .time_base()
        .ok_or_else(|| HandlerError::reject("undecodable", "the video stream has no time base"))?;
    if scan.count <= 1 || format_name.ends_with("_pipe") || format_name == "image2" {
        return Err(HandlerError::reject(
            "not-a-video",
            "the file is a still picture, not a video",
        ));
    }
    if scan.count > settings.max_frames {
        return Err(HandlerError::reject(
            "too-many-frames",
            format!(
                "the video has {} frames and the limit is {}; shorten it or lower its frame rate",
                scan.count, settings.max_frames
            ),
        ));
    }
    if let Some((present, declared)) = truncated {
        return Err(HandlerError::reject(
            "undecodable",
            format!(
                "the file is truncated: {present} of {} video frames are present (the upload was probably cut off); upload it again",
                declared.map_or("the expected".to_owned(), |d| d.to_string())
            ),
        ));
    }
    if !scan.starts_with_keyframe {
        return Err(HandlerError::reject(
            "undecodable",
            "the video does not start with a keyframe (a recording cut mid-stream?); re-encode it and upload again",
        ));
    }
    if scan.discarded > 0 {
        return Err(HandlerError::reject(
            "unsupported-edit-list",
            "the file's edit list hides part of the video; re-mux it (e.g. ffmpeg -i in.mp4 -c copy out.mkv) and upload again",
        ));
    }

    let tb = time_base.as_f64();
    let first = scan.first_pts.unwrap_or(0);
    let start_secs = first as f64 * tb;
    let end_secs = scan.end_pts.map_or(start_secs, |e| e as f64 * tb);
    let duration_secs = declared_duration.unwrap_or(end_secs - start_secs);
    check_limits(duration_secs, width, height, settings)?;
    let frame_rate = video.frame_rate();
    // Packet durations are not always stored (MKV), so also compare the frame count with
    // what the nominal rate gives over the stream's span.
    let span_frames = frame_rate.map(|r| (end_secs - start_secs) * r.as_f64());
    let variable_frame_rate =
        scan.variable_durations || span_frames.is_some_and(|f| (f - scan.count as f64).abs() > 1.5);
    let info = SourceInfo {
        format_name,
        duration_secs,
        start_secs: format.start_secs().unwrap_or(start_secs),
        size_bytes: size,
        video: VideoInfo {
            index: video.index,
            codec: video.codec_name.clone().unwrap_or_default(),
            width,
            height,
            pix_fmt: video.pix_fmt.clone(),
            rotation: video.rotation(),
            frame_rate,
            avg_frame_rate: video.avg_frame_rate(),
            time_base,
            frame_count: scan.count,
            variable_frame_rate,
            start_secs,
            end_secs,
        },
        audio,
        subtitles,
    };
    Ok(Inspection {
        info,
        scan,
        pictures_checked,
        via,
        video_track: None,
    })
}

/// Decodes the first pictures of the first video stream: a file whose headers parse but whose
/// pictures do not is refused with `undecodable`.
pub async fn check_pictures(path: &Path, settings: &Settings) -> Result<(), HandlerError> {
    // The MP4/MOV header carries every parameter a decoder needs: no stream-info probing.
    decode_first(path, "0:V:0", &["-nofind_stream_info"], settings).await
}

/// Decodes the first frames of the video: a file whose headers parse but whose pictures do
/// not is refused before it is split.
async fn check_decodes(path: &Path, map: &str, settings: &Settings) -> Result<(), HandlerError> {
    decode_first(path, map, &[], settings).await
}

async fn decode_first(
    path: &Path,
    map: &str,
    input_options: &[&str],
    settings: &Settings,
) -> Result<(), HandlerError> {
    // One decoding thread: three pictures do not pay for starting a thread pool. Each
    // decoded picture comes out as 8x8 grey bytes, so the pictures are counted: a stream
    // whose packets decode to nothing (ffmpeg may still exit cleanly) is refused here, not
    // left for an encoder to fail on in a segment later.
    let res = ToolCommand::ffmpeg(settings.probe_timeout)
        .args(["-v", "error", "-xerror", "-threads", "1"])
        .args(input_options)
        .arg("-i")
        .arg(path)
        .args([
            "-map",
            map,
            "-frames:v",
            "3",
            "-vf",
            "scale=8:8,format=gray",
        ])
        .args(["-f", "rawvideo", "-"])
        .output()
        .await;
    match res {
        Ok(out) if out.stdout.len() < 64 => Err(HandlerError::reject(
            "no-video-frames",
            "the video stream has no picture that can be decoded; re-encode it and upload again",
        )),
        Ok(_) => Ok(()),
        Err(ProcessError::Failed { stderr_tail, .. }) => Err(HandlerError::reject(
            "undecodable",
            format!(
                "the video's pictures cannot be decoded ({}); re-encode it and upload again",
                stderr_tail.lines().last().unwrap_or("unknown error")
            ),
        )),
        Err(e) => Err(HandlerError::Retry(
            anyhow::Error::new(e).context("decoding the first frames"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_have_codes() {
        let s = Settings {
            max_duration_secs: 60.0,
            max_width: 1920,
            max_height: 1080,
            max_size_bytes: 1000,
            ..Settings::default()
        };
        assert_eq!(check_size(0, &s).unwrap_err().code, "empty-file");
        assert_eq!(check_size(1001, &s).unwrap_err().code, "too-large");
        check_size(1000, &s).unwrap();
        assert_eq!(
            check_limits(61.0, 640, 480, &s).unwrap_err().code,
            "too-long"
        );
        assert_eq!(
            check_limits(10.0, 3840, 2160, &s).unwrap_err().code,
            "resolution-too-high"
        );
        // Portrait within the limit in either orientation.
        check_limits(10.0, 1080, 1920, &s).unwrap();
    }
}
