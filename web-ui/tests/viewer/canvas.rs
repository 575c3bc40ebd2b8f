//! Reading the viewer in Chromium: its canvas's pixels, the colours they are compared with,
//! and starting the player.

use std::time::Duration;

use fantoccini::Client;
use parallax_testkit::wait_until;
use serde_json::Value;

use crate::pages::js;

/// Where the viewer tests' screenshots go (under target/tmp).
pub(crate) const SHOTS: &str = "web-ui-viewer";
/// The clips' left view, right view, and the two combined (anaglyph).
pub(crate) const RED: [i64; 3] = [255, 0, 0];
pub(crate) const BLUE: [i64; 3] = [0, 0, 255];
pub(crate) const MAGENTA: [i64; 3] = [255, 0, 255];

/// Waits up to `secs` for `f` to give `Ok` (its `Err` says what was seen instead).
pub(crate) async fn wait_for<T, F, Fut>(secs: u64, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    wait_until(Duration::from_secs(secs), what, f).await
}

/// The viewer canvas's size and pixels at a quarter, half and three quarters of its width
/// (half height), copied through a 2D canvas; `null` while the canvas is hidden or empty.
pub(crate) const CANVAS_PIXELS: &str = r#"
const c = document.getElementById('viewer-canvas');
if (!c || c.hidden || c.width < 2) return null;
const t = document.createElement('canvas');
t.width = c.width; t.height = c.height;
const g = t.getContext('2d');
g.drawImage(c, 0, 0);
const at = (fx) => Array.from(g.getImageData(Math.floor(fx * c.width), Math.floor(c.height / 2), 1, 1).data.slice(0, 3));
return { w: c.width, h: c.height, left: at(0.25), centre: at(0.5), right: at(0.75) };
"#;

/// Starts the player, muted and looping.
pub(crate) const PLAY: &str = r#"
const v = document.getElementById('player');
v.muted = true; v.loop = true;
v.play().catch(() => {});
return true;
"#;

/// Whether the pixel `px` is within 40 of `rgb` in each channel (video coding shifts colours).
pub(crate) fn near(px: &Value, rgb: [i64; 3]) -> bool {
    px.as_array().is_some_and(|a| {
        a.len() == 3
            && a.iter()
                .zip(rgb)
                .all(|(p, want)| (p.as_i64().unwrap_or(-999) - want).abs() <= 40)
    })
}

/// Waits until the canvas is `w` wide and `ok` holds for its pixels.
pub(crate) async fn wait_canvas(
    c: &Client,
    what: &str,
    w: u64,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(30, what, || async {
        let px = js(c, CANVAS_PIXELS).await;
        if px["w"].as_u64() == Some(w) && ok(&px) {
            Ok(px)
        } else {
            Err(px.to_string())
        }
    })
    .await
}
