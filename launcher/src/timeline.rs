//! Where a job's time went, read back from the fleet's JSON logs (`LOG_FORMAT=json`): the
//! upload, chunking, the segment conversions, the gaps between them and reassembly. The fleet
//! bench prints it, so an overhead can be pinned on a stage instead of guessed.

use std::path::Path;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

/// One log event the breakdown uses.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    at: DateTime<Utc>,
    message: String,
}

/// Seconds spent in each stage of one job (the fleet having run just that job).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stages {
    /// Job created to source stored (the upload through web-ui).
    pub upload: f64,
    /// Source stored to the segment tasks sent (probe, split, segment uploads).
    pub chunking: f64,
    /// Tasks sent to the last segment reported: the conversion phase, wall time.
    pub conversion: f64,
    /// The segments' conversions added up (more than `conversion` when they overlap).
    pub segment_seconds: f64,
    /// Per segment: receiving, downloading, probing before the engine starts, and checking,
    /// uploading and reporting after it finished, added up over the segments.
    pub segment_overhead: f64,
    /// Segments converted.
    pub segments: usize,
    /// Last segment reported to the job completed (trigger, reassembly, final upload).
    pub reassembly: f64,
}

impl Stages {
    /// Reads every `*.log` file in `dir`.
    pub fn from_log_dir(dir: &Path) -> Result<Self> {
        let mut events = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                events.extend(text.lines().filter_map(parse_line));
            }
        }
        Ok(Self::from_events(events))
    }

    fn from_events(mut events: Vec<Event>) -> Self {
        events.sort_by_key(|e| e.at);
        let first = |m: &str| events.iter().find(|e| e.message == m).map(|e| e.at);
        let last = |m: &str| events.iter().rev().find(|e| e.message == m).map(|e| e.at);
        let secs = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
            (Some(a), Some(b)) => (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6,
            _ => 0.0,
        };
        let created = first("job created");
        let stored = first("object stored");
        let chunked = first("chunking done");
        let last_reported = last("segment converted and reported");
        let completed = last("job completed");

        // Pair each worker-side segment span with the engine's span inside it, in order. Spans
        // from different workers interleave, so the pairing walks starts and ends as a multiset:
        // durations add up the same whichever start an end is matched with.
        let sum_between = |start: &str, end: &str| -> (f64, usize) {
            let starts: Vec<_> = events.iter().filter(|e| e.message == start).collect();
            let ends: Vec<_> = events.iter().filter(|e| e.message == end).collect();
            let n = starts.len().min(ends.len());
            let total = ends[..n]
                .iter()
                .map(|e| e.at)
                .zip(starts[..n].iter().map(|e| e.at));
            (total.map(|(b, a)| secs(Some(a), Some(b))).sum(), n)
        };
        let (segment_seconds, segments) =
            sum_between("converting segment", "segment converted and reported");
        let (engine_seconds, _) = sum_between("converting", "converted");
        Stages {
            upload: secs(created, stored),
            chunking: secs(stored, chunked),
            conversion: secs(chunked, last_reported),
            segment_seconds,
            segment_overhead: (segment_seconds - engine_seconds).max(0.0),
            segments,
            reassembly: secs(last_reported, completed),
        }
    }
}

fn parse_line(line: &str) -> Option<Event> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let at = v.get("timestamp")?.as_str()?.parse().ok()?;
    let message = v
        .get("message")
        .or_else(|| v.get("fields")?.get("message"))?
        .as_str()?
        .to_owned();
    Some(Event { at, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: &str, m: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-11-26T07:{t}Z","level":"INFO","message":"{m}","target":"x"}}"#
        )
    }

    #[test]
    fn stages_add_up_from_the_log_events() {
        let lines = [
            line("00:00.000000", "job created"),
            line("00:01.000000", "object stored"),
            line("00:01.500000", "source split"),
            line("00:02.000000", "chunking done"),
            line("00:02.100000", "converting segment"),
            line("00:02.300000", "converting"),
            line("00:12.300000", "converted"),
            line("00:12.600000", "segment converted and reported"),
            line("00:12.700000", "converting segment"),
            line("00:12.800000", "converting"),
            line("00:20.800000", "converted"),
            line("00:21.000000", "segment converted and reported"),
            line(
                "00:21.010000",
                "last segment converted; reassembly requested",
            ),
            line("00:22.000000", "job completed"),
            "not json".to_owned(),
        ];
        let s = Stages::from_events(lines.iter().filter_map(|l| parse_line(l)).collect());
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(s.upload, 1.0), "{s:?}");
        assert!(close(s.chunking, 1.0), "{s:?}");
        assert!(close(s.conversion, 19.0), "{s:?}");
        assert_eq!(s.segments, 2);
        assert!(close(s.segment_seconds, 10.5 + 8.3), "{s:?}");
        assert!(close(s.segment_overhead, 0.5 + 0.3), "{s:?}");
        assert!(close(s.reassembly, 1.0), "{s:?}");
    }

    #[test]
    fn missing_events_give_zero_not_a_panic() {
        let s = Stages::from_events(vec![]);
        assert_eq!(s, Stages::default());
    }
}
