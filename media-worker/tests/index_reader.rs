//! The in-process MP4/MOV index reader against ffprobe: on every source shape the suite makes
//! as MP4 or MOV, both paths must report the same streams, frame count, keyframes (and which
//! are clean cuts), timestamps and durations. Files the reader does not fully understand go
//! to ffprobe; cut-off files are refused by the reader itself.

mod common;

use std::path::Path;

use common::*;
use media_worker::failure::HandlerError;
use media_worker::inspect::{self, Inspection};
use media_worker::settings::Settings;

const X264: &str = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p";

async fn both(path: &Path) -> (Inspection, Inspection) {
    let s = Settings::default();
    let fast = inspect::inspect_headers(path, &s)
        .await
        .unwrap_or_else(|f| panic!("index path on {}: {f}", path.display()));
    let slow = inspect::inspect_with_ffprobe(path, &s)
        .await
        .unwrap_or_else(|f| panic!("ffprobe path on {}: {f}", path.display()));
    (fast, slow)
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-3, "{what}: index {a} vs ffprobe {b}");
}

/// Both paths agree on everything chunking and reassembly use.
async fn agree(path: &Path) -> Inspection {
    let (fast, slow) = both(path).await;
    assert_eq!(fast.via, "index", "{} read in-process", path.display());
    assert!(!fast.pictures_checked, "the index path decodes nothing");
    assert_eq!(slow.via, "ffprobe");
    let (f, s) = (&fast.info, &slow.info);
    assert_eq!(f.format_name, s.format_name);
    close(f.duration_secs, s.duration_secs, "container duration");
    close(f.start_secs, s.start_secs, "container start");
    assert_eq!(f.size_bytes, s.size_bytes);
    assert_eq!(f.audio, s.audio, "audio tracks");
    assert_eq!(f.subtitles, s.subtitles, "subtitle tracks");
    let (fv, sv) = (&f.video, &s.video);
    assert_eq!(fv.index, sv.index);
    assert_eq!(fv.codec, sv.codec);
    assert_eq!((fv.width, fv.height), (sv.width, sv.height));
    assert_eq!(fv.pix_fmt, sv.pix_fmt, "pixel format");
    assert_eq!(fv.rotation, sv.rotation, "rotation");
    assert_eq!(fv.time_base, sv.time_base);
    assert_eq!(fv.frame_count, sv.frame_count, "frame count");
    assert_eq!(fv.avg_frame_rate, sv.avg_frame_rate, "average rate");
    if !sv.variable_frame_rate {
        assert_eq!(fv.frame_rate, sv.frame_rate, "frame rate");
    }
    assert_eq!(fv.variable_frame_rate, sv.variable_frame_rate, "VFR");
    close(fv.start_secs, sv.start_secs, "video start");
    close(fv.end_secs, sv.end_secs, "video end");
    // Packet by packet: count, every keyframe with its clean flag, first and last times.
    assert_eq!(fast.scan, slow.scan, "packet scan");
    fast
}

#[tokio::test]
async fn ntsc_b_frames_rotation_and_long_gops_read_like_ffprobe() {
    let d = scratch();
    let ntsc = clip(
        d.path(),
        "ntsc.mp4",
        &[
            video_input("160x90", "30000/1001", 3.0),
            sine_input(440, 3.0),
            args(X264),
            args("-g 15 -bf 2 -c:a aac -b:a 64k -metadata:s:a:0 language=eng"),
        ],
    );
    let i = agree(&ntsc).await;
    assert_eq!(i.info.video.frame_count, 90);
    assert!(i.scan.keyframes.len() >= 6);

    let rotated = make(
        d.path(),
        "rotated.mp4",
        &[
            "-i",
            ntsc.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
        ],
    );
    assert_ne!(agree(&rotated).await.info.video.rotation, 0);

    let long = clip(
        d.path(),
        "long.mp4",
        &[
            video_input("161x91", "25", 4.0),
            args("-c:v libx264 -preset ultrafast -pix_fmt yuv444p"),
            args("-g 50 -keyint_min 50 -sc_threshold 0"),
        ],
    );
    let i = agree(&long).await;
    assert_eq!(i.scan.keyframes.len(), 2);
    assert_eq!(i.info.video.pix_fmt.as_deref(), Some("yuv444p"));
}

#[tokio::test]
async fn variable_rate_hevc_10_bit_and_mov_read_like_ffprobe() {
    let d = scratch();
    let vfr = clip(
        d.path(),
        "vfr.mp4",
        &[
            video_input("160x90", "30", 3.0),
            args("-vf select='lt(n,30)+not(eq(mod(n,3),2))' -fps_mode vfr"),
            args(X264),
            args("-g 10"),
        ],
    );
    assert!(agree(&vfr).await.info.video.variable_frame_rate);

    let hevc = clip(
        d.path(),
        "hevc.mp4",
        &[
            video_input("160x96", "24", 2.0),
            sine_input(700, 2.0),
            args("-c:v libx265 -preset ultrafast -pix_fmt yuv420p10le -tag:v hvc1"),
            args("-x265-params keyint=12:min-keyint=12:open-gop=0:log-level=error"),
            args("-c:a aac -b:a 48k -metadata:s:a:0 language=jpn"),
        ],
    );
    let i = agree(&hevc).await;
    assert_eq!(i.info.video.pix_fmt.as_deref(), Some("yuv420p10le"));

    let mov = clip(
        d.path(),
        "src.mov",
        &[
            video_input("160x90", "25", 2.0),
            sine_input(900, 2.0),
            args(X264),
            args("-g 10 -c:a pcm_s16le -metadata:s:a:0 language=ger -f mov"),
        ],
    );
    let i = agree(&mov).await;
    assert_eq!(i.info.audio[0].codec, "pcm_s16le");
}

#[tokio::test]
async fn audio_languages_and_subtitles_read_like_ffprobe() {
    let d = scratch();
    let srt = d.path().join("subs.srt");
    std::fs::write(&srt, "1\n00:00:00,500 --> 00:00:01,500\nHello\n").unwrap();
    let src = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "30", 2.0),
            sine_input(440, 2.0),
            sine_input(880, 2.0),
            args(&format!("-i {}", srt.display())),
            args("-map 0:v -map 1:a -map 2:a -map 3:s"),
            args(X264),
            args("-g 15 -c:a aac -b:a 64k -ac:a:1 2 -c:s mov_text"),
            args("-metadata:s:a:0 language=eng -metadata:s:a:1 language=fra"),
            args("-metadata:s:s:0 language=spa"),
        ],
    );
    let i = agree(&src).await;
    assert_eq!(i.info.audio.len(), 2);
    assert_eq!(i.info.audio[1].channels, Some(2));
    assert_eq!(i.info.subtitles[0].codec, "mov_text");
}

#[tokio::test]
async fn other_containers_and_open_gops_fall_back_to_ffprobe() {
    let d = scratch();
    let mkv = clip(
        d.path(),
        "src.mkv",
        &[video_input("160x90", "30", 1.0), args(X264)],
    );
    let i = inspect::inspect_headers(&mkv, &Settings::default())
        .await
        .unwrap();
    assert_eq!(i.via, "ffprobe");
    assert!(i.pictures_checked);
    // Whichever path reads an open-GOP HEVC MP4, its keyframes are the ones ffprobe lists.
    let open = clip(
        d.path(),
        "open.mp4",
        &[
            video_input("160x96", "24", 2.0),
            args("-c:v libx265 -preset ultrafast -tag:v hvc1"),
            args("-x265-params keyint=12:min-keyint=12:open-gop=1:bframes=3:log-level=error"),
        ],
    );
    let (fast, slow) = both(&open).await;
    assert_eq!(fast.scan, slow.scan);
    assert_eq!(fast.info.video.frame_count, slow.info.video.frame_count);
}

async fn reject_code(path: &Path) -> &'static str {
    match inspect::inspect_headers(path, &Settings::default()).await {
        Err(HandlerError::Reject { code, .. }) => code,
        Err(HandlerError::Retry(e)) => panic!("retry, not a rejection: {e:#}"),
        Ok(i) => panic!("{} accepted via {}", path.display(), i.via),
    }
}

#[tokio::test]
async fn cut_off_and_damaged_mp4_are_refused() {
    let d = scratch();
    let fast = clip(
        d.path(),
        "fast.mp4",
        &[
            video_input("160x90", "30", 3.0),
            sine_input(440, 3.0),
            args(X264),
            args("-g 15 -c:a aac -b:a 64k -movflags +faststart"),
        ],
    );
    let data = std::fs::read(&fast).unwrap();
    // Index first, samples cut off: the reader sees samples past the end of the file.
    let cut = d.path().join("cut.mp4");
    std::fs::write(&cut, &data[..data.len() * 2 / 3]).unwrap();
    assert_eq!(reject_code(&cut).await, "undecodable");
    // Index at the end, cut off: no index at all.
    let plain = clip(
        d.path(),
        "plain.mp4",
        &[video_input("160x90", "30", 3.0), args(X264)],
    );
    let data = std::fs::read(&plain).unwrap();
    let cut = d.path().join("cut-plain.mp4");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    assert_eq!(reject_code(&cut).await, "undecodable");
    // Headers intact, pictures overwritten with garbage: the index reads fine, so the
    // decoding of the first pictures is what refuses it.
    let mut data = std::fs::read(&fast).unwrap();
    let mdat = data
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("an mdat box");
    for (i, b) in data[mdat + 4..].iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    let garbage = d.path().join("garbage.mp4");
    std::fs::write(&garbage, &data).unwrap();
    let headers = inspect::inspect_headers(&garbage, &Settings::default()).await;
    assert!(
        matches!(&headers, Ok(i) if i.via == "index"),
        "the headers alone look fine"
    );
    match inspect::inspect(&garbage, &Settings::default()).await {
        Err(HandlerError::Reject { code, .. }) => assert_eq!(code, "undecodable"),
        other => panic!("garbage pictures accepted: {:?}", other.map(|i| i.via)),
    }
}
