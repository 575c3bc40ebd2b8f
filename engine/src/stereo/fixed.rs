//! The warp's fixed-point arithmetic: positions and shifts in 1/256 px, the rounding, the
//! z-buffer keys and the splat's reciprocal table. A leaf: the warp, the resampling and the
//! AVX2 kernels all build on it, and it imports none of them.

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
