//! The depth model alone: `inference_vs_onnxruntime` (the engine's model runs against
//! onnxruntime's own Python API, in turn) and `make gpu-check`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use parallax_engine::{Engine, EngineConfig};

use super::{env_num, median, python, vits14_model};

/// onnxruntime's own Python API, kept running: after a warm-up it answers each line on stdin
/// with the seconds one `run` took, so its runs can alternate with the engine's one by one.
pub(crate) const PY_BENCH: &str = r#"
import sys, time
import numpy as np
import onnxruntime as ort
path, n, h, w, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
x = np.random.default_rng(0).standard_normal((n, 3, h, w)).astype(np.float32)
s.run(None, {name: x})
print("ready", flush=True)
for _ in sys.stdin:
    t = time.perf_counter()
    s.run(None, {name: x})
    print(time.perf_counter() - t, flush=True)
"#;

/// `make gpu-check` (`BENCH_ONLY=gpu`, never part of a plain run): the real-size model on
/// the execution provider `EXECUTION_PROVIDER` asks for (default cuda): which provider it
/// actually runs on (CPU after a fallback, which ONNX Runtime's log explains) and its frames
/// per second at 720p's model input (518x924), after two warm-up runs.
pub(crate) fn gpu_check(dir: &Path) {
    use parallax_engine::ExecutionProvider;
    let Some(model) = vits14_model(dir, "gpu-check") else {
        return;
    };
    let asked = match std::env::var("EXECUTION_PROVIDER").as_deref() {
        Ok("cpu") => ExecutionProvider::Cpu,
        Ok("tensorrt") => ExecutionProvider::Tensorrt,
        _ => ExecutionProvider::Cuda,
    };
    let mut cfg = EngineConfig::new(&model);
    cfg.provider = asked;
    let engine = Engine::load(&cfg).expect("loading the ViT-S/14 DPT model");
    let in_use = engine.model().provider();
    let (w, h) = engine.model().input_size(1280, 720, 518);
    let input = vec![0.1f32; 3 * w * h];
    let mut out = Vec::new();
    for _ in 0..2 {
        engine
            .model()
            .run(&input, 1, (w, h), &mut out)
            .expect("warm-up");
    }
    let n = env_num("GPU_CHECK_RUNS", 20).max(1);
    let t = Instant::now();
    for _ in 0..n {
        engine
            .model()
            .run(&input, 1, (w, h), &mut out)
            .expect("inference");
    }
    let fps = n as f64 / t.elapsed().as_secs_f64();
    println!("gpu-check: asked for {asked:?}, running on {in_use:?}");
    println!("gpu-check: {fps:.2} frames/s, ViT-S/14 DPT (Depth Anything V2 Small's shape) at {w}x{h}, batch 1");
    if in_use != asked {
        println!(
            "gpu-check: the {asked:?} provider is not in use: the ONNX Runtime library at ORT_DYLIB_PATH has none, or it could not start (it needs the onnxruntime-gpu wheel's library and a visible GPU)"
        );
    }
}

pub(crate) fn inference(dir: &Path) -> Option<(f64, f64, f64)> {
    use std::io::{BufRead as _, BufReader, Write as _};
    let model = vits14_model(dir, "inference_vs_onnxruntime")?;
    let (n, h, w, threads) = (1usize, 518usize, 518usize, 2usize);
    let mut cfg = EngineConfig::new(&model);
    cfg.intra_threads = Some(threads);
    cfg.batch_size = n;
    let engine = Engine::load(&cfg).expect("loading the ViT-S/14 DPT model");
    let input = vec![0.1f32; n * 3 * h * w];
    let mut out = Vec::new();
    let mut py = Command::new(python())
        .arg("-c")
        .arg(PY_BENCH)
        .arg(&model)
        .args([n, h, w, threads].map(|v| v.to_string()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut py_in = py.stdin.take().expect("piped");
    let mut py_out = BufReader::new(py.stdout.take().expect("piped")).lines();
    let mut py_line = || {
        py_out
            .next()
            .expect("python answers")
            .expect("reading python's answer")
    };
    assert_eq!(py_line(), "ready", "python's warm-up");
    engine
        .model()
        .run(&input, n, (w, h), &mut out)
        .expect("warm-up");
    // One run each in turn (BENCH_INFER_RUNS pairs, default 12), with a pause between so
    // neither side's threads are still winding down while the other runs; each side's
    // median is kept.
    let pairs = env_num("BENCH_INFER_RUNS", 12).max(1) as usize;
    let (mut rust, mut onnx) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        engine
            .model()
            .run(&input, n, (w, h), &mut out)
            .expect("inference");
        rust.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(100));
        writeln!(py_in, "run").expect("asking python for a run");
        let secs = py_line();
        onnx.push(secs.trim().parse::<f64>().expect("a time"));
    }
    drop(py_in);
    let status = py.wait().expect("python exits");
    assert!(status.success(), "the python side failed: {status}");
    let (rust, onnx) = (median(&mut rust), median(&mut onnx));
    Some((onnx / rust, n as f64 / rust, n as f64 / onnx))
}
