//! AVX2 kernel of the splat: every source pixel's target positions and z-buffer keys, eight
//! at a time, merged into the row's keys.

use std::arch::x86_64::*;

use crate::stereo::fixed::{FRAC, HOLE, MAX_SPAN, ONE};
use crate::stereo::scalar::splat_tail;

/// [`crate::stereo::warp::splat_eye`] with AVX2 when the CPU has it; `false` (nothing done) when it does
/// not.
#[inline]
pub(in crate::stereo) fn splat_eye<const EYE: i32>(shift: &[i32], keys: &mut [u64]) -> bool {
    if !crate::cpu::avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above (`cpu::avx2`).
    unsafe { splat_eye_avx2::<EYE>(shift, keys) };
    true
}

/// The splat, eight source pixels at a time: each pixel's (at most two) target positions and
/// keys are computed side by side, exactly as the scalar code does, then merged into the
/// z-buffer one by one (neighbours can land on the same target). An unused candidate is
/// `(0, HOLE)`, which the `max` leaves unchanged.
/// Safe code compiled for AVX2: called (in `unsafe`) only after [`crate::cpu::avx2`].
#[target_feature(enable = "avx2")]
fn splat_eye_avx2<const EYE: i32>(shift: &[i32], keys: &mut [u64]) {
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
    let mut ts = [0i32; 8];
    let mut ks = [0u64; 8];
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
        let r = recip(span, cont);
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
            [
                _mm256_permute2x128_si256::<0x20>(a, b),
                _mm256_permute2x128_si256::<0x31>(a, b),
            ]
        };
        // The two candidates of a continuous surface: offsets off0 and off0 + ONE.
        let mut targets = [_mm256_setzero_si256(); 2];
        let mut cand_keys = [[_mm256_setzero_si256(); 2]; 2];
        let mut used = [0u32; 2];
        for (c, off) in [off0, _mm256_add_epi32(off0, full)].into_iter().enumerate() {
            let t = _mm256_add_epi32(t0, _mm256_set1_epi32(c as i32));
            let valid = _mm256_and_si256(
                _mm256_and_si256(cont, _mm256_cmpgt_epi32(span, off)),
                in_row(t),
            );
            used[c] = _mm256_movemask_ps(_mm256_castsi256_ps(valid)) as u32;
            // The second candidates are mostly unused (a pixel spans one target or none).
            if used[c] == 0 {
                continue;
            }
            let frac = _mm256_srli_epi32::<{ FRAC as i32 }>(_mm256_mullo_epi32(off, r));
            let s = _mm256_add_epi32(
                s0,
                _mm256_srai_epi32::<{ FRAC as i32 }>(_mm256_mullo_epi32(ds, frac)),
            );
            targets[c] = _mm256_and_si256(t, valid);
            cand_keys[c] = keys_of(s, _mm256_add_epi32(base, frac), valid);
        }
        // A fold or a tear: the pixel covers its nearest slot, as candidate 0 (whose mask had
        // `cont`, so the two never overlap).
        let tf =
            _mm256_srai_epi32::<{ FRAC as i32 }>(_mm256_add_epi32(p0, _mm256_set1_epi32(ONE / 2)));
        let fold = _mm256_andnot_si256(cont, in_row(tf));
        let folds = _mm256_movemask_ps(_mm256_castsi256_ps(fold)) as u32;
        if folds != 0 {
            let [fa, fb] = keys_of(s0, base, fold);
            cand_keys[0] = [
                _mm256_or_si256(cand_keys[0][0], fa),
                _mm256_or_si256(cand_keys[0][1], fb),
            ];
            targets[0] = _mm256_or_si256(targets[0], _mm256_and_si256(tf, fold));
            used[0] |= folds;
        }
        // Where the surface is smooth, the eight pixels land on eight neighbouring targets,
        // one each: merge them with two vector max operations.
        if used == [0xff, 0] {
            let first = _mm256_cvtsi256_si32(targets[0]);
            let next = _mm256_add_epi32(_mm256_set1_epi32(first), lanes);
            if _mm256_movemask_epi8(_mm256_cmpeq_epi32(targets[0], next)) == -1 {
                // SAFETY: every lane is in the row, so first..first + 8 is inside `keys`.
                unsafe {
                    let p = keys.as_mut_ptr().add(first as usize) as *mut __m256i;
                    let [ka, kb] = cand_keys[0];
                    _mm256_storeu_si256(p, max_u64(_mm256_loadu_si256(p), ka));
                    _mm256_storeu_si256(p.add(1), max_u64(_mm256_loadu_si256(p.add(1)), kb));
                }
                x1 += 8;
                continue;
            }
        }
        // Otherwise one by one (neighbours can land on the same target).
        for c in 0..2 {
            if used[c] == 0 {
                continue;
            }
            // SAFETY: ts has 8 slots, ks 8 (two stores of four).
            unsafe {
                _mm256_storeu_si256(ts.as_mut_ptr() as *mut __m256i, targets[c]);
                let p = ks.as_mut_ptr() as *mut __m256i;
                _mm256_storeu_si256(p, cand_keys[c][0]);
                _mm256_storeu_si256(p.add(1), cand_keys[c][1]);
            }
            let mut m = used[c];
            while m != 0 {
                let j = m.trailing_zeros() as usize;
                let slot = &mut keys[ts[j] as usize];
                *slot = (*slot).max(ks[j]);
                m &= m - 1;
            }
        }
        x1 += 8;
    }
    splat_tail::<EYE>(shift, x1, keys);
}

/// `RECIP[span]` (`(65536 + span / 2) / span`) of the lanes where `cont` is set (spans of
/// 1..=MAX_SPAN); the other lanes get garbage. Computed rather than gathered from the table:
/// the truncated float quotient of these small integers is the integer quotient for every
/// span up to MAX_SPAN (a test checks each one).
#[inline]
#[target_feature(enable = "avx2")]
fn recip(span: __m256i, cont: __m256i) -> __m256i {
    let d = _mm256_blendv_epi8(_mm256_set1_epi32(1), span, cont);
    let n = _mm256_add_epi32(_mm256_set1_epi32(1 << 16), _mm256_srli_epi32::<1>(d));
    _mm256_cvttps_epi32(_mm256_div_ps(_mm256_cvtepi32_ps(n), _mm256_cvtepi32_ps(d)))
}

/// The lane-wise maximum of four unsigned 64-bit keys.
#[inline]
#[target_feature(enable = "avx2")]
fn max_u64(a: __m256i, b: __m256i) -> __m256i {
    let sign = _mm256_set1_epi64x(i64::MIN);
    let a_gt = _mm256_cmpgt_epi64(_mm256_xor_si256(a, sign), _mm256_xor_si256(b, sign));
    _mm256_blendv_epi8(b, a, a_gt)
}

#[cfg(test)]
mod tests {
    use super::super::rng;
    use super::{recip, splat_eye};
    use crate::stereo::fixed::{HOLE, MAX_SPAN, RECIP};
    use crate::stereo::scalar::splat_tail;
    use std::arch::x86_64::*;

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
        if !crate::cpu::kernels_comparable() {
            return;
        }
        let mut next = rng(0x2545_f491_4f6c_dd1d);
        for w in [1usize, 2, 8, 9, 10, 17, 33, 100, 1280] {
            for round in 0..30 {
                // Smooth shifts with steps (folds and tears) and, now and then, wild values;
                // every third round gentle slopes, where whole blocks land one pixel each.
                let slope = if round % 3 == 1 { 16 } else { 120 };
                let mut s = (next() % 4000) as i32 - 2000;
                let shift: Vec<i32> = (0..w)
                    .map(|_| {
                        let r = next();
                        s += match r % 16 {
                            0 => (r >> 8) as i32 % 3000 - 1500,
                            1 if round % 5 == 0 => (r >> 8) as i32 % 200_000 - 100_000,
                            _ => (r >> 8) as i32 % slope - slope / 2,
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
    fn the_computed_reciprocals_are_the_table_exactly() {
        if !crate::cpu::kernels_comparable() {
            return;
        }
        for first in (1..=MAX_SPAN).step_by(8) {
            let spans: [i32; 8] = std::array::from_fn(|i| (first + i as i32).min(MAX_SPAN));
            let mut got = [0i32; 8];
            // SAFETY: the CPU has AVX2 (checked above); loads and stores of eight i32s.
            unsafe {
                let span = _mm256_loadu_si256(spans.as_ptr() as *const __m256i);
                let r = recip(span, _mm256_set1_epi32(-1));
                _mm256_storeu_si256(got.as_mut_ptr() as *mut __m256i, r);
            }
            for (span, r) in spans.iter().zip(got) {
                assert_eq!(r as u32, RECIP[*span as usize], "span {span}");
            }
        }
    }
}
