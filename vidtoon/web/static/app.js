// vidtoon serve: the page. Plain JS, no build step, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { controls: null, upload: null, frames: 0, previewBusy: false, previewWanted: null, shown: null, polling: null };

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    const text = type.includes("json") ? (await response.json()).error : await response.text();
    throw new Error(text || `error: ${response.status}`);
  }
  return type.includes("json") ? response.json() : response.blob();
}

// --- tabs ---------------------------------------------------------------
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tab")) other.classList.toggle("active", other === tab);
    for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== tab.dataset.tab;
    if (tab.dataset.tab === "batch" && !$("batch-frame").src) $("batch-frame").src = "/batch/";
  });
}

// --- the look: backend and its options, built from /api/controls ----------
function field(f) {
  const label = document.createElement("label");
  label.title = f.help;
  label.append(f.name.replace("_", " ") + " ");
  let input;
  if (f.choices) {
    input = document.createElement("select");
    for (const choice of f.choices) input.append(new Option(choice, choice, false, choice === f.default));
  } else if (f.type === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = !!f.default;
    label.classList.add("check");
  } else {
    input = document.createElement("input");
    input.type = f.type === "str" ? "text" : "number";
    if (f.type === "float") input.step = "0.05";
    input.placeholder = f.default === null ? "style's" : String(f.default);
  }
  input.id = "opt-" + f.name;
  input.dataset.name = f.name;
  input.dataset.type = f.type;
  input.dataset.scopes = f.scopes.join(" ");
  input.addEventListener("change", () => { showPreview(); });
  if (f.type === "bool") label.prepend(input); else label.append(input);
  return label;
}

function showFields() {
  const name = $("backend").value;
  const backend = state.controls.backends.find((b) => b.name === name);
  $("backend-why").textContent = backend.available ? backend.help : `not available here: ${backend.why}`;
  $("fields").replaceChildren(...backend.fields.map(field), ...state.controls.recipe.map(field));
}

// The values of the controls that apply to `scope` ("file": the video; "live": the webcam).
function options(scope = "file") {
  const values = { backend: $("backend").value };
  for (const input of $("fields").querySelectorAll("[data-name]")) {
    if (!input.dataset.scopes.split(" ").includes(scope)) continue;
    const type = input.dataset.type;
    if (type === "bool") { if (input.checked) values[input.dataset.name] = true; continue; }
    if (input.value === "") continue;
    values[input.dataset.name] = type === "int" ? parseInt(input.value, 10) : type === "float" ? parseFloat(input.value) : input.value;
  }
  return values;
}

async function loadControls() {
  state.controls = await api("/api/controls");
  for (const b of state.controls.backends) {
    const option = new Option(b.name, b.name, false, b.name === "classic");
    option.disabled = !b.available;
    $("backend").append(option);
  }
  $("backend").addEventListener("change", () => { showFields(); showPreview(); });
  showFields();
  $("tab-batch").hidden = !state.controls.batch;
}

// --- video: upload, info, frame preview --------------------------------------
function say(text) { $("error").textContent = text || ""; }

function describe(info) {
  const v = info.video.find((s) => s.main) || info.video[0];
  const audio = info.audio.map((a) => `${a.codec} ${a.channels} ch ${a.sample_rate} Hz`).join(", ") || "no audio";
  const frames = v.frames.count === null ? "unknown" : (v.frames.exact ? "" : "about ") + v.frames.count;
  return `${info.path}: ${v.width}x${v.height} ${v.codec}, ${frames} frames, ${(v.rate.average || 0).toFixed(3).replace(/\.?0+$/, "")} fps, ` +
    `${(info.duration || 0).toFixed(2)} s, ${audio}`;
}

async function upload(file) {
  say("");
  $("info").textContent = `uploading ${file.name} (${(file.size / 2 ** 20).toFixed(1)} MiB) ...`;
  $("frames").hidden = true;
  try {
    const answer = await api(`/api/uploads?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
    state.upload = answer.id;
    const v = answer.info.video.find((s) => s.main) || answer.info.video[0];
    state.frames = v.frames.count || 1;
    $("info").textContent = describe(answer.info);
    $("frame").max = String(Math.max(0, state.frames - 1));
    $("frame").value = "0";
    $("frame-number").textContent = "0";
    $("frames").hidden = false;
    $("source-video").src = `/api/uploads/${answer.id}`;
    showPreview();
  } catch (e) {
    $("info").textContent = "";
    say(e.message);
  }
}

$("file").addEventListener("change", () => { if ($("file").files.length) upload($("file").files[0]); });
$("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
});
$("frame").addEventListener("input", () => { $("frame-number").textContent = $("frame").value; showPreview(); });

// Newest request wins: while one preview is being made, only the latest wish waits.
async function showPreview() {
  if (!state.upload) return;
  state.previewWanted = { upload: state.upload, frame: parseInt($("frame").value, 10), options: options() };
  if (state.previewBusy) return;
  state.previewBusy = true;
  while (state.previewWanted) {
    const wanted = state.previewWanted;
    state.previewWanted = null;
    const started = performance.now();
    try {
      const pair = await api("/api/preview", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(wanted) });
      $("before").src = "data:image/jpeg;base64," + pair.before;
      $("after").src = "data:image/jpeg;base64," + pair.after;
      $("after").dataset.frame = String(wanted.frame);
      $("preview-time").textContent = `(frame ${wanted.frame}, ${Math.round(performance.now() - started)} ms)`;
      say("");
    } catch (e) {
      say(e.message);
    }
  }
  state.previewBusy = false;
}

// --- jobs: start, queue, progress, cancel, result -------------------------
$("start").addEventListener("click", async () => {
  say("");
  try {
    await api("/api/jobs", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ upload: state.upload, options: options() }) });
    poll();
  } catch (e) {
    say(e.message);
  }
});

function seconds(s) { return s === null ? "-" : s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`; }

function jobItem(job) {
  const item = document.createElement("li");
  item.id = "job-" + job.id;
  item.dataset.state = job.state;
  item.className = "job " + job.state;
  const bar = document.createElement("progress");
  bar.max = job.total || 1;
  bar.value = job.state === "done" ? bar.max : job.done;
  const text = document.createElement("span");
  const fps = job.fps === null ? "-.-" : job.fps.toFixed(1);
  text.className = "progress-text";
  const time = job.state === "done" ? `in ${seconds(job.seconds)}` : `eta ${seconds(job.eta)}`;
  text.textContent = `${job.name}: ${job.state} · ${job.done}/${job.total ?? "?"} frames · ${fps} fps · ${time}`;
  item.append(text, bar);
  if (job.state === "queued" || job.state === "running") {
    const cancel = document.createElement("button");
    cancel.textContent = "Cancel";
    cancel.className = "cancel";
    cancel.addEventListener("click", () => api(`/api/jobs/${job.id}/cancel`, { method: "POST" }).then(poll, (e) => say(e.message)));
    item.append(cancel);
  }
  // What the CLI says even with --quiet: the error, and what was lost from a damaged input.
  for (const line of [job.error, ...job.notes.filter((n) => n.startsWith("warning: "))]) {
    if (!line) continue;
    const said = document.createElement("p");
    said.className = line.startsWith("warning: ") ? "warning" : "error";
    said.textContent = line;
    item.append(said);
  }
  return item;
}

function showResult(job) {
  if (state.shown === job.id) return;
  state.shown = job.id;
  $("source-video").src = `/api/uploads/${job.upload}`;
  $("result-video").src = `/api/jobs/${job.id}/result`;
  $("download").href = `/api/jobs/${job.id}/result?download=1`;
  $("download").dataset.job = job.id;
  $("result").hidden = false;
}

async function poll() {
  if (state.polling) return;
  state.polling = true;
  try {
    for (;;) {
      const { jobs } = await api("/api/jobs");
      $("queue").replaceChildren(...jobs.map(jobItem));
      $("queue-empty").hidden = jobs.length > 0;
      const finished = jobs.filter((j) => j.state === "done");
      if (finished.length) showResult(finished[finished.length - 1]);
      if (!jobs.some((j) => j.state === "queued" || j.state === "running")) break;
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
  } catch (e) {
    say(e.message);
  } finally {
    state.polling = false;
  }
}

// --- webcam: getUserMedia -> JPEG -> /api/live -> picture ------------------
const cam = { stream: null, on: false, times: [], frames: 0 };

$("cam-start").addEventListener("click", async () => {
  $("cam-error").textContent = "";
  try {
    cam.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (e) {
    $("cam-error").textContent = `error: no camera (${e.name}: ${e.message})`;
    return;
  }
  $("cam-video").srcObject = cam.stream;
  await $("cam-video").play();
  cam.on = true;
  $("cam-start").disabled = true;
  $("cam-stop").disabled = false;
  camLoop();
});

$("cam-stop").addEventListener("click", stopCamera);

function stopCamera() {
  cam.on = false;
  if (cam.stream) for (const track of cam.stream.getTracks()) track.stop();
  cam.stream = null;
  $("cam-start").disabled = false;
  $("cam-stop").disabled = true;
}

// One frame in flight: the next frame is grabbed when the last cartoon is back, so it is
// always the newest and none wait in a queue.
async function camLoop() {
  const video = $("cam-video");
  const canvas = document.createElement("canvas");
  while (cam.on) {
    const width = video.videoWidth, height = video.videoHeight;
    if (!width || !height) { await new Promise((resolve) => requestAnimationFrame(resolve)); continue; }
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").drawImage(video, 0, 0, width, height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    const sent = performance.now();
    let cartoon;
    try {
      cartoon = await api(`/api/live?options=${encodeURIComponent(JSON.stringify(options("live")))}`, { method: "POST", body: blob });
    } catch (e) {
      $("cam-error").textContent = e.message;
      stopCamera();
      break;
    }
    const latency = performance.now() - sent;
    const old = $("cam-out").src;
    $("cam-out").src = URL.createObjectURL(cartoon);
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    cam.frames += 1;
    const now = performance.now();
    cam.times.push(now);
    while (cam.times.length && cam.times[0] < now - 2000) cam.times.shift();
    const fps = cam.times.length > 1 ? (cam.times.length - 1) / ((now - cam.times[0]) / 1000) : 0;
    $("cam-stats").textContent = `${width}x${height} · ${fps.toFixed(1)} fps · latency ${Math.round(latency)} ms · ${cam.frames} frames`;
    $("cam-out").dataset.frames = String(cam.frames);
    $("cam-out").dataset.size = `${width}x${height}`;
  }
}

loadControls().then(poll, (e) => say(e.message));
