//! The warp: a band of row pairs shifted per eye by their depth (see the module above for
//! the steps), in fixed point, with the AVX2 kernels where the CPU has them.

use super::fixed::{round_i32, HOLE, ONE};
use super::resample::{resample_row, ResampleMap};
use super::scalar::{
    chroma_keys_scalar, coarse_shifts_scalar, lerp, lerp2_scalar, splat_tail, taps,
};
#[cfg(target_arch = "x86_64")]
use super::simd;
use super::{DepthMap, Sample};

/// One band's row buffers.
#[derive(Debug, Clone)]
pub(super) struct BandScratch {
    /// The depth row interpolated vertically, as eye shifts (depth-grid width).
    pub(super) coarse: Vec<i32>,
    /// The eye shift of every luma pixel of the row.
    pub(super) shift: Vec<i32>,
    /// The splatted keys of one luma row for one eye.
    pub(super) keys: Vec<u64>,
    /// The keys of the chroma row derived from them.
    pub(super) chroma_keys: Vec<u64>,
}

impl BandScratch {
    pub(super) fn new(width: usize, depth_width: usize) -> Self {
        Self {
            coarse: vec![0; depth_width.max(1)],
            shift: vec![0; width],
            keys: vec![HOLE; width],
            chroma_keys: vec![HOLE; width / 2],
        }
    }
}

/// What every band of a frame shares.
pub(super) struct BandContext<'a> {
    pub(super) w: usize,
    pub(super) depth: &'a DepthMap,
    pub(super) map: &'a ResampleMap,
    /// Eye shift in 1/256 px per unit of (depth - convergence).
    pub(super) scale: f32,
    pub(super) convergence: f32,
    /// The eye (0 left, 1 right) that shows the source unchanged, if one does.
    pub(super) original: Option<usize>,
}

/// A left and a right output row.
pub(super) type EyeRows<'a, T> = (&'a mut [T], &'a mut [T]);

impl BandContext<'_> {
    /// Warps one band: row pairs from `first_pair` on, `src` holding the band's source rows
    /// and the output iterators yielding the band's (left, right) rows.
    pub(super) fn band<'o, T: Sample>(
        &self,
        scratch: &mut BandScratch,
        first_pair: usize,
        (sy, su, sv): (&[T], &[T], &[T]),
        mut oy: impl Iterator<Item = EyeRows<'o, T>>,
        mut ou: impl Iterator<Item = EyeRows<'o, T>>,
        mut ov: impl Iterator<Item = EyeRows<'o, T>>,
    ) {
        let (w, cw) = (self.w, self.w / 2);
        let BandScratch {
            coarse,
            shift,
            keys,
            chroma_keys,
        } = scratch;
        for (i, (sy2, (su, sv))) in sy
            .chunks(2 * w)
            .zip(su.chunks(cw).zip(sv.chunks(cw)))
            .enumerate()
        {
            // One splat per eye serves the pair's two luma rows and their chroma row, as
            // 4:2:0 chroma already shares one sample between the two. It halves the
            // splatting for at most one luma row of vertical depth detail: the default
            // depth map has 518 rows for 360 pairs at 720p and 540 at 1080p.
            self.shift_pair(first_pair + i, coarse, shift);
            let (s0, s1) = sy2.split_at(w);
            let (l0, r0) = oy.next().expect("two luma rows per pair");
            let (l1, r1) = oy.next().expect("two luma rows per pair");
            let (ul, ur) = ou.next().expect("a chroma row per pair");
            let (vl, vr) = ov.next().expect("a chroma row per pair");
            for (i, (eye, d0, d1, cu, cv)) in [(1, l0, l1, ul, vl), (-1, r0, r1, ur, vr)]
                .into_iter()
                .enumerate()
            {
                if self.original == Some(i) {
                    d0.copy_from_slice(s0);
                    d1.copy_from_slice(s1);
                    cu.copy_from_slice(su);
                    cv.copy_from_slice(sv);
                    continue;
                }
                splat(shift, eye, keys);
                sample2([s0, s1], keys, [d0, d1]);
                chroma_keys_from_luma(keys, chroma_keys);
                sample2([su, sv], chroma_keys, [cu, cv]);
            }
        }
    }

    /// The eye shift (1/256 px) of every pixel of row pair `pair` (depth sampled at the
    /// pair's centre): the depth map interpolated vertically at depth-grid width and turned
    /// into shifts (few float conversions), then horizontally in integers.
    pub(super) fn shift_pair(&self, pair: usize, coarse: &mut [i32], shift: &mut [i32]) {
        let dw = self.depth.width.max(1);
        let (y0, y1, fy) = self.map.pair_ys[pair];
        let r0 = &self.depth.data[y0 as usize * dw..][..dw];
        let r1 = &self.depth.data[y1 as usize * dw..][..dw];
        coarse_shifts([r0, r1], fy, (self.scale, self.convergence), coarse);
        let xs = &self.map.xs_fixed;
        #[cfg(target_arch = "x86_64")]
        if simd::resample_row(coarse, xs, shift) {
            return;
        }
        resample_row(coarse, xs, shift);
    }
}

/// The shifts of a depth row interpolated `fy` of the way from row `r0` to `r1`: `k * (z - c)`
/// rounded, for `(k, c)` the shift per unit of depth and the convergence.
pub(super) fn coarse_shifts([r0, r1]: [&[f32]; 2], fy: f32, (k, c): (f32, f32), out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::coarse_shifts([r0, r1], fy, (k, c), out) {
        return;
    }
    coarse_shifts_scalar([r0, r1], fy, (k, c), out);
}

/// Warps one row for one eye: `disp` is the disparity of each source pixel in pixels
/// (positive = in front of the screen), and the eye shifts each pixel by `sign * disp`
/// (+0.5 left eye, -0.5 right eye). A convenience over the renderer's kernel for a single
/// row (it allocates its scratch; [`StereoRenderer`] does not).
pub fn warp_row<T: Sample>(src: &[T], disp: &[f32], sign: f32, dst: &mut [T]) {
    let w = src.len();
    assert!(disp.len() == w && dst.len() == w);
    if w == 0 {
        return;
    }
    let m = sign.abs() * ONE as f32;
    let shift: Vec<i32> = disp.iter().map(|&d| round_i32(d * m)).collect();
    let mut keys = vec![HOLE; w];
    splat(&shift, if sign < 0.0 { -1 } else { 1 }, &mut keys);
    sample(src, &keys, dst);
}

/// Step 1: forward-splat the row: source pixel `x` lands at `x + eye * shift(x)`; between
/// two neighbouring source pixels that stay neighbours the target pixels they span get
/// interpolated source positions; where two surfaces land on one pixel the nearer (larger
/// shift) wins (a z-buffer); pixels nothing lands on stay [`HOLE`].
pub(super) fn splat(shift: &[i32], eye: i32, keys: &mut [u64]) {
    // One copy of the loop per eye: the sign folds into the arithmetic.
    if eye < 0 {
        splat_eye::<-1>(shift, keys);
    } else {
        splat_eye::<1>(shift, keys);
    }
}

pub(super) fn splat_eye<const EYE: i32>(shift: &[i32], keys: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if simd::splat_eye::<EYE>(shift, keys) {
        return;
    }
    assert_eq!(keys.len(), shift.len());
    keys.fill(HOLE);
    splat_tail::<EYE>(shift, 1, keys);
}

/// Steps 2 and 3: sample the source at each splatted position (linear interpolation in
/// 8-bit fixed point), then fill the holes.
pub(super) fn sample<T: Sample>(src: &[T], keys: &[u64], dst: &mut [T]) {
    let w = src.len();
    let mut holes = false;
    for (out, &k) in dst.iter_mut().zip(keys) {
        // A hole samples position 0 and is overwritten below: no branch here.
        holes |= k == HOLE;
        let (i, j, f) = taps(k, w);
        *out = lerp(src[i], src[j], f);
    }
    if holes {
        fill_holes(src, keys, dst);
    }
}

/// [`sample`] for two planes' rows that share one splat (a pair's luma rows, or a chroma
/// row's U and V): each key is decoded once for both, with the AVX2 kernels for 8-bit and
/// 16-bit samples where the CPU has AVX2.
pub(super) fn sample2<T: Sample>(src: [&[T]; 2], keys: &[u64], dst: [&mut [T]; 2]) {
    let [s0, s1] = src;
    let [d0, d1] = dst;
    #[cfg(target_arch = "x86_64")]
    let fast = match (T::as_u8(s0), T::as_u8(s1), T::as_u16(s0), T::as_u16(s1)) {
        (Some(a), Some(b), ..) => T::as_u8_mut(&mut *d0)
            .zip(T::as_u8_mut(&mut *d1))
            .and_then(|(c, d)| simd::lerp2(a, b, keys, c, d)),
        (.., Some(a), Some(b)) => T::as_u16_mut(&mut *d0)
            .zip(T::as_u16_mut(&mut *d1))
            .and_then(|(c, d)| simd::lerp2_u16(a, b, keys, c, d)),
        _ => None,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let fast = None;
    let holes = match fast {
        Some(holes) => holes,
        None => lerp2_scalar(s0, s1, keys, d0, d1),
    };
    if holes {
        fill_holes(s0, keys, d0);
        fill_holes(s1, keys, d1);
    }
}

/// Step 3: fill each hole (a disocclusion, only ever next to a depth edge, as wide as the
/// disparity step) from its farther side: the background continues into it, mirrored (the
/// pixel `k` into the hole takes the background pixel `k` away from it), so its texture goes
/// on instead of one pixel's value smeared into a streak. Mirroring stops where the
/// background ends (a nearer surface or another hole); the rest repeats the last pixel.
pub(super) fn fill_holes<T: Sample>(src: &[T], keys: &[u64], dst: &mut [T]) {
    let w = src.len();
    let mut x = 0;
    while x < w {
        if keys[x] != HOLE {
            x += 1;
            continue;
        }
        let start = x;
        while x < w && keys[x] == HOLE {
            x += 1;
        }
        let from = match (start.checked_sub(1), (x < w).then_some(x)) {
            (Some(a), Some(b)) => {
                if keys[a] >> 32 <= keys[b] >> 32 {
                    a
                } else {
                    b
                }
            }
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => {
                // Nothing landed in the row at all (cannot happen for sane disparities).
                dst.copy_from_slice(src);
                return;
            }
        };
        // Background at `i`: landed (not a hole) and not nearer than the side filled from by
        // more than a pixel of shift (a smooth background slopes; a foreground jumps).
        let depth = (keys[from] >> 32) + ONE as u64;
        let background = |i: usize| keys[i] != HOLE && keys[i] >> 32 <= depth;
        let mut last = dst[from];
        for k in 0..x - start {
            let (to, mirror) = if from < start {
                (start + k, from.checked_sub(k))
            } else {
                (x - 1 - k, Some(from + k).filter(|&i| i < w))
            };
            if let Some(i) = mirror.filter(|&i| background(i)) {
                last = dst[i];
            }
            dst[to] = last;
        }
    }
}

/// The chroma row's keys from its upper luma row's: chroma pixel `t` covers luma pixels
/// `2t` and `2t+1` (its centre halfway between them), so it samples the chroma plane where
/// they sample the luma plane, halved. Where the two come from different surfaces (a depth
/// edge between them) the nearer one alone decides; where both are holes so is it.
pub(super) fn chroma_keys_from_luma(luma: &[u64], chroma: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if simd::chroma_keys(luma, chroma) {
        return;
    }
    let n = chroma.len();
    chroma_keys_scalar(luma, chroma, n);
}

#[cfg(test)]
mod tests;
