//! What the engine needs to know about an input video before decoding it: the upright frame
//! size, the frame rate, the start time and the colour tags to carry over. ffprobe's JSON is
//! read with the media crate's one schema ([`parallax_media::schema`]); frames are counted
//! by its one frame counter ([`parallax_media::packets::count_frames`]).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use parallax_media::process::{ProcessError, ToolCommand};
use parallax_media::schema::{Number, SideDataJson, StreamJson};

use parallax_core::picture::{self, PixelLayout, Transfer, Unsupported};

use super::colour::Matrix;
use crate::BadInput;

/// The first video stream of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Width of the decoded, upright frames.
    pub width: usize,
    /// Height of the decoded, upright frames.
    pub height: usize,
    /// Frame rate as a rational (`num/den`) for the encoder.
    pub rate: (u64, u64),
    /// True when the average rate differs from the nominal one (variable frame rate).
    pub variable_rate: bool,
    /// First timestamp in seconds.
    pub start_time: f64,
    /// Colour tags (`color_range`, `color_space`, `color_transfer`, `color_primaries`) known
    /// for the stream, as ffmpeg names them.
    pub colour: Vec<(&'static str, String)>,
    /// Bit depth and chroma sampling.
    pub layout: PixelLayout,
    /// SDR, PQ or HLG.
    pub transfer: Transfer,
    /// Full-range (`pc`, JPEG) levels rather than limited (`tv`).
    pub full_range: bool,
    /// Interlaced frames (from the stream's field order).
    pub interlaced: bool,
    /// The YUV matrix (tagged, or assumed from the height).
    pub matrix: Matrix,
    /// HDR10 static metadata (mastering display, content light level), when the stream or
    /// its first frame carries any.
    pub hdr: HdrMetadata,
}

/// HDR10 static metadata, as ffprobe reads it from the container or the first frame's SEI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HdrMetadata {
    /// The mastering display: red, green, blue and white point chromaticities (CIE 1931 x, y)
    /// and its largest and smallest luminance (cd/m²).
    pub mastering: Option<Mastering>,
    /// Content light level: the largest and the largest frame-average light level (cd/m²).
    pub light_level: Option<(u32, u32)>,
}

/// A mastering display's colour volume (SMPTE ST 2086).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mastering {
    /// Red, green, blue primaries, then the white point: (x, y).
    pub chromaticities: [(f64, f64); 4],
    /// Largest luminance, cd/m².
    pub max_luminance: f64,
    /// Smallest luminance, cd/m².
    pub min_luminance: f64,
}

impl HdrMetadata {
    /// Reads ffprobe's side data (`Mastering display metadata`, `Content light level
    /// metadata`); entries it cannot read are left out.
    fn from_side_data<'a>(list: impl IntoIterator<Item = &'a SideDataJson>) -> Self {
        let mut meta = HdrMetadata::default();
        for sd in list {
            let num = |n: &Option<Number>| n.as_ref().and_then(Number::as_f64);
            match sd.side_data_type.as_deref() {
                Some("Mastering display metadata") if meta.mastering.is_none() => {
                    let xy = |x: &Option<Number>, y: &Option<Number>| Some((num(x)?, num(y)?));
                    let read = || {
                        Some(Mastering {
                            chromaticities: [
                                xy(&sd.red_x, &sd.red_y)?,
                                xy(&sd.green_x, &sd.green_y)?,
                                xy(&sd.blue_x, &sd.blue_y)?,
                                xy(&sd.white_point_x, &sd.white_point_y)?,
                            ],
                            max_luminance: num(&sd.max_luminance)?,
                            min_luminance: num(&sd.min_luminance)?,
                        })
                    };
                    meta.mastering = read().filter(|m| m.max_luminance > 0.0);
                }
                Some("Content light level metadata") if meta.light_level.is_none() => {
                    if let (Some(max), Some(avg)) = (num(&sd.max_content), num(&sd.max_average)) {
                        meta.light_level = Some((max.max(0.0) as u32, avg.max(0.0) as u32));
                    }
                }
                _ => {}
            }
        }
        meta
    }

    /// Whether there is nothing to carry.
    pub fn is_empty(&self) -> bool {
        self.mastering.is_none() && self.light_level.is_none()
    }

    /// The metadata as x265's `master-display` and `max-cll` parameters (chromaticities in
    /// units of 0.00002, luminance in 0.0001 cd/m²), each preceded by `:`.
    pub fn x265_params(&self) -> String {
        let mut p = String::new();
        if let Some(m) = &self.mastering {
            let c = |(x, y): (f64, f64)| {
                format!(
                    "{},{}",
                    (x * 50_000.0).round() as u32,
                    (y * 50_000.0).round() as u32
                )
            };
            let [r, g, b, wp] = m.chromaticities;
            p.push_str(&format!(
                ":master-display=G({})B({})R({})WP({})L({},{})",
                c(g),
                c(b),
                c(r),
                c(wp),
                (m.max_luminance * 10_000.0).round() as u64,
                (m.min_luminance * 10_000.0).round() as u64,
            ));
        }
        if let Some((max, avg)) = self.light_level {
            p.push_str(&format!(":max-cll={max},{avg}"));
        }
        p
    }
}

fn rational(s: &str) -> Option<(u64, u64)> {
    let (n, d) = s.split_once('/')?;
    let (n, d) = (n.trim().parse::<u64>().ok()?, d.trim().parse::<u64>().ok()?);
    (n > 0 && d > 0).then_some((n, d))
}

/// Probes `path`'s first video stream. A file that is not a video is [`BadInput`].
pub async fn probe(path: &Path) -> anyhow::Result<VideoInfo> {
    let args = [
        "-select_streams",
        "v:0",
        "-show_streams",
        // The first frame's side data: HDR10 metadata often lives only in the SEI.
        "-read_intervals",
        "%+#1",
        "-show_entries",
        "frame_side_data_list",
    ];
    let probe = match parallax_media::probe::json(path, Duration::from_secs(120), &args).await {
        Ok(p) => p,
        Err(parallax_media::Error::Process(e @ ProcessError::Failed { .. })) => {
            return Err(anyhow::Error::new(BadInput(format!(
                "{} is not a readable video: {e}",
                path.display()
            ))));
        }
        Err(e) => return Err(e).context("probing the input"),
    };
    let Some(s) = probe.streams.into_iter().next() else {
        return Err(BadInput(format!("{} has no video stream", path.display())).into());
    };
    let frame_side_data = probe.frames.into_iter().next().map(|f| f.side_data_list);
    let mut info = parse_stream(s).map_err(|e| match e {
        Parsed::Bad(m) => BadInput(format!("{}: {m}", path.display())).into(),
        Parsed::Unsupported(u) => {
            let msg = format!("{}: {u}", path.display());
            anyhow::Error::new(u).context(BadInput(msg))
        }
    })?;
    if let Some(list) = frame_side_data {
        let from_frame = HdrMetadata::from_side_data(&list);
        info.hdr.mastering = info.hdr.mastering.or(from_frame.mastering);
        info.hdr.light_level = info.hdr.light_level.or(from_frame.light_level);
    }
    Ok(info)
}

/// Why a stream cannot be converted.
#[derive(Debug)]
enum Parsed {
    Bad(String),
    Unsupported(Unsupported),
}

impl From<String> for Parsed {
    fn from(m: String) -> Self {
        Parsed::Bad(m)
    }
}

fn parse_stream(s: StreamJson) -> Result<VideoInfo, Parsed> {
    let (Some(width), Some(height)) = (s.width, s.height) else {
        return Err("the video stream has no frame size".to_owned().into());
    };
    let (mut width, mut height) = (width as usize, height as usize);
    // The display matrix (or the legacy `rotate` tag): a quarter turn swaps the sides.
    if s.rotation() % 180 == 90 {
        std::mem::swap(&mut width, &mut height);
    }
    if width < 2 || height < 2 {
        return Err(format!("frames of {width}x{height} are too small").into());
    }
    let nominal = s.r_frame_rate.as_deref().and_then(rational);
    let average = s.avg_frame_rate.as_deref().and_then(rational);
    let (rate, variable_rate) = match (nominal, average) {
        (Some(n), Some(a)) => {
            let (nf, af) = (n.0 as f64 / n.1 as f64, a.0 as f64 / a.1 as f64);
            if (nf - af).abs() / nf > 0.01 {
                (a, true)
            } else {
                (n, false)
            }
        }
        (Some(n), None) => (n, false),
        (None, Some(a)) => (a, false),
        (None, None) => return Err("the video stream has no frame rate".to_owned().into()),
    };
    let start_time = s
        .start_time
        .as_deref()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .unwrap_or(0.0);
    let (layout, transfer) = picture::check(s.pix_fmt.as_deref(), s.color_transfer.as_deref())
        .map_err(Parsed::Unsupported)?;
    let full_range = s.color_range.as_deref() == Some("pc")
        || s.pix_fmt.as_deref().is_some_and(|p| p.starts_with("yuvj"));
    let interlaced = picture::interlaced(s.field_order.as_deref());
    let matrix = Matrix::from_tag(s.color_space.as_deref(), height);
    let hdr = HdrMetadata::from_side_data(&s.side_data_list);
    let mut colour = Vec::new();
    for (flag, v) in [
        ("-color_range", s.color_range),
        ("-colorspace", s.color_space),
        ("-color_trc", s.color_transfer),
        ("-color_primaries", s.color_primaries),
    ] {
        if let Some(v) = v.filter(|v| v != "unknown" && v != "reserved" && !v.is_empty()) {
            colour.push((flag, v));
        }
    }
    Ok(VideoInfo {
        width: width & !1,
        height: height & !1,
        rate,
        variable_rate,
        start_time,
        colour,
        layout,
        transfer,
        full_range,
        interlaced,
        matrix,
        hdr,
    })
}

/// Counts the frames (packets) of `path`'s first video stream without decoding: the media
/// crate's one frame counter ([`parallax_media::packets::count_frames`]; a file without a
/// video stream has 0 frames).
pub async fn count_frames(path: &Path) -> anyhow::Result<u64> {
    parallax_media::packets::count_frames(path, Duration::from_secs(300))
        .await
        .with_context(|| format!("counting the frames of {}", path.display()))
}

/// The presentation times of `path`'s first video stream's frames in seconds, in
/// presentation order, read from the packets without decoding (packets the container marks
/// as discarded, before an edit list's start, are left out; a packet without a presentation
/// time takes its decoding time).
pub async fn frame_times(path: &Path) -> anyhow::Result<Vec<f64>> {
    let out = ToolCommand::ffprobe(Duration::from_secs(600))
        .args([
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,dts_time,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .await
        .with_context(|| format!("reading the frame times of {}", path.display()))?;
    Ok(frame_times_of(&String::from_utf8_lossy(&out.stdout)))
}

/// [`frame_times`] on ffprobe's `pts_time,dts_time,flags` lines.
fn frame_times_of(lines: &str) -> Vec<f64> {
    let mut times: Vec<f64> = lines
        .lines()
        .filter_map(|l| {
            let mut f = l.trim().split(',');
            let (pts, dts, flags) = (f.next()?, f.next().unwrap_or(""), f.next().unwrap_or(""));
            if flags.contains('D') {
                return None;
            }
            pts.parse::<f64>()
                .ok()
                .or_else(|| dts.parse().ok())
                .filter(|t| t.is_finite())
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// Where the last `n` frames of `path`'s first video stream start, in seconds from the
/// stream's first frame (what `-ss` before `-i` means), read from the packets' timestamps
/// without decoding. `None` when the stream has no more than `n` frames (decode it all).
pub async fn tail_start(path: &Path, n: u64) -> anyhow::Result<Option<f64>> {
    let out = ToolCommand::ffprobe(Duration::from_secs(300))
        .args([
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .await
        .with_context(|| format!("reading the frame times of {}", path.display()))?;
    Ok(tail_start_of(&String::from_utf8_lossy(&out.stdout), n))
}

/// [`tail_start`] on ffprobe's output: one presentation time per packet, in decoding order.
fn tail_start_of(pts_lines: &str, n: u64) -> Option<f64> {
    let mut pts: Vec<f64> = pts_lines
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    let n = usize::try_from(n).ok()?;
    if pts.len() <= n {
        return None;
    }
    pts.sort_by(f64::total_cmp);
    let first = pts[0];
    let k = pts.len() - n;
    // Half a frame early, so that rounded container timestamps cannot drop the first one.
    let half_frame = (pts[k] - pts[k - 1]) / 2.0;
    Some((pts[k] - first - half_frame).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_phone_video_is_upright_and_cfr() {
        let s: StreamJson = serde_json::from_str(
            r#"{"width":1920,"height":1080,"pix_fmt":"yuv420p","r_frame_rate":"30000/1001","avg_frame_rate":"30000/1001",
                "start_time":"0.000000","color_range":"tv","color_space":"bt709",
                "side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]}"#,
        )
        .unwrap();
        let v = parse_stream(s).unwrap();
        assert_eq!((v.width, v.height), (1080, 1920));
        assert_eq!(v.rate, (30000, 1001));
        assert!(!v.variable_rate);
        assert!(v.colour.contains(&("-colorspace", "bt709".to_owned())));
    }

    #[test]
    fn variable_rate_uses_the_average() {
        let s: StreamJson = serde_json::from_str(
            r#"{"width":641,"height":481,"pix_fmt":"yuv420p","r_frame_rate":"90/1","avg_frame_rate":"25/1"}"#,
        )
        .unwrap();
        let v = parse_stream(s).unwrap();
        assert_eq!((v.width, v.height), (640, 480));
        assert_eq!(v.rate, (25, 1));
        assert!(v.variable_rate);
    }

    #[test]
    fn hdr10_side_data_reads_rationals_and_numbers() {
        let s: StreamJson = serde_json::from_str(
            r#"{"width":64,"height":64,"pix_fmt":"yuv420p10le","color_transfer":"smpte2084",
                "r_frame_rate":"25/1","side_data_list":[
                {"side_data_type":"Mastering display metadata","red_x":"34000/50000",
                 "red_y":"16000/50000","green_x":"13250/50000","green_y":"34500/50000",
                 "blue_x":"7500/50000","blue_y":"3000/50000","white_point_x":"15635/50000",
                 "white_point_y":"16450/50000","min_luminance":"50/10000",
                 "max_luminance":"10000000/10000"},
                {"side_data_type":"Content light level metadata","max_content":1000,
                 "max_average":400}]}"#,
        )
        .unwrap();
        let hdr = HdrMetadata::from_side_data(&s.side_data_list);
        assert_eq!(hdr.light_level, Some((1000, 400)));
        assert_eq!(
            hdr.x265_params(),
            ":master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400"
        );
    }

    #[test]
    fn frame_times_are_sorted_and_skip_discarded_packets() {
        let lines = "0.000000,0.000000,K__\n0.080000,0.033000,___\n0.040000,0.040000,___\n\
                     -0.040000,-0.080000,_D_\nN/A,0.120000,___\n";
        assert_eq!(frame_times_of(lines), vec![0.0, 0.04, 0.08, 0.12]);
    }

    #[test]
    fn tail_start_is_the_nth_last_frame_in_presentation_order() {
        // B-frames: decoding order differs from presentation order; the stream starts at 1.0.
        let lines = "1.000000\n1.120000\n1.040000\n1.080000\n1.200000\n1.160000\n";
        let t = tail_start_of(lines, 2).unwrap();
        // The last two frames start at 1.16; half a frame (0.02) early, from the start.
        assert!((t - 0.14).abs() < 1e-9, "{t}");
        assert_eq!(tail_start_of(lines, 6), None);
        assert_eq!(tail_start_of(lines, 9), None);
        assert_eq!(tail_start_of("", 1), None);
    }
}
