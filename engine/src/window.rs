//! Windows of frames for temporal depth models. A temporal model (Video Depth Anything) sees
//! `T` frames at once and gives their depth on one scale, but each window's scale and shift
//! are its own: cut into plain windows, the depth jumps at every window boundary. So windows
//! overlap by a few frames, and each new window's raw depth is mapped onto the previous
//! window's aligned depth by the scale and shift that fit best over the overlap (least
//! squares, refitted without outliers: moving objects, the model's own noise), then blended
//! linearly across the overlap into the previous window's.
//!
//! A segment converted on its own either warms up on the previous segment's tail (the warm-up
//! frames simply start the chain of windows, as a single pass's frames would) or resumes from
//! the previous segment's state, which carries its last aligned depth map at a small size
//! ([`SeamDepth`]): the first window is then fitted to it, frame to next frame.

/// Most samples per fit: enough for a stable scale and shift, cheap at any size.
const FIT_SAMPLES: usize = 16_384;
/// Residuals beyond this many times the median absolute residual are outliers in the refit.
const OUTLIER_FACTOR: f32 = 3.0;
/// Largest side of a [`SeamDepth`] map.
const SEAM_SIDE: usize = 32;

/// The frames consecutive windows of `window` frames share: a quarter of the window, at least
/// one, none for windows of one frame (nothing to align over).
pub fn overlap(window: usize) -> usize {
    if window < 2 {
        0
    } else {
        (window / 4).max(1)
    }
}

/// `raw * scale + shift`: one window's raw depth mapped onto the chain's scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Multiplies the raw depth (positive: nearer stays nearer).
    pub scale: f32,
    /// Added after scaling.
    pub shift: f32,
}

impl Affine {
    /// Leaves depth as it is.
    pub const IDENTITY: Affine = Affine {
        scale: 1.0,
        shift: 0.0,
    };

    /// Maps `raw` into `out`.
    pub fn apply(self, raw: &[f32], out: &mut [f32]) {
        for (o, &r) in out.iter_mut().zip(raw) {
            *o = r * self.scale + self.shift;
        }
    }

    /// The scale and shift that map `raw` onto `target` (same length) with the least squared
    /// error, refitted once without the pairs whose residual is an outlier. A flat `raw`, or
    /// a fit that would turn depth around (scale not positive), gets the shift alone.
    pub fn fit(raw: &[f32], target: &[f32]) -> Affine {
        debug_assert_eq!(raw.len(), target.len());
        let step = (raw.len() / FIT_SAMPLES).max(1);
        let pairs: Vec<(f32, f32)> = raw
            .iter()
            .zip(target)
            .step_by(step)
            .map(|(&x, &y)| (x, y))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let first = least_squares(pairs.iter().copied());
        let Some(first) = first else {
            return Affine::IDENTITY;
        };
        let mut residuals: Vec<f32> = pairs
            .iter()
            .map(|&(x, y)| (y - (x * first.scale + first.shift)).abs())
            .collect();
        let mid = residuals.len() / 2;
        let median = *residuals.select_nth_unstable_by(mid, f32::total_cmp).1;
        let limit = OUTLIER_FACTOR * median;
        if limit <= 0.0 {
            // At least half the pairs fit exactly: the first fit is the fit.
            return first;
        }
        let inliers = pairs
            .iter()
            .copied()
            .filter(|&(x, y)| (y - (x * first.scale + first.shift)).abs() <= limit);
        least_squares(inliers).unwrap_or(first)
    }
}

/// Least squares over `pairs` (in f64: sums over many pixels); `None` for no pairs.
fn least_squares(pairs: impl Iterator<Item = (f32, f32)>) -> Option<Affine> {
    let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for (x, y) in pairs {
        let (x, y) = (f64::from(x), f64::from(y));
        n += 1.0;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    if n == 0.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let var = sxx / n - mx * mx;
    let cov = sxy / n - mx * my;
    let scale = cov / var;
    let affine = if var > 1e-12 * (1.0 + mx * mx) && scale.is_finite() && scale > 0.0 {
        Affine {
            scale: scale as f32,
            shift: (my - scale * mx) as f32,
        }
    } else {
        Affine {
            scale: 1.0,
            shift: (my - mx) as f32,
        }
    };
    Some(affine)
}

/// A segment's last aligned depth map at a small size (block means on at most 32x32 cells):
/// what the next segment's first window is fitted to when it resumes without a warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct SeamDepth {
    width: usize,
    height: usize,
    cells: Vec<f32>,
}

impl SeamDepth {
    /// `map` (`w` x `h`) shrunk to block means.
    pub fn from_map(map: &[f32], (w, h): (usize, usize)) -> SeamDepth {
        let (width, height) = (w.clamp(1, SEAM_SIDE), h.clamp(1, SEAM_SIDE));
        SeamDepth {
            width,
            height,
            cells: shrink(map, (w, h), (width, height)),
        }
    }

    /// The affine that maps `raw` (`w` x `h`, the first frame after the seam) onto this map,
    /// both compared at this map's small size.
    pub fn fit(&self, raw: &[f32], (w, h): (usize, usize)) -> Affine {
        let small = shrink(raw, (w, h), (self.width, self.height));
        Affine::fit(&small, &self.cells)
    }
}

/// Block means of `map` (`w` x `h`) on a `gw` x `gh` grid.
fn shrink(map: &[f32], (w, h): (usize, usize), (gw, gh): (usize, usize)) -> Vec<f32> {
    let mut cells = vec![0.0f32; gw * gh];
    for (gy, row) in cells.chunks_mut(gw).enumerate() {
        let (y0, y1) = (gy * h / gh, ((gy + 1) * h / gh).max(gy * h / gh + 1));
        for (gx, cell) in row.iter_mut().enumerate() {
            let (x0, x1) = (gx * w / gw, ((gx + 1) * w / gw).max(gx * w / gw + 1));
            let mut sum = 0.0f64;
            for y in y0..y1.min(h) {
                sum += map[y * w + x0..x1.min(w) + y * w]
                    .iter()
                    .map(|&v| f64::from(v))
                    .sum::<f64>();
            }
            let count = (y1.min(h) - y0) * (x1.min(w) - x0);
            *cell = (sum / count.max(1) as f64) as f32;
        }
    }
    cells
}

/// The chain of overlapping windows: takes each window's raw depth, in order, and gives the
/// aligned depth of the frames that are final. The last [`overlap`] frames of a window are
/// held back until the next window (which must start with them, see [`Chain::held`]) has been
/// blended in, or until [`Chain::finish`].
#[derive(Debug, Clone)]
pub struct Chain {
    overlap: usize,
    /// The aligned maps of the held frames, frame after frame.
    held: Vec<f32>,
    held_frames: usize,
    plane: usize,
    seam: Option<SeamDepth>,
    last: Vec<f32>,
    last_size: (usize, usize),
}

impl Chain {
    /// A chain of windows that overlap by `overlap` frames, starting from nothing (the first
    /// window keeps its own scale).
    pub fn new(overlap: usize) -> Chain {
        Chain {
            overlap,
            held: Vec::new(),
            held_frames: 0,
            plane: 0,
            seam: None,
            last: Vec::new(),
            last_size: (0, 0),
        }
    }

    /// A chain whose first window is fitted to `seam`, the previous segment's last depth.
    pub fn resume(overlap: usize, seam: SeamDepth) -> Chain {
        Chain {
            seam: Some(seam),
            ..Chain::new(overlap)
        }
    }

    /// The frames held back from the last window: the next window's first frames.
    pub fn held(&self) -> usize {
        self.held_frames
    }

    /// Takes one window's raw depth, `frames` maps of `size` (`raw` may hold more: a padded
    /// window's extra maps are ignored), whose first [`Chain::held`] frames are the held ones
    /// and which has at least one frame more.
    /// Appends the aligned maps of the frames that are now final to `out`, the held ones first,
    /// and returns how many; the window's last `overlap` frames are held in turn. Returns the
    /// affine the window was aligned with too.
    pub fn push(
        &mut self,
        raw: &[f32],
        frames: usize,
        size: (usize, usize),
        out: &mut Vec<f32>,
    ) -> (usize, Affine) {
        let plane = size.0 * size.1;
        assert!(
            frames > self.held_frames && raw.len() >= frames * plane,
            "a window of {frames} maps after {} held",
            self.held_frames
        );
        if self.held_frames > 0 && plane != self.plane {
            // The depth size changed under the chain (it does not in a conversion): start over.
            self.held_frames = 0;
            self.held.clear();
        }
        let shared = self.held_frames;
        let affine = if shared > 0 {
            Affine::fit(&raw[..shared * plane], &self.held[..shared * plane])
        } else if let Some(seam) = self.seam.take() {
            seam.fit(&raw[..plane], size)
        } else {
            Affine::IDENTITY
        };
        self.seam = None;
        let start = out.len();
        out.resize(start + frames * plane, 0.0);
        let window = &mut out[start..];
        affine.apply(&raw[..frames * plane], window);
        // Blend across the overlap: the previous window's weight falls linearly to the new.
        for k in 0..shared {
            let w_new = (k + 1) as f32 / (self.held_frames + 1) as f32;
            let prev = &self.held[k * plane..(k + 1) * plane];
            for (o, &p) in window[k * plane..(k + 1) * plane].iter_mut().zip(prev) {
                *o = p + (*o - p) * w_new;
            }
        }
        // Hold the window's last frames back for the next window.
        let hold = self.overlap.min(frames);
        let done = frames - hold;
        self.held.clear();
        self.held.extend_from_slice(&window[done * plane..]);
        out.truncate(start + done * plane);
        self.held_frames = hold;
        self.plane = plane;
        if done > 0 {
            self.remember(&out[out.len() - plane..], size);
        }
        (done, affine)
    }

    /// Gives out the held frames (no window follows) and returns how many.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> usize {
        let n = self.held_frames;
        if n > 0 {
            out.extend_from_slice(&self.held[..n * self.plane]);
            let size = self.last_size;
            let last = self.held[(n - 1) * self.plane..n * self.plane].to_vec();
            self.remember(&last, size);
        }
        self.held.clear();
        self.held_frames = 0;
        n
    }

    /// The last aligned map given out, at a small size, for the next segment to resume from.
    pub fn seam(&self) -> Option<SeamDepth> {
        (!self.last.is_empty()).then(|| SeamDepth::from_map(&self.last, self.last_size))
    }

    fn remember(&mut self, map: &[f32], size: (usize, usize)) {
        self.last.clear();
        self.last.extend_from_slice(map);
        self.last_size = size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_a_quarter_of_the_window_and_at_least_one() {
        assert_eq!(overlap(1), 0);
        assert_eq!(overlap(2), 1);
        assert_eq!(overlap(8), 2);
        assert_eq!(overlap(32), 8);
    }

    #[test]
    fn the_fit_finds_scale_and_shift_and_ignores_outliers() {
        let raw: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut target: Vec<f32> = raw.iter().map(|r| 2.5 * r - 4.0).collect();
        let a = Affine::fit(&raw, &target);
        assert!(
            (a.scale - 2.5).abs() < 1e-4 && (a.shift + 4.0).abs() < 1e-4,
            "{a:?}"
        );
        // A tenth of the pixels moved (an object crossing): the refit ignores them.
        for t in target.iter_mut().step_by(10) {
            *t += 30.0;
        }
        let a = Affine::fit(&raw, &target);
        assert!(
            (a.scale - 2.5).abs() < 0.01 && (a.shift + 4.0).abs() < 0.01,
            "{a:?}"
        );
        // A flat window gets a shift only.
        let a = Affine::fit(&[3.0; 100], &[5.0; 100]);
        assert_eq!(
            a,
            Affine {
                scale: 1.0,
                shift: 2.0
            }
        );
    }

    #[test]
    fn the_overlap_is_blended_and_held_frames_come_out_in_order() {
        // Windows of 4 frames overlapping by 2, one pixel per frame: frame f's depth is f.
        let mut chain = Chain::new(2);
        let mut out = Vec::new();
        let (done, a) = chain.push(&[0.0, 1.0, 2.0, 3.0], 4, (1, 1), &mut out);
        assert_eq!((done, a, chain.held()), (2, Affine::IDENTITY, 2));
        // The next window (frames 2..6) comes out of the model at 10x + 100.
        let raw: Vec<f32> = (2..6).map(|f| 10.0 * f as f32 + 100.0).collect();
        let (done, a) = chain.push(&raw, 4, (1, 1), &mut out);
        assert_eq!(done, 2);
        assert!(
            (a.scale - 0.1).abs() < 1e-5 && (a.shift + 10.0).abs() < 1e-4,
            "{a:?}"
        );
        assert_eq!(chain.finish(&mut out), 2);
        let want = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(out.len(), 6);
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-4, "{out:?}");
        }
        assert_eq!(chain.seam().unwrap().cells, vec![5.0]);
    }

    #[test]
    fn a_resumed_chain_fits_its_first_window_to_the_seam() {
        let map: Vec<f32> = (0..64 * 48).map(|i| (i % 64) as f32 / 64.0).collect();
        let seam = SeamDepth::from_map(&map, (64, 48));
        assert_eq!((seam.width, seam.height), (32, 32));
        let raw: Vec<f32> = map.iter().map(|v| 7.0 * v + 3.0).collect();
        let mut chain = Chain::resume(1, seam);
        let mut out = Vec::new();
        let (done, a) = chain.push(&raw, 1, (64, 48), &mut out);
        assert_eq!(done, 0, "one frame is held");
        assert!((a.scale - 1.0 / 7.0).abs() < 1e-3, "{a:?}");
        chain.finish(&mut out);
        for (o, m) in out.iter().zip(&map) {
            assert!((o - m).abs() < 1e-3);
        }
    }
}
