//! Starting, killing and stopping the fleet's processes.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// One of the fleet's binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The web front.
    WebUi,
    /// Chunking, the completion trigger and reassembly.
    MediaWorker,
    /// Depth inference and stereo rendering.
    VideoWorker,
}

impl Role {
    /// The binary's name.
    pub fn binary(self) -> &'static str {
        match self {
            Role::WebUi => "web-ui",
            Role::MediaWorker => "media-worker",
            Role::VideoWorker => "video-worker",
        }
    }

    /// What a worker of this role logs once it takes work (`None` for web-ui, whose
    /// readiness is its `/healthz`).
    fn started_line(self) -> Option<&'static str> {
        match self {
            Role::WebUi => None,
            Role::MediaWorker => Some("media-worker started"),
            Role::VideoWorker => Some("segment worker started"),
        }
    }
}

/// How to start a fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Where the binaries are (target/debug or target/release).
    pub bin_dir: PathBuf,
    /// DATA_DIR shared by every process (local adapters), and where logs go.
    pub data_dir: PathBuf,
    /// web-ui's port; 0 picks a free one.
    pub port: u16,
    /// How many video-worker processes.
    pub video_workers: usize,
    /// Environment given to every process (adapter choice, queue timeouts, model, ...).
    pub env: Vec<(String, String)>,
}

impl FleetConfig {
    /// A local-adapter fleet over `data_dir` with the binaries found next to this program
    /// (or in `PARALLAX_BIN_DIR`), the repository's default model and one video-worker.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        let root = repo_root();
        let mut cfg = Self {
            bin_dir: default_bin_dir(),
            data_dir: data_dir.into(),
            port: 0,
            video_workers: 1,
            env: vec![
                ("STORAGE_ADAPTER".into(), "local".into()),
                (
                    "DEPTH_MODEL".into(),
                    root.join("models/default-depth.onnx").display().to_string(),
                ),
                ("LOG_FORMAT".into(), "json".into()),
            ],
        };
        if std::env::var_os("ORT_DYLIB_PATH").is_none() {
            if let Some(lib) = venv_onnxruntime(&root) {
                cfg = cfg.with_env("ORT_DYLIB_PATH", lib.display().to_string());
            }
        }
        cfg
    }

    /// Sets (or replaces) one environment variable for every process.
    pub fn with_env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
        self
    }
}

/// The ONNX Runtime library in the repository's venv (`make venv`), if there is one.
pub fn venv_onnxruntime(root: &Path) -> Option<PathBuf> {
    let lib = root.join(".venv/lib");
    for py in std::fs::read_dir(lib).ok()?.flatten() {
        let capi = py.path().join("site-packages/onnxruntime/capi");
        let Ok(entries) = std::fs::read_dir(&capi) else {
            continue;
        };
        let mut libs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so."))
            })
            .collect();
        libs.sort();
        if let Some(l) = libs.pop() {
            return Some(l);
        }
    }
    None
}

/// The repository root (this crate's parent folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("launcher/ sits in the repository")
        .to_owned()
}

/// `PARALLAX_BIN_DIR`, or the target folder this program was built into.
pub fn default_bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PARALLAX_BIN_DIR") {
        return d.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    // Test binaries live in target/<profile>/deps, programs in target/<profile>.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("profile dir").to_owned()
    } else {
        dir.to_owned()
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running process of the fleet.
#[derive(Debug)]
pub struct Proc {
    /// Which binary.
    pub role: Role,
    /// Its index among processes of the same role.
    pub index: usize,
    child: Child,
    started: Instant,
    log: PathBuf,
}

impl Proc {
    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A running fleet. Dropping it kills every process it started.
#[derive(Debug)]
pub struct Fleet {
    cfg: FleetConfig,
    port: u16,
    procs: Vec<Proc>,
    spawned: usize,
}

impl Fleet {
    /// Starts web-ui (and waits for `/healthz`), the media-worker and the video-workers.
    pub async fn start(mut cfg: FleetConfig) -> Result<Self> {
        for role in [Role::WebUi, Role::MediaWorker, Role::VideoWorker] {
            let bin = cfg.bin_dir.join(role.binary());
            if !bin.exists() {
                bail!(
                    "{} not found; build the fleet first (cargo build --workspace --bins)",
                    bin.display()
                );
            }
        }
        std::fs::create_dir_all(cfg.data_dir.join("logs"))?;
        let port = if cfg.port == 0 { free_port() } else { cfg.port };
        cfg.port = port;
        let mut fleet = Self {
            cfg,
            port,
            procs: Vec::new(),
            spawned: 0,
        };
        fleet.spawn(Role::WebUi)?;
        fleet.wait_healthy(Duration::from_secs(30)).await?;
        fleet.spawn(Role::MediaWorker)?;
        for _ in 0..fleet.cfg.video_workers {
            fleet.spawn(Role::VideoWorker)?;
        }
        // A worker that cannot start (bad model, missing library) exits saying why.
        if let Err(e) = fleet.wait_started(Duration::from_secs(120)).await {
            bail!("{e:#}\n{}", fleet.logs());
        }
        Ok(fleet)
    }

    /// web-ui's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The DATA_DIR.
    pub fn data_dir(&self) -> &Path {
        &self.cfg.data_dir
    }

    /// The processes now running.
    pub fn procs(&self) -> &[Proc] {
        &self.procs
    }

    /// Starts one more process of `role`.
    pub fn spawn(&mut self, role: Role) -> Result<u32> {
        let index = self.procs.iter().filter(|p| p.role == role).count();
        self.spawn_at(role, index)
    }

    /// Starts the process of `role` numbered `index` (a restart keeps its number).
    pub fn spawn_at(&mut self, role: Role, index: usize) -> Result<u32> {
        self.spawned += 1;
        let log_path =
            self.cfg
                .data_dir
                .join("logs")
                .join(format!("{}-{}.log", role.binary(), self.spawned));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = Command::new(self.cfg.bin_dir.join(role.binary()));
        cmd.current_dir(repo_root())
            .env("DATA_DIR", &self.cfg.data_dir)
            .env("WEB_UI_PORT", self.port.to_string())
            .env("PUBLIC_URL", self.url())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in &self.cfg.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", role.binary()))?;
        let pid = child.id();
        self.procs.push(Proc {
            role,
            index,
            child,
            started: Instant::now(),
            log: log_path,
        });
        Ok(pid)
    }

    /// Waits until every worker has logged that it started taking work (the video-worker
    /// only after its models loaded and passed their checks); fails as soon as one exits.
    pub async fn wait_started(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            self.check_alive()?;
            let waiting: Vec<String> = self
                .procs
                .iter()
                .filter(|p| {
                    p.role.started_line().is_some_and(|line| {
                        !std::fs::read_to_string(&p.log).is_ok_and(|log| log.contains(line))
                    })
                })
                .map(|p| format!("{} #{}", p.role.binary(), p.index))
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not say it started within {within:?}",
                    waiting.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until web-ui answers `/healthz`.
    pub async fn wait_healthy(&mut self, within: Duration) -> Result<()> {
        let url = format!("{}/healthz", self.url());
        let http = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!("web-ui did not become healthy at {url} within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails if a process of the fleet has exited (a worker must never die on its own).
    pub fn check_alive(&mut self) -> Result<()> {
        for p in &mut self.procs {
            if let Some(status) = p.child.try_wait()? {
                bail!(
                    "{} #{} exited on its own ({status}); logs in {}",
                    p.role.binary(),
                    p.index,
                    self.cfg.data_dir.join("logs").display()
                );
            }
        }
        Ok(())
    }

    /// Takes the processes that have exited off the fleet: each with how long it ran.
    pub fn reap(&mut self) -> Result<Vec<Exit>> {
        let mut exits = Vec::new();
        let mut i = 0;
        while i < self.procs.len() {
            if let Some(status) = self.procs[i].child.try_wait()? {
                let p = self.procs.remove(i);
                exits.push(Exit {
                    role: p.role,
                    index: p.index,
                    status,
                    ran: p.started.elapsed(),
                });
            } else {
                i += 1;
            }
        }
        Ok(exits)
    }

    /// Where the processes' logs are.
    pub fn log_dir(&self) -> PathBuf {
        self.cfg.data_dir.join("logs")
    }

    /// Sends SIGKILL to the first process of `role` from outside, as the kernel's OOM killer
    /// would, leaving it on the fleet for [`Fleet::reap`] (and a [`Supervisor`]) to notice.
    pub fn oom_kill(&self, role: Role) -> Result<()> {
        let p = self
            .procs
            .iter()
            .find(|p| p.role == role)
            .context("no such process")?;
        let st = Command::new("kill")
            .args(["-KILL", &p.pid().to_string()])
            .status()?;
        anyhow::ensure!(st.success(), "kill -KILL {} failed", p.pid());
        Ok(())
    }

    /// Kills the first process of `role` with SIGKILL (no chance to clean up), returning it.
    pub fn kill(&mut self, role: Role) -> Result<()> {
        let i = self
            .procs
            .iter()
            .position(|p| p.role == role)
            .context("no such process")?;
        let mut p = self.procs.remove(i);
        p.child.kill()?;
        p.child.wait()?;
        Ok(())
    }

    /// Asks every process to stop (SIGTERM), waits up to `grace`, then kills what is left.
    pub fn stop(&mut self, grace: Duration) {
        for p in &self.procs {
            let _ = Command::new("kill")
                .args(["-TERM", &p.pid().to_string()])
                .status();
        }
        let deadline = Instant::now() + grace;
        for p in &mut self.procs {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                }
            }
        }
        self.procs.clear();
    }

    /// The concatenated logs of every process so far (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.cfg.data_dir.join("logs")) {
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                out.push_str(&format!("==> {} <==\n", p.display()));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// A process of the fleet that exited.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Which binary.
    pub role: Role,
    /// Its index among processes of the same role.
    pub index: usize,
    /// How it ended.
    pub status: std::process::ExitStatus,
    /// How long it ran.
    pub ran: Duration,
}

impl Exit {
    /// "exited with code 1" / "killed by signal 9 (SIGKILL)".
    pub fn how(&self) -> String {
        use std::os::unix::process::ExitStatusExt as _;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(9)) => "killed by signal 9 (SIGKILL)".to_owned(),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "ended".to_owned(),
        }
    }
}

/// Keeps a local fleet alive, as `make up` does: a process that dies is started again after
/// a back-off (1 s, doubling while it keeps dying within [`Supervisor::MIN_UPTIME`] of its
/// start, at most 30 s), with one line saying which and how; one that dies at start
/// [`Supervisor::MAX_QUICK_DEATHS`] times in a row is given up on (an error: something is
/// wrong that restarting will not fix).
#[derive(Debug, Default)]
pub struct Supervisor {
    /// Restarts due: when, which.
    pending: Vec<(Instant, Role, usize)>,
    /// Deaths within MIN_UPTIME in a row, per process.
    quick: std::collections::HashMap<(Role, usize), u32>,
}

impl Supervisor {
    /// A process that ran shorter than this died "at start".
    pub const MIN_UPTIME: Duration = Duration::from_secs(5);
    /// Deaths at start in a row after which a process is given up on.
    pub const MAX_QUICK_DEATHS: u32 = 5;

    /// Reaps what died, schedules restarts and starts what is due; returns the lines to
    /// print. An error when a process keeps dying at start.
    pub fn tick(&mut self, fleet: &mut Fleet) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for exit in fleet.reap()? {
            let key = (exit.role, exit.index);
            let quick = self.quick.entry(key).or_default();
            *quick = if exit.ran < Self::MIN_UPTIME {
                *quick + 1
            } else {
                0
            };
            if *quick >= Self::MAX_QUICK_DEATHS {
                bail!(
                    "{} #{} keeps dying at start ({} times in a row, last {}); see its log in {}",
                    exit.role.binary(),
                    exit.index,
                    *quick,
                    exit.how(),
                    fleet.log_dir().display()
                );
            }
            let delay = Duration::from_secs(1 << (*quick).min(5)).min(Duration::from_secs(30));
            lines.push(format!(
                "{} #{} {} after {:.1} s; restarting in {} s",
                exit.role.binary(),
                exit.index,
                exit.how(),
                exit.ran.as_secs_f64(),
                delay.as_secs()
            ));
            self.pending
                .push((Instant::now() + delay, exit.role, exit.index));
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|(at, ..)| *at <= now);
        self.pending = later;
        for (_, role, index) in due {
            let pid = fleet.spawn_at(role, index)?;
            lines.push(format!("{} #{index} restarted (pid {pid})", role.binary()));
        }
        Ok(lines)
    }
}
