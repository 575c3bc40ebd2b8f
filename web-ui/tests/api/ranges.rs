//! Byte ranges of stored objects are read from their start, not skipped to.

use axum::body::Body;
use axum::http::{Method, StatusCode};

use crate::common::{req, TestApp};

/// Storage that records how objects are read.
#[derive(Debug)]
struct Recording {
    inner: std::sync::Arc<dyn parallax_core::storage::ObjectStorage>,
    calls: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl parallax_core::storage::ObjectStorage for Recording {
    async fn put_stream(
        &self,
        key: &str,
        body: parallax_core::storage::ByteStream,
    ) -> parallax_core::Result<u64> {
        self.inner.put_stream(key, body).await
    }
    async fn get_stream(
        &self,
        key: &str,
    ) -> parallax_core::Result<parallax_core::storage::ByteStream> {
        self.calls.lock().unwrap().push(format!("get {key}"));
        self.inner.get_stream(key).await
    }
    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> parallax_core::Result<parallax_core::storage::ByteStream> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("range {key} {start}+{len}"));
        self.inner.get_range(key, start, len).await
    }
    async fn head(&self, key: &str) -> parallax_core::Result<Option<u64>> {
        self.inner.head(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> parallax_core::Result<()> {
        self.inner.delete_prefix(prefix).await
    }
    async fn presign_upload(
        &self,
        key: &str,
        expires_in: std::time::Duration,
    ) -> parallax_core::Result<parallax_core::storage::PresignedRequest> {
        self.inner.presign_upload(key, expires_in).await
    }
    async fn presign_download(
        &self,
        key: &str,
        expires_in: std::time::Duration,
        disposition: Option<&str>,
    ) -> parallax_core::Result<String> {
        self.inner
            .presign_download(key, expires_in, disposition)
            .await
    }
}

#[tokio::test]
async fn ranges_are_read_from_their_start_not_skipped_to() {
    let base = TestApp::new().await;
    let recording = std::sync::Arc::new(Recording {
        inner: base.backends.storage.clone(),
        calls: std::sync::Mutex::new(Vec::new()),
    });
    let mut state = base.state.clone();
    state.storage = recording.clone();
    let app = TestApp {
        app: web_ui::app(state.clone()),
        state,
        ..base
    };
    let (id, _) = app.create("Seek").await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let key = app.complete_job(&id, data.clone()).await;
    let location = app
        .get(&format!("/api/jobs/{id}/download"))
        .await
        .header("location")
        .unwrap()
        .to_owned();
    recording.calls.lock().unwrap().clear();
    for (range, start, end) in [
        ("bytes=150000-150099", 150_000usize, 150_099usize),
        ("bytes=199990-", 199_990, 199_999),
        ("bytes=-5", 199_995, 199_999),
    ] {
        let r = app
            .send(req(
                Method::GET,
                &location,
                &[("range", range)],
                Body::empty(),
            ))
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(r.body.as_ref(), &data[start..=end], "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/200000").as_str())
        );
    }
    assert_eq!(
        *recording.calls.lock().unwrap(),
        vec![
            format!("range {key} 150000+100"),
            format!("range {key} 199990+10"),
            format!("range {key} 199995+5"),
        ],
        "each range is one ranged read, never a whole stream read and skipped"
    );
    // A whole download is one plain stream.
    let r = app.get(&location).await;
    assert_eq!(r.body.len(), data.len());
    assert_eq!(
        recording.calls.lock().unwrap().last().unwrap(),
        &format!("get {key}")
    );
}
