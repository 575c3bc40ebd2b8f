//! AVX2 versions of the warp's inner loops, chosen at run time on CPUs that have AVX2 (the
//! binary stays baseline x86-64; elsewhere the scalar code runs). They compute exactly what
//! the scalar code does, eight pixels at a time (the tests compare the two bit for bit):
//! - the depth row's resampling to per-pixel shifts: two gathers per eight pixels;
//! - the splat: every source pixel's candidate targets and keys side by side, merged into the
//!   z-buffer one by one (neighbours can land on the same target);
//! - the chroma keys from the luma keys: every case of the scalar code as masks;
//! - the sampling: one gather reads both taps of each pixel.
//!
//! The only `unsafe` in the workspace: intrinsics behind the feature check, loads and gathers
//! whose indices are bounded first (each has its SAFETY note).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{chroma_keys_scalar, FRAC, HOLE, MAX_SPAN, ONE, RECIP};
use super::{lerp, splat_tail, taps, FixedAxis};

// The kernels clear and mask keys with zeros.
const _: () = assert!(HOLE == 0);

/// [`super::lerp2_scalar`] with AVX2 when the CPU has it (std caches the check); `None`
/// when it does not.
#[inline]
pub(super) fn lerp2(
    s0: &[u8],
    s1: &[u8],
    keys: &[u64],
    d0: &mut [u8],
    d1: &mut [u8],
) -> Option<bool> {
    if !is_x86_feature_detected!("avx2") {
        return None;
    }
    // SAFETY: the CPU has AVX2, checked just above.
    Some(unsafe { lerp2_avx2(s0, s1, keys, d0, d1) })
}

/// [`super::resample_row`] with AVX2 when the CPU has it; `false` (nothing done) when it
/// does not.
#[inline]
pub(super) fn resample_row(src: &[i32], xs: &FixedAxis, out: &mut [i32]) -> bool {
    if !is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above.
    unsafe { resample_row_avx2(src, xs, out) };
    true
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn resample_row_avx2(src: &[i32], xs: &FixedAxis, out: &mut [i32]) {
    let n = out.len();
    assert!(xs.a.len() >= n && xs.b.len() >= n && xs.f.len() >= n);
    // Every index must be inside `src` for the gathers (all are in 0..=max_index).
    assert!(xs.max_index < src.len());
    let half = _mm256_set1_epi32(ONE / 2);
    let mut x = 0;
    while x + 8 <= n {
        // SAFETY: x + 8 <= n <= each array's length; the gathered indices are inside `src`
        // (checked above).
        unsafe {
            let ia = _mm256_loadu_si256(xs.a.as_ptr().add(x) as *const __m256i);
            let ib = _mm256_loadu_si256(xs.b.as_ptr().add(x) as *const __m256i);
            let f = _mm256_loadu_si256(xs.f.as_ptr().add(x) as *const __m256i);
            let a = _mm256_i32gather_epi32::<4>(src.as_ptr(), ia);
            let b = _mm256_i32gather_epi32::<4>(src.as_ptr(), ib);
            let d = _mm256_mullo_epi32(_mm256_sub_epi32(b, a), f);
            let v = _mm256_add_epi32(
                a,
                _mm256_srai_epi32::<{ FRAC as i32 }>(_mm256_add_epi32(d, half)),
            );
            _mm256_storeu_si256(out.as_mut_ptr().add(x) as *mut __m256i, v);
        }
        x += 8;
    }
    for x in x..n {
        let (a, b) = (src[xs.a[x] as usize], src[xs.b[x] as usize]);
        out[x] = a + (((b - a) * xs.f[x] + ONE / 2) >> FRAC);
    }
}

/// [`super::chroma_keys_from_luma`] with AVX2 when the CPU has it; `false` (nothing done)
/// when it does not.
#[inline]
pub(super) fn chroma_keys(luma: &[u64], chroma: &mut [u64]) -> bool {
    if !is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above.
    unsafe { chroma_keys_avx2(luma, chroma) };
    true
}

/// Four chroma keys at a time from eight luma keys, every case of the scalar code as masks.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn chroma_keys_avx2(luma: &[u64], chroma: &mut [u64]) {
    let n = chroma.len().min(luma.len() / 2);
    if n == 0 {
        return;
    }
    let last = _mm256_set1_epi64x((((chroma.len() - 1) as u32) << FRAC) as i64);
    let low = _mm256_set1_epi64x(u32::MAX as i64);
    let high = _mm256_set1_epi64x(!(u32::MAX as u64) as i64);
    let sign = _mm256_set1_epi64x(i64::MIN);
    let zero = _mm256_setzero_si256();
    let max_span = _mm256_set1_epi64x(MAX_SPAN as i64);
    let min_span = _mm256_set1_epi64x(-MAX_SPAN as i64);
    let quarter = _mm256_set1_epi64x((ONE / 4) as i64);
    let full = _mm256_set1_epi64x(ONE as i64);
    let mut t = 0;
    while t + 4 <= n {
        // SAFETY: 2 * (t + 4) <= 2 * n <= luma.len(): both loads are inside `luma`.
        let (a, b) = unsafe {
            let p = luma.as_ptr().add(2 * t) as *const __m256i;
            (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)))
        };
        // Left and right luma keys of chroma pixels t, t + 2 | t + 1, t + 3.
        let k0 = _mm256_unpacklo_epi64(a, b);
        let k1 = _mm256_unpackhi_epi64(a, b);
        let hole0 = _mm256_cmpeq_epi64(k0, zero);
        let hole1 = _mm256_cmpeq_epi64(k1, zero);
        let (p0, p1) = (_mm256_and_si256(k0, low), _mm256_and_si256(k1, low));
        // k0 > k1 as unsigned numbers.
        let gt = _mm256_cmpgt_epi64(_mm256_xor_si256(k0, sign), _mm256_xor_si256(k1, sign));
        let d = _mm256_sub_epi64(p1, p0);
        let far = _mm256_or_si256(
            _mm256_cmpgt_epi64(d, max_span),
            _mm256_cmpgt_epi64(min_span, d),
        );
        let both = _mm256_andnot_si256(_mm256_or_si256(hole0, hole1), _mm256_set1_epi64x(-1));
        // The candidates: the midpoint, the left one's and the right one's position, halved.
        // Negative results are clamped to 0 below, so (p1 - ONE) >> 1 may use a logical shift
        // on max(p1 - ONE, 0).
        let mid = _mm256_sub_epi64(_mm256_srli_epi64::<2>(_mm256_add_epi64(p0, p1)), quarter);
        let left = _mm256_srli_epi64::<1>(p0);
        let right_raw = _mm256_sub_epi64(p1, full);
        let right = _mm256_srli_epi64::<1>(_mm256_andnot_si256(
            _mm256_cmpgt_epi64(zero, right_raw),
            right_raw,
        ));
        let use_mid = _mm256_andnot_si256(far, both);
        let use_left = _mm256_or_si256(
            _mm256_andnot_si256(hole0, hole1),
            _mm256_and_si256(_mm256_and_si256(both, far), gt),
        );
        let pos = _mm256_blendv_epi8(_mm256_blendv_epi8(right, left, use_left), mid, use_mid);
        // clamp(pos, 0, last)
        let pos = _mm256_andnot_si256(_mm256_cmpgt_epi64(zero, pos), pos);
        let pos = _mm256_blendv_epi8(pos, last, _mm256_cmpgt_epi64(pos, last));
        let nearer = _mm256_blendv_epi8(k1, k0, gt);
        let out = _mm256_or_si256(_mm256_and_si256(nearer, high), pos);
        let out = _mm256_andnot_si256(_mm256_and_si256(hole0, hole1), out);
        // Back to t, t + 1, t + 2, t + 3.
        let out = _mm256_permute4x64_epi64::<0b11_01_10_00>(out);
        // SAFETY: t + 4 <= n <= chroma.len().
        unsafe { _mm256_storeu_si256(chroma.as_mut_ptr().add(t) as *mut __m256i, out) };
        t += 4;
    }
    let row_len = chroma.len();
    chroma_keys_scalar(&luma[2 * t..], &mut chroma[t..], row_len);
}

/// [`super::splat_eye`] with AVX2 when the CPU has it; `false` (nothing done) when it does
/// not.
#[inline]
pub(super) fn splat_eye<const EYE: i32>(shift: &[i32], keys: &mut [u64]) -> bool {
    if !is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above.
    unsafe { splat_eye_avx2::<EYE>(shift, keys) };
    true
}

/// The splat, eight source pixels at a time: each pixel's (at most two) target positions and
/// keys are computed side by side, exactly as the scalar code does, then merged into the
/// z-buffer one by one (neighbours can land on the same target). An unused candidate is
/// `(0, HOLE)`, which the `max` leaves unchanged.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn splat_eye_avx2<const EYE: i32>(shift: &[i32], keys: &mut [u64]) {
    let w = shift.len();
    assert_eq!(keys.len(), w);
    // HOLE is 0: clear four keys a store.
    let mut x = 0;
    while x + 4 <= w {
        // SAFETY: x + 4 <= w = keys.len().
        unsafe {
            _mm256_storeu_si256(
                keys.as_mut_ptr().add(x) as *mut __m256i,
                _mm256_setzero_si256(),
            )
        };
        x += 4;
    }
    keys[x..].fill(HOLE);
    if w < 2 {
        splat_tail::<EYE>(shift, 1, keys);
        return;
    }
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let one = _mm256_set1_epi32(1);
    let full = _mm256_set1_epi32(ONE);
    let max_span = _mm256_set1_epi32(MAX_SPAN);
    let width = _mm256_set1_epi32(w as i32);
    let bias = _mm256_set1_epi32(i32::MIN);
    let mut ts = [0i32; 16];
    let mut ks = [0u64; 16];
    // Source pixels x1 = 1.. in eights, each with its left neighbour x1 - 1.
    let mut x1 = 1;
    while x1 + 8 <= w {
        // SAFETY: x1 >= 1 and x1 + 8 <= w: both 8-lane loads are inside `shift`.
        let (s0, s1) = unsafe {
            let p = shift.as_ptr().add(x1);
            (
                _mm256_loadu_si256(p.sub(1) as *const __m256i),
                _mm256_loadu_si256(p as *const __m256i),
            )
        };
        let x = _mm256_add_epi32(_mm256_set1_epi32(x1 as i32), lanes);
        let base = _mm256_slli_epi32::<{ FRAC as i32 }>(_mm256_sub_epi32(x, one));
        // Where the two pixels land: p = (x << FRAC) + EYE * shift.
        let (p0, p1) = if EYE < 0 {
            (
                _mm256_sub_epi32(base, s0),
                _mm256_sub_epi32(_mm256_add_epi32(base, full), s1),
            )
        } else {
            (
                _mm256_add_epi32(base, s0),
                _mm256_add_epi32(_mm256_add_epi32(base, full), s1),
            )
        };
        let span = _mm256_sub_epi32(p1, p0);
        // 1 <= span <= MAX_SPAN: a continuous surface.
        let cont = _mm256_andnot_si256(
            _mm256_cmpgt_epi32(span, max_span),
            _mm256_cmpgt_epi32(span, _mm256_setzero_si256()),
        );
        let idx = _mm256_and_si256(span, cont);
        // SAFETY: idx is span where 1 <= span <= MAX_SPAN and 0 elsewhere: inside RECIP.
        let r = unsafe { _mm256_i32gather_epi32::<4>(RECIP.as_ptr() as *const i32, idx) };
        let t0 =
            _mm256_srai_epi32::<{ FRAC as i32 }>(_mm256_add_epi32(p0, _mm256_set1_epi32(ONE - 1)));
        let off0 = _mm256_sub_epi32(_mm256_slli_epi32::<{ FRAC as i32 }>(t0), p0);
        let ds = _mm256_sub_epi32(s1, s0);
        let in_row = |t: __m256i| {
            // 0 <= t < w, as one unsigned comparison.
            _mm256_cmpgt_epi32(_mm256_xor_si256(width, bias), _mm256_xor_si256(t, bias))
        };
        let keys_of = |s: __m256i, pos: __m256i, valid: __m256i| {
            let hi = _mm256_and_si256(_mm256_xor_si256(s, bias), valid);
            let lo = _mm256_and_si256(pos, valid);
            // Keys for lanes 0-1, 4-5 and 2-3, 6-7; reordered to 0-3 and 4-7.
            let a = _mm256_unpacklo_epi32(lo, hi);
            let b = _mm256_unpackhi_epi32(lo, hi);
            (
                _mm256_permute2x128_si256::<0x20>(a, b),
                _mm256_permute2x128_si256::<0x31>(a, b),
            )
        };
        // The two candidates of a continuous surface: offsets off0 and off0 + ONE.
        let mut targets = [_mm256_setzero_si256(); 2];
        let mut any = [false; 2];
        for (c, off) in [off0, _mm256_add_epi32(off0, full)].into_iter().enumerate() {
            let t = _mm256_add_epi32(t0, _mm256_set1_epi32(c as i32));
            let valid = _mm256_and_si256(
                _mm256_and_si256(cont, _mm256_cmpgt_epi32(span, off)),
                in_row(t),
            );
            let frac = _mm256_srli_epi32::<{ FRAC as i32 }>(_mm256_mullo_epi32(off, r));
            let s = _mm256_add_epi32(
                s0,
                _mm256_srai_epi32::<{ FRAC as i32 }>(_mm256_mullo_epi32(ds, frac)),
            );
            targets[c] = _mm256_and_si256(t, valid);
            any[c] = _mm256_movemask_epi8(valid) != 0;
            let (ka, kb) = keys_of(s, _mm256_add_epi32(base, frac), valid);
            // SAFETY: ks has 16 slots; c * 8 + 8 <= 16.
            unsafe {
                let p = ks.as_mut_ptr().add(c * 8) as *mut __m256i;
                _mm256_storeu_si256(p, ka);
                _mm256_storeu_si256(p.add(1), kb);
            }
        }
        // A fold or a tear: the pixel covers its nearest slot, in place of candidate 0.
        let tf =
            _mm256_srai_epi32::<{ FRAC as i32 }>(_mm256_add_epi32(p0, _mm256_set1_epi32(ONE / 2)));
        let fold = _mm256_andnot_si256(cont, in_row(tf));
        let (fa, fb) = keys_of(s0, base, fold);
        // SAFETY: ks has 16 slots; the first eight are read and written.
        unsafe {
            let p = ks.as_mut_ptr() as *mut __m256i;
            // Where the pixel folds, candidate 0 is unused (its mask had `cont`): or them.
            _mm256_storeu_si256(p, _mm256_or_si256(_mm256_loadu_si256(p), fa));
            _mm256_storeu_si256(p.add(1), _mm256_or_si256(_mm256_loadu_si256(p.add(1)), fb));
        }
        let t_first = _mm256_or_si256(targets[0], _mm256_and_si256(tf, fold));
        // SAFETY: ts has 16 slots.
        unsafe {
            _mm256_storeu_si256(ts.as_mut_ptr() as *mut __m256i, t_first);
            _mm256_storeu_si256(ts.as_mut_ptr().add(8) as *mut __m256i, targets[1]);
        }
        // The second candidates are mostly unused (a pixel spans one target or none).
        let used = if any[1] { 16 } else { 8 };
        for (&t, &k) in ts[..used].iter().zip(&ks[..used]) {
            let slot = &mut keys[t as usize];
            *slot = (*slot).max(k);
        }
        x1 += 8;
    }
    splat_tail::<EYE>(shift, x1, keys);
}

/// Fills `d0` and `d1` from `s0` and `s1` at the keys' positions; returns whether any key is
/// a [`HOLE`] (the caller fills those).
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn lerp2_avx2(s0: &[u8], s1: &[u8], keys: &[u64], d0: &mut [u8], d1: &mut [u8]) -> bool {
    let w = s0.len();
    assert!(s1.len() == w && d0.len() == w && d1.len() == w && keys.len() == w);
    let mut holes = _mm256_setzero_si256();
    let zero = _mm256_setzero_si256();
    let last = _mm256_set1_epi32(w as i32 - 1);
    // A gather reads 4 bytes from a tap's first pixel: only where that stays in the row.
    let gather_limit = _mm256_set1_epi32(w as i32 - 4);
    let byte = _mm256_set1_epi32(0xff);
    let frac_mask = _mm256_set1_epi32(ONE - 1);
    let half = _mm256_set1_epi32(ONE / 2);
    let mut x = 0;
    while x + 8 <= w {
        // SAFETY: x + 8 <= w = keys.len(): both 32-byte loads are inside `keys`.
        let (ka, kb) = unsafe {
            let p = keys.as_ptr().add(x) as *const __m256i;
            (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)))
        };
        holes = _mm256_or_si256(
            holes,
            _mm256_or_si256(_mm256_cmpeq_epi64(ka, zero), _mm256_cmpeq_epi64(kb, zero)),
        );
        // The positions (each key's low 32 bits), in order.
        let pos = _mm256_castps_si256(_mm256_shuffle_ps::<0b10_00_10_00>(
            _mm256_castsi256_ps(ka),
            _mm256_castsi256_ps(kb),
        ));
        let pos = _mm256_permute4x64_epi64::<0b11_01_10_00>(pos);
        let i = _mm256_min_epi32(_mm256_srli_epi32::<{ FRAC as i32 }>(pos), last);
        let f = _mm256_and_si256(pos, frac_mask);
        if _mm256_movemask_epi8(_mm256_cmpgt_epi32(i, gather_limit)) != 0 {
            // A tap near the row's end: these eight the scalar way.
            for x in x..x + 8 {
                let (i, j, f) = taps(keys[x], w);
                d0[x] = lerp(s0[i], s0[j], f);
                d1[x] = lerp(s1[i], s1[j], f);
            }
            x += 8;
            continue;
        }
        for (s, d) in [(s0, &mut *d0), (s1, &mut *d1)] {
            // SAFETY: every index is at most w - 4, so each 4-byte read is inside `s`.
            let g = unsafe { _mm256_i32gather_epi32::<1>(s.as_ptr() as *const i32, i) };
            let a = _mm256_and_si256(g, byte);
            let b = _mm256_and_si256(_mm256_srli_epi32::<8>(g), byte);
            // (a * ONE + (b - a) * f + ONE / 2) >> FRAC, as `lerp`: never negative.
            let v = _mm256_add_epi32(
                _mm256_add_epi32(_mm256_slli_epi32::<{ FRAC as i32 }>(a), half),
                _mm256_mullo_epi32(_mm256_sub_epi32(b, a), f),
            );
            let v = _mm256_srli_epi32::<{ FRAC as i32 }>(v);
            let v16 = _mm256_packus_epi32(v, v);
            let v8 = _mm256_packus_epi16(v16, v16);
            let lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(v8)) as u32;
            let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(v8)) as u32;
            let bytes = (u64::from(hi) << 32 | u64::from(lo)).to_le_bytes();
            d[x..x + 8].copy_from_slice(&bytes);
        }
        x += 8;
    }
    let mut any_hole = _mm256_movemask_epi8(holes) != 0;
    for x in x..w {
        any_hole |= keys[x] == HOLE;
        let (i, j, f) = taps(keys[x], w);
        d0[x] = lerp(s0[i], s0[j], f);
        d1[x] = lerp(s1[i], s1[j], f);
    }
    any_hole
}

#[cfg(test)]
mod tests {
    use super::super::{chroma_keys_scalar, lerp2_scalar, resample_row, splat_tail};
    use super::super::{FixedAxis, ResampleMap, HOLE, ONE};
    use super::{chroma_keys, lerp2, splat_eye};

    fn rng(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    fn splat_both<const EYE: i32>(shift: &[i32]) -> Option<(Vec<u64>, Vec<u64>)> {
        let mut fast = vec![7u64; shift.len()];
        if !splat_eye::<EYE>(shift, &mut fast) {
            return None;
        }
        let mut slow = vec![HOLE; shift.len()];
        splat_tail::<EYE>(shift, 1, &mut slow);
        Some((fast, slow))
    }

    #[test]
    fn avx2_splat_matches_the_scalar_code_exactly() {
        let mut next = rng(0x2545_f491_4f6c_dd1d);
        for w in [1usize, 2, 8, 9, 10, 17, 33, 100, 1280] {
            for round in 0..30 {
                // Smooth shifts with steps (folds and tears) and, now and then, wild values.
                let mut s = (next() % 4000) as i32 - 2000;
                let shift: Vec<i32> = (0..w)
                    .map(|_| {
                        let r = next();
                        s += match r % 16 {
                            0 => (r >> 8) as i32 % 3000 - 1500,
                            1 if round % 5 == 0 => (r >> 8) as i32 % 200_000 - 100_000,
                            _ => (r >> 8) as i32 % 120 - 60,
                        };
                        s
                    })
                    .collect();
                for (fast, slow) in [splat_both::<1>(&shift), splat_both::<-1>(&shift)]
                    .into_iter()
                    .flatten()
                {
                    assert_eq!(fast, slow, "width {w}, round {round}");
                }
            }
        }
    }

    #[test]
    fn avx2_chroma_keys_match_the_scalar_code_exactly() {
        let mut next = rng(0x1234_5678_9abc_def1);
        for cw in [1usize, 2, 3, 4, 5, 8, 9, 640] {
            let w = 2 * cw;
            let max = ((w - 1) as u64) << 8;
            for round in 0..40 {
                // Splat-like keys: positions near their pixel, depth edges, holes, row ends.
                let luma: Vec<u64> = (0..w)
                    .map(|x| {
                        let r = next();
                        if r.is_multiple_of(7) || (round % 4 == 0 && r.is_multiple_of(3)) {
                            return HOLE;
                        }
                        let pos = match (r >> 4) % 5 {
                            0 => max,
                            1 => (r >> 12) % (max + 1),
                            2 => 0,
                            _ => ((x as u64) << 8).saturating_add((r >> 12) % 900).min(max),
                        };
                        let depth = match (r >> 20) % 3 {
                            0 => 1u64 << 31,
                            _ => (r >> 32) & 0xffff_ffff | 1,
                        };
                        depth << 32 | pos
                    })
                    .collect();
                let mut fast = vec![7u64; cw];
                if !chroma_keys(&luma, &mut fast) {
                    return;
                }
                let mut slow = vec![7u64; cw];
                chroma_keys_scalar(&luma, &mut slow, cw);
                assert_eq!(fast, slow, "chroma width {cw}, round {round}");
            }
        }
    }

    #[test]
    fn avx2_resampling_matches_the_scalar_code_exactly() {
        let mut next = rng(0x0bad_cafe_f00d_d00d);
        for (src_w, dst_w) in [
            (1usize, 1usize),
            (1, 9),
            (7, 3),
            (924, 1280),
            (518, 1920),
            (9, 8),
        ] {
            let map = ResampleMap::new(src_w, 4, dst_w, 4);
            let xs: &FixedAxis = &map.xs_fixed;
            let src: Vec<i32> = (0..src_w)
                .map(|_| (next() % 2_000_000) as i32 - 1_000_000)
                .collect();
            let mut fast = vec![0; dst_w];
            if !super::resample_row(&src, xs, &mut fast) {
                return;
            }
            let mut slow = vec![0; dst_w];
            resample_row(&src, xs, &mut slow);
            assert_eq!(fast, slow, "{src_w} -> {dst_w}");
        }
    }

    #[test]
    fn avx2_sampling_matches_the_scalar_code_exactly() {
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        for w in [1usize, 3, 4, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1280] {
            for round in 0..20 {
                let s0: Vec<u8> = (0..w).map(|_| next() as u8).collect();
                let s1: Vec<u8> = (0..w).map(|_| next() as u8).collect();
                let max = ((w - 1) as u64) << 8;
                let keys: Vec<u64> = (0..w)
                    .map(|x| {
                        let r = next();
                        if round % 3 == 0 && r.is_multiple_of(11) {
                            return HOLE;
                        }
                        // Positions near x (as a splat gives), anywhere, or at the row's end.
                        let pos = match r % 4 {
                            0 => max,
                            1 => (r >> 8) % (max + 1),
                            _ => ((x as u64) << 8).saturating_add((r >> 8) % 700).min(max),
                        };
                        (r >> 40 | 1) << 32 | pos
                    })
                    .collect();
                let (mut a0, mut a1) = (vec![0u8; w], vec![0u8; w]);
                let (mut b0, mut b1) = (vec![0u8; w], vec![0u8; w]);
                let Some(holes) = lerp2(&s0, &s1, &keys, &mut a0, &mut a1) else {
                    eprintln!("no AVX2 on this CPU: nothing to compare");
                    return;
                };
                let want = lerp2_scalar(&s0, &s1, &keys, &mut b0, &mut b1);
                assert_eq!((a0, a1, holes), (b0, b1, want), "width {w}, round {round}");
            }
        }
        // The fixed point: taps one pixel apart.
        assert_eq!(ONE, 256);
    }
}
