//! Shared helpers of the web-ui tests: an app on a fresh DATA_DIR, one-shot requests, generated
//! media, stored objects, a stand-in for the workers and server-sent event streams
//! ([`events`]).
#![allow(dead_code)]

pub mod events;

use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use parallax_core::backends::Backends;
use parallax_core::keys;
use parallax_core::model::{
    ConversionSettings, Job, JobStatus, JobUpdate, SegmentCompletion, StereoMode,
};
use parallax_testkit::media::{make_clip, ClipSpec};
use parallax_testkit::TempBackends;
use tower::ServiceExt as _;
use web_ui::{AppState, WebConfig};

/// The web-ui on local adapters in a temporary DATA_DIR (`backends.path()`).
pub struct TestApp {
    pub backends: TempBackends,
    pub state: AppState,
    pub app: Router,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The `{"error": {"code"}}` of a JSON error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text()))
            .to_owned()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(WebConfig::default()).await
    }

    pub async fn with_config(config: WebConfig) -> Self {
        let backends = TempBackends::new().await;
        let state = AppState::new(&backends, config);
        let app = web_ui::app(state.clone());
        Self {
            backends,
            state,
            app,
        }
    }

    /// Sends one request through the router.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.send(req(Method::GET, uri, &[], Body::empty())).await
    }

    /// A JSON request as a script makes it (no cookies, no Origin).
    pub async fn json(&self, method: Method, uri: &str, body: serde_json::Value) -> Resp {
        self.send(req(
            method,
            uri,
            &[("content-type", "application/json")],
            Body::from(body.to_string()),
        ))
        .await
    }

    /// Creates a job through the API and returns (job_id, upload url).
    pub async fn create(&self, title: &str) -> (String, String) {
        let r = self
            .json(
                Method::POST,
                "/api/jobs",
                serde_json::json!({ "title": title }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        (
            v["job"]["job_id"].as_str().unwrap().to_owned(),
            v["upload"]["url"].as_str().unwrap().to_owned(),
        )
    }

    /// Puts a job straight into the store (no API), in the given state.
    pub async fn seed(&self, title: &str, status: JobStatus) -> Job {
        let job = Job::new(title, StereoMode::FullSbs, ConversionSettings::default());
        self.backends.jobs.put(&job).await.unwrap();
        if status == JobStatus::AwaitingUpload {
            return job;
        }
        let mut u = JobUpdate::status(status);
        u.uploaded_at = Some(Utc::now() - chrono::Duration::seconds(100));
        u.source_file_size_bytes = Some(20_000_000);
        match status {
            JobStatus::Failed => {
                u.error = Some(parallax_core::model::JobError::new(
                    "not-a-video",
                    "The file is not a video.",
                ))
            }
            JobStatus::Completed => {
                u.completed_at = Some(Utc::now());
                u.total_segments = Some(2);
                u.output_key = Some(keys::final_output(&job.job_id, "out_LRF_Full_SBS.mp4"));
            }
            _ => {}
        }
        self.backends.jobs.update(&job.job_id, &u).await.unwrap()
    }

    /// The job ids the chunking queue has been asked to start (by an upload's or a marker's
    /// storage event), draining it.
    pub async fn started(&self) -> Vec<String> {
        let q = &self
            .backends
            .queue(parallax_core::keys::QueueName::Chunking)
            .receiver;
        let mut ids = Vec::new();
        loop {
            let got = q.receive(10).await.unwrap();
            if got.is_empty() {
                return ids;
            }
            for m in got {
                ids.extend(
                    parallax_core::model::ChunkingMessage::parse(&m.body)
                        .unwrap()
                        .job_ids(),
                );
                q.delete(&m.receipt_handle).await.unwrap();
            }
        }
    }

    /// PUTs `bytes` to `url` (a presigned upload URL) through the router, as a browser does.
    pub async fn put_bytes(&self, url: &str, bytes: Vec<u8>) -> Resp {
        self.send(req(Method::PUT, url, &[], Body::from(bytes)))
            .await
    }

    /// Stores `bytes` as object `key`, as a worker does (no API).
    pub async fn put_object(&self, key: &str, bytes: impl Into<Vec<u8>>) {
        put_object(&self.backends, key, bytes).await;
    }

    /// Stores the file at `path` as object `key`.
    pub async fn put_file(&self, key: &str, path: &Path) {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        self.put_object(key, bytes).await;
    }

    /// Records segment `index` of `job_id` as done with `frames` frames (its completion only;
    /// the output object is the caller's).
    pub async fn record_segment(&self, job_id: &str, index: u32, frames: u64) {
        record_segment(&self.backends, job_id, index, frames).await;
    }

    /// Stands in for the workers: stores `result` as the job's output, records its segments
    /// and completes the job through the core stores.
    pub async fn complete_job(&self, job_id: &str, result: Vec<u8>) -> String {
        complete_job(&self.backends, job_id, result).await
    }
}

/// Stands in for the workers on any adapter set (see [`TestApp::complete_job`]).
pub async fn complete_job(backends: &Backends, job_id: &str, result: Vec<u8>) -> String {
    let key = keys::final_output(job_id, "result_LRF_Full_SBS.mp4");
    put_object(backends, &key, result).await;
    let mut u = JobUpdate::status(JobStatus::ChunkingComplete);
    u.total_segments = Some(2);
    backends.jobs.update(job_id, &u).await.unwrap();
    for i in 0..2 {
        record_segment(backends, job_id, i, 10).await;
    }
    let mut u = JobUpdate::status(JobStatus::Completed);
    u.completed_at = Some(Utc::now());
    u.output_key = Some(key.clone());
    backends.jobs.update(job_id, &u).await.unwrap();
    key
}

/// Stores `bytes` as object `key` on any adapter set (see [`TestApp::put_object`]).
pub async fn put_object(backends: &Backends, key: &str, bytes: impl Into<Vec<u8>>) {
    backends
        .storage
        .put_stream(key, Box::pin(std::io::Cursor::new(bytes.into())))
        .await
        .unwrap_or_else(|e| panic!("storing {key}: {e:#}"));
}

/// Records a segment's completion on any adapter set (see [`TestApp::record_segment`]).
pub async fn record_segment(backends: &Backends, job_id: &str, index: u32, frames: u64) {
    backends
        .completions
        .put(&SegmentCompletion {
            job_id: job_id.to_owned(),
            segment_index: index,
            output_uri: keys::output(job_id, index),
            completed_at: Utc::now(),
            frame_count: Some(frames),
        })
        .await
        .unwrap();
}

/// A request with headers.
pub fn req(method: Method, uri: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body).unwrap()
}

/// `req` as if it came over a connection from `peer` (what `web-ui`'s server adds).
pub fn from_peer(mut req: Request<Body>, peer: &str) -> Request<Body> {
    let addr: std::net::SocketAddr = peer.parse().expect("a socket address");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    req
}

/// A short test clip (testsrc2 video + sine audio, 320x180 at 15 fps) made with the test
/// kit's clip maker.
pub async fn make_video(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let out = dir.join(name);
    let spec = ClipSpec {
        fps: "15".into(),
        preset: "ultrafast".into(),
        ..ClipSpec::small(f64::from(seconds))
    };
    make_clip(&out, &spec)
        .await
        .unwrap_or_else(|e| panic!("making the test clip {name}: {e:#}"));
    out
}
