// Touchstream's dashboard: polls /api/live every 2 s and /api/report every 10 s, and draws
// them with plain DOM and SVG. Names in the data (channels, campaigns, paths) come from
// events, so they only ever go in as text, never as HTML.
"use strict";

const LIVE_EVERY_MS = 2000;
const REPORT_EVERY_MS = 10000;
const BASELINE = "last_touch"; // the model comparison's reference, as GA4's is
const state = { days: 30, model: null, models: [], reportRequests: 0, reportError: null }; // the last 30 days at first, as GA4 shows 28

const $ = (sel) => document.querySelector(sel);
const fixed = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const seconds = (s) => (s === null || s === undefined ? "–" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`);

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function bar(fraction) {
  const td = cell("", "bar");
  const span = document.createElement("span");
  span.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  td.appendChild(span);
  return td;
}

// Replace a tbody's rows; `rows` are arrays of <td>; `empty` says what no rows means.
function fill(id, rows, empty, width) {
  const body = document.getElementById(id);
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(empty, "empty");
    td.colSpan = width;
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const cells of rows) {
    const tr = document.createElement("tr");
    tr.append(...cells);
    body.appendChild(tr);
  }
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) {
    const said = await response.json().catch(() => ({}));
    throw new Error(said.error || `${url}: HTTP ${response.status}`);
  }
  return response.json();
}

function setStatus(ok, text) {
  const status = $("#status");
  status.className = `status ${ok ? "ok" : "down"}`;
  status.textContent = text;
}

// ---- live figures ----

function drawThroughput(history) {
  const svg = $("#throughput");
  const [w, h, pad] = [640, 160, 18];
  const series = [["events_in", "--events"], ["attributions_out", "--out"], ["dlq", "--dlq"]];
  const top = Math.max(1, ...history.flatMap((p) => series.map(([key]) => p[key])));
  const t0 = history.length ? history[0].at : 0;
  const span = Math.max(1, history.length ? history[history.length - 1].at - t0 : 1);
  const x = (p) => pad + ((p.at - t0) / span) * (w - 2 * pad);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  for (const [key, color] of series) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", history.map((p) => `${x(p).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", `var(${color})`);
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.appendChild(line);
  }
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "4");
  label.setAttribute("y", "12");
  label.textContent = `${Math.round(top)}/s`;
  svg.appendChild(label);
}

function showLive(live) {
  const now = live.now || { events_in: 0, attributions_out: 0, dlq: 0, events_in_by_type: {}, dlq_by_reason: {} };
  $("#worker").textContent = `worker ${live.worker}`;
  $('[data-testid="events-rate"]').textContent = fixed(now.events_in, 1);
  $('[data-testid="attributions-rate"]').textContent = fixed(now.attributions_out, 1);
  $('[data-testid="dlq-rate"]').textContent = fixed(now.dlq, 1);
  $('[data-testid="lag-total"]').textContent = live.lag.records === null ? "–" : String(live.lag.records);
  $('[data-testid="latency-p50"]').textContent = seconds(live.latency && live.latency.p50_seconds);
  $('[data-testid="latency-p99"]').textContent = seconds(live.latency && live.latency.p99_seconds);
  drawThroughput(live.history);
  const rates = (m) => Object.entries(m).map(([k, v]) => [cell(k), cell(fixed(v, 1), "num")]);
  fill("by-type", rates(now.events_in_by_type), "no events yet", 2);
  fill("by-reason", rates(now.dlq_by_reason), "none", 2);
  fill("lag", live.lag.partitions.map((p) => [cell(p.topic), cell(String(p.partition), "num"), cell(String(p.records), "num")]), "not measured yet", 3);
}

async function pollLive() {
  try {
    showLive(await getJson("/api/live"));
    if (state.reportError) setStatus(false, `report unavailable: ${state.reportError}`);
    else setStatus(true, `updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setStatus(false, `worker unreachable: ${err.message}`);
  }
}

// ---- the report ----

function period() {
  const day = (d) => d.toISOString().slice(0, 10);
  const to = new Date();
  const from = new Date(to.getTime() - (state.days - 1) * 86400000);
  return { from: day(from), to: day(to) };
}

function reportUrl(by) {
  const { from, to } = period();
  return `/api/report?from=${from}&to=${to}&by=${by}&top_paths=10`;
}

function chooseModels(models) {
  if (models.join() === state.models.join()) return;
  state.models = models;
  if (!models.includes(state.model)) state.model = models.includes("linear") ? "linear" : models[0];
  const select = $("#model");
  select.replaceChildren(...models.map((m) => Object.assign(document.createElement("option"), { value: m, textContent: m })));
  select.value = state.model;
}

function showChannels(report) {
  const m = state.model;
  const top = Math.max(0, ...report.rows.map((r) => r.models[m].conversions));
  fill("channels", report.rows.map((r) => {
    const x = r.models[m];
    return [cell(r.group), cell(fixed(x.conversions), "num"), bar(top ? x.conversions / top : 0), cell(fixed(x.value), "num"),
      cell(fixed(x.revenue), "num"), cell(fixed(r.cost), "num"), cell(fixed(x.cpa), "num"), cell(fixed(x.roas), "num")];
  }), "no conversions in this period", 8);
}

function showComparison(report) {
  // every model's credit side by side, and the chosen model's change against last touch
  const models = report.models;
  const m = state.model;
  const baseline = models.includes(BASELINE);
  const th = (text) => Object.assign(document.createElement("th"), { textContent: text });
  const head = document.createElement("tr");
  head.append(...["channel", ...models].map(th));
  if (baseline) head.append(th(`${m} vs ${BASELINE}`));
  $("#comparison-head").replaceChildren(head);
  fill("comparison", report.rows.map((r) => {
    const cells = [cell(r.group), ...models.map((x) => cell(fixed(r.models[x].conversions), "num"))];
    if (!baseline) return cells;
    const base = r.models[BASELINE].conversions;
    if (!base) return cells.concat(cell("–", "num"));
    const change = ((r.models[m].conversions - base) / base) * 100;
    return cells.concat(cell(`${change >= 0 ? "+" : ""}${change.toFixed(1)} %`, `num ${change > 0 ? "up" : change < 0 ? "down" : ""}`));
  }), "no conversions in this period", models.length + 2);
}

function showCampaigns(report) {
  const m = state.model;
  fill("campaigns", report.rows.map((r) => [cell(r.group), cell(fixed(r.models[m].conversions), "num"), cell(fixed(r.models[m].value), "num"),
    cell(fixed(r.cost), "num"), cell(fixed(r.models[m].cpa), "num"), cell(fixed(r.models[m].roas), "num")]), "no campaigns in this period", 6);
}

function showPathsAndTypes(report) {
  fill("paths", report.top_paths.map((p) => [cell(p.path), cell(String(p.conversions), "num"), cell(fixed(p.value), "num")]), "no converting paths yet", 3);
  fill("types", report.conversion_types.map((t) => [cell(t.conversion), cell(String(t.count), "num"), cell(fixed(t.value), "num"),
    cell(fixed(t.mean_touchpoints, 1), "num"), cell(fixed(t.mean_days_to_conversion, 1), "num")]), "no conversions yet", 5);
}

async function pollReport() {
  const asked = ++state.reportRequests; // a click and the timer may overlap: only the latest is shown
  try {
    const [channels, campaigns] = await Promise.all([getJson(reportUrl("channel")), getJson(reportUrl("campaign"))]);
    if (asked !== state.reportRequests) return;
    state.reportError = null;
    chooseModels(channels.models);
    document.querySelectorAll(".model-name").forEach((el) => { el.textContent = state.model; });
    $("#period").textContent = `${channels.from} to ${channels.to} (UTC) · ${channels.currency}`;
    showChannels(channels);
    showComparison(channels);
    showCampaigns(campaigns);
    showPathsAndTypes(channels);
  } catch (err) {
    if (asked !== state.reportRequests) return;
    state.reportError = err.message;
    setStatus(false, `report unavailable: ${err.message}`);
  }
}

document.querySelectorAll("[data-days]").forEach((button) => button.addEventListener("click", () => {
  document.querySelectorAll("[data-days]").forEach((b) => b.classList.toggle("on", b === button));
  state.days = Number(button.dataset.days);
  pollReport();
}));
$("#model").addEventListener("change", (e) => { state.model = e.target.value; pollReport(); });

pollLive();
pollReport();
setInterval(pollLive, LIVE_EVERY_MS);
setInterval(pollReport, REPORT_EVERY_MS);
