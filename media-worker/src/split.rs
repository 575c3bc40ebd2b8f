//! Cutting a local source into the planned segments: by ffmpeg's segment muxer with stream
//! copy (or a lossless upright re-encode for rotated sources), or in-process from an MP4/MOV
//! index ([`parallax_media::mkv::write_segment`]); every segment's frames are checked
//! against the plan. [`chunk_file`] is the whole of it for one file: inspect, plan, split.

use std::path::{Path, PathBuf};

use parallax_media::mkv;
use parallax_media::mp4::{self, VideoTrack};
use parallax_media::packets::{self, Keyframe};
use parallax_media::process::ToolCommand;

use crate::failure::{HandlerError, RetryContext};
use crate::inspect::{self, Inspection};
use crate::plan::{plan_segments, PlannedSegment};
use crate::settings::Settings;
use crate::source::SourceInfo;

/// Splits `source` into `plan.len()` MKV files `out_dir/00000.mkv`, ... (video only) and
/// checks each one's frame count against the plan. Returns the files in order.
pub async fn split(
    source: &Path,
    info: &SourceInfo,
    keyframes: &[Keyframe],
    plan: &[PlannedSegment],
    out_dir: &Path,
    settings: &Settings,
) -> Result<Vec<PathBuf>, HandlerError> {
    tokio::fs::create_dir_all(out_dir)
        .await
        .retry("creating the segment folder")?;
    let map = format!("0:{}", info.video.index);
    let mut cmd = ToolCommand::ffmpeg(settings.ffmpeg_timeout).args(["-v", "error"]);
    if info.format_name == mp4::FORMAT_NAME && info.video.rotation == 0 {
        // Stream copy from MP4/MOV: the header has every parameter the Matroska muxer
        // needs, so ffmpeg need not decode pictures to probe the streams.
        cmd = cmd.arg("-nofind_stream_info");
    }
    cmd = cmd.arg("-i").arg(source).args([
        "-map",
        &map,
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
    ]);
    let cuts: Vec<String> = plan
        .iter()
        .skip(1)
        .map(|s| s.first_frame.to_string())
        .collect();
    if info.video.rotation != 0 {
        // Autorotation (ffmpeg's default) makes the frames upright; lossless x264 keeps them
        // as they were, and a keyframe is forced at every planned cut.
        let force = if cuts.is_empty() {
            "expr:eq(n,0)".to_owned()
        } else {
            format!(
                "expr:{}",
                plan.iter()
                    .map(|s| format!("eq(n,{})", s.first_frame))
                    .collect::<Vec<_>>()
                    .join("+")
            )
        };
        cmd = cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-qp",
            "0",
            "-bf",
            "0",
            "-fps_mode",
            "passthrough",
            "-force_key_frames",
            &force,
        ]);
    } else {
        cmd = cmd.args(["-c", "copy"]);
    }
    let pattern = out_dir.join("%05d.mkv");
    let single = out_dir.join("00000.mkv");
    let list = out_dir.join("segments.csv");
    if cuts.is_empty() {
        cmd = cmd
            .args(["-write_crc32", "0", "-f", "matroska"])
            .arg(&single);
    } else {
        cmd = cmd
            .args(["-f", "segment", "-segment_format", "matroska"])
            // Matroska's optional CRC-32 elements cost a pass over every byte written.
            .args(["-segment_format_options", "write_crc32=0"])
            .args(["-segment_frames", &cuts.join(",")])
            // Every segment starts at time zero: its place on the timeline is in the manifest,
            // and a file's own start time is not always known to readers (short MKV tails).
            .args(["-reset_timestamps", "1", "-segment_start_number", "0"])
            .arg("-segment_list")
            .arg(&list)
            .args(["-segment_list_type", "csv"])
            .arg(&pattern);
    }
    cmd.run().await.retry("splitting the source with ffmpeg")?;

    let files: Vec<PathBuf> = plan
        .iter()
        .map(|s| out_dir.join(format!("{:05}.mkv", s.index)))
        .collect();
    if cuts.is_empty() {
        let n = packets::count_frames(&single, settings.probe_timeout)
            .await
            .retry("counting the segment's frames")?;
        if n != plan[0].frame_count {
            return Err(split_mismatch(0, Some(n), plan[0].frame_count));
        }
        return Ok(files);
    }
    // The muxer's own list says where each segment really starts; each start must be the
    // planned keyframe (then every segment holds exactly the planned packets).
    let text = tokio::fs::read_to_string(&list)
        .await
        .retry("reading the segment list")?;
    let starts: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split(',').nth(1)?.trim().parse().ok())
        .collect();
    if starts.len() != plan.len() {
        return Err(HandlerError::reject(
            "split-failed",
            format!(
                "ffmpeg cut the video into {} segments where {} were planned; the keyframe flags of the file are inconsistent (re-encode it and upload again)",
                starts.len(),
                plan.len()
            ),
        ));
    }
    let tb = info.video.time_base.as_f64();
    let frame = info
        .video
        .frame_rate
        .map_or(0.002, |r| 1.0 / r.as_f64())
        .max(0.002);
    // The muxer may shift every timestamp by a constant (it keeps decoding times
    // non-negative for B-frames), so the starts are compared up to one small common offset,
    // taken from the first cut and bounded well below a keyframe interval.
    let kf_time = |index: u64| {
        keyframes
            .iter()
            .find(|k| k.packet_index == index)
            .map(|k| k.pts as f64 * tb)
    };
    let first_kf = kf_time(0).unwrap_or(0.0);
    let min_gap = keyframes
        .windows(2)
        .map(|w| (w[1].pts - w[0].pts) as f64 * tb)
        .fold(f64::INFINITY, f64::min);
    let max_offset = (min_gap / 2.0).min(0.5);
    let offset =
        kf_time(plan[1].first_frame).map_or(f64::NAN, |k| (starts[1] - starts[0]) - (k - first_kf));
    if !offset.is_finite() || offset.abs() >= max_offset {
        return Err(split_mismatch(plan[1].index, None, plan[1].frame_count));
    }
    for (seg, t) in plan.iter().zip(&starts).skip(1) {
        let expected = kf_time(seg.first_frame).map(|k| k - first_kf + offset);
        if expected.is_none_or(|e| ((t - starts[0]) - e).abs() >= frame / 2.0) {
            return Err(split_mismatch(seg.index, None, seg.frame_count));
        }
    }
    for f in &files {
        if !tokio::fs::try_exists(f).await.unwrap_or(false) {
            return Err(HandlerError::Retry(anyhow::anyhow!(
                "segment {} was not written",
                f.display()
            )));
        }
    }
    Ok(files)
}

/// Writes the planned segments from the source's MP4/MOV index without ffmpeg: each segment
/// holds exactly its planned samples, the first of which must be a keyframe.
pub async fn split_in_process(
    source: &Path,
    track: std::sync::Arc<VideoTrack>,
    plan: &[PlannedSegment],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, HandlerError> {
    tokio::fs::create_dir_all(out_dir)
        .await
        .retry("creating the segment folder")?;
    for seg in plan {
        let starts_on_key = track
            .samples
            .get(seg.first_frame as usize)
            .is_some_and(|s| s.key);
        if !starts_on_key || seg.first_frame + seg.frame_count > track.samples.len() as u64 {
            return Err(split_mismatch(seg.index, None, seg.frame_count));
        }
    }
    let files: Vec<PathBuf> = plan
        .iter()
        .map(|s| out_dir.join(format!("{:05}.mkv", s.index)))
        .collect();
    let jobs: Vec<(PlannedSegment, PathBuf)> = plan.iter().cloned().zip(files.clone()).collect();
    let source = source.to_owned();
    let written = tokio::task::spawn_blocking(move || {
        jobs.iter()
            .map(|(seg, file)| {
                mkv::write_segment(
                    &source,
                    &track,
                    seg.first_frame as usize,
                    seg.frame_count as usize,
                    file,
                )
            })
            .collect::<parallax_media::Result<Vec<u64>>>()
    })
    .await
    .retry("writing the segments")?
    .retry("writing the segments")?;
    for (seg, n) in plan.iter().zip(written) {
        if n != seg.frame_count {
            return Err(split_mismatch(seg.index, Some(n), seg.frame_count));
        }
    }
    Ok(files)
}

fn split_mismatch(index: u32, got: Option<u64>, planned: u64) -> HandlerError {
    HandlerError::reject(
        "split-failed",
        format!(
            "segment {index} does not hold the {planned} planned frames{}; the file cannot be cut without losing frames (re-encode it and upload again)",
            got.map_or(String::new(), |g| format!(" (it has {g})"))
        ),
    )
}

/// The pure part of chunking: inspect, plan and split a local file. Returns the probe, the
/// plan and the segment files.
pub async fn chunk_file(
    source: &Path,
    out_dir: &Path,
    settings: &Settings,
) -> Result<(Inspection, Vec<PlannedSegment>, Vec<PathBuf>), HandlerError> {
    let inspection = inspect::inspect_headers(source, settings).await?;
    let info = &inspection.info;
    let plan = plan_segments(
        &inspection.scan,
        info.video.time_base.as_f64(),
        settings.segment_secs,
    );
    let total: u64 = plan.iter().map(|s| s.frame_count).sum();
    if total != info.video.frame_count {
        return Err(HandlerError::Retry(anyhow::anyhow!(
            "planned {total} frames for a source of {}",
            info.video.frame_count
        )));
    }
    let splitting = async {
        match &inspection.video_track {
            // Stream copy from an MP4/MOV index: the segments are written in-process.
            Some(track) if info.video.rotation == 0 => {
                split_in_process(source, track.clone(), &plan, out_dir).await
            }
            _ => {
                split(
                    source,
                    info,
                    &inspection.scan.keyframes,
                    &plan,
                    out_dir,
                    settings,
                )
                .await
            }
        }
    };
    let files = if inspection.pictures_checked {
        splitting.await?
    } else {
        // The index path has not decoded any picture yet: decode the first ones while the
        // split runs (two processes side by side), and refuse the file if they do not decode,
        // before anything is uploaded or sent.
        let (files, pictures) = tokio::join!(splitting, inspect::check_pictures(source, settings));
        pictures?;
        files?
    };
    Ok((inspection, plan, files))
}
