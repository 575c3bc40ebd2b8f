//! The one wrapper every ffmpeg/ffprobe process goes through: the binary is found the way
//! `ffmpeg-sidecar` finds it (a file next to the executable first, then PATH), "not found" is
//! its own error with an install hint, every process has a timeout and is killed when its
//! handle is dropped, at most a configured number run at once, and a failure keeps the exit
//! status and the tail of stderr.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

/// How much of stderr a failure keeps.
const STDERR_TAIL: usize = 4096;

/// The media tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `ffmpeg`.
    Ffmpeg,
    /// `ffprobe`.
    Ffprobe,
}

impl Tool {
    /// The tool's name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
        }
    }

    /// Where the tool is run from (next to the executable if there is one there, else PATH).
    pub fn path(self) -> PathBuf {
        match self {
            Tool::Ffmpeg => ffmpeg_sidecar::paths::ffmpeg_path(),
            Tool::Ffprobe => ffmpeg_sidecar::ffprobe::ffprobe_path(),
        }
    }
}

/// Why a tool run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The binary is missing.
    #[error("{program} not found on PATH: install it (e.g. `apt-get install ffmpeg`) or put it next to the executable")]
    NotFound {
        /// ffmpeg or ffprobe.
        program: &'static str,
    },
    /// It ran longer than allowed and was killed.
    #[error("{program} timed out after {after:?} and was killed; stderr ends with: {stderr_tail}")]
    Timeout {
        /// ffmpeg or ffprobe.
        program: &'static str,
        /// The limit.
        after: Duration,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// It exited unsuccessfully.
    #[error("{program} failed ({status}); stderr ends with: {stderr_tail}")]
    Failed {
        /// ffmpeg or ffprobe.
        program: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// Starting or talking to it failed.
    #[error("{program}: {source}")]
    Io {
        /// ffmpeg or ffprobe.
        program: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl ProcessError {
    /// The stderr tail, when the process ran.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            ProcessError::Timeout { stderr_tail, .. }
            | ProcessError::Failed { stderr_tail, .. } => Some(stderr_tail),
            _ => None,
        }
    }
}

static LIMIT: OnceLock<std::sync::Arc<Semaphore>> = OnceLock::new();

/// Sets how many tool processes may run at once in this process (default: twice the number
/// of cores). Only the first call has an effect; call it at start-up.
pub fn set_concurrency_limit(n: usize) {
    let _ = LIMIT.set(std::sync::Arc::new(Semaphore::new(n.max(1))));
}

fn limit() -> std::sync::Arc<Semaphore> {
    LIMIT
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            std::sync::Arc::new(Semaphore::new(cores * 2))
        })
        .clone()
}

/// A tool invocation being built.
#[derive(Debug, Clone)]
pub struct ToolCommand {
    tool: Tool,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    timeout: Duration,
}

/// A finished run's captured output.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// The end of stderr.
    pub stderr_tail: String,
}

impl ToolCommand {
    /// `tool` with no arguments and a 10 minute timeout.
    pub fn new(tool: Tool) -> Self {
        Self {
            tool,
            args: Vec::new(),
            envs: Vec::new(),
            timeout: Duration::from_secs(600),
        }
    }

    /// `ffmpeg -hide_banner -nostdin -y` with the given timeout.
    pub fn ffmpeg(timeout: Duration) -> Self {
        Self::new(Tool::Ffmpeg)
            .args(["-hide_banner", "-nostdin", "-y"])
            .timeout(timeout)
    }

    /// `ffprobe -v error` with the given timeout.
    pub fn ffprobe(timeout: Duration) -> Self {
        Self::new(Tool::Ffprobe)
            .args(["-v", "error"])
            .timeout(timeout)
    }

    /// Adds one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the process (on top of this process's environment).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The command line, for logs.
    pub fn display(&self) -> String {
        let mut s = self.tool.name().to_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Starts the process with stdin and stdout as given (stderr is always drained into the
    /// tail). For streaming: write to `child.stdin`, read `child.stdout`, then [`Running::wait`].
    pub async fn spawn(&self, stdin: Stdio, stdout: Stdio) -> Result<Running, ProcessError> {
        let permit = limit()
            .acquire_owned()
            .await
            .expect("the process semaphore is never closed");
        let program = self.tool.name();
        let mut cmd = Command::new(self.tool.path());
        cmd.args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        tracing::debug!(command = %self.display(), "starting");
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ProcessError::NotFound { program },
            _ => ProcessError::Io { program, source: e },
        })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let span = tracing::debug_span!("tool", program, pid = child.id());
        let tail = tokio::spawn(drain_tail(stderr).instrument(span));
        Ok(Running {
            child,
            program,
            timeout: self.timeout,
            tail: Some(tail),
            _permit: permit,
        })
    }

    /// Runs to completion with no stdin, capturing stdout (keep it small: ffprobe's JSON, not
    /// video) and the stderr tail.
    pub async fn output(&self) -> Result<ToolOutput, ProcessError> {
        let span = tracing::info_span!("tool", command = %self.display());
        async {
            let mut running = self.spawn(Stdio::null(), Stdio::piped()).await?;
            let mut stdout = running.child.stdout.take().expect("stdout is piped");
            let read = async {
                let mut buf = Vec::new();
                stdout.read_to_end(&mut buf).await.map(|_| buf)
            };
            let program = running.program;
            let timeout = running.timeout;
            match tokio::time::timeout(timeout, read).await {
                Ok(Ok(buf)) => {
                    let stderr_tail = running.wait().await?;
                    Ok(ToolOutput {
                        stdout: buf,
                        stderr_tail,
                    })
                }
                Ok(Err(e)) => Err(ProcessError::Io { program, source: e }),
                Err(_) => Err(running.kill_for_timeout().await),
            }
        }
        .instrument(span)
        .await
    }

    /// Runs to completion with no stdin and stdout discarded; returns the stderr tail.
    pub async fn run(&self) -> Result<String, ProcessError> {
        let span = tracing::info_span!("tool", command = %self.display());
        async {
            let running = self.spawn(Stdio::null(), Stdio::null()).await?;
            running.wait().await
        }
        .instrument(span)
        .await
    }
}

/// A started tool process. Dropping it kills the process.
#[derive(Debug)]
pub struct Running {
    /// The process; take `stdin`/`stdout` from it for streaming.
    pub child: Child,
    program: &'static str,
    timeout: Duration,
    tail: Option<JoinHandle<String>>,
    _permit: OwnedSemaphorePermit,
}

impl Running {
    /// Waits for the process to exit (within the remaining timeout); returns the stderr tail,
    /// or the failure with its exit status and stderr tail.
    pub async fn wait(mut self) -> Result<String, ProcessError> {
        let program = self.program;
        match tokio::time::timeout(self.timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                let stderr_tail = self.take_tail().await;
                if status.success() {
                    Ok(stderr_tail)
                } else {
                    Err(ProcessError::Failed {
                        program,
                        status,
                        stderr_tail,
                    })
                }
            }
            Ok(Err(e)) => Err(ProcessError::Io { program, source: e }),
            Err(_) => Err(self.kill_for_timeout().await),
        }
    }

    async fn kill_for_timeout(mut self) -> ProcessError {
        let _ = self.child.kill().await;
        ProcessError::Timeout {
            program: self.program,
            after: self.timeout,
            stderr_tail: self.take_tail().await,
        }
    }

    async fn take_tail(&mut self) -> String {
        match self.tail.take() {
            Some(h) => h.await.unwrap_or_default(),
            None => String::new(),
        }
    }
}

async fn drain_tail(mut r: impl AsyncRead + Unpin) -> String {
    let mut tail: Vec<u8> = Vec::with_capacity(STDERR_TAIL * 2);
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > STDERR_TAIL * 2 {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
    let start = tail.len().saturating_sub(STDERR_TAIL);
    // ffmpeg ends its progress lines with a carriage return: as lines of their own they read
    // in a message without overwriting what follows on a terminal.
    String::from_utf8_lossy(&tail[start..])
        .trim()
        .replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn progress_lines_become_lines_of_their_own_in_the_tail() {
        let stderr: &[u8] = b"frame=    1 fps=0.0 size=1kB    \r[out#0] No space left on device\n";
        assert_eq!(
            drain_tail(stderr).await,
            "frame=    1 fps=0.0 size=1kB    \n[out#0] No space left on device"
        );
    }

    #[tokio::test]
    async fn failure_keeps_status_and_stderr_tail() {
        let err = ToolCommand::ffmpeg(Duration::from_secs(30))
            .args(["-i", "/definitely/not/here.mp4", "-f", "null", "-"])
            .run()
            .await
            .unwrap_err();
        match err {
            ProcessError::Failed { stderr_tail, .. } => {
                assert!(stderr_tail.contains("No such file"), "{stderr_tail}")
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[tokio::test]
    async fn the_process_gets_the_variables_set_for_it() {
        // FFREPORT makes ffmpeg write a report file where the variable says.
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.log");
        ToolCommand::ffmpeg(Duration::from_secs(30))
            .env("FFREPORT", format!("file={}", report.display()))
            .arg("-version")
            .run()
            .await
            .unwrap();
        assert!(report.exists(), "ffmpeg did not see FFREPORT");
    }

    #[tokio::test]
    async fn timeout_kills_the_process() {
        let err = ToolCommand::ffmpeg(Duration::from_millis(300))
            .args([
                "-re",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=duration=60",
                "-f",
                "null",
                "-",
            ])
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn output_captures_stdout() {
        let out = ToolCommand::ffprobe(Duration::from_secs(30))
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=duration=1:size=64x48",
                "-show_entries",
            ])
            .args(["stream=width,height", "-of", "json"])
            .output()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["streams"][0]["width"], 64);
    }
}
