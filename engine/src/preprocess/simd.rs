//! AVX2 versions of the row work, chosen at run time: [`super::widen`] compiled for eight
//! lanes, and [`super::sample_convert`] eight output pixels at a time, the taps read from
//! windows (or gathered) and the conversion done in registers. Both use the scalar code's
//! operations in the scalar code's order (no fused multiply-add), so the results are the
//! same bit for bit (a test compares them).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{RowScratch, RowSource, Taps, INV_STD, MEAN};

/// [`super::sample_convert`] with AVX2 when the CPU has it; `false` (nothing done) when it
/// does not.
#[inline]
pub(super) fn sample_convert(taps: &Taps, s: &RowScratch, out: [&mut [f32]; 3]) -> bool {
    if !crate::cpu::avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above (`cpu::avx2`).
    unsafe { sample_convert_avx2(taps, s, out) };
    true
}

/// [`super::widen`] compiled for AVX2 (eight lanes) when the CPU has it; `false` (nothing
/// done) when it does not.
#[inline]
pub(super) fn widen(src: &RowSource<'_>, s: &mut RowScratch) -> bool {
    if !crate::cpu::avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked just above (`cpu::avx2`).
    unsafe { widen_avx2(src, s) };
    true
}

/// Safe code compiled for AVX2: called (in `unsafe`) only after [`crate::cpu::avx2`].
#[target_feature(enable = "avx2")]
fn widen_avx2(src: &RowSource<'_>, s: &mut RowScratch) {
    super::widen(src, s);
}

/// Safe code compiled for AVX2: called (in `unsafe`) only after [`crate::cpu::avx2`].
#[target_feature(enable = "avx2")]
fn sample_convert_avx2(taps: &Taps, s: &RowScratch, [r, g, b]: [&mut [f32]; 3]) {
    let n = r.len();
    assert!(g.len() == n && b.len() == n);
    assert!(taps.x0.len() >= n && taps.x1.len() >= n && taps.fx.len() >= n);
    assert!(taps.cx.len() >= n);
    // Every tap is inside the rows gathered from.
    assert!(s.luma.len() >= taps.luma_len);
    assert!(s.u.len() >= taps.chroma_len && s.v.len() >= taps.chroma_len);
    let ps = _mm256_set1_ps;
    let (zero, one) = (_mm256_setzero_ps(), ps(1.0));
    let clamp = |v: __m256| _mm256_min_ps(_mm256_max_ps(v, zero), one);
    let mut x = 0;
    while x + 8 <= n {
        // SAFETY: x + 8 <= n <= each table's length; the table's taps are below luma_len
        // and chroma_len (asserted in `Preprocessor::new`), inside the gathered rows (checked
        // above); each window is checked to be inside its row before its loads.
        let (y, u, v) = unsafe {
            let i0 = _mm256_loadu_si256(taps.x0.as_ptr().add(x) as *const __m256i);
            let i1 = _mm256_loadu_si256(taps.x1.as_ptr().add(x) as *const __m256i);
            let fx = _mm256_loadu_ps(taps.fx.as_ptr().add(x));
            let ic = _mm256_loadu_si256(taps.cx.as_ptr().add(x) as *const __m256i);
            // Eight neighbouring outputs mostly read within 16 neighbouring luma samples and
            // 8 chroma ones: loads and permutations then, gathers otherwise.
            let first = *taps.x0.get_unchecked(x);
            let (d0, d1) = (
                _mm256_sub_epi32(i0, _mm256_set1_epi32(first)),
                _mm256_sub_epi32(i1, _mm256_set1_epi32(first)),
            );
            let (a, c) = if within(d0, d1, 15) && first as usize + 16 <= s.luma.len() {
                let p = s.luma.as_ptr().add(first as usize);
                let (lo, hi) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)));
                (pick16(lo, hi, d0), pick16(lo, hi, d1))
            } else {
                (
                    _mm256_i32gather_ps::<4>(s.luma.as_ptr(), i0),
                    _mm256_i32gather_ps::<4>(s.luma.as_ptr(), i1),
                )
            };
            let cfirst = *taps.cx.get_unchecked(x);
            let dc = _mm256_sub_epi32(ic, _mm256_set1_epi32(cfirst));
            let (u, v) = if within(dc, dc, 7) && cfirst as usize + 8 <= s.u.len().min(s.v.len()) {
                (
                    _mm256_permutevar8x32_ps(
                        _mm256_loadu_ps(s.u.as_ptr().add(cfirst as usize)),
                        dc,
                    ),
                    _mm256_permutevar8x32_ps(
                        _mm256_loadu_ps(s.v.as_ptr().add(cfirst as usize)),
                        dc,
                    ),
                )
            } else {
                (
                    _mm256_i32gather_ps::<4>(s.u.as_ptr(), ic),
                    _mm256_i32gather_ps::<4>(s.v.as_ptr(), ic),
                )
            };
            (
                _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(c, a), fx)),
                u,
                v,
            )
        };
        // super::to_input, lane by lane.
        let k = &taps.conv;
        let c = _mm256_mul_ps(_mm256_sub_ps(y, ps(16.0)), ps(k.y_gain));
        let d = _mm256_mul_ps(_mm256_sub_ps(u, ps(128.0)), ps(k.c_gain));
        let e = _mm256_mul_ps(_mm256_sub_ps(v, ps(128.0)), ps(k.c_gain));
        let rr = clamp(_mm256_add_ps(c, _mm256_mul_ps(ps(k.r_from_v), e)));
        let gg = clamp(_mm256_sub_ps(
            _mm256_sub_ps(c, _mm256_mul_ps(ps(k.g_from_u), d)),
            _mm256_mul_ps(ps(k.g_from_v), e),
        ));
        let bb = clamp(_mm256_add_ps(c, _mm256_mul_ps(ps(k.b_from_u), d)));
        let norm =
            |v: __m256, i: usize| _mm256_mul_ps(_mm256_sub_ps(v, ps(MEAN[i])), ps(INV_STD[i]));
        // SAFETY: x + 8 <= n = each output row's length.
        unsafe {
            _mm256_storeu_ps(r.as_mut_ptr().add(x), norm(rr, 0));
            _mm256_storeu_ps(g.as_mut_ptr().add(x), norm(gg, 1));
            _mm256_storeu_ps(b.as_mut_ptr().add(x), norm(bb, 2));
        }
        x += 8;
    }
    for x in x..n {
        let (a, c) = (s.luma[taps.x0[x] as usize], s.luma[taps.x1[x] as usize]);
        let cx = taps.cx[x] as usize;
        [r[x], g[x], b[x]] =
            super::to_input(&taps.conv, a + (c - a) * taps.fx[x], s.u[cx], s.v[cx]);
    }
}

/// Whether every lane of `a` and `b` is in `0..=max`.
#[inline]
#[target_feature(enable = "avx2")]
fn within(a: __m256i, b: __m256i, max: i32) -> bool {
    let zero = _mm256_setzero_si256();
    let max = _mm256_set1_epi32(max);
    let outside = _mm256_or_si256(
        _mm256_or_si256(_mm256_cmpgt_epi32(zero, a), _mm256_cmpgt_epi32(zero, b)),
        _mm256_or_si256(_mm256_cmpgt_epi32(a, max), _mm256_cmpgt_epi32(b, max)),
    );
    _mm256_movemask_epi8(outside) == 0
}

/// Lane `i` of the sixteen floats `lo` then `hi`, for each `i` (0..16) in `idx`.
#[inline]
#[target_feature(enable = "avx2")]
fn pick16(lo: __m256, hi: __m256, idx: __m256i) -> __m256 {
    let upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
    _mm256_blendv_ps(
        _mm256_permutevar8x32_ps(lo, idx),
        _mm256_permutevar8x32_ps(hi, idx),
        upper,
    )
}
