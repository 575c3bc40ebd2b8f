//! Depth shaping before the warp, on the depth map's own grid (a fraction of the frame's
//! pixels): the knobs people tune in converters such as iw3.
//!
//! - foreground scale: depth remapped by `(e^(kz) - 1) / (e^k - 1)`, which gives the near
//!   end of the range more (k > 0) or less (k < 0) of the disparity;
//! - edge fix: grey dilation (a running maximum over a square window): the nearer side of
//!   every depth edge widens, so a foreground outline that the model left at background depth
//!   moves with its object instead of being torn off into the background;
//! - depth anti-aliasing: a 3x3 binomial blur, which only changes pixels near edges (a flat
//!   region stays as it is) and softens the staircase of an upsampled depth map;
//! - preserve screen border: disparity fades to zero over the outer columns at the left and
//!   right edges (a floating window).

use super::DepthMap;

/// The share of the width over which the screen border fades disparity in, on each side.
pub const BORDER_FADE: f32 = 0.04;

/// What to do to a depth map before the warp.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shaping {
    /// Foreground scale, -3..=3 (0 = none).
    pub foreground_scale: f32,
    /// Edge fix radius in depth-map pixels (0 = none).
    pub edge_dilation: u8,
    /// Depth anti-aliasing.
    pub antialias: bool,
    /// Fade disparity to zero at the left and right edges, around this depth (the effective
    /// convergence).
    pub border_at: Option<f32>,
}

impl Shaping {
    /// Whether the depth map passes unchanged.
    pub fn is_identity(&self) -> bool {
        self.foreground_scale == 0.0
            && self.edge_dilation == 0
            && !self.antialias
            && self.border_at.is_none()
    }
}

/// Reusable buffers for [`Shaper::shape`].
#[derive(Debug, Default)]
pub struct Shaper {
    tmp: Vec<f32>,
}

impl Shaper {
    /// `depth` shaped as `s` says, into `out` (resized to match).
    pub fn shape(&mut self, depth: &DepthMap, s: &Shaping, out: &mut DepthMap) {
        out.width = depth.width;
        out.height = depth.height;
        out.data.clear();
        out.data.extend_from_slice(&depth.data);
        let (w, h) = (depth.width, depth.height);
        if w == 0 || h == 0 {
            return;
        }
        let k = s.foreground_scale;
        if k != 0.0 {
            let norm = 1.0 / k.exp_m1();
            for z in &mut out.data {
                *z = (k * z.clamp(0.0, 1.0)).exp_m1() * norm;
            }
        }
        if s.edge_dilation > 0 {
            dilate(
                &mut out.data,
                w,
                h,
                usize::from(s.edge_dilation),
                &mut self.tmp,
            );
        }
        if s.antialias {
            blur3(&mut out.data, w, h, &mut self.tmp);
        }
        if let Some(c) = s.border_at {
            let fade = ((w as f32 * BORDER_FADE).ceil() as usize).max(1);
            for row in out.data.chunks_mut(w) {
                for x in 0..fade.min(w) {
                    let g = x as f32 / fade as f32;
                    for i in [x, w - 1 - x] {
                        row[i] = c + (row[i] - c) * g;
                    }
                }
            }
        }
    }
}

/// Automatic convergence: the screen plane at each frame's median depth, smoothed over time
/// with the normalisation's decay so it does not jump from frame to frame (a scene cut
/// takes a few frames to settle).
#[derive(Debug, Clone)]
pub struct AutoConvergence {
    decay: f32,
    smoothed: Option<f32>,
    sample: Vec<f32>,
}

impl AutoConvergence {
    /// With exponential smoothing `decay` (0 = none, closer to 1 = smoother).
    pub fn new(decay: f32) -> Self {
        Self {
            decay: decay.clamp(0.0, 0.999),
            smoothed: None,
            sample: Vec::new(),
        }
    }

    /// The convergence for the next frame, whose depth is `depth`.
    pub fn next(&mut self, depth: &DepthMap) -> f32 {
        // Every 7th value is plenty for a median and costs nothing next to the warp.
        self.sample.clear();
        self.sample.extend(depth.data.iter().step_by(7).copied());
        if self.sample.is_empty() {
            return self.smoothed.unwrap_or(0.5);
        }
        let mid = self.sample.len() / 2;
        let (_, &mut median, _) = self.sample.select_nth_unstable_by(mid, f32::total_cmp);
        let median = median.clamp(0.0, 1.0);
        let c = match self.smoothed {
            Some(prev) => self.decay * prev + (1.0 - self.decay) * median,
            None => median,
        };
        self.smoothed = Some(c);
        c
    }
}

/// Grey dilation over a `(2r+1)` square: rows, then columns, each as the maximum of shifted
/// copies of whole rows (loops the compiler vectorises; no per-pixel window scans).
fn dilate(data: &mut [f32], w: usize, h: usize, r: usize, tmp: &mut Vec<f32>) {
    tmp.clear();
    tmp.extend_from_slice(data);
    for (src, dst) in data.chunks(w).zip(tmp.chunks_mut(w)) {
        for k in 1..=r.min(w - 1) {
            // dst[x] = max(dst[x], src[x + k]) and max(dst[x + k], src[x]).
            for (d, &v) in dst[..w - k].iter_mut().zip(&src[k..]) {
                *d = d.max(v);
            }
            for (d, &v) in dst[k..].iter_mut().zip(&src[..w - k]) {
                *d = d.max(v);
            }
        }
    }
    data.copy_from_slice(tmp);
    for y in 0..h {
        let row = &mut data[y * w..(y + 1) * w];
        for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
            if yy != y {
                for (d, &v) in row.iter_mut().zip(&tmp[yy * w..(yy + 1) * w]) {
                    *d = d.max(v);
                }
            }
        }
    }
}

/// A 3x3 binomial blur ([1 2 1] / 4 each way), edges clamped, in whole-row loops.
fn blur3(data: &mut [f32], w: usize, h: usize, tmp: &mut Vec<f32>) {
    tmp.resize(w * h, 0.0);
    for (src, dst) in data.chunks(w).zip(tmp.chunks_mut(w)) {
        dst[0] = 0.75 * src[0] + 0.25 * src[1.min(w - 1)];
        dst[w - 1] = 0.75 * src[w - 1] + 0.25 * src[w.saturating_sub(2)];
        if w > 2 {
            for ((d, a), (m, b)) in dst[1..w - 1]
                .iter_mut()
                .zip(&src[..w - 2])
                .zip(src[1..w - 1].iter().zip(&src[2..]))
            {
                *d = 0.25 * a + 0.5 * m + 0.25 * b;
            }
        }
    }
    for y in 0..h {
        let (ya, yb) = (y.saturating_sub(1), (y + 1).min(h - 1));
        let (up, mid, down) = (&tmp[ya * w..][..w], &tmp[y * w..][..w], &tmp[yb * w..][..w]);
        for (((d, a), m), b) in data[y * w..][..w].iter_mut().zip(up).zip(mid).zip(down) {
            *d = 0.25 * a + 0.5 * m + 0.25 * b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> DepthMap {
        DepthMap {
            width: w,
            height: h,
            data: (0..w * h).map(|i| f(i % w, i / w)).collect(),
        }
    }

    #[test]
    fn auto_convergence_follows_the_median_smoothly() {
        let mut auto = AutoConvergence::new(0.5);
        let near = map(20, 20, |x, _| if x < 15 { 0.8 } else { 0.1 });
        let far = map(20, 20, |_, _| 0.2);
        assert!((auto.next(&near) - 0.8).abs() < 1e-6);
        // Halfway to the new median, then closer.
        assert!((auto.next(&far) - 0.5).abs() < 1e-6);
        assert!((auto.next(&far) - 0.35).abs() < 1e-6);
    }

    #[test]
    fn nothing_asked_changes_nothing() {
        let d = map(9, 5, |x, y| (x * 7 + y * 3) as f32 / 60.0);
        let mut out = DepthMap::new(0, 0);
        Shaper::default().shape(&d, &Shaping::default(), &mut out);
        assert_eq!(out, d);
        assert!(Shaping::default().is_identity());
    }

    #[test]
    fn dilation_widens_the_near_side_by_its_radius_only() {
        // A near square (1) on a far background (0).
        let d = map(20, 20, |x, y| {
            if (8..12).contains(&x) && (8..12).contains(&y) {
                1.0
            } else {
                0.0
            }
        });
        let mut out = DepthMap::new(0, 0);
        let s = Shaping {
            edge_dilation: 2,
            ..Shaping::default()
        };
        Shaper::default().shape(&d, &s, &mut out);
        let near: Vec<usize> = (0..20).filter(|&x| out.data[10 * 20 + x] == 1.0).collect();
        assert_eq!(near, (6..14).collect::<Vec<_>>());
        assert_eq!(out.data[0], 0.0);
    }

    #[test]
    fn antialiasing_softens_edges_and_leaves_flat_regions() {
        let d = map(10, 6, |x, _| if x < 5 { 0.0 } else { 1.0 });
        let mut out = DepthMap::new(0, 0);
        let s = Shaping {
            antialias: true,
            ..Shaping::default()
        };
        Shaper::default().shape(&d, &s, &mut out);
        assert_eq!(out.data[3 * 10 + 1], 0.0);
        assert_eq!(out.data[3 * 10 + 8], 1.0);
        assert_eq!(out.data[3 * 10 + 4], 0.25);
        assert_eq!(out.data[3 * 10 + 5], 0.75);
    }

    #[test]
    fn foreground_scale_keeps_the_ends_and_bends_the_middle() {
        let d = map(3, 1, |x, _| x as f32 / 2.0);
        let mut out = DepthMap::new(0, 0);
        for (k, below) in [(2.0, true), (-2.0, false)] {
            let s = Shaping {
                foreground_scale: k,
                ..Shaping::default()
            };
            Shaper::default().shape(&d, &s, &mut out);
            assert!(out.data[0].abs() < 1e-6 && (out.data[2] - 1.0).abs() < 1e-6);
            assert_eq!(out.data[1] < 0.5, below, "{k}: {}", out.data[1]);
        }
    }

    #[test]
    fn the_screen_border_sits_on_the_screen_plane() {
        let d = map(100, 2, |_, _| 1.0);
        let mut out = DepthMap::new(0, 0);
        let s = Shaping {
            border_at: Some(0.3),
            ..Shaping::default()
        };
        Shaper::default().shape(&d, &s, &mut out);
        assert!((out.data[0] - 0.3).abs() < 1e-6 && (out.data[99] - 0.3).abs() < 1e-6);
        assert_eq!(out.data[50], 1.0);
        assert!(out.data[1] > 0.3 && out.data[1] < 1.0);
    }
}
