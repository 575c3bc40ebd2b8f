//! A file's video packets, read without decoding: one pass over them ([`scan`]) finds the
//! frame count, the keyframes and where a cut is clean, the timestamps and whether the rate
//! varies; [`count_frames`] only counts them. The MP4/MOV reader (the `mp4` module) feeds the
//! same [`PacketScan`] from the index, so both paths give the same facts.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::error::{Error, Result};
use crate::process::{ProcessError, ToolCommand};

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

/// Lists the packets of `stream` (an ffprobe stream specifier such as `V:0`; one demuxing
/// pass, no decoding), streaming ffprobe's output so that even a long source costs little
/// memory. Returns the scan and ffprobe's stderr tail (demuxer complaints such as a
/// truncated file).
pub async fn scan(path: &Path, stream: &str, timeout: Duration) -> Result<(PacketScan, String)> {
    let cmd = ToolCommand::ffprobe(timeout)
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
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(ProcessError::Io {
                program: "ffprobe",
                source: e,
            }
            .into())
        }
        Err(_) => {
            return Err(ProcessError::Io {
                program: "ffprobe",
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("listing packets took longer than {timeout:?}"),
                ),
            }
            .into())
        }
    }
    scan.finish_pending();
    let tail = running.wait().await?;
    Ok((scan, tail))
}

/// Counts the frames (packets) of `path`'s first video stream: one demuxing pass, no
/// decoding. A file without a video stream has 0 frames; whether 0 is acceptable is the
/// caller's decision (a segment or a result that should hold frames is bad input there).
/// ffprobe's failure on the file is [`Error::Process`]; output that is not a count is
/// [`Error::Output`].
pub async fn count_frames(path: &Path, timeout: Duration) -> Result<u64> {
    let out = ToolCommand::ffprobe(timeout)
        .args(["-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .await?;
    parse_count(&String::from_utf8_lossy(&out.stdout)).map_err(|detail| Error::Output {
        what: "frame count",
        path: path.to_owned(),
        detail,
    })
}

/// `nb_read_packets` as `-of csv=p=0` prints it (`120` or `120,`); nothing at all when
/// there is no video stream.
fn parse_count(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.lines()
        .next()
        .map(|l| l.trim().trim_end_matches(','))
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or_else(|| format!("{text:?} is not a number of packets"))
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
    fn counts_parse_and_no_video_counts_zero() {
        assert_eq!(parse_count("120\n"), Ok(120));
        assert_eq!(parse_count("120,\n"), Ok(120));
        assert_eq!(parse_count(""), Ok(0));
        assert!(parse_count("N/A").unwrap_err().contains("N/A"));
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
}
