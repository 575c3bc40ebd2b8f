//! The ETA basis: seconds of conversion per MB of source, averaged over recent completed jobs
//! (conversion time = completed_at - uploaded_at). Computed lazily on first use and cached for
//! a TTL, so a busy dashboard asks the job store once per TTL, not once per request.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parallax_core::jobs::JobStore;
use parallax_core::model::JobListItem;
use tokio::sync::Mutex;

/// Bytes in the "MB" of seconds per MB.
pub const MB: f64 = 1_000_000.0;

/// The cached average.
#[derive(Debug)]
pub struct EtaCache {
    ttl: Duration,
    sample: usize,
    cached: Mutex<Option<(Instant, Option<f64>)>>,
}

impl EtaCache {
    /// A cache that keeps its figure for `ttl`, averaging over the `sample` newest jobs.
    pub fn new(ttl: Duration, sample: usize) -> Self {
        Self {
            ttl,
            sample: sample.max(1),
            cached: Mutex::new(None),
        }
    }

    /// Seconds per MB, or `None` when no completed job has both times and a size yet.
    /// A store error is logged and gives `None` (an ETA is never worth failing a page for).
    pub async fn seconds_per_mb(&self, jobs: &dyn JobStore) -> Option<f64> {
        let mut slot = self.cached.lock().await;
        if let Some((at, v)) = *slot {
            if at.elapsed() < self.ttl {
                return v;
            }
        }
        let v = match jobs.list_completed(self.sample, None).await {
            Ok(page) => average_seconds_per_mb(&page.items),
            Err(e) => {
                tracing::warn!(error = %e, "listing completed jobs for the ETA failed");
                None
            }
        };
        *slot = Some((Instant::now(), v));
        v
    }

    /// Forgets the cached figure.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

/// Total conversion seconds over total MB of the jobs that have both times and a size;
/// previews (a few samples of their upload) say nothing of a whole conversion and are left out.
pub fn average_seconds_per_mb(items: &[JobListItem]) -> Option<f64> {
    let (mut secs, mut mb) = (0.0, 0.0);
    for j in items.iter().filter(|j| !j.preview) {
        if let Some(s) = conversion_seconds(j.uploaded_at, j.completed_at) {
            if let Some(size) = j.source_file_size_bytes.filter(|&b| b > 0) {
                secs += s;
                mb += size as f64 / MB;
            }
        }
    }
    (mb > 0.0).then(|| secs / mb)
}

/// Seconds from upload to completion, when both are known and in order.
pub fn conversion_seconds(
    uploaded_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
) -> Option<f64> {
    let s = (completed_at? - uploaded_at?).num_milliseconds() as f64 / 1000.0;
    (s >= 0.0).then_some(s)
}

/// Seconds left for a job of `size_bytes` uploaded at `uploaded_at`, at `sec_per_mb`.
/// At least 0: a job slower than the average shows "any moment now", not a negative time.
pub fn remaining_seconds(
    sec_per_mb: f64,
    size_bytes: u64,
    uploaded_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> f64 {
    let total = sec_per_mb * size_bytes as f64 / MB;
    let elapsed = (now - uploaded_at).num_milliseconds() as f64 / 1000.0;
    (total - elapsed).max(0.0)
}

/// "1 h 05 min", "3 min 20 s", "45 s", "2.5 s".
pub fn human_duration(secs: f64) -> String {
    if secs < 9.95 {
        return format!("{:.1} s", secs.max(0.0));
    }
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parallax_core::model::{JobStatus, StereoMode};

    fn item(size: Option<u64>, secs: Option<i64>) -> JobListItem {
        let up = Utc::now();
        JobListItem {
            job_id: "j".into(),
            title: "t".into(),
            mode: StereoMode::FullSbs,
            status: JobStatus::Completed,
            total_segments: None,
            created_at: up,
            uploaded_at: Some(up),
            completed_at: secs.map(|s| up + chrono::Duration::seconds(s)),
            source_file_size_bytes: size,
            error: None,
            preview: false,
        }
    }

    #[test]
    fn previews_are_left_out_of_the_average() {
        let preview = JobListItem {
            preview: true,
            ..item(Some(100_000_000), Some(10))
        };
        let items = [item(Some(10_000_000), Some(100)), preview];
        assert_eq!(average_seconds_per_mb(&items), Some(10.0));
    }

    #[test]
    fn average_weights_by_size_and_skips_incomplete_jobs() {
        let items = [
            item(Some(10_000_000), Some(100)),
            item(Some(30_000_000), Some(100)),
            item(None, Some(1000)),
            item(Some(5_000_000), None),
        ];
        // 200 s over 40 MB.
        assert_eq!(average_seconds_per_mb(&items), Some(5.0));
        assert_eq!(average_seconds_per_mb(&items[2..]), None);
    }

    /// A 0.4 s clip that took 9.4 s (940.9 sec/MB: start-up costs dominate a tiny file)
    /// next to ordinary jobs: the basis is total seconds over total MB, so the clip adds its
    /// 9.4 s and 0.01 MB and barely moves it; a mean of per-job rates would be ~50x off.
    #[test]
    fn a_tiny_slow_clip_does_not_skew_the_average() {
        let clip = item(Some(10_000), None);
        let clip = JobListItem {
            completed_at: clip
                .uploaded_at
                .map(|u| u + chrono::Duration::milliseconds(9_409)),
            ..clip
        };
        let rate_of_clip = average_seconds_per_mb(std::slice::from_ref(&clip)).unwrap();
        assert!((rate_of_clip - 940.9).abs() < 1e-6, "{rate_of_clip}");
        let items = [
            item(Some(100_000_000), Some(200)),
            item(Some(50_000_000), Some(100)),
            clip,
        ];
        let avg = average_seconds_per_mb(&items).unwrap();
        // (200 + 100 + 9.409) s over 150.01 MB.
        assert!((avg - 309.409 / 150.01).abs() < 1e-9, "{avg}");
        assert!(avg < 2.1, "the clip skewed the basis to {avg} sec/MB");
        let mean_of_rates = (2.0 + 2.0 + 940.9) / 3.0;
        assert!(avg * 100.0 < mean_of_rates);
    }

    #[test]
    fn remaining_never_negative() {
        let now = Utc::now();
        let up = now - chrono::Duration::seconds(30);
        assert_eq!(remaining_seconds(2.0, 20_000_000, up, now), 10.0);
        assert_eq!(remaining_seconds(2.0, 1_000_000, up, now), 0.0);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(45.2), "45 s");
        assert_eq!(human_duration(0.44), "0.4 s");
        assert_eq!(human_duration(200.0), "3 min 20 s");
        assert_eq!(human_duration(3900.0), "1 h 05 min");
    }
}
