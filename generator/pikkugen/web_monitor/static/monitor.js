// pikkugen monitor: polls the JSON API every 2 s and draws tables and SVG charts. No framework,
// no build step, nothing loaded from elsewhere.
"use strict";
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const SVG = "http://www.w3.org/2000/svg";
let selectedQueue = null;
let selectedDlq = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.onclick = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function ms(v) { return v === null || v === undefined ? "-" : Math.round(v).toString(); }
function when(t) { return t ? new Date(t).toLocaleTimeString() : "-"; }

function renderQueues(data) {
  const head = document.getElementById("queue-head");
  head.replaceChildren(el("th", {}, "queue"), ...data.states.map(
    (s) => el("th", { title: data.definitions[s] }, s.replace("_", "-"))),
    el("th", { title: data.definitions.scheduled }, "scheduled"),
    el("th", {}, "jobs/min"), el("th", {}, "p50 ms"), el("th", {}, "p95 ms"),
    el("th", {}, "error rate"), el("th", { class: "text" }, ""));
  const body = document.querySelector("#queues tbody");
  body.replaceChildren(...data.queues.map((q) => {
    const open = q.is_dlq
      ? el("a", { onclick: () => showDlq(q.queue), "data-dlq": q.queue }, "dead letters")
      : el("a", { onclick: () => showJobs(q.queue), "data-jobs": q.queue }, "jobs");
    return el("tr", { "data-queue": q.queue },
      el("td", {}, q.queue + (q.is_dlq ? " (DLQ)" : "")),
      ...data.states.map((s) => el("td", { "data-count": s, class: `state-${s}` }, q.counts[s])),
      el("td", {}, q.scheduled),
      el("td", {}, q.throughput_per_minute.toFixed(1)),
      el("td", {}, ms(q.latency_p50_ms)), el("td", {}, ms(q.latency_p95_ms)),
      el("td", {}, (q.error_rate * 100).toFixed(1) + "%"),
      el("td", { class: "text" }, open));
  }));
  const note = document.getElementById("list-note");
  note.hidden = !data.list_note;
  note.textContent = data.list_note || "";
  document.getElementById("updated").textContent = "updated " + when(data.now_ms);
}

function polyline(points, color) {
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", color);
  line.setAttribute("stroke-width", "2");
  return line;
}

function drawChart(series) {
  const id = "chart-" + series.queue;
  let box = document.getElementById(id);
  if (!box) {
    box = el("div", { class: "chart", id });
    box.append(el("h3", {}, series.queue));
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 600 160");
    svg.setAttribute("preserveAspectRatio", "none");
    box.append(svg, el("div", { class: "legend" }));
    document.getElementById("charts").append(box);
  }
  const svg = box.querySelector("svg");
  const b = series.buckets;
  const maxRate = Math.max(1, ...b.map((x) => x.per_minute));
  const maxLatency = Math.max(1, ...b.map((x) => x.p95_ms || 0));
  const x = (i) => (b.length <= 1 ? 0 : (i * 600) / (b.length - 1));
  const y = (v, max) => 155 - (v / max) * 145;
  const latency = (key) => b.map((p, i) => [x(i), y(p[key] || 0, maxLatency)]);
  const errors = b.map((p, i) => [x(i), y(p.finished ? p.failed / p.finished : 0, 1)]);
  svg.replaceChildren(
    polyline(b.map((p, i) => [x(i), y(p.per_minute, maxRate)]), "#2453c7"),
    polyline(latency("p50_ms"), "#15803d"),
    polyline(latency("p95_ms"), "#b45309"),
    polyline(errors, "#b91c1c"));
  const last = b[b.length - 1] || {};
  box.querySelector(".legend").replaceChildren(
    el("span", { class: "throughput" }, `throughput (max ${maxRate.toFixed(0)} jobs/min)`),
    el("span", { class: "p50" }, `p50 latency (now ${ms(last.p50_ms)} ms)`),
    el("span", { class: "p95" }, `p95 latency (max ${ms(maxLatency)} ms)`),
    el("span", { class: "errors" }, "error rate (0–100 %)"));
}

async function showJobs(queue) {
  selectedQueue = queue;
  const data = await api(`api/queues/${encodeURIComponent(queue)}/jobs`);
  document.getElementById("jobs-section").hidden = false;
  document.getElementById("jobs-queue").textContent = queue;
  const note = document.getElementById("jobs-note");
  note.hidden = data.supported;
  note.textContent = data.supported ? "" : "This backend cannot list jobs; counts and charts above still apply.";
  document.querySelector("#jobs tbody").replaceChildren(...data.jobs.map((j) => el("tr", {},
    el("td", {}, el("a", { onclick: () => showJob(queue, j.id), "data-job": j.id }, j.id)),
    el("td", { class: `state-${j.state}`, "data-state": j.state }, j.state),
    el("td", {}, j.attempts),
    el("td", { class: "text" }, j.progress ? JSON.stringify(j.progress) : ""),
    el("td", { class: "text" }, j.error ? `${j.error.type}: ${j.error.message}` : ""))));
}

async function showJob(queue, id) {
  const job = await api(`api/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`);
  document.getElementById("detail-section").hidden = false;
  document.getElementById("detail-title").textContent = `${queue}/${id}`;
  const text = [
    `state:    ${job.state}`, `attempts: ${job.attempts}`,
    `payload:  ${JSON.stringify(job.payload, null, 2)}`,
    `result:   ${JSON.stringify(job.result, null, 2)}`,
  ];
  if (job.error) text.push(`error:    ${job.error.type}: ${job.error.message}`, "", job.error.traceback);
  document.getElementById("detail").textContent = text.join("\n");
}

function showRecord(record) {
  document.getElementById("detail-section").hidden = false;
  document.getElementById("detail-title").textContent = `${record.queue}/${record.job_id} (dead-lettered)`;
  document.getElementById("detail").textContent = [
    `record:   ${record.id}`, `reason:   ${record.reason}`, `attempts: ${record.attempts}`,
    `payload:  ${JSON.stringify(record.payload, null, 2)}`,
    `error:    ${record.error.type}: ${record.error.message}`, "", record.error.traceback,
  ].join("\n");
}

async function replay(ids) {
  const what = ids ? `record ${ids[0]}` : `every record of ${selectedDlq}`;
  if (!window.confirm(`Replay ${what}? The job(s) go back to their queue with attempts reset.`)) return;
  const result = await api(`api/dlq/${encodeURIComponent(selectedDlq)}/replay`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
    body: JSON.stringify({ ids }),
  });
  document.getElementById("updated").textContent = `replayed ${result.replayed} job(s)`;
  await refresh();
}

async function showDlq(dlq) {
  selectedDlq = dlq;
  const data = await api(`api/dlq/${encodeURIComponent(dlq)}`);
  document.getElementById("dlq-section").hidden = false;
  document.getElementById("dlq-name").textContent = dlq;
  document.querySelector("#dlq tbody").replaceChildren(...data.records.map((r) => el("tr", { "data-record": r.id },
    el("td", {}, el("a", { onclick: () => showRecord(r), "data-open-record": r.id }, r.id)),
    el("td", { class: "text" }, `${r.queue}/${r.job_id}`),
    el("td", {}, r.attempts), el("td", { class: "text" }, r.reason),
    el("td", { class: "text" }, `${r.error.type}: ${r.error.message}`),
    el("td", {}, el("button", { type: "button", onclick: () => replay([r.id]), "data-replay": r.id }, "Replay")))));
}

document.getElementById("replay-all").onclick = () => replay(null);

async function refresh() {
  try {
    const data = await api("api/stats");
    renderQueues(data);
    for (const q of data.queues) drawChart(await api(`api/queues/${encodeURIComponent(q.queue)}/series`));
    if (selectedQueue) await showJobs(selectedQueue);
    if (selectedDlq) await showDlq(selectedDlq);
  } catch (error) {
    document.getElementById("updated").textContent = "error: " + error.message;
  }
}

refresh();
setInterval(refresh, 2000);
