//! Watching a job while it converts. The video-worker stores, next to every converted segment,
//! a copy of its video stream remuxed into fragmented MP4 ([`keys::playable`]); these routes
//! list a job's finished copies and serve them from the site's own origin (so the page's
//! WebGL viewer may read their pixels), guarded like every other API route. The job page's
//! script (`/static/viewer.js`) appends them, in segment order, to a Media Source.
//!
//! - `GET /api/jobs/{id}/segments?from=N`: the finished segments from index `N` on, in order,
//!   stopping at the first one not finished yet (a player can only go on from there) and after
//!   at most [`MAX_LISTED`] entries, so a poll costs a bounded number of storage look-ups.
//! - `GET /api/jobs/{id}/segments/{index}`: one playable copy, `video/mp4`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use parallax_core::keys;
use parallax_core::Error as CoreError;
use serde::{Deserialize, Serialize};

use super::request::load_job;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::AppState;

/// Most segments one listing answers with.
pub const MAX_LISTED: usize = 8;

#[derive(Debug, Deserialize)]
pub(crate) struct SegmentsQuery {
    from: Option<String>,
}

/// One finished segment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlayableSegment {
    /// Zero-based segment index.
    pub index: u32,
    /// Whether a playable copy exists (`false`: converted, but a player must skip it).
    pub playable: bool,
    /// Where to fetch the copy (same origin), when there is one.
    pub url: Option<String>,
    /// Its size in bytes, when there is one.
    pub size: Option<u64>,
}

/// The answer of the listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentList {
    /// The job.
    pub job_id: String,
    /// Its status (`completed` means the whole result is ready to play instead).
    pub status: String,
    /// Segments of the job, once it is split.
    pub total_segments: Option<u32>,
    /// Finished segments from `from` on, consecutive, in order.
    pub segments: Vec<PlayableSegment>,
    /// No further segment will finish: the job has completed or failed.
    pub finished: bool,
}

fn bad_index(what: &str) -> AppError {
    AppError::bad_request(
        "bad-segment-index",
        format!("{what} must be a segment number (0, 1, 2, ...)"),
    )
}

fn parse_index(s: &str, what: &str) -> AppResult<u32> {
    s.parse::<u32>().map_err(|_| bad_index(what))
}

/// `GET /api/jobs/{id}/segments?from=N`: the finished, playable segments of a job.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/segments",
    tag = "segments",
    summary = "The finished segments a player can append while the job converts",
    description = "From segment `from` on, in order, stopping at the first segment not converted yet and after at most 8. Each has a fragmented-MP4 copy of its video at `url` (same origin), unless `playable` is false (converted, but without a copy: a player skips it). `finished` is true once no further segment will come (the job completed or failed).",
    params(
        crate::openapi::JobId,
        ("from" = Option<u32>, Query, description = "the first segment to list (default 0)"),
    ),
    responses(
        (status = 200, description = "the finished run", body = SegmentList),
        (status = 400, description = "`from` is not a segment number (`bad-segment-index`)", body = ErrorBody),
        crate::openapi::JobNotFound,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SegmentsQuery>,
) -> AppResult<Json<SegmentList>> {
    let job = load_job(&state, &id).await?;
    let from = match q.from.as_deref() {
        None | Some("") => 0,
        Some(s) => parse_index(s, "`from`")?,
    };
    let done = state.completions.query_by_job(&job.job_id).await?;
    let mut segments = Vec::new();
    // Completions come ordered by index; only the consecutive run from `from` is useful.
    let run = done
        .iter()
        .filter(|c| c.segment_index >= from)
        .zip(from..)
        .take_while(|(c, expected)| c.segment_index == *expected)
        .take(MAX_LISTED);
    for (c, _) in run {
        let size = state
            .storage
            .head(&keys::playable(&job.job_id, c.segment_index))
            .await?;
        segments.push(PlayableSegment {
            index: c.segment_index,
            playable: size.is_some(),
            url: size.map(|_| format!("/api/jobs/{}/segments/{}", job.job_id, c.segment_index)),
            size,
        });
    }
    Ok(Json(SegmentList {
        job_id: job.job_id.clone(),
        status: job.status.as_str().to_owned(),
        total_segments: job.total_segments,
        segments,
        finished: job.status.is_terminal(),
    }))
}

/// `GET /api/jobs/{id}/segments/{index}`: one segment's playable copy.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/segments/{index}",
    tag = "segments",
    summary = "One finished segment's video as fragmented MP4 (for a Media Source)",
    params(
        crate::openapi::JobId,
        ("index" = u32, Path, description = "the segment's zero-based index"),
    ),
    responses(
        (status = 200, description = "the segment", content_type = "video/mp4", body = Vec<u8>),
        (status = 400, description = "not a segment number (`bad-segment-index`)", body = ErrorBody),
        (status = 404, description = "unknown job (`job-not-found`), or no playable copy of that segment (`segment-not-ready`)", body = ErrorBody),
    )
)]
pub async fn segment(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, String)>,
) -> AppResult<Response> {
    let job = load_job(&state, &id).await?;
    let index = parse_index(&index, "the segment")?;
    let key = keys::playable(&job.job_id, index);
    let not_found = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            "segment-not-ready",
            format!(
                "segment {index} of this job has no playable copy (not converted yet, or none \
                 was stored)"
            ),
        )
    };
    let size = state.storage.head(&key).await?.ok_or_else(not_found)?;
    let stream = match state.storage.get_stream(&key).await {
        Ok(s) => s,
        Err(CoreError::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let mut resp = Body::from_stream(tokio_util::io::ReaderStream::new(stream)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    // A re-run rewrites the same segment with the same frames: a short private cache is safe.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    Ok(resp)
}
