//! The OpenAPI 3.1 document of the JSON API, served at `/api/openapi.json`.

use axum::Json;
use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn job_id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}})
}

/// The document.
pub fn spec() -> Value {
    let job = json!({"$ref": "#/components/schemas/Job"});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "parallax API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Create 2D-to-3D conversion jobs, upload their source through a presigned URL, follow their progress and download the result. When access control is on, send `Authorization: Bearer <token>` (or basic auth). Browsers that send cookies must echo the `parallax_csrf` cookie in `X-CSRF-Token` on POST, PATCH and DELETE. After a few wrong tokens or passwords from one client address, that address is answered 429 (`too-many-attempts`, with `Retry-After` in seconds) for a while, without its credentials being checked."
        },
        "paths": {
            "/healthz": {"get": {
                "summary": "Liveness and job-store health",
                "security": [],
                "responses": {"200": {"description": "healthy"}, "503": {"description": "the job store does not answer"}}
            }},
            "/api/jobs": {
                "post": {
                    "summary": "Create a job and get a presigned upload",
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateJob"}}}},
                    "responses": {
                        "201": {"description": "created", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["job", "upload"],
                            "properties": {"job": job, "upload": {"$ref": "#/components/schemas/Upload"}}
                        }}}},
                        "400": error_response("invalid title, mode or settings"),
                        "413": error_response("the announced file is larger than the upload limit")
                    }
                },
                "get": {
                    "summary": "List jobs",
                    "parameters": [
                        {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["completed", "in_progress", "failed"], "default": "completed"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                        {"name": "cursor", "in": "query", "description": "next_cursor of the previous page (completed and failed listings)", "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "one page", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["items", "next_cursor"],
                            "properties": {"items": {"type": "array", "items": job}, "next_cursor": {"type": ["string", "null"]}}
                        }}}},
                        "400": error_response("bad state, limit or cursor")
                    }
                }
            },
            "/api/jobs/{id}": {
                "parameters": [job_id_param()],
                "get": {"summary": "One job with its progress", "responses": {
                    "200": {"description": "the job", "content": {"application/json": {"schema": job}}},
                    "404": error_response("unknown job")
                }},
                "patch": {
                    "summary": "Set the title; report the upload as finished (uploaded_at)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PatchJob"}}}},
                    "responses": {
                        "200": {"description": "the job as stored", "content": {"application/json": {"schema": job}}},
                        "400": error_response("invalid body (`invalid-json`), title (`invalid-title`) or uploaded_at (`invalid-uploaded-at`)"),
                        "404": error_response("unknown job"),
                        "409": error_response("uploaded_at given but the upload is not in storage")
                    }
                },
                "delete": {"summary": "Cancel an unfinished job (it becomes failed with code `cancelled`)", "responses": {
                    "200": {"description": "the cancelled job", "content": {"application/json": {"schema": job}}},
                    "404": error_response("unknown job"),
                    "409": error_response("the job already finished")
                }}
            },
            "/api/jobs/{id}/download": {
                "parameters": [job_id_param()],
                "get": {"summary": "Redirect to a presigned download named after the title and layout (e.g. attack-on-titan3d_LR.mp4)", "responses": {
                    "307": {"description": "redirect to the presigned URL", "headers": {"Location": {"schema": {"type": "string"}}}},
                    "404": error_response("unknown job"),
                    "409": error_response("the job has no result yet")
                }}
            },
            "/api/jobs/{id}/rerender": {
                "parameters": [job_id_param()],
                "post": {
                    "summary": "Render a completed job again, in another layout or with other stereo settings, as a new job that reuses its stored depth (no depth model runs)",
                    "description": "The new job has no upload: it starts `uploaded`, says `rerender_of`, and follows the usual flow from chunking on; its result carries the original upload's audio and subtitles. `mode`, `settings` and `title` default to the source job's; `depth_resolution` and `ema_decay` are always the source's (the stored depth was made with them).",
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RerenderJob"}}}},
                    "responses": {
                        "201": {"description": "the new job", "headers": {"Location": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["job"], "properties": {"job": job}
                        }}}},
                        "400": error_response("invalid title, mode or settings"),
                        "404": error_response("unknown job"),
                        "409": error_response("the job is not completed (`job-not-completed`), or its depth is not stored: converted before depth was kept, or expired (`depth-not-stored`)")
                    }
                }
            },
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
                }}},
                "Mode": {"type": "string", "enum": ["full_sbs", "half_sbs", "full_tb", "half_tb", "full_cross", "half_cross", "anaglyph", "rgbd", "vr180", "depth_map"]},
                "Status": {"type": "string", "enum": ["awaiting_upload", "uploaded", "chunking", "chunking_complete", "reassembling", "completed", "failed"]},
                "Settings": {"type": "object", "properties": {
                    "divergence": {"type": "number", "minimum": 0, "maximum": 10, "description": "3D strength, % of width"},
                    "convergence": {"type": "number", "minimum": 0, "maximum": 1},
                    "ema_decay": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                    "depth_resolution": {"type": ["integer", "null"], "minimum": 14, "maximum": 2048},
                    "encoder": {"type": "string", "enum": ["libx264", "libx265", "h264_nvenc", "hevc_nvenc"]},
                    "crf": {"type": "integer", "minimum": 0, "maximum": 51},
                    "deinterlace": {"type": "boolean", "default": true, "description": "deinterlace an interlaced source (bwdif) before depth"},
                    "bit_depth": {"type": ["integer", "null"], "enum": [8, 10, null], "description": "output bits per sample; null follows the source (10-bit stays 10-bit with libx265 or hevc_nvenc; H.264 is 8-bit); 10 needs an HEVC encoder"},
                    "edge_dilation": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1, "description": "edge fix: widen the near side of depth edges by this many depth-map pixels (0 = off)"},
                    "depth_antialias": {"type": "boolean", "default": true, "description": "soften the depth map's edges (anti-aliasing)"},
                    "foreground_scale": {"type": "number", "minimum": -3, "maximum": 3, "default": 0, "description": "more (positive) or less (negative) of the 3D effect for near things"},
                    "ipd_offset": {"type": "number", "minimum": -5, "maximum": 5, "default": 0, "description": "constant parallax in % of the width added to every pixel (positive = behind the screen)"},
                    "preserve_screen_border": {"type": "boolean", "default": false, "description": "fade parallax to zero at the left and right frame edges (floating window)"},
                    "synthetic_view": {"type": "string", "enum": ["both", "left", "right"], "default": "both", "description": "which views are synthesised; left = the left eye sees the original"},
                    "auto_convergence": {"type": "boolean", "default": false, "description": "convergence from each frame's depth distribution instead of `convergence`"},
                    "max_output_width": {"type": ["integer", "null"], "minimum": 64, "description": "largest output width in pixels (even); larger outputs are scaled down"},
                    "anaglyph_method": {"type": "string", "enum": ["dubois", "color", "half_color", "gray", "wimmer"], "default": "dubois"},
                    "tone_map": {"type": "boolean", "default": false, "description": "tone-map an HDR (PQ or HLG) source to BT.709 SDR even when a 10-bit HEVC output could keep it; an 8-bit output of an HDR source is always tone-mapped"}
                }},
                "CreateJob": {"type": "object", "additionalProperties": false, "properties": {
                    "title": {"type": "string", "maxLength": 200},
                    "mode": {"$ref": "#/components/schemas/Mode"},
                    "settings": {"$ref": "#/components/schemas/Settings"},
                    "source_file_size_bytes": {"type": "integer", "minimum": 0}
                }},
                "RerenderJob": {"type": "object", "additionalProperties": false, "properties": {
                    "title": {"type": "string", "maxLength": 200},
                    "mode": {"$ref": "#/components/schemas/Mode"},
                    "settings": {"$ref": "#/components/schemas/Settings"}
                }},
                "PatchJob": {"type": "object", "additionalProperties": false, "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "uploaded_at": {
                        "description": "when the upload finished: whole Unix seconds (UTC) or an RFC 3339 date-time, from 1970 to the end of year 9999; responses always give it as RFC 3339",
                        "oneOf": [
                            {"type": "integer", "minimum": 0, "maximum": 253_402_300_799_i64, "description": "Unix seconds"},
                            {"type": "string", "format": "date-time"}
                        ]
                    },
                    "source_file_size_bytes": {"type": "integer", "minimum": 0}
                }},
                "Upload": {"type": "object", "required": ["url", "method", "headers"], "properties": {
                    "url": {"type": "string"}, "method": {"type": "string"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "max_bytes": {"type": "integer"}
                }},
                "Job": {"type": "object", "required": ["job_id", "title", "mode", "status", "created_at"], "properties": {
                    "job_id": {"type": "string"}, "title": {"type": "string"},
                    "mode": {"$ref": "#/components/schemas/Mode"},
                    "status": {"$ref": "#/components/schemas/Status"},
                    "total_segments": {"type": ["integer", "null"]},
                    "completed_segments": {"type": "integer"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "uploaded_at": {"type": ["string", "null"], "format": "date-time"},
                    "completed_at": {"type": ["string", "null"], "format": "date-time"},
                    "source_file_size_bytes": {"type": ["integer", "null"]},
                    "settings": {"$ref": "#/components/schemas/Settings"},
                    "error": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}]},
                    "eta_seconds": {"type": ["number", "null"]},
                    "conversion_seconds": {"type": ["number", "null"]},
                    "seconds_per_mb": {"type": ["number", "null"]},
                    "download_url": {"type": ["string", "null"]},
                    "notes": {"type": "array", "items": {"type": "string"}, "description": "what the conversion did to the source's picture (tone-mapped HDR, deinterlaced, chroma or range converted)"},
                    "rerender_of": {"type": "string", "description": "a re-render: the job whose stored depth it renders again"}
                }}
            }
        },
        "security": [{"bearer": []}, {"basic": []}, {}]
    })
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
