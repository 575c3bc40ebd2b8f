//! Object storage for sources, segments and results (S3 on AWS, files under DATA_DIR locally).
//! Objects are streamed, never held whole in memory.

use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

use crate::error::{Error, Result};

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;
pub mod presign;

/// A stream of object bytes.
pub type ByteStream = Pin<Box<dyn AsyncRead + Send>>;

/// A request a browser (or script) makes directly against storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignedRequest {
    /// The URL, signature included.
    pub url: String,
    /// The HTTP method (`PUT` for uploads).
    pub method: String,
    /// Headers the request must carry.
    pub headers: Vec<(String, String)>,
}

/// Stores objects by key.
///
/// # Contract
/// - Keys are relative paths of `/`-separated segments; an empty segment, `.`, `..`, a leading
///   `/`, a backslash or a control character is [`Error::InvalidInput`] ([`validate_key`]).
/// - `put_stream` stores the whole stream under `key` atomically: readers see the old object
///   or the new one, never a part. It returns the byte count. Rewriting a key replaces it.
/// - `get_stream` of a missing key is [`Error::NotFound`].
/// - `get_range(key, start, len)` streams bytes `start..start + len` of the object, fewer where
///   the object ends first, and nothing when `start` is at or past its end or `len` is 0; it
///   seeks (a local file) or asks for only that range (S3's `Range` header), never reading and
///   discarding the bytes before `start`. A missing key is [`Error::NotFound`].
/// - `head` is the object's size, or `None` when missing.
/// - `delete_prefix` removes every object whose key starts with `prefix` (missing is fine).
/// - `presign_upload`/`presign_download` give URLs that work without other credentials until
///   they expire, for that method and key only. `response_content_disposition` makes the
///   download carry that `Content-Disposition` header (the file name a browser saves as).
/// - Objects created under `uploads/` emit an S3-style object-created event to the chunking
///   queue (S3 does it by bucket notification; the local adapter does it itself).
#[async_trait]
pub trait ObjectStorage: Send + Sync + std::fmt::Debug + 'static {
    /// Streams `body` into `key`.
    async fn put_stream(&self, key: &str, body: ByteStream) -> Result<u64>;
    /// Streams the object out.
    async fn get_stream(&self, key: &str) -> Result<ByteStream>;
    /// Streams `len` bytes of the object from byte `start` (see the contract).
    async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<ByteStream>;
    /// The object's size, or `None`.
    async fn head(&self, key: &str) -> Result<Option<u64>>;
    /// Deletes every object under `prefix`.
    async fn delete_prefix(&self, prefix: &str) -> Result<()>;
    /// A URL to PUT the object to.
    async fn presign_upload(&self, key: &str, expires_in: Duration) -> Result<PresignedRequest>;
    /// A URL to GET the object from.
    async fn presign_download(
        &self,
        key: &str,
        expires_in: Duration,
        response_content_disposition: Option<&str>,
    ) -> Result<String>;
}

/// File helpers on top of any [`ObjectStorage`].
#[async_trait]
pub trait ObjectStorageExt: ObjectStorage {
    /// Streams a local file into `key`.
    async fn upload(&self, key: &str, from: &Path) -> Result<u64> {
        let f = tokio::fs::File::open(from)
            .await
            .map_err(|e| Error::io(from, e))?;
        self.put_stream(key, Box::pin(f)).await
    }

    /// Streams `key` into a local file (written whole or not at all).
    async fn download(&self, key: &str, to: &Path) -> Result<u64> {
        let mut src = self.get_stream(key).await?;
        let dir = to.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut f = tokio::fs::File::from_std(std_file);
        let n = tokio::io::copy(&mut src, &mut f)
            .await
            .map_err(|e| Error::io(to, e))?;
        tokio::io::AsyncWriteExt::flush(&mut f)
            .await
            .map_err(|e| Error::io(to, e))?;
        drop(f);
        tmp_path.persist(to).map_err(|e| Error::io(to, e.error))?;
        Ok(n)
    }
}

impl<T: ObjectStorage + ?Sized> ObjectStorageExt for T {}

/// Checks that `key` is a safe relative key (see the [`ObjectStorage`] contract).
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid("object key", format!("{key:?}: {reason}")));
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("absolute keys are not allowed");
    }
    if key.contains('\\') {
        return bad("backslashes are not allowed");
    }
    if key.chars().any(char::is_control) {
        return bad("control characters are not allowed");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("empty, '.' and '..' path segments are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_key;

    #[test]
    fn keys_cannot_escape() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "a/./b",
            "a\\b",
            "a/\0",
            "a/",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["uploads/j/source", "final/j/my movie3d.mp4", "a..b/c"] {
            validate_key(good).unwrap();
        }
    }
}
