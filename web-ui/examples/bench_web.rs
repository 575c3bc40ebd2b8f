//! `make bench-web`: the dashboard under load with 10,000 jobs in the store.
//!
//! Fills a fresh DATA_DIR with jobs (mostly completed, some in progress with segments done,
//! some failed), starts the real `web-ui` binary on a loopback port, and drives it with a
//! bounded keep-alive load from this process: first the dashboard page (`/` and its older
//! pages), then the list API (`/api/jobs?state=...`). Each phase is bounded in requests and
//! seconds. Prints a table and merges `dashboard_rps` (the slower phase's requests/s) and
//! `dashboard_p99_ms` (the worse phase's 99th percentile) plus per-phase figures into the
//! results JSON. Loopback only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use axum::body::Body;
use chrono::Utc;
use futures::StreamExt as _;
use hyper::Request;
use hyper_util::rt::TokioIo;
use parallax_core::backends::Backends;
use parallax_core::config::CommonArgs;
use parallax_core::keys;
use parallax_core::model::{
    ConversionSettings, Job, JobError, JobStatus, JobUpdate, SegmentCompletion, StereoMode,
};

struct Args {
    server: PathBuf,
    jobs: usize,
    requests: usize,
    seconds: u64,
    connections: usize,
    results: PathBuf,
    data_dir: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        server: PathBuf::from("target/release/web-ui"),
        jobs: 10_000,
        requests: 5_000,
        seconds: 30,
        connections: 8,
        results: PathBuf::from("target/bench/results.json"),
        data_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => a.server = val()?.into(),
            "--jobs" => a.jobs = val()?.parse()?,
            "--requests" => a.requests = val()?.parse()?,
            "--seconds" => a.seconds = val()?.parse()?,
            "--connections" => a.connections = val()?.parse()?,
            "--results" => a.results = val()?.into(),
            "--data-dir" => a.data_dir = Some(val()?.into()),
            other => bail!("unknown flag {other}; flags: --server --jobs --requests --seconds --connections --results --data-dir"),
        }
    }
    anyhow::ensure!(
        a.connections >= 1 && a.requests >= a.connections,
        "need at least one request per connection"
    );
    Ok(a)
}

/// 10,000 jobs as a running service would have them: 98.8 % completed, 0.2 % in progress
/// (a fleet converts a handful at a time), 1 % failed.
async fn seed(backends: &Backends, n: usize) -> anyhow::Result<()> {
    let now = Utc::now();
    let in_progress = (n / 500).max(1);
    let failed = n / 100;
    let stream = futures::stream::iter(0..n).map(|i| async move {
        let title = format!("Holiday clip {i:05}");
        let job = Job::new(title, StereoMode::ALL[i % 6], ConversionSettings::default());
        backends.jobs.put(&job).await?;
        let uploaded = now - chrono::Duration::seconds((n - i) as i64 * 60);
        let mut u = JobUpdate {
            uploaded_at: Some(uploaded),
            source_file_size_bytes: Some(5_000_000 + (i as u64 % 97) * 1_000_000),
            total_segments: Some(8),
            ..JobUpdate::default()
        };
        if i < in_progress {
            u.status = Some(JobStatus::ChunkingComplete);
            backends.jobs.update(&job.job_id, &u).await?;
            for s in 0..(i % 8) as u32 {
                backends
                    .completions
                    .put(&SegmentCompletion {
                        job_id: job.job_id.clone(),
                        segment_index: s,
                        output_uri: keys::output(&job.job_id, s),
                        completed_at: now,
                        frame_count: Some(240),
                    })
                    .await?;
            }
        } else if i < in_progress + failed {
            u.status = Some(JobStatus::Failed);
            u.error = Some(JobError::new(
                "not-a-video",
                "The file is not a video ffprobe can read.",
            ));
            backends.jobs.update(&job.job_id, &u).await?;
        } else {
            u.status = Some(JobStatus::Completed);
            u.completed_at = Some(uploaded + chrono::Duration::seconds(30 + (i % 50) as i64));
            u.output_key = Some(keys::final_output(&job.job_id, "result_LRF_Full_SBS.mp4"));
            backends.jobs.update(&job.job_id, &u).await?;
        }
        anyhow::Ok(())
    });
    let mut stream = stream.buffer_unordered(8);
    while let Some(r) = stream.next().await {
        r?;
    }
    Ok(())
}

type Sender = hyper::client::conn::http1::SendRequest<Body>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn get(
    sender: &mut Sender,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<(u16, axum::body::Bytes)> {
    sender.ready().await?;
    let req = Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Body::empty())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(Body::new(resp.into_body()), usize::MAX).await?;
    Ok((status, body))
}

struct Phase {
    name: &'static str,
    /// CPU the server process used per request (user + system), from /proc.
    server_cpu_ms: f64,
    requests: usize,
    elapsed: Duration,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

impl Phase {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `connections` keep-alive connections, each cycling through `paths`, until `total`
/// requests are done or `limit` has passed.
async fn drive(
    name: &'static str,
    server_pid: u32,
    addr: SocketAddr,
    paths: &[String],
    total: usize,
    connections: usize,
    limit: Duration,
) -> anyhow::Result<Phase> {
    let cpu0 = cpu_ms(server_pid);
    let start = Instant::now();
    let deadline = start + limit;
    let per_conn = total / connections;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let paths = paths.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let mut lat = Vec::with_capacity(per_conn);
            let mut errors = 0;
            for i in 0..per_conn {
                if Instant::now() > deadline {
                    break;
                }
                let path = &paths[(c + i) % paths.len()];
                let t = Instant::now();
                let (status, body) = get(&mut sender, addr, path).await?;
                lat.push(t.elapsed());
                if status != 200 || body.is_empty() {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await??;
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed();
    let cpu = cpu_ms(server_pid) - cpu0;
    all.sort();
    let pct = |p: f64| {
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i].as_secs_f64() * 1000.0
    };
    Ok(Phase {
        name,
        server_cpu_ms: cpu / all.len().max(1) as f64,
        requests: all.len(),
        elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    })
}

/// CPU time (user + system) used so far by process `pid`, in ms; 0 where /proc is missing.
fn cpu_ms(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks * 10.0 // USER_HZ is 100 on Linux
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    anyhow::ensure!(
        a.server.exists(),
        "{} not found; build it first (cargo build --release -p web-ui)",
        a.server.display()
    );
    // A fresh temporary DATA_DIR, or a given empty folder that is kept for inspection.
    let tmp = tempfile::tempdir()?;
    let dir = a.data_dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    if dir.join("parallax.db").exists() {
        bail!(
            "{} already holds a database; give an empty folder",
            dir.display()
        );
    }
    let backends = Backends::from_config(&CommonArgs::local(&dir)).await?;
    let t = Instant::now();
    seed(&backends, a.jobs)
        .await
        .context("seeding the job store")?;
    println!(
        "seeded {} jobs in {:.1} s",
        a.jobs,
        t.elapsed().as_secs_f64()
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut server = Command::new(&a.server)
        .env("DATA_DIR", &dir)
        .env("WEB_UI_PORT", port.to_string())
        .env("WEB_UI_BIND", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .env_remove("WEB_UI_ACCESS_TOKEN")
        .env_remove("WEB_UI_BASIC_AUTH")
        .stdout(Stdio::null())
        .spawn()
        .context("starting web-ui")?;
    let ready = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = connect(addr).await {
                if let Ok((200, _)) = get(&mut s, addr, "/healthz").await {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("web-ui did not answer /healthz within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let pid = server.id();
    let run = async {
        ready.await?;
        // The cursors of the first completed pages, so the load also pages like a person does.
        let mut s = connect(addr).await?;
        let mut cursors = vec![String::new()];
        for _ in 0..4 {
            let q = match cursors.last().filter(|c| !c.is_empty()) {
                Some(c) => format!("/api/jobs?state=completed&cursor={c}"),
                None => "/api/jobs?state=completed".to_owned(),
            };
            let (_, body) = get(&mut s, addr, &q).await?;
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            cursors.push(
                v["next_cursor"]
                    .as_str()
                    .context("a next cursor")?
                    .to_owned(),
            );
        }
        let page_paths: Vec<String> = cursors
            .iter()
            .map(|c| {
                if c.is_empty() {
                    "/".to_owned()
                } else {
                    format!("/?cursor={c}")
                }
            })
            .collect();
        let mut api_paths: Vec<String> = cursors
            .iter()
            .map(|c| {
                if c.is_empty() {
                    "/api/jobs?state=completed".to_owned()
                } else {
                    format!("/api/jobs?state=completed&cursor={c}")
                }
            })
            .collect();
        api_paths.push("/api/jobs?state=in_progress".to_owned());
        api_paths.push("/api/jobs?state=failed".to_owned());
        // Warm-up (caches, connection set-up), not measured.
        drive(
            "warm-up",
            pid,
            addr,
            &page_paths,
            200,
            a.connections.min(200),
            Duration::from_secs(10),
        )
        .await?;
        let limit = Duration::from_secs(a.seconds);
        let page = drive(
            "dashboard page",
            pid,
            addr,
            &page_paths,
            a.requests,
            a.connections,
            limit,
        )
        .await?;
        let api = drive(
            "list API",
            pid,
            addr,
            &api_paths,
            a.requests,
            a.connections,
            limit,
        )
        .await?;
        anyhow::Ok((page, api))
    };
    let outcome = run.await;
    // Stop the server the way a deployment does (SIGTERM) and check it drains and exits.
    let t = Instant::now();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let exit = loop {
        if let Some(st) = server.try_wait()? {
            break Some(st);
        }
        if t.elapsed() > Duration::from_secs(15) {
            server.kill()?;
            server.wait()?;
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (page, api) = outcome?;

    println!();
    println!("| phase (jobs: {}, {} connections) | requests | errors | req/s | p50 ms | p99 ms | server CPU ms/req |", a.jobs, a.connections);
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for p in [&page, &api] {
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.3} |",
            p.name,
            p.requests,
            p.errors,
            p.rps(),
            p.p50_ms,
            p.p99_ms,
            p.server_cpu_ms
        );
    }
    let rps = page.rps().min(api.rps());
    let p99 = page.p99_ms.max(api.p99_ms);
    println!();
    println!("dashboard_rps    = {rps:.0}   (target >= 500)");
    println!("dashboard_p99_ms = {p99:.2}  (target <= 50)");
    match exit {
        Some(st) => println!(
            "web-ui on SIGTERM: {st} after {} ms",
            t.elapsed().as_millis()
        ),
        None => println!("web-ui on SIGTERM: did not exit within 15 s (killed)"),
    }
    anyhow::ensure!(page.errors + api.errors == 0, "some requests failed");
    parallax_testkit::results::merge(
        &a.results,
        &[
            ("dashboard_rps", rps),
            ("dashboard_p99_ms", p99),
            ("dashboard_page_rps", page.rps()),
            ("dashboard_page_p99_ms", page.p99_ms),
            ("dashboard_api_rps", api.rps()),
            ("dashboard_api_p99_ms", api.p99_ms),
            ("dashboard_page_server_cpu_ms", page.server_cpu_ms),
            ("dashboard_api_server_cpu_ms", api.server_cpu_ms),
        ],
    )?;
    println!("merged into {}", a.results.display());
    Ok(())
}
