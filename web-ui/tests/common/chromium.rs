//! Headless Chromium through chromedriver (fantoccini) for the real-browser tests (waiting for
//! a state in it is the test kit's `wait_until`). Included with
//! `#[path = "common/chromium.rs"] mod chromium;` (from a test directory's `main.rs`,
//! `"../common/chromium.rs"`) by the tests that drive a browser.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`make setup` installs them). Outside CI a
//! test skips with a printed reason when they are missing; with CI=true it fails.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use parallax_testkit::wait::wait_until_blocking;
use serde_json::json;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the browser is there; `false` means "skip" (outside CI only).
pub fn available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "browser test needs {} (apt-get install chromium chromium-driver, or `make setup`)",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Starts chromedriver and waits until it listens.
pub fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver { child, port };
    wait_until_blocking(Duration::from_secs(20), "chromedriver listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    driver
}

/// A WebDriver session in headless Chromium with its own profile folder. Media may play
/// without a click (the tests start playback from a script).
pub async fn connect(driver: &Driver, profile: &Path) -> Client {
    connect_with_downloads(driver, profile, None).await
}

/// [`connect`], saving downloads into `downloads` without asking.
pub async fn connect_with_downloads(
    driver: &Driver,
    profile: &Path,
    downloads: Option<&Path>,
) -> Client {
    let mut options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1280,1000",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    if let Some(dir) = downloads {
        options["prefs"] = json!({
            "download.default_directory": dir.display().to_string(),
            "download.prompt_for_download": false,
            "safebrowsing.enabled": false,
        });
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".to_owned(), options);
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session in headless Chromium")
}

/// `target/tmp/{folder}` in the workspace (whatever `CARGO_TARGET_DIR` is), created.
pub fn artifacts_dir(folder: &str) -> PathBuf {
    // Rebuilt from its components: a trailing `.` (folder ".") would make `create_dir_all`
    // fail when target/tmp does not exist yet.
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tmp")
        .join(folder)
        .components()
        .collect();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A screenshot of the window to `target/tmp/{folder}/{name}`.
pub async fn screenshot(c: &Client, folder: &str, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = artifacts_dir(folder).join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}
