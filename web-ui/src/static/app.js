// parallax pages: upload with progress, live refresh of the dashboard and job page, cancel.
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

function setupUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const fileInput = document.getElementById("file");
  const title = document.getElementById("title");
  const drop = document.getElementById("drop");
  const status = document.getElementById("upload-status");
  const bar = document.getElementById("progress");
  const barText = document.getElementById("progress-text");
  const div = document.getElementById("divergence");
  const divOut = document.getElementById("divergence-value");
  const maxBytes = Number(form.dataset.maxBytes);
  div.addEventListener("input", () => { divOut.textContent = div.value; });
  const picked = () => {
    const f = fileInput.files[0];
    if (f) {
      drop.querySelector("span").textContent = f.name;
      if (!title.value) title.value = titleFromFileName(f.name);
    }
  };
  fileInput.addEventListener("change", picked);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) { fileInput.files = e.dataTransfer.files; picked(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = fileInput.files[0];
    if (!file) { status.textContent = "Choose a video first."; return; }
    if (file.size > maxBytes) {
      status.textContent = "This file is too large: at most " + (maxBytes / 1e6).toFixed(1) + " MB.";
      return;
    }
    const button = document.getElementById("start");
    button.disabled = true;
    const name = title.value.trim() || titleFromFileName(file.name) || "untitled";
    try {
      status.textContent = "Creating the job…";
      const created = await api("POST", "/api/jobs", {
        title: name,
        mode: document.getElementById("mode").value,
        settings: { divergence: Number(div.value) },
        source_file_size_bytes: file.size,
      });
      document.getElementById("upload-progress").hidden = false;
      status.textContent = "Uploading…";
      await putWithProgress(created.upload, file, (p) => {
        bar.value = Math.round(p * 100);
        barText.textContent = Math.round(p * 100) + " %";
      });
      bar.value = 100; barText.textContent = "100 %";
      await api("PATCH", "/api/jobs/" + created.job.job_id, {
        title: name,
        uploaded_at: new Date().toISOString(),
        source_file_size_bytes: file.size,
      });
      status.textContent = "Uploaded. Opening the job…";
      window.location.href = "/jobs/" + created.job.job_id;
    } catch (err) {
      status.textContent = "Upload failed: " + err.message;
      button.disabled = false;
    }
  });
}

// Replaces the inner HTML of a live element with the server-rendered fragment every few
// seconds (the server escapes every piece of user text in it).
function setupRefresh(id, everyMs) {
  const el = document.getElementById(id);
  if (!el || !el.dataset.refresh) return;
  if (el.dataset.live === "0") return;
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

document.addEventListener("DOMContentLoaded", () => {
  setupUpload();
  setupRefresh("dashboard", 3000);
  setupRefresh("job", 3000);
  setupCancel();
});
