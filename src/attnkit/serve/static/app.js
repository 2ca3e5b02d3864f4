// attnkit explorer: asks the JSON API for a prediction and draws its attention.
// Colours: a weight w in [0, 1] is drawn as white mixed with deep blue, (255 - w * 247,
// 255 - w * 207, 255 - w * 148), so a cell's colour gives its weight back exactly.
"use strict";

const CELL = 22;        // pixels per heatmap cell
const SMALL = 9;        // ... in the small multiples of all heads
const LABEL = 70;       // room for row labels (left) and column labels (top)

function colour(w) {
  const v = Math.max(0, Math.min(1, w));
  return [Math.round(255 - v * 247), Math.round(255 - v * 207), Math.round(255 - v * 148)];
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const tip = () => document.getElementById("tip");

function showTip(event, text) {
  const t = tip();
  t.textContent = text;
  t.hidden = false;
  t.style.left = `${event.clientX + 12}px`;
  t.style.top = `${event.clientY + 12}px`;
}

function hideTip() { tip().hidden = true; }

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

// A (rows x cols) heatmap on a canvas, labelled, with the value of the cell under the pointer.
function heatmap(weights, rows, cols, cell = CELL, labels = true) {
  const left = labels ? LABEL : 0, top = labels ? LABEL : 0;
  const canvas = el("canvas", {class: "heatmap"});
  canvas.width = left + cols.length * cell;
  canvas.height = top + rows.length * cell;
  Object.assign(canvas.dataset, {rows: rows.length, cols: cols.length, cell, left, top});
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  weights.forEach((row, i) => row.forEach((w, j) => {
    const [r, g, b] = colour(w);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(left + j * cell, top + i * cell, cell, cell);
  }));
  if (labels) {
    ctx.fillStyle = "#111";
    ctx.font = "13px ui-monospace, monospace";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    rows.forEach((r, i) => ctx.fillText(r, left - 6, top + i * cell + cell / 2));
    cols.forEach((c, j) => {
      ctx.save();
      ctx.translate(left + j * cell + cell / 2, top - 6);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ctx.fillText(c === " " ? "␣" : c, 0, 0);
      ctx.restore();
    });
  }
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const j = Math.floor((event.clientX - box.left - left) / cell);
    const i = Math.floor((event.clientY - box.top - top) / cell);
    if (i >= 0 && j >= 0 && i < rows.length && j < cols.length) {
      showTip(event, `${rows[i]} ← ${cols[j] === " " ? "␣" : cols[j]}: ${weights[i][j].toFixed(4)}`);
    } else hideTip();
  });
  canvas.addEventListener("mouseleave", hideTip);
  return canvas;
}

function mean(maps) {
  return maps[0].map((row, i) => row.map((_, j) => maps.reduce((s, m) => s + m[i][j], 0) / maps.length));
}

function download(name, blob) {
  const a = el("a", {href: URL.createObjectURL(blob), download: name});
  document.body.append(a);
  a.click();
  a.remove();
}

function downloads(result, canvasOf, stem) {
  const json = el("button", {type: "button", class: "json", text: "weights as JSON"});
  json.addEventListener("click", () => download(`${stem}.json`,
    new Blob([JSON.stringify(result, null, 1)], {type: "application/json"})));
  const box = el("div", {class: "downloads"}, json);
  if (canvasOf) {
    const png = el("button", {type: "button", class: "png", text: "map as PNG"});
    png.addEventListener("click", () => canvasOf().toBlob((b) => download(`${stem}.png`, b)));
    box.prepend(png);
  }
  return box;
}

function seq2seqPanel(panel, result, card) {
  panel.append(el("div", {class: "output", text: `${result.input} → ${result.output}`}));
  const view = el("div", {class: "view"});
  let current = null;
  const draw = (maps, label, all = false) => {
    view.replaceChildren();
    if (all) {                            // small multiples: every head of a layer
      const grid = el("div", {class: "grid"});
      maps.forEach((m, h) => grid.append(el("figure", {},
        heatmap(m, result.output_tokens, result.input_tokens, SMALL, false),
        el("figcaption", {text: `head ${h}`}))));
      view.append(grid);
      current = grid.querySelector("canvas");
    } else {
      current = heatmap(maps, result.output_tokens, result.input_tokens);
      view.append(current);
    }
    view.dataset.showing = label;
  };
  if (result.layers) {
    const layer = el("select", {class: "layer"});
    result.layers.forEach((_, i) => layer.append(el("option", {value: i, text: `layer ${i}`})));
    layer.value = String(result.layers.length - 1);
    const head = el("select", {class: "head"});
    head.append(el("option", {value: "mean", text: "mean of heads"}),
                el("option", {value: "all", text: "all heads"}));
    result.layers[0].forEach((_, h) => head.append(el("option", {value: h, text: `head ${h}`})));
    const redraw = () => {
      const maps = result.layers[Number(layer.value)];
      if (head.value === "all") draw(maps, `layer ${layer.value} all heads`, true);
      else if (head.value === "mean") draw(mean(maps), `layer ${layer.value} mean`);
      else draw(maps[Number(head.value)], `layer ${layer.value} head ${head.value}`);
    };
    layer.addEventListener("change", redraw);
    head.addEventListener("change", redraw);
    panel.append(el("div", {class: "controls"}, el("label", {text: "cross-attention "}, layer),
                    el("label", {text: "head "}, head)));
    panel.append(view);
    redraw();
  } else {
    panel.append(view);
    draw(result.weights, "decoding");
  }
  panel.append(downloads(result, () => current, `${card.name}-attention`));
}

function wordSpans(sentence, key, signed, top) {
  return sentence.map((w) => {
    const v = w[key];
    const share = Math.min(Math.abs(v) / top, 1).toFixed(3);
    const rgb = !signed ? "255,190,0" : v < 0 ? "220,40,40" : "30,160,60";
    const span = el("span", {class: "word", "data-value": v, text: w.word});
    span.style.background = `rgba(${rgb},${share})`;  // CSSOM: allowed by the page's CSP
    span.addEventListener("mousemove", (e) => showTip(e, `${w.word}: ${v.toFixed(4)}`));
    span.addEventListener("mouseleave", hideTip);
    return span;
  });
}

function probTable(probabilities) {
  const probs = el("table", {class: "probs"});
  Object.entries(probabilities).sort((a, b) => b[1] - a[1]).forEach(([c, p]) =>
    probs.append(el("tr", {}, el("td", {text: c}), el("td", {text: p.toFixed(3)}))));
  return probs;
}

function classifierPanel(panel, result, card) {
  panel.append(el("div", {class: "output", text: `prediction: ${result.label}`}),
               probTable(result.probabilities));
  const words = result.sentences.flat();
  const rows = [["weight", false, "attention weight"], ["attribution", true,
                "integrated gradients (green: for the prediction, red: against)"]];
  for (const [key, signed, title] of rows) {
    if (words.some((w) => w[key] === null)) continue;   // a pooling without weights per word
    const top = Math.max(...words.map((w) => Math.abs(w[key]))) || 1;
    panel.append(el("div", {class: "row-label", text: title}));
    const box = el("div", {class: `words ${key}`});
    result.sentences.forEach((s, i) => {
      const spans = wordSpans(s, key, signed, top);
      if (result.sentence_weights) {
        const line = el("div", {class: "sentence"},
          el("span", {class: "sw", text: result.sentence_weights[i].toFixed(2)}));
        spans.forEach((sp) => line.append(sp, " "));
        box.append(line);
      } else spans.forEach((sp) => box.append(sp, " "));
    });
    panel.append(box);
  }
  panel.append(downloads(result, null, `${card.name}-explanation`));
}

const cards = {};

// A captioner's test image, then one copy per output token with that step's attention over the
// grid drawn on it: each grid cell covers its block of pixels in the weight's colour (scaled by
// the largest weight of the caption), half transparent over the digits.
const PIXEL = 10;       // screen pixels per image pixel

function captionCanvas(image, grid, top) {
  const h = image.length, w = image[0].length;
  const canvas = el("canvas", {class: "caption-map"});
  canvas.width = w * PIXEL;
  canvas.height = h * PIXEL;
  const ctx = canvas.getContext("2d");
  image.forEach((row, i) => row.forEach((v, j) => {
    const g = Math.round(255 - 255 * Math.max(0, Math.min(1, v)));
    ctx.fillStyle = `rgb(${g},${g},${g})`;
    ctx.fillRect(j * PIXEL, i * PIXEL, PIXEL, PIXEL);
  }));
  if (grid) {
    const ch = h / grid.length, cw = w / grid[0].length;
    grid.forEach((row, i) => row.forEach((v, j) => {
      const [r, g, b] = colour(v / top);
      ctx.fillStyle = `rgba(${r},${g},${b},0.6)`;
      ctx.fillRect(j * cw * PIXEL, i * ch * PIXEL, cw * PIXEL, ch * PIXEL);
    }));
  }
  return canvas;
}

function captionerPanel(panel, result) {
  panel.append(el("div", {class: "output",
    text: `test image ${result.input} → ${result.output} (truth ${result.truth})`}));
  const top = Math.max(...result.weights.flat(2), 1e-9);
  const steps = el("div", {class: "caption-steps"},
    el("figure", {}, captionCanvas(result.image, null, top), el("figcaption", {text: "image"})));
  result.output_tokens.forEach((token, k) => {
    const canvas = captionCanvas(result.image, result.weights[k], top);
    canvas.dataset.step = k;
    canvas.dataset.weights = JSON.stringify(result.weights[k]);
    const peak = Math.max(...result.weights[k].flat());
    steps.append(el("figure", {}, canvas,
      el("figcaption", {text: `step ${k + 1}: ${token} (max ${peak.toFixed(2)})`})));
  });
  panel.append(steps, downloads(result, null, `caption-${result.input}`));
}

// An image classifier's test image, then each stage's spatial map drawn over it (scaled by
// the stage's largest weight) and its channel weights as one row of cells.
function imagePanel(panel, result) {
  panel.append(el("div", {class: "output",
    text: `test image ${result.input} → ${result.output} (truth ${result.truth})`}),
    probTable(result.probabilities));
  const maps = el("div", {class: "image-maps"},
    el("figure", {}, captionCanvas(result.image, null, 1), el("figcaption", {text: "image"})));
  result.stages.forEach((stage, k) => {
    if (stage.spatial) {
      const canvas = captionCanvas(result.image, stage.spatial, Math.max(...stage.spatial.flat(), 1e-9));
      canvas.dataset.stage = k;
      canvas.dataset.weights = JSON.stringify(stage.spatial);
      maps.append(el("figure", {}, canvas, el("figcaption", {text: `stage ${k}: spatial map`})));
    }
    if (stage.channels) {
      const top = Math.max(...stage.channels, 1e-9);
      const row = heatmap([stage.channels.map((w) => w / top)], [`stage ${k}`],
        stage.channels.map((_, c) => String(c)), SMALL, false);
      row.classList.add("channels");
      maps.append(el("figure", {}, row, el("figcaption", {text: `stage ${k}: channel weights`})));
    }
  });
  if (maps.children.length === 1) {
    maps.append(el("p", {class: "note", text: "this model has no attention block"}));
  }
  panel.append(maps, downloads(result, null, `image-${result.input}`));
}

// A price model's test window: the closes of its bars as a line, and for an attention model
// the last bar's weights over the window's bars, one row per head (last layer).
function closesChart(closes) {
  const canvas = el("canvas", {class: "closes"});
  canvas.width = LABEL + closes.length * CELL;
  canvas.height = 120;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const low = Math.min(...closes), high = Math.max(...closes), span = high - low || 1;
  ctx.strokeStyle = "#08306b";
  ctx.lineWidth = 2;
  ctx.beginPath();
  closes.forEach((c, j) => {
    const x = LABEL + j * CELL + CELL / 2, y = 110 - ((c - low) / span) * 100;
    if (j) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#111";
  ctx.font = "12px ui-monospace, monospace";
  ctx.textAlign = "right";
  ctx.fillText(high.toPrecision(6), LABEL - 4, 14);
  ctx.fillText(low.toPrecision(6), LABEL - 4, 112);
  return canvas;
}

function pricesPanel(panel, result) {
  const position = {"1": "long", "-1": "short", "0": "flat"}[String(result.position)];
  panel.append(el("div", {class: "output", text: `window ${result.input} of ` +
    `${result.test_windows}, ending ${result.time} → ${result.output} (truth ${result.truth}; ` +
    `${position} for the next bar)`}));
  if (result.probabilities) panel.append(probTable(result.probabilities));
  const n = result.closes.length;
  const offsets = result.closes.map((_, j) => (j === n - 1 ? "t" : `t-${n - 1 - j}`));
  panel.append(closesChart(result.closes));
  if (result.weights) {
    panel.append(el("div", {class: "row-label", text: "attention of the last bar over the window"}));
    const map = heatmap(result.weights, result.weights.map((_, h) => `head ${h}`), offsets);
    map.classList.add("bars-attention");
    panel.append(map);
  } else {
    panel.append(el("p", {class: "note", text: "this model has no attention weights"}));
  }
  panel.append(downloads(result, null, `window-${result.input}`));
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

async function explain(event) {
  event.preventDefault();
  showError("");
  const text = document.getElementById("text").value;
  const beam = Number(document.getElementById("beam").value);
  const names = [document.getElementById("model-a").value, document.getElementById("model-b").value]
    .filter((n) => n);
  const panels = document.getElementById("panels");
  panels.replaceChildren();
  document.body.dataset.state = "loading";
  try {
    for (const name of names) {
      const card = cards[name] || (cards[name] = await api(`/api/models/${encodeURIComponent(name)}`));
      const result = await api("/api/predict", {model: name, text, beam});
      const panel = el("section", {class: "panel", "data-model": name, "data-kind": result.kind},
        el("h2", {text: `${name} (${card.model})`}));
      if (result.kind === "classifier") classifierPanel(panel, result, card);
      else if (result.kind === "captioner") captionerPanel(panel, result);
      else if (result.kind === "image-classifier") imagePanel(panel, result);
      else if (result.kind === "prices") pricesPanel(panel, result);
      else seq2seqPanel(panel, result, card);
      panels.append(panel);
    }
  } catch (err) {
    showError(err.message);
  } finally {
    document.body.dataset.state = "done";
  }
}

async function start() {
  document.getElementById("form").addEventListener("submit", explain);
  try {
    const models = await api("/api/models");
    for (const m of models) {
      const text = `${m.name} (${m.kind}${m.transformer ? ", transformer" : ""})`;
      document.getElementById("model-a").append(el("option", {value: m.name, text}));
      document.getElementById("model-b").append(el("option", {value: m.name, text}));
    }
    if (!models.length) showError("no models are served");
  } catch (err) {
    showError(err.message);
  }
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", start);
