//! web-ui's public HTTP API, used exactly as the upload page uses it: create a job, PUT the
//! file to the presigned URL, PATCH the job, then poll it and download the result.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

/// A client of one web-ui.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// Where and how to send a job's source.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The presigned URL (absolute).
    pub url: String,
    /// The method (PUT).
    pub method: String,
    /// Headers the request must carry.
    pub headers: Vec<(String, String)>,
}

/// What a job looks like through the API (the fields the fleet's tests read).
#[derive(Debug, Clone)]
pub struct JobState {
    /// The whole JSON.
    pub raw: Value,
}

impl JobState {
    /// `status`.
    pub fn status(&self) -> &str {
        self.raw["status"].as_str().unwrap_or("")
    }
    /// `completed_segments` / `total_segments`.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (
            self.raw["completed_segments"].as_u64().unwrap_or(0),
            self.raw["total_segments"].as_u64(),
        )
    }
    /// The error's code and message when failed.
    pub fn error(&self) -> Option<(String, String)> {
        let e = self.raw.get("error")?;
        Some((
            e["code"].as_str()?.to_owned(),
            e["message"].as_str()?.to_owned(),
        ))
    }
}

impl Client {
    /// A client of the web-ui at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()
                .expect("HTTP client"),
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    async fn json(resp: reqwest::Response, what: &str) -> Result<Value> {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{what}: HTTP {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("{what}: not JSON: {body}"))
    }

    /// Creates a job for `file` (`POST /api/jobs`): its id and where to upload.
    pub async fn create(&self, file: &Path, title: &str, mode: &str) -> Result<(String, Upload)> {
        self.create_with(file, title, mode, json!({})).await
    }

    /// [`Client::create`] with conversion `settings` (a JSON object).
    pub async fn create_with(
        &self,
        file: &Path,
        title: &str,
        mode: &str,
        settings: serde_json::Value,
    ) -> Result<(String, Upload)> {
        self.create_body(
            file,
            json!({ "title": title, "mode": mode, "settings": settings }),
        )
        .await
    }

    /// [`Client::create`] with a whole request `body` (a JSON object; the file's size is
    /// added).
    pub async fn create_body(
        &self,
        file: &Path,
        mut body: serde_json::Value,
    ) -> Result<(String, Upload)> {
        let size = tokio::fs::metadata(file)
            .await
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        body["source_file_size_bytes"] = json!(size);
        let created = Self::json(
            self.http
                .post(self.url("/api/jobs"))
                .json(&body)
                .send()
                .await?,
            "POST /api/jobs",
        )
        .await?;
        let job_id = created["job"]["job_id"]
            .as_str()
            .context("no job id in the answer")?
            .to_owned();
        let upload = &created["upload"];
        let headers = upload["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok((
            job_id,
            Upload {
                url: self.url(upload["url"].as_str().context("no upload URL")?),
                method: upload["method"].as_str().unwrap_or("PUT").to_owned(),
                headers,
            },
        ))
    }

    /// Sends `body` (of `size` bytes) to a presigned upload.
    pub async fn put(&self, upload: &Upload, size: u64, body: reqwest::Body) -> Result<()> {
        let method = reqwest::Method::from_bytes(upload.method.as_bytes())?;
        let mut req = self
            .http
            .request(method, &upload.url)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body);
        for (k, v) in &upload.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.context("uploading the file")?;
        if !resp.status().is_success() {
            bail!(
                "upload: HTTP {}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Streams `file` to a presigned upload, then tells the job the upload is done (`PATCH`).
    pub async fn upload(
        &self,
        job_id: &str,
        upload: &Upload,
        file: &Path,
        title: &str,
    ) -> Result<()> {
        let size = tokio::fs::metadata(file).await?.len();
        let f = tokio::fs::File::open(file).await?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f));
        self.put(upload, size, body).await?;
        self.finish_upload(job_id, title, size).await
    }

    /// `PATCH /api/jobs/{id}` with the title, uploaded_at and the size, as the page does.
    pub async fn finish_upload(&self, job_id: &str, title: &str, size: u64) -> Result<()> {
        Self::json(
            self.http
                .patch(self.url(&format!("/api/jobs/{job_id}")))
                .json(&json!({
                    "title": title,
                    "uploaded_at": chrono::Utc::now(),
                    "source_file_size_bytes": size,
                }))
                .send()
                .await?,
            "PATCH /api/jobs/{id}",
        )
        .await?;
        Ok(())
    }

    /// Creates a job for `file`, uploads it and PATCHes the job, as the upload page does.
    /// Returns the job id.
    pub async fn submit(&self, file: &Path, title: &str, mode: &str) -> Result<String> {
        self.submit_with(file, title, mode, json!({})).await
    }

    /// [`Client::submit`] with conversion `settings` (a JSON object).
    pub async fn submit_with(
        &self,
        file: &Path,
        title: &str,
        mode: &str,
        settings: serde_json::Value,
    ) -> Result<String> {
        let (job_id, upload) = self.create_with(file, title, mode, settings).await?;
        self.upload(&job_id, &upload, file, title).await?;
        Ok(job_id)
    }

    /// Creates a preview of `file` (`"preview": true`), uploads it and PATCHes the job, as the
    /// upload page does with "Preview first". Returns the job id.
    pub async fn submit_preview(&self, file: &Path, title: &str, mode: &str) -> Result<String> {
        let (job_id, upload) = self
            .create_body(
                file,
                json!({ "title": title, "mode": mode, "preview": true }),
            )
            .await?;
        self.upload(&job_id, &upload, file, title).await?;
        Ok(job_id)
    }

    /// `POST /api/jobs/{id}/convert`: "Convert all" from preview `job_id` with `body`'s changes
    /// (a JSON object: `mode`, `settings`, `preset`, `title`). Returns the new job's id.
    pub async fn convert_all(&self, job_id: &str, body: serde_json::Value) -> Result<String> {
        let created = Self::json(
            self.http
                .post(self.url(&format!("/api/jobs/{job_id}/convert")))
                .json(&body)
                .send()
                .await?,
            "POST /api/jobs/{id}/convert",
        )
        .await?;
        Ok(created["job"]["job_id"]
            .as_str()
            .context("no job id in the answer")?
            .to_owned())
    }

    /// `POST /api/jobs/{id}/rerender`: renders completed job `job_id` again from its stored
    /// depth as a new job in `mode` with `settings` (a JSON object). Returns the new job's id.
    pub async fn rerender(
        &self,
        job_id: &str,
        mode: &str,
        settings: serde_json::Value,
    ) -> Result<String> {
        let created = Self::json(
            self.http
                .post(self.url(&format!("/api/jobs/{job_id}/rerender")))
                .json(&json!({ "mode": mode, "settings": settings }))
                .send()
                .await?,
            "POST /api/jobs/{id}/rerender",
        )
        .await?;
        Ok(created["job"]["job_id"]
            .as_str()
            .context("no job id in the answer")?
            .to_owned())
    }

    /// `GET /api/jobs/{id}`.
    pub async fn job(&self, job_id: &str) -> Result<JobState> {
        let raw = Self::json(
            self.http
                .get(self.url(&format!("/api/jobs/{job_id}")))
                .send()
                .await?,
            "GET /api/jobs/{id}",
        )
        .await?;
        Ok(JobState { raw })
    }

    /// Polls the job until it is completed or failed, calling `on_change` when its status or
    /// progress changes. Fails after `timeout`.
    pub async fn wait(
        &self,
        job_id: &str,
        timeout: Duration,
        mut on_change: impl FnMut(&JobState),
    ) -> Result<JobState> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            let state = self.job(job_id).await?;
            let key = (state.status().to_owned(), state.progress());
            if last.as_ref() != Some(&key) {
                on_change(&state);
                last = Some(key);
            }
            if matches!(state.status(), "completed" | "failed") {
                return Ok(state);
            }
            if Instant::now() > deadline {
                bail!("job {job_id} still {} after {timeout:?}", state.status());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Downloads the result through `GET /api/jobs/{id}/download` (a redirect to a presigned
    /// URL) into `dir`, named as the server's Content-Disposition says. Returns the path.
    pub async fn download(&self, job_id: &str, dir: &Path) -> Result<PathBuf> {
        let mut resp = self
            .http
            .get(self.url(&format!("/api/jobs/{job_id}/download")))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "download: HTTP {}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        let name = resp
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("filename=\"").nth(1))
            .and_then(|v| v.split('"').next())
            .filter(|n| !n.is_empty() && !n.contains('/') && !n.contains(".."))
            .unwrap_or("result.mp4")
            .to_owned();
        tokio::fs::create_dir_all(dir).await?;
        let path = dir.join(name);
        let mut f = tokio::fs::File::create(&path).await?;
        while let Some(chunk) = resp.chunk().await? {
            tokio::io::AsyncWriteExt::write_all(&mut f, &chunk).await?;
        }
        tokio::io::AsyncWriteExt::flush(&mut f).await?;
        Ok(path)
    }
}
