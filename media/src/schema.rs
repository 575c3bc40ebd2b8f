//! The one typed view of ffprobe's JSON (`-show_format -show_streams`, and the first frame's
//! side data when asked for): every reader of ffprobe output in parallax parses it with
//! these structs. Numbers that ffprobe prints as text stay text in the structs and are read
//! by the accessors, which give `None` for what does not parse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `ffprobe -show_format -show_streams -of json` output.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProbeJson {
    /// Every stream of the file.
    #[serde(default)]
    pub streams: Vec<StreamJson>,
    /// The container.
    #[serde(default)]
    pub format: Option<FormatJson>,
    /// Frames, when asked for (`-show_entries frame_side_data_list` with `-read_intervals`).
    #[serde(default)]
    pub frames: Vec<FrameJson>,
}

/// One stream as ffprobe prints it (numbers that ffprobe prints as strings stay strings here
/// and are parsed by the accessors).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamJson {
    /// Absolute stream index in the file (absent when `-show_entries` leaves it out).
    #[serde(default)]
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
    /// Range (video): `tv` (limited) or `pc` (full).
    #[serde(default)]
    pub color_range: Option<String>,
    /// YUV matrix (video), e.g. `bt709`, `bt2020nc`.
    #[serde(default)]
    pub color_space: Option<String>,
    /// Primaries (video), e.g. `bt709`, `bt2020`.
    #[serde(default)]
    pub color_primaries: Option<String>,
    /// Field order (video): `progressive`, `tt`, `bb`, `tb`, `bt`.
    #[serde(default)]
    pub field_order: Option<String>,
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
    /// Frames decoded, when asked for (`-count_frames`).
    #[serde(default)]
    pub nb_read_frames: Option<String>,
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

/// A side data entry of a stream or a frame. Only the fields of the kinds parallax reads
/// are kept: the display matrix (rotation) and HDR10's static metadata.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SideDataJson {
    /// E.g. `Display Matrix`, `Mastering display metadata`, `Content light level metadata`.
    #[serde(default)]
    pub side_data_type: Option<String>,
    /// Rotation in degrees, counter-clockwise (display matrix).
    #[serde(default)]
    pub rotation: Option<f64>,
    /// Mastering display: red primary x (CIE 1931).
    #[serde(default)]
    pub red_x: Option<Number>,
    /// Mastering display: red primary y.
    #[serde(default)]
    pub red_y: Option<Number>,
    /// Mastering display: green primary x.
    #[serde(default)]
    pub green_x: Option<Number>,
    /// Mastering display: green primary y.
    #[serde(default)]
    pub green_y: Option<Number>,
    /// Mastering display: blue primary x.
    #[serde(default)]
    pub blue_x: Option<Number>,
    /// Mastering display: blue primary y.
    #[serde(default)]
    pub blue_y: Option<Number>,
    /// Mastering display: white point x.
    #[serde(default)]
    pub white_point_x: Option<Number>,
    /// Mastering display: white point y.
    #[serde(default)]
    pub white_point_y: Option<Number>,
    /// Mastering display: smallest luminance, cd/m².
    #[serde(default)]
    pub min_luminance: Option<Number>,
    /// Mastering display: largest luminance, cd/m².
    #[serde(default)]
    pub max_luminance: Option<Number>,
    /// Content light level: the largest light level (MaxCLL), cd/m².
    #[serde(default)]
    pub max_content: Option<Number>,
    /// Content light level: the largest frame-average light level (MaxFALL), cd/m².
    #[serde(default)]
    pub max_average: Option<Number>,
}

/// One frame as ffprobe prints it (only its side data is kept).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FrameJson {
    /// The frame's side data (HDR10 metadata often lives only in the first frame's SEI).
    #[serde(default)]
    pub side_data_list: Vec<SideDataJson>,
}

/// A number as ffprobe prints it: a JSON number, or text (`34000/50000`, `0.0050`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// A JSON number.
    Value(f64),
    /// Text: a decimal or a rational `a/b`.
    Text(String),
}

impl Number {
    /// The value; `None` for text that is not a number or a rational with a zero denominator.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Number::Value(v) => Some(*v),
            Number::Text(s) => match s.split_once('/') {
                Some((n, d)) => {
                    let (n, d) = (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?);
                    (d != 0.0).then(|| n / d)
                }
                None => s.trim().parse().ok(),
            },
        }
        .filter(|v| v.is_finite())
    }
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
    pub fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

impl FormatJson {
    /// The container's duration in seconds, when ffprobe gives one.
    pub fn duration_secs(&self) -> Option<f64> {
        secs(&self.duration)
    }

    /// The container's start time in seconds, when ffprobe gives one.
    pub fn start_secs(&self) -> Option<f64> {
        secs(&self.start_time)
    }
}

impl StreamJson {
    /// `video`, `audio`, `subtitle`, ... (empty when ffprobe does not say).
    pub fn kind(&self) -> &str {
        self.codec_type.as_deref().unwrap_or("")
    }

    /// The stream's duration in seconds, when ffprobe gives one.
    pub fn duration_secs(&self) -> Option<f64> {
        secs(&self.duration)
    }

    /// The stream's start time in seconds, when ffprobe gives one.
    pub fn start_secs(&self) -> Option<f64> {
        secs(&self.start_time)
    }

    /// The time base, when ffprobe gives a valid one.
    pub fn time_base(&self) -> Option<Rational> {
        self.time_base.as_deref().and_then(Rational::parse)
    }

    /// The base frame rate, when ffprobe gives a valid one.
    pub fn frame_rate(&self) -> Option<Rational> {
        self.r_frame_rate.as_deref().and_then(Rational::parse)
    }

    /// The average frame rate, when ffprobe gives a valid one.
    pub fn avg_frame_rate(&self) -> Option<Rational> {
        self.avg_frame_rate.as_deref().and_then(Rational::parse)
    }

    /// The frame count the container declares (MP4/MOV), when it declares one.
    pub fn declared_frames(&self) -> Option<u64> {
        self.nb_frames
            .as_deref()
            .and_then(|n| n.trim().parse().ok())
    }

    /// The frames ffprobe decoded (`-count_frames`), when it was asked to count them.
    pub fn decoded_frames(&self) -> Option<u64> {
        self.nb_read_frames
            .as_deref()
            .and_then(|n| n.trim().parse().ok())
    }

    /// A tag, looked up without regard to case (MKV writers differ).
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A disposition flag (`default`, `attached_pic`, ...).
    pub fn flag(&self, name: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_normalises_matrix_and_tag() {
        let mut s = StreamJson::default();
        assert_eq!(s.rotation(), 0);
        s.side_data_list.push(SideDataJson {
            side_data_type: Some("Display Matrix".into()),
            rotation: Some(-90.0),
            ..SideDataJson::default()
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
    fn numbers_read_as_json_numbers_decimals_or_rationals() {
        let sd: SideDataJson = serde_json::from_str(
            r#"{"side_data_type":"Mastering display metadata","red_x":"34000/50000",
                "max_luminance":"10000000/10000","min_luminance":"0.0050","max_content":1000,
                "max_average":"1/0"}"#,
        )
        .unwrap();
        assert_eq!(sd.red_x.and_then(|n| n.as_f64()), Some(0.68));
        assert_eq!(sd.max_luminance.and_then(|n| n.as_f64()), Some(1000.0));
        assert_eq!(sd.min_luminance.and_then(|n| n.as_f64()), Some(0.005));
        assert_eq!(sd.max_content.and_then(|n| n.as_f64()), Some(1000.0));
        assert_eq!(sd.max_average.and_then(|n| n.as_f64()), None);
    }

    #[test]
    fn text_numbers_that_do_not_parse_are_none() {
        let s: StreamJson = serde_json::from_str(
            r#"{"index":0,"time_base":"1/0","duration":"N/A","nb_frames":"x","start_time":"inf"}"#,
        )
        .unwrap();
        assert_eq!(s.time_base(), None);
        assert_eq!(s.duration_secs(), None);
        assert_eq!(s.declared_frames(), None);
        assert_eq!(s.start_secs(), None);
    }
}
