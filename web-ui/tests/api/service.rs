//! The service's own routes: the OpenAPI document and the health check.

use axum::http::StatusCode;

use crate::common::TestApp;

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let app = TestApp::new().await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["openapi"], "3.1.0");
    for (path, methods) in [
        ("/api/jobs", &["get", "post"][..]),
        ("/api/jobs/{id}", &["get", "patch", "delete"][..]),
        ("/api/jobs/{id}/download", &["get"][..]),
        ("/healthz", &["get"][..]),
    ] {
        for m in methods {
            assert!(v["paths"][path][m].is_object(), "{m} {path} missing");
        }
    }
    let uploaded_at = &v["components"]["schemas"]["PatchJob"]["properties"]["uploaded_at"];
    assert_eq!(uploaded_at["oneOf"][0]["type"], "integer", "{uploaded_at}");
    assert_eq!(
        uploaded_at["oneOf"][1]["format"], "date-time",
        "{uploaded_at}"
    );
    // Every $ref points at a schema that exists.
    let text = r.text();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(
            v["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[tokio::test]
async fn healthz_answers() {
    let app = TestApp::new().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
}
