//! User text is escaped on every page, fragment and live event, and pages carry the headers
//! that keep a script from running.

use crate::common::events::Events;
use crate::common::TestApp;

#[tokio::test]
async fn user_text_is_escaped_everywhere() {
    let app = TestApp::new().await;
    let evil = "<script>alert(\"x\")</script> & 'quotes'";
    let (id, _) = app.create(evil).await;
    let failed = app
        .seed(
            "<img src=x onerror=alert(1)>",
            parallax_core::model::JobStatus::Failed,
        )
        .await;
    for uri in [
        "/".to_owned(),
        format!("/jobs/{id}"),
        format!("/jobs/{}", failed.job_id),
    ] {
        let r = app.get(&uri).await;
        let html = r.text();
        assert!(!html.contains("<script>alert"), "{uri} shows raw script");
        assert!(!html.contains("<img src=x"), "{uri} shows a raw tag");
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'"),
            "no inline script may run: {csp}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    }
    let html = app.get(&format!("/jobs/{id}")).await.text();
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'quotes'"),
        "{html}"
    );
    // The API returns the title as data, unchanged.
    let v = app.get(&format!("/api/jobs/{id}")).await.json();
    assert_eq!(v["title"], evil);
}

#[tokio::test]
async fn the_templates_escape_a_hostile_title_on_pages_and_live_fragments() {
    use parallax_core::model::JobStatus;
    let app = TestApp::new().await;
    let title = r#"<script>alert(1)</script>"&'"#;
    let escaped = r#"&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;'"#;
    let converting = app.seed(title, JobStatus::ChunkingComplete).await;
    app.seed(title, JobStatus::Failed).await;
    app.seed(title, JobStatus::Completed).await;
    let id = &converting.job_id;

    let dashboard = app.get("/").await.text();
    let dashboard_fragment = app.get("/?fragment=1").await.text();
    let dashboard_event = Events::open(&app, "/events").await.first("dashboard").await;
    for (what, html) in [
        ("dashboard", &dashboard),
        ("dashboard fragment", &dashboard_fragment),
        ("dashboard event", &dashboard_event),
    ] {
        // In progress, failed and completed: each list links the title to its job.
        assert_eq!(
            html.matches(&format!(">{escaped}</a>")).count(),
            3,
            "{what}: {html}"
        );
        assert!(!html.contains("<script>alert"), "{what}: {html}");
    }

    let job_page = app.get(&format!("/jobs/{id}")).await.text();
    let job_fragment = app.get(&format!("/jobs/{id}?fragment=1")).await.text();
    for (what, html) in [("job page", &job_page), ("job fragment", &job_fragment)] {
        assert!(
            html.contains(&format!(r#"<h1 class="job-title">{escaped}</h1>"#)),
            "{what}: {html}"
        );
        assert!(!html.contains("<script>alert"), "{what}: {html}");
    }
}
