//! The warp's scalar reference kernels that the AVX2 kernels fall back on and are tested
//! against: the depth row to shifts, the splat's tail, the two-row interpolation and the
//! chroma keys. A leaf beside [`super::fixed`]: it imports nothing from the warp, the
//! resampling or the AVX2 kernels, so those depend on it and not on each other.

use super::fixed::{key, key_pos, round_i32, FRAC, HOLE, MAX_SPAN, ONE, RECIP};
use super::Sample;

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

/// [`sample2`](super::warp::sample2)'s interpolation, one pixel at a time; returns whether
/// any key is a [`HOLE`].
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

/// [`chroma_keys_from_luma`](super::warp::chroma_keys_from_luma) for a stretch of a row whose
/// full chroma width is `row_len`.
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
