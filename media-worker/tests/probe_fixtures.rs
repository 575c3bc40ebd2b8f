//! ffprobe JSON parsing on checked-in fixtures (made with ffprobe 5.1 from generated clips).

use media_worker::inspect::classify;
use parallax_media::schema::{ProbeJson, Rational};

fn fixture(name: &str) -> ProbeJson {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    ProbeJson::parse(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn mp4_with_two_audio_languages_and_a_subtitle() {
    let p = fixture("two_audio_subs.mp4.json");
    assert_eq!(
        p.format.as_ref().unwrap().format_name.as_deref(),
        Some("mov,mp4,m4a,3gp,3g2,mj2")
    );
    let (video, audio, subs) = classify(&p).unwrap();
    assert_eq!(video.codec_name.as_deref(), Some("h264"));
    assert_eq!((video.width, video.height), (Some(160), Some(90)));
    assert_eq!(
        video.r_frame_rate.as_deref().and_then(Rational::parse),
        Some(Rational {
            num: 30000,
            den: 1001
        })
    );
    assert_eq!(video.nb_frames.as_deref(), Some("60"));
    assert_eq!(video.rotation(), 0);
    let langs: Vec<_> = audio.iter().map(|a| a.language.as_deref()).collect();
    assert_eq!(langs, vec![Some("eng"), Some("fra")]);
    assert!(audio[0].default && !audio[1].default);
    assert_eq!(audio[0].codec, "aac");
    assert_eq!(audio[0].channels, Some(1));
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].codec, "mov_text");
    assert_eq!(subs[0].language.as_deref(), Some("spa"));
    assert_eq!(subs[0].index, 3);
}

#[test]
fn display_matrix_rotation() {
    let p = fixture("rotated.mp4.json");
    let (video, audio, _) = classify(&p).unwrap();
    // ffprobe reports the matrix angle counter-clockwise (90); ffmpeg's autorotation turns the
    // picture 270 degrees clockwise (transpose=cclock) for it.
    assert_eq!(video.side_data_list[0].rotation, Some(90.0));
    assert_eq!(video.rotation(), 270);
    assert_eq!(audio.len(), 1);
}

#[test]
fn hevc_10_bit_in_matroska() {
    let p = fixture("hevc10.mkv.json");
    let (video, audio, subs) = classify(&p).unwrap();
    assert_eq!(video.codec_name.as_deref(), Some("hevc"));
    assert_eq!(video.pix_fmt.as_deref(), Some("yuv420p10le"));
    assert_eq!(video.time_base.as_deref(), Some("1/1000"));
    // Matroska declares no frame count: it has to be counted.
    assert_eq!(video.nb_frames, None);
    assert_eq!(audio[0].codec, "opus");
    assert!(subs.is_empty());
}

#[test]
fn audio_only_is_refused() {
    let p = fixture("audio_only.m4a.json");
    let r = classify(&p).unwrap_err();
    assert_eq!(r.code, "no-video-stream");
    assert!(r.message.contains("only audio"), "{}", r.message);
}

#[test]
fn cover_art_is_not_a_video_stream() {
    let p = fixture("cover_art.mp3.json");
    assert!(p
        .streams
        .iter()
        .any(|s| s.codec_type.as_deref() == Some("video")));
    assert_eq!(classify(&p).unwrap_err().code, "no-video-stream");
}

#[test]
fn garbage_json_is_an_error_not_a_panic() {
    assert!(ProbeJson::parse(b"not json").is_err());
    let empty = ProbeJson::parse(b"{}").unwrap();
    assert_eq!(classify(&empty).unwrap_err().code, "no-video-stream");
}
