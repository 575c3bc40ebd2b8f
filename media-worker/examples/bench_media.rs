//! `make bench-media`: chunking and reassembly of a 60 s 1080p source, each timed side by side
//! with a plain `ffmpeg -i src -c copy` remux of the same file in the same run. Prints a table
//! and merges `chunk_vs_remux` and `concat_vs_remux` into target/bench/results.json.
//!
//! The source is generated once (testsrc2 + sine, x264 + AAC) into target/bench/ and reused.
//! Reassembly concatenates the source's own segments (the cost of a concat does not depend on
//! what the pictures show), muxing the original audio back in.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use media_worker::manifest::Manifest;
use media_worker::reassemble;
use media_worker::settings::Settings;
use media_worker::split;
use parallax_media::process::ToolCommand;

const ROUNDS: usize = 5;

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench")
}

async fn ensure_source(dir: &Path) -> anyhow::Result<PathBuf> {
    let src = dir.join("media-60s-1080p.mp4");
    if src.exists() {
        return Ok(src);
    }
    eprintln!("generating {} (once)...", src.display());
    let tmp = dir.join("media-60s-1080p.tmp.mp4");
    ToolCommand::ffmpeg(Duration::from_secs(1800))
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=1920x1080:rate=30:duration=60")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=60:sample_rate=48000",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60",
        ])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-shortest",
        ])
        .arg(&tmp)
        .run()
        .await?;
    std::fs::rename(&tmp, &src)?;
    Ok(src)
}

async fn remux(src: &Path, out: &Path) -> anyhow::Result<Duration> {
    let t = Instant::now();
    ToolCommand::ffmpeg(Duration::from_secs(600))
        .args(["-v", "error", "-i"])
        .arg(src)
        .args(["-c", "copy"])
        .arg(out)
        .run()
        .await?;
    Ok(t.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir)?;
    let src = ensure_source(&dir).await?;
    let work = tempfile::Builder::new()
        .prefix("bench-media-")
        .tempdir_in(&dir)?;
    let settings = Settings::default();

    let (mut remux_t, mut chunk_t, mut concat_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut segments = 0;
    for round in 0..ROUNDS {
        let r = work.path().join(format!("round{round}"));
        std::fs::create_dir_all(&r)?;
        remux_t.push(remux(&src, &r.join("remux.mp4")).await?);

        let t = Instant::now();
        let (inspection, plan, files) = split::chunk_file(&src, &r.join("segments"), &settings)
            .await
            .map_err(|f| anyhow::anyhow!("chunking failed: {f}"))?;
        chunk_t.push(t.elapsed());
        segments = files.len();

        let manifest = Manifest::new("bench", inspection.info, settings.segment_secs, &plan);
        let t = Instant::now();
        let assembled = reassemble::assemble(&src, &manifest, &files, &r, &settings)
            .await
            .map_err(|f| anyhow::anyhow!("reassembly failed: {f}"))?;
        concat_t.push(t.elapsed());
        anyhow::ensure!(assembled.frame_count == manifest.total_frames());
        std::fs::remove_dir_all(&r)?;
    }
    let (remux_m, chunk_m, concat_m) = (median(remux_t), median(chunk_t), median(concat_t));
    let chunk_ratio = chunk_m.as_secs_f64() / remux_m.as_secs_f64();
    let concat_ratio = concat_m.as_secs_f64() / remux_m.as_secs_f64();

    println!(
        "media-worker, 60 s 1080p30 H.264 + AAC, {segments} segments, median of {ROUNDS} rounds"
    );
    println!("{:<34} {:>10} {:>10}", "step", "seconds", "vs remux");
    println!(
        "{:<34} {:>10.3} {:>10}",
        "ffmpeg -i src -c copy (remux)",
        remux_m.as_secs_f64(),
        "1.00"
    );
    println!(
        "{:<34} {:>10.3} {:>10.2}",
        "chunk (probe + split + verify)",
        chunk_m.as_secs_f64(),
        chunk_ratio
    );
    println!(
        "{:<34} {:>10.3} {:>10.2}",
        "reassemble (concat + mux + verify)",
        concat_m.as_secs_f64(),
        concat_ratio
    );

    parallax_testkit::results::merge(
        &dir.join("results.json"),
        &[
            ("chunk_vs_remux", chunk_ratio),
            ("concat_vs_remux", concat_ratio),
        ],
    )?;
    Ok(())
}
