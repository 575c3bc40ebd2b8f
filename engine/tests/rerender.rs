//! Depth once, render many, at the engine: a conversion stores its depth maps
//! (`ConvertRequest::depth_out`), and a re-render of the same input from them
//! (`ConvertRequest::depth_in`) in another layout or with other settings runs no model and
//! gives exactly the frames (and times) a direct conversion in that layout gives; a segment's
//! stored depth keeps its seam; stored depth of another input is refused as bad input.
//! Clips are made here with ffmpeg (testsrc2), models by `models/make_models.py`.

use std::path::{Path, PathBuf};

use parallax_core::model::{ConversionSettings, FastDepth, StereoMode};
use parallax_engine::{BadInput, ConvertRequest, SeamStart};

mod util;
use util::*;

/// A clip of `frames` frames from the lavfi source `src` (size and rate included), a
/// keyframe every 5 frames.
fn clip(dir: &Path, name: &str, src: &str, frames: u32) -> PathBuf {
    lavfi_clip(
        &dir.join(name),
        src,
        frames,
        &["-c:v", "libx264", "-g", "5"],
    )
}

/// A stored depth file's frames, raw 16-bit levels.
fn depth_levels(path: &Path) -> Vec<u8> {
    raw_frames(path, "gray16le")
}

/// The kit's request, with the model on every frame: the comparisons with float depth below
/// assume its depth (the fast path's own tests are in tests/fastdepth.rs).
fn request(input: &Path, output: &Path, mode: StereoMode) -> ConvertRequest {
    let mut r = util::request(input, output, mode);
    r.settings.fast_depth = FastDepth::Off;
    r
}

/// The largest per-sample difference between two decoded videos, and how many samples differ.
fn difference(a: &[Vec<u8>], b: &[Vec<u8>]) -> (u8, usize) {
    assert_eq!(a.len(), b.len(), "frame counts");
    let mut most = 0u8;
    let mut differing = 0usize;
    for (fa, fb) in a.iter().zip(b) {
        assert_eq!(fa.len(), fb.len(), "frame sizes");
        for (x, y) in fa.iter().zip(fb) {
            let d = x.abs_diff(*y);
            most = most.max(d);
            differing += usize::from(d > 0);
        }
    }
    (most, differing)
}

#[tokio::test]
async fn a_rerender_from_stored_depth_equals_a_direct_conversion_and_runs_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let input = clip(dir.path(), "in.mp4", "testsrc2=size=128x72:rate=24", 14);
    let luma = engine("luma.onnx", 2);

    // The first conversion stores its depth.
    let mut first = request(&input, &p("first_LR.mkv"), StereoMode::FullSbs);
    first.depth_out = Some(p("depth.mkv"));
    let report = luma.convert(&first, &|_| {}).await.unwrap();
    assert_eq!(report.frames, 14);
    assert!(luma.model().runs() > 0);
    let stream = ffprobe(
        &[
            "-count_packets",
            "-show_entries",
            "stream=codec_name,pix_fmt,width,height,nb_read_packets",
            "-of",
            "csv=p=0",
        ],
        &p("depth.mkv"),
    );
    // The model's own size for 42 px on the short side of 128x72.
    assert_eq!(stream.trim(), "ffv1,70,42,gray16le,14", "the stored depth");
    assert!(
        !p(".partial-depth.mkv").exists(),
        "no partial file is left behind"
    );

    // Re-renders in other layouts and with other settings, each from an engine whose model
    // would give flat depth: anything but the stored depth would show.
    let constant = engine("constant.onnx", 1);
    let cases = [
        (StereoMode::HalfSbs, ConversionSettings::default()),
        (
            StereoMode::Anaglyph,
            ConversionSettings {
                divergence: 3.5,
                convergence: 0.3,
                edge_dilation: 0,
                ..ConversionSettings::default()
            },
        ),
        (
            StereoMode::FullTb,
            ConversionSettings {
                foreground_scale: 1.5,
                auto_convergence: true,
                ..ConversionSettings::default()
            },
        ),
    ];
    for (mode, settings) in cases {
        let settings = ConversionSettings {
            depth_resolution: Some(42),
            fast_depth: FastDepth::Off,
            ..settings
        };
        let name = |what: &str| p(&format!("{what}-{mode}.mkv"));
        let mut again = request(&input, &name("rerender"), mode);
        again.settings = settings.clone();
        again.depth_in = Some(p("depth.mkv"));
        again.preview_dir = Some(p(&format!("preview-{mode}")));
        let done = std::sync::atomic::AtomicU64::new(0);
        let report = constant
            .convert(&again, &|n| {
                done.store(n, std::sync::atomic::Ordering::Relaxed)
            })
            .await
            .unwrap();
        assert_eq!(report.frames, 14, "{mode}");
        assert_eq!(done.into_inner(), 14, "{mode}: progress");
        assert_eq!(constant.model().runs(), 0, "{mode}: the model never ran");
        assert!(report.preview_sbs.is_some_and(|p| p.is_file()), "{mode}");
        assert!(report.preview_depth.is_some_and(|p| p.is_file()), "{mode}");

        // The direct conversion in that layout, its renderer given stored levels too
        // (depth_out): the same frames, sample for sample, at the same times.
        let mut direct = request(&input, &name("direct"), mode);
        direct.settings = settings.clone();
        direct.depth_out = Some(name("direct-depth"));
        luma.convert(&direct, &|_| {}).await.unwrap();
        assert_eq!(
            depth_levels(&name("direct-depth")),
            depth_levels(&p("depth.mkv")),
            "{mode}: the model's depth is the stored depth"
        );
        let (got, want) = (yuv_frames(&name("rerender")), yuv_frames(&name("direct")));
        assert_eq!(got.len(), 14, "{mode}");
        assert_eq!(dims(&name("rerender")), dims(&name("direct")), "{mode}");
        assert_eq!(difference(&got, &want), (0, 0), "{mode}: frames");
        assert_eq!(
            packet_times(&name("rerender")),
            packet_times(&name("direct")),
            "{mode}: frame times"
        );

        // And a plain direct conversion (full-precision depth): within a level nearly
        // everywhere (the stored levels move depth by at most 1/131070).
        let mut plain = request(&input, &name("plain"), mode);
        plain.settings = settings;
        luma.convert(&plain, &|_| {}).await.unwrap();
        let plain = yuv_frames(&name("plain"));
        let (_, differing) = difference(&got, &plain);
        let close = got
            .iter()
            .zip(&plain)
            .flat_map(|(a, b)| a.iter().zip(b))
            .filter(|(a, b)| a.abs_diff(**b) <= 1)
            .count();
        let total: usize = got.iter().map(Vec::len).sum();
        assert!(
            close as f64 >= 0.999 * total as f64,
            "{mode}: {differing} of {total} samples differ, {} by more than a level",
            total - close
        );
    }
}

/// A segment converted after a warm-up on the previous segment's tail stores its depth with
/// that seam in it: the re-render (no previous segment, its seam ignored) gives the warm
/// conversion's frames, not a cold start's.
#[tokio::test]
async fn a_segments_stored_depth_keeps_its_seam() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // One fade-in cut in two: the warm-up sees the darker frames before the segment.
    let fade = "testsrc2=size=96x54:rate=24,fade=in:0:40";
    let previous = clip(dir.path(), "previous.mkv", fade, 12);
    let rest = format!("{fade},trim=start_frame=12,setpts=PTS-STARTPTS");
    let segment = clip(dir.path(), "segment.mkv", &rest, 8);
    let luma = engine("luma.onnx", 1);
    let warm_seam = SeamStart::Warmup {
        previous: previous.clone(),
        frames: 6,
    };
    let settings = ConversionSettings {
        depth_resolution: Some(42),
        ema_decay: 0.95,
        ..ConversionSettings::default()
    };

    let mut warm = request(&segment, &p("warm.mkv"), StereoMode::HalfSbs);
    warm.settings = settings.clone();
    warm.seam = warm_seam.clone();
    warm.depth_out = Some(p("depth.mkv"));
    luma.convert(&warm, &|_| {}).await.unwrap();

    let mut cold = request(&segment, &p("cold.mkv"), StereoMode::HalfSbs);
    cold.settings = settings.clone();
    cold.depth_out = Some(p("cold-depth.mkv"));
    luma.convert(&cold, &|_| {}).await.unwrap();
    assert!(
        depth_levels(&p("depth.mkv")) != depth_levels(&p("cold-depth.mkv")),
        "the warm-up changes the segment's depth (else this test shows nothing)"
    );

    let runs = luma.model().runs();
    let mut again = request(&segment, &p("again.mkv"), StereoMode::HalfSbs);
    again.settings = settings;
    // A seam given with stored depth is not used: the stored depth has it already.
    again.seam = warm_seam;
    again.depth_in = Some(p("depth.mkv"));
    luma.convert(&again, &|_| {}).await.unwrap();
    assert_eq!(luma.model().runs(), runs, "no model run, warm-up included");
    assert_eq!(
        difference(&yuv_frames(&p("again.mkv")), &yuv_frames(&p("warm.mkv"))),
        (0, 0)
    );
}

/// Stored depth with fewer or more frames than the input belongs to another input: refused
/// as bad input, saying so, with no output left behind. So is a file that is not stored
/// depth, and asking to read and store depth in one conversion is refused.
#[tokio::test]
async fn stored_depth_of_another_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let src = "testsrc2=size=96x54:rate=24";
    let ten = clip(dir.path(), "ten.mp4", src, 10);
    let luma = engine("luma.onnx", 1);
    let mut store = request(&ten, &p("ten_LR.mkv"), StereoMode::FullSbs);
    store.depth_out = Some(p("depth.mkv"));
    luma.convert(&store, &|_| {}).await.unwrap();

    for (frames, says) in [(7, "more frames than the input"), (13, "has 10 frames")] {
        let other = clip(dir.path(), &format!("{frames}.mp4"), src, frames);
        let out = p(&format!("out-{frames}.mkv"));
        let mut req = request(&other, &out, StereoMode::HalfSbs);
        req.depth_in = Some(p("depth.mkv"));
        let err = luma.convert(&req, &|_| {}).await.unwrap_err();
        let msg = format!("{err:#}");
        assert!(BadInput::find(&err).is_some(), "{frames} frames: {msg}");
        assert!(msg.contains(says), "{frames} frames: {msg}");
        assert!(!out.exists(), "{frames} frames: no output");
        assert!(!p(&format!(".partial-out-{frames}.mkv")).exists());
    }

    let mut not_depth = request(&ten, &p("out-video.mkv"), StereoMode::HalfSbs);
    not_depth.depth_in = Some(ten.clone());
    let err = luma.convert(&not_depth, &|_| {}).await.unwrap_err();
    assert!(BadInput::find(&err).is_some(), "{err:#}");
    assert!(
        format!("{err:#}").contains("not a stored depth file"),
        "{err:#}"
    );

    let mut both = request(&ten, &p("out-both.mkv"), StereoMode::HalfSbs);
    both.depth_in = Some(p("depth.mkv"));
    both.depth_out = Some(p("depth-again.mkv"));
    let err = luma.convert(&both, &|_| {}).await.unwrap_err();
    assert!(format!("{err:#}").contains("not both"), "{err:#}");
}
