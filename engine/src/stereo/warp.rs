//! The warp: a band of row pairs shifted per eye by their depth (see the module above for
//! the steps), in fixed point, with the AVX2 kernels where the CPU has them.

use super::resample::{resample_row, ResampleMap};
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

pub(super) fn coarse_shifts_scalar(
    [r0, r1]: [&[f32]; 2],
    fy: f32,
    (k, c): (f32, f32),
    out: &mut [i32],
) {
    for ((o, &a), &b) in out.iter_mut().zip(r0).zip(r1) {
        let z = a + (b - a) * fy;
        *o = round_i32(k * (z - c));
    }
}

/// Fixed point: positions and shifts in 1/256 px.
pub(super) const FRAC: u32 = 8;
pub(super) const ONE: i32 = 1 << FRAC;
/// `1.5 * 2^23`: adding it to an f32 of magnitude below 2^22 leaves the value rounded to an
/// integer (to even on ties) in the low mantissa bits.
pub(super) const ROUND_MAGIC: f32 = 12_582_912.0;

/// Rounds `v` (|v| < 2^22; a shift of 100% of an 8K width in 1/256 px is ~2^20) to the
/// nearest integer with plain float arithmetic: no libm call (baseline x86-64 has no
/// rounding instruction) and no saturating conversion, so loops of it vectorise.
#[inline]
pub(super) fn round_i32(v: f32) -> i32 {
    (v + ROUND_MAGIC).to_bits() as i32 - ROUND_MAGIC.to_bits() as i32
}
/// A target pixel nothing landed on; every real key is above it.
pub(super) const HOLE: u64 = 0;
/// Neighbouring source pixels further apart than this after the shift (1/256 px) leave a
/// hole between them (a disocclusion) instead of being stretched over it.
pub(super) const MAX_SPAN: i32 = 2 * ONE;
/// `65536 / span` for every span up to [`MAX_SPAN`]: the splat divides by a table look-up.
pub(super) static RECIP: [u32; MAX_SPAN as usize + 1] = {
    let mut t = [0u32; MAX_SPAN as usize + 1];
    let mut i = 1;
    while i < t.len() {
        t[i] = ((1u32 << 16) + i as u32 / 2) / i as u32;
        i += 1;
    }
    t
};

/// A splatted target pixel: the surface's eye shift (the z-buffer key: nearer = larger) in
/// the high half, the source position to sample (1/256 px) in the low half, so the z-test
/// is one integer `max`.
#[inline]
pub(super) fn key(shift: i32, pos: u32) -> u64 {
    ((i64::from(shift) + (1i64 << 31)) as u64) << 32 | u64::from(pos)
}

#[inline]
pub(super) fn key_pos(k: u64) -> u32 {
    k as u32
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

/// The splat of source pixels `from..` (each with its left neighbour; `from >= 1`) onto
/// `keys`, and of the last pixel.
pub(super) fn splat_tail<const EYE: i32>(shift: &[i32], from: usize, keys: &mut [u64]) {
    let eye = EYE;
    let w = shift.len();
    assert!(keys.len() == w && from >= 1 && from <= w.max(1));
    let wu = w as u32;
    let mut s0 = shift[from - 1];
    let mut p0 = (((from - 1) as i32) << FRAC) + eye * s0;
    // Every pixel but the last, which has no right neighbour.
    for (x1, &s1) in shift.iter().enumerate().skip(from) {
        let p1 = ((x1 as i32) << FRAC) + eye * s1;
        let span = p1 - p0;
        let base = ((x1 - 1) as u32) << FRAC;
        if (1..=MAX_SPAN).contains(&span) {
            // A continuous surface: the integer positions in [p0, p1), at most two; the
            // source position advances by 1/span per 1/256 px of target.
            let r = RECIP[span as usize];
            let t0 = (p0 + ONE - 1) >> FRAC;
            let off0 = (t0 << FRAC) - p0;
            for (t, off) in [(t0, off0), (t0 + 1, off0 + ONE)] {
                if off < span && (t as u32) < wu {
                    // At most 256: the position stays within [x, x + 1].
                    let frac = (off as u32 * r) >> FRAC;
                    let s = s0 + (((s1 - s0) * frac as i32) >> FRAC);
                    let slot = &mut keys[t as usize];
                    *slot = (*slot).max(key(s, base + frac));
                }
            }
        } else {
            // A fold (occlusion) or a tear (disocclusion): the pixel covers its nearest slot.
            let t = (p0 + ONE / 2) >> FRAC;
            if (t as u32) < wu {
                let slot = &mut keys[t as usize];
                *slot = (*slot).max(key(s0, base));
            }
        }
        s0 = s1;
        p0 = p1;
    }
    // The last pixel keeps its width: it covers the one integer position in [p0, p0 + 1).
    let t = (p0 + ONE - 1) >> FRAC;
    if (t as u32) < wu {
        let slot = &mut keys[t as usize];
        *slot = (*slot).max(key(s0, ((w - 1) as u32) << FRAC));
    }
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

/// [`sample2`]'s interpolation, one pixel at a time; returns whether any key is a [`HOLE`].
pub(super) fn lerp2_scalar<T: Sample>(
    s0: &[T],
    s1: &[T],
    keys: &[u64],
    d0: &mut [T],
    d1: &mut [T],
) -> bool {
    let w = s0.len();
    assert!(s1.len() == w && d0.len() == w && d1.len() == w && keys.len() == w);
    let mut holes = false;
    for (x, &k) in keys.iter().enumerate() {
        holes |= k == HOLE;
        let (i, j, f) = taps(k, w);
        d0[x] = lerp(s0[i], s0[j], f);
        d1[x] = lerp(s1[i], s1[j], f);
    }
    holes
}

/// The two source pixels a key's position falls between, and the weight of the second.
#[inline(always)]
pub(super) fn taps(k: u64, w: usize) -> (usize, usize, i32) {
    let pos = key_pos(k);
    let i = ((pos >> FRAC) as usize).min(w - 1);
    (i, (i + 1).min(w - 1), (pos & (ONE as u32 - 1)) as i32)
}

#[inline(always)]
pub(super) fn lerp<T: Sample>(a: T, b: T, f: i32) -> T {
    let (a, b) = (a.level(), b.level());
    T::from_level((a * ONE + (b - a) * f + ONE / 2) >> FRAC)
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

/// [`chroma_keys_from_luma`] for a stretch of a row whose full chroma width is `row_len`.
pub(super) fn chroma_keys_scalar(luma: &[u64], chroma: &mut [u64], row_len: usize) {
    if row_len == 0 {
        return;
    }
    let last = (((row_len - 1) as u32) << FRAC) as i32;
    for (o, pair) in chroma.iter_mut().zip(luma.chunks_exact(2)) {
        let (k0, k1) = (pair[0], pair[1]);
        let (p0, p1) = (key_pos(k0) as i32, key_pos(k1) as i32);
        let pos = match (k0 != HOLE, k1 != HOLE) {
            (true, true) if (p1 - p0).abs() <= MAX_SPAN => ((p0 + p1) >> 2) - ONE / 4,
            (true, true) if k0 > k1 => p0 >> 1,
            (true, true) => (p1 - ONE) >> 1,
            (true, false) => p0 >> 1,
            (false, true) => (p1 - ONE) >> 1,
            (false, false) => {
                *o = HOLE;
                continue;
            }
        };
        *o = (k0.max(k1) & !u64::from(u32::MAX)) | u64::from(pos.clamp(0, last) as u32);
    }
}

#[cfg(test)]
mod tests;
