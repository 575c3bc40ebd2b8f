//! Shared test helpers: unique scratch folders, clips generated with ffmpeg (testsrc2 +
//! sine), ffprobe look-ups, the stand-in video-worker transform, a full
//! chunk -> convert -> reassemble round trip on local files, and ([`fleet`]) the local
//! adapters with a stand-in video-worker and waits for a job's state or a queue.
#![allow(dead_code)]

pub mod fleet;

use std::path::{Path, PathBuf};
use std::process::Command;

use media_worker::inspect::Inspection;
use media_worker::manifest::Manifest;
use media_worker::reassemble::{self, Assembled};
use media_worker::settings::Settings;
use media_worker::split;
use parallax_media::schema::{ProbeJson, StreamJson};

/// A unique temporary folder, removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("media-worker-test-")
        .tempdir()
        .expect("temp dir")
}

fn run(program: &str, args: &[String]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not start: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `ffmpeg -v error -y ARGS... dir/name` and returns the output path.
pub fn make(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-v", "error", "-y"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(args.iter().map(|s| s.to_string()));
    a.push(out.display().to_string());
    run("ffmpeg", &a);
    out
}

/// `-f lavfi -i testsrc2=size=S:rate=R:duration=D`.
pub fn video_input(size: &str, rate: &str, secs: f64) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={size}:rate={rate}:duration={secs}"),
    ]
}

/// `-f lavfi -i sine=frequency=F:duration=D`.
pub fn sine_input(freq: u32, secs: f64) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("sine=frequency={freq}:duration={secs}:sample_rate=48000"),
    ]
}

/// Builds a clip from argument pieces.
pub fn clip(dir: &Path, name: &str, pieces: &[Vec<String>]) -> PathBuf {
    let flat: Vec<String> = pieces.iter().flatten().cloned().collect();
    let refs: Vec<&str> = flat.iter().map(String::as_str).collect();
    make(dir, name, &refs)
}

/// Splits "a b c" into owned args.
pub fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// ffprobe's format + streams, in the one typed schema.
pub fn probe(path: &Path) -> ProbeJson {
    let out = run(
        "ffprobe",
        &[
            "-v".into(),
            "error".into(),
            "-show_format".into(),
            "-show_streams".into(),
            "-of".into(),
            "json".into(),
            path.display().to_string(),
        ],
    );
    ProbeJson::parse(&out).expect("ffprobe json")
}

/// The streams of a kind.
pub fn streams(v: &ProbeJson, kind: &str) -> Vec<StreamJson> {
    v.streams
        .iter()
        .filter(|s| s.kind() == kind)
        .cloned()
        .collect()
}

/// Container duration in seconds.
pub fn duration(v: &ProbeJson) -> f64 {
    v.format
        .as_ref()
        .and_then(|f| f.duration_secs())
        .expect("a container duration")
}

/// Stream duration in seconds (MKV keeps it in a DURATION tag).
pub fn stream_duration(s: &StreamJson) -> f64 {
    if let Some(d) = s.duration_secs() {
        return d;
    }
    let tag = s.tag("DURATION").expect("a stream duration");
    let mut parts = tag.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let sec: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + sec
}

/// Frames of the first video stream, by decoding every one of them.
pub fn decoded_frames(path: &Path) -> u64 {
    let out = run(
        "ffprobe",
        &args(&format!(
            "-v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames -of csv=p=0 {}",
            path.display()
        )),
    );
    String::from_utf8_lossy(&out)
        .trim()
        .trim_end_matches(',')
        .parse()
        .unwrap()
}

/// Packets of the first video stream (no decoding).
pub fn packets(path: &Path) -> u64 {
    let out = run(
        "ffprobe",
        &args(&format!(
            "-v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 {}",
            path.display()
        )),
    );
    String::from_utf8_lossy(&out)
        .trim()
        .trim_end_matches(',')
        .parse()
        .unwrap()
}

/// Whether the first video packet is a keyframe.
pub fn starts_with_keyframe(path: &Path) -> bool {
    let out = run(
        "ffprobe",
        &args(&format!(
            "-v error -select_streams v:0 -read_intervals %+#1 -show_entries packet=flags -of csv=p=0 {}",
            path.display()
        )),
    );
    String::from_utf8_lossy(&out).trim().starts_with('K')
}

/// What a video-worker does to a segment, in miniature: every frame side by side with
/// itself (twice as wide), same frame count and timestamps, video only, MKV.
pub fn stand_in(segment: &Path, out: &Path) {
    run(
        "ffmpeg",
        &[
            args("-hide_banner -nostdin -v error -y -i"),
            vec![segment.display().to_string()],
            args(
                "-filter_complex [0:v]split[a][b];[a][b]hstack,format=yuv444p -an -c:v libx264 -preset ultrafast -crf 40 -fps_mode passthrough -f matroska",
            ),
            vec![out.display().to_string()],
        ]
        .concat(),
    );
}

/// Settings for tests: short segments.
pub fn settings(segment_secs: f64) -> Settings {
    Settings {
        segment_secs,
        ..Settings::default()
    }
}

/// The result of a local round trip.
pub struct RoundTrip {
    pub inspection: Inspection,
    pub manifest: Manifest,
    pub segments: Vec<PathBuf>,
    pub assembled: Assembled,
}

/// chunk -> check each segment -> stand-in -> reassemble, all on local files.
pub async fn round_trip(src: &Path, dir: &Path, settings: &Settings) -> RoundTrip {
    let (inspection, plan, segments) = split::chunk_file(src, &dir.join("segments"), settings)
        .await
        .unwrap_or_else(|f| panic!("chunking {} failed: {f}", src.display()));
    assert_eq!(segments.len(), plan.len());
    let mut first = 0;
    for (seg, file) in plan.iter().zip(&segments) {
        assert_eq!(seg.first_frame, first, "segments are contiguous");
        first += seg.frame_count;
        assert!(
            starts_with_keyframe(file),
            "segment {} starts on a keyframe",
            seg.index
        );
        assert_eq!(
            decoded_frames(file),
            seg.frame_count,
            "segment {} decodes alone into its planned frames",
            seg.index
        );
        let p = probe(file);
        assert_eq!(streams(&p, "video").len(), 1, "video only");
        assert_eq!(p.streams.len(), 1, "video only");
    }
    assert_eq!(
        first, inspection.info.video.frame_count,
        "frame counts add up"
    );
    assert_eq!(
        inspection.info.video.frame_count,
        decoded_frames(src),
        "the probe counts the frames a decoder sees"
    );
    let out_dir = dir.join("outputs");
    std::fs::create_dir_all(&out_dir).unwrap();
    let outputs: Vec<PathBuf> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let o = out_dir.join(format!("{i:05}.mkv"));
            stand_in(s, &o);
            o
        })
        .collect();
    let manifest = Manifest::new(
        "test",
        inspection.info.clone(),
        settings.segment_secs,
        &plan,
    );
    let work = dir.join("assemble");
    std::fs::create_dir_all(&work).unwrap();
    let assembled = reassemble::assemble(src, &manifest, &outputs, &work, settings)
        .await
        .unwrap_or_else(|f| panic!("reassembling failed: {f}"));
    RoundTrip {
        inspection,
        manifest,
        segments,
        assembled,
    }
}

/// The checks every round trip must pass: same frame count (decoded), duration within one
/// frame, width doubled, every audio track with the same language and about the same length
/// (no cut), subtitles kept.
pub fn assert_result(src: &Path, rt: &RoundTrip) {
    let s = probe(src);
    let r = probe(&rt.assembled.path);
    let frames = decoded_frames(src);
    assert_eq!(
        decoded_frames(&rt.assembled.path),
        frames,
        "frame count kept"
    );
    let v = &rt.inspection.info.video;
    let frame = 1.0 / v.avg_frame_rate.or(v.frame_rate).unwrap().as_f64();
    let (sd, rd) = (duration(&s), duration(&r));
    assert!(
        (sd - rd).abs() <= frame + 1e-3,
        "duration {rd} vs source {sd} (one frame = {frame})"
    );
    let rv = &streams(&r, "video")[0];
    let (w, h) = if v.rotation % 180 == 90 {
        (v.height, v.width)
    } else {
        (v.width, v.height)
    };
    assert_eq!(
        rv.width.map(u64::from),
        Some(2 * w as u64),
        "twice as wide, upright"
    );
    assert_eq!(rv.height.map(u64::from), Some(h as u64), "upright");
    let rot = rv.side_data_list.iter().find_map(|sd| sd.rotation);
    assert!(
        rot.is_none_or(|r| r == 0.0),
        "no rotation metadata on the result: {rot:?}"
    );
    for kind in ["audio", "subtitle"] {
        let (sa, ra) = (streams(&s, kind), streams(&r, kind));
        assert_eq!(sa.len(), ra.len(), "every {kind} track kept");
        for (a, b) in sa.iter().zip(&ra) {
            let lang =
                |x: &StreamJson| x.tag("language").filter(|l| *l != "und").map(str::to_owned);
            assert_eq!(lang(a), lang(b), "{kind} language kept");
            if kind == "audio" {
                assert_eq!(a.codec_name, b.codec_name, "audio not re-encoded");
                let (da, db) = (stream_duration(a), stream_duration(b));
                assert!((da - db).abs() <= frame, "audio length {db} vs {da}");
            }
        }
    }
    // Audio in sync: the video and the first audio track start where they started.
    if let (Some(sa), Some(ra)) = (streams(&s, "audio").first(), streams(&r, "audio").first()) {
        let start = |x: &StreamJson| -> f64 { x.start_secs().unwrap_or(0.0) };
        let sv = &streams(&s, "video")[0];
        let src_gap = start(sv) - start(sa);
        let res_gap = start(rv) - start(ra);
        assert!(
            (src_gap - res_gap).abs() <= frame,
            "A/V offset {res_gap} vs source {src_gap}"
        );
    }
}

/// Whether an MP4's index (moov) comes before its media data (faststart).
pub fn moov_before_mdat(path: &Path) -> bool {
    let data = std::fs::read(path).unwrap();
    let find = |tag: &[u8]| data.windows(4).position(|w| w == tag);
    matches!((find(b"moov"), find(b"mdat")), (Some(m), Some(d)) if m < d)
}
