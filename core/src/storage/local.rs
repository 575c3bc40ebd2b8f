//! ObjectStorage on the filesystem under DATA_DIR. Writes go to a temp file and are renamed
//! into place; presigned URLs point at web-ui's `/objects/{key}` endpoint, which checks them
//! with [`Presigner::verify`](super::presign::Presigner::verify). URLs expire on the
//! presigner's clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::presign::Presigner;
use super::{validate_key, ByteStream, ObjectStorage, PresignedRequest};
use crate::error::{Error, Result};
use crate::keys::UPLOADS_PREFIX;
use crate::model::S3EventNotification;
use crate::queue::QueueSender;

/// The bucket name local object-created events carry.
pub const LOCAL_BUCKET: &str = "parallax-local";

/// Files under a root folder.
#[derive(Debug, Clone)]
pub struct LocalObjectStorage {
    root: PathBuf,
    tmp: PathBuf,
    public_url: Option<String>,
    presigner: Presigner,
    notify: Option<Arc<dyn QueueSender>>,
}

impl LocalObjectStorage {
    /// Objects under `data_dir/objects`. Presigned URLs start with `public_url` (e.g.
    /// `http://127.0.0.1:8080`), or are relative (`/objects/...`) when it is `None`. Objects
    /// created under `uploads/` send an object-created event to `notify`.
    pub fn new(
        data_dir: &Path,
        public_url: Option<String>,
        presigner: Presigner,
        notify: Option<Arc<dyn QueueSender>>,
    ) -> Result<Self> {
        let root = data_dir.join("objects");
        let tmp = data_dir.join("tmp");
        for d in [&root, &tmp] {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        Ok(Self {
            root,
            tmp,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            presigner,
            notify,
        })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn url_of(&self, key: &str, query: &str) -> String {
        let encoded: String = key
            .split('/')
            .map(|seg| percent_encoding::utf8_percent_encode(seg, SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/");
        format!(
            "{}/objects/{encoded}?{query}",
            self.public_url.as_deref().unwrap_or("")
        )
    }
}

/// Path segments keep RFC 3986's unreserved characters as they are and encode the rest.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[async_trait]
impl ObjectStorage for LocalObjectStorage {
    async fn put_stream(&self, key: &str, mut body: ByteStream) -> Result<u64> {
        let path = self.path_of(key)?;
        let dir = path.parent().expect("validated keys have a parent");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::io(dir, e))?;
        let tmp =
            tempfile::NamedTempFile::new_in(&self.tmp).map_err(|e| Error::io(&self.tmp, e))?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut f = tokio::fs::File::from_std(std_file);
        let n = tokio::io::copy(&mut body, &mut f)
            .await
            .map_err(|e| Error::io(&path, e))?;
        f.flush().await.map_err(|e| Error::io(&path, e))?;
        f.sync_all().await.map_err(|e| Error::io(&path, e))?;
        drop(f);
        tmp_path
            .persist(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        if let (Some(q), true) = (&self.notify, key.starts_with(UPLOADS_PREFIX)) {
            let event = S3EventNotification::object_created(LOCAL_BUCKET, key, n);
            let body = serde_json::to_string(&event).map_err(|e| Error::backend("json", e))?;
            q.send(&body).await?;
        }
        Ok(n)
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let path = self.path_of(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) if path.is_file() => Ok(Box::pin(f)),
            Ok(_) => Err(Error::NotFound {
                what: "object",
                id: key.to_owned(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                what: "object",
                id: key.to_owned(),
            }),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<ByteStream> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path_of(key)?;
        let not_found = || Error::NotFound {
            what: "object",
            id: key.to_owned(),
        };
        let mut f = match tokio::fs::File::open(&path).await {
            Ok(f) if path.is_file() => f,
            Ok(_) => return Err(not_found()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        // Seeking past the end is allowed; reads there give nothing, as the contract says.
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| Error::io(&path, e))?;
        Ok(Box::pin(f.take(len)))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let trimmed = prefix.trim_end_matches('/');
        validate_key(trimmed)?;
        let base = self.root.join(trimmed);
        // `prefix` names a folder ("outputs/j/") or the start of names inside one ("outputs/j/00").
        let (dir, stem) = if prefix.ends_with('/') {
            (base, String::new())
        } else {
            let stem = base
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (base.parent().unwrap_or(&self.root).to_owned(), stem)
        };
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(&dir, e))? {
            if !entry.file_name().to_string_lossy().starts_with(&stem) {
                continue;
            }
            let p = entry.path();
            let ft = entry.file_type().await.map_err(|e| Error::io(&p, e))?;
            let res = if ft.is_dir() {
                tokio::fs::remove_dir_all(&p).await
            } else {
                tokio::fs::remove_file(&p).await
            };
            match res {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
        Ok(())
    }

    async fn presign_upload(&self, key: &str, expires_in: Duration) -> Result<PresignedRequest> {
        validate_key(key)?;
        let q = self
            .presigner
            .sign_query("PUT", key, self.presigner.expiry(expires_in), None);
        Ok(PresignedRequest {
            url: self.url_of(key, &q),
            method: "PUT".to_owned(),
            headers: vec![(
                "Content-Type".to_owned(),
                "application/octet-stream".to_owned(),
            )],
        })
    }

    async fn presign_download(
        &self,
        key: &str,
        expires_in: Duration,
        response_content_disposition: Option<&str>,
    ) -> Result<String> {
        validate_key(key)?;
        let expires = self.presigner.expiry(expires_in);
        let q = self
            .presigner
            .sign_query("GET", key, expires, response_content_disposition);
        Ok(self.url_of(key, &q))
    }
}
