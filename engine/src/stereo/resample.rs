//! Resampling: the depth map's grid onto the frame's (bilinear, pixel centres aligned), in
//! floats and in fixed point.

use rayon::prelude::*;

use super::fixed::{FRAC, ONE};
use super::DepthMap;

/// Linear sampling positions along one axis in fixed point, as three arrays (so eight are
/// loaded at once): output `i` is `src[a[i]] + (src[b[i]] - src[a[i]]) * f[i] / 256`.
#[derive(Debug, Clone)]
pub(super) struct FixedAxis {
    pub(super) a: Vec<i32>,
    pub(super) b: Vec<i32>,
    /// Weights in 1/256 (0..=256).
    pub(super) f: Vec<i32>,
    /// No index in `a` or `b` is negative or above this.
    pub(super) max_index: usize,
}

/// Interpolates `src` at `xs` into `out` (rounded to nearest).
pub(super) fn resample_row(src: &[i32], xs: &FixedAxis, out: &mut [i32]) {
    for (((o, &a), &b), &f) in out.iter_mut().zip(&xs.a).zip(&xs.b).zip(&xs.f) {
        let (a, b) = (src[a as usize], src[b as usize]);
        *o = a + (((b - a) * f + ONE / 2) >> FRAC);
    }
}

/// Precomputed bilinear sampling positions from a `src_w` x `src_h` grid to `dst_w` x `dst_h`
/// (pixel centres aligned, as image scalers do).
#[derive(Debug, Clone)]
pub(super) struct ResampleMap {
    pub(super) src_w: usize,
    pub(super) src_h: usize,
    pub(super) dst_w: usize,
    pub(super) xs: Vec<(u32, u32, f32)>,
    pub(super) ys: Vec<(u32, u32, f32)>,
    /// Vertical positions of the centres of the destination's row pairs (`dst_h / 2`).
    pub(super) pair_ys: Vec<(u32, u32, f32)>,
    /// `xs` with the weight in 1/256 (0..=256).
    pub(super) xs_fixed: FixedAxis,
}

/// Linear sampling positions from `src` samples to `dst` along one axis, pixel centres
/// aligned (as image scalers do): for each output, the two inputs and the second's weight.
pub(crate) fn linear_axis(src: usize, dst: usize) -> Vec<(u32, u32, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|i| {
            let s = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
            let a = s.floor() as usize;
            let b = (a + 1).min(src - 1);
            (a as u32, b as u32, s - a as f32)
        })
        .collect()
}

impl ResampleMap {
    pub(super) fn new(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Self {
        let src_w = src_w.max(1);
        let src_h = src_h.max(1);
        let xs = linear_axis(src_w, dst_w);
        let xs_fixed = FixedAxis {
            a: xs.iter().map(|&(a, _, _)| a as i32).collect(),
            b: xs.iter().map(|&(_, b, _)| b as i32).collect(),
            f: xs
                .iter()
                .map(|&(_, _, f)| (f * ONE as f32 + 0.5) as i32)
                .collect(),
            max_index: xs.iter().map(|&(_, b, _)| b as usize).max().unwrap_or(0),
        };
        Self {
            src_w,
            src_h,
            dst_w,
            xs,
            ys: linear_axis(src_h, dst_h),
            pair_ys: linear_axis(src_h, dst_h / 2),
            xs_fixed,
        }
    }
}

pub(super) fn upsample(depth: &DepthMap, map: &ResampleMap, out: &mut [f32]) {
    let sw = depth.width;
    out.par_chunks_mut(map.dst_w)
        .zip(map.ys.par_iter())
        .for_each(|(row, &(y0, y1, fy))| {
            let r0 = &depth.data[y0 as usize * sw..][..sw];
            let r1 = &depth.data[y1 as usize * sw..][..sw];
            for (o, &(x0, x1, fx)) in row.iter_mut().zip(&map.xs) {
                let (x0, x1) = (x0 as usize, x1 as usize);
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                *o = top + (bot - top) * fy;
            }
        });
}
