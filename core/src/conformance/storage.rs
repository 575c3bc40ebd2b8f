//! ObjectStorage contract tests (and the operator links' contract).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::{unique, Harness};
use crate::model::ChunkingMessage;
use crate::storage::presign::PresignError;
use crate::storage::{ByteStream, ObjectStorageExt};
use crate::Error;

fn bytes(data: &[u8]) -> ByteStream {
    Box::pin(std::io::Cursor::new(data.to_vec()))
}

async fn read_all(h: &dyn Harness, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    h.storage()
        .get_stream(key)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

/// What goes in comes out; `head` tells the size.
pub async fn put_get_head_round_trip(h: &dyn Harness) {
    let s = h.storage();
    let key = format!("conformance/{}/a file.bin", unique("obj"));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(s.put_stream(&key, bytes(&data)).await.unwrap(), 100_000);
    assert_eq!(s.head(&key).await.unwrap(), Some(100_000));
    assert_eq!(read_all(h, &key).await, data);
    // The file helpers go through the same calls.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("copy.bin");
    assert_eq!(s.download(&key, &local).await.unwrap(), 100_000);
    assert_eq!(std::fs::read(&local).unwrap(), data);
    let key2 = format!("{key}.2");
    s.upload(&key2, &local).await.unwrap();
    assert_eq!(read_all(h, &key2).await, data);
}

/// A ranged read gives exactly the asked bytes, fewer at the end, none past it.
pub async fn get_range_reads_only_the_range(h: &dyn Harness) {
    let s = h.storage();
    let key = format!("conformance/{}/ranged.bin", unique("obj"));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    s.put_stream(&key, bytes(&data)).await.unwrap();
    for (start, len, want) in [
        (0u64, 10u64, 0..10usize),
        (50_000, 1_000, 50_000..51_000),
        (99_990, 100, 99_990..100_000),
        (12_345, 0, 0..0),
        (100_000, 5, 0..0),
        (250_000, 5, 0..0),
    ] {
        let mut got = Vec::new();
        s.get_range(&key, start, len)
            .await
            .unwrap_or_else(|e| panic!("range {start}+{len}: {e}"))
            .read_to_end(&mut got)
            .await
            .unwrap();
        assert_eq!(got, data[want].to_vec(), "range {start}+{len}");
    }
    let missing = format!("conformance/{}", unique("missing"));
    assert!(matches!(
        s.get_range(&missing, 0, 10).await,
        Err(Error::NotFound { .. })
    ));
}

/// A missing key is `NotFound` for reads and `None` for head.
pub async fn missing_object_is_not_found(h: &dyn Harness) {
    let key = format!("conformance/{}", unique("missing"));
    assert!(matches!(
        h.storage().get_stream(&key).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(h.storage().head(&key).await.unwrap(), None);
}

/// Keys that could escape the store are refused before any I/O.
pub async fn keys_cannot_escape(h: &dyn Harness) {
    let s = h.storage();
    for bad in ["../escape", "/abs/path", "a/../../b", "a//b", ""] {
        assert!(
            matches!(
                s.put_stream(bad, bytes(b"x")).await,
                Err(Error::InvalidInput { .. })
            ),
            "{bad:?} accepted"
        );
        assert!(matches!(
            s.get_stream(bad).await,
            Err(Error::InvalidInput { .. })
        ));
        assert!(s
            .presign_upload(bad, Duration::from_secs(60))
            .await
            .is_err());
    }
}

/// Rewriting a key replaces the object whole.
pub async fn overwrite_replaces_atomically(h: &dyn Harness) {
    let s = h.storage();
    let key = format!("conformance/{}", unique("over"));
    s.put_stream(&key, bytes(&[1u8; 5000])).await.unwrap();
    s.put_stream(&key, bytes(&[2u8; 10])).await.unwrap();
    assert_eq!(read_all(h, &key).await, vec![2u8; 10]);
}

/// `delete_prefix` removes the prefix's objects and nothing else.
pub async fn delete_prefix_removes_only_the_prefix(h: &dyn Harness) {
    let s = h.storage();
    let base = format!("conformance/{}", unique("del"));
    for k in ["a/1", "a/2", "a/sub/3", "ab/4", "b/5"] {
        s.put_stream(&format!("{base}/{k}"), bytes(b"x"))
            .await
            .unwrap();
    }
    s.delete_prefix(&format!("{base}/a/")).await.unwrap();
    for (k, present) in [
        ("a/1", false),
        ("a/2", false),
        ("a/sub/3", false),
        ("ab/4", true),
        ("b/5", true),
    ] {
        assert_eq!(
            s.head(&format!("{base}/{k}")).await.unwrap().is_some(),
            present,
            "{k}"
        );
    }
    s.delete_prefix(&format!("{base}/nothing-here/"))
        .await
        .unwrap();
}

/// A deterministic pseudo-random stream of `len` bytes that is never held in memory whole.
struct Generated {
    left: u64,
    state: u64,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(64 * 1024) as usize;
        let mut chunk = [0u8; 64 * 1024];
        for word in chunk[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            word.copy_from_slice(&self.state.to_le_bytes()[..word.len()]);
        }
        buf.put_slice(&chunk[..n]);
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A 200 MB object goes up and comes back down without 200 MB of memory.
pub async fn large_object_streams_in_bounded_memory(h: &dyn Harness) {
    const LEN: u64 = 200 * 1024 * 1024;
    let s = h.storage();
    let key = format!("conformance/{}/big.bin", unique("big"));
    reset_peak_rss();
    let before = peak_rss_kib();
    let mut expected = Sha256::new();
    let mut gen = Generated {
        left: LEN,
        state: 0x9E37_79B9_7F4A_7C15,
    };
    // Hash the same stream to know what must come back.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = gen.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        expected.update(&buf[..n]);
    }
    let gen = Generated {
        left: LEN,
        state: 0x9E37_79B9_7F4A_7C15,
    };
    assert_eq!(s.put_stream(&key, Box::pin(gen)).await.unwrap(), LEN);
    assert_eq!(s.head(&key).await.unwrap(), Some(LEN));
    let mut got = Sha256::new();
    let mut stream = s.get_stream(&key).await.unwrap();
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        got.update(&buf[..n]);
    }
    assert_eq!(total, LEN);
    assert_eq!(got.finalize(), expected.finalize(), "content changed");
    if let (Some(b), Some(a)) = (before, peak_rss_kib()) {
        let grew_mib = a.saturating_sub(b) / 1024;
        assert!(
            grew_mib < 100,
            "peak memory grew by {grew_mib} MiB for a 200 MiB object"
        );
    }
    s.delete_prefix(&key).await.unwrap();
}

/// An object created under `uploads/` puts an S3-style event on the chunking queue.
pub async fn upload_under_uploads_emits_event(h: &dyn Harness) {
    let job = unique("job");
    let key = crate::keys::source(&job);
    h.storage()
        .put_stream(&key, bytes(b"video?"))
        .await
        .unwrap();
    let events = h.upload_events();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for m in events.receive(10).await.unwrap() {
            let parsed = ChunkingMessage::parse(&m.body).unwrap();
            events.delete(&m.receipt_handle).await.unwrap();
            if parsed.job_ids().contains(&job) {
                return;
            }
        }
    }
    panic!("no object-created event for {key}");
}

/// Presigned PUT then GET work over HTTP, and the GET carries the content disposition.
pub async fn presigned_round_trip(h: &dyn Harness) {
    let key = format!("conformance/{}/movie.mp4", unique("pre"));
    let put = h
        .storage()
        .presign_upload(&key, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(put.method, "PUT");
    let resp = h
        .http("PUT", &put.url, &put.headers, b"presigned body".to_vec())
        .await
        .unwrap();
    assert!((200..300).contains(&resp.status), "PUT -> {}", resp.status);
    assert_eq!(h.storage().head(&key).await.unwrap(), Some(14));
    let disposition = "attachment; filename=\"attack-on-titan3d.mp4\"";
    let get = h
        .storage()
        .presign_download(&key, Duration::from_secs(300), Some(disposition))
        .await
        .unwrap();
    let resp = h.http("GET", &get, &[], Vec::new()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"presigned body");
    assert_eq!(resp.content_disposition.as_deref(), Some(disposition));
}

/// Where parallax verifies presigned URLs itself: tampered, expired and wrong-method URLs are
/// refused before any byte moves. (S3 verifies its own URLs; emulators may not.) The link
/// expires on the harness's clock ([`Harness::advance`]), at the end: it would hide the other
/// reasons for refusal.
pub async fn presign_rejects_tampered_expired_wrong_method(h: &dyn Harness) {
    let Some(presigner) = h.presigner() else {
        return;
    };
    let key = format!("conformance/{}/x.bin", unique("sig"));
    let put = h
        .storage()
        .presign_upload(&key, Duration::from_secs(300))
        .await
        .unwrap();
    let query = put.url.split_once('?').unwrap().1.to_owned();
    assert!(presigner.verify("PUT", &key, &query).is_ok());
    // Wrong method.
    assert!(presigner.verify("GET", &key, &query).is_err());
    // Another key.
    assert!(presigner.verify("PUT", &format!("{key}x"), &query).is_err());
    // Tampered expiry.
    let far = query.replace("X-Parallax-Expires=", "X-Parallax-Expires=9");
    assert!(presigner.verify("PUT", &key, &far).is_err());
    // Over HTTP, nothing is written by a rejected request.
    let tampered_url = put.url.replace(&key, &format!("{key}.evil"));
    let r = h
        .http("PUT", &tampered_url, &put.headers, b"evil".to_vec())
        .await
        .unwrap();
    assert!(
        r.status == 403 || r.status == 400,
        "tampered PUT -> {}",
        r.status
    );
    assert_eq!(
        h.storage().head(&format!("{key}.evil")).await.unwrap(),
        None
    );
    let r = h.http("GET", &put.url, &[], Vec::new()).await.unwrap();
    assert!(
        r.status == 403 || r.status == 400,
        "wrong-method GET -> {}",
        r.status
    );
    // Expired: good until its five minutes are up, refused after, over HTTP too.
    h.advance(Duration::from_secs(290)).await;
    assert!(presigner.verify("PUT", &key, &query).is_ok());
    h.advance(Duration::from_secs(11)).await;
    assert_eq!(
        presigner.verify("PUT", &key, &query),
        Err(PresignError::Expired)
    );
    let r = h
        .http("PUT", &put.url, &put.headers, b"late".to_vec())
        .await
        .unwrap();
    assert!(
        r.status == 403 || r.status == 400,
        "expired PUT -> {}",
        r.status
    );
    assert_eq!(h.storage().head(&key).await.unwrap(), None);
}

/// Operator links are stable and either both absent or well-formed.
pub async fn links_are_consistent(h: &dyn Harness) {
    let links = h.links();
    let job = unique("job");
    assert_eq!(links.get_job_logs_url(&job), links.get_job_logs_url(&job));
    if let Some(url) = links.get_job_logs_url(&job) {
        assert!(url.starts_with("https://"), "{url}");
        assert!(
            url.contains(&job),
            "logs link does not filter by job: {url}"
        );
    }
    if let Some(url) = links.get_cost_dashboard_url() {
        assert!(url.starts_with("https://"), "{url}");
    }
}
