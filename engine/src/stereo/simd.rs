//! AVX2 versions of the warp's inner loops, chosen at run time on CPUs that have AVX2 (the
//! binary stays baseline x86-64; elsewhere the scalar code runs). They compute exactly what
//! the scalar code does, eight pixels at a time (the tests compare the two bit for bit):
//! - a row pair's depth, interpolated between two depth-map rows, as shifts (the scalar
//!   code's float operations in its order, so the same roundings);
//! - the depth row's resampling to per-pixel shifts: one load and two permutations per
//!   eight pixels while upsampling, two gathers otherwise;
//! - the splat: every source pixel's candidate targets and keys side by side (the
//!   reciprocal of each span divided out rather than gathered from the table); where eight
//!   neighbours land on eight neighbouring targets (a smooth surface) they are merged into
//!   the z-buffer with two vector maxima, elsewhere one by one;
//! - the chroma keys from the luma keys: every case of the scalar code as masks;
//! - the sampling: both taps of eight pixels from a 16-byte window with one byte shuffle per
//!   row, and the interpolation of both rows in 16-bit lanes; a gather where the taps spread
//!   wider (at depth edges).
//!
//! Gathers are slow on the CPUs we run on (Zen 3: most of the sampling's time went to them),
//! hence the windows.
//!
//! With `preprocess/simd.rs` and `feed.rs` (vmsplice), the only `unsafe` in the workspace:
//! here, intrinsics behind the feature check, loads and gathers whose indices are bounded
//! first (each has its SAFETY note).
//!
//! The kernels are safe functions compiled for AVX2 (`#[target_feature]`); `unsafe` appears
//! only where they are called (after the one check in `cpu`) and at pointer loads, stores and
//! gathers.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{chroma_keys_scalar, coarse_shifts_scalar, FRAC, HOLE, MAX_SPAN, ONE, ROUND_MAGIC};
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
    if !crate::cpu::avx2() {
        return None;
    }
    // SAFETY: the CPU has AVX2, checked just above (`cpu::avx2`).
    Some(unsafe { lerp2_avx2(s0, s1, keys, d0, d1) })
}

/// [`super::coarse_shifts`] with AVX2 when the CPU has it; `false` (nothing done) when it
/// does not.
#[inline]
pub(super) fn coarse_shifts(rows: [&[f32]; 2], fy: f32, k_c: (f32, f32), out: &mut [i32]) -> bool {
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

/// [`super::resample_row`] with AVX2 when the CPU has it; `false` (nothing done) when it
/// does not.
#[inline]
pub(super) fn resample_row(src: &[i32], xs: &FixedAxis, out: &mut [i32]) -> bool {
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

/// [`super::chroma_keys_from_luma`] with AVX2 when the CPU has it; `false` (nothing done)
/// when it does not.
#[inline]
pub(super) fn chroma_keys(luma: &[u64], chroma: &mut [u64]) -> bool {
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

/// [`super::splat_eye`] with AVX2 when the CPU has it; `false` (nothing done) when it does
/// not.
#[inline]
pub(super) fn splat_eye<const EYE: i32>(shift: &[i32], keys: &mut [u64]) -> bool {
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

/// Fills `d0` and `d1` from `s0` and `s1` at the keys' positions; returns whether any key is
/// a [`HOLE`] (the caller fills those).
/// Safe code compiled for AVX2: called (in `unsafe`) only after [`crate::cpu::avx2`].
#[target_feature(enable = "avx2")]
fn lerp2_avx2(s0: &[u8], s1: &[u8], keys: &[u64], d0: &mut [u8], d1: &mut [u8]) -> bool {
    let w = s0.len();
    assert!(s1.len() == w && d0.len() == w && d1.len() == w && keys.len() == w);
    let mut holes = _mm256_setzero_si256();
    let zero = _mm256_setzero_si256();
    let last = _mm256_set1_epi32(w as i32 - 1);
    // A gather reads 4 bytes from a tap's first pixel: only where that stays in the row.
    let gather_limit = _mm256_set1_epi32(w as i32 - 4);
    let frac_mask = _mm256_set1_epi32(ONE - 1);
    // The last offset from a window's first tap whose second tap is still in the window.
    let window_last = _mm256_set1_epi32(14);
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
        // Eight neighbouring outputs mostly read within 16 source pixels (away from depth
        // edges): then one load and one byte shuffle per row give every pixel's two taps,
        // as the gather below would, at a fraction of its cost.
        let base = _mm256_cvtsi256_si32(i);
        let d = _mm256_sub_epi32(i, _mm256_set1_epi32(base));
        let outside = _mm256_or_si256(
            _mm256_cmpgt_epi32(d, window_last),
            _mm256_cmpgt_epi32(zero, d),
        );
        if _mm256_movemask_epi8(outside) == 0 && base as usize + 16 <= w {
            // Each lane's offset as a byte, twice over: d0..d7 d0..d7.
            let d8 = _mm256_packus_epi16(_mm256_packus_epi32(d, d), zero);
            let d8 = _mm_unpacklo_epi32(
                _mm256_castsi256_si128(d8),
                _mm256_extracti128_si256::<1>(d8),
            );
            // The byte pairs (i, i + 1) of each lane, for both rows' windows at once.
            let pairs = _mm_unpacklo_epi8(d8, _mm_add_epi8(d8, _mm_set1_epi8(1)));
            // SAFETY: base + 16 <= w = each row's length: both 16-byte loads are inside.
            let windows = unsafe {
                _mm256_loadu2_m128i(
                    s1.as_ptr().add(base as usize) as *const __m128i,
                    s0.as_ptr().add(base as usize) as *const __m128i,
                )
            };
            let ab = _mm256_shuffle_epi8(windows, _mm256_broadcastsi128_si256(pairs));
            // Sixteen lerps in 16-bit lanes (row 0's eight, then row 1's): the weights
            // f0..f7 in both halves.
            let f16 = _mm256_permute4x64_epi64::<0b10_00_10_00>(_mm256_packus_epi32(f, f));
            let v = lerp16(ab, f16);
            let lo = _mm_cvtsi128_si64(_mm256_castsi256_si128(v)) as u64;
            let hi = _mm_cvtsi128_si64(_mm256_extracti128_si256::<1>(v)) as u64;
            d0[x..x + 8].copy_from_slice(&lo.to_le_bytes());
            d1[x..x + 8].copy_from_slice(&hi.to_le_bytes());
            x += 8;
            continue;
        }
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
            d[x..x + 8].copy_from_slice(&lerp8(g, f));
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

/// [`super::lerp2_scalar`] for 16-bit samples (10-bit frames) with AVX2 when the CPU has it;
/// `None` when it does not.
#[inline]
pub(super) fn lerp2_u16(
    s0: &[u16],
    s1: &[u16],
    keys: &[u64],
    d0: &mut [u16],
    d1: &mut [u16],
) -> Option<bool> {
    if !crate::cpu::avx2() {
        return None;
    }
    // SAFETY: the CPU has AVX2, checked just above (`cpu::avx2`).
    Some(unsafe { lerp2_u16_avx2(s0, s1, keys, d0, d1) })
}

/// [`lerp2_avx2`] for 16-bit samples: each output's two taps come from one 4-byte gather
/// (the tap and its right neighbour), interpolated in 32-bit lanes exactly as
/// [`super::lerp`] does.
/// Safe code compiled for AVX2: called (in `unsafe`) only after [`crate::cpu::avx2`].
#[target_feature(enable = "avx2")]
fn lerp2_u16_avx2(s0: &[u16], s1: &[u16], keys: &[u64], d0: &mut [u16], d1: &mut [u16]) -> bool {
    let w = s0.len();
    assert!(s1.len() == w && d0.len() == w && d1.len() == w && keys.len() == w);
    let mut holes = _mm256_setzero_si256();
    let zero = _mm256_setzero_si256();
    let last = _mm256_set1_epi32(w as i32 - 1);
    // A gather reads a tap and its neighbour: only where both are in the row.
    let gather_limit = _mm256_set1_epi32(w as i32 - 2);
    let frac_mask = _mm256_set1_epi32(ONE - 1);
    let low16 = _mm256_set1_epi32(0xffff);
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
        let pos = _mm256_castps_si256(_mm256_shuffle_ps::<0b10_00_10_00>(
            _mm256_castsi256_ps(ka),
            _mm256_castsi256_ps(kb),
        ));
        let pos = _mm256_permute4x64_epi64::<0b11_01_10_00>(pos);
        let i = _mm256_min_epi32(_mm256_srli_epi32::<{ FRAC as i32 }>(pos), last);
        let f = _mm256_and_si256(pos, frac_mask);
        if _mm256_movemask_epi8(_mm256_cmpgt_epi32(i, gather_limit)) != 0 {
            // A tap on the row's last pixel (its neighbour is itself): one by one.
            for x in x..x + 8 {
                let (i, j, f) = taps(keys[x], w);
                d0[x] = lerp(s0[i], s0[j], f);
                d1[x] = lerp(s1[i], s1[j], f);
            }
            x += 8;
            continue;
        }
        for (s, d) in [(s0, &mut *d0), (s1, &mut *d1)] {
            // SAFETY: every index is at most w - 2, so each 4-byte read (samples i and
            // i + 1) is inside `s`.
            let g = unsafe { _mm256_i32gather_epi32::<2>(s.as_ptr() as *const i32, i) };
            let a = _mm256_and_si256(g, low16);
            let b = _mm256_srli_epi32::<16>(g);
            // (a * ONE + (b - a) * f + ONE / 2) >> FRAC, as `lerp`: never negative.
            let v = _mm256_add_epi32(
                _mm256_add_epi32(_mm256_slli_epi32::<{ FRAC as i32 }>(a), half),
                _mm256_mullo_epi32(_mm256_sub_epi32(b, a), f),
            );
            let v = _mm256_srli_epi32::<{ FRAC as i32 }>(v);
            // Eight 32-bit lanes to eight 16-bit values, in order.
            let packed = _mm256_permute4x64_epi64::<0b00_00_10_00>(_mm256_packus_epi32(v, v));
            // SAFETY: x + 8 <= w = d.len(): the 16-byte store is inside `d`.
            unsafe {
                _mm_storeu_si128(
                    d.as_mut_ptr().add(x) as *mut __m128i,
                    _mm256_castsi256_si128(packed),
                )
            };
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

/// Sixteen pixels of [`super::lerp`], exactly: each 16-bit lane of `ab` holds the two taps
/// (low byte, high byte), the same lane of `f` the weight of the second (0..256). The
/// results are packed to bytes in the low eight bytes of each 128-bit half.
///
/// `a + ((b - a) * f + 128) >> 8` is `a` plus a rounding multiply-high of `(b - a) << 7`
/// (at most 255 << 7, which fits) by `f`: `((b - a) * f * 128 + 2^14) >> 15`.
#[inline]
#[target_feature(enable = "avx2")]
fn lerp16(ab: __m256i, f: __m256i) -> __m256i {
    let a = _mm256_and_si256(ab, _mm256_set1_epi16(0xff));
    let b = _mm256_srli_epi16::<8>(ab);
    let step = _mm256_mulhrs_epi16(_mm256_slli_epi16::<7>(_mm256_sub_epi16(b, a)), f);
    let v = _mm256_add_epi16(a, step);
    _mm256_packus_epi16(v, v)
}

/// Eight pixels of [`super::lerp`]: each lane of `g` holds the two taps (low byte, next
/// byte), `f` the weight of the second.
#[inline]
#[target_feature(enable = "avx2")]
fn lerp8(g: __m256i, f: __m256i) -> [u8; 8] {
    let byte = _mm256_set1_epi32(0xff);
    let a = _mm256_and_si256(g, byte);
    let b = _mm256_and_si256(_mm256_srli_epi32::<8>(g), byte);
    // (a * ONE + (b - a) * f + ONE / 2) >> FRAC, as `lerp`: never negative.
    let v = _mm256_add_epi32(
        _mm256_add_epi32(
            _mm256_slli_epi32::<{ FRAC as i32 }>(a),
            _mm256_set1_epi32(ONE / 2),
        ),
        _mm256_mullo_epi32(_mm256_sub_epi32(b, a), f),
    );
    let v = _mm256_srli_epi32::<{ FRAC as i32 }>(v);
    let v16 = _mm256_packus_epi32(v, v);
    let v8 = _mm256_packus_epi16(v16, v16);
    let lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(v8)) as u32;
    let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(v8)) as u32;
    (u64::from(hi) << 32 | u64::from(lo)).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::{
        chroma_keys_scalar, coarse_shifts_scalar, lerp2_scalar, resample_row, splat_tail,
    };
    use super::super::{FixedAxis, ResampleMap, HOLE, MAX_SPAN, ONE, RECIP};
    use super::{chroma_keys, coarse_shifts, lerp2, lerp2_u16, recip, splat_eye};
    use std::arch::x86_64::*;

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

    /// Keys for a row of `w` pixels as the sampling sees them: positions near their pixel (as
    /// a splat gives), anywhere, or at the row's end; holes every third round.
    fn sampling_keys(next: &mut impl FnMut() -> u64, w: usize, round: usize) -> Vec<u64> {
        let max = ((w - 1) as u64) << 8;
        (0..w)
            .map(|x| {
                let r = next();
                if round.is_multiple_of(3) && r.is_multiple_of(11) {
                    return HOLE;
                }
                let pos = match r % 4 {
                    0 => max,
                    1 => (r >> 8) % (max + 1),
                    _ => ((x as u64) << 8).saturating_add((r >> 8) % 700).min(max),
                };
                (r >> 40 | 1) << 32 | pos
            })
            .collect()
    }

    #[test]
    fn avx2_sampling_matches_the_scalar_code_exactly() {
        if !crate::cpu::kernels_comparable() {
            return;
        }
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        for w in [1usize, 3, 4, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1280] {
            for round in 0..20 {
                let s0: Vec<u8> = (0..w).map(|_| next() as u8).collect();
                let s1: Vec<u8> = (0..w).map(|_| next() as u8).collect();
                let keys = sampling_keys(&mut next, w, round);
                let (mut a0, mut a1) = (vec![0u8; w], vec![0u8; w]);
                let (mut b0, mut b1) = (vec![0u8; w], vec![0u8; w]);
                let Some(holes) = lerp2(&s0, &s1, &keys, &mut a0, &mut a1) else {
                    unreachable!("AVX2 was checked at the start");
                };
                let want = lerp2_scalar(&s0, &s1, &keys, &mut b0, &mut b1);
                assert_eq!((a0, a1, holes), (b0, b1, want), "width {w}, round {round}");
            }
        }
        // The fixed point: taps one pixel apart.
        assert_eq!(ONE, 256);
    }

    #[test]
    fn avx2_sampling_of_16_bit_samples_matches_the_scalar_code_exactly() {
        if !crate::cpu::kernels_comparable() {
            return;
        }
        let mut next = rng(0x51_7cc1_b727_220a);
        for w in [1usize, 2, 3, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1280] {
            for round in 0..20 {
                let s0: Vec<u16> = (0..w).map(|_| (next() % 1024) as u16).collect();
                let s1: Vec<u16> = (0..w).map(|_| (next() % 1024) as u16).collect();
                let keys = sampling_keys(&mut next, w, round);
                let (mut a0, mut a1) = (vec![0u16; w], vec![0u16; w]);
                let (mut b0, mut b1) = (vec![0u16; w], vec![0u16; w]);
                let Some(holes) = lerp2_u16(&s0, &s1, &keys, &mut a0, &mut a1) else {
                    unreachable!("AVX2 was checked at the start");
                };
                let want = lerp2_scalar(&s0, &s1, &keys, &mut b0, &mut b1);
                assert_eq!((a0, a1, holes), (b0, b1, want), "width {w}, round {round}");
            }
        }
    }
}
