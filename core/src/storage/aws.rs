//! ObjectStorage on S3. Uploads stream: an object smaller than one part goes up in one
//! PutObject, a larger one as a multipart upload of [`PART_SIZE`] parts read one at a time, so
//! memory stays at about one part whatever the object's size (a failed multipart upload is
//! aborted so that no orphaned parts are billed). Downloads stream the response body.
//! Presigned URLs are S3's own (SigV4 query signing); S3 checks them. Object-created events
//! for `uploads/` come from the bucket's notification configuration, set where the bucket is
//! created (infra/), not from this adapter.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use tokio::io::AsyncReadExt;

use super::{validate_key, ByteStream, ObjectStorage, PresignedRequest};
use crate::aws::sdk_error;
use crate::error::{Error, Result};

/// Size of one multipart part (S3 wants at least 5 MiB for every part but the last; 8 MiB
/// parts allow objects up to 80 GB within S3's 10,000 parts).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Objects in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStorage {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3ObjectStorage {
    /// Storage in `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    async fn multipart(&self, key: &str, first: Vec<u8>, body: &mut ByteStream) -> Result<u64> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("s3", format!("start multipart upload of {key}"), e))?;
        let upload_id = created
            .upload_id
            .ok_or_else(|| Error::backend("s3", "CreateMultipartUpload returned no upload id"))?;
        let result = self.upload_parts(key, &upload_id, first, body).await;
        if result.is_err() {
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = abort {
                tracing::warn!(key, error = %aws_sdk_s3::error::DisplayErrorContext(&e), "could not abort a failed multipart upload; the bucket's lifecycle rule removes its parts");
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Vec<u8>,
        body: &mut ByteStream,
    ) -> Result<u64> {
        let mut parts = Vec::new();
        let mut total = 0u64;
        let mut buf = first;
        let mut number = 1;
        while !buf.is_empty() {
            total += buf.len() as u64;
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(S3Body::from(buf))
                .send()
                .await
                .map_err(|e| sdk_error("s3", format!("upload part {number} of {key}"), e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag)
                    .set_checksum_crc32(out.checksum_crc32)
                    .set_checksum_crc32_c(out.checksum_crc32_c)
                    .set_checksum_crc64_nvme(out.checksum_crc64_nvme)
                    .set_checksum_sha1(out.checksum_sha1)
                    .set_checksum_sha256(out.checksum_sha256)
                    .build(),
            );
            number += 1;
            buf = read_part(body, key).await?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error("s3", format!("complete multipart upload of {key}"), e))?;
        Ok(total)
    }
}

/// Reads up to [`PART_SIZE`] bytes (fewer only at the end of the stream).
async fn read_part(body: &mut ByteStream, key: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(PART_SIZE);
    while buf.len() < PART_SIZE {
        let n = (&mut *body)
            .take((PART_SIZE - buf.len()) as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| Error::io(key, e))?;
        if n == 0 {
            break;
        }
    }
    Ok(buf)
}

fn presigning(expires_in: Duration) -> Result<PresigningConfig> {
    PresigningConfig::expires_in(expires_in).map_err(|e| {
        Error::invalid(
            "expiry",
            format!("{expires_in:?}: {e} (S3 allows up to 7 days)"),
        )
    })
}

#[async_trait]
impl ObjectStorage for S3ObjectStorage {
    async fn put_stream(&self, key: &str, mut body: ByteStream) -> Result<u64> {
        validate_key(key)?;
        let first = read_part(&mut body, key).await?;
        if first.len() == PART_SIZE {
            return self.multipart(key, first, &mut body).await;
        }
        let len = first.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(S3Body::from(first))
            .send()
            .await
            .map_err(|e| sdk_error("s3", format!("put {key}"), e))?;
        Ok(len)
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        validate_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Box::pin(out.body.into_async_read())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(Error::NotFound {
                    what: "object",
                    id: key.to_owned(),
                })
            }
            Err(e) => Err(sdk_error("s3", format!("get {key}"), e)),
        }
    }

    async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<ByteStream> {
        validate_key(key)?;
        let empty = || -> ByteStream { Box::pin(tokio::io::empty()) };
        if len == 0 {
            // S3 has no empty range; the object must still exist.
            return match self.head(key).await? {
                Some(_) => Ok(empty()),
                None => Err(Error::NotFound {
                    what: "object",
                    id: key.to_owned(),
                }),
            };
        }
        let end = start.saturating_add(len - 1);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{end}"))
            .send()
            .await
        {
            Ok(out) => Ok(Box::pin(out.body.into_async_read().take(len))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(Error::NotFound {
                    what: "object",
                    id: key.to_owned(),
                })
            }
            // 416: `start` is at or past the end of an existing object.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => Ok(empty()),
            Err(e) => Err(sdk_error("s3", format!("get {key} bytes {start}-{end}"), e)),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        validate_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length.unwrap_or(0).max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(sdk_error("s3", format!("head {key}"), e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        // The whole bucket is never a prefix: an empty or malformed one is refused.
        validate_key(prefix.trim_end_matches('/'))?;
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("s3", format!("list {prefix}"), e))?;
            let ids = page
                .contents
                .unwrap_or_default()
                .into_iter()
                .filter_map(|o| o.key)
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::backend("s3", e))?;
            if !ids.is_empty() {
                let n = ids.len();
                let out = self
                    .client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(
                        Delete::builder()
                            .set_objects(Some(ids))
                            .quiet(true)
                            .build()
                            .map_err(|e| Error::backend("s3", e))?,
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_error("s3", format!("delete {n} objects under {prefix}"), e)
                    })?;
                if let Some(first) = out.errors.as_deref().and_then(|e| e.first()) {
                    return Err(Error::backend(
                        "s3",
                        format!(
                            "{} objects under {prefix} were not deleted, e.g. {}: {}",
                            out.errors.as_deref().map_or(0, <[_]>::len),
                            first.key.as_deref().unwrap_or("?"),
                            first.message.as_deref().unwrap_or("?")
                        ),
                    ));
                }
            }
            match page.next_continuation_token {
                Some(t) if page.is_truncated == Some(true) => token = Some(t),
                _ => return Ok(()),
            }
        }
    }

    async fn presign_upload(&self, key: &str, expires_in: Duration) -> Result<PresignedRequest> {
        validate_key(key)?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(|e| sdk_error("s3", format!("presign upload of {key}"), e))?;
        Ok(PresignedRequest {
            url: req.uri().to_owned(),
            method: req.method().to_owned(),
            headers: req
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    async fn presign_download(
        &self,
        key: &str,
        expires_in: Duration,
        response_content_disposition: Option<&str>,
    ) -> Result<String> {
        validate_key(key)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_response_content_disposition(response_content_disposition.map(str::to_owned))
            .presigned(presigning(expires_in)?)
            .await
            .map_err(|e| sdk_error("s3", format!("presign download of {key}"), e))?;
        Ok(req.uri().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> S3ObjectStorage {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .build();
        S3ObjectStorage::new(aws_sdk_s3::Client::from_conf(conf), "px-bucket")
    }

    /// A browser cannot compute a checksum for a URL signed before it picked the file: the
    /// upload URL must not sign one (emulators do not check, real S3 would refuse the PUT).
    #[tokio::test]
    async fn presigned_upload_signs_no_checksum_and_expires() {
        let req = storage()
            .presign_upload("uploads/j/source", Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(req.method, "PUT");
        let url = req.url.to_ascii_lowercase();
        assert!(
            url.starts_with("https://px-bucket.s3.eu-west-1.amazonaws.com/uploads/j/source?"),
            "{url}"
        );
        assert!(url.contains("x-amz-expires=300"), "{url}");
        assert!(!url.contains("checksum"), "{url}");
        assert!(req
            .headers
            .iter()
            .all(|(k, _)| !k.to_ascii_lowercase().contains("checksum")));
    }

    #[tokio::test]
    async fn presigned_download_carries_the_disposition_and_bad_expiry_is_refused() {
        let s = storage();
        let url = s
            .presign_download(
                "final/j/my movie3d.mp4",
                Duration::from_secs(60),
                Some("attachment; filename=\"my movie3d.mp4\""),
            )
            .await
            .unwrap();
        assert!(
            url.contains("response-content-disposition=attachment%3B"),
            "{url}"
        );
        assert!(matches!(
            s.presign_download("final/j/x", Duration::from_secs(8 * 24 * 3600), None)
                .await,
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            s.presign_upload("../x", Duration::from_secs(60)).await,
            Err(Error::InvalidInput { .. })
        ));
    }
}
