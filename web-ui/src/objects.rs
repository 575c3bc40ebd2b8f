//! `/objects/{key}`: the local storage adapter's presigned URLs, served by web-ui. The
//! signature (method, key, expiry, download name) is checked before any byte of the object is
//! read or written; uploads are streamed to storage and cut off at the configured size limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use parallax_core::Error as CoreError;
use tokio::io::AsyncReadExt;

use crate::api::create::too_large;
use crate::error::{AppError, AppResult};
use crate::AppState;

fn verify(
    state: &AppState,
    method: &Method,
    key: &str,
    query: Option<&str>,
) -> AppResult<Option<String>> {
    let presigner = state.presigner.as_ref().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "there is nothing at this address",
        )
    })?;
    // A HEAD is allowed wherever the GET is.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    match presigner.verify(method, key, query.unwrap_or("")) {
        Ok(v) => Ok(v.response_content_disposition),
        Err(e) => {
            tracing::info!(key, error = %e, "presigned request refused");
            Err(AppError::forbidden(
                "bad-signature",
                format!("this link is not valid: {e}"),
            ))
        }
    }
}

/// `PUT /objects/{key}`: a presigned upload.
pub async fn put_object(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> AppResult<Response> {
    verify(&state, req.method(), &key, query.as_deref())?;
    let max = state.config.max_upload_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let seen = Arc::new(AtomicU64::new(0));
    let over = Arc::new(AtomicBool::new(false));
    let (seen2, over2) = (seen.clone(), over.clone());
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other)
        .and_then(move |chunk| {
            let total = seen2.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            let res = if total > max {
                over2.store(true, Ordering::Relaxed);
                Err(std::io::Error::other("upload larger than the limit"))
            } else {
                Ok(chunk)
            };
            std::future::ready(res)
        });
    let reader = tokio_util::io::StreamReader::new(stream);
    match state.storage.put_stream(&key, Box::pin(reader)).await {
        Ok(n) => {
            tracing::info!(key, bytes = n, "object stored");
            Ok(StatusCode::OK.into_response())
        }
        Err(_) if over.load(Ordering::Relaxed) => Err(too_large(max)),
        Err(CoreError::Io { .. }) if seen.load(Ordering::Relaxed) > 0 => {
            // The client went away mid-way (or the disk failed); nothing was stored.
            tracing::warn!(key, "upload interrupted");
            Err(AppError::bad_request(
                "upload-interrupted",
                "the upload did not complete; nothing was stored, please try again",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4" | "m4v") => "video/mp4",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A single `bytes=a-b` range within `size`, or `None` for the whole object.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(r) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = r.strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer the whole object
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
        }
        (s, "") => (s.parse().map_err(|_| ())?, size.checked_sub(1).ok_or(())?),
        (s, e) => {
            let e: u64 = e.parse().map_err(|_| ())?;
            (s.parse().map_err(|_| ())?, e.min(size.saturating_sub(1)))
        }
    };
    if start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `GET /objects/{key}`: a presigned download (with the signed `Content-Disposition`).
pub async fn get_object(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> AppResult<Response> {
    let disposition = verify(&state, &method, &key, query.as_deref())?;
    let not_found = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "that object does not exist",
        )
    };
    let size = state.storage.head(&key).await?.ok_or_else(not_found)?;
    let range = match parse_range(&headers, size) {
        Ok(r) => r,
        Err(()) => {
            let mut resp = AppError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad-range",
                "the requested byte range is outside the object",
            )
            .into_response();
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return Ok(resp);
        }
    };
    let (status, len) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, end - start + 1),
        None => (StatusCode::OK, size),
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        // A range is read from its start (a seek, or S3's own Range), never read up to it.
        let opened = match range {
            Some((start, _)) => state.storage.get_range(&key, start, len).await,
            None => state.storage.get_stream(&key).await,
        };
        let stream = match opened {
            Ok(s) => s,
            Err(CoreError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        Body::from_stream(tokio_util::io::ReaderStream::new(stream.take(len)))
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&key)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    if let Some((start, end)) = range {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")).expect("ascii"),
        );
    }
    if let Some(d) = disposition {
        if let Ok(v) = HeaderValue::from_str(&d) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}
