//! AVX2 kernels of the depth-to-shift step: a row pair's depth interpolated between two
//! depth-map rows as eye shifts, and the depth row resampled to a shift per pixel.

use std::arch::x86_64::*;

use crate::stereo::fixed::{FRAC, ONE, ROUND_MAGIC};
use crate::stereo::resample::FixedAxis;
use crate::stereo::scalar::coarse_shifts_scalar;

/// [`crate::stereo::warp::coarse_shifts`] with AVX2 when the CPU has it; `false` (nothing done) when it
/// does not.
#[inline]
pub(in crate::stereo) fn coarse_shifts(
    rows: [&[f32]; 2],
    fy: f32,
    k_c: (f32, f32),
    out: &mut [i32],
) -> bool {
    if !crate::cpu::avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above (`cpu::avx2`).
    unsafe { coarse_shifts_avx2(rows, fy, k_c, out) };
    true
}

/// Eight shifts at a time, with the scalar code's operations in its order (no fused
/// multiply-add, which would round differently).
/// Safe code compiled for AVX2: called (in `unsafe`) only after [`crate::cpu::avx2`].
#[target_feature(enable = "avx2")]
fn coarse_shifts_avx2([r0, r1]: [&[f32]; 2], fy: f32, (k, c): (f32, f32), out: &mut [i32]) {
    let n = out.len().min(r0.len()).min(r1.len());
    let (vfy, vk, vc) = (_mm256_set1_ps(fy), _mm256_set1_ps(k), _mm256_set1_ps(c));
    let magic = _mm256_set1_ps(ROUND_MAGIC);
    let magic_bits = _mm256_set1_epi32(ROUND_MAGIC.to_bits() as i32);
    let mut x = 0;
    while x + 8 <= n {
        // SAFETY: x + 8 <= n, which no slice is shorter than.
        unsafe {
            let a = _mm256_loadu_ps(r0.as_ptr().add(x));
            let b = _mm256_loadu_ps(r1.as_ptr().add(x));
            let z = _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(b, a), vfy));
            let v = _mm256_add_ps(_mm256_mul_ps(vk, _mm256_sub_ps(z, vc)), magic);
            let shift = _mm256_sub_epi32(_mm256_castps_si256(v), magic_bits);
            _mm256_storeu_si256(out.as_mut_ptr().add(x) as *mut __m256i, shift);
        }
        x += 8;
    }
    coarse_shifts_scalar([&r0[x..n], &r1[x..n]], fy, (k, c), &mut out[x..n]);
}

/// [`crate::stereo::resample::resample_row`] with AVX2 when the CPU has it; `false` (nothing done) when it
/// does not.
#[inline]
pub(in crate::stereo) fn resample_row(src: &[i32], xs: &FixedAxis, out: &mut [i32]) -> bool {
    if !crate::cpu::avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above (`cpu::avx2`).
    unsafe { resample_row_avx2(src, xs, out) };
    true
}

/// Safe code compiled for AVX2: called (in `unsafe`) only after [`crate::cpu::avx2`].
#[target_feature(enable = "avx2")]
fn resample_row_avx2(src: &[i32], xs: &FixedAxis, out: &mut [i32]) {
    let n = out.len();
    assert!(xs.a.len() >= n && xs.b.len() >= n && xs.f.len() >= n);
    // Every index must be inside `src` for the gathers (all are in 0..=max_index).
    assert!(xs.max_index < src.len());
    let half = _mm256_set1_epi32(ONE / 2);
    let mut x = 0;
    while x + 8 <= n {
        // SAFETY: x + 8 <= n <= each array's length; the gathered indices are inside `src`
        // (checked above), and so is the window (checked before its load).
        unsafe {
            let ia = _mm256_loadu_si256(xs.a.as_ptr().add(x) as *const __m256i);
            let ib = _mm256_loadu_si256(xs.b.as_ptr().add(x) as *const __m256i);
            let f = _mm256_loadu_si256(xs.f.as_ptr().add(x) as *const __m256i);
            // Upsampling, eight outputs read within eight neighbouring inputs: one load and
            // two permutations instead of two gathers.
            let first = *xs.a.get_unchecked(x);
            let (da, db) = (
                _mm256_sub_epi32(ia, _mm256_set1_epi32(first)),
                _mm256_sub_epi32(ib, _mm256_set1_epi32(first)),
            );
            let outside = _mm256_or_si256(
                _mm256_cmpgt_epi32(_mm256_setzero_si256(), da),
                _mm256_cmpgt_epi32(db, _mm256_set1_epi32(7)),
            );
            let (a, b) = if _mm256_movemask_epi8(outside) == 0 && first as usize + 8 <= src.len() {
                let window = _mm256_loadu_si256(src.as_ptr().add(first as usize) as *const __m256i);
                (
                    _mm256_permutevar8x32_epi32(window, da),
                    _mm256_permutevar8x32_epi32(window, db),
                )
            } else {
                (
                    _mm256_i32gather_epi32::<4>(src.as_ptr(), ia),
                    _mm256_i32gather_epi32::<4>(src.as_ptr(), ib),
                )
            };
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

#[cfg(test)]
mod tests {
    use super::super::rng;
    use super::coarse_shifts;
    use crate::stereo::resample::{resample_row, FixedAxis, ResampleMap};
    use crate::stereo::scalar::coarse_shifts_scalar;

    #[test]
    fn avx2_depth_to_shift_matches_the_scalar_code_exactly() {
        if !crate::cpu::kernels_comparable() {
            return;
        }
        let mut next = rng(0x5eed_1234_abcd_0042);
        let mut unit = || (next() >> 40) as f32 / (1u64 << 24) as f32;
        for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 924] {
            for round in 0..10 {
                // Normalised depth is in 0..1; a little beyond tests the formula all the same.
                let r0: Vec<f32> = (0..n).map(|_| unit() * 1.5 - 0.25).collect();
                let r1: Vec<f32> = (0..n).map(|_| unit() * 1.5 - 0.25).collect();
                let (fy, c) = (unit(), unit());
                // Up to 10% of an 8K width a side, in 1/256 px.
                let k = unit() * 0.1 * 7680.0 * 256.0 * if round % 2 == 0 { 1.0 } else { 0.01 };
                let mut fast = vec![7; n];
                if !coarse_shifts([&r0, &r1], fy, (k, c), &mut fast) {
                    return;
                }
                let mut slow = vec![7; n];
                coarse_shifts_scalar([&r0, &r1], fy, (k, c), &mut slow);
                assert_eq!(fast, slow, "{n} values, round {round}");
            }
        }
    }

    #[test]
    fn avx2_resampling_matches_the_scalar_code_exactly() {
        if !crate::cpu::kernels_comparable() {
            return;
        }
        let mut next = rng(0x0bad_cafe_f00d_d00d);
        for (src_w, dst_w) in [
            (1usize, 1usize),
            (1, 9),
            (7, 3),
            (924, 1280),
            (518, 1920),
            (9, 8),
            (1920, 700),
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
}
