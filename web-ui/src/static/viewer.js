// parallax job page: the player and its 3D views, served from /static/viewer.js (the
// Content-Security-Policy allows no inline script, no eval and nothing from other sites).
//
// The page's <section id="viewer"> says how the two views sit in a frame (data-layout sbs|tb,
// or anaglyph|mono when there is no pair to take apart; data-squeeze full|half; data-order
// lr|rl; data-projection flat|vr180) and where the video comes from (data-source file|segments).
//
// - Flat screens get WebGL views of the same <video>: anaglyph (red from the left view, green
//   and blue from the right), cross-eyed (the halves swapped side by side), wiggle (the views
//   alternating a few times a second) and one eye in 2D.
// - Headsets (WebXR immersive-vr: Quest Browser, Vision Pro Safari) get each eye its own view,
//   on a big screen in front of the viewer, or on the front half-sphere for VR180.
// - While the job converts, the finished segments (fragmented MP4 copies listed by
//   /api/jobs/{id}/segments) are appended in order to a Media Source, so the video plays as
//   far as it is converted and grows while the rest converts.
"use strict";

(function () {
  const section = document.getElementById("viewer");
  if (!section) return;
  const video = document.getElementById("player");
  const canvas = document.getElementById("viewer-canvas");
  const views = section.querySelector(".viewer-views");
  const statusEl = document.getElementById("viewer-status");
  if (!video || !canvas || !views) return;

  const cfg = {
    layout: section.dataset.layout,
    half: section.dataset.squeeze === "half",
    swapped: section.dataset.order === "rl",
    vr180: section.dataset.projection === "vr180",
  };
  const stereo = cfg.layout === "sbs" || cfg.layout === "tb";

  function say(text) {
    if (statusEl) statusEl.textContent = text;
  }

  // ---- Geometry: where each eye's picture is in the frame (texture coordinates, y down). ----

  // [x, y, w, h] of the left (eye 0) or right (eye 1) view.
  function eyeRect(eye) {
    const slot = cfg.swapped ? 1 - eye : eye;
    if (cfg.layout === "tb") return [0, slot * 0.5, 1, 0.5];
    if (cfg.layout === "sbs") return [slot * 0.5, 0, 0.5, 1];
    return [0, 0, 1, 1];
  }

  // Width and height of one eye's picture as it should be shown (half layouts unsqueezed).
  function eyeSize() {
    const w = video.videoWidth || 2;
    const h = video.videoHeight || 1;
    if (cfg.layout === "sbs") return cfg.half ? [w, h] : [w / 2, h];
    if (cfg.layout === "tb") return cfg.half ? [w, h] : [w, h / 2];
    return [w, h];
  }

  // ---- WebGL ----

  const VERTEX = [
    "attribute vec2 aPos;",
    "varying vec2 vPos;",
    "void main() { vPos = aPos; gl_Position = vec4(aPos, 0.0, 1.0); }",
  ].join("\n");

  // Samples eye rectangle r at p (0..1 inside it), kept half a texel inside the rectangle so
  // that filtering never reaches into the other view.
  const SAMPLE = [
    "precision mediump float;",
    "uniform sampler2D uTex;",
    "uniform vec2 uTexel;",
    "uniform vec4 uLeft;",
    "uniform vec4 uRight;",
    "vec4 at(vec4 r, vec2 p) {",
    "  vec2 q = clamp(r.xy + p * r.zw, r.xy + 0.5 * uTexel, r.xy + r.zw - 0.5 * uTexel);",
    "  return texture2D(uTex, q);",
    "}",
  ].join("\n");

  // Flat views: uMode 0 = one eye (uEye), 1 = anaglyph, 2 = cross-eyed.
  const FLAT = SAMPLE + "\n" + [
    "uniform int uMode;",
    "uniform int uEye;",
    "varying vec2 vPos;",
    "void main() {",
    "  vec2 uv = vec2(vPos.x + 1.0, 1.0 - vPos.y) * 0.5;",
    "  if (uMode == 1) {",
    "    vec4 l = at(uLeft, uv);",
    "    vec4 r = at(uRight, uv);",
    "    gl_FragColor = vec4(l.r, r.g, r.b, 1.0);",
    "  } else if (uMode == 2) {",
    "    if (uv.x < 0.5) gl_FragColor = at(uRight, vec2(uv.x * 2.0, uv.y));",
    "    else gl_FragColor = at(uLeft, vec2(uv.x * 2.0 - 1.0, uv.y));",
    "  } else {",
    "    gl_FragColor = at(uEye == 0 ? uLeft : uRight, uv);",
    "  }",
    "}",
  ].join("\n");

  // Headsets: a ray per fragment from the eye (uEyePos) through the view's projection
  // (uProj: x/y scale and offset of the perspective matrix), turned into the reference
  // space (uCamToRef); it meets a screen uScreen.z metres ahead (uScreen.xy = width,
  // height), or, for VR180, the front half of a sphere (equirectangular).
  const XR = SAMPLE + "\n" + [
    "uniform int uEye;",
    "uniform int uVr180;",
    "uniform vec4 uProj;",
    "uniform mat4 uCamToRef;",
    "uniform vec3 uEyePos;",
    "uniform vec3 uScreen;",
    "varying vec2 vPos;",
    "const float PI = 3.14159265;",
    "void main() {",
    "  vec3 dirView = vec3((vPos.x + uProj.z) / uProj.x, (vPos.y + uProj.w) / uProj.y, -1.0);",
    "  vec3 dir = normalize((uCamToRef * vec4(dirView, 0.0)).xyz);",
    "  vec4 eye = uEye == 0 ? uLeft : uRight;",
    "  vec4 bg = vec4(0.07, 0.08, 0.1, 1.0);",
    "  if (uVr180 == 1) {",
    "    float lon = atan(dir.x, -dir.z);",
    "    float lat = asin(clamp(dir.y, -1.0, 1.0));",
    "    if (abs(lon) > 0.5 * PI) { gl_FragColor = vec4(0.0, 0.0, 0.0, 1.0); return; }",
    "    gl_FragColor = at(eye, vec2(lon / PI + 0.5, 0.5 - lat / PI));",
    "    return;",
    "  }",
    "  if (dir.z > -1e-4) { gl_FragColor = bg; return; }",
    "  float t = (-uScreen.z - uEyePos.z) / dir.z;",
    "  vec3 p = uEyePos + t * dir;",
    "  vec2 uv = vec2(p.x / uScreen.x + 0.5, 0.5 - p.y / uScreen.y);",
    "  if (t <= 0.0 || uv.x < 0.0 || uv.x > 1.0 || uv.y < 0.0 || uv.y > 1.0) { gl_FragColor = bg; return; }",
    "  gl_FragColor = at(eye, uv);",
    "}",
  ].join("\n");

  let gl = null;
  let flatProg = null;
  let xrProg = null;
  let tex = null;
  let quad = null;
  let haveFrame = false;

  function compile(src, type) {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) {
      throw new Error("shader: " + gl.getShaderInfoLog(s));
    }
    return s;
  }

  function program(fragment) {
    const p = gl.createProgram();
    gl.attachShader(p, compile(VERTEX, gl.VERTEX_SHADER));
    gl.attachShader(p, compile(fragment, gl.FRAGMENT_SHADER));
    gl.bindAttribLocation(p, 0, "aPos");
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) {
      throw new Error("program: " + gl.getProgramInfoLog(p));
    }
    const u = {};
    const n = gl.getProgramParameter(p, gl.ACTIVE_UNIFORMS);
    for (let i = 0; i < n; i++) {
      const name = gl.getActiveUniform(p, i).name;
      u[name] = gl.getUniformLocation(p, name);
    }
    return { p, u };
  }

  function setupGl() {
    // preserveDrawingBuffer: the canvas can be copied (a screenshot, the tests) between frames.
    const opts = { alpha: false, antialias: false, preserveDrawingBuffer: true };
    gl = canvas.getContext("webgl", opts) || canvas.getContext("experimental-webgl", opts);
    if (!gl) return false;
    try {
      glObjects();
    } catch (e) {
      gl = null;
      return false;
    }
    // Entering VR may move the context to another GPU: it is lost, then restored empty.
    canvas.addEventListener("webglcontextlost", (e) => e.preventDefault());
    canvas.addEventListener("webglcontextrestored", () => {
      haveFrame = false;
      glObjects();
    });
    return true;
  }

  // The programs, texture and quad of the context (again after it was restored).
  function glObjects() {
    flatProg = program(FLAT);
    xrProg = program(XR);
    tex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, 1, 1, 0, gl.RGB, gl.UNSIGNED_BYTE, new Uint8Array(3));
    quad = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, quad);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
  }

  // Copies the video's current frame into the texture; false when there is none yet.
  function uploadFrame() {
    if (video.readyState < 2 || !video.videoWidth) return haveFrame;
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, video);
    haveFrame = true;
    return true;
  }

  function useProgram(prog) {
    gl.useProgram(prog.p);
    gl.bindBuffer(gl.ARRAY_BUFFER, quad);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.uniform1i(prog.u.uTex, 0);
    gl.uniform2f(prog.u.uTexel, 1 / (video.videoWidth || 1), 1 / (video.videoHeight || 1));
    gl.uniform4fv(prog.u.uLeft, eyeRect(0));
    gl.uniform4fv(prog.u.uRight, eyeRect(1));
  }

  // ---- Flat views ----

  const WIGGLE_MS = 140;
  let view = "stored";
  let rafId = 0;

  function canvasSize(mode) {
    const [w, h] = eyeSize();
    // At most 4K wide: the canvas is scaled down by CSS anyway.
    const width = mode === "cross" ? 2 * w : w;
    const scale = Math.min(1, 3840 / width);
    return [Math.max(2, Math.round(width * scale)), Math.max(1, Math.round(h * scale))];
  }

  function drawFlat(now) {
    rafId = 0;
    if (view === "stored" || xrSession) return;
    try {
      if (uploadFrame()) {
        const [w, h] = canvasSize(view);
        if (canvas.width !== w || canvas.height !== h) {
          canvas.width = w;
          canvas.height = h;
        }
        gl.bindFramebuffer(gl.FRAMEBUFFER, null);
        gl.viewport(0, 0, canvas.width, canvas.height);
        useProgram(flatProg);
        const modes = { anaglyph: 1, cross: 2 };
        gl.uniform1i(flatProg.u.uMode, modes[view] || 0);
        const eye = view === "wiggle" ? Math.floor(now / WIGGLE_MS) % 2 : 0;
        gl.uniform1i(flatProg.u.uEye, eye);
        canvas.dataset.eye = String(eye);
        gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
      }
    } catch (e) {
      // A video from another origin without CORS cannot be read into WebGL.
      say("This browser will not let the page read the video's pictures (" + e.message + "); it plays as stored.");
      show("stored");
      return;
    }
    rafId = requestAnimationFrame(drawFlat);
  }

  const buttons = {};

  function show(name) {
    view = name;
    for (const [k, b] of Object.entries(buttons)) {
      if (k !== "vr") b.setAttribute("aria-pressed", String(k === name));
    }
    const onCanvas = name !== "stored";
    canvas.hidden = !onCanvas;
    section.classList.toggle("on-canvas", onCanvas);
    section.dataset.view = name;
    if (onCanvas) {
      // The canvas needs pictures, not only the metadata.
      if (video.preload !== "auto" && !video.src.startsWith("blob:")) video.preload = "auto";
      if (!rafId) rafId = requestAnimationFrame(drawFlat);
    }
  }

  function addButton(name, label, title, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.id = "view-" + name;
    b.textContent = label;
    b.title = title;
    b.addEventListener("click", onClick);
    views.appendChild(b);
    buttons[name] = b;
    return b;
  }

  // ---- Headsets (WebXR) ----

  let xrSession = null;

  function projectionParams(m) {
    // A perspective matrix (column-major): x' = m0 x + m8 z, y' = m5 y + m9 z, w' = -z.
    return [m[0], m[5], m[8], m[9]];
  }

  async function enterVr() {
    if (xrSession) {
      await xrSession.end();
      return;
    }
    // Start the video while the click still counts as the viewer's gesture.
    const played = video.play();
    if (played && played.catch) played.catch(() => {});
    let session;
    try {
      session = await navigator.xr.requestSession("immersive-vr");
    } catch (e) {
      say("The headset did not start the VR view: " + e.message);
      return;
    }
    xrSession = session;
    buttons.vr.textContent = "Leave VR";
    try {
      await gl.makeXRCompatible();
      session.updateRenderState({ baseLayer: new XRWebGLLayer(session, gl) });
      const space = await session.requestReferenceSpace("local");
      const onFrame = (time, frame) => {
        session.requestAnimationFrame(onFrame);
        const pose = frame.getViewerPose(space);
        if (!pose) return;
        const layer = session.renderState.baseLayer;
        gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
        gl.clearColor(0, 0, 0, 1);
        gl.clear(gl.COLOR_BUFFER_BIT);
        if (!uploadFrame()) return;
        useProgram(xrProg);
        const [ew, eh] = eyeSize();
        const width = 3.2; // metres, 3 m away: a big screen
        gl.uniform3f(xrProg.u.uScreen, width, width * eh / ew, 3.0);
        gl.uniform1i(xrProg.u.uVr180, cfg.vr180 ? 1 : 0);
        for (const v of pose.views) {
          const vp = layer.getViewport(v);
          gl.viewport(vp.x, vp.y, vp.width, vp.height);
          gl.uniform1i(xrProg.u.uEye, v.eye === "right" ? 1 : 0);
          gl.uniform4fv(xrProg.u.uProj, projectionParams(v.projectionMatrix));
          gl.uniformMatrix4fv(xrProg.u.uCamToRef, false, v.transform.matrix);
          const p = v.transform.position;
          gl.uniform3f(xrProg.u.uEyePos, p.x, p.y, p.z);
          gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
        }
      };
      session.requestAnimationFrame(onFrame);
    } catch (e) {
      say("The VR view failed: " + e.message);
      session.end().catch(() => {});
    }
    session.addEventListener("end", () => {
      xrSession = null;
      buttons.vr.textContent = "View in VR headset";
      if (view !== "stored" && !rafId) rafId = requestAnimationFrame(drawFlat);
    });
  }

  async function offerViews() {
    if (!stereo) {
      const what = cfg.layout === "anaglyph"
        ? "This video is already anaglyph: watch it with red-cyan glasses."
        : "This video is not a stereo pair, so it plays as stored.";
      say(what);
      return;
    }
    if (!setupGl()) {
      say("This browser has no WebGL: the video plays as stored.");
      return;
    }
    addButton("stored", "As stored", "The video as the file holds it", () => show("stored"));
    addButton("anaglyph", "Anaglyph (red-cyan)", "For red-cyan glasses", () => show("anaglyph"));
    addButton("cross", "Cross-eyed", "The views swapped side by side, for cross-eyed viewing", () => show("cross"));
    addButton("wiggle", "Wiggle", "The two views in turn, a few times a second", () => show("wiggle"));
    addButton("left", "2D (one eye)", "The left view alone", () => show("left"));
    show("stored");
    if (navigator.xr && navigator.xr.isSessionSupported) {
      let vr = false;
      try {
        vr = await navigator.xr.isSessionSupported("immersive-vr");
      } catch (_) {
        vr = false;
      }
      if (vr && window.XRWebGLLayer) {
        addButton("vr", "View in VR headset", "Each eye sees its own view", () => {
          enterVr();
        });
      }
    }
  }

  // ---- Watching while it converts: finished segments through a Media Source ----

  function fourcc(buf, at) {
    return String.fromCharCode(buf[at], buf[at + 1], buf[at + 2], buf[at + 3]);
  }

  function findBox(buf, names) {
    const end = Math.min(buf.length - 8, 1 << 20);
    for (let i = 4; i < end; i++) {
      const n = fourcc(buf, i);
      if (names.includes(n)) return [n, i + 4];
    }
    return null;
  }

  function hex2(n) {
    return (n < 16 ? "0" : "") + n.toString(16).toUpperCase();
  }

  // The RFC 6381 codec string of the fragmented MP4's video track (ISO/IEC 14496-15).
  function codecOf(buf) {
    // The sample entry's type follows stsd's version, flags, entry count and entry size.
    const stsd = findBox(buf, ["stsd"]);
    if (!stsd) return null;
    const entry = [fourcc(buf, stsd[1] + 12), 0];
    if (!["avc1", "avc3", "hvc1", "hev1"].includes(entry[0])) return null;
    const avcC = findBox(buf, ["avcC"]);
    if (entry[0].startsWith("avc") && avcC) {
      const d = avcC[1];
      return entry[0] + "." + hex2(buf[d + 1]) + hex2(buf[d + 2]) + hex2(buf[d + 3]);
    }
    const hvcC = findBox(buf, ["hvcC"]);
    if (!hvcC) return null;
    const d = hvcC[1];
    const space = buf[d + 1] >> 6;
    const tier = (buf[d + 1] >> 5) & 1;
    const profile = buf[d + 1] & 31;
    let compat = 0;
    for (let i = 0; i < 4; i++) compat = (compat << 8) | buf[d + 2 + i];
    let reversed = 0;
    for (let i = 0; i < 32; i++) reversed = (reversed << 1) | ((compat >>> i) & 1);
    const constraints = Array.from(buf.slice(d + 6, d + 12));
    while (constraints.length && constraints[constraints.length - 1] === 0) constraints.pop();
    let s = entry[0] + "." + ["", "A", "B", "C"][space] + profile + "." + (reversed >>> 0).toString(16).toUpperCase();
    s += "." + (tier ? "H" : "L") + buf[d + 12];
    for (const c of constraints) s += "." + hex2(c);
    return s;
  }

  function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function once(target, event) {
    return new Promise((resolve) => target.addEventListener(event, resolve, { once: true }));
  }

  async function getOk(url, as) {
    const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!resp.ok) throw new Error("the server answered " + resp.status);
    return as === "json" ? resp.json() : new Uint8Array(await resp.arrayBuffer());
  }

  // Appends, making room behind the playhead when the browser's buffer is full.
  async function append(sb, bytes) {
    for (;;) {
      try {
        sb.appendBuffer(bytes);
        await once(sb, "updateend");
        return;
      } catch (e) {
        if (e.name !== "QuotaExceededError") throw e;
        const keepFrom = video.currentTime - 10;
        const b = sb.buffered;
        if (b.length && b.start(0) < keepFrom) {
          sb.remove(b.start(0), keepFrom);
          await once(sb, "updateend");
        } else {
          await delay(2000); // paused with a full buffer: wait for the viewer to go on
        }
      }
    }
  }

  async function watchSegments(listUrl) {
    const MS = window.ManagedMediaSource || window.MediaSource;
    if (!MS) {
      say("This browser cannot play the finished parts yet; the video appears here when the conversion is done.");
      return;
    }
    const ms = new MS();
    if (MS === window.ManagedMediaSource) video.disableRemotePlayback = true;
    video.src = URL.createObjectURL(ms);
    await once(ms, "sourceopen");
    let next = 0;
    let sb = null;
    say("Waiting for the first converted segment…");
    for (;;) {
      let list;
      try {
        list = await getOk(listUrl + "?from=" + next, "json");
      } catch (_) {
        await delay(5000); // offline for a moment
        continue;
      }
      for (const seg of list.segments) {
        if (seg.index !== next) break;
        if (!seg.playable) {
          next += 1; // converted, but without a playable copy: the picture jumps over it
          continue;
        }
        let bytes;
        try {
          bytes = await getOk(seg.url, "bytes");
        } catch (_) {
          break; // try again at the next poll
        }
        if (!sb) {
          const codec = codecOf(bytes);
          const type = 'video/mp4; codecs="' + codec + '"';
          if (!codec || !MS.isTypeSupported(type)) {
            say("This browser cannot play these segments (" + (codec || "unknown codec") + "); the video appears here when the conversion is done.");
            return;
          }
          sb = ms.addSourceBuffer(type);
          // Each segment's times start again near zero: play them one after the other.
          sb.mode = "sequence";
        }
        try {
          await append(sb, bytes);
        } catch (e) {
          say("Playing the finished segments stopped: " + e.message);
          return;
        }
        next += 1;
        section.dataset.appended = String(next);
      }
      const total = list.total_segments;
      if (total != null && next >= total) {
        if (ms.readyState === "open") ms.endOfStream();
        say("All " + total + " segments are converted.");
        return;
      }
      if (list.finished) {
        if (ms.readyState === "open" && sb) ms.endOfStream();
        return;
      }
      if (next > 0) {
        say("Plays the " + next + (total != null ? " of " + total : "") + " segments converted so far; more follow while the rest converts.");
      }
      // A listing is short (a few segments at a time): ask again at once while it was full
      // and all of it was used, else wait for more to convert.
      const last = list.segments[list.segments.length - 1];
      if (list.segments.length < 8 || !last || next <= last.index) await delay(3000);
    }
  }

  offerViews();
  if (section.dataset.source === "segments" && video.dataset.segments) {
    watchSegments(video.dataset.segments).catch((e) => say("Playing the finished segments stopped: " + e.message));
  }
})();
