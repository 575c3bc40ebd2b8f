//! The job page's player and 3D viewer: the routes that list and serve a converting job's
//! finished segments, and, in a real headless Chromium, the viewer's WebGL views (pixels read
//! back from its canvas) and a converting job's page playing its first finished segment.
//! Screenshots are kept under target/tmp/web-ui-viewer. One module per concern.

#[path = "../common/chromium.rs"]
mod chromium;
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/pages.rs"]
mod pages;

mod canvas;
mod fixtures;
mod headset;
mod playback;
mod routes;
mod views;
