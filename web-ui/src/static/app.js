// parallax pages: presets and uploads, live progress (server-sent events) of the dashboard and
// job page, cancel.
// Served from /static/app.js (the Content-Security-Policy allows no inline script).
"use strict";

function csrfToken() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.getAttribute("content") : "";
}

async function api(method, url, body) {
  const headers = { "X-CSRF-Token": csrfToken(), "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(url, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await resp.json(); } catch (_) { /* empty body */ }
  if (!resp.ok) {
    const msg = data && data.error ? data.error.message : "the server answered " + resp.status;
    throw new Error(msg);
  }
  return data;
}

function titleFromFileName(name) {
  return name.replace(/\.[^./\\]{1,5}$/, "").replace(/[_]+/g, " ").trim();
}

function putWithProgress(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method || "PUT", upload.url);
    for (const [k, v] of Object.entries(upload.headers || {})) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let msg = "the upload was refused (" + xhr.status + ")";
      try { msg = JSON.parse(xhr.responseText).error.message; } catch (_) { /* not JSON (S3) */ }
      reject(new Error(msg));
    };
    xhr.onerror = () => reject(new Error("the upload failed: network error"));
    xhr.send(file);
  });
}

// The upload page: device presets fill every setting, the advanced section edits them one by
// one, and each chosen file becomes its own job with the same settings (every field is sent).
function readSettings(form) {
  const settings = {};
  for (const el of form.querySelectorAll("[data-setting]")) {
    const kind = el.dataset.kind;
    let v;
    if (kind === "check") v = el.checked;
    else if (kind === "number") v = Number(el.value);
    else if (kind === "optional") v = el.value === "" ? null : Number(el.value);
    else if (kind === "optional-text") v = el.value === "" ? null : el.value;
    else v = el.value;
    settings[el.dataset.setting] = v;
  }
  return settings;
}

function fillSettings(form, preset) {
  document.getElementById("mode").value = preset.mode;
  for (const el of form.querySelectorAll("[data-setting]")) {
    const v = preset.settings[el.dataset.setting];
    if (el.dataset.kind === "check") el.checked = Boolean(v);
    else if (v === null || v === undefined) el.value = "";
    // Settings are f32: 0.8999999761581421 in JSON is the 0.9 that was set.
    else if (typeof v === "number") el.value = String(Math.round(v * 1e6) / 1e6);
    else el.value = String(v);
  }
  const described = document.getElementById("preset-description");
  if (described) described.textContent = preset.description;
  form.dispatchEvent(new Event("settings-filled"));
}

function fileExtension(name) {
  const m = /\.([^./\\]+)$/.exec(name);
  return m ? m[1].toLowerCase() : "";
}

function addJobRow(list, name) {
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.className = "file";
  label.textContent = name;
  const state = document.createElement("span");
  state.className = "state";
  li.append(label, " ", state);
  list.append(li);
  return {
    li,
    state(text, bad) { state.textContent = text; li.classList.toggle("bad", Boolean(bad)); },
    link(jobId, title) {
      const a = document.createElement("a");
      a.href = "/jobs/" + jobId;
      a.textContent = title;
      a.className = "job-link";
      label.replaceChildren(a);
      li.dataset.jobId = jobId;
    },
  };
}

function setupUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const fileInput = document.getElementById("file");
  const title = document.getElementById("title");
  const drop = document.getElementById("drop");
  const status = document.getElementById("upload-status");
  const bar = document.getElementById("progress");
  const barText = document.getElementById("progress-text");
  const list = document.getElementById("upload-jobs");
  const presetSelect = document.getElementById("preset");
  const slider = document.getElementById("divergence");
  const sliderOut = document.getElementById("divergence-value");
  const strength = document.getElementById("set-divergence");
  const maxBytes = Number(form.dataset.maxBytes);
  const extensions = (form.dataset.extensions || "").split(",").filter(Boolean);
  const [defaults, presets] = JSON.parse(form.dataset.presets || "[null, []]");

  // The slider and the advanced number are one setting.
  const syncFromNumber = () => { slider.value = strength.value; sliderOut.textContent = strength.value; };
  slider.addEventListener("input", () => { strength.value = slider.value; sliderOut.textContent = slider.value; });
  strength.addEventListener("input", syncFromNumber);
  form.addEventListener("settings-filled", syncFromNumber);
  presetSelect.addEventListener("change", () => {
    const p = presets.find((x) => x.name === presetSelect.value) || defaults;
    if (p) fillSettings(form, p);
  });

  const picked = () => {
    const files = Array.from(fileInput.files);
    if (!files.length) return;
    drop.querySelector("span").textContent = files.length === 1
      ? files[0].name : files.length + " files: " + files.map((f) => f.name).join(", ");
    if (files.length === 1 && !title.value) title.value = titleFromFileName(files[0].name);
    title.disabled = files.length > 1;
    if (files.length > 1) title.value = "";
  };
  fileInput.addEventListener("change", picked);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) { fileInput.files = e.dataTransfer.files; picked(); }
  });

  const uploadOne = async (file, name, body, row) => {
    row.state("creating the job…");
    const created = await api("POST", "/api/jobs", Object.assign({}, body, {
      title: name, source_file_size_bytes: file.size, file_name: file.name,
    }));
    const id = created.job.job_id;
    row.link(id, name);
    document.getElementById("upload-progress").hidden = false;
    await putWithProgress(created.upload, file, (p) => {
      bar.value = Math.round(p * 100);
      barText.textContent = Math.round(p * 100) + " %";
      row.state("uploading " + Math.round(p * 100) + " %");
    });
    await api("PATCH", "/api/jobs/" + id, {
      title: name, uploaded_at: new Date().toISOString(), source_file_size_bytes: file.size,
    });
    row.state("uploaded, converting");
    return id;
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const files = Array.from(fileInput.files);
    if (!files.length) { status.textContent = "Choose a video first."; return; }
    for (const f of files) {
      if (!extensions.includes(fileExtension(f.name))) {
        status.textContent = f.name + " is not a video this service can convert; choose one of: "
          + extensions.map((x) => "." + x).join(" ");
        return;
      }
      if (f.size > maxBytes) {
        status.textContent = f.name + " is too large: at most " + (maxBytes / 1e6).toFixed(1) + " MB.";
        return;
      }
    }
    const invalid = form.querySelector("[data-setting]:invalid");
    if (invalid) {
      document.getElementById("advanced").open = true;
      const label = invalid.closest("label");
      status.textContent = "Check the setting “" + (label ? label.querySelector("span").firstChild.textContent.trim() : invalid.dataset.setting)
        + "”: " + invalid.validationMessage;
      return;
    }
    const button = document.getElementById("start");
    button.disabled = true;
    list.replaceChildren();
    const body = {
      preset: presetSelect.value || undefined,
      mode: document.getElementById("mode").value,
      settings: readSettings(form),
      preview: document.getElementById("preview").checked,
    };
    const ids = [];
    let failures = 0;
    for (const [i, file] of files.entries()) {
      const name = (files.length === 1 && title.value.trim()) || titleFromFileName(file.name) || "untitled";
      const row = addJobRow(list, file.name);
      status.textContent = files.length === 1 ? "Uploading…" : "Uploading " + (i + 1) + " of " + files.length + "…";
      try {
        ids.push(await uploadOne(file, name, body, row));
      } catch (err) {
        failures += 1;
        row.state("failed: " + err.message, true);
      }
    }
    button.disabled = false;
    if (files.length === 1 && ids.length === 1) {
      status.textContent = "Uploaded. Opening the job…";
      window.location.href = "/jobs/" + ids[0];
      return;
    }
    if (files.length === 1) {
      status.textContent = "Upload failed: " + list.querySelector(".state").textContent.replace(/^failed: /, "");
      return;
    }
    status.textContent = ids.length + " of " + files.length + " videos uploaded"
      + (failures ? "; " + failures + " failed (see below)." : ". Follow them below or on the dashboard.");
  });
}

// Live parts of the pages: pushed by the server as server-sent events; where the browser has
// no EventSource, the fragment is fetched every few seconds instead. The server escapes every
// piece of user text in the HTML it sends.
function setupLive(id, everyMs) {
  const el = document.getElementById(id);
  if (!el || !el.dataset.refresh) return;
  if (el.dataset.live === "0") return;
  if (window.EventSource && el.dataset.events) {
    const es = new EventSource(el.dataset.events);
    el.dataset.transport = "sse";
    es.addEventListener("dashboard", (e) => { el.innerHTML = e.data; });
    es.addEventListener("progress", (e) => {
      const part = document.getElementById("job-progress");
      if (part) part.outerHTML = e.data;
    });
    es.addEventListener("final", () => { es.close(); window.location.reload(); });
    // The server could not render the view: go on by fetching it instead.
    es.addEventListener("stream-error", () => {
      es.close();
      el.dataset.transport = "polling";
      setupRefresh(el, everyMs);
    });
    return;
  }
  el.dataset.transport = "polling";
  setupRefresh(el, everyMs);
}

// Replaces the inner HTML of a live element with the server-rendered fragment every few
// seconds (the fallback of setupLive).
function setupRefresh(el, everyMs) {
  const tick = async () => {
    try {
      const resp = await fetch(el.dataset.refresh, { credentials: "same-origin" });
      if (resp.ok) {
        el.innerHTML = await resp.text();
        if (resp.headers.get("x-job-final") === "1") { window.location.reload(); return; }
      }
    } catch (_) { /* offline for a moment: try again next tick */ }
    setTimeout(tick, everyMs);
  };
  setTimeout(tick, everyMs);
}

function setupCancel() {
  document.addEventListener("click", async (e) => {
    const b = e.target.closest("#cancel");
    if (!b) return;
    if (!window.confirm("Cancel this conversion?")) return;
    b.disabled = true;
    try {
      await api("DELETE", "/api/jobs/" + b.dataset.jobId);
      window.location.reload();
    } catch (err) {
      b.disabled = false;
      window.alert("Could not cancel: " + err.message);
    }
  });
}

// "Convert all" on a preview's page: the whole video with the preview's settings, as a new
// job; the page moves to it.
function setupConvertAll() {
  document.addEventListener("click", async (e) => {
    const b = e.target.closest("#convert-all");
    if (!b) return;
    b.disabled = true;
    try {
      const created = await api("POST", "/api/jobs/" + b.dataset.jobId + "/convert", {});
      window.location.assign("/jobs/" + created.job.job_id);
    } catch (err) {
      b.disabled = false;
      window.alert("Could not start the conversion: " + err.message);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupUpload();
  setupConvertAll();
  setupLive("dashboard", 3000);
  setupLive("job", 3000);
  setupCancel();
});
