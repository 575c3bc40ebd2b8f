//! Looking at a source before any work: the streams, the exact frame count, the keyframes and
//! where a cut is clean, and the checks that turn hostile or broken uploads into a
//! [`Rejection`] with a stable code. MP4/MOV indexes are read in-process ([`crate::mp4`]);
//! everything else goes through ffprobe (its JSON parsed into typed structs, plus one pass
//! over the video packets). Both paths feed the same checks.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use parallax_media::process::{ProcessError, ToolCommand};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::failure::{Failure, Rejection, RetryContext};
use crate::settings::Settings;

/// `ffprobe -show_format -show_streams -of json` output.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProbeJson {
    /// Every stream of the file.
    #[serde(default)]
    pub streams: Vec<StreamJson>,
    /// The container.
    #[serde(default)]
    pub format: Option<FormatJson>,
}

/// One stream as ffprobe prints it (numbers that ffprobe prints as strings stay strings here
/// and are parsed by the accessors).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamJson {
    /// Absolute stream index in the file.
    pub index: u32,
    /// `video`, `audio`, `subtitle`, `data`, `attachment`.
    #[serde(default)]
    pub codec_type: Option<String>,
    /// `h264`, `hevc`, `aac`, `subrip`, ...
    #[serde(default)]
    pub codec_name: Option<String>,
    /// Width in pixels (video).
    #[serde(default)]
    pub width: Option<u32>,
    /// Height in pixels (video).
    #[serde(default)]
    pub height: Option<u32>,
    /// Pixel format (video), e.g. `yuv420p10le`.
    #[serde(default)]
    pub pix_fmt: Option<String>,
    /// Transfer function (video), e.g. `bt709`, `smpte2084`.
    #[serde(default)]
    pub color_transfer: Option<String>,
    /// Audio channels.
    #[serde(default)]
    pub channels: Option<u32>,
    /// Base frame rate, e.g. `30000/1001`.
    #[serde(default)]
    pub r_frame_rate: Option<String>,
    /// Average frame rate.
    #[serde(default)]
    pub avg_frame_rate: Option<String>,
    /// Time base, e.g. `1/1000`.
    #[serde(default)]
    pub time_base: Option<String>,
    /// Start time in seconds.
    #[serde(default)]
    pub start_time: Option<String>,
    /// Duration in seconds.
    #[serde(default)]
    pub duration: Option<String>,
    /// Frame count declared by the container (MP4/MOV), when it declares one.
    #[serde(default)]
    pub nb_frames: Option<String>,
    /// Dispositions (0/1 flags).
    #[serde(default)]
    pub disposition: BTreeMap<String, i64>,
    /// Tags (`language`, `title`, `rotate`, ...).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Side data (the display matrix carries the rotation).
    #[serde(default)]
    pub side_data_list: Vec<SideDataJson>,
}

/// A stream side data entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SideDataJson {
    /// E.g. `Display Matrix`.
    #[serde(default)]
    pub side_data_type: Option<String>,
    /// Rotation in degrees (display matrix).
    #[serde(default)]
    pub rotation: Option<f64>,
}

/// The container as ffprobe prints it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FormatJson {
    /// E.g. `mov,mp4,m4a,3gp,3g2,mj2` or `matroska,webm`.
    #[serde(default)]
    pub format_name: Option<String>,
    /// Duration in seconds.
    #[serde(default)]
    pub duration: Option<String>,
    /// Start time in seconds.
    #[serde(default)]
    pub start_time: Option<String>,
    /// File size in bytes.
    #[serde(default)]
    pub size: Option<String>,
}

impl ProbeJson {
    /// Parses ffprobe's JSON.
    pub fn parse(json: &[u8]) -> anyhow::Result<Self> {
        Ok(serde_json::from_slice(json)?)
    }
}

impl StreamJson {
    fn kind(&self) -> &str {
        self.codec_type.as_deref().unwrap_or("")
    }

    /// A tag, looked up without regard to case (MKV writers differ).
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        self.disposition.get(name).copied().unwrap_or(0) != 0
    }

    /// Rotation to apply for upright display, in degrees clockwise, normalised to 0, 90, 180 or
    /// 270 (what ffmpeg's autorotation applies); other angles are not applied and give 0.
    pub fn rotation(&self) -> u32 {
        let from_matrix = self.side_data_list.iter().find_map(|s| s.rotation);
        // The display matrix angle is counter-clockwise; the legacy `rotate` tag is clockwise.
        let clockwise = match from_matrix {
            Some(ccw) => -ccw,
            None => self
                .tag("rotate")
                .and_then(|r| r.trim().parse::<f64>().ok())
                .unwrap_or(0.0),
        };
        let norm = clockwise.rem_euclid(360.0);
        [0u32, 90, 180, 270]
            .into_iter()
            .find(|a| (norm - *a as f64).abs() < 1.0)
            .unwrap_or(0)
    }
}

/// A rational such as `30000/1001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rational {
    /// Numerator.
    pub num: i64,
    /// Denominator.
    pub den: i64,
}

impl Rational {
    /// Parses `a/b` (or a plain integer); `0/0` and malformed text give `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let (n, d) = s.split_once('/').unwrap_or((s, "1"));
        let (num, den) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
        (den != 0 && num != 0).then_some(Self { num, den })
    }

    /// As a float.
    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

fn secs(s: &Option<String>) -> Option<f64> {
    s.as_deref()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

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
    fn from_stream(s: &StreamJson) -> Self {
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

/// One video packet, as listed by ffprobe in decoding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Presentation time in time-base units.
    pub pts: Option<i64>,
    /// Decoding time in time-base units.
    pub dts: Option<i64>,
    /// Duration in time-base units.
    pub duration: Option<i64>,
    /// A keyframe.
    pub key: bool,
    /// Marked to be discarded by the demuxer (e.g. outside an edit list).
    pub discard: bool,
}

impl Packet {
    /// Parses one line of `-show_entries packet=pts,dts,duration,flags -of compact=p=0`
    /// (`pts=0|dts=-2|duration=1|flags=K_`); `None` for other lines.
    pub fn parse_compact(line: &str) -> Option<Self> {
        let mut p = Packet {
            pts: None,
            dts: None,
            duration: None,
            key: false,
            discard: false,
        };
        let mut seen = false;
        for field in line.trim().split('|') {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            let num = || v.parse::<i64>().ok();
            match k {
                "pts" => p.pts = num(),
                "dts" => p.dts = num(),
                "duration" => p.duration = num(),
                "flags" => {
                    seen = true;
                    p.key = v.contains('K');
                    p.discard = v.contains('D');
                }
                _ => {}
            }
        }
        seen.then_some(p)
    }

    fn ts(&self) -> Option<i64> {
        self.pts.or(self.dts)
    }
}

/// A keyframe and whether the stream can be cut cleanly there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyframe {
    /// Index of the packet in decoding order (= frames before it, for a clean cut).
    pub packet_index: u64,
    /// Its presentation time.
    pub pts: i64,
    /// No packet before it is shown after it, and none after it (up to the next keyframe)
    /// is shown before it: a segment starting here decodes alone and loses no frame.
    pub clean: bool,
}

/// What one pass over the video packets found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketScan {
    /// Packets (= frames) counted.
    pub count: u64,
    /// Every keyframe.
    pub keyframes: Vec<Keyframe>,
    /// Whether the first packet is a keyframe.
    pub starts_with_keyframe: bool,
    /// Smallest presentation time.
    pub first_pts: Option<i64>,
    /// Largest presentation time plus that packet's duration.
    pub end_pts: Option<i64>,
    /// Packets marked for discard by the demuxer.
    pub discarded: u64,
    /// Whether packet durations vary.
    pub variable_durations: bool,
    pending: Option<(usize, i64)>,
    max_ts: Option<i64>,
    first_duration: Option<i64>,
}

impl PacketScan {
    /// Adds the next packet (decoding order).
    pub fn push(&mut self, p: Packet) {
        if self.count == 0 {
            self.starts_with_keyframe = p.key;
        }
        if p.discard {
            self.discarded += 1;
        }
        let ts = p.ts();
        if p.key {
            self.finish_pending();
            let clean = match (ts, self.max_ts) {
                (Some(t), Some(m)) => m < t,
                (Some(_), None) => true,
                (None, _) => false,
            };
            self.keyframes.push(Keyframe {
                packet_index: self.count,
                pts: ts.unwrap_or(i64::MIN),
                clean,
            });
            if let Some(t) = ts {
                self.pending = Some((self.keyframes.len() - 1, t));
            }
        } else if let Some((i, t)) = self.pending {
            if ts.is_none_or(|x| x < t) {
                self.keyframes[i].clean = false;
                self.pending = None;
            }
        }
        if let Some(t) = ts {
            self.max_ts = Some(self.max_ts.map_or(t, |m| m.max(t)));
            self.first_pts = Some(self.first_pts.map_or(t, |f| f.min(t)));
            let end = t + p.duration.unwrap_or(0).max(0);
            self.end_pts = Some(self.end_pts.map_or(end, |e| e.max(end)));
        }
        if let Some(d) = p.duration.filter(|d| *d > 0) {
            match self.first_duration {
                None => self.first_duration = Some(d),
                Some(f) if (f - d).abs() > 1 => self.variable_durations = true,
                Some(_) => {}
            }
        }
        self.count += 1;
    }

    /// Ends the scan (after the last packet).
    pub fn finish(&mut self) {
        self.finish_pending();
    }

    fn finish_pending(&mut self) {
        self.pending = None;
    }
}

/// Runs `ffprobe -show_format -show_streams` on `path`.
pub async fn probe_json(path: &Path, settings: &Settings) -> Result<ProbeJson, ProcessError> {
    let out = ToolCommand::ffprobe(settings.probe_timeout)
        .args(["-show_format", "-show_streams", "-of", "json"])
        .arg(path)
        .output()
        .await?;
    Ok(ProbeJson::parse(&out.stdout).unwrap_or_default())
}

/// Lists the packets of `stream` (an ffprobe stream specifier; one demuxing pass, no decoding), streaming ffprobe's
/// output so that even a long source costs little memory. Returns the scan and ffprobe's
/// stderr tail (demuxer complaints such as a truncated file).
pub async fn scan_packets(
    path: &Path,
    stream: &str,
    settings: &Settings,
) -> Result<(PacketScan, String), ProcessError> {
    let cmd = ToolCommand::ffprobe(settings.probe_timeout)
        .args(["-select_streams", stream])
        .args(["-show_entries", "packet=pts,dts,duration,flags"])
        .args(["-of", "compact=p=0"])
        .arg(path);
    let mut running = cmd.spawn(Stdio::null(), Stdio::piped()).await?;
    let stdout = running.child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut scan = PacketScan::default();
    let read = async {
        while let Some(line) = lines.next_line().await? {
            if let Some(p) = Packet::parse_compact(&line) {
                scan.push(p);
            }
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(settings.probe_timeout, read).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(ProcessError::Io {
                program: "ffprobe",
                source: e,
            })
        }
        Err(_) => {
            return Err(ProcessError::Io {
                program: "ffprobe",
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "listing packets took longer than {:?}",
                        settings.probe_timeout
                    ),
                ),
            })
        }
    }
    scan.finish_pending();
    let tail = running.wait().await?;
    Ok((scan, tail))
}

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
fn probe_failure(path: &Path, e: ProcessError) -> Failure {
    match &e {
        ProcessError::Failed { stderr_tail, .. } => {
            if stderr_tail.contains("moov atom not found") && looks_like_mp4(path) {
                missing_index()
            } else {
                Failure::reject(
                    "not-a-video",
                    "the file is not a video format that can be read (not a media file, or damaged)",
                )
            }
        }
        _ => Failure::Retry(anyhow::Error::new(e).context("running ffprobe")),
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
    pub video_track: Option<std::sync::Arc<crate::mp4::VideoTrack>>,
}

/// Probes `path` and applies every check, the decoding of the first pictures included.
pub async fn inspect(path: &Path, settings: &Settings) -> Result<Inspection, Failure> {
    let inspection = inspect_headers(path, settings).await?;
    if !inspection.pictures_checked {
        check_pictures(path, settings).await?;
    }
    Ok(inspection)
}

/// Probes `path` and applies every check that the headers and the packet index allow. MP4
/// and MOV files are read in-process ([`crate::mp4`]), with no process at all, and then
/// `pictures_checked` is false: the caller must still run [`check_pictures`] before using
/// the file (chunking runs it next to the split, in parallel). Everything else, and any
/// MP4 the reader does not fully understand, goes through [`inspect_with_ffprobe`].
pub async fn inspect_headers(path: &Path, settings: &Settings) -> Result<Inspection, Failure> {
    let size = tokio::fs::metadata(path)
        .await
        .retry("reading the source's size")?
        .len();
    check_size(size, settings)?;
    let owned = path.to_owned();
    let read = tokio::task::spawn_blocking(move || crate::mp4::read(&owned))
        .await
        .retry("reading the source's index")?;
    match read {
        Ok(crate::mp4::Read::Index(p)) => {
            let crate::mp4::Mp4Probe {
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
        Ok(crate::mp4::Read::MissingIndex) => Err(missing_index()),
        Ok(crate::mp4::Read::Unsupported(why)) => {
            tracing::debug!(reason = %why, "index not read in-process; asking ffprobe");
            inspect_with_ffprobe(path, settings).await
        }
        Err(e) => Err(Failure::Retry(
            anyhow::Error::new(e).context("reading the source's index"),
        )),
    }
}

fn missing_index() -> Failure {
    Failure::reject(
        "undecodable",
        "the MP4/MOV file is incomplete (its index is missing, the upload was probably cut off); upload it again",
    )
}

/// The ffprobe path: container/stream probe, packet pass and a decode of the first pictures,
/// run together (three processes). Works for every container ffmpeg reads.
pub async fn inspect_with_ffprobe(path: &Path, settings: &Settings) -> Result<Inspection, Failure> {
    let size = tokio::fs::metadata(path)
        .await
        .retry("reading the source's size")?
        .len();
    check_size(size, settings)?;
    // The container/stream probe, the packet pass and a decode of the first pictures are
    // independent: run them together. `V:0` is the first video stream that is not cover art,
    // the one `classify` picks.
    let (json, scanned, decodes) = tokio::join!(
        probe_json(path, settings),
        scan_packets(path, "V:0", settings),
        check_decodes(path, "0:V:0", settings)
    );
    let json = json.map_err(|e| probe_failure(path, e))?;
    if json.format.is_none() && json.streams.is_empty() {
        return Err(Failure::reject(
            "not-a-video",
            "the file is not a video format that can be read",
        ));
    }
    // Header-level rejections come first, whatever the packet pass said.
    let (video, _, _) = classify(&json)?;
    let format = json.format.clone().unwrap_or_default();
    let declared_duration = secs(&format.duration).or_else(|| secs(&video.duration));
    check_limits(
        declared_duration.unwrap_or(0.0),
        video.width.unwrap_or(0),
        video.height.unwrap_or(0),
        settings,
    )?;
    let (scan, stderr) = scanned?;
    let cut = ["partial file", "ended prematurely", "truncat"]
        .iter()
        .any(|m| stderr.contains(m));
    let declared_frames = video
        .nb_frames
        .as_deref()
        .and_then(|n| n.parse::<u64>().ok());
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
) -> Result<Inspection, Failure> {
    if json.format.is_none() && json.streams.is_empty() {
        return Err(Failure::reject(
            "not-a-video",
            "the file is not a video format that can be read",
        ));
    }
    let (video, audio, subtitles) = classify(json)?;
    // A picture the engine cannot convert is refused now, before any work (an unknown pixel
    // format is left to the decode check).
    if let Some(pix_fmt) = video.pix_fmt.as_deref() {
        parallax_core::picture::check(Some(pix_fmt), video.color_transfer.as_deref())
            .map_err(|u| Failure::reject(u.code, u.message))?;
    }
    let format = json.format.clone().unwrap_or_default();
    let format_name = format.format_name.clone().unwrap_or_default();
    let declared_duration = secs(&format.duration).or_else(|| secs(&video.duration));
    let (width, height) = (video.width.unwrap_or(0), video.height.unwrap_or(0));
    check_limits(declared_duration.unwrap_or(0.0), width, height, settings)?;

    let time_base = video
        .time_base
        .as_deref()
        .and_then(Rational::parse)
        .ok_or_else(|| Failure::reject("undecodable", "the video stream has no time base"))?;
    if scan.count <= 1 || format_name.ends_with("_pipe") || format_name == "image2" {
        return Err(Failure::reject(
            "not-a-video",
            "the file is a still picture, not a video",
        ));
    }
    if scan.count > settings.max_frames {
        return Err(Failure::reject(
            "too-many-frames",
            format!(
                "the video has {} frames and the limit is {}; shorten it or lower its frame rate",
                scan.count, settings.max_frames
            ),
        ));
    }
    if let Some((present, declared)) = truncated {
        return Err(Failure::reject(
            "undecodable",
            format!(
                "the file is truncated: {present} of {} video frames are present (the upload was probably cut off); upload it again",
                declared.map_or("the expected".to_owned(), |d| d.to_string())
            ),
        ));
    }
    if !scan.starts_with_keyframe {
        return Err(Failure::reject(
            "undecodable",
            "the video does not start with a keyframe (a recording cut mid-stream?); re-encode it and upload again",
        ));
    }
    if scan.discarded > 0 {
        return Err(Failure::reject(
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
    let frame_rate = video.r_frame_rate.as_deref().and_then(Rational::parse);
    // Packet durations are not always stored (MKV), so also compare the frame count with
    // what the nominal rate gives over the stream's span.
    let span_frames = frame_rate.map(|r| (end_secs - start_secs) * r.as_f64());
    let variable_frame_rate =
        scan.variable_durations || span_frames.is_some_and(|f| (f - scan.count as f64).abs() > 1.5);
    let info = SourceInfo {
        format_name,
        duration_secs,
        start_secs: secs(&format.start_time).unwrap_or(start_secs),
        size_bytes: size,
        video: VideoInfo {
            index: video.index,
            codec: video.codec_name.clone().unwrap_or_default(),
            width,
            height,
            pix_fmt: video.pix_fmt.clone(),
            rotation: video.rotation(),
            frame_rate,
            avg_frame_rate: video.avg_frame_rate.as_deref().and_then(Rational::parse),
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
pub async fn check_pictures(path: &Path, settings: &Settings) -> Result<(), Failure> {
    // The MP4/MOV header carries every parameter a decoder needs: no stream-info probing.
    decode_first(path, "0:V:0", &["-nofind_stream_info"], settings).await
}

/// Decodes the first frames of the video: a file whose headers parse but whose pictures do
/// not is refused before it is split.
async fn check_decodes(path: &Path, map: &str, settings: &Settings) -> Result<(), Failure> {
    decode_first(path, map, &[], settings).await
}

async fn decode_first(
    path: &Path,
    map: &str,
    input_options: &[&str],
    settings: &Settings,
) -> Result<(), Failure> {
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
        Ok(out) if out.stdout.len() < 64 => Err(Failure::reject(
            "no-video-frames",
            "the video stream has no picture that can be decoded; re-encode it and upload again",
        )),
        Ok(_) => Ok(()),
        Err(ProcessError::Failed { stderr_tail, .. }) => Err(Failure::reject(
            "undecodable",
            format!(
                "the video's pictures cannot be decoded ({}); re-encode it and upload again",
                stderr_tail.lines().last().unwrap_or("unknown error")
            ),
        )),
        Err(e) => Err(Failure::Retry(
            anyhow::Error::new(e).context("decoding the first frames"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(pts: i64, key: bool) -> Packet {
        Packet {
            pts: Some(pts),
            dts: None,
            duration: Some(1),
            key,
            discard: false,
        }
    }

    #[test]
    fn compact_lines_parse() {
        let p = Packet::parse_compact("pts=1001|dts=-2002|duration=1001|flags=K__").unwrap();
        assert_eq!(p.pts, Some(1001));
        assert_eq!(p.dts, Some(-2002));
        assert!(p.key && !p.discard);
        let p = Packet::parse_compact("pts=N/A|dts=5|duration=N/A|flags=__D").unwrap();
        assert_eq!((p.pts, p.dts, p.duration), (None, Some(5), None));
        assert!(!p.key && p.discard);
        assert!(Packet::parse_compact("").is_none());
    }

    #[test]
    fn closed_gops_cut_cleanly_and_open_gops_do_not() {
        // Closed GOP with B-frames (decode order I P B B | I P B B).
        let mut s = PacketScan::default();
        for (pts, key) in [(0, true), (3, false), (1, false), (2, false)] {
            s.push(pk(pts, key));
        }
        for (pts, key) in [(4, true), (7, false), (5, false), (6, false)] {
            s.push(pk(pts, key));
        }
        // Open GOP: leading pictures after the keyframe show before it.
        for (pts, key) in [(10, true), (8, false), (9, false), (11, false)] {
            s.push(pk(pts, key));
        }
        s.finish_pending();
        let clean: Vec<_> = s
            .keyframes
            .iter()
            .map(|k| (k.packet_index, k.clean))
            .collect();
        assert_eq!(clean, vec![(0, true), (4, true), (8, false)]);
        assert_eq!(s.count, 12);
        assert_eq!((s.first_pts, s.end_pts), (Some(0), Some(12)));
    }

    #[test]
    fn rotation_normalises_matrix_and_tag() {
        let mut s = StreamJson::default();
        assert_eq!(s.rotation(), 0);
        s.side_data_list.push(SideDataJson {
            side_data_type: Some("Display Matrix".into()),
            rotation: Some(-90.0),
        });
        assert_eq!(s.rotation(), 90);
        s.side_data_list[0].rotation = Some(90.0);
        assert_eq!(s.rotation(), 270);
        let mut t = StreamJson::default();
        t.tags.insert("rotate".into(), "180".into());
        assert_eq!(t.rotation(), 180);
    }

    #[test]
    fn rationals() {
        assert_eq!(
            Rational::parse("30000/1001").unwrap().as_f64(),
            30000.0 / 1001.0
        );
        assert_eq!(Rational::parse("0/0"), None);
        assert_eq!(Rational::parse("25").unwrap(), Rational { num: 25, den: 1 });
    }

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
