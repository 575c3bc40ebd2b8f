//! AVX2 versions of the warp's inner loops, chosen at run time on CPUs that have AVX2 (the
//! binary stays baseline x86-64; elsewhere the scalar code runs). They compute exactly what
//! the scalar code does, eight pixels at a time (the tests compare the two bit for bit):
//! - `shifts`: a row pair's depth, interpolated between two depth-map rows, as shifts (the
//!   scalar code's float operations in its order, so the same roundings); the depth row's
//!   resampling to per-pixel shifts: one load and two permutations per eight pixels while
//!   upsampling, two gathers otherwise;
//! - `splat`: the splat: every source pixel's candidate targets and keys side by side (the
//!   reciprocal of each span divided out rather than gathered from the table); where eight
//!   neighbours land on eight neighbouring targets (a smooth surface) they are merged into
//!   the z-buffer with two vector maxima, elsewhere one by one;
//! - `chroma`: the chroma keys from the luma keys: every case of the scalar code as masks;
//! - `sample`: the sampling: both taps of eight pixels from a 16-byte window with one byte shuffle per
//!   row, and the interpolation of both rows in 16-bit lanes; a gather where the taps spread
//!   wider (at depth edges).
//!
//! Gathers are slow on the CPUs we run on (Zen 3: most of the sampling's time went to them),
//! hence the windows.
//!
//! With `preprocess/simd.rs` and `feed.rs` (vmsplice), the only `unsafe` in the workspace:
//! here and in the modules below (the `allow` here covers them), intrinsics behind the feature check, loads and gathers whose indices are bounded
//! first (each has its SAFETY note).
//!
//! The kernels are safe functions compiled for AVX2 (`#[target_feature]`); `unsafe` appears
//! only where they are called (after the one check in `cpu`) and at pointer loads, stores and
//! gathers.

#![allow(unsafe_code)]

use super::fixed::HOLE;

mod chroma;
mod sample;
mod shifts;
mod splat;

pub(super) use chroma::chroma_keys;
pub(super) use sample::{lerp2, lerp2_u16};
pub(super) use shifts::{coarse_shifts, resample_row};
pub(super) use splat::splat_eye;

// The kernels clear and mask keys with zeros.
const _: () = assert!(HOLE == 0);

/// A deterministic xorshift for the kernels' tests.
#[cfg(test)]
fn rng(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
