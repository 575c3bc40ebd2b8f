//! AVX2 kernel of the chroma keys: each chroma pixel's key from its two luma keys, every
//! case of the scalar code as masks.

use std::arch::x86_64::*;

use crate::stereo::fixed::{FRAC, MAX_SPAN, ONE};
use crate::stereo::scalar::chroma_keys_scalar;

/// [`crate::stereo::warp::chroma_keys_from_luma`] with AVX2 when the CPU has it; `false` (nothing done)
/// when it does not.
#[inline]
pub(in crate::stereo) fn chroma_keys(luma: &[u64], chroma: &mut [u64]) -> bool {
    if !crate::cpu::avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above (`cpu::avx2`).
    unsafe { chroma_keys_avx2(luma, chroma) };
    true
}

/// Four chroma keys at a time from eight luma keys, every case of the scalar code as masks.
/// Safe code compiled for AVX2: called (in `unsafe`) only after [`crate::cpu::avx2`].
#[target_feature(enable = "avx2")]
fn chroma_keys_avx2(luma: &[u64], chroma: &mut [u64]) {
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

#[cfg(test)]
mod tests {
    use super::super::rng;
    use super::chroma_keys;
    use crate::stereo::fixed::HOLE;
    use crate::stereo::scalar::chroma_keys_scalar;

    #[test]
    fn avx2_chroma_keys_match_the_scalar_code_exactly() {
        if !crate::cpu::kernels_comparable() {
            return;
        }
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
}
