//! The `web-ui` binary itself: it serves, stops cleanly on SIGTERM, and refuses bad settings
//! with a message a person can act on.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use parallax_testkit::wait::wait_until_blocking;

const BIN: &str = env!("CARGO_BIN_EXE_web-ui");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A child process killed when the test ends before it has exited (a failed wait panics).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_with(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .env("DATA_DIR", dir.path())
        .env("WEB_UI_PORT", free_port().to_string())
        .env_remove("WEB_UI_ACCESS_TOKEN")
        .env_remove("WEB_UI_BASIC_AUTH")
        .output()
        .unwrap()
}

#[test]
fn serves_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Running(
        Command::new(BIN)
            .env("DATA_DIR", dir.path())
            .env("WEB_UI_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .env_remove("WEB_UI_ACCESS_TOKEN")
            .env_remove("WEB_UI_BASIC_AUTH")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let health = wait_until_blocking(
        Duration::from_secs(30),
        &format!("web-ui answering on port {port}"),
        || get(port, "/healthz"),
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let page = get(port, "/").unwrap();
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("parallax"),
        "{page}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_until_blocking(
        Duration::from_secs(30),
        "web-ui to exit after SIGTERM",
        || child.0.try_wait().unwrap(),
    );
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[test]
fn bad_settings_are_refused_with_a_readable_reason() {
    let token = "a-token-long-enough-for-the-check";
    let cases: [(&[&str], &str); 5] = [
        (&["--access-token", "short"], "at least 16 characters"),
        (
            &["--access-token", token, "--basic-auth", "ann:pw"],
            "cannot be used with",
        ),
        (&["--basic-auth", "no-colon"], "user:password"),
        (&["--max-upload", "12X"], "use K, M, G or T"),
        (&["--page-size", "0"], "page-size"),
    ];
    for (args, says) in cases {
        let out = run_with(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn help_explains_every_flag_with_its_environment_variable() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for env in [
        "WEB_UI_PORT",
        "WEB_UI_BIND",
        "WEB_UI_MAX_UPLOAD",
        "WEB_UI_MAX_BODY",
        "WEB_UI_ACCESS_TOKEN",
        "WEB_UI_BASIC_AUTH",
        "WEB_UI_DRAIN_TIMEOUT_SECS",
        "DATA_DIR",
        "PUBLIC_URL",
    ] {
        assert!(help.contains(env), "--help does not mention {env}");
    }
}
