//! Making sample clips and measuring results with ffmpeg/ffprobe (through the media crate's
//! process wrapper). `make demo`'s and the fleet bench's sample clips are made here too
//! ([`make_clip`], [`probe`]), so this part is not test-only.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use parallax_media::process::ToolCommand;

/// A sample clip's shape.
#[derive(Debug, Clone)]
pub struct ClipSpec {
    /// Seconds.
    pub seconds: f64,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Frame rate as ffmpeg understands it (`24`, `30000/1001`).
    pub fps: String,
    /// Audio tracks, each with a language tag.
    pub audio_languages: Vec<String>,
    /// x264 preset.
    pub preset: String,
}

impl ClipSpec {
    /// A small clip for tests: 320x180, 24 fps, one English audio track.
    pub fn small(seconds: f64) -> Self {
        Self {
            seconds,
            width: 320,
            height: 180,
            fps: "24".into(),
            audio_languages: vec!["eng".into()],
            preset: "veryfast".into(),
        }
    }
}

/// Writes a clip (moving test pattern with depth-ish structure + sine tones) as MP4.
pub async fn make_clip(path: &Path, spec: &ClipSpec) -> Result<()> {
    let mut cmd = ToolCommand::ffmpeg(Duration::from_secs(600)).args([
        "-f".to_owned(),
        "lavfi".to_owned(),
        "-i".to_owned(),
        format!(
            "testsrc2=size={}x{}:rate={}:duration={}",
            spec.width, spec.height, spec.fps, spec.seconds
        ),
    ]);
    for (i, _) in spec.audio_languages.iter().enumerate() {
        cmd = cmd.args([
            "-f".to_owned(),
            "lavfi".to_owned(),
            "-i".to_owned(),
            format!(
                "sine=frequency={}:sample_rate=48000:duration={}",
                440 + 220 * i,
                spec.seconds
            ),
        ]);
    }
    cmd = cmd.args(["-map", "0:v"]);
    for (i, lang) in spec.audio_languages.iter().enumerate() {
        cmd = cmd.args([
            "-map".to_owned(),
            format!("{}:a", i + 1),
            format!("-metadata:s:a:{i}"),
            format!("language={lang}"),
        ]);
    }
    cmd = cmd
        .args([
            "-c:v",
            "libx264",
            "-preset",
            &spec.preset,
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", "48", "-c:a", "aac", "-b:a", "96k", "-shortest"])
        .arg(path.as_os_str());
    cmd.run().await.context("making the sample clip")?;
    Ok(())
}

/// Writes a true variable-frame-rate clip with one audio track as MP4: a 30 fps pattern
/// with frames left out (three of every thirteen) and irregular extra gaps (61 ms after every
/// fourth frame kept), so the container's nominal rate (30) is far from its average.
pub async fn make_vfr_clip(path: &Path, seconds: f64) -> Result<()> {
    ToolCommand::ffmpeg(Duration::from_secs(600))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x180:rate=30:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-vf",
            "select='not(between(mod(n,13),3,5))',setpts='(N*0.033+floor(N/4)*0.061)/TB'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
        ])
        .arg(path.as_os_str())
        .run()
        .await
        .context("making the variable-frame-rate clip")?;
    Ok(())
}

/// The presentation times of `path`'s first video stream's frames, in seconds, sorted.
pub async fn frame_times(path: &Path) -> Result<Vec<f64>> {
    let out = ToolCommand::ffprobe(Duration::from_secs(300))
        .args([
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path.as_os_str())
        .output()
        .await
        .with_context(|| format!("reading the frame times of {}", path.display()))?;
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// The largest difference between two lists of frame times, each taken from its own first
/// frame; `Err` when they hold different numbers of frames.
pub fn frame_time_error(a: &[f64], b: &[f64]) -> Result<f64, String> {
    if a.len() != b.len() || a.is_empty() {
        return Err(format!("{} frames against {}", a.len(), b.len()));
    }
    Ok(a.iter()
        .zip(b)
        .map(|(x, y)| ((x - a[0]) - (y - b[0])).abs())
        .fold(0.0, f64::max))
}

/// `HH:MM:SS.fraction` (Matroska's DURATION tag) in seconds.
fn clock_secs(v: &str) -> Option<f64> {
    let mut parts = v.split(':').rev();
    let s: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next().unwrap_or("0").parse().ok()?;
    let h: f64 = parts.next().unwrap_or("0").parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Start time and duration (seconds) of each stream of `path`, by type (`video`, `audio`).
pub async fn stream_spans(path: &Path) -> Result<Vec<(String, f64, f64)>> {
    let json = parallax_media::probe::format_and_streams(path, Duration::from_secs(300))
        .await
        .with_context(|| format!("probing {}", path.display()))?;
    let format_duration = json
        .format
        .as_ref()
        .and_then(|f| f.duration_secs())
        .unwrap_or(0.0);
    Ok(json
        .streams
        .iter()
        .map(|s| {
            let start = s.start_secs().unwrap_or(0.0);
            let duration = s
                .duration_secs()
                .or_else(|| s.tag("DURATION").and_then(clock_secs))
                .unwrap_or(format_duration);
            (s.kind().to_owned(), start, duration)
        })
        .collect())
}

/// What the tests check of a video file.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Video frames (counted).
    pub frames: u64,
    /// Container duration in seconds.
    pub duration: f64,
    /// Video width.
    pub width: u32,
    /// Video height.
    pub height: u32,
    /// Language tags of the audio tracks, in order.
    pub audio_languages: Vec<String>,
}

/// Probes `path`, counting video frames exactly (by decoding them all).
pub async fn probe(path: &Path) -> Result<Probe> {
    let json = parallax_media::probe::json(
        path,
        Duration::from_secs(300),
        &["-count_frames", "-show_streams", "-show_format"],
    )
    .await
    .with_context(|| format!("probing {}", path.display()))?;
    let video = json
        .streams
        .iter()
        .find(|s| s.kind() == "video")
        .context("no video stream")?;
    Ok(Probe {
        frames: video
            .decoded_frames()
            .context("ffprobe counted no frames")?,
        duration: json
            .format
            .as_ref()
            .and_then(|f| f.duration_secs())
            .unwrap_or(0.0),
        width: video.width.unwrap_or(0),
        height: video.height.unwrap_or(0),
        audio_languages: json
            .streams
            .iter()
            .filter(|s| s.kind() == "audio")
            .map(|s| s.tag("language").unwrap_or("").to_owned())
            .collect(),
    })
}
