//! The renderer alone: `warp_mpix_per_s`, the CPU a frame's warp costs, `warp10_vs_warp8`,
//! and the CPU of a frame's model input.

use std::time::Instant;

use parallax_core::model::StereoMode;
use parallax_engine::preprocess::Preprocessor;
use parallax_engine::stereo::{
    output_size, DepthMap, Sample, StereoParams, StereoRenderer, Yuv420,
};

use super::{env_num, median, process_cpu_seconds};

/// A renderer for 1280x720 frames of `T` samples, a textured frame, a smooth depth map, the
/// full SBS output and the stereo parameters.
#[allow(clippy::type_complexity)]
pub(crate) fn warp_setup<T: Sample>() -> (
    StereoRenderer<T>,
    Yuv420<T>,
    DepthMap,
    Yuv420<T>,
    StereoParams,
) {
    let (w, h) = (1280usize, 720usize);
    let (dw, dh) = (924usize, 518usize);
    let mut src = Yuv420::<T>::new(w, h);
    for (i, p) in src.data.iter_mut().enumerate() {
        *p = T::from_f32_8bit((i * 31 % 251) as f32);
    }
    let mut depth = DepthMap::new(dw, dh);
    for (i, z) in depth.data.iter_mut().enumerate() {
        let (x, y) = (i % dw, i / dw);
        *z = ((x as f32 / 37.0).sin() * (y as f32 / 23.0).cos() * 0.5 + 0.5).clamp(0.0, 1.0);
    }
    let (ow, oh) = output_size(StereoMode::FullSbs, w, h);
    let out = Yuv420::<T>::new(ow, oh);
    let r = StereoRenderer::<T>::new(w, h, dw, dh);
    let params = StereoParams {
        divergence: 2.0,
        convergence: 0.5,
        ..StereoParams::default()
    };
    (r, src, depth, out, params)
}

/// Seconds for `n` full SBS renders.
pub(crate) fn warp_seconds<T: Sample>(
    (r, src, depth, out, params): &mut (
        StereoRenderer<T>,
        Yuv420<T>,
        DepthMap,
        Yuv420<T>,
        StereoParams,
    ),
    n: usize,
) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        r.render(src, depth, *params, StereoMode::FullSbs, out);
    }
    t.elapsed().as_secs_f64()
}

/// 10-bit warp speed over 8-bit, in alternating rounds (the median round).
pub(crate) fn warp10_vs_warp8() -> f64 {
    let mut eight = warp_setup::<u8>();
    let mut ten = warp_setup::<u16>();
    let n = (env_num("BENCH_WARP_FRAMES", 100).max(5) / 5) as usize;
    warp_seconds(&mut eight, 2);
    warp_seconds(&mut ten, 2);
    let mut ratios: Vec<f64> = (0..5)
        .map(|_| warp_seconds(&mut eight, n) / warp_seconds(&mut ten, n))
        .collect();
    median(&mut ratios)
}

pub(crate) fn warp() -> (f64, Option<f64>) {
    let (mut r, src, depth, mut out, params) = warp_setup::<u8>();
    let (w, h) = (src.width, src.height);
    for _ in 0..5 {
        r.render(&src, &depth, params, StereoMode::FullSbs, &mut out);
    }
    let n = env_num("BENCH_WARP_FRAMES", 100).max(1) as usize;
    let t = Instant::now();
    for _ in 0..n {
        r.render(&src, &depth, params, StereoMode::FullSbs, &mut out);
    }
    let mpix = (w * h * n) as f64 / t.elapsed().as_secs_f64() / 1e6;
    // The CPU a frame costs, on one thread (idle rayon workers spin, which would count).
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let cpu_ms = one.install(|| {
        let c0 = process_cpu_seconds()?;
        for _ in 0..n {
            r.render(&src, &depth, params, StereoMode::FullSbs, &mut out);
        }
        Some((process_cpu_seconds()? - c0) * 1e3 / n as f64)
    });
    (mpix, cpu_ms)
}

/// The CPU one 1280x720 frame's model input (924x518) costs, on one thread.
pub(crate) fn preprocess() -> Option<f64> {
    let mut src = Yuv420::new(1280, 720);
    for (i, p) in src.data.iter_mut().enumerate() {
        *p = (i * 31 % 251) as u8;
    }
    let mut pre = Preprocessor::new(1280, 720, 924, 518);
    let mut out = vec![0.0f32; 3 * 924 * 518];
    let n = env_num("BENCH_WARP_FRAMES", 100).max(1) as usize;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    one.install(|| {
        pre.fill(&src, &mut out);
        let c0 = process_cpu_seconds()?;
        for _ in 0..n {
            pre.fill(&src, &mut out);
        }
        Some((process_cpu_seconds()? - c0) * 1e3 / n as f64)
    })
}
