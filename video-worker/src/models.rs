//! `video-worker models`: the catalogue of known depth models (`models/catalogue.toml`) and
//! the commands that list, download and verify them.
//!
//! A download is only ever installed whole and checked: it streams into a temporary file in
//! the models folder while its sha256 is computed, and is renamed onto its final name only
//! when the digest (and size) match the catalogue. A wrong checksum, a cut-off transfer or any
//! other failure removes the temporary file, so the folder never holds a partial model.

use std::error::Error as StdError;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use parallax_core::catalogue::{check, Catalogue, FileState, ModelEntry, Source, DEFAULT_PATH};
use sha2::{Digest, Sha256};

/// `video-worker models`: list, download and verify depth models.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,

    /// The catalogue of known models (TOML).
    #[arg(
        long,
        env = "MODEL_CATALOGUE",
        default_value = DEFAULT_PATH,
        global = true
    )]
    catalogue: PathBuf,

    /// The folder that holds the model files.
    #[arg(long, env = "MODELS_DIR", default_value = "models", global = true)]
    models_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Show each known model: kind, size, licence, and whether its file is present and matches
    /// its checksum.
    List,
    /// Download a model into the models folder, checking its sha256 while it streams.
    Fetch(FetchArgs),
    /// Check every present model file against the catalogue; fails on any mismatch.
    Verify {
        /// Only these models (all when none are given).
        names: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct FetchArgs {
    /// The model's name in the catalogue (`video-worker models list` shows them).
    name: String,

    /// Install a model whose sha256 is not pinned in the catalogue yet, and print the digest
    /// and size computed while downloading so they can be pinned.
    #[arg(long, env = "MODELS_ALLOW_UNPINNED")]
    allow_unpinned: bool,

    /// Download again even when a file with the right checksum is already there.
    #[arg(long)]
    force: bool,
}

/// Runs `video-worker models ...`.
pub async fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let cat = Catalogue::load(&args.catalogue)?;
    match &args.command {
        ModelsCommand::List => list(&cat, &args.models_dir),
        ModelsCommand::Verify { names } => verify(&cat, &args.models_dir, names),
        ModelsCommand::Fetch(f) => fetch(&cat, &args.models_dir, f).await,
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn list(cat: &Catalogue, dir: &Path) -> anyhow::Result<()> {
    println!("models folder: {}", dir.display());
    println!(
        "{:<28} {:<12} {:>6} {:>10}  {:<12} FILE",
        "NAME", "KIND", "INPUT", "SIZE", "LICENCE"
    );
    for m in &cat.models {
        let state = check(m, dir)?;
        let size = match (&state, m.size) {
            (_, Some(s)) => human_size(s),
            (FileState::Unpinned { size, .. }, None) => human_size(*size),
            _ => "unknown".into(),
        };
        let status = match &state {
            FileState::Missing => match m.source() {
                Source::Url(_) => {
                    "missing (video-worker models fetch NAME)".replace("NAME", &m.name)
                }
                Source::Bundled => "missing (it ships in the repository)".into(),
                Source::Unknown => "missing (no download known; see the catalogue's note)".into(),
            },
            FileState::Verified => "present, checksum ok".into(),
            FileState::Mismatch { .. } => "present, CHECKSUM MISMATCH".into(),
            FileState::Unpinned { sha256, .. } => {
                format!("present, not pinned (sha256 {sha256})")
            }
        };
        println!(
            "{:<28} {:<12} {:>6} {:>10}  {:<12} {status}",
            m.name,
            m.kind_label(),
            m.input_size,
            size,
            m.licence
        );
    }
    Ok(())
}

fn verify(cat: &Catalogue, dir: &Path, names: &[String]) -> anyhow::Result<()> {
    let entries: Vec<&ModelEntry> = if names.is_empty() {
        cat.models.iter().collect()
    } else {
        names.iter().map(|n| cat.get(n)).collect::<Result<_, _>>()?
    };
    let mut bad = Vec::new();
    for m in entries {
        let path = dir.join(&m.file);
        match check(m, dir)? {
            FileState::Missing => println!("{}: not present at {} (skipped)", m.name, path.display()),
            FileState::Verified => println!("{}: ok ({})", m.name, path.display()),
            FileState::Unpinned { sha256, size } => println!(
                "{}: present at {}, not pinned in the catalogue: sha256 = \"{sha256}\", size = {size}",
                m.name,
                path.display()
            ),
            FileState::Mismatch { sha256, size } => {
                println!(
                    "{}: MISMATCH: {} has sha256 {sha256} and {size} bytes; the catalogue says {}{}",
                    m.name,
                    path.display(),
                    m.sha256,
                    m.size.map(|s| format!(" and {s} bytes")).unwrap_or_default()
                );
                bad.push(m.name.as_str());
            }
        }
    }
    if !bad.is_empty() {
        bail!(
            "{} model file(s) do not match the catalogue: {}; fetch them again with `video-worker models fetch NAME --force`",
            bad.len(),
            bad.join(", ")
        );
    }
    Ok(())
}

/// The error chain of `e` on one line.
fn chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

async fn fetch(cat: &Catalogue, dir: &Path, args: &FetchArgs) -> anyhow::Result<()> {
    let m = cat.get(&args.name)?;
    let dest = dir.join(&m.file);
    let url = match m.source() {
        Source::Bundled => {
            if check(m, dir)? == FileState::Verified {
                println!(
                    "{} ships in the repository and is present at {}, checksum ok",
                    m.name,
                    dest.display()
                );
                return Ok(());
            }
            bail!(
                "{} ships in the repository, nothing to download, but {} is missing or changed: restore it from the repository (git checkout -- {}) or rewrite it with `python models/make_models.py --default {}`",
                m.name,
                dest.display(),
                dest.display(),
                dest.display()
            );
        }
        Source::Unknown => bail!(
            "no download URL is known for {}{}: put the file at {} yourself, then run `video-worker models verify`",
            m.name,
            m.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default(),
            dest.display()
        ),
        Source::Url(url) => url,
    };
    if !m.pinned() && !args.allow_unpinned {
        bail!(
            "{} has no pinned sha256 in the catalogue yet, so its download cannot be checked; run `video-worker models fetch {} --allow-unpinned` to install it anyway (the digest it computes is printed, to pin in the catalogue)",
            m.name,
            m.name
        );
    }
    let replacing = match check(m, dir)? {
        FileState::Verified if !args.force => {
            println!(
                "{} is already present at {}, checksum ok",
                m.name,
                dest.display()
            );
            return Ok(());
        }
        FileState::Missing => false,
        _ => true,
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the models folder {}", dir.display()))?;

    let manual = |what: String| {
        anyhow::anyhow!(
            "could not download {} from {url}: {what}. Download {url} yourself and put it at {}, then run `video-worker models verify`",
            m.name,
            dest.display()
        )
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| manual(chain(&e)))?;
    if !resp.status().is_success() {
        return Err(manual(format!("the server answered {}", resp.status())));
    }
    let expected_len = resp.content_length();
    if let (Some(got), Some(want)) = (expected_len, m.size) {
        if got != want {
            bail!(
                "{url} offers {got} bytes but the catalogue says {} has {want}; nothing was installed",
                m.name
            );
        }
    }

    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", m.file))
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let bar = match expected_len.or(m.size) {
        Some(len) => {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
                )
                .expect("a valid template"),
            );
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {bytes} ({bytes_per_sec})")
                    .expect("a valid template"),
            );
            bar
        }
    };
    bar.set_message(m.name.clone());

    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                hasher.update(&chunk);
                out.write_all(&chunk)
                    .with_context(|| format!("writing {}", tmp.path().display()))?;
                received += chunk.len() as u64;
                bar.inc(chunk.len() as u64);
            }
            Ok(None) => break,
            Err(e) => {
                bar.abandon();
                return Err(manual(format!(
                    "the download was cut off after {received} bytes{} ({}); nothing was installed",
                    expected_len.map(|l| format!(" of {l}")).unwrap_or_default(),
                    chain(&e)
                )));
            }
        }
    }
    bar.finish_and_clear();
    if let Some(want) = expected_len {
        if received != want {
            return Err(manual(format!(
                "the download was cut off after {received} of {want} bytes; nothing was installed"
            )));
        }
    }
    let sha256 = hex::encode(hasher.finalize());
    if m.pinned() && (sha256 != m.sha256 || m.size.is_some_and(|s| s != received)) {
        bail!(
            "checksum mismatch for {} from {url}: the download has sha256 {sha256} ({received} bytes), the catalogue says {}{}; nothing was installed{}",
            m.name,
            m.sha256,
            m.size.map(|s| format!(" ({s} bytes)")).unwrap_or_default(),
            if replacing {
                format!(" ({} is unchanged)", dest.display())
            } else {
                String::new()
            }
        );
    }
    out.flush()
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    drop(out);
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", tmp.path().display()))?;
    tmp.persist(&dest)
        .with_context(|| format!("renaming the download onto {}", dest.display()))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    if m.pinned() {
        println!(
            "installed {} at {} ({received} bytes, checksum ok)",
            m.name,
            dest.display()
        );
    } else {
        println!(
            "installed {} at {} ({received} bytes) WITHOUT a checksum to compare with; to pin it, set in the catalogue:\n  sha256 = \"{sha256}\"\n  size = {received}",
            m.name,
            dest.display()
        );
    }
    Ok(())
}
