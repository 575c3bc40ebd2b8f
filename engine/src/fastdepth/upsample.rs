//! Joint bilateral upsampling (Kopf et al., 2007): depth computed on a coarse grid is brought
//! to the depth map's size with each output pixel a weighted mean of the 4x4 nearest coarse
//! samples, weighted by distance (a Gaussian on the coarse grid) and by how close the coarse
//! sample's luma is to the output pixel's own luma. Where luma has an edge, the samples from
//! the other side of it get almost no weight, so the depth edge lands on the luma edge
//! instead of being smeared across a coarse pixel as bilinear interpolation does.

use rayon::prelude::*;

use crate::stereo::on_frame_pool;

/// Coarse samples per axis around each output pixel.
const TAPS: usize = 4;
/// The spatial Gaussian's sigma, in coarse pixels.
const SIGMA_SPACE: f32 = 0.7;
/// The range Gaussian's sigma, in luma (0..1).
const SIGMA_RANGE: f32 = 0.06;
/// Steps of the range weight's table over a luma difference of 0..1.
const RANGE_STEPS: usize = 1024;
/// Below this total weight (a pixel whose luma none of its neighbours has) the spatial
/// weights alone are used.
const MIN_WEIGHT: f32 = 1e-3;

/// Upsamples maps from one coarse size to one fine size; the tables are made once.
#[derive(Debug, Clone)]
pub struct JointBilateral {
    low: (usize, usize),
    high: (usize, usize),
    /// Per fine column: the coarse columns and their spatial weights.
    xs: Vec<([u32; TAPS], [f32; TAPS])>,
    /// Per fine row: the coarse rows and their spatial weights.
    ys: Vec<([u32; TAPS], [f32; TAPS])>,
    /// The range weight of a luma difference `d` at `d * RANGE_STEPS`.
    range: Vec<f32>,
}

fn axis(src: usize, dst: usize) -> Vec<([u32; TAPS], [f32; TAPS])> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|i| {
            let s = (i as f32 + 0.5) * scale - 0.5;
            let first = s.floor() as i64 - (TAPS as i64 / 2 - 1);
            let mut idx = [0u32; TAPS];
            let mut wt = [0f32; TAPS];
            for t in 0..TAPS {
                let at = first + t as i64;
                let d = s - at as f32;
                idx[t] = at.clamp(0, src as i64 - 1) as u32;
                wt[t] = (-d * d / (2.0 * SIGMA_SPACE * SIGMA_SPACE)).exp();
            }
            (idx, wt)
        })
        .collect()
}

impl JointBilateral {
    /// From `low` (width, height) to `high`.
    pub fn new(low: (usize, usize), high: (usize, usize)) -> Self {
        assert!(
            low.0 > 0 && low.1 > 0 && high.0 > 0 && high.1 > 0,
            "empty sizes"
        );
        let range = (0..=RANGE_STEPS)
            .map(|i| {
                let d = i as f32 / RANGE_STEPS as f32;
                (-d * d / (2.0 * SIGMA_RANGE * SIGMA_RANGE)).exp()
            })
            .collect();
        Self {
            low,
            high,
            xs: axis(low.0, high.0),
            ys: axis(low.1, high.1),
            range,
        }
    }

    /// Writes `depth` (coarse) at the fine size into `out`, guided by the frame's luma at
    /// both sizes (`guide_low` coarse, `guide_high` fine; 0..1).
    pub fn upsample(&self, depth: &[f32], guide_low: &[f32], guide_high: &[f32], out: &mut [f32]) {
        let ((lw, lh), (hw, hh)) = (self.low, self.high);
        assert!(
            depth.len() == lw * lh && guide_low.len() == lw * lh,
            "coarse size"
        );
        assert!(
            guide_high.len() == hw * hh && out.len() == hw * hh,
            "fine size"
        );
        on_frame_pool(|| {
            out.par_chunks_mut(hw)
                .zip(guide_high.par_chunks(hw))
                .zip(&self.ys)
                .for_each(|((row, guide), (ry, wy))| {
                    for ((o, &g), (rx, wx)) in row.iter_mut().zip(guide).zip(&self.xs) {
                        let (mut num, mut den, mut snum, mut sden) = (0.0, 0.0, 0.0, 0.0);
                        for (&y, &wyv) in ry.iter().zip(wy) {
                            let base = y as usize * lw;
                            for (&x, &wxv) in rx.iter().zip(wx) {
                                let i = base + x as usize;
                                let ws = wyv * wxv;
                                let step = ((g - guide_low[i]).abs() * RANGE_STEPS as f32) as usize;
                                let w = ws * self.range[step.min(RANGE_STEPS)];
                                num += w * depth[i];
                                den += w;
                                snum += ws * depth[i];
                                sden += ws;
                            }
                        }
                        *o = if den > MIN_WEIGHT * sden {
                            num / den
                        } else {
                            snum / sden
                        };
                    }
                });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_map_stays_flat_and_a_ramp_stays_a_ramp() {
        let up = JointBilateral::new((8, 6), (20, 15));
        let mut out = vec![0.0; 300];
        up.upsample(&[0.4; 48], &[0.5; 48], &[0.5; 300], &mut out);
        assert!(out.iter().all(|v| (v - 0.4).abs() < 1e-5));
        // A horizontal ramp in the middle, away from the clamped borders.
        let ramp: Vec<f32> = (0..48).map(|i| (i % 8) as f32 / 7.0).collect();
        up.upsample(&ramp, &[0.5; 48], &[0.5; 300], &mut out);
        for x in 6..14 {
            let want = ((x as f32 + 0.5) * 8.0 / 20.0 - 0.5) / 7.0;
            assert!((out[7 * 20 + x] - want).abs() < 0.02, "{x}");
        }
    }
}
