//! The pool for per-frame work (the warp, the model input's preparation), scheduled below
//! the rest of the process.

use std::sync::OnceLock;

/// How much lower than the process the frame pool's threads are scheduled (nice steps).
const FRAME_POOL_NICENESS: i32 = 10;

/// Runs `f` on the pool for per-frame work (the warp, the model input's preparation): one
/// thread per core, scheduled below the rest of the process and below the ffmpeg processes
/// (nice +10). On CPU hosts the encoder is the bottleneck: at equal priority the frame work
/// preempts it and the whole pipeline slows down; below it, the frame work fills the time
/// the encoder leaves idle and yields whenever the encoder can run. Code already running on
/// a rayon pool (a caller's own) stays there.
pub fn on_frame_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("frame-{i}"))
            .start_handler(|_| lower_thread_priority())
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no frame pool; using rayon's global pool"))
            .ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// Lowers the calling thread's scheduling priority by [`FRAME_POOL_NICENESS`] (Linux: nice
/// values are per thread). Failing only costs speed, so it is logged and ignored.
fn lower_thread_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    let tid = rustix::thread::gettid();
    let result = getpriority_process(Some(tid))
        .and_then(|now| setpriority_process(Some(tid), (now + FRAME_POOL_NICENESS).min(19)));
    if let Err(e) = result {
        tracing::debug!(error = %e, "could not lower the frame pool's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_pool_runs_below_the_callers_priority() {
        use rustix::process::getpriority_process;
        let nice = || getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let caller = nice();
        let (pooled, index) = on_frame_pool(|| (nice(), rayon::current_thread_index()));
        assert!(index.is_some(), "ran on a pool thread");
        assert_eq!(pooled, (caller + FRAME_POOL_NICENESS).min(19));
        // Work already on a pool stays there (the bench's one-thread measurement relies on it).
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let inner = one.install(|| on_frame_pool(nice));
        assert_eq!(inner, caller);
    }
}
