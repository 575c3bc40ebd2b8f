//! Motion from a keyframe to a later frame, on low-resolution luma (0..1), for carrying the
//! keyframe's depth along: block matching on two levels (a full search on a half-size copy,
//! then a one-pixel refinement of that, of the block's vector in the frame before, and of
//! no motion), then a per-pixel choice among the vectors of the pixel's block and its four
//! neighbours (whichever matches the pixel's 3x3 neighbourhood best), so a motion boundary
//! runs through a block rather than along block edges.
//!
//! Every vector points from a pixel of the current frame to where it was in the keyframe,
//! so warping is a gather: each pixel of the new depth reads the keyframe's depth there.

use rayon::prelude::*;

use crate::stereo::on_frame_pool;

/// Block side, in pixels of the matched grid.
const BLOCK: usize = 8;
/// Full-search radius on the half-size level (twice that on the matched grid).
const COARSE_RADIUS: i32 = 8;
/// Added to a candidate's mean absolute difference per pixel of vector length, so flat
/// regions (where every vector matches) keep no motion.
const LENGTH_PENALTY: f32 = 0.0005;
/// A pixel whose luma differs from where its vector points by more than this (0..1) counts
/// as poorly matched (occluded, new, or changed).
pub const MISMATCH_LEVEL: f32 = 0.08;

/// Block and per-pixel motion between a keyframe and the current frame of one size.
#[derive(Debug, Clone)]
pub struct Motion {
    w: usize,
    h: usize,
    /// Blocks across and down.
    bx: usize,
    by: usize,
    /// Per block: the vector into the keyframe.
    blocks: Vec<(i32, i32)>,
    /// The previous frame's block vectors (since the keyframe): the search's predictor.
    prev: Vec<(i32, i32)>,
    /// Per pixel: the chosen vector.
    pixels: Vec<(i16, i16)>,
    /// Per pixel: poorly matched.
    bad: Vec<bool>,
    /// The half-size level of the keyframe and of the current frame.
    half_key: Vec<f32>,
    half_cur: Vec<f32>,
}

impl Motion {
    /// Motion for `w` x `h` luma, none yet.
    pub fn new(w: usize, h: usize) -> Self {
        assert!(w > 0 && h > 0, "an empty grid");
        let (bx, by) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
        let (hw, hh) = ((w / 2).max(1), (h / 2).max(1));
        Self {
            w,
            h,
            bx,
            by,
            blocks: vec![(0, 0); bx * by],
            prev: vec![(0, 0); bx * by],
            pixels: vec![(0, 0); w * h],
            bad: vec![false; w * h],
            half_key: vec![0.0; hw * hh],
            half_cur: vec![0.0; hw * hh],
        }
    }

    /// Forgets the motion so far (a new keyframe): the next search starts from no motion.
    pub fn reset(&mut self) {
        self.prev.fill((0, 0));
    }

    /// Estimates each pixel's vector from `cur` into `key` (both `w` x `h`, 0..1); returns
    /// the fraction of pixels that match poorly (differ by more than [`MISMATCH_LEVEL`]).
    pub fn estimate(&mut self, key: &[f32], cur: &[f32]) -> f32 {
        let (w, h) = (self.w, self.h);
        assert!(key.len() == w * h && cur.len() == w * h, "luma size");
        let (hw, hh) = ((w / 2).max(1), (h / 2).max(1));
        halve(key, w, h, &mut self.half_key);
        halve(cur, w, h, &mut self.half_cur);
        let Self {
            bx,
            blocks,
            prev,
            half_key,
            half_cur,
            ..
        } = self;
        let bx = *bx;
        on_frame_pool(|| {
            blocks
                .par_chunks_mut(bx)
                .zip(prev.par_chunks(bx))
                .enumerate()
                .for_each(|(row, (out, prev))| {
                    for (col, (v, p)) in out.iter_mut().zip(prev).enumerate() {
                        let (x0, y0) = (col * BLOCK, row * BLOCK);
                        let (bw, bh) = (BLOCK.min(w - x0), BLOCK.min(h - y0));
                        // Coarse: the whole window on the half-size level.
                        let hb = (x0 / 2, y0 / 2, (bw / 2).max(1), (bh / 2).max(1));
                        let mut coarse = ((0, 0), f32::INFINITY);
                        for dy in -COARSE_RADIUS..=COARSE_RADIUS {
                            for dx in -COARSE_RADIUS..=COARSE_RADIUS {
                                let c = cost(half_cur, half_key, (hw, hh), hb, (dx, dy));
                                if c < coarse.1 {
                                    coarse = ((dx, dy), c);
                                }
                            }
                        }
                        // Fine: one pixel around each candidate on the matched grid.
                        let fb = (x0, y0, bw, bh);
                        let mut best = ((0, 0), f32::INFINITY);
                        for (cx, cy) in [(coarse.0 .0 * 2, coarse.0 .1 * 2), *p, (0, 0)] {
                            for dy in -1..=1 {
                                for dx in -1..=1 {
                                    let d = (cx + dx, cy + dy);
                                    let c = cost(cur, key, (w, h), fb, d);
                                    if c < best.1 {
                                        best = (d, c);
                                    }
                                }
                            }
                        }
                        *v = best.0;
                    }
                });
        });
        self.prev.copy_from_slice(&self.blocks);
        self.choose_pixels(key, cur)
    }

    /// Per pixel, the best of its block's and the four neighbouring blocks' vectors; the
    /// fraction of poorly matched pixels.
    fn choose_pixels(&mut self, key: &[f32], cur: &[f32]) -> f32 {
        let (w, h, bx, by) = (self.w, self.h, self.bx, self.by);
        let blocks = &self.blocks;
        let bad_count: usize = on_frame_pool(|| {
            self.pixels
                .par_chunks_mut(w)
                .zip(self.bad.par_chunks_mut(w))
                .enumerate()
                .map(|(y, (row, bad))| {
                    let b_y = y / BLOCK;
                    let mut n = 0;
                    for (x, (v, b)) in row.iter_mut().zip(bad.iter_mut()).enumerate() {
                        let b_x = x / BLOCK;
                        let own = blocks[b_y * bx + b_x];
                        let mut cands = [own; 5];
                        if b_x > 0 {
                            cands[1] = blocks[b_y * bx + b_x - 1];
                        }
                        if b_x + 1 < bx {
                            cands[2] = blocks[b_y * bx + b_x + 1];
                        }
                        if b_y > 0 {
                            cands[3] = blocks[(b_y - 1) * bx + b_x];
                        }
                        if b_y + 1 < by {
                            cands[4] = blocks[(b_y + 1) * bx + b_x];
                        }
                        let mut best = (own, f32::INFINITY);
                        for (i, &c) in cands.iter().enumerate() {
                            if i > 0 && cands[..i].contains(&c) {
                                continue;
                            }
                            let d = window_cost(cur, key, (w, h), (x, y), c);
                            if d < best.1 {
                                best = (c, d);
                            }
                        }
                        *v = (best.0 .0 as i16, best.0 .1 as i16);
                        let at = sample(key, (w, h), x as i32 + best.0 .0, y as i32 + best.0 .1);
                        *b = (cur[y * w + x] - at).abs() > MISMATCH_LEVEL;
                        n += usize::from(*b);
                    }
                    n
                })
                .sum()
        });
        bad_count as f32 / (w * h) as f32
    }

    /// The pixel's vector into the keyframe (after [`Motion::estimate`]).
    pub fn vector(&self, x: usize, y: usize) -> (i32, i32) {
        let (dx, dy) = self.pixels[y * self.w + x];
        (i32::from(dx), i32::from(dy))
    }

    /// Carries `key_values` (the keyframe's, `w` x `h`) to the current frame along the
    /// vectors: each pixel reads the value where its vector points (clamped to the frame).
    pub fn warp(&self, key_values: &[f32], out: &mut [f32]) {
        let (w, h) = (self.w, self.h);
        assert!(key_values.len() == w * h && out.len() == w * h, "map size");
        for (y, (row, vecs)) in out.chunks_mut(w).zip(self.pixels.chunks(w)).enumerate() {
            for (x, (o, &(dx, dy))) in row.iter_mut().zip(vecs).enumerate() {
                *o = sample(
                    key_values,
                    (w, h),
                    x as i32 + i32::from(dx),
                    y as i32 + i32::from(dy),
                );
            }
        }
    }
}

/// The value at (x, y), clamped to the grid.
fn sample(img: &[f32], (w, h): (usize, usize), x: i32, y: i32) -> f32 {
    let x = x.clamp(0, w as i32 - 1) as usize;
    let y = y.clamp(0, h as i32 - 1) as usize;
    img[y * w + x]
}

/// Mean absolute difference of the block (x0, y0, bw, bh) of `cur` and the block of `key`
/// `d` away, plus the length penalty.
fn cost(
    cur: &[f32],
    key: &[f32],
    (w, h): (usize, usize),
    (x0, y0, bw, bh): (usize, usize, usize, usize),
    (dx, dy): (i32, i32),
) -> f32 {
    let (bw, bh) = (bw.min(w - x0.min(w)), bh.min(h - y0.min(h)));
    if bw == 0 || bh == 0 {
        return 0.0;
    }
    let (kx, ky) = (x0 as i32 + dx, y0 as i32 + dy);
    let mut sum = 0.0f32;
    if kx >= 0 && ky >= 0 && kx as usize + bw <= w && ky as usize + bh <= h {
        let (kx, ky) = (kx as usize, ky as usize);
        for r in 0..bh {
            let c = &cur[(y0 + r) * w + x0..][..bw];
            let k = &key[(ky + r) * w + kx..][..bw];
            sum += c.iter().zip(k).map(|(a, b)| (a - b).abs()).sum::<f32>();
        }
    } else {
        for r in 0..bh {
            for c in 0..bw {
                let a = cur[(y0 + r) * w + x0 + c];
                let b = sample(key, (w, h), kx + c as i32, ky + r as i32);
                sum += (a - b).abs();
            }
        }
    }
    sum / (bw * bh) as f32 + LENGTH_PENALTY * (dx.abs() + dy.abs()) as f32
}

/// The absolute difference over the 3x3 neighbourhood of (x, y) between `cur` and `key`
/// displaced by `d`.
fn window_cost(
    cur: &[f32],
    key: &[f32],
    (w, h): (usize, usize),
    (x, y): (usize, usize),
    (dx, dy): (i32, i32),
) -> f32 {
    let mut sum = 0.0;
    for oy in -1..=1 {
        for ox in -1..=1 {
            let (px, py) = (x as i32 + ox, y as i32 + oy);
            let a = sample(cur, (w, h), px, py);
            let b = sample(key, (w, h), px + dx, py + dy);
            sum += (a - b).abs();
        }
    }
    sum
}

/// `src` (`w` x `h`) at half size (2x2 means; one row or column kept when it is 1 wide).
fn halve(src: &[f32], w: usize, h: usize, out: &mut [f32]) {
    let (hw, hh) = ((w / 2).max(1), (h / 2).max(1));
    for y in 0..hh {
        let (r0, r1) = ((2 * y).min(h - 1), (2 * y + 1).min(h - 1));
        for x in 0..hw {
            let (c0, c1) = ((2 * x).min(w - 1), (2 * x + 1).min(w - 1));
            out[y * hw + x] =
                0.25 * (src[r0 * w + c0] + src[r0 * w + c1] + src[r1 * w + c0] + src[r1 * w + c1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured frame with a textured square of side `s` at (sx, sy).
    fn scene(w: usize, h: usize, (sx, sy): (usize, usize), s: usize) -> Vec<f32> {
        // Pseudo-random texture (no period for the search to lock onto).
        let noise = |x: usize, y: usize, seed: usize| {
            let v = (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ seed) % 1009;
            v as f32 / 1009.0
        };
        let mut v = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let inside = (sx..sx + s).contains(&x) && (sy..sy + s).contains(&y);
                v[y * w + x] = if inside {
                    0.6 + 0.3 * noise(x - sx, y - sy, 7)
                } else {
                    0.1 + 0.3 * noise(x, y, 0)
                };
            }
        }
        v
    }

    #[test]
    fn a_moved_square_points_back_to_where_it_was() {
        let (w, h) = (96, 64);
        let key = scene(w, h, (20, 16), 24);
        let cur = scene(w, h, (29, 21), 24);
        let mut m = Motion::new(w, h);
        let bad = m.estimate(&key, &cur);
        // Inside the moved square: back by (-9, -5).
        assert_eq!(m.vector(40, 32), (-9, -5));
        assert_eq!(m.vector(31, 23), (-9, -5));
        // Far from it, the background stays.
        assert_eq!(m.vector(85, 55), (0, 0));
        // Only the uncovered strip matches poorly.
        assert!(bad < 0.08, "{bad}");
    }

    #[test]
    fn an_unrelated_picture_matches_poorly() {
        let (w, h) = (64, 48);
        let key = scene(w, h, (10, 10), 16);
        let cur: Vec<f32> = (0..w * h)
            .map(|i| ((i * 37) % 101) as f32 / 101.0)
            .collect();
        let mut m = Motion::new(w, h);
        assert!(m.estimate(&key, &cur) > 0.3);
    }

    #[test]
    fn grids_smaller_than_a_block_work() {
        let mut m = Motion::new(5, 3);
        let key = vec![0.5; 15];
        assert_eq!(m.estimate(&key, &key), 0.0);
        let mut out = vec![0.0; 15];
        m.warp(&[0.25; 15], &mut out);
        assert_eq!(out, vec![0.25; 15]);
    }
}
