//! The media-worker's own knobs (limits, segment length, timeouts), as a clap block with an
//! environment fallback for every flag, and the plain [`Settings`] the library uses.

use std::path::PathBuf;
use std::time::Duration;

/// media-worker flags (flattened into the binary's CLI next to core's `CommonArgs`).
#[derive(Debug, Clone, clap::Args)]
pub struct MediaArgs {
    /// Target segment length in seconds. Segments start on keyframes, so a segment is at least
    /// this long (longer when keyframes are far apart), except the last one.
    #[arg(long, env = "SEGMENT_SECS", default_value_t = 10.0)]
    pub segment_secs: f64,

    /// Longest accepted source, in seconds (longer uploads fail with `too-long`).
    #[arg(long, env = "MAX_DURATION_SECS", default_value_t = 4.0 * 3600.0)]
    pub max_duration_secs: f64,

    /// Widest accepted video, in pixels (the longer side; `resolution-too-high` beyond).
    #[arg(long, env = "MAX_WIDTH", default_value_t = 7680)]
    pub max_width: u32,

    /// Tallest accepted video, in pixels (the shorter side; `resolution-too-high` beyond).
    #[arg(long, env = "MAX_HEIGHT", default_value_t = 4320)]
    pub max_height: u32,

    /// Largest accepted upload, in bytes (`too-large` beyond). Default 20 GiB.
    #[arg(long, env = "MAX_SIZE_BYTES", default_value_t = 20 * 1024 * 1024 * 1024)]
    pub max_size_bytes: u64,

    /// Most video frames accepted in one source (`too-many-frames` beyond).
    #[arg(long, env = "MAX_FRAMES", default_value_t = 1_000_000)]
    pub max_frames: u64,

    /// Seconds an ffprobe run may take before it is killed.
    #[arg(long, env = "PROBE_TIMEOUT_SECS", default_value_t = 300)]
    pub probe_timeout_secs: u64,

    /// Seconds an ffmpeg run (split, concat, mux) may take before it is killed.
    #[arg(long, env = "FFMPEG_TIMEOUT_SECS", default_value_t = 3600)]
    pub ffmpeg_timeout_secs: u64,

    /// Frames from the end of the previous segment that the video-worker runs through its
    /// depth model before a segment, so depth stays continuous across the seam.
    #[arg(long, env = "SEAM_WARMUP_FRAMES", default_value_t = 30)]
    pub seam_warmup_frames: u32,

    /// Folder for temporary files (downloads, segments, the result). Default: the system's
    /// temporary folder.
    #[arg(long, env = "WORK_DIR")]
    pub work_dir: Option<PathBuf>,

    /// Seconds to let the current message finish after SIGTERM before it is released
    /// (made visible again) for another worker.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// At most this many ffmpeg/ffprobe processes at once in this process.
    #[arg(long, env = "MAX_TOOL_PROCESSES", default_value_t = 4)]
    pub max_tool_processes: usize,
}

impl MediaArgs {
    /// Checks the flags and turns them into [`Settings`]; the error names the bad flag.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        anyhow::ensure!(
            self.segment_secs.is_finite() && self.segment_secs >= 0.5,
            "--segment-secs must be at least 0.5 seconds"
        );
        anyhow::ensure!(
            self.max_duration_secs.is_finite() && self.max_duration_secs > 0.0,
            "--max-duration-secs must be positive"
        );
        anyhow::ensure!(
            self.max_width > 0 && self.max_height > 0,
            "--max-width and --max-height must be positive"
        );
        anyhow::ensure!(self.max_frames > 0, "--max-frames must be positive");
        anyhow::ensure!(
            self.probe_timeout_secs > 0 && self.ffmpeg_timeout_secs > 0,
            "--probe-timeout-secs and --ffmpeg-timeout-secs must be positive"
        );
        Ok(Settings {
            segment_secs: self.segment_secs,
            max_duration_secs: self.max_duration_secs,
            max_width: self.max_width,
            max_height: self.max_height,
            max_size_bytes: self.max_size_bytes,
            max_frames: self.max_frames,
            probe_timeout: Duration::from_secs(self.probe_timeout_secs),
            ffmpeg_timeout: Duration::from_secs(self.ffmpeg_timeout_secs),
            seam_warmup_frames: self.seam_warmup_frames,
            work_dir: self.work_dir.clone().unwrap_or_else(std::env::temp_dir),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        })
    }
}

/// What the library needs to know (see [`MediaArgs`] for each field's meaning).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Target segment length in seconds.
    pub segment_secs: f64,
    /// Longest accepted source in seconds.
    pub max_duration_secs: f64,
    /// Longer side limit in pixels.
    pub max_width: u32,
    /// Shorter side limit in pixels.
    pub max_height: u32,
    /// Upload size limit in bytes.
    pub max_size_bytes: u64,
    /// Frame count limit.
    pub max_frames: u64,
    /// ffprobe timeout.
    pub probe_timeout: Duration,
    /// ffmpeg timeout.
    pub ffmpeg_timeout: Duration,
    /// Seam warm-up frames for the video-worker.
    pub seam_warmup_frames: u32,
    /// Folder for temporary files.
    pub work_dir: PathBuf,
    /// Grace period after SIGTERM.
    pub shutdown_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            segment_secs: 10.0,
            max_duration_secs: 4.0 * 3600.0,
            max_width: 7680,
            max_height: 4320,
            max_size_bytes: 20 * 1024 * 1024 * 1024,
            max_frames: 1_000_000,
            probe_timeout: Duration::from_secs(300),
            ffmpeg_timeout: Duration::from_secs(3600),
            seam_warmup_frames: 30,
            work_dir: std::env::temp_dir(),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}
