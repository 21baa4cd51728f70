// The facecore web page: send a photo to POST /v1/analyze, draw the faces, list the
// predictions, and show POST /v1/beautify's result beside it. No framework, no build step.
"use strict";

(() => {
  const KEY_STORE = "facecore.apiKey";
  const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4"];
  // The 68 iBUG points as contours: [first, last, closed].
  const CONTOURS = [
    [0, 16, false], [17, 21, false], [22, 26, false], [27, 30, false], [31, 35, false],
    [36, 41, true], [42, 47, true], [48, 59, true], [60, 67, true],
  ];
  const SHOWN = ["attractiveness", "age", "quality"];

  const $ = (id) => document.getElementById(id);
  const state = { photo: null, photoUrl: null, beautifiedUrl: null, run: 0, beautify: null };

  class RequestError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // -- requests ------------------------------------------------------------------------------
  function authHeaders() {
    const key = $("api-key").value.trim();
    return key ? { "X-API-Key": key } : {};
  }

  async function post(path, file, signal) {
    const body = new FormData();
    body.append("file", file, file.name || "photo");
    let res;
    try {
      res = await fetch(path, { method: "POST", headers: authHeaders(), body, signal });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new RequestError(0, "network", `could not reach the service (${e.message})`);
    }
    if (res.ok) return res;
    let code = `http_${res.status}`;
    let message = res.statusText || "the request failed";
    try {
      const j = await res.json();
      if (j && j.error) ({ code, message } = j.error);
    } catch {
      // not a JSON body: keep the status text
    }
    throw new RequestError(res.status, code, message);
  }

  function describe(err) {
    if (err.status === 401) {
      return "This service needs an API key: enter a valid key in the \u201cAPI key\u201d field " +
        `above and send the photo again. (${err.message})`;
    }
    if (err.status === 0) return err.message;
    return `Error ${err.status} (${err.code}): ${err.message}`;
  }

  function showError(el, err) {
    el.textContent = describe(err);
    el.dataset.status = String(err.status);
    el.dataset.code = err.code;
    el.hidden = false;
  }

  function hideError(el) {
    el.hidden = true;
    el.textContent = "";
  }

  // -- drawing -------------------------------------------------------------------------------
  function loadImage(url) {
    return new Promise((resolve) => {
      const im = new Image();
      im.onload = () => resolve(im);
      im.onerror = () => resolve(null);
      im.src = url;
    });
  }

  function draw(image, data) {
    const canvas = $("overlay");
    const { width, height } = data.image;
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    if (image) {
      ctx.drawImage(image, 0, 0, width, height);
    } else { // the browser cannot show this format: draw on grey
      ctx.fillStyle = "#888";
      ctx.fillRect(0, 0, width, height);
    }
    const lw = Math.max(2, Math.round(Math.max(width, height) / 300));
    let points = 0;
    data.faces.forEach((face, i) => {
      const color = COLORS[i % COLORS.length];
      const [x1, y1, x2, y2] = face.box;
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = lw;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.font = `bold ${lw * 8}px sans-serif`;
      ctx.fillText(String(i + 1), x1 + lw, Math.max(y1 - lw * 2, lw * 8));
      const lm = face.landmarks || [];
      ctx.lineWidth = Math.max(1, lw / 2);
      for (const [a, b, closed] of CONTOURS) {
        if (lm.length <= b) continue;
        ctx.beginPath();
        ctx.moveTo(lm[a][0], lm[a][1]);
        for (let k = a + 1; k <= b; k++) ctx.lineTo(lm[k][0], lm[k][1]);
        if (closed) ctx.closePath();
        ctx.stroke();
      }
      for (const [x, y] of lm) {
        ctx.beginPath();
        ctx.arc(x, y, lw, 0, 2 * Math.PI);
        ctx.fill();
      }
      points += lm.length;
    });
    canvas.dataset.boxes = String(data.faces.length);
    canvas.dataset.landmarks = String(points);
  }

  // -- the faces' numbers --------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmt(v, digits) {
    return Number(v).toFixed(digits);
  }

  // A bar per bin (labelled: with the bins' values below); bins inside the interval, when
  // there is one, are marked.
  function chart(pred, labelled) {
    const box = el("div", pred.bins.length > 30 ? "chart dense" : "chart");
    const bars = el("div", "bars");
    const peak = Math.max(...pred.probabilities) || 1;
    const [lo, hi] = pred.interval || [-Infinity, Infinity];
    pred.bins.forEach((bin, k) => {
      const p = pred.probabilities[k];
      const bar = el("div", bin >= lo && bin <= hi ? "bar in" : "bar");
      bar.style.height = `${(100 * p) / peak}%`;
      bar.title = `${bin}: ${(100 * p).toFixed(1)}%`;
      bars.append(bar);
    });
    box.append(bars);
    if (labelled) {
      const bins = el("div", "bins");
      for (const bin of pred.bins) bins.append(el("span", null, String(bin)));
      box.append(bins);
    }
    return box;
  }

  function row(list, name, cls, text, value) {
    list.append(el("dt", null, name));
    const dd = el("dd", cls, text);
    if (value !== undefined) dd.dataset.value = String(value);
    list.append(dd);
    return dd;
  }

  function faceCard(face, i, warnings) {
    const card = el("article", "face");
    card.dataset.face = String(i);
    card.style.borderColor = COLORS[i % COLORS.length];
    card.append(el("h2", null, `Face ${i + 1}`));
    const list = el("dl");
    const p = face.predictions || {};
    const att = p.attractiveness;
    if (att) {
      const dd = row(list, "attractiveness", "attractiveness", fmt(att.value, 2), att.value);
      dd.append(el("small", null, ` ${att.model}`));
      if (att.probabilities) dd.append(chart(att, true));
    } else {
      row(list, "attractiveness", "attractiveness", "n/a");
    }
    const age = p.age;
    if (age) {
      const text = age.interval
        ? `${fmt(age.value, 1)} years (90% interval ${fmt(age.interval[0], 0)}\u2013` +
          `${fmt(age.interval[1], 0)})`
        : `${fmt(age.value, 1)} years`;
      const dd = row(list, "age", "age", text, age.value);
      if (age.probabilities) dd.append(chart(age, false));
    } else {
      row(list, "age", "age", "n/a");
    }
    const q = p.quality;
    if (q) row(list, "quality", "quality", fmt(q.value, 2), q.value);
    else row(list, "quality", "quality", "n/a");
    for (const [name, other] of Object.entries(p)) {
      if (!SHOWN.includes(name)) row(list, name, "other", fmt(other.value, 3), other.value);
    }
    card.append(list);
    if (warnings.length) {
      const ul = el("ul", "warnings");
      for (const w of warnings) ul.append(el("li", null, `${w.code}: ${w.message}`));
      card.append(ul);
    }
    return card;
  }

  function render(image, data) {
    draw(image, data);
    const warnings = Array.isArray(data.warnings) ? data.warnings : [];
    const faces = $("faces");
    faces.replaceChildren(
      ...data.faces.map((f, i) => faceCard(f, i, warnings.filter((w) => w.face === i))),
    );
    const general = warnings.filter((w) => !Number.isInteger(w.face) || !data.faces[w.face]);
    const ul = $("warnings");
    ul.replaceChildren(...general.map((w) => el("li", null, `${w.code}: ${w.message}`)));
    ul.hidden = general.length === 0;
    $("result").hidden = false;
  }

  // -- the flow ------------------------------------------------------------------------------
  function setState(s, status) {
    document.body.dataset.state = s;
    $("status").textContent = status;
  }

  async function analyze(file) {
    const run = ++state.run;
    state.photo = file;
    if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
    state.photoUrl = URL.createObjectURL(file);
    hideError($("error"));
    setState("analysing", `Analysing ${file.name || "the photo"}\u2026`);
    let data;
    let image;
    try {
      const [res, im] = await Promise.all([post("/v1/analyze", file), loadImage(state.photoUrl)]);
      data = await res.json();
      image = im;
    } catch (e) {
      if (run !== state.run) return;
      $("result").hidden = true;
      showError($("error"), e);
      setState("error", "");
      return;
    }
    if (run !== state.run) return; // a newer photo was chosen meanwhile
    render(image, data);
    const n = data.faces.length;
    setState("done", n === 0 ? "No face found." : `${n} face${n === 1 ? "" : "s"} found.`);
    if (n > 0) {
      beautify();
    } else {
      if (state.beautify) state.beautify.abort();
      const img = $("beautified");
      img.removeAttribute("src");
      img.dataset.state = "idle";
      $("beautify-info").textContent = "Beautified: no face to beautify";
    }
  }

  async function beautify() {
    if (!state.photo) return;
    if (state.beautify) state.beautify.abort();
    const ctl = new AbortController();
    state.beautify = ctl;
    const img = $("beautified");
    const info = $("beautify-info");
    const warp = $("warp").value;
    const smooth = $("smooth").value;
    hideError($("beautify-error"));
    img.dataset.state = "loading";
    info.textContent = "Beautifying\u2026";
    const query = new URLSearchParams({ warp, smooth, format: "jpeg" });
    try {
      const res = await post(`/v1/beautify?${query}`, state.photo, ctl.signal);
      const blob = await res.blob();
      if (ctl !== state.beautify) return;
      const url = URL.createObjectURL(blob);
      const shown = await loadImage(url);
      if (ctl !== state.beautify) return;
      if (state.beautifiedUrl) URL.revokeObjectURL(state.beautifiedUrl);
      state.beautifiedUrl = url;
      img.src = url;
      // beautify's own scorer (the classical SCUT-FBP5500 model, not always the one above)
      const before = res.headers.get("X-Facecore-Score-Before");
      const after = res.headers.get("X-Facecore-Score-After");
      const identity = res.headers.get("X-Facecore-Identity-Distance");
      let text = `Beautified (warp ${warp}, smoothing ${smooth})`;
      if (before) text += `; its scorer: ${fmt(before, 2)} \u2192 ${after ? fmt(after, 2) : "n/a"}`;
      if (identity) text += `; identity distance ${fmt(identity, 2)} (under 0.6: same person)`;
      info.textContent = text;
      img.dataset.state = shown ? "done" : "error";
    } catch (e) {
      if (e.name === "AbortError" || ctl !== state.beautify) return;
      img.dataset.state = "error";
      info.textContent = "Beautified";
      showError($("beautify-error"), e);
    }
  }

  // -- wiring --------------------------------------------------------------------------------
  function init() {
    const key = $("api-key");
    try {
      key.value = localStorage.getItem(KEY_STORE) || "";
    } catch {
      // storage disabled: the key is kept for this page only
    }
    key.addEventListener("input", () => {
      try {
        if (key.value) localStorage.setItem(KEY_STORE, key.value);
        else localStorage.removeItem(KEY_STORE);
      } catch {
        // storage disabled
      }
    });

    const input = $("file");
    input.addEventListener("change", () => {
      if (input.files.length) analyze(input.files[0]);
    });

    const drop = $("drop");
    // A photo dropped anywhere else must not make the browser navigate to it.
    for (const ev of ["dragover", "drop"]) document.addEventListener(ev, (e) => e.preventDefault());
    drop.addEventListener("dragover", () => drop.classList.add("over"));
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      drop.classList.remove("over");
      const file = e.dataTransfer.files[0];
      if (file) analyze(file);
    });

    for (const id of ["warp", "smooth"]) {
      const slider = $(id);
      slider.addEventListener("input", () => { $(`${id}-value`).textContent = slider.value; });
      slider.addEventListener("change", beautify);
    }
    setState("idle", "");
  }

  init();
})();
