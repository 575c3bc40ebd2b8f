//! Temporal depth normalisation: a depth model's raw output has an arbitrary per-frame scale,
//! so each frame is mapped to 0..1 by a robust range (2nd to 98th percentile). Taken per frame
//! the range jitters and the 3D "breathes"; so the range is smoothed over time with an
//! exponential moving average and reset at scene cuts, where the old range means nothing.
//!
//! The state is a few numbers; a segment that starts after running the previous segment's
//! tail through [`Normalizer::observe`] (the seam warm-up) continues exactly where a single
//! pass over the whole video would be.

/// The side of the scene-cut thumbnail grid.
pub const THUMB_W: usize = 16;
/// The rows of the scene-cut thumbnail grid.
pub const THUMB_H: usize = 9;
/// Mean absolute luma change (0..1) between consecutive thumbnails that counts as a cut.
pub const SCENE_CUT_THRESHOLD: f32 = 0.15;

/// At most about this many depth values per frame go into the percentiles.
const PERCENTILE_SAMPLES: usize = 32_768;

/// A frame's tiny luma summary (block means on a 16x9 grid, 0..1), used to detect cuts.
pub type Thumbnail = [f32; THUMB_W * THUMB_H];

/// Computes a frame's thumbnail from its luma plane by sampling a few pixels per cell.
pub fn thumbnail<T: super::stereo::Sample>(y: &[T], width: usize, height: usize) -> Thumbnail {
    const SAMPLES: usize = 4;
    let mut t = [0.0f32; THUMB_W * THUMB_H];
    for (cy, row) in t.chunks_mut(THUMB_W).enumerate() {
        for (cx, cell) in row.iter_mut().enumerate() {
            let mut sum = 0u32;
            for sy in 0..SAMPLES {
                let py = ((cy * SAMPLES + sy) * 2 + 1) * height / (THUMB_H * SAMPLES * 2);
                for sx in 0..SAMPLES {
                    let px = ((cx * SAMPLES + sx) * 2 + 1) * width / (THUMB_W * SAMPLES * 2);
                    sum += y[py * width + px].level() as u32;
                }
            }
            *cell = sum as f32 / (SAMPLES * SAMPLES) as f32 / (255.0 * T::SCALE);
        }
    }
    t
}

/// What [`Normalizer`] carries from one frame to the next: the smoothed range, the last
/// frame's thumbnail (for cut detection) and the cuts counted. Handing it from the end of one
/// segment to the start of the next continues exactly as a single pass would.
///
/// A conversion with a temporal model adds its last aligned depth map at a small size
/// ([`NormState::with_seam_depth`]), which the next segment's first window is fitted to.
#[derive(Debug, Clone, PartialEq)]
pub struct NormState {
    range: Option<(f32, f32)>,
    prev_thumb: Option<Box<Thumbnail>>,
    cuts: u64,
    seam_depth: Option<Box<super::window::SeamDepth>>,
}

impl NormState {
    /// This state with a temporal model's last aligned depth map (see [`super::window`]).
    pub fn with_seam_depth(mut self, seam: super::window::SeamDepth) -> Self {
        self.seam_depth = Some(Box::new(seam));
        self
    }

    /// The temporal model's last aligned depth map, when the state ended a temporal
    /// conversion.
    pub fn seam_depth(&self) -> Option<&super::window::SeamDepth> {
        self.seam_depth.as_deref()
    }
}

/// The smoothed normalisation state.
#[derive(Debug, Clone)]
pub struct Normalizer {
    decay: f32,
    range: Option<(f32, f32)>,
    prev_thumb: Option<Thumbnail>,
    scratch: Vec<f32>,
    cuts: u64,
}

impl Normalizer {
    /// A fresh state; `decay` in [0, 1): 0 = per-frame ranges, closer to 1 = smoother.
    pub fn new(decay: f32) -> Self {
        Self {
            decay: decay.clamp(0.0, 0.999),
            range: None,
            prev_thumb: None,
            scratch: Vec::new(),
            cuts: 0,
        }
    }

    /// The state after the frames observed so far.
    pub fn state(&self) -> NormState {
        NormState {
            range: self.range,
            prev_thumb: self.prev_thumb.map(Box::new),
            cuts: self.cuts,
            seam_depth: None,
        }
    }

    /// Continues from `state` (taken from another normaliser with [`Normalizer::state`]).
    pub fn resume(&mut self, state: &NormState) {
        self.range = state.range;
        self.prev_thumb = state.prev_thumb.as_deref().copied();
        self.cuts = state.cuts;
    }

    /// Scene cuts seen so far.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }

    /// The current smoothed range (low, high) of raw depth, once a frame has been seen.
    pub fn range(&self) -> Option<(f32, f32)> {
        self.range
    }

    /// Takes one frame's raw depth and thumbnail into the state; returns the range to
    /// normalise this frame with.
    pub fn observe(&mut self, raw: &[f32], thumb: &Thumbnail) -> (f32, f32) {
        let cut = match &self.prev_thumb {
            Some(prev) => {
                let diff: f32 = prev
                    .iter()
                    .zip(thumb)
                    .map(|(a, b)| (a - b).abs())
                    .sum::<f32>()
                    / thumb.len() as f32;
                diff > SCENE_CUT_THRESHOLD
            }
            None => false,
        };
        self.prev_thumb = Some(*thumb);
        if cut {
            self.cuts += 1;
        }
        let (lo, hi) = self.percentiles(raw);
        let next = match self.range {
            Some((l, h)) if !cut => (
                self.decay * l + (1.0 - self.decay) * lo,
                self.decay * h + (1.0 - self.decay) * hi,
            ),
            _ => (lo, hi),
        };
        self.range = Some(next);
        next
    }

    /// Maps `raw` into `out` as 0..1 with the range from [`Normalizer::observe`]. A flat
    /// range (a constant model) maps everything to 0.5.
    pub fn apply((lo, hi): (f32, f32), raw: &[f32], out: &mut [f32]) {
        let span = hi - lo;
        if span.is_nan() || span <= 1e-6 {
            out.fill(0.5);
            return;
        }
        let inv = 1.0 / span;
        for (o, &r) in out.iter_mut().zip(raw) {
            let v = (r - lo) * inv;
            *o = if v.is_nan() { 0.5 } else { v.clamp(0.0, 1.0) };
        }
    }

    fn percentiles(&mut self, raw: &[f32]) -> (f32, f32) {
        // A robust range needs no more than a few tens of thousands of samples.
        let step = (raw.len() / PERCENTILE_SAMPLES).max(1);
        self.scratch.clear();
        self.scratch
            .extend(raw.iter().step_by(step).copied().filter(|v| v.is_finite()));
        let n = self.scratch.len();
        if n == 0 {
            return (0.0, 0.0);
        }
        let lo_i = n * 2 / 100;
        let hi_i = (n * 98 / 100).min(n - 1);
        let (_, lo, rest) = self.scratch.select_nth_unstable_by(lo_i, f32::total_cmp);
        let lo = *lo;
        // The high index is past lo_i, so it lies in `rest`.
        let hi = if hi_i > lo_i {
            let k = hi_i - lo_i - 1;
            *rest.select_nth_unstable_by(k, f32::total_cmp).1
        } else {
            lo
        };
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n)
            .map(|i| offset + scale * i as f32 / n as f32)
            .collect()
    }

    #[test]
    fn range_is_robust_to_outliers() {
        let mut n = Normalizer::new(0.0);
        let mut raw = ramp(1000, 1.0, 0.0);
        raw[0] = -1e6;
        raw[999] = 1e6;
        let (lo, hi) = n.observe(&raw, &[0.5; THUMB_W * THUMB_H]);
        assert!(
            (lo - 0.02).abs() < 0.01 && (hi - 0.98).abs() < 0.01,
            "{lo} {hi}"
        );
    }

    #[test]
    fn ema_smooths_and_a_cut_resets() {
        let thumb = [0.5; THUMB_W * THUMB_H];
        let mut n = Normalizer::new(0.9);
        n.observe(&ramp(1000, 1.0, 0.0), &thumb);
        let (lo, _) = n.observe(&ramp(1000, 1.0, 10.0), &thumb);
        // Smoothed: moved 10% of the way.
        assert!((lo - (0.02 + 1.0)).abs() < 0.05, "{lo}");
        // A very different picture is a cut: the range jumps to the new frame's.
        let (lo, _) = n.observe(&ramp(1000, 1.0, 10.0), &[0.0; THUMB_W * THUMB_H]);
        assert!((lo - 10.02).abs() < 0.01, "{lo}");
        assert_eq!(n.cuts(), 1);
    }

    #[test]
    fn a_resumed_state_continues_exactly_where_the_first_normaliser_was() {
        let frames: Vec<(Vec<f32>, Thumbnail)> = (0..8)
            .map(|i| {
                let thumb = [if i == 5 { 0.0 } else { 0.5 }; THUMB_W * THUMB_H];
                (ramp(500, 1.0 + i as f32, i as f32 * 0.3), thumb)
            })
            .collect();
        let mut whole = Normalizer::new(0.8);
        let expected: Vec<_> = frames.iter().map(|(r, t)| whole.observe(r, t)).collect();

        let mut first = Normalizer::new(0.8);
        for (r, t) in &frames[..4] {
            first.observe(r, t);
        }
        let mut second = Normalizer::new(0.8);
        second.resume(&first.state());
        let got: Vec<_> = frames[4..]
            .iter()
            .map(|(r, t)| second.observe(r, t))
            .collect();
        assert_eq!(got, expected[4..]);
        assert_eq!(second.cuts(), whole.cuts());
        assert_eq!(second.state(), whole.state());
        // A fresh normaliser over the same frames differs: the state is what carries over.
        let mut fresh = Normalizer::new(0.8);
        let cold: Vec<_> = frames[4..]
            .iter()
            .map(|(r, t)| fresh.observe(r, t))
            .collect();
        assert_ne!(cold, expected[4..]);
    }

    #[test]
    fn flat_range_maps_to_the_middle() {
        let mut out = vec![0.0; 4];
        Normalizer::apply((1.0, 1.0), &[1.0; 4], &mut out);
        assert_eq!(out, vec![0.5; 4]);
    }
}
