//! Inputs the engine cannot convert are bad input, saying why, and leave nothing behind.

use parallax_core::model::StereoMode;
use parallax_engine::BadInput;

use crate::util::*;

#[tokio::test]
async fn unusable_input_is_reported_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "this is not a video").unwrap();
    let eng = engine("luma.onnx", 1);
    let err = eng
        .convert(
            &request(&text, &dir.path().join("o.mkv"), StereoMode::FullSbs),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");

    let input = testsrc2_clip(dir.path(), "in.mp4", "64x48", "25", 5, &["-c:v", "libx264"]);
    let out = dir.path().join("o.mkv");
    let mut req = request(&input, &out, StereoMode::FullSbs);
    req.expected_frames = Some(6);
    let err = eng.convert(&req, &|_| {}).await.unwrap_err();
    let bad = BadInput::find(&err).expect("a frame-count mismatch is bad input");
    assert!(bad.0.contains("5 frames, expected 6"), "{bad}");
    assert!(!out.exists(), "no partial output is left behind");
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".partial")));

    let mut req = request(&input, &out, StereoMode::FullSbs);
    req.settings.divergence = 50.0;
    let err = eng.convert(&req, &|_| {}).await.unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");
}

/// A video whose packets decode to no picture at all (every keyframe dropped) is bad input
/// saying so, not an encoder failure to retry; nothing is written.
#[tokio::test]
async fn a_video_that_decodes_to_no_frames_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let ok = testsrc2_clip(
        dir.path(),
        "ok.mp4",
        "64x48",
        "25",
        20,
        &["-c:v", "libx264"],
    );
    let input = dir.path().join("nokey.mkv");
    ffmpeg(&[
        "-i",
        ok.to_str().unwrap(),
        "-c",
        "copy",
        "-bsf:v",
        "noise=drop=key",
        input.to_str().unwrap(),
    ]);
    assert!(frame_count(&input) > 0, "the packets are there");
    let out = dir.path().join("out.mkv");
    let err = engine("luma.onnx", 1)
        .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
        .await
        .unwrap_err();
    let bad = BadInput::find(&err).unwrap_or_else(|| panic!("not bad input: {err:#}"));
    assert!(bad.0.contains("no video frames"), "{bad}");
    assert!(!out.exists());
}
