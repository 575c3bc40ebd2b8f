//! What a conversion writes: each layout's size and declaration inside the file, the input's
//! frame count and times, the output size cap, VR180, the previews.

use std::path::Path;

use parallax_core::model::StereoMode;

use crate::util::*;

#[tokio::test]
async fn every_layout_has_the_right_size_and_the_input_frame_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = testsrc2_clip(dir.path(), "in.mp4", "64x48", "25", 8, &["-c:v", "libx264"]);
    let eng = engine("luma.onnx", 2);
    for mode in StereoMode::ALL {
        let out = dir.path().join(format!("out-{mode}.mkv"));
        let rep = eng
            .convert(&request(&input, &out, mode), &|_| {})
            .await
            .unwrap();
        assert_eq!(rep.frames, 8, "{mode}");
        assert_eq!(frame_count(&out), 8, "{mode}");
        let want = match mode {
            StereoMode::FullSbs | StereoMode::FullCross | StereoMode::Rgbd => (128, 48),
            StereoMode::FullTb => (64, 96),
            // Each eye a square 180 / 120 times the source's width.
            StereoMode::Vr180 => (192, 96),
            _ => (64, 48),
        };
        assert_eq!(dims(&out), want, "{mode}");
    }
}

#[tokio::test]
async fn frame_count_and_timestamps_equal_the_input() {
    let dir = tempfile::tempdir().unwrap();
    // NTSC rate, odd size (cropped to even), x265 to check the other encoder too.
    let input = testsrc2_clip(
        dir.path(),
        "in.mp4",
        "99x57",
        "30000/1001",
        45,
        &["-c:v", "libx264"],
    );
    let out = dir.path().join("out.mkv");
    let mut req = request(&input, &out, StereoMode::HalfSbs);
    req.settings.encoder = "libx265".to_owned();
    req.expected_frames = Some(45);
    let seen = std::sync::Mutex::new(Vec::new());
    let rep = engine("luma.onnx", 1)
        .convert(&req, &|n| seen.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(rep.frames, 45);
    assert_eq!(
        *seen.lock().unwrap(),
        (1..=45).collect::<Vec<u64>>(),
        "progress per frame"
    );
    assert_eq!(dims(&out), (98, 56));
    let (a, b) = (packet_times(&input), packet_times(&out));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 0.0015,
            "frame {i}: input at {x}s, output at {y}s"
        );
    }
    let rate = ffprobe(
        &["-show_entries", "stream=r_frame_rate", "-of", "csv=p=0"],
        &out,
    );
    assert_eq!(rate.trim(), "30000/1001");
}

#[tokio::test]
async fn previews_of_the_first_frame_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = testsrc2_clip(dir.path(), "in.mp4", "64x48", "25", 4, &["-c:v", "libx264"]);
    let mut req = request(&input, &dir.path().join("o.mkv"), StereoMode::Anaglyph);
    req.preview_dir = Some(dir.path().join("previews"));
    let rep = engine("luma.onnx", 1).convert(&req, &|_| {}).await.unwrap();
    let sbs = rep.preview_sbs.expect("sbs preview");
    let depth = rep.preview_depth.expect("depth preview");
    assert_eq!(sbs.file_name().unwrap(), "preview-sbs.jpg");
    assert_eq!(depth.file_name().unwrap(), "preview-depth.png");
    // Side by side even though the video is an anaglyph.
    assert_eq!(dims(&sbs), (128, 48));
    assert_eq!(dims(&depth), (64, 48));
}

/// The Stereo 3D side data of the first video stream as ffprobe prints it (`type=side by
/// side`, `inverted=0`, ...), or "" when there is none.
fn stream_stereo_side_data(path: &Path) -> String {
    let text = ffprobe(&["-show_streams"], path);
    text.split("[SIDE_DATA]")
        .skip(1)
        .filter_map(|sd| sd.split("[/SIDE_DATA]").next())
        .find(|sd| sd.contains("side_data_type=Stereo 3D"))
        .unwrap_or("")
        .to_owned()
}

/// Every stereo layout says what it is inside the file, MKV (StereoMode) and MP4 (`st3d`)
/// alike, as ffprobe's Stereo 3D side data shows; half layouts with libx264 also carry the
/// H.264 frame-packing SEI (Stereo 3D side data on the decoded frames), full ones do not,
/// nor does HEVC; outputs that are not a stereo pair declare nothing.
#[tokio::test]
async fn every_stereo_layout_is_declared_inside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = testsrc2_clip(dir.path(), "in.mp4", "64x48", "25", 3, &["-c:v", "libx264"]);
    let eng = engine("luma.onnx", 1);
    for mode in StereoMode::ALL {
        // (type, right view first, frame-packing SEI with libx264)
        let want = match mode {
            StereoMode::FullSbs | StereoMode::Vr180 => Some(("side by side", false, false)),
            StereoMode::HalfSbs => Some(("side by side", false, true)),
            StereoMode::FullTb => Some(("top and bottom", false, false)),
            StereoMode::HalfTb => Some(("top and bottom", false, true)),
            StereoMode::FullCross | StereoMode::HalfCross => Some(("side by side", true, false)),
            StereoMode::Anaglyph | StereoMode::DepthMap | StereoMode::Rgbd => None,
        };
        for ext in ["mkv", "mp4"] {
            let out = dir.path().join(format!("{mode}.{ext}"));
            eng.convert(&request(&input, &out, mode), &|_| {})
                .await
                .unwrap_or_else(|e| panic!("{mode} {ext}: {e:#}"));
            let sd = stream_stereo_side_data(&out);
            match want {
                // MP4's `st3d` has no eye order: a right-first layout is declared in MKV only.
                Some((_, true, _)) if ext == "mp4" => assert_eq!(sd, "", "{mode} {ext}"),
                Some((kind, inverted, _)) => {
                    assert!(
                        sd.contains(&format!("type={kind}\n")),
                        "{mode} {ext}: {sd:?}"
                    );
                    let inv = format!("inverted={}", u8::from(inverted));
                    assert!(sd.contains(&inv), "{mode} {ext}: {sd:?}");
                }
                None => assert_eq!(sd, "", "{mode} {ext}"),
            }
            let sei = first_frame_side_data(&out).contains("Stereo 3D");
            let want_sei = want.is_some_and(|(_, _, sei)| sei);
            assert_eq!(sei, want_sei, "{mode} {ext}: frame-packing SEI");
        }
    }

    // x265 writes no frame-packing SEI: the container's declaration stands alone.
    let out = dir.path().join("half_tb-hevc.mkv");
    let mut req = request(&input, &out, StereoMode::HalfTb);
    req.settings.encoder = "libx265".to_owned();
    eng.convert(&req, &|_| {}).await.unwrap();
    assert!(stream_stereo_side_data(&out).contains("type=top and bottom\n"));
    assert!(!first_frame_side_data(&out).contains("Stereo 3D"));
}

/// The output size cap scales a larger output down, aspect kept; a smaller one is left alone.
#[tokio::test]
async fn the_output_size_cap_scales_large_outputs_down() {
    let dir = tempfile::tempdir().unwrap();
    let input = testsrc2_clip(dir.path(), "in.mkv", "160x90", "25", 4, &[]);
    let eng = engine("luma.onnx", 1);
    for (cap, want) in [
        (Some(160), (160, 46)),
        (Some(640), (320, 90)),
        (None, (320, 90)),
    ] {
        let out = dir.path().join(format!("out-{cap:?}.mkv"));
        let mut req = request(&input, &out, StereoMode::FullSbs);
        req.settings.max_output_width = cap;
        eng.convert(&req, &|_| {}).await.unwrap();
        assert_eq!(dims(&out), want, "{cap:?}");
        assert_eq!(frame_count(&out), 4);
    }
}

/// VR180: each view projected onto a half-equirectangular square (180 / 120 times the
/// source's width, even), side by side, declared as side by side and as an equirectangular
/// projection bounded to 180 degrees (MKV `Projection`, MP4 `sv3d`), with the source's frame
/// count; the middle of each eye shows the picture, the corners the black around it.
#[tokio::test]
async fn vr180_is_projected_and_declared_for_headsets() {
    let dir = tempfile::tempdir().unwrap();
    let input = testsrc2_clip(dir.path(), "in.mp4", "96x54", "25", 3, &["-c:v", "libx264"]);
    let eng = engine("luma.onnx", 1);
    for ext in ["mkv", "mp4"] {
        let out = dir.path().join(format!("vr180.{ext}"));
        eng.convert(&request(&input, &out, StereoMode::Vr180), &|_| {})
            .await
            .unwrap();
        assert_eq!(dims(&out), (288, 144), "{ext}");
        assert_eq!(frame_count(&out), 3, "{ext}");
        let text = ffprobe(&["-show_streams"], &out);
        for want in [
            "side_data_type=Spherical Mapping",
            "projection=tiled equirectangular",
            "bound_top=0\n",
            "bound_bottom=0\n",
            "type=side by side",
        ] {
            assert!(text.contains(want), "{ext}: {want} missing in\n{text}");
        }
        // ffprobe prints the bounds in pixels of the full 360-degree frame: a 180-degree
        // frame crops as much as it keeps.
        let bound = |k: &str| -> u64 {
            let at = text.find(k).unwrap() + k.len();
            text[at..].lines().next().unwrap().parse().unwrap()
        };
        assert_eq!(
            bound("bound_left=") + bound("bound_right="),
            288,
            "{ext}: {text}"
        );
        let luma = &luma_frames(&out)[0];
        let at = |x: usize, y: usize| luma[y * 288 + x];
        assert!(
            at(2, 2) < 20 && at(146, 141) < 20,
            "{ext}: corners are black"
        );
        assert!(
            at(72, 72) > 20 && at(216, 72) > 20,
            "{ext}: the picture is in the middle"
        );
    }
}
