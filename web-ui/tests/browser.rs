//! What a person does, in a real headless Chromium driven through chromedriver: upload a
//! generated clip through the upload page, see its row on the dashboard, let the (stand-in)
//! workers finish it, watch the dashboard pick that up by itself, and download the result
//! through the job page under its title's name. Screenshots are kept under target/tmp.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`make setup` installs them). Outside CI
//! the test skips with a printed reason when they are missing; with CI=true it fails.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use parallax_core::keys;
use parallax_core::model::JobStatus;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start listening"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

/// Whether the browser is there; `None` means "skip" (outside CI only).
fn browser_available() -> bool {
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

async fn connect(driver: &Driver, profile: &Path, downloads: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "safebrowsing.enabled": false,
            },
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session in headless Chromium")
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-ui-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = artifacts_dir().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Polls `f` every 200 ms until it gives `Some`, for at most `secs`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn row_text(c: &Client, section: &str, job_id: &str) -> Option<String> {
    let css = format!("section.{section} tr[data-job-id=\"{job_id}\"]");
    match c.find(Locator::Css(&css)).await {
        Ok(e) => e.text().await.ok(),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_watch_and_download_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let app = common::TestApp::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = app.app.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let base = format!("http://{addr}");

    let work = tempfile::tempdir().unwrap();
    let clip = common::make_video(work.path(), "Attack on Titan.mp4", 3);
    let clip_bytes = std::fs::read(&clip).unwrap();
    let downloads = work.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let driver = start_driver();
    let c = connect(&driver, &work.path().join("profile"), &downloads).await;

    // 1. Upload through the page.
    c.goto(&format!("{base}/upload")).await.unwrap();
    let input = c.find(Locator::Css("input#file")).await.unwrap();
    input.send_keys(&clip.display().to_string()).await.unwrap();
    let title = c.find(Locator::Css("input#title")).await.unwrap();
    assert_eq!(
        title.prop("value").await.unwrap().as_deref(),
        Some("Attack on Titan"),
        "title from the file name"
    );
    screenshot(&c, "1-upload.png").await;
    c.find(Locator::Css("button#start"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let job_id = eventually(60, "the job page after the upload", || async {
        let url = c.current_url().await.ok()?;
        url.path().strip_prefix("/jobs/").map(str::to_owned)
    })
    .await;
    let job = app.backends.jobs.get(&job_id).await.unwrap().unwrap();
    assert_eq!(job.title, "Attack on Titan");
    assert_eq!(
        job.status,
        JobStatus::Uploaded,
        "the page PATCHed the upload as finished"
    );
    assert_eq!(job.source_file_size_bytes, Some(clip_bytes.len() as u64));
    assert_eq!(
        app.backends
            .storage
            .head(&keys::source(&job_id))
            .await
            .unwrap(),
        Some(clip_bytes.len() as u64),
        "the whole file reached storage"
    );

    // 2. Its row on the dashboard, in progress.
    c.goto(&format!("{base}/")).await.unwrap();
    let row = eventually(10, "the in-progress row", || {
        row_text(&c, "in-progress", &job_id)
    })
    .await;
    assert!(
        row.contains("Attack on Titan") && row.contains("uploaded"),
        "{row}"
    );
    screenshot(&c, "2-dashboard-in-progress.png").await;

    // 3. The workers finish it (stand-in through the core stores); the open dashboard
    //    refreshes by itself and moves the row to the completed list.
    let result: Vec<u8> = clip_bytes.iter().rev().copied().collect();
    app.complete_job(&job_id, result.clone()).await;
    let row = eventually(20, "the completed row without a reload", || {
        row_text(&c, "completed", &job_id)
    })
    .await;
    assert!(
        row.contains("Attack on Titan") && row.contains("Download"),
        "{row}"
    );
    screenshot(&c, "3-dashboard-completed.png").await;

    // 4. Download through the job page, saved under the title's name.
    c.goto(&format!("{base}/jobs/{job_id}")).await.unwrap();
    let link = c.find(Locator::Css("a#download")).await.unwrap();
    screenshot(&c, "4-job-page.png").await;
    link.click().await.unwrap();
    let saved = downloads.join("attack-on-titan3d_LR.mp4");
    eventually(30, "the downloaded file", || async {
        (saved.exists() && std::fs::metadata(&saved).ok()?.len() == result.len() as u64)
            .then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        result,
        "the download is the stored result"
    );

    c.close().await.unwrap();
    drop(driver);
}
