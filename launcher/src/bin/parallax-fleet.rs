//! `parallax-fleet`: the local fleet as one command.
//!
//! - `demo`: make a sample 2D clip, start web-ui, media-worker and video-worker as separate
//!   processes, upload the clip through web-ui's HTTP API as the browser does, show progress,
//!   write the 3D result into `out/`, print its path, and stop every process it started.
//! - `up`: run the fleet until Ctrl-C on WEB_UI_PORT with state in DATA_DIR.
//! - `bench`: the fleet's wall time against `video-worker convert` in one process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use parallax_launcher::fleet::{default_bin_dir, repo_root, Supervisor};
use parallax_launcher::timeline::Stages;
use parallax_launcher::{Client, Fleet, FleetConfig};
use parallax_testkit::media::{make_clip, probe, ClipSpec};

/// Run the parallax fleet on this machine.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Folder holding the web-ui, media-worker and video-worker binaries (default: next to this one).
    #[arg(long, env = "PARALLAX_BIN_DIR", global = true)]
    bin_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Convert a generated sample clip end to end through the local fleet.
    Demo {
        /// Where the result goes.
        #[arg(long, env = "DEMO_OUT_DIR", default_value = "out")]
        out_dir: PathBuf,
        /// 3D format.
        #[arg(long, env = "DEMO_MODE", default_value = "full_sbs")]
        mode: String,
        /// Length of the sample clip in seconds.
        #[arg(long, env = "DEMO_SECONDS", default_value_t = 12.0)]
        seconds: f64,
        /// Convert this file instead of a generated sample.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Run the fleet until Ctrl-C.
    Up {
        /// web-ui's port.
        #[arg(long, env = "WEB_UI_PORT", default_value_t = 8080)]
        port: u16,
        /// State folder shared by the processes.
        #[arg(long, env = "DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// How many video-worker processes.
        #[arg(long, env = "VIDEO_WORKERS", default_value_t = 1)]
        video_workers: usize,
    },
    /// Measure the fleet against one `video-worker convert` process on the same clip.
    Bench {
        /// Clip length in seconds.
        #[arg(long, env = "BENCH_FLEET_SECONDS", default_value_t = 60.0)]
        seconds: f64,
        /// Where figures are merged.
        #[arg(long, default_value = "target/bench/results.json")]
        results: PathBuf,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // An error ends the command with its reason on one line (and its causes), never a
    // backtrace: these are conditions a person acts on, not bugs.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parallax-fleet: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    if let Some(d) = &cli.bin_dir {
        std::env::set_var("PARALLAX_BIN_DIR", d);
    }
    match cli.cmd {
        Cmd::Demo {
            out_dir,
            mode,
            seconds,
            input,
        } => demo(&out_dir, &mode, seconds, input).await,
        Cmd::Up {
            port,
            data_dir,
            video_workers,
        } => up(port, data_dir, video_workers).await,
        Cmd::Bench { seconds, results } => bench(seconds, &results).await,
    }
}

async fn demo(out_dir: &Path, mode: &str, seconds: f64, input: Option<PathBuf>) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("parallax-demo-")
        .tempdir()?;
    let source = match input {
        Some(p) => p,
        None => {
            let p = work.path().join("sample-2d.mp4");
            println!("making a {seconds} s sample clip (640x360, 24 fps, stereo sound)...");
            let spec = ClipSpec {
                width: 640,
                height: 360,
                ..ClipSpec::small(seconds)
            };
            make_clip(&p, &spec).await?;
            p
        }
    };
    let cfg = FleetConfig::local(work.path().join("data")).with_env("SEGMENT_SECS", "4");
    println!("starting web-ui, media-worker and video-worker...");
    let mut fleet = Fleet::start(cfg).await?;
    println!("web-ui at {}", fleet.url());
    let result = run_one(&fleet, &source, mode, out_dir).await;
    if result.is_err() {
        eprintln!("{}", fleet.logs());
    }
    fleet.stop(Duration::from_secs(20));
    println!("stopped every process the demo started");
    let (path, _) = result?;
    println!("3D result: {}", path.display());
    Ok(())
}

/// Uploads `source`, follows the job to the end and downloads the result into `out_dir`.
/// Returns the result's path and the time from the upload's start to the download's end.
async fn run_one(
    fleet: &Fleet,
    source: &Path,
    mode: &str,
    out_dir: &Path,
) -> Result<(PathBuf, Duration)> {
    let client = Client::new(fleet.url());
    let title = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sample".into());
    let started = Instant::now();
    let job_id = client.submit(source, &title, mode).await?;
    println!("uploaded {} as job {job_id}", source.display());
    let state = client
        .wait(&job_id, Duration::from_secs(3600), |s| {
            let (done, total) = s.progress();
            let total = total.map_or("?".to_owned(), |t| t.to_string());
            println!(
                "[{:>6.1}s] {:<18} segments {done}/{total}",
                started.elapsed().as_secs_f64(),
                s.status()
            );
        })
        .await?;
    if state.status() != "completed" {
        let (code, message) = state.error().unwrap_or_default();
        bail!("job {job_id} failed: {message} ({code})");
    }
    let path = client.download(&job_id, out_dir).await?;
    let elapsed = started.elapsed();
    // Checking the result decodes all of it: not part of the conversion's time.
    let p = probe(&path).await?;
    println!(
        "converted in {:.1} s: {}x{}, {} frames, {:.2} s, audio tracks {:?}",
        elapsed.as_secs_f64(),
        p.width,
        p.height,
        p.frames,
        p.duration,
        p.audio_languages
    );
    Ok((std::fs::canonicalize(&path).unwrap_or(path), elapsed))
}

async fn up(port: u16, data_dir: PathBuf, video_workers: usize) -> Result<()> {
    let mut cfg = FleetConfig::local(std::path::absolute(&data_dir)?);
    cfg.port = port;
    cfg.video_workers = video_workers;
    let mut fleet = Fleet::start(cfg).await?;
    println!(
        "parallax is up at {}  (state in {}, logs in {}/logs; Ctrl-C stops it)",
        fleet.url(),
        data_dir.display(),
        data_dir.display()
    );
    // A process that dies (an OOM kill, a crash) is started again: the work it held is
    // redelivered by its queue, so the job goes on without a manual step.
    let mut supervisor = Supervisor::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let outcome = loop {
        tokio::select! {
            _ = parallax_core::telemetry::shutdown_signal() => break Ok(()),
            _ = tick.tick() => match supervisor.tick(&mut fleet) {
                Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                Err(e) => break Err(e),
            },
        }
    };
    println!("stopping...");
    fleet.stop(Duration::from_secs(30));
    outcome
}

async fn bench(seconds: f64, results: &Path) -> Result<()> {
    let dir = repo_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let clip = dir.join(format!("fleet-720p-{seconds}s.mp4"));
    if !clip.exists() {
        println!("making a {seconds} s 720p clip...");
        let spec = ClipSpec {
            width: 1280,
            height: 720,
            fps: "24".into(),
            preset: "veryfast".into(),
            ..ClipSpec::small(seconds)
        };
        make_clip(&clip, &spec).await?;
    }
    let bin = default_bin_dir();
    let work = tempfile::Builder::new()
        .prefix("parallax-bench-")
        .tempdir()?;

    println!("single process: video-worker convert ...");
    let single_out = work.path().join("single.mp4");
    let t = Instant::now();
    let status = std::process::Command::new(bin.join("video-worker"))
        .current_dir(repo_root())
        .arg("convert")
        .arg(&clip)
        .arg(&single_out)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running video-worker convert")?;
    if !status.success() {
        bail!("video-worker convert failed ({status})");
    }
    let single = t.elapsed().as_secs_f64();

    let mut fleet_secs = Vec::new();
    let mut stages = Vec::new();
    for workers in [1usize, 2] {
        println!("fleet with {workers} video-worker(s) ...");
        let mut cfg = FleetConfig::local(work.path().join(format!("data-{workers}")));
        cfg.video_workers = workers;
        let mut fleet = Fleet::start(cfg).await?;
        let out = work.path().join(format!("out-{workers}"));
        let r = run_one(&fleet, &clip, "full_sbs", &out).await;
        if r.is_err() {
            eprintln!("{}", fleet.logs());
        }
        fleet.stop(Duration::from_secs(20));
        let (_, elapsed) = r?;
        fleet_secs.push(elapsed.as_secs_f64());
        let logs = work.path().join(format!("data-{workers}")).join("logs");
        stages.push(Stages::from_log_dir(&logs)?);
    }
    let figures = [
        ("fleet_vs_single_process", fleet_secs[0] / single),
        ("fleet2_vs_single_process", fleet_secs[1] / single),
    ];
    println!();
    println!("{:<28} {:>10}", "figure", "value");
    println!("{:<28} {:>10.2} s", "single_process_seconds", single);
    println!("{:<28} {:>10.2} s", "fleet_1_worker_seconds", fleet_secs[0]);
    println!(
        "{:<28} {:>10.2} s",
        "fleet_2_workers_seconds", fleet_secs[1]
    );
    for (k, v) in figures {
        println!("{k:<28} {v:>10.3}");
    }
    print_stages(&stages);
    parallax_testkit::results::merge(results, &figures)?;
    println!("written to {}", results.display());
    Ok(())
}

/// Where each fleet run's time went, from its processes' logs.
fn print_stages(stages: &[Stages]) {
    println!();
    println!(
        "{:<44} {:>9} {:>9}",
        "fleet stage (seconds)", "1 worker", "2 workers"
    );
    type Row = (&'static str, fn(&Stages) -> f64);
    let rows: [Row; 7] = [
        ("upload through web-ui", |s| s.upload),
        ("chunking (probe, split, segment uploads)", |s| s.chunking),
        ("conversion phase (wall)", |s| s.conversion),
        ("  segment conversions added up", |s| s.segment_seconds),
        ("  of which outside the engine", |s| s.segment_overhead),
        ("reassembly (trigger, concat, final upload)", |s| {
            s.reassembly
        }),
        ("segments", |s| s.segments as f64),
    ];
    for (name, get) in rows {
        print!("{name:<44}");
        for s in stages {
            print!(" {:>9.2}", get(s));
        }
        println!();
    }
}
