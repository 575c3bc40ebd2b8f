//! A real browser on the web-ui's pages: the app served on a loopback port with a headless
//! Chromium session on it ([`Session`]), and the upload page driven as a person does
//! ([`UploadPage`]). Included with `#[path = "common/pages.rs"] mod pages;` (from a test
//! directory's `main.rs`, `"../common/pages.rs"`) by the tests that drive a browser, beside
//! `chromium` and `common`.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use fantoccini::{Client, Locator};
use parallax_testkit::wait_until;

use crate::chromium::{self, Driver};
use crate::common::TestApp;

/// `app`'s router served on a free loopback port, for a browser; its base URL.
pub async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.app.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// One browser test's set-up: the app served, chromedriver, a headless Chromium session with
/// its own profile, and a scratch folder (`work`, downloads saved in `work/downloads`).
pub struct Session {
    pub app: TestApp,
    /// The served app's base URL.
    pub base: String,
    pub work: tempfile::TempDir,
    /// The browser.
    pub c: Client,
    driver: Driver,
}

impl Session {
    /// Serves `app` and opens a browser on it; `None` (the test skips) when Chromium is
    /// missing outside CI.
    pub async fn start(app: TestApp) -> Option<Self> {
        if !chromium::available() {
            return None;
        }
        let base = serve(&app).await;
        let work = tempfile::tempdir().unwrap();
        let downloads = work.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let driver = chromium::start_driver();
        let c = chromium::connect_with_downloads(
            &driver,
            &work.path().join("profile"),
            Some(&downloads),
        )
        .await;
        Some(Self {
            app,
            base,
            work,
            c,
            driver,
        })
    }

    /// Where the browser saves downloads.
    pub fn downloads(&self) -> std::path::PathBuf {
        self.work.path().join("downloads")
    }

    /// Goes to `path` (`/jobs/..`) on the app.
    pub async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// Opens job `id`'s page and waits until its 3D viewer offers its views (the script has
    /// found WebGL).
    pub async fn open_viewer(&self, id: &str) {
        self.goto(&format!("/jobs/{id}")).await;
        wait_until(Duration::from_secs(20), "the viewer's buttons", || async {
            self.c
                .find(Locator::Css("button#view-anaglyph"))
                .await
                .map_err(|e| e.to_string())
        })
        .await;
    }

    /// Ends the browser session and chromedriver.
    pub async fn close(self) {
        self.c.close().await.unwrap();
        drop(self.driver);
    }
}

/// Runs `script` in the page; what it returns.
pub async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.expect("script runs")
}

/// Clicks the element `css` finds.
pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The upload page, used as a person uses it: pick files, click Start.
pub struct UploadPage<'a> {
    c: &'a Client,
}

impl<'a> UploadPage<'a> {
    /// Opens the upload page of the app at `base`.
    pub async fn open(c: &'a Client, base: &str) -> Self {
        c.goto(&format!("{base}/upload")).await.unwrap();
        Self { c }
    }

    /// Picks `files` in the file input (several at once, as a multiple choice does).
    pub async fn pick(&self, files: &[&Path]) {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let input = self.c.find(Locator::Css("input#file")).await.unwrap();
        input.send_keys(&names.join("\n")).await.unwrap();
    }

    /// Clicks Start.
    pub async fn start(&self) {
        self.c
            .find(Locator::Css("button#start"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Clicks Start and follows the one upload to its job page, where the page goes once the
    /// file is stored; that job's id.
    pub async fn start_and_follow(&self) -> String {
        self.start().await;
        job_page(self.c, "the job page after the upload", None).await
    }

    /// What the page says about the uploads.
    pub async fn status(&self) -> String {
        self.c
            .find(Locator::Css("#upload-status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap_or_default()
    }
}

/// Waits until the browser shows a job page (other than `except`'s); that job's id.
pub async fn job_page(c: &Client, what: &str, except: Option<&str>) -> String {
    wait_until(Duration::from_secs(60), what, || async {
        let url = c.current_url().await.map_err(|e| e.to_string())?;
        url.path()
            .strip_prefix("/jobs/")
            .filter(|id| Some(*id) != except)
            .map(str::to_owned)
            .ok_or_else(|| format!("at {url}"))
    })
    .await
}
