// The explorer page: controls → the selected configuration → its shapes (Shapes.planNetwork),
// its network drawn to scale, the receptive field of one unit on a test digit, its measured
// results, kernels, feature maps, effective receptive field, and every trial's accuracy
// against cost. Everything comes from the inline JSON (cnn_jax/explorer/collect.py).
"use strict";

const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
const SVG_NS = "http://www.w3.org/2000/svg";
const state = { point: [], config: 0, layers: null, layer: null, cost: "params" };

const $ = (id) => document.getElementById(id);
const fmt = (n) => (n == null ? "—" : Math.round(n).toLocaleString("en-US"));
const pct = (x) => (x == null ? "—" : `${(100 * x).toFixed(2)}%`);
const shapeText = (s) => s.join("×");

function el(tag, attrs = {}, text = null, ns = null) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}
const svgEl = (tag, attrs, text) => el(tag, attrs, text, SVG_NS);

// Arrays from views.py: value = low + (high − low)·byte/255.
function decode(record) {
  const bytes = Uint8Array.from(atob(record.data), (c) => c.charCodeAt(0));
  const values = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) values[i] = record.low + (record.high - record.low) * bytes[i] / 255;
  return values;
}

// Colour maps: RdBu_r for kernels (as cnn_jax/plots.py), viridis for maps, grey for the digit.
const RDBU = [[5, 48, 97], [33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43], [103, 0, 31]];
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function ramp(stops, t) {
  t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}

// Draws an (h, w) block of `values` (offset) at (x0, y0) with `scale` pixels per value.
function paint(ctx, values, offset, h, w, x0, y0, scale, colour) {
  const image = ctx.createImageData(w * scale, h * scale);
  for (let r = 0; r < h * scale; r++) {
    for (let c = 0; c < w * scale; c++) {
      const rgb = colour(values[offset + Math.floor(r / scale) * w + Math.floor(c / scale)]);
      const p = 4 * (r * w * scale + c);
      image.data.set([rgb[0], rgb[1], rgb[2], 255], p);
    }
  }
  ctx.putImageData(image, x0, y0);
}

function currentEntry() { return DATA.configs[state.config] || null; }
function editable() { return DATA.mode === "config"; }

// ---- controls -------------------------------------------------------------------------------
function buildControls() {
  const box = $("controls");
  if (DATA.mode === "sweep") {
    state.point = DATA.configs[0].point.slice();
    DATA.axes.forEach((axis, i) => {
      const label = el("label", { title: axis.keys.join(", ") }, `${axis.name} `);
      const input = el("input", { type: "range", min: 0, max: axis.values.length - 1, step: 1,
        value: state.point[i], "data-axis": i, id: `axis-${i}` });
      const shown = el("span", { class: "axis-value", id: `axis-${i}-value` }, axis.values[state.point[i]]);
      input.addEventListener("input", () => {
        state.point[i] = Number(input.value);
        shown.textContent = axis.values[state.point[i]];
        selectPoint();
      });
      label.append(input, shown);
      box.append(label);
    });
    $("mode-note").textContent = `Sweep of ${DATA.configs.length} configurations on ${DATA.dataset}: ` +
      "move a control to select one.";
  } else if (editable()) {
    state.layers = structuredClone(DATA.configs[0].layers);
    state.layers.forEach((layer, index) => {
      if (!["conv", "local", "pool"].includes(layer.type)) return;
      const fields = layer.type === "pool" ? ["window", "stride", "padding"]
        : ["features", "kernel", "stride", "padding", "dilation"];
      const set = el("fieldset");
      set.append(el("legend", {}, `layer ${index} (${layer.type})`));
      for (const field of fields) {
        const numeric = !(field === "padding" || (layer.type === "pool" && field === "stride"));
        const value = Array.isArray(layer[field]) ? JSON.stringify(layer[field]) : layer[field];
        const input = el("input", { type: numeric && !Array.isArray(layer[field]) ? "number" : "text",
          value: value ?? "", "data-layer": index, "data-field": field, id: `layer-${index}-${field}` });
        input.addEventListener("input", () => {
          const text = input.value.trim();
          let parsed = text;
          try { parsed = JSON.parse(text); } catch (e) { parsed = text; }
          state.layers[index][field] = parsed;
          render();
        });
        const label = el("label", {}, `${field} `);
        label.append(input);
        set.append(label);
      }
      box.append(set);
    });
    $("mode-note").textContent = "Geometry only (nothing trained): change a layer and the shapes, " +
      "the receptive field and the costs follow.";
  } else {
    $("mode-note").textContent = `One training run on ${DATA.dataset}.`;
  }
}

function selectPoint() {
  const index = DATA.configs.findIndex((c) => c.point.every((v, i) => v === state.point[i]));
  state.config = index;
  render();
}

function selectConfig(index) {
  state.config = index;
  state.point = DATA.configs[index].point.slice();
  state.point.forEach((v, i) => {
    $(`axis-${i}`).value = v;
    $(`axis-${i}-value`).textContent = DATA.axes[i].values[v];
  });
  render();
}

// ---- the shape table ------------------------------------------------------------------------
function renderTable(plan, inputShape) {
  const body = document.querySelector("#shape-table tbody");
  const foot = document.querySelector("#shape-table tfoot");
  body.replaceChildren();
  foot.replaceChildren();
  const input = el("tr", { "data-layer": "input" });
  input.append(el("td", {}, "input"), el("td", {}, DATA.dataset), el("td"),
    el("td", {}, shapeText(inputShape)));
  body.append(input);
  for (const row of plan.rows) {
    const g = row.geometry;
    const pair = (f) => (g ? (g[0][f] === g[1][f] ? `${g[0][f]}` : `${g[0][f]}×${g[1][f]}`) : "");
    const pad = g ? (g.every((a) => a.padLo === a.padHi) ? pair("padLo")
      : g.map((a) => `(${a.padLo}, ${a.padHi})`).join("×")) : "";
    const tr = el("tr", { "data-layer": row.name, class: row.name === state.layer ? "selected" : "" });
    const cells = [row.name, row.detail, shapeText(row.input), shapeText(row.output), pair("kernel"),
      pair("stride"), pad, pair("dilation"), row.formula, fmt(row.params), fmt(row.macs),
      row.receptiveField, row.jumpText];
    cells.forEach((text, i) => tr.append(el("td", { class: i >= 9 && i <= 10 ? "num" : "" }, text)));
    if (row.image) tr.addEventListener("click", () => { state.layer = row.name; render(); });
    body.append(tr);
  }
  if (plan.error) {
    const tr = el("tr", { class: "failed", "data-layer": plan.error.layer });
    tr.append(el("td", {}, plan.error.layer), el("td", { colspan: 12 }, plan.error.message));
    body.append(tr);
  }
  const total = el("tr");
  total.append(el("td", {}, "total"), ...Array.from({ length: 8 }, () => el("td")),
    el("td", { class: "num", id: "total-params" }, fmt(plan.rows.reduce((a, r) => a + r.params, 0))),
    el("td", { class: "num", id: "total-macs" }, fmt(plan.rows.reduce((a, r) => a + r.macs, 0))));
  foot.append(total);
}

// ---- the network to scale ---------------------------------------------------------------------
function renderNetwork(plan, inputShape) {
  const svg = $("network");
  svg.replaceChildren();
  const stacks = [{ name: "input", shape: inputShape, image: true }, ...plan.rows.map((r) => ({
    name: r.name, shape: r.output, image: r.output.length === 3, kind: r.kind }))];
  const maxSide = Math.max(...stacks.filter((s) => s.image).map((s) => Math.max(s.shape[0], s.shape[1])));
  const scale = 150 / maxSide;  // the same pixels per unit for every stack: sizes compare
  let x = 10;
  const height = 230;
  for (const stack of stacks) {
    const group = svgEl("g", { "data-layer": stack.name });
    if (stack.image) {
      const [h, w, c] = stack.shape;
      const depth = Math.min(c, 8), step = 4;
      for (let i = depth - 1; i >= 0; i--) {
        group.append(svgEl("rect", { x: x + i * step, y: 40 + (150 - h * scale) / 2 - i * step + 20,
          width: Math.max(1, w * scale), height: Math.max(1, h * scale),
          fill: stack.name === state.layer ? "#ffd27f" : stack.kind === "pool" ? "#cfe3f7" : "#e8e8e8",
          stroke: "#555", "stroke-width": 0.7 }));
      }
      group.append(svgEl("text", { x, y: 20 }, stack.name));
      group.append(svgEl("text", { x, y: height - 8, class: "stack-size" }, shapeText(stack.shape)));
      x += Math.max(w * scale, 30) + depth * step + 28;
    } else {
      const bar = Math.min(150, 20 + 10 * Math.log10(stack.shape[0] + 1) * 4);
      group.append(svgEl("rect", { x, y: 40 + (150 - bar) / 2 + 20, width: 10, height: bar,
        fill: "#e8e8e8", stroke: "#555", "stroke-width": 0.7 }));
      group.append(svgEl("text", { x, y: 20 }, stack.name));
      group.append(svgEl("text", { x, y: height - 8, class: "stack-size" }, `${stack.shape[0]}`));
      x += 60;
    }
    svg.append(group);
  }
  if (plan.error) {
    svg.append(svgEl("text", { x, y: 120, fill: "#c00" }, `✗ ${plan.error.layer}: impossible`));
    x += 180;
  }
  svg.setAttribute("width", x + 10);
  svg.setAttribute("height", height);
}

// ---- receptive fields -----------------------------------------------------------------------
function fieldOf(row) {
  const unit = [Math.floor((row.output[0] - 1) / 2), Math.floor((row.output[1] - 1) / 2)];
  const window = [0, 1].map((a) => [row.start[a] + unit[a] * row.jump[a],
    row.start[a] + unit[a] * row.jump[a] + row.field[a] - 1]);
  return { unit, window };
}

function outline(ctx, window, scale, colour, dash) {
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2;
  ctx.setLineDash(dash);
  ctx.strokeRect(window[1][0] * scale + 1, window[0][0] * scale + 1,
    (window[1][1] - window[1][0] + 1) * scale - 2, (window[0][1] - window[0][0] + 1) * scale - 2);
  ctx.restore();
}

function renderField(plan, inputShape, entry) {
  const canvas = $("rf-digit"), ctx = canvas.getContext("2d");
  const [H, W] = inputShape;
  const scale = Math.max(1, Math.floor(280 / Math.max(H, W)));
  canvas.width = W * scale;
  canvas.height = H * scale;
  if (DATA.digit) {
    const p = DATA.digit.pixels;
    paint(ctx, decode(p), 0, p.shape[0], p.shape[1], 0, 0, scale, (v) => {
      const g = 255 - Math.round(255 * (v - p.low) / ((p.high - p.low) || 1));
      return [g, g, g];
    });
  } else {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  const row = plan.rows.find((r) => r.name === state.layer);
  const erf = $("erf"), ectx = erf.getContext("2d");
  erf.width = canvas.width;
  erf.height = canvas.height;
  ectx.clearRect(0, 0, erf.width, erf.height);
  if (!row) {
    $("rf-text").textContent = plan.error ? "no field: the configuration is impossible" : "";
    $("erf-text").textContent = "";
    return;
  }
  const { unit, window } = fieldOf(row);
  outline(ctx, window, scale, "#d62728", []);
  // The stride's jumps: the centres of the central row's and column's units, and the next unit.
  ctx.fillStyle = "#1f77b4";
  for (let a = 0; a < 2; a++) {
    for (let i = 0; i < row.output[a]; i++) {
      const centre = row.start[a] + i * row.jump[a] + (row.field[a] - 1) / 2;
      const other = row.start[1 - a] + unit[1 - a] * row.jump[1 - a] + (row.field[1 - a] - 1) / 2;
      const [y, x] = a === 0 ? [centre, other] : [other, centre];
      ctx.fillRect((x + 0.5) * scale - 2, (y + 0.5) * scale - 2, 4, 4);
    }
  }
  if (row.output[1] > 1) {
    const next = [window[0], window[1].map((v) => v + row.jump[1])];
    outline(ctx, next, scale, "#ff7f0e", [5, 4]);
  }
  $("rf-text").textContent = `${row.name} unit (${unit[0]}, ${unit[1]}) of ${row.output[0]}×${row.output[1]}: ` +
    `theoretical field ${row.field[0]}×${row.field[1]} px (rows ${window[0][0]}…${window[0][1]}, ` +
    `columns ${window[1][0]}…${window[1][1]}; outside 0…${H - 1} is padding). Neighbouring units ` +
    `are ${row.jumpText} px apart (dots: unit centres; dashed: the next unit's field).`;
  const fields = entry && !editableChanged() && entry.views ? entry.views.fields : null;
  const heat = fields && fields[row.name];
  if (!heat) {
    $("erf-text").textContent = editable() ? "Effective field: needs a trained run (--run or --workdir)."
      : "Effective field: no checkpoint of this configuration.";
    return;
  }
  const values = decode(heat);
  const max = Math.max(...values) || 1;
  paint(ectx, values, 0, heat.shape[0], heat.shape[1], 0, 0, scale, (v) => ramp(VIRIDIS, v / max));
  outline(ectx, window, scale, "#ffffff", [4, 3]);
  let rows = [], cols = [];
  for (let r = 0; r < heat.shape[0]; r++) {
    for (let c = 0; c < heat.shape[1]; c++) {
      if (values[r * heat.shape[1] + c] > 0.01 * max) { rows.push(r); cols.push(c); }
    }
  }
  const extent = rows.length ? `${Math.max(...rows) - Math.min(...rows) + 1}×${Math.max(...cols) - Math.min(...cols) + 1}` : "0×0";
  $("erf-text").textContent = `Effective field of the same unit: mean |∂ unit / ∂ input| over test ` +
    `images (yellow = large). Above 1% of its peak on ${extent} px; dashed: the theoretical ` +
    `${row.field[0]}×${row.field[1]}.`;
}

function editableChanged() {
  return editable() && JSON.stringify(state.layers) !== JSON.stringify(DATA.configs[0].layers);
}

// ---- measured results -----------------------------------------------------------------------
function renderResults(plan, entry) {
  const acc = entry ? entry.accuracy : null;
  $("acc-mean").textContent = acc && acc.mean != null ? pct(acc.mean) : "—";
  $("acc-ci").textContent = !acc || acc.n === 0 ? (editable() ? "(not trained)" : "(no finished trial)")
    : acc.n === 1 ? "(1 seed: no interval)"
      : `(95% CI ${pct(Math.max(acc.low, 0))} … ${pct(Math.min(acc.high, 1))}` +
        `${acc.low < 0 || acc.high > 1 ? ", clipped to 0–100%" : ""}, ${acc.n} seeds)`;
  $("params").textContent = plan.error ? "—" : fmt(plan.rows.reduce((a, r) => a + r.params, 0));
  $("macs").textContent = plan.error ? "—" : fmt(plan.rows.reduce((a, r) => a + r.macs, 0));
  $("img-s").textContent = entry && entry.images_per_second ? `${fmt(entry.images_per_second)} img/s` : "—";
  $("status").textContent = entry ? `${entry.status}${entry.reason ? ": " + entry.reason : ""}` : "—";
  renderCurve(entry ? entry.trials : []);
}

function renderCurve(trials) {
  const svg = $("curve");
  svg.replaceChildren();
  const width = 420, height = 220, left = 44, bottom = 28, top = 10, right = 10;
  const curves = trials.filter((t) => t.curve && t.curve.length);
  if (!curves.length) {
    svg.append(svgEl("text", { x: left, y: 100 }, "no learning curve"));
    return;
  }
  const epochs = Math.max(...curves.flatMap((t) => t.curve.map((p) => p[0])));
  const accs = curves.flatMap((t) => t.curve.flatMap((p) => [p[2], p[3]])).filter((v) => v != null);
  const low = Math.max(0, Math.min(...accs) - 0.02), high = Math.min(1, Math.max(...accs) + 0.02);
  const X = (e) => left + (epochs > 1 ? (e - 1) / (epochs - 1) : 0.5) * (width - left - right);
  const Y = (a) => top + (1 - (a - low) / ((high - low) || 1)) * (height - top - bottom);
  svg.append(svgEl("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#888" }));
  svg.append(svgEl("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#888" }));
  svg.append(svgEl("text", { x: 2, y: Y(high) + 4 }, pct(high).replace(".00", "")));
  svg.append(svgEl("text", { x: 2, y: Y(low) }, pct(low).replace(".00", "")));
  svg.append(svgEl("text", { x: width / 2 - 20, y: height - 6 }, `epoch (1…${epochs})`));
  for (const [index, key, colour, dash] of [[2, "validation", "#1f77b4", ""], [3, "test", "#ff7f0e", "4 3"]]) {
    for (const t of curves) {
      const points = t.curve.filter((p) => p[index] != null).map((p) => `${X(p[0])},${Y(p[index])}`);
      svg.append(svgEl("polyline", { points: points.join(" "), fill: "none", stroke: colour,
        "stroke-dasharray": dash, class: `curve-${key}` }));
      for (const p of t.curve.filter((q) => q[index] != null)) {
        svg.append(svgEl("circle", { cx: X(p[0]), cy: Y(p[index]), r: p[0] === t.best_epoch ? 4 : 2, fill: colour }));
      }
    }
  }
  svg.append(svgEl("text", { x: width - 170, y: top + 12, fill: "#1f77b4" }, "validation accuracy"));
  svg.append(svgEl("text", { x: width - 170, y: top + 26, fill: "#ff7f0e" }, "test (big dot: best val.)"));
}

// ---- kernels and feature maps ---------------------------------------------------------------
function renderViews(entry) {
  const kernels = $("kernels"), maps = $("fmaps");
  kernels.replaceChildren();
  maps.replaceChildren();
  const views = entry && !editableChanged() ? entry.views : null;
  if (!views) {
    $("views-note").textContent = editable() ? "Kernels and feature maps need a trained run."
      : "No checkpoint of this configuration.";
    return;
  }
  const label = DATA.digit ? DATA.digit.label : "?";
  $("views-note").textContent = `Best-validation checkpoint (step ${views.step}); test digit ` +
    `labelled ${label}, predicted ${views.prediction ?? "?"}.`;
  for (const [name, record] of Object.entries(views.kernels)) {
    const [kh, kw, n] = record.shape, scale = Math.max(2, Math.floor(48 / Math.max(kh, kw)));
    const values = decode(record);
    const canvas = el("canvas", { width: n * (kw * scale + 3), height: kh * scale, "data-layer": name, class: "kernel-grid" });
    const ctx = canvas.getContext("2d");
    const panel = new Float32Array(kh * kw);
    for (let m = 0; m < n; m++) {
      for (let i = 0; i < kh * kw; i++) panel[i] = values[i * n + m];
      paint(ctx, panel, 0, kh, kw, m * (kw * scale + 3), 0, scale, (v) => ramp(RDBU, (v - record.low) / (record.high - record.low)));
    }
    const row = el("div", { class: "views-row" });
    row.append(el("span", {}, `${name} kernels ${kh}×${kw}, ±${record.high.toPrecision(2)}`), canvas);
    kernels.append(row);
  }
  for (const [name, record] of Object.entries(views.maps)) {
    const [n, h, w] = record.shape, scale = Math.max(1, Math.floor(56 / Math.max(h, w)));
    const values = decode(record);
    const canvas = el("canvas", { width: n * (w * scale + 3), height: h * scale, "data-layer": name, class: "map-grid" });
    const ctx = canvas.getContext("2d");
    for (let m = 0; m < n; m++) {
      paint(ctx, values, m * h * w, h, w, m * (w * scale + 3), 0, scale, (v) => ramp(VIRIDIS, (v - record.low) / ((record.high - record.low) || 1)));
    }
    const row = el("div", { class: "views-row" });
    row.append(el("span", {}, `${name} ${h}×${w}`), canvas);
    maps.append(row);
  }
}

// ---- accuracy against cost ------------------------------------------------------------------
function renderScatter(plan) {
  const svg = $("scatter");
  svg.replaceChildren();
  const width = 520, height = 320, left = 56, bottom = 36, top = 10, right = 14;
  const key = state.cost;
  const points = [];
  DATA.configs.forEach((c, index) => c.same_as || c.trials.forEach((t) => {
    const cost = t[key] ?? null;
    if (t.test_accuracy != null && cost) points.push({ index, cost, acc: t.test_accuracy, id: t.id });
  }));
  const current = DATA.configs[state.config];
  const chosen = current ? (current.same_as || current.id) : null;
  if (!points.length) {
    svg.append(svgEl("text", { x: left, y: 100 }, "no finished trial"));
    return;
  }
  const costs = points.map((p) => p.cost), accs = points.map((p) => p.acc);
  const cLow = Math.min(...costs), cHigh = Math.max(...costs);
  const log = cHigh / cLow > 10;
  const T = (c) => (log ? Math.log10(c) : c);
  const span = T(cHigh) - T(cLow) || 1;
  const aLow = Math.min(...accs), aHigh = Math.max(...accs), aSpan = aHigh - aLow || 0.01;
  const X = (c) => left + (0.05 + 0.9 * (T(c) - T(cLow)) / span) * (width - left - right);
  const Y = (a) => top + (0.05 + 0.9 * (1 - (a - aLow) / aSpan)) * (height - top - bottom);
  svg.append(svgEl("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#888" }));
  svg.append(svgEl("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#888" }));
  svg.append(svgEl("text", { x: left, y: height - 20 }, fmt(cLow)));
  svg.append(svgEl("text", { x: width - right - 60, y: height - 20 }, fmt(cHigh)));
  svg.append(svgEl("text", { x: width / 2 - 60, y: height - 4 }, `${key === "params" ? "parameters" : "multiply-adds"}${log ? " (log)" : ""}`));
  svg.append(svgEl("text", { x: 2, y: Y(aHigh) + 4 }, pct(aHigh)));
  svg.append(svgEl("text", { x: 2, y: Y(aLow) }, pct(aLow)));
  // Pareto front of the configurations' means: cheaper and at least as accurate beats.
  const means = DATA.configs.map((c, index) => ({ index, acc: c.same_as ? null : c.accuracy.mean,
    cost: (c.trials.find((t) => t[key]) || {})[key] })).filter((m) => m.acc != null && m.cost);
  means.sort((a, b) => a.cost - b.cost || b.acc - a.acc);
  const front = [];
  for (const m of means) if (!front.length || m.acc > front[front.length - 1].acc) front.push(m);
  const path = front.map((m, i) => (i ? `H${X(m.cost)}V${Y(m.acc)}` : `M${X(m.cost)},${Y(m.acc)}`)).join("");
  svg.append(svgEl("path", { d: path, class: "front", "data-configs": front.map((m) => DATA.configs[m.index].id).join(",") }));
  for (const p of points) {
    const selected = DATA.configs[p.index].id === chosen;
    const dot = svgEl("circle", { cx: X(p.cost), cy: Y(p.acc), r: selected ? 6 : 3.5,
      class: selected ? "selected trial" : "trial", fill: "#7f7f7f", "fill-opacity": selected ? 1 : 0.6,
      "data-config": DATA.configs[p.index].id });
    dot.append(svgEl("title", {}, `${p.id}: ${pct(p.acc)}, ${fmt(p.cost)}`));
    if (DATA.mode === "sweep") dot.addEventListener("click", () => selectConfig(p.index));
    svg.append(dot);
  }
}

// ---- everything -----------------------------------------------------------------------------
function render() {
  const entry = currentEntry();
  const layers = editable() ? state.layers : entry ? entry.layers : [];
  const inputShape = entry ? entry.input_shape : DATA.input_shape;
  $("config-id").textContent = !entry ? "no trial has this combination"
    : `configuration: ${entry.id}${entry.same_as ? ` (trains the same network as ${entry.same_as})` : ""}`;
  const plan = Shapes.planNetwork(layers, inputShape);
  const images = plan.rows.filter((r) => r.image);
  if (!images.some((r) => r.name === state.layer)) state.layer = images.length ? images[images.length - 1].name : null;
  const select = $("layer-select");
  select.replaceChildren(...images.map((r) => el("option", { value: r.name }, r.name)));
  if (state.layer) select.value = state.layer;
  const error = $("error");
  error.hidden = !plan.error;
  error.textContent = plan.error ? `Impossible at layer ${plan.error.layer}: ${plan.error.message}` : "";
  renderTable(plan, inputShape);
  renderNetwork(plan, inputShape);
  renderField(plan, inputShape, entry);
  renderResults(plan, entry);
  renderViews(entry);
  renderScatter(plan);
  document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  if (window.explorerReadyMs === undefined) window.explorerReadyMs = performance.now();
}

$("layer-select").addEventListener("change", (e) => { state.layer = e.target.value; render(); });
$("cost-axis").addEventListener("change", (e) => { state.cost = e.target.value; render(); });
if (DATA.mode === "config") $("scatter-panel").hidden = true;
buildControls();
render();
