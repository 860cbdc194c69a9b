// The web page of tiffin serve: the model list, a page per model, live figures from /metrics.
//
// Everything a package says is untrusted. Text goes into the page through textContent only (the
// el() helper below); the one exception, the model card, arrives as HTML the server rendered
// and sanitized, and the page's Content-Security-Policy forbids inline script besides.
"use strict";

const REFRESH_MS = 2000;

// ---------------------------------------------------------------------------------------------
// DOM helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function table(headers, rows, numeric) {
  const isNum = (i) => (numeric || []).includes(i);
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { class: isNum(i) ? "num" : null }, h)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell, i) =>
      el("td", { class: isNum(i) ? "num" : null }, cell))))));
}

function copyButton(text) {
  return el("button", {
    class: "plain", type: "button", title: "Copy",
    onclick: async (event) => {
      const button = event.currentTarget;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "copied";
      } catch (_) {
        // Clipboard access needs a secure context (https or localhost): select instead.
        const range = document.createRange();
        range.selectNodeContents(button.previousSibling || button);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        button.textContent = "selected";
      }
      setTimeout(() => { button.textContent = "copy"; }, 1500);
    },
  }, "copy");
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || "") }, text);
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.status + " " + response.statusText);
  return body;
}

function fmtSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  if (s < 1e-3) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
  return s.toFixed(2) + " s";
}

function fmtNumber(x) {
  if (typeof x === "string") return x;
  if (x === null || x === undefined) return "–";
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? x.toExponential(3) : String(Number(x.toPrecision(6)));
}

function fmtBytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1024 / 1024).toFixed(1) + " MiB";
}

function shortDigest(d) {
  return d ? d.replace(/^sha256:/, "").slice(0, 12) : "";
}

function signatureText(sig) {
  if (!sig || !sig.signed) return ["unsigned", "warn"];
  const who = sig.certificate ? "certificate " + sig.certificate
    : sig.key_hint ? "key " + sig.key_hint.slice(0, 12) + "…" : "no key hint";
  return sig.verified ? ["signed by " + who + ", verified at load", "ok"]
    : ["signed by " + who + " (not verified: serve has no --key)", "warn"];
}

// ---------------------------------------------------------------------------------------------
// The server's own Prometheus figures

function parseLabels(text) {
  const labels = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  let m;
  while ((m = re.exec(text))) labels[m[1]] = m[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
  return labels;
}

function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    samples.push({ name: m[1], labels: m[2] ? parseLabels(m[2]) : {}, value: Number(m[3]) });
  }
  return samples;
}

// Per model version: requests, errors by status, latency buckets, batch rows.
function figuresByModel(samples) {
  const out = {};
  const of = (l) => {
    const key = l.model + "\u0000" + l.version;
    return out[key] || (out[key] = { requests: 0, statuses: {}, buckets: {}, count: 0, sum: 0,
      batchCount: 0, batchSum: 0, batchBuckets: {} });
  };
  for (const s of samples) {
    const l = s.labels;
    if (!l.model) continue;
    if (s.name === "tiffin_requests_total") {
      const f = of(l);
      f.requests += s.value;
      f.statuses[l.status] = (f.statuses[l.status] || 0) + s.value;
    } else if (s.name === "tiffin_request_duration_seconds_bucket") {
      const f = of(l);
      f.buckets[l.le] = (f.buckets[l.le] || 0) + s.value;
    } else if (s.name === "tiffin_request_duration_seconds_count") {
      of(l).count += s.value;
    } else if (s.name === "tiffin_request_duration_seconds_sum") {
      of(l).sum += s.value;
    } else if (s.name === "tiffin_batch_rows_count") {
      of(l).batchCount += s.value;
    } else if (s.name === "tiffin_batch_rows_sum") {
      of(l).batchSum += s.value;
    } else if (s.name === "tiffin_batch_rows_bucket") {
      const f = of(l);
      f.batchBuckets[l.le] = (f.batchBuckets[l.le] || 0) + s.value;
    }
  }
  return out;
}

// Cumulative buckets as [upper bound, count] sorted by bound, +Inf last.
function sortedBuckets(buckets) {
  return Object.entries(buckets)
    .map(([le, n]) => [le === "+Inf" ? Infinity : Number(le), n])
    .sort((a, b) => a[0] - b[0]);
}

// The q-quantile, interpolated within its bucket as Prometheus' histogram_quantile does.
function quantile(buckets, q) {
  const sorted = sortedBuckets(buckets);
  const total = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (!total) return null;
  const rank = q * total;
  let prevBound = 0, prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Infinity) return prevBound;
      const inBucket = count - prevCount;
      return prevBound + (bound - prevBound) * (inBucket ? (rank - prevCount) / inBucket : 0);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

async function fetchFigures() {
  const response = await fetch("/metrics");
  if (!response.ok) throw new Error("/metrics answered " + response.status);
  return figuresByModel(parseMetrics(await response.text()));
}

// Requests per second between two polls.
const lastSeen = {};
function rate(key, requests) {
  const now = performance.now();
  const before = lastSeen[key];
  lastSeen[key] = { now, requests };
  if (!before || now <= before.now) return null;
  return (requests - before.requests) / ((now - before.now) / 1000);
}

function histogramSvg(buckets) {
  const sorted = sortedBuckets(buckets);
  const bars = [];
  let prev = 0;
  for (const [bound, count] of sorted) {
    bars.push([bound, count - prev]);
    prev = count;
  }
  const width = 600, height = 140, pad = 18;
  const max = Math.max(1, ...bars.map((b) => b[1]));
  const w = bars.length ? (width - 10) / bars.length : 0;
  if (!bars.some((b) => b[1] > 0)) {
    return el("p", { class: "muted" }, "No requests to this model yet: the latency histogram appears with the first.");
  }
  const node = svg("svg", { class: "histogram", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "request latency histogram" });
  bars.forEach(([bound, n], i) => {
    const h = n ? Math.max(1, (height - 2 * pad) * n / max) : 0;
    const rect = svg("rect", { x: 5 + i * w + 1, y: height - pad - h, width: Math.max(1, w - 2), height: h });
    rect.append(svg("title", {}, (bound === Infinity ? "> last bound" : "≤ " + fmtSeconds(bound)) + ": " + n));
    node.append(rect);
    if (i % 3 === 0) {
      node.append(svg("text", { x: 5 + i * w, y: height - 4 }, bound === Infinity ? "+∞" : fmtSeconds(bound)));
    }
    if (n) node.append(svg("text", { x: 5 + i * w + 1, y: height - pad - h - 3 }, n));
  });
  return node;
}

// ---------------------------------------------------------------------------------------------
// The model list

async function showList(main) {
  const data = await getJson("/ui/api/models");
  setServerState(data);
  const body = el("tbody");
  main.replaceChildren(
    el("h1", {}, "Served models"),
    el("p", { class: "muted" }, data.models.length + " model version(s). Figures refresh every " +
      REFRESH_MS / 1000 + " s."),
    el("table", { id: "models" },
      el("thead", {}, el("tr", {}, ["model", "version", "state", "loaded in", "digest", "signature",
        "requests", "req/s", "p50", "p99"].map((h) => el("th", {}, h)))),
      body));
  const cells = {};
  for (const m of data.models) {
    const key = m.name + "\u0000" + m.version;
    const [sigText, sigKind] = signatureText(m.signature);
    cells[key] = { requests: el("td", { class: "num" }, "0"), rate: el("td", { class: "num" }, "–"),
      p50: el("td", { class: "num" }, "–"), p99: el("td", { class: "num" }, "–") };
    body.append(el("tr", { "data-model": m.name, "data-version": m.version },
      el("td", {}, el("a", { href: modelHref(m.name, m.version) }, m.name)),
      el("td", {}, m.version),
      el("td", {}, badge(data.ready ? "ready" : "not ready", data.ready ? "ok" : "bad")),
      el("td", { class: "num" }, fmtSeconds(m.load_seconds)),
      el("td", {}, el("code", { title: m.digest }, shortDigest(m.digest)), copyButton(m.digest)),
      el("td", {}, badge(sigText, sigKind)),
      cells[key].requests, cells[key].rate, cells[key].p50, cells[key].p99));
  }
  const refresh = async () => {
    const figures = await fetchFigures().catch(() => null);
    if (!figures) return;
    for (const [key, c] of Object.entries(cells)) {
      const f = figures[key] || { requests: 0, buckets: {} };
      c.requests.textContent = String(f.requests);
      const r = rate(key, f.requests);
      c.rate.textContent = r === null ? "–" : r.toFixed(1);
      c.p50.textContent = fmtSeconds(quantile(f.buckets, 0.5));
      c.p99.textContent = fmtSeconds(quantile(f.buckets, 0.99));
    }
  };
  await refresh();
  return refresh;
}

function modelHref(name, version) {
  return "/ui/models/" + encodeURIComponent(name) + "/" + encodeURIComponent(version);
}

function setServerState(data) {
  const state = document.getElementById("server-state");
  state.textContent = data.ready ? "ready" : "not ready";
  state.className = "badge " + (data.ready ? "ok" : "bad");
  document.getElementById("footer-version").textContent =
    data.server ? data.server.name + " " + data.server.version : "";
}

// ---------------------------------------------------------------------------------------------
// Requests: V2 datatypes, example payloads, snippets

const V2_TYPES = { f16: "FP16", f32: "FP32", f64: "FP64", i8: "INT8", i16: "INT16", i32: "INT32",
  i64: "INT64", u8: "UINT8", u16: "UINT16", u32: "UINT32", u64: "UINT64", bool: "BOOL", string: "BYTES" };
const NUMPY_TYPES = { f16: "float16", f32: "float32", f64: "float64", i8: "int8", i16: "int16",
  i32: "int32", i64: "int64", u8: "uint8", u16: "uint16", u32: "uint32", u64: "uint64",
  bool: "bool_", string: "object_" };

function product(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

// The inputs of the try-it form: the first row of the golden examples when there are some,
// else zeros of the signature's shape with each named dim 1.
function exampleInputs(model) {
  const sig = model.manifest.signature;
  const batched = model.batch_dim !== null && model.batch_dim !== undefined;
  return sig.inputs.map((spec) => {
    const ex = model.example && model.example[spec.name];
    if (ex && Array.isArray(ex.shape) && Array.isArray(ex.data)) {
      let shape = ex.shape.slice();
      let data = ex.data;
      if (batched && shape.length > 0 && shape[0] > 1) {
        data = data.slice(0, product(shape.slice(1)));
        shape = [1].concat(shape.slice(1));
      }
      return { name: spec.name, dtype: spec.dtype, shape, data };
    }
    const shape = spec.shape.map((d) => (typeof d === "number" ? d : 1));
    const zero = spec.dtype === "bool" ? false : spec.dtype === "string" ? "" : 0;
    return { name: spec.name, dtype: spec.dtype, shape, data: new Array(product(shape)).fill(zero) };
  });
}

function nest(data, shape) {
  if (shape.length <= 1) return shape.length === 0 ? data[0] : data.slice();
  const step = product(shape.slice(1));
  const out = [];
  for (let i = 0; i < shape[0]; i++) out.push(nest(data.slice(i * step, (i + 1) * step), shape.slice(1)));
  return out;
}

// The request as the form shows it: one line per input, readable and still plain JSON.
function v2Text(inputs) {
  const lines = v2Body(inputs).inputs.map((t) => "  " + JSON.stringify(t));
  return "{\"inputs\": [\n" + lines.join(",\n") + "\n]}";
}

function v2Body(inputs) {
  return { inputs: inputs.map((t) => ({ name: t.name, shape: t.shape, datatype: V2_TYPES[t.dtype] || t.dtype, data: t.data })) };
}

function shq(text) {
  return "'" + text.replace(/'/g, "'\\''") + "'";
}

function curl(url, body) {
  return "curl -s -X POST " + shq(url) + " \\\n  -H 'Content-Type: application/json' \\\n  -d " + shq(JSON.stringify(body));
}

function snippets(model, inputs, servedCount) {
  const origin = location.origin;
  const name = encodeURIComponent(model.name), version = encodeURIComponent(model.version);
  const named = Object.fromEntries(inputs.map((t) => [t.name, nest(t.data, t.shape)]));
  const instances = inputs.length === 1 ? nest(inputs[0].data, inputs[0].shape)
    : nest(inputs[0].data, inputs[0].shape).map((_, i) =>
      Object.fromEntries(inputs.map((t) => [t.name, nest(t.data, t.shape)[i]])));
  const host = location.host;
  const py = ["import numpy as np", "import tritonclient.http as httpclient", "",
    "client = httpclient.InferenceServerClient(" + JSON.stringify(host) + ")", "inputs = []"];
  for (const t of inputs) {
    const v = "x_" + t.name.replace(/[^A-Za-z0-9_]/g, "_");
    py.push(v + " = httpclient.InferInput(" + JSON.stringify(t.name) + ", " + JSON.stringify(t.shape) +
      ", " + JSON.stringify(V2_TYPES[t.dtype] || t.dtype) + ")");
    py.push(v + ".set_data_from_numpy(np.array(" + JSON.stringify(nest(t.data, t.shape)) +
      ", dtype=np." + (NUMPY_TYPES[t.dtype] || "float32") + "))");
    py.push("inputs.append(" + v + ")");
  }
  py.push("result = client.infer(" + JSON.stringify(model.name) + ", inputs, model_version=" +
    JSON.stringify(model.version) + ")");
  for (const o of model.manifest.signature.outputs) {
    py.push("print(" + JSON.stringify(o.name) + ", result.as_numpy(" + JSON.stringify(o.name) + "))");
  }
  return [
    ["V2 (curl)", curl(origin + "/v2/models/" + name + "/versions/" + version + "/infer", v2Body(inputs))],
    ["Triton client (Python)", py.join("\n")],
    ["V1 (curl)", curl(origin + "/v1/models/" + name + "/versions/" + version + ":predict", { instances: Array.isArray(instances) ? instances : [instances] })],
    ["MLflow (curl)", (servedCount > 1 ? "# MLflow's /invocations names no model: it answers only on a server that\n" +
      "# serves one model alone (this one serves " + servedCount + "). Serve this package alone to use it.\n" : "") +
      curl(origin + "/invocations", { inputs: named })],
    ["/predict (curl)", curl(origin + "/models/" + name + "/versions/" + version + "/predict", named)],
  ];
}

// ---------------------------------------------------------------------------------------------
// A V2 answer as tables, with class labels

function outputTable(output, spec) {
  const labels = spec && spec.class_labels;
  const shape = output.shape || [];
  const data = output.data || [];
  const rows = shape.length ? shape[0] : 1;
  const width = rows ? data.length / rows : 0;
  if (shape.length === 2 && labels && labels.length === width) {
    return table(["row"].concat(labels), Array.from({ length: rows }, (_, r) =>
      [String(r)].concat(data.slice(r * width, (r + 1) * width).map(fmtNumber))),
    Array.from({ length: width + 1 }, (_, i) => i));
  }
  if (shape.length <= 1 && labels) {
    return table(["row", "value", "class"], data.map((v, r) => [String(r), fmtNumber(v),
      Number.isInteger(v) && v >= 0 && v < labels.length ? labels[v] : typeof v === "string" ? v : "–"]), [0, 1]);
  }
  return table(["row", "values"], Array.from({ length: rows }, (_, r) =>
    [String(r), data.slice(r * width, (r + 1) * width).map(fmtNumber).join(", ")]), [0]);
}

function showAnswer(target, model, answer) {
  const specs = Object.fromEntries(model.manifest.signature.outputs.map((o) => [o.name, o]));
  target.replaceChildren(...(answer.outputs || []).map((o) =>
    el("div", { class: "output", "data-output": o.name },
      el("h3", {}, o.name + " ", el("span", { class: "muted" }, (o.datatype || "") + " [" + (o.shape || []).join(", ") + "]")),
      outputTable(o, specs[o.name]))));
}

// ---------------------------------------------------------------------------------------------
// The model page

function contractRows(specs, kind) {
  return specs.map((s) => [kind, s.name, s.dtype, "[" + s.shape.map(String).join(", ") + "]",
    s.feature_names ? s.feature_names.join(", ") : "", s.class_labels ? s.class_labels.join(", ") : "",
    s.description || ""]);
}

function metaList(pairs) {
  return el("dl", { class: "meta" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "" &&
    !(Array.isArray(v) && !v.length)).map(([k, v]) => [el("dt", {}, k), el("dd", {}, Array.isArray(v) ? v.join(", ") : String(v))]));
}

async function showModel(main, name, version) {
  const [list, model] = await Promise.all([getJson("/ui/api/models"),
    getJson("/ui/api/models/" + encodeURIComponent(name) + "/" + encodeURIComponent(version))]);
  setServerState(list);
  const m = model.manifest;
  const [sigText, sigKind] = signatureText(model.signature);
  const inputs = exampleInputs(model);

  const figures = { requests: el("div", { class: "value", id: "fig-requests" }, "0"),
    rate: el("div", { class: "value", id: "fig-rate" }, "–"),
    p50: el("div", { class: "value", id: "fig-p50" }, "–"),
    p99: el("div", { class: "value", id: "fig-p99" }, "–"),
    errors: el("div", { class: "value", id: "fig-errors" }, "0"),
    batch: el("div", { class: "value", id: "fig-batch" }, "–") };
  const figure = (label, value) => el("div", { class: "figure" }, value, el("div", { class: "label" }, label));
  const histogram = el("div", { id: "histogram" });
  const statuses = el("div", { id: "statuses", class: "muted" });

  const request = el("textarea", { id: "try-request", spellcheck: "false", "aria-label": "request body" });
  request.value = v2Text(inputs);
  const answer = el("div", { id: "try-answer" });
  const send = el("button", { id: "try-send", type: "button", onclick: async () => {
    answer.replaceChildren(el("p", { class: "muted" }, "Sending…"));
    let body;
    try {
      body = JSON.parse(request.value);
    } catch (e) {
      answer.replaceChildren(el("div", { class: "error", id: "try-error" }, "Not JSON: " + e.message));
      return;
    }
    const url = "/v2/models/" + encodeURIComponent(model.name) + "/versions/" + encodeURIComponent(model.version) + "/infer";
    const started = performance.now();
    try {
      const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const took = performance.now() - started;
      const reply = await response.json().catch(() => ({}));
      if (!response.ok) {
        answer.replaceChildren(el("div", { class: "error", id: "try-error" },
          response.status + " " + response.statusText + ": " + (reply.error || "no detail")));
        return;
      }
      showAnswer(answer, model, reply);
      answer.prepend(el("p", { class: "muted", id: "try-ok" }, "200 OK in " + took.toFixed(1) + " ms"));
    } catch (e) {
      answer.replaceChildren(el("div", { class: "error", id: "try-error" }, "The request failed: " + e.message));
    }
  } }, "Send");
  const reset = el("button", { type: "button", class: "plain", onclick: () => {
    request.value = v2Text(inputs);
  } }, "reset");

  const tabs = el("div", { class: "tabs", role: "tablist" });
  const snippetPre = el("pre", { id: "snippet" });
  const snippetCopy = el("span");
  const all = snippets(model, inputs, list.models.length);
  const select = (i) => {
    snippetPre.textContent = all[i][1];
    snippetCopy.replaceChildren(copyButton(all[i][1]));
    for (const [j, b] of [...tabs.children].entries()) b.setAttribute("aria-selected", String(i === j));
  };
  all.forEach(([label], i) => tabs.append(el("button", { type: "button", role: "tab", onclick: () => select(i) }, label)));

  const card = el("div", { class: "card", id: "card" });
  if (model.card_html) {
    // Sanitized by the server (ammonia); the CSP forbids inline script on top of that.
    card.innerHTML = model.card_html;
  } else {
    card.append(el("p", { class: "muted" }, model.card_note || "This package has no model card."));
  }

  const drifts = model.drifts;
  main.replaceChildren(
    el("p", {}, el("a", { href: "/ui/" }, "← all models")),
    el("h1", { id: "model-title" }, m.name + " ", el("span", { class: "muted" }, m.version)),
    m.description ? el("p", {}, m.description) : null,
    el("div", { class: "row" },
      badge(list.ready ? "ready" : "not ready", list.ready ? "ok" : "bad"),
      badge(sigText, sigKind),
      el("span", { class: "muted" }, "digest "), el("code", { title: model.digest }, model.digest), copyButton(model.digest),
      el("span", { class: "muted" }, "loaded in " + fmtSeconds(model.load_seconds) + " at " + new Date(model.loaded_at * 1000).toLocaleString())),

    el("h2", {}, "Live figures"),
    el("div", { class: "grid" }, figure("requests", figures.requests), figure("req/s", figures.rate),
      figure("p50 latency", figures.p50), figure("p99 latency", figures.p99),
      figure("errors", figures.errors), figure("rows per run", figures.batch)),
    statuses, histogram,

    el("h2", {}, "Try it"),
    el("p", { class: "muted" }, model.example ? "A V2 request with the first golden example input; edit it and send."
      : "A V2 request of zeros shaped like the signature; edit it and send."),
    model.example_note ? el("p", { class: "muted" }, model.example_note) : null,
    request, el("div", { class: "row" }, send, reset), answer,

    el("h2", {}, "Contract"),
    table(["", "name", "dtype", "shape", "feature names", "class labels", "description"],
      contractRows(m.signature.inputs, "input").concat(contractRows(m.signature.outputs, "output"))),
    model.batch_dim ? el("p", { class: "muted" }, "Batch dim ", el("code", {}, model.batch_dim),
      (model.max_batch_size ? "; requests are merged into runs of up to " + model.max_batch_size + " rows." : ".")) : null,

    el("h2", {}, "Model card"), card,

    el("h2", {}, "Metadata"),
    metaList([["license", m.license], ["authors", m.authors], ["created", m.created],
      ["intended use", m.intended_use], ["tags", m.tags],
      ["framework", m.framework ? m.framework.name + (m.framework.version ? " " + m.framework.version : "") : null],
      ["model", m.model.path + " (" + m.model.format + (m.model.opset ? ", opset " + m.model.opset : "") + ")"],
      ["training repository", m.training && m.training.repository], ["training commit", m.training && m.training.commit],
      ["training data", m.training && m.training.data],
      ["runtime", m.runtime ? Object.entries(m.runtime).map(([k, v]) => k + " " + (Array.isArray(v) ? v.join(" ") : v)).join("; ") : null]]),

    el("h2", {}, "Golden examples"),
    drifts ? table(["output", "tolerance", "max abs diff", "max rel diff", "outside tolerance", "result"],
      drifts.map((d) => [d.output, toleranceText(d.tolerance), fmtNumber(d.max_abs), fmtNumber(d.max_rel),
        d.mismatches + " of " + d.compared, d.passed ? "passed" : "failed"]), [2, 3])
      : el("p", { class: "muted" }, "This package has no golden examples."),
    el("p", { class: "muted" }, "Measured when the server loaded the package."),
    parityView(m.examples && m.examples.parity),

    el("h2", {}, "Call it"), tabs, snippetPre, snippetCopy,

    el("h2", {}, "Files"),
    table(["path", "role", "size", "sha256"], m.files.map((f) => [f.path, f.role, fmtBytes(f.size), f.sha256.slice(0, 16) + "…"]), [2]));
  select(0);

  const key = model.name + "\u0000" + model.version;
  const refresh = async () => {
    const all = await fetchFigures().catch(() => null);
    if (!all) return;
    const f = all[key] || { requests: 0, statuses: {}, buckets: {}, batchCount: 0, batchSum: 0 };
    figures.requests.textContent = String(f.requests);
    const r = rate(key, f.requests);
    figures.rate.textContent = r === null ? "–" : r.toFixed(1);
    figures.p50.textContent = fmtSeconds(quantile(f.buckets, 0.5));
    figures.p99.textContent = fmtSeconds(quantile(f.buckets, 0.99));
    const errors = Object.entries(f.statuses).filter(([s]) => s !== "200");
    figures.errors.textContent = String(errors.reduce((a, [, n]) => a + n, 0));
    statuses.textContent = errors.length ? "errors by status: " + errors.map(([s, n]) => s + " × " + n).join(", ") : "";
    figures.batch.textContent = f.batchCount ? (f.batchSum / f.batchCount).toFixed(1) : "–";
    histogram.replaceChildren(histogramSvg(f.buckets));
  };
  await refresh();
  return refresh;
}

// The comparison with the original model (before export) that pack recorded, if any.
function parityView(parity) {
  if (!parity) {
    return el("p", { class: "muted", id: "parity" }, "No parity with the original model is recorded: the package " +
      "proves it reproduces itself, not that the export was faithful.");
  }
  const source = parity.source ? parity.source.name + (parity.source.version ? " " + parity.source.version : "") : "the original model";
  return el("div", { id: "parity" },
    el("h3", {}, "Parity with " + source),
    table(["output", "agreement", "outside tolerance", "max abs diff", "max rel diff", "tolerance", "result"],
      Object.entries(parity.outputs).map(([name, r]) => {
        const agreement = r.compared ? 1 - r.mismatches / r.compared : 1;
        const t = r.tolerance;
        return [name, (agreement * 100).toFixed(agreement === 1 ? 0 : 2) + "%", r.mismatches + " of " + r.compared,
          fmtNumber(r.max_abs), fmtNumber(r.max_rel),
          (t.abs === 0 && t.rel === 0 ? "exact" : "abs " + t.abs + ", rel " + t.rel) +
            (t.min_agreement < 1 ? ", min agreement " + t.min_agreement * 100 + "%" : ""),
          agreement >= t.min_agreement ? (r.mismatches ? "allowed" : "passed") : "failed"];
      }), [2, 3, 4]),
    el("p", { class: "muted" }, "Measured by tiffin pack against the original model's outputs in " + parity.expected + "."));
}

function toleranceText(t) {
  if (!t) return "";
  if (typeof t !== "object") return String(t);
  return Object.entries(t).map(([k, v]) => k + " " + v).join(", ");
}

// ---------------------------------------------------------------------------------------------

async function start() {
  const main = document.getElementById("main");
  const path = location.pathname;
  const match = /^\/ui\/models\/([^/]+)\/([^/]+)\/?$/.exec(path);
  let refresh;
  try {
    refresh = match ? await showModel(main, decodeURIComponent(match[1]), decodeURIComponent(match[2]))
      : await showList(main);
  } catch (e) {
    main.replaceChildren(el("div", { class: "error", id: "page-error" }, "This page could not be loaded: " + e.message));
    return;
  }
  document.body.dataset.loaded = "true";
  setInterval(() => { refresh().catch(() => {}); }, REFRESH_MS);
}

start();
