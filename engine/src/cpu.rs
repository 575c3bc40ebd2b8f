//! Which code the engine's kernels run, decided once per process: the AVX2 kernels where the
//! CPU has AVX2 (checked at run time; the binary stays baseline x86-64), the portable code
//! elsewhere, or everywhere when `PARALLAX_SIMD=portable` is set, so that the tests run the
//! portable code on any machine (`make test` runs the engine's tests both ways).

use std::sync::OnceLock;

/// The environment variable that forces the portable code (`PARALLAX_SIMD=portable`).
pub const SIMD_ENV: &str = "PARALLAX_SIMD";

/// Whether the portable code is forced.
pub fn portable_forced() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| std::env::var(SIMD_ENV).is_ok_and(|v| v == "portable"))
}

/// Whether the AVX2 kernels run.
pub fn avx2() -> bool {
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let has = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let has = false;
        has && !portable_forced()
    })
}

/// For the tests that hold the AVX2 kernels to the portable code: `true` when they can run.
/// When the portable code is forced they are skipped, saying so; on a CPU without AVX2 they
/// fail, saying why (a comparison that silently passes would prove nothing).
#[cfg(test)]
pub(crate) fn kernels_comparable() -> bool {
    if portable_forced() {
        eprintln!("skipped: {SIMD_ENV}=portable, the AVX2 kernels are not run");
        return false;
    }
    assert!(
        avx2(),
        "this CPU has no AVX2, so the AVX2 kernels cannot be compared with the portable code; \
         run with {SIMD_ENV}=portable to test the portable code alone"
    );
    true
}
