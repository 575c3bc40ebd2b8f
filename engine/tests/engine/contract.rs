//! The model contract: the models the engine accepts (dynamic, fixed-size, 4-D output,
//! half precision) and the ones it refuses, saying why; batches do not change the depth.

use parallax_core::model::StereoMode;
use parallax_engine::{Engine, EngineConfig};

use crate::util::*;

#[test]
fn contract_accepts_dynamic_fixed_and_4d_models() {
    let dynamic = engine("luma.onnx", 1);
    assert_eq!(dynamic.model().input_size(1280, 720, 518), (924, 518));
    assert_eq!(dynamic.model().input_size(720, 1280, 518), (518, 924));
    // Never larger than the frame itself.
    assert_eq!(dynamic.model().input_size(64, 48, 518), (70, 42));
    assert_eq!(dynamic.model().batch_size(4), 4);
    let fixed = engine("luma-fixed.onnx", 4);
    assert_eq!(fixed.model().input_size(1280, 720, 518), (126, 70));
    assert_eq!(fixed.model().batch_size(4), 1, "a fixed batch of 1 wins");
    engine("luma-4d.onnx", 2);
    let default = Engine::load(&EngineConfig::new(repo().join("models/default-depth.onnx")))
        .expect("the committed default model fits the contract");
    assert_eq!(default.model().info().input, "image");
    assert_eq!(default.model().info().output, "depth");
}

#[test]
fn an_fp16_model_runs_in_half_precision_and_gives_the_same_depth() {
    let full = engine("luma.onnx", 2);
    let half = engine("luma-fp16.onnx", 2);
    let info = half.model().info();
    assert!(info.half_input && info.half_output, "{info:?}");
    assert!(!full.model().info().half_input);
    // Two frames of 28x14, a ramp in each channel.
    let (n, w, h) = (2, 28, 14);
    let input: Vec<f32> = (0..n * 3 * w * h)
        .map(|i| ((i % 97) as f32 / 97.0 - 0.45) / 0.226)
        .collect();
    let mut a = Vec::new();
    let mut b = Vec::new();
    assert_eq!(full.model().run(&input, n, (w, h), &mut a).unwrap(), (w, h));
    assert_eq!(half.model().run(&input, n, (w, h), &mut b).unwrap(), (w, h));
    assert_eq!(a.len(), n * w * h);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    // Brightness 0..1 in half precision: 11 significant bits.
    assert!(worst < 2e-3, "fp16 depth differs by up to {worst}");
    assert!(a.iter().any(|v| *v > 0.1), "the depth is not all zero");
}

#[test]
fn contract_refuses_a_wrong_rank_or_channel_count_saying_what_is_wrong() {
    let msg = load_error("bad-rank.onnx");
    assert!(
        msg.contains("does not fit the depth-model contract"),
        "{msg}"
    );
    assert!(msg.contains("rank 3"), "{msg}");
    assert!(msg.contains("[N,3,H,W]"), "{msg}");
    let msg = load_error("bad-channels.onnx");
    assert!(
        msg.contains("1 channels") && msg.contains("3 (RGB)"),
        "{msg}"
    );
    let msg = load_error("nope.onnx");
    assert!(msg.contains("does not exist"), "{msg}");
}

#[tokio::test]
async fn fixed_size_and_4d_models_convert_and_batches_do_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = testsrc2_clip(
        dir.path(),
        "in.mkv",
        "96x64",
        "25",
        10,
        &["-c:v", "libx264", "-qp", "0"],
    );
    for m in ["luma-fixed.onnx", "luma-4d.onnx"] {
        let out = dir.path().join(format!("{m}.mkv"));
        let rep = engine(m, 3)
            .convert(&request(&input, &out, StereoMode::FullSbs), &|_| {})
            .await
            .unwrap();
        assert_eq!(rep.frames, 10);
        assert_eq!(dims(&out), (192, 64));
    }
    // Batch 1 and batch 4 (with a short last batch) give the same depth, frame for frame.
    let mut outputs = Vec::new();
    for batch in [1, 4] {
        let out = dir.path().join(format!("depth-b{batch}.mkv"));
        let mut req = request(&input, &out, StereoMode::DepthMap);
        req.settings.crf = 0;
        engine("luma.onnx", batch)
            .convert(&req, &|_| {})
            .await
            .unwrap();
        outputs.push(luma_frames(&out));
    }
    assert_eq!(outputs[0].len(), 10);
    assert_eq!(outputs[0], outputs[1]);
}
