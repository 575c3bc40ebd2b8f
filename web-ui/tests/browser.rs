//! What a person does, in a real headless Chromium driven through chromedriver: upload a
//! generated clip through the upload page, see its row on the dashboard, let the (stand-in)
//! workers finish it, watch the dashboard pick that up by itself, and download the result
//! through the job page under its title's name. Screenshots are kept under target/tmp.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`make setup` installs them). Outside CI
//! the test skips with a printed reason when they are missing; with CI=true it fails.

#[path = "common/chromium.rs"]
mod chromium;
mod common;
#[path = "common/pages.rs"]
mod pages;

use std::time::Duration;

use fantoccini::{Client, Locator};
use pages::{click, job_page, Session, UploadPage};
use parallax_core::keys;
use parallax_core::model::JobStatus;
use parallax_testkit::wait_until;

async fn screenshot(c: &Client, name: &str) {
    chromium::screenshot(c, "web-ui-browser", name).await;
}

/// Waits up to `secs` for `f` to give `Some`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_until(Duration::from_secs(secs), what, f).await
}

async fn row_text(c: &Client, section: &str, job_id: &str) -> Option<String> {
    let css = format!("section.{section} tr[data-job-id=\"{job_id}\"]");
    match c.find(Locator::Css(&css)).await {
        Ok(e) => e.text().await.ok(),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_watch_and_download_in_a_real_browser() {
    let Some(s) = Session::start(common::TestApp::new().await).await else {
        return;
    };
    let (app, base, c) = (&s.app, &s.base, &s.c);
    let clip = common::make_video(s.work.path(), "Attack on Titan.mp4", 3).await;
    let clip_bytes = std::fs::read(&clip).unwrap();
    let downloads = s.downloads();

    // 1. Upload through the page.
    let page = UploadPage::open(c, base).await;
    page.pick(&[&clip]).await;
    let title = c.find(Locator::Css("input#title")).await.unwrap();
    assert_eq!(
        title.prop("value").await.unwrap().as_deref(),
        Some("Attack on Titan"),
        "title from the file name"
    );
    screenshot(c, "1-upload.png").await;
    let job_id = page.start_and_follow().await;
    let job = app.backends.jobs.get(&job_id).await.unwrap().unwrap();
    assert_eq!(job.title, "Attack on Titan");
    assert_eq!(
        job.status,
        JobStatus::Uploaded,
        "the page PATCHed the upload as finished"
    );
    assert_eq!(job.source_file_size_bytes, Some(clip_bytes.len() as u64));
    assert_eq!(
        app.backends
            .storage
            .head(&keys::source(&job_id))
            .await
            .unwrap(),
        Some(clip_bytes.len() as u64),
        "the whole file reached storage"
    );

    // 2. Its row on the dashboard, in progress.
    c.goto(&format!("{base}/")).await.unwrap();
    let row = eventually(10, "the in-progress row", || {
        row_text(c, "in-progress", &job_id)
    })
    .await;
    assert!(
        row.contains("Attack on Titan") && row.contains("uploaded"),
        "{row}"
    );
    screenshot(c, "2-dashboard-in-progress.png").await;

    // 3. The workers finish it (stand-in through the core stores); the open dashboard
    //    refreshes by itself and moves the row to the completed list.
    let result: Vec<u8> = clip_bytes.iter().rev().copied().collect();
    app.complete_job(&job_id, result.clone()).await;
    let row = eventually(20, "the completed row without a reload", || {
        row_text(c, "completed", &job_id)
    })
    .await;
    assert!(
        row.contains("Attack on Titan") && row.contains("Download"),
        "{row}"
    );
    screenshot(c, "3-dashboard-completed.png").await;

    // 4. Download through the job page, saved under the title's name.
    c.goto(&format!("{base}/jobs/{job_id}")).await.unwrap();
    let link = c.find(Locator::Css("a#download")).await.unwrap();
    screenshot(c, "4-job-page.png").await;
    link.click().await.unwrap();
    let saved = downloads.join("attack-on-titan3d_LR.mp4");
    eventually(30, "the downloaded file", || async {
        (saved.exists() && std::fs::metadata(&saved).ok()?.len() == result.len() as u64)
            .then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        result,
        "the download is the stored result"
    );

    s.close().await;
}

/// A screenshot of the page to the workspace's `target/tmp/`.
async fn page_shot(c: &Client, name: &str) {
    chromium::screenshot(c, ".", name).await;
}

async fn value_of(c: &Client, css: &str) -> String {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.prop("value").await.unwrap().unwrap_or_default()
}

async fn checked(c: &Client, css: &str) -> bool {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.prop("checked").await.unwrap().as_deref() == Some("true")
}

async fn set_value(c: &Client, css: &str, value: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_fill_the_form_advanced_settings_submit_and_progress_is_pushed() {
    let app = common::TestApp::with_config(web_ui::WebConfig {
        live_poll: Duration::from_millis(100),
        ..web_ui::WebConfig::default()
    })
    .await;
    let Some(s) = Session::start(app).await else {
        return;
    };
    let (app, base, c, work) = (&s.app, &s.base, &s.c, &s.work);

    // 1. A preset fills the fields.
    let page = UploadPage::open(c, base).await;
    assert_eq!(value_of(c, "#set-encoder").await, "libx264", "the defaults");
    let preset = c.find(Locator::Css("select#preset")).await.unwrap();
    preset.select_by_value("vision_pro").await.unwrap();
    assert_eq!(value_of(c, "#mode").await, "full_sbs");
    assert_eq!(value_of(c, "#set-encoder").await, "libx265");
    assert_eq!(value_of(c, "#set-bit_depth").await, "10");
    let described = c.find(Locator::Css("#preset-description")).await.unwrap();
    assert!(described.text().await.unwrap().contains("MV-HEVC"));
    preset.select_by_value("anaglyph").await.unwrap();
    assert_eq!(value_of(c, "#mode").await, "anaglyph");
    assert_eq!(value_of(c, "#set-encoder").await, "libx264");
    assert_eq!(
        value_of(c, "#set-bit_depth").await,
        "",
        "follows the source"
    );
    assert_eq!(value_of(c, "#set-anaglyph_method").await, "dubois");
    page_shot(c, "upload-presets.png").await;

    // 2. A file the service cannot take is refused on the page, with the reason.
    let notes = work.path().join("notes.txt");
    std::fs::write(&notes, b"not a video").unwrap();
    page.pick(&[&notes]).await;
    page.start().await;
    let said = eventually(10, "the refusal", || async {
        let t = page.status().await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert!(said.contains("notes.txt is not a video"), "{said}");
    assert!(app
        .backends
        .jobs
        .list_in_progress(10)
        .await
        .unwrap()
        .is_empty());

    // 3. Advanced fields are sent, for each of two files, on a fresh form.
    let a = common::make_video(work.path(), "First clip.mp4", 1).await;
    let b = common::make_video(work.path(), "Second clip.mp4", 1).await;
    let page = UploadPage::open(c, base).await;
    c.find(Locator::Css("select#preset"))
        .await
        .unwrap()
        .select_by_value("anaglyph")
        .await
        .unwrap();
    click(c, "#advanced summary").await;
    set_value(c, "#set-ipd_offset", "1.5").await;
    set_value(c, "#set-crf", "24").await;
    set_value(c, "#set-max_output_width", "1280").await;
    click(c, "#set-preserve_screen_border").await;
    c.find(Locator::Css("#set-synthetic_view"))
        .await
        .unwrap()
        .select_by_value("left")
        .await
        .unwrap();
    assert!(checked(c, "#set-preserve_screen_border").await);
    page.pick(&[&a, &b]).await;
    page_shot(c, "upload-presets-advanced.png").await;
    page.start().await;
    let said = eventually(60, "both uploads", || async {
        let t = page.status().await;
        t.contains("2 of 2 videos uploaded").then_some(t)
    })
    .await;
    assert!(!said.contains("failed"), "{said}");
    let links = c
        .find_all(Locator::Css("#upload-jobs a.job-link"))
        .await
        .unwrap();
    assert_eq!(links.len(), 2, "each file's job is shown");
    c.execute(
        "document.getElementById('upload-status').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    page_shot(c, "upload-two-jobs.png").await;
    let jobs = app.backends.jobs.list_in_progress(10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let mut titles = Vec::new();
    for item in &jobs {
        let job = app.backends.jobs.get(&item.job_id).await.unwrap().unwrap();
        titles.push(job.title.clone());
        assert_eq!(job.mode, parallax_core::model::StereoMode::Anaglyph);
        let settings = &job.settings;
        assert_eq!(settings.ipd_offset, 1.5);
        assert_eq!(settings.crf, 24);
        assert_eq!(settings.max_output_width, Some(1280));
        assert!(settings.preserve_screen_border);
        assert_eq!(
            settings.synthetic_view,
            parallax_core::model::SyntheticView::Left
        );
        assert_eq!(settings.encoder, "libx264");
        assert_eq!(job.status, JobStatus::Uploaded);
    }
    titles.sort();
    assert_eq!(titles, ["First clip", "Second clip"]);

    // 4. The job page's segment bar renders and follows the job without a reload.
    let id = jobs[0].job_id.clone();
    let mut u = parallax_core::model::JobUpdate::status(JobStatus::ChunkingComplete);
    u.total_segments = Some(6);
    app.backends.jobs.update(&id, &u).await.unwrap();
    app.record_segment(&id, 0, 10).await;
    app.record_segment(&id, 1, 10).await;
    c.goto(&format!("{base}/jobs/{id}")).await.unwrap();
    let cells = c.find_all(Locator::Css("#segbar .seg")).await.unwrap();
    assert_eq!(cells.len(), 6);
    let done_cells = c.find_all(Locator::Css("#segbar .seg.done")).await.unwrap();
    assert_eq!(done_cells.len(), 2);
    let transport = eventually(10, "the event stream", || async {
        let v = c
            .execute(
                "return document.getElementById('job').dataset.transport || null",
                vec![],
            )
            .await
            .ok()?;
        v.as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(transport, "sse");
    app.record_segment(&id, 4, 10).await;
    // Segment 3's converted output is stored, not yet recorded: in progress.
    app.put_object(&keys::output(&id, 2), vec![0u8; 8]).await;
    eventually(20, "the pushed segments", || async {
        let n = c
            .find_all(Locator::Css("#segbar .seg.done"))
            .await
            .ok()?
            .len();
        let busy = c
            .find_all(Locator::Css("#segbar .seg.in-progress"))
            .await
            .ok()?
            .len();
        (n == 3 && busy == 1).then_some(())
    })
    .await;
    let third = c
        .find(Locator::Css("#segbar .seg:nth-child(3)"))
        .await
        .unwrap();
    assert_eq!(
        third.attr("title").await.unwrap().as_deref(),
        Some("segment 3: in progress")
    );
    let fifth = c
        .find(Locator::Css("#segbar .seg:nth-child(5)"))
        .await
        .unwrap();
    assert_eq!(
        fifth.attr("class").await.unwrap().as_deref(),
        Some("seg done")
    );
    page_shot(c, "job-progress.png").await;

    // 5. The dashboard shows the same progress, pushed.
    c.goto(&format!("{base}/")).await.unwrap();
    let row = eventually(10, "the in-progress row", || {
        row_text(c, "in-progress", &id)
    })
    .await;
    assert!(row.contains("3 / 6"), "{row}");
    app.record_segment(&id, 5, 10).await;
    let row = eventually(20, "the pushed dashboard row", || async {
        let t = row_text(c, "in-progress", &id).await?;
        t.contains("4 / 6").then_some(t)
    })
    .await;
    assert!(row.contains("converting"), "{row}");
    page_shot(c, "dashboard-progress.png").await;

    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_is_asked_for_on_the_page_plays_when_done_and_convert_all_starts_the_whole() {
    let Some(s) = Session::start(common::TestApp::new().await).await else {
        return;
    };
    let (app, base, c) = (&s.app, &s.base, &s.c);
    let clip = common::make_video(s.work.path(), "Walk in Kyoto.mp4", 3).await;

    let page = UploadPage::open(c, base).await;
    page.pick(&[&clip]).await;
    click(c, "input#preview").await;
    page_shot(c, "upload-preview.png").await;
    let job_id = page.start_and_follow().await;
    let job = app.backends.jobs.get(&job_id).await.unwrap().unwrap();
    assert!(job.preview, "the page asked for a preview");

    // The workers finish the preview (stand-in: a playable clip as its result).
    app.complete_job(&job_id, std::fs::read(&clip).unwrap())
        .await;
    c.goto(&format!("{base}/jobs/{job_id}")).await.unwrap();
    eventually(30, "the preview playing", || async {
        let ready = c
            .execute(
                "const v = document.getElementById('player'); \
                 if (v && v.paused) { v.muted = true; v.play().catch(() => {}); } \
                 return v ? [v.readyState, v.currentTime] : null;",
                vec![],
            )
            .await
            .ok()?;
        let state = ready.as_array()?;
        (state[0].as_u64()? >= 2 && state[1].as_f64()? > 0.0).then_some(())
    })
    .await;
    assert!(c
        .find(Locator::Css("#preview-note"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("samples"));
    page_shot(c, "job-preview.png").await;

    click(c, "button#convert-all").await;
    let whole = job_page(c, "the whole conversion's job page", Some(&job_id)).await;
    let whole = app.backends.jobs.get(&whole).await.unwrap().unwrap();
    assert_eq!(whole.upload_of.as_deref(), Some(job_id.as_str()));
    assert!(!whole.preview);
    page_shot(c, "job-convert-all.png").await;
    s.close().await;
}
