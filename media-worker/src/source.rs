//! What chunking and reassembly know about a source, saved in the manifest: its container,
//! its video stream (with the exact frame count) and its audio and subtitle tracks.

use parallax_media::schema::{Rational, StreamJson};
use serde::{Deserialize, Serialize};

/// An audio or subtitle track of the source, as reassembly needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Absolute stream index in the source.
    pub index: u32,
    /// Codec name.
    pub codec: String,
    /// ISO 639 language tag, when the source has one.
    #[serde(default)]
    pub language: Option<String>,
    /// Track title, when the source has one.
    #[serde(default)]
    pub title: Option<String>,
    /// Audio channels.
    #[serde(default)]
    pub channels: Option<u32>,
    /// The default track of its kind.
    #[serde(default)]
    pub default: bool,
}

impl TrackInfo {
    /// The track as ffprobe describes it.
    pub fn from_stream(s: &StreamJson) -> Self {
        Self {
            index: s.index,
            codec: s.codec_name.clone().unwrap_or_default(),
            language: s.tag("language").map(str::to_owned),
            title: s.tag("title").map(str::to_owned),
            channels: s.channels,
            default: s.flag("default"),
        }
    }
}

/// The video stream of the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// Absolute stream index in the source.
    pub index: u32,
    /// Codec name.
    pub codec: String,
    /// Coded width (before rotation).
    pub width: u32,
    /// Coded height (before rotation).
    pub height: u32,
    /// Pixel format.
    #[serde(default)]
    pub pix_fmt: Option<String>,
    /// Clockwise rotation for upright display (0, 90, 180, 270).
    #[serde(default)]
    pub rotation: u32,
    /// Base frame rate.
    #[serde(default)]
    pub frame_rate: Option<Rational>,
    /// Average frame rate.
    #[serde(default)]
    pub avg_frame_rate: Option<Rational>,
    /// Stream time base.
    pub time_base: Rational,
    /// Exact number of frames (counted, not estimated).
    pub frame_count: u64,
    /// Whether frame durations vary (variable frame rate).
    #[serde(default)]
    pub variable_frame_rate: bool,
    /// First presentation time of the video, in seconds.
    pub start_secs: f64,
    /// End of the last frame, in seconds.
    pub end_secs: f64,
}

/// Everything chunking and reassembly need to know about a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// ffprobe's container name.
    pub format_name: String,
    /// Container duration in seconds.
    pub duration_secs: f64,
    /// Container start time in seconds (the earliest stream start).
    #[serde(default)]
    pub start_secs: f64,
    /// File size in bytes.
    pub size_bytes: u64,
    /// The video stream.
    pub video: VideoInfo,
    /// Every audio track.
    #[serde(default)]
    pub audio: Vec<TrackInfo>,
    /// Every subtitle track.
    #[serde(default)]
    pub subtitles: Vec<TrackInfo>,
}
