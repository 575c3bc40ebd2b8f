//! The tracks in ffprobe's terms: `-show_format -show_streams` and the first video
//! stream's packet list, plus where its samples are for splitting without ffmpeg.

use std::collections::BTreeMap;

use super::boxes::{no, Unsupported, R};
use super::index::Movie;
use crate::packets::{Packet, PacketScan};
use crate::schema::{FormatJson, ProbeJson, SideDataJson, StreamJson};

/// ffprobe's name for the MP4/MOV demuxer.
pub const FORMAT_NAME: &str = "mov,mp4,m4a,3gp,3g2,mj2";

/// An MP4/MOV index as ffprobe would report it.
#[derive(Debug, Clone)]
pub struct Mp4Probe {
    /// `-show_format -show_streams`.
    pub json: ProbeJson,
    /// The packets of the first video stream, in decoding order.
    pub scan: PacketScan,
    /// Video samples whose bytes are inside the file, when some are not (a cut-off upload).
    pub truncated: Option<u64>,
    /// Where the first video stream's samples are, for splitting without ffmpeg.
    pub video: Option<VideoTrack>,
}

/// The first video stream's description and samples (decoding order).
#[derive(Debug, Clone)]
pub struct VideoTrack {
    /// Matroska codec id (`V_MPEG4/ISO/AVC`, `V_MPEGH/ISO/HEVC`).
    pub codec_id: &'static str,
    /// The decoder configuration record (avcC / hvcC payload), Matroska's CodecPrivate.
    pub codec_private: Vec<u8>,
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// Ticks per second of `pts` and `duration`.
    pub timescale: u32,
    /// Every sample, decoding order.
    pub samples: Vec<SampleRef>,
}

/// One video sample: where its bytes are and when it is shown.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef {
    /// Byte offset in the file.
    pub offset: u64,
    /// Size in bytes.
    pub size: u32,
    /// Presentation time (after the edit list), in track ticks.
    pub pts: i64,
    /// Decoding time (after the edit list), in track ticks.
    pub dts: i64,
    /// Duration in track ticks.
    pub duration: i64,
    /// A sync sample.
    pub key: bool,
}

pub(super) fn secs_str(v: f64) -> String {
    format!("{v:.6}")
}

/// The movie as ffprobe would report it (`file_size`: the file's length in bytes).
pub(super) fn build(movie: Movie, file_size: u64) -> R<Mp4Probe> {
    let Movie {
        tracks,
        timescale: movie_ts,
        duration: movie_dur,
    } = movie;
    let mut streams = Vec::new();
    let mut scan = None;
    let mut video = None;
    let mut truncated = None;
    let mut starts = Vec::new();
    let mut ends = vec![movie_dur as f64 / movie_ts as f64];
    for (index, t) in tracks.iter().enumerate() {
        let ts = t.timescale as i64;
        let shift = t.edit.map_or(0, |e| e.0);
        // The edit's media time is any 63-bit value: a time that does not fit is refused.
        let pts: Vec<i64> = t
            .samples
            .iter()
            .map(|s| {
                s.dts
                    .checked_add(s.cts_offset)
                    .and_then(|v| v.checked_sub(shift))
                    .ok_or_else(|| Unsupported("an edit list beyond the track".into()))
            })
            .collect::<R<_>>()?;
        let min_pts = pts.iter().copied().min();
        let end = t
            .samples
            .iter()
            .zip(&pts)
            .map(|(s, p)| p + s.duration)
            .max();
        let total: i64 = t.samples.iter().map(|s| s.duration).sum();
        if t.kind == "video" {
            if min_pts.is_some_and(|m| m < 0) {
                return no("an edit list that hides video frames");
            }
            if let (Some((_, d)), Some(last)) = (t.edit, pts.iter().max()) {
                let edit_end = (d as i128 * ts as i128 / movie_ts as i128) as i64;
                if *last >= edit_end {
                    return no("an edit list that ends before the video does");
                }
            }
        }
        let start = min_pts.map(|m| m.max(0));
        if let Some(s) = start {
            starts.push(s as f64 / ts as f64);
        }
        if let Some(e) = end {
            ends.push(e as f64 / ts as f64);
        }
        let n = t.samples.len() as u64;
        let mut tags = BTreeMap::new();
        if let Some(l) = &t.language {
            tags.insert("language".to_owned(), l.clone());
        }
        let mut disposition = BTreeMap::new();
        disposition.insert("default".to_owned(), t.enabled as i64);
        disposition.insert("attached_pic".to_owned(), 0);
        let rate = |num: i64, den: i64| {
            let g = gcd(num, den).max(1);
            format!("{}/{}", num / g, den / g)
        };
        let mut s = StreamJson {
            index: index as u32,
            codec_type: Some(t.kind.clone()),
            codec_name: t.codec.clone(),
            width: t.width,
            height: t.height,
            pix_fmt: t.pix_fmt.clone(),
            channels: t.channels,
            time_base: Some(format!("1/{ts}")),
            start_time: start.map(|s| secs_str(s as f64 / ts as f64)),
            duration: Some(secs_str(total as f64 / ts as f64)),
            nb_frames: Some(n.to_string()),
            disposition,
            tags,
            ..StreamJson::default()
        };
        if t.kind == "video" {
            if n > 0 && total > 0 {
                s.avg_frame_rate = Some(rate(n as i64 * ts, total));
            }
            let d0 = t.samples.first().map_or(0, |s| s.duration);
            let constant = t.samples.iter().rev().skip(1).all(|s| s.duration == d0);
            if constant && d0 > 0 {
                s.r_frame_rate = Some(rate(ts, d0));
            } else if let Some(min) = t
                .samples
                .iter()
                .map(|s| s.duration)
                .filter(|d| *d > 0)
                .min()
            {
                // Variable rate: the fastest rate that fits every frame.
                s.r_frame_rate = Some(rate(ts, min));
            }
            if let Some(r) = t.rotation_ccw {
                s.side_data_list.push(SideDataJson {
                    side_data_type: Some("Display Matrix".into()),
                    rotation: Some(r),
                    ..SideDataJson::default()
                });
            }
            if scan.is_none() {
                let mut sc = PacketScan::default();
                let dts_shift = shift;
                for (smp, p) in t.samples.iter().zip(&pts) {
                    sc.push(Packet {
                        pts: Some(*p),
                        dts: Some(smp.dts - dts_shift),
                        duration: Some(smp.duration),
                        key: smp.key,
                        discard: false,
                    });
                }
                sc.finish();
                if t.samples_in_file < n {
                    truncated = Some(t.samples_in_file);
                }
                scan = Some(sc);
                video = Some(VideoTrack {
                    codec_id: if t.codec.as_deref() == Some("hevc") {
                        "V_MPEGH/ISO/HEVC"
                    } else {
                        "V_MPEG4/ISO/AVC"
                    },
                    codec_private: t.codec_private.clone(),
                    width: t.width.unwrap_or(0),
                    height: t.height.unwrap_or(0),
                    timescale: t.timescale,
                    samples: t
                        .samples
                        .iter()
                        .zip(&pts)
                        .map(|(smp, p)| SampleRef {
                            offset: smp.offset,
                            size: smp.size,
                            pts: *p,
                            dts: smp.dts - dts_shift,
                            duration: smp.duration,
                            key: smp.key,
                        })
                        .collect(),
                });
            }
        } else if t.samples_in_file < n && truncated.is_none() {
            truncated = Some(
                tracks
                    .iter()
                    .find(|v| v.kind == "video")
                    .map_or(0, |v| v.samples_in_file),
            );
        }
        streams.push(s);
    }
    let start = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let start = if start.is_finite() { start } else { 0.0 };
    let end = ends.iter().copied().fold(0.0, f64::max);
    let format = FormatJson {
        format_name: Some(FORMAT_NAME.into()),
        duration: Some(secs_str(
            (end - start)
                .max(0.0)
                .max(movie_dur as f64 / movie_ts as f64),
        )),
        start_time: Some(secs_str(start)),
        size: Some(file_size.to_string()),
    };
    Ok(Mp4Probe {
        json: ProbeJson {
            streams,
            format: Some(format),
            frames: Vec::new(),
        },
        scan: scan.unwrap_or_default(),
        truncated,
        video,
    })
}

pub(super) fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}
