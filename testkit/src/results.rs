//! `target/bench/results.json`: every benchmark's figures, each with the commit, date and
//! machine it was measured on, merged run after run (a figure measured again replaces its old
//! value; the others stay). [`table`] writes the one table of figures from it
//! (`target/bench/results.md`, by `make bench`); figures are never copied into prose.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Where `make bench` keeps the figures.
pub const DEFAULT_PATH: &str = "target/bench/results.json";

/// One measured figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// The value, rounded to three decimals.
    pub value: f64,
    /// `git describe`-style commit of the tree measured (`-dirty` with uncommitted changes).
    pub commit: String,
    /// When it was measured (UTC, RFC 3339).
    pub date: String,
    /// The machine: CPU model, cores, memory.
    pub machine: String,
}

/// The whole file: figure name -> figure, sorted by name.
pub type Results = BTreeMap<String, Figure>;

/// Reads `path`; a missing or unreadable file is empty. Old files (a bare number per figure)
/// are read with unknown commit, date and machine.
pub fn read(path: &Path) -> Results {
    let Some(map) = std::fs::read(path).ok().and_then(|b| {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&b).ok()
    }) else {
        return Results::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| {
            let fig = match v {
                serde_json::Value::Number(n) => Figure {
                    value: n.as_f64()?,
                    commit: "unknown".into(),
                    date: "unknown".into(),
                    machine: "unknown".into(),
                },
                other => serde_json::from_value(other).ok()?,
            };
            Some((k, fig))
        })
        .collect()
}

/// Merges `figures` (name, value) into `path` with this run's commit, date and machine, and
/// prints where. The directory is created when missing.
pub fn merge(path: &Path, figures: &[(&str, f64)]) -> anyhow::Result<()> {
    let run = Run::here();
    merge_as(path, figures, &run)
}

/// Where and when a run happened.
#[derive(Debug, Clone)]
pub struct Run {
    /// See [`Figure::commit`].
    pub commit: String,
    /// See [`Figure::date`].
    pub date: String,
    /// See [`Figure::machine`].
    pub machine: String,
}

impl Run {
    /// This process's run: the working tree's commit, now, this machine.
    pub fn here() -> Self {
        Self {
            commit: commit(),
            date: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            machine: machine(),
        }
    }
}

/// [`merge`] with a given run (for tests).
pub fn merge_as(path: &Path, figures: &[(&str, f64)], run: &Run) -> anyhow::Result<()> {
    let mut all = read(path);
    for (name, value) in figures {
        anyhow::ensure!(value.is_finite(), "figure {name} is not a number: {value}");
        all.insert(
            (*name).to_owned(),
            Figure {
                value: (value * 1000.0).round() / 1000.0,
                commit: run.commit.clone(),
                date: run.date.clone(),
                machine: run.machine.clone(),
            },
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&all)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("merged {} figure(s) into {}", figures.len(), path.display());
    Ok(())
}

/// The figures as one Markdown table: figure, value, commit, date, machine.
pub fn table(results: &Results) -> String {
    let mut out = String::from("| figure | value | commit | date | machine |\n");
    out.push_str("| --- | ---: | --- | --- | --- |\n");
    for (name, f) in results {
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} | {} |\n",
            f.value, f.commit, f.date, f.machine
        ));
    }
    out
}

/// The table's file beside the results file (`results.md`).
pub fn table_path(results: &Path) -> PathBuf {
    results.with_extension("md")
}

fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short=10", "HEAD"]) {
        Some(c) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        None => "unknown".into(),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        let kb: f64 = s
            .lines()
            .find(|l| l.starts_with("MemTotal:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0 / 1024.0)
    });
    match mem_gib {
        Some(g) => format!("{cpu}, {cores} cores, {g:.0} GiB"),
        None => format!("{cpu}, {cores} cores"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(commit: &str) -> Run {
        Run {
            commit: commit.into(),
            date: "2026-12-06T00:00:00Z".into(),
            machine: "test box".into(),
        }
    }

    #[test]
    fn a_figure_measured_again_replaces_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench/results.json");
        merge_as(&path, &[("a", 1.23456), ("b", 2.0)], &run("c1")).unwrap();
        merge_as(&path, &[("a", 3.0)], &run("c2")).unwrap();
        let got = read(&path);
        assert_eq!(got["a"].value, 3.0);
        assert_eq!(got["a"].commit, "c2");
        assert_eq!(got["b"].value, 2.0);
        assert_eq!(got["b"].commit, "c1", "b was not measured again");
    }

    #[test]
    fn values_are_rounded_and_non_numbers_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        merge_as(&path, &[("x", 0.123456)], &run("c")).unwrap();
        assert_eq!(read(&path)["x"].value, 0.123);
        assert!(merge_as(&path, &[("y", f64::NAN)], &run("c")).is_err());
    }

    #[test]
    fn old_bare_number_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        std::fs::write(&path, r#"{"old": 0.5}"#).unwrap();
        let got = read(&path);
        assert_eq!(got["old"].value, 0.5);
        assert_eq!(got["old"].commit, "unknown");
    }

    #[test]
    fn the_table_has_a_row_per_figure_with_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        merge_as(&path, &[("b_fig", 2.5), ("a_fig", 1.0)], &run("abc")).unwrap();
        let t = table(&read(&path));
        let rows: Vec<&str> = t.lines().skip(2).collect();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].starts_with("| `a_fig` | 1 | abc |"), "{}", rows[0]);
        assert!(rows[1].contains("| 2.5 |") && rows[1].contains("test box"));
    }
}
