//! Real-world source shapes, each chunked, converted by the stand-in and reassembled; every
//! segment is checked to start on a keyframe and decode alone, and the result to keep the
//! frame count, duration, audio and subtitle tracks (with languages).

mod common;

use common::*;
use media_worker::reassemble::Container;

const X264: &str = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p";

#[tokio::test]
async fn ntsc_29_97_mp4_with_audio() {
    let d = scratch();
    let src = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "30000/1001", 4.0),
            sine_input(440, 4.0),
            args(X264),
            args("-g 15 -bf 2 -c:a aac -b:a 64k -metadata:s:a:0 language=eng"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    assert_eq!(rt.inspection.info.video.frame_count, 120);
    assert!(rt.segments.len() >= 3, "{} segments", rt.segments.len());
    assert_eq!(rt.assembled.container, Container::Mp4);
    assert!(rt.assembled.joined, "segments joined in-process");
    assert!(moov_before_mdat(&rt.assembled.path), "faststart");
    assert_result(&src, &rt);
}

#[tokio::test]
async fn variable_frame_rate_mkv() {
    let d = scratch();
    // 30 fps for the first second, then every third frame dropped with the gaps kept.
    let src = clip(
        d.path(),
        "src.mkv",
        &[
            video_input("160x90", "30", 4.0),
            sine_input(300, 4.0),
            args("-vf select='lt(n,30)+not(eq(mod(n,3),2))' -fps_mode vfr"),
            args(X264),
            args("-g 10 -c:a aac -b:a 64k"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    assert!(
        rt.inspection.info.video.variable_frame_rate,
        "detected as VFR"
    );
    assert_eq!(rt.inspection.info.video.frame_count, 30 + 60);
    assert!(rt.segments.len() >= 3);
    assert_result(&src, &rt);
}

#[tokio::test]
async fn odd_dimensions() {
    let d = scratch();
    let src = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "25", 3.0),
            sine_input(500, 3.0),
            args("-vf scale=161:91 -c:v libx264 -preset ultrafast -pix_fmt yuv444p -g 12 -c:a aac -b:a 64k"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    assert_eq!(rt.inspection.info.video.width, 161);
    assert_eq!(rt.inspection.info.video.height, 91);
    assert_result(&src, &rt);
}

#[tokio::test]
async fn rotation_metadata_comes_out_upright() {
    let d = scratch();
    let plain = clip(
        d.path(),
        "plain.mp4",
        &[
            video_input("160x90", "30", 3.0),
            sine_input(600, 3.0),
            args(X264),
            args("-g 15 -c:a aac -b:a 64k"),
        ],
    );
    // A phone-style file: the pictures are stored sideways with a display rotation.
    let src = make(
        d.path(),
        "rotated.mp4",
        &[
            "-i",
            plain.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    assert_ne!(rt.inspection.info.video.rotation, 0);
    assert!(rt.manifest.rotated_upright);
    // The segments themselves are upright (MKV cannot carry the rotation).
    let seg = probe(&rt.segments[0]);
    assert_eq!(streams(&seg, "video")[0].width, Some(90));
    assert_eq!(streams(&seg, "video")[0].height, Some(160));
    assert_result(&src, &rt);
}

#[tokio::test]
async fn hevc_10_bit_mkv_with_opus() {
    let d = scratch();
    let src = clip(
        d.path(),
        "src.mkv",
        &[
            video_input("160x96", "24", 3.0),
            sine_input(700, 3.0),
            args("-c:v libx265 -preset ultrafast -pix_fmt yuv420p10le"),
            args("-x265-params keyint=12:min-keyint=12:open-gop=0:log-level=error"),
            args("-c:a libopus -b:a 48k"),
            args("-metadata:s:a:0 language=jpn"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    assert_eq!(rt.inspection.info.video.codec, "hevc");
    assert_eq!(
        rt.inspection.info.video.pix_fmt.as_deref(),
        Some("yuv420p10le")
    );
    assert!(rt.segments.len() >= 2, "{} segments", rt.segments.len());
    // Opus does not go into MP4 here: the result is MKV.
    assert_eq!(rt.assembled.container, Container::Mkv);
    assert_result(&src, &rt);
}

#[tokio::test]
async fn no_audio_and_shorter_than_one_segment() {
    let d = scratch();
    let src = clip(
        d.path(),
        "src.mp4",
        &[video_input("160x90", "30", 2.0), args(X264), args("-g 30")],
    );
    let rt = round_trip(&src, d.path(), &settings(10.0)).await;
    assert_eq!(rt.segments.len(), 1);
    assert_eq!(rt.manifest.segments[0].frame_count, 60);
    assert_eq!(rt.assembled.container, Container::Mp4);
    assert!(streams(&probe(&rt.assembled.path), "audio").is_empty());
    assert_result(&src, &rt);
}

#[tokio::test]
async fn long_gop_makes_longer_segments() {
    let d = scratch();
    let src = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "30", 5.0),
            sine_input(800, 5.0),
            args(X264),
            args("-g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 64k"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    // Keyframes every 2 s with 1 s asked for: 2 s segments, never a cut between keyframes.
    let counts: Vec<u64> = rt.manifest.segments.iter().map(|s| s.frame_count).collect();
    assert_eq!(counts, vec![60, 60, 30]);
    assert_result(&src, &rt);
}

#[tokio::test]
async fn mov_with_pcm_audio_becomes_mkv() {
    let d = scratch();
    let src = clip(
        d.path(),
        "src.mov",
        &[
            video_input("160x90", "25", 3.0),
            sine_input(900, 3.0),
            args(X264),
            args("-g 10 -c:a pcm_s16le -metadata:s:a:0 language=ger -f mov"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    assert!(rt.inspection.info.format_name.contains("mov"));
    assert_eq!(rt.assembled.container, Container::Mkv);
    assert_result(&src, &rt);
}

fn write_srt(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("subs.srt");
    std::fs::write(
        &p,
        "1\n00:00:00,500 --> 00:00:01,500\nHello\n\n2\n00:00:02,000 --> 00:00:02,800\nWorld\n",
    )
    .unwrap();
    p
}

#[tokio::test]
async fn two_audio_languages_and_subtitles_in_mp4() {
    let d = scratch();
    let srt = write_srt(d.path());
    let src = clip(
        d.path(),
        "src.mp4",
        &[
            video_input("160x90", "30", 3.0),
            sine_input(440, 3.0),
            sine_input(880, 3.0),
            args(&format!("-i {}", srt.display())),
            args("-map 0:v -map 1:a -map 2:a -map 3:s"),
            args(X264),
            args("-g 15 -c:a aac -b:a 64k -c:s mov_text"),
            args("-metadata:s:a:0 language=eng -metadata:s:a:1 language=fra -metadata:s:s:0 language=spa"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    assert_eq!(rt.inspection.info.audio.len(), 2);
    assert_eq!(rt.assembled.container, Container::Mp4);
    let r = probe(&rt.assembled.path);
    let langs: Vec<_> = streams(&r, "audio")
        .iter()
        .map(|s| s.tag("language").unwrap().to_owned())
        .collect();
    assert_eq!(langs, vec!["eng", "fra"]);
    let subs = streams(&r, "subtitle");
    assert_eq!(subs[0].codec_name.as_deref(), Some("mov_text"));
    assert_eq!(subs[0].tag("language"), Some("spa"));
    assert!(moov_before_mdat(&rt.assembled.path));
    assert_result(&src, &rt);
}

#[tokio::test]
async fn mkv_with_ass_subtitles_stays_mkv() {
    let d = scratch();
    let srt = write_srt(d.path());
    let src = clip(
        d.path(),
        "src.mkv",
        &[
            video_input("160x90", "30", 3.0),
            sine_input(440, 3.0),
            sine_input(660, 3.0),
            args(&format!("-i {}", srt.display())),
            args("-map 0:v -map 1:a -map 2:a -map 3:s"),
            args(X264),
            args("-g 15 -c:a aac -b:a 64k -c:s ass"),
            args("-metadata:s:a:0 language=eng -metadata:s:a:1 language=ita -metadata:s:s:0 language=eng"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    assert_eq!(rt.assembled.container, Container::Mkv);
    let r = probe(&rt.assembled.path);
    assert_eq!(
        streams(&r, "subtitle")[0].codec_name.as_deref(),
        Some("ass")
    );
    assert_eq!(streams(&r, "audio")[1].tag("language"), Some("ita"));
    assert_result(&src, &rt);
}

#[tokio::test]
async fn open_gop_keyframes_with_leading_pictures_are_not_cut() {
    let d = scratch();
    // x265's default open GOPs: each CRA keyframe is followed (in decoding order) by
    // pictures shown before it that reference the previous GOP. A segment starting there
    // would not decode alone, so no cut is made at such a keyframe.
    let src = clip(
        d.path(),
        "src.mkv",
        &[
            video_input("160x96", "24", 3.0),
            args("-c:v libx265 -preset ultrafast -x265-params keyint=12:min-keyint=12:open-gop=1:bframes=3:log-level=error"),
        ],
    );
    let rt = round_trip(&src, d.path(), &settings(1.0)).await;
    let kfs = &rt.inspection.scan.keyframes;
    assert!(kfs.len() > 2, "several keyframes");
    for s in &rt.manifest.segments {
        let kf = kfs
            .iter()
            .find(|k| k.packet_index == s.first_frame)
            .unwrap();
        assert!(kf.clean, "segment {} starts on a clean keyframe", s.index);
    }
    assert_result(&src, &rt);
}
