//! In Chromium: a (fake) WebXR headset shows each eye its own view.

use fantoccini::Locator;
use parallax_core::model::StereoMode;
use serde_json::Value;

use crate::canvas::{near, wait_for, BLUE, PLAY, RED};
use crate::common::TestApp;
use crate::fixtures::{completed_job, red_blue_sbs};
use crate::pages::{click, js, Session};

/// Stands in for a headset: a WebXR device whose two views (eyes 64 mm apart, looking ahead)
/// render into the viewer's own canvas, left eye on its left half, right eye on its right
/// half; then loads the viewer's script again so that it finds the device.
const FAKE_HEADSET: &str = r#"
const canvas = document.getElementById('viewer-canvas');
canvas.width = 320; canvas.height = 90;
window.XRWebGLLayer = class {
  constructor() { this.framebuffer = null; }
  getViewport(v) { return { x: v.eye === 'left' ? 0 : 160, y: 0, width: 160, height: 90 }; }
};
// A 90 degree vertical field of view, 160:90 viewports.
const f = 1, aspect = 160 / 90, near = 0.1, far = 100;
const proj = new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
  0, 0, 2 * far * near / (near - far), 0]);
const view = (eye, x) => ({
  eye, projectionMatrix: proj,
  transform: { matrix: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, x, 0, 0, 1]),
               position: { x, y: 0, z: 0, w: 1 } },
});
const session = {
  renderState: {}, ended: false, listeners: {}, frames: 0,
  updateRenderState(s) { Object.assign(this.renderState, s); },
  requestReferenceSpace() { return Promise.resolve({}); },
  requestAnimationFrame(cb) {
    if (this.ended) return 0;
    return requestAnimationFrame((t) => { this.frames += 1; cb(t, {
      getViewerPose: () => ({ views: [view('left', -0.032), view('right', 0.032)] }) }); });
  },
  end() { this.ended = true; (this.listeners.end || []).forEach((h) => h()); return Promise.resolve(); },
  addEventListener(n, h) { (this.listeners[n] = this.listeners[n] || []).push(h); },
};
Object.defineProperty(navigator, 'xr', { configurable: true, value: {
  isSessionSupported: (mode) => Promise.resolve(mode === 'immersive-vr'),
  requestSession: () => Promise.resolve(session),
} });
WebGLRenderingContext.prototype.makeXRCompatible = () => Promise.resolve();
window.fakeXrSession = session;
document.querySelector('.viewer-views').replaceChildren();
const s = document.createElement('script');
s.src = '/static/viewer.js';
document.body.appendChild(s);
return true;
"#;

/// The canvas's pixels at the centre of each eye's half and at a corner of the left one,
/// while the fake headset's session has drawn.
const HEADSET_PIXELS: &str = r#"
const c = document.getElementById('viewer-canvas');
const s = window.fakeXrSession;
if (!s || s.frames < 2) return null;
const t = document.createElement('canvas');
t.width = c.width; t.height = c.height;
const g = t.getContext('2d');
g.drawImage(c, 0, 0);
const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
return { w: c.width, left: at(80, 45), right: at(240, 45), corner: at(2, 2), frames: s.frames };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headset_shows_each_eye_its_own_view() {
    let Some(s) = Session::start(TestApp::new().await).await else {
        return;
    };
    let c = &s.c;
    let clip = red_blue_sbs(s.work.path(), "red-blue.mp4");
    let id = completed_job(&s.app, "Red and blue", StereoMode::FullSbs, &clip).await;
    s.open_viewer(&id).await;
    assert!(
        c.find(Locator::Css("button#view-vr")).await.is_err(),
        "no VR offered without a headset"
    );
    js(c, FAKE_HEADSET).await;
    wait_for(20, "the VR button", || async {
        match c.find(Locator::Css("button#view-vr")).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    js(c, PLAY).await;
    click(c, "button#view-vr").await;
    // Straight ahead, each eye sees the middle of the screen in its own view; around the
    // screen there is the dark room.
    let room = [18, 20, 26];
    wait_for(30, "each eye's view on the screen", || async {
        let px = js(c, HEADSET_PIXELS).await;
        if near(&px["left"], RED) && near(&px["right"], BLUE) && near(&px["corner"], room) {
            Ok(())
        } else {
            Err(px.to_string())
        }
    })
    .await;
    click(c, "button#view-vr").await;
    wait_for(10, "the session ended", || async {
        let ended = js(c, "return window.fakeXrSession.ended").await;
        let label = c
            .find(Locator::Css("button#view-vr"))
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        if ended == Value::Bool(true) && label == "View in VR headset" {
            Ok(())
        } else {
            Err(format!("ended {ended}, button {label:?}"))
        }
    })
    .await;
    s.close().await;
}
