//! AVX2 kernels of the sampling: each output pixel linearly interpolated at its key's
//! position, from 16-byte windows (8-bit samples) or gathers (16-bit samples, depth edges).

use std::arch::x86_64::*;

use crate::stereo::fixed::{FRAC, HOLE, ONE};
use crate::stereo::scalar::{lerp, taps};

/// [`crate::stereo::scalar::lerp2_scalar`] with AVX2 when the CPU has it (std caches the check); `None`
/// when it does not.
#[inline]
pub(in crate::stereo) fn lerp2(
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

/// [`crate::stereo::scalar::lerp2_scalar`] for 16-bit samples (10-bit frames) with AVX2 when the CPU has it;
/// `None` when it does not.
#[inline]
pub(in crate::stereo) fn lerp2_u16(
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
/// [`crate::stereo::scalar::lerp`] does.
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

/// Sixteen pixels of [`crate::stereo::scalar::lerp`], exactly: each 16-bit lane of `ab` holds the two taps
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

/// Eight pixels of [`crate::stereo::scalar::lerp`]: each lane of `g` holds the two taps (low byte, next
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
    use super::super::rng;
    use super::{lerp2, lerp2_u16};
    use crate::stereo::fixed::{HOLE, ONE};
    use crate::stereo::scalar::lerp2_scalar;

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
