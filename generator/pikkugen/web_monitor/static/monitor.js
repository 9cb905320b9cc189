// pikkugen monitor: polls the JSON API every 2 s; tables in plain DOM, charts with uPlot
// (vendored, see static/vendor/VENDOR.json). No framework, no build step, nothing loaded from
// elsewhere, no inline script (the page's CSP forbids it). The view lives in the URL's hash
// (#view=queue&queue=…&state=…&job=…), so every view can be linked and reloaded.
"use strict";
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const PAGE = 50;
const COLORS = ["#2453c7", "#b45309", "#15803d", "#7c3aed", "#be185d", "#0e7490", "#4d7c0f", "#9f1239"];
const STATE_LABELS = {
  waiting: "waiting", delayed: "delayed", active: "active",
  completed: "completed", failed: "failed", dead_lettered: "dead-lettered", cancelled: "cancelled",
};

let stats = null;           // the last /api/stats
let pages = { key: null, cursors: [null], index: 0 };  // the list's pagination
const charts = new Map();   // chart id -> {plot, signature}
const selected = new Set(); // record ids ticked in the dead-letter view
let refreshing = false;
let again = false;           // a refresh asked for while one ran: run once more after it

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function $(id) { return document.getElementById(id); }

function qs(params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) query.set(k, v);
  return query.toString();
}

// Every answer of the API is JSON, errors included; anything else (a proxy's page) is shown
// as its status instead of failing to parse.
async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

function post(action, body) {
  return api(`api/actions/${action}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
    body: JSON.stringify(body),
  });
}

function fmtMs(v) { return v === null || v === undefined ? "–" : `${Math.round(v)} ms`; }
const CLOCK = { hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" };
function fmtTime(t) { return t ? new Date(t).toLocaleTimeString([], CLOCK) : "–"; }
function fmtDateTime(t) { return t ? `${new Date(t).toLocaleDateString()} ${fmtTime(t)}` : "–"; }
function has(feature) { return stats && stats.features.includes(feature); }
function json(value) { return JSON.stringify(value, null, 2); }

function route() {
  const p = new URLSearchParams(location.hash.slice(1));
  return {
    view: p.get("view") || "overview", queue: p.get("queue"),
    state: p.get("state") || "waiting", job: p.get("job"), record: p.get("record"),
  };
}

function go(params) { location.hash = qs(params); }

function setRoute(changes) { go({ ...route(), ...changes }); }

// ------------------------------------------------------------------ banner and confirmation

function banner(message, ok) {
  $("banner-text").textContent = message;
  $("banner").className = ok ? "ok" : "bad";
  $("banner").hidden = false;
}

$("banner-close").addEventListener("click", () => { $("banner").hidden = true; });

function confirmAction(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    const done = (answer) => () => {
      $("confirm-ok").onclick = null; $("confirm-cancel").onclick = null;
      dialog.close();
      resolve(answer);
    };
    $("confirm-ok").onclick = done(true);
    $("confirm-cancel").onclick = done(false);
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
  });
}

// An action: asked first, then sent with the CSRF token; the answer stays on screen until
// dismissed, and every view is read again, so nothing shows the state from before.
async function act(question, action, body) {
  if (!(await confirmAction(question))) return null;
  let result = null;
  try {
    result = await post(action, body);
    banner(result.message, result.ok);
  } catch (error) {
    banner(`${action} failed: ${error.message}`, false);
  }
  await refresh();
  return result;
}

// ------------------------------------------------------------------ charts (uPlot)

function tooltipPlugin(unit) {
  let tip;
  return {
    hooks: {
      init: (u) => { tip = el("div", { class: "chart-tip", hidden: true }); u.over.append(tip); },
      setCursor: (u) => {
        const i = u.cursor.idx;
        if (i === null || i === undefined) { tip.hidden = true; return; }
        const rows = [el("div", { class: "tip-time" }, `${fmtTime(u.data[0][i] * 1000)} (10 s)`)];
        for (let s = 1; s < u.series.length; s++) {
          const v = u.data[s][i];
          rows.push(el("div", {}, `${u.series[s].label}: ${v === null || v === undefined ? "no jobs" : `${Math.round(v * 10) / 10} ${unit}`}`));
        }
        tip.replaceChildren(...rows);
        tip.hidden = false;
        const left = Math.min(u.cursor.left + 12, u.over.clientWidth - tip.offsetWidth - 4);
        tip.style.left = `${Math.max(0, left)}px`;
        tip.style.top = `${Math.max(0, u.cursor.top - tip.offsetHeight - 8)}px`;
      },
    },
  };
}

// One chart per metric: time on x, the unit on y, one line per series, "no data" over it
// when nothing finished in the window.
function drawChart(container, id, title, unit, labels, xs, ys, hasData) {
  let box = $(id);
  if (!box) {
    box = el("div", { class: "chart", id },
      el("h3", {}, title), el("div", { class: "plot" }), el("div", { class: "no-data", hidden: true }, "no data in the last 5 minutes"));
    container.append(box);
  }
  const plotBox = box.querySelector(".plot");
  const width = Math.max(240, plotBox.clientWidth || container.clientWidth / 3 - 16);
  const height = container.classList.contains("compact") ? 130 : 180;
  const signature = `${labels.join("|")}:${width}:${height}`;
  const data = [xs, ...ys];
  const known = charts.get(id);
  if (known && known.signature === signature) {
    known.plot.setData(data);
  } else {
    if (known) known.plot.destroy();
    const opts = {
      width, height,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { stroke: "#4b5563", grid: { stroke: "#eef0f3" }, size: 30, space: 40, incrs: [60, 120, 300, 600],
          values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { hourCycle: "h23", hour: "2-digit", minute: "2-digit" })) },
        { stroke: "#4b5563", grid: { stroke: "#eef0f3" }, label: unit, labelSize: 20, size: 56 },
      ],
      series: [{}, ...labels.map((label, i) => ({
        label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false,
        points: { show: true, size: 3, fill: COLORS[i % COLORS.length] },
      }))],
      plugins: [tooltipPlugin(unit)],
    };
    charts.set(id, { plot: new uPlot(opts, data, plotBox), signature });
  }
  box.querySelector(".no-data").hidden = hasData;
}

function clearCharts(container) {
  for (const box of container.querySelectorAll(".chart")) {
    charts.get(box.id)?.plot.destroy();
    charts.delete(box.id);
  }
  container.replaceChildren();
}

function seriesOf(all, key) { return all.map((s) => s.buckets.map((b) => b[key])); }

async function drawQueueCharts(container, prefix, names) {
  const all = await Promise.all(names.map((q) => api(`api/series?${qs({ queue: q })}`)));
  if (!all.length) { container.replaceChildren(el("p", { class: "muted" }, "No queues.")); return; }
  const xs = all[0].buckets.map((b) => b.t / 1000);
  const hasData = all.some((s) => s.has_data);
  const single = names.length === 1;
  const labels = (suffix) => names.map((n) => (single ? suffix : n));
  drawChart(container, `${prefix}-throughput`, "Throughput (finished jobs per minute)", "jobs/min",
    labels("finished"), xs, seriesOf(all, "per_minute"), hasData);
  if (single) {
    drawChart(container, `${prefix}-latency`, "Latency, enqueue to finish (p50 and p95)", "ms",
      ["p50", "p95"], xs, [...seriesOf(all, "p50_ms"), ...seriesOf(all, "p95_ms")], hasData);
  } else {
    drawChart(container, `${prefix}-latency`, "Latency p95, enqueue to finish", "ms",
      labels("p95"), xs, seriesOf(all, "p95_ms"), hasData);
  }
  drawChart(container, `${prefix}-failed`, "Failed for good (jobs per minute)", "jobs/min",
    labels("failed"), xs, seriesOf(all, "failed_per_minute"), hasData);
}

// ------------------------------------------------------------------ sidebar and overview

function queueRow(name) { return stats.queues.find((q) => q.queue === name); }

function renderSidebar(r) {
  const link = (q) => {
    const view = q.is_dlq ? "dlq" : "queue";
    const current = r.view === view && r.queue === q.queue;
    const alert = q.is_dlq ? q.counts.waiting : q.counts.failed + q.counts.dead_lettered;
    return el("li", {},
      el("a", { href: `#${qs({ view, queue: q.queue })}`, class: current ? "current" : null, "data-nav": q.queue },
        el("span", { class: "name" }, q.queue),
        q.paused ? el("span", { class: "badge paused" }, "paused") : "",
        alert ? el("span", { class: "badge alert", title: q.is_dlq ? "records" : "failed or dead-lettered" }, alert) : ""));
  };
  $("nav-queues").replaceChildren(...stats.queues.filter((q) => !q.is_dlq).map(link));
  $("nav-dlqs").replaceChildren(...stats.queues.filter((q) => q.is_dlq).map(link));
  $("nav-overview").className = r.view === "overview" ? "current" : "";
}

function renderOverview() {
  $("queue-head").replaceChildren(el("th", {}, "queue"), ...stats.states.map(
    (s) => el("th", { class: "num", title: stats.definitions[s] }, STATE_LABELS[s])),
    el("th", { class: "num", title: stats.definitions.scheduled }, "scheduled"),
    el("th", { class: "num" }, "jobs/min"), el("th", { class: "num" }, "p50"),
    el("th", { class: "num" }, "p95"), el("th", { class: "num" }, "error rate"));
  $("queues").querySelector("tbody").replaceChildren(...stats.queues.map((q) => el("tr", { "data-queue": q.queue },
    el("td", {}, el("a", { href: `#${qs({ view: q.is_dlq ? "dlq" : "queue", queue: q.queue })}` }, q.queue),
      q.is_dlq ? el("span", { class: "badge" }, "DLQ") : "", q.paused ? el("span", { class: "badge paused" }, "paused") : ""),
    ...stats.states.map((s) => el("td", { class: `num state-${s}${q.counts[s] ? "" : " zero"}`, "data-count": s }, q.counts[s])),
    el("td", { class: "num" }, q.scheduled),
    el("td", { class: "num" }, q.throughput_per_minute.toFixed(1)),
    el("td", { class: "num" }, fmtMs(q.latency_p50_ms)), el("td", { class: "num" }, fmtMs(q.latency_p95_ms)),
    el("td", { class: "num" }, `${(q.error_rate * 100).toFixed(1)} %`))));
  const missing = Object.entries(stats.missing);
  $("missing-note").hidden = !missing.length;
  $("missing-note").textContent = missing.length
    ? "Not on this backend: " + missing.map(([f, why]) => `${f.replaceAll("_", " ")} (${why})`).join("; ")
    : "";
}

// ------------------------------------------------------------------ a queue: lists by state

function pagerFor(key) {
  if (pages.key !== key) pages = { key, cursors: [null], index: 0 };
  return pages;
}

async function renderQueue(r) {
  const q = queueRow(r.queue);
  if (!q) { $("queue-title").textContent = `${r.queue}: not a queue of this monitor`; return; }
  $("queue-title").textContent = q.queue;
  $("queue-paused").hidden = !q.paused;
  $("queue-pause").hidden = !has("pause_queue") || q.paused;
  $("queue-resume").hidden = !has("pause_queue") || !q.paused;
  $("queue-clean-completed").hidden = !has("clean_jobs");
  $("queue-clean-failed").hidden = !has("clean_jobs");
  $("state-tabs").replaceChildren(...stats.states.map((s) => el("a", {
    href: `#${qs({ view: "queue", queue: q.queue, state: s, job: r.job })}`, role: "tab",
    class: s === r.state ? "tab current" : "tab", "data-state-tab": s, title: stats.definitions[s],
  }, `${STATE_LABELS[s]} `, el("span", { class: "count" }, q.counts[s]))));
  const box = $("queue-charts");
  if (box.dataset.queue !== q.queue) { clearCharts(box); box.dataset.queue = q.queue; }
  await Promise.all([drawQueueCharts(box, `q-${q.queue}`, [q.queue]), renderJobs(r, q), renderJob(r)]);
}

async function renderJobs(r, q) {
  const body = $("jobs").querySelector("tbody");
  const note = $("jobs-note");
  if (!has("list_jobs")) {
    note.hidden = false;
    note.textContent = `This backend cannot list jobs: ${stats.missing.list_jobs || ""}. The counts, charts and dead letters still apply; open a job by its id above.`;
    body.replaceChildren();
    $("jobs-range").textContent = "";
    $("jobs-newer").disabled = $("jobs-older").disabled = true;
    return;
  }
  const pager = pagerFor(`${q.queue}\u0000${r.state}`);
  let data;
  try {
    data = await api(`api/jobs?${qs({ queue: q.queue, state: r.state, limit: PAGE, cursor: pager.cursors[pager.index] })}`);
  } catch (error) {
    note.hidden = false;
    note.textContent = `Could not list the jobs: ${error.message}`;
    return;
  }
  note.hidden = data.jobs.length > 0;
  note.textContent = data.jobs.length ? "" : `No ${STATE_LABELS[r.state]} jobs.`;
  body.replaceChildren(...data.jobs.map((j) => el("tr", { class: j.id === r.job ? "current" : null, "data-row": j.id },
    el("td", { class: "id", title: j.id }, el("a", { href: `#${qs({ view: "queue", queue: q.queue, state: r.state, job: j.id })}`, "data-job": j.id }, j.id)),
    el("td", { class: `state-${j.state}`, "data-state": j.state }, STATE_LABELS[j.state] || j.state),
    el("td", { class: "num" }, j.attempts),
    el("td", {}, fmtTime(j.enqueued_at_ms)),
    el("td", {}, fmtTime(j.finished_at_ms)),
    el("td", { class: "clip" }, j.error ? `${j.error.type}: ${j.error.message}` : j.progress ? json(j.progress).replace(/\s+/g, " ") : ""))));
  pager.next = data.next_cursor;
  const first = pager.index * PAGE;
  const total = q.counts[r.state];
  $("jobs-range").textContent = data.jobs.length
    ? `${first + 1}–${first + data.jobs.length} of ${total}` : `0 of ${total}`;
  $("jobs-newer").disabled = pager.index === 0;
  $("jobs-older").disabled = !data.next_cursor;
}

function field(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function block(label, value) {
  return [el("h4", {}, label), el("pre", {}, value)];
}

async function renderJob(r) {
  const pane = $("detail");
  if (!r.job) {
    pane.replaceChildren(el("p", { class: "muted" }, "Pick a job to see its payload, result, progress and error."));
    return;
  }
  let job;
  try {
    job = await api(`api/job?${qs({ queue: r.queue, id: r.job })}`);
  } catch (error) {
    pane.replaceChildren(el("h3", { class: "id" }, r.job), el("p", { class: "error", "data-detail-error": "" }, error.message));
    return;
  }
  const buttons = [];
  if (job.state === "failed" && has("retry_job")) {
    buttons.push(el("button", { type: "button", "data-action": "retry", onclick: () => act(
      `Retry job ${job.id} of ${job.queue}? It goes back to waiting with its attempts reset.`, "retry", { queue: job.queue, id: job.id }) }, "Retry"));
  }
  if (job.state === "delayed" && has("promote_job")) {
    buttons.push(el("button", { type: "button", "data-action": "promote", onclick: () => act(
      `Promote job ${job.id} of ${job.queue}? It runs now instead of after its delay.`, "promote", { queue: job.queue, id: job.id }) }, "Promote"));
  }
  if (job.state !== "active" && has("remove_job")) {
    buttons.push(el("button", { type: "button", class: "danger", "data-action": "remove", onclick: async () => {
      const done = await act(`Remove job ${job.id} of ${job.queue}? Its payload, result and error are deleted for good.`, "remove", { queue: job.queue, id: job.id });
      if (done && done.ok) setRoute({ job: null });
    } }, "Remove"));
  }
  const running = job.state === "active";
  if ((job.state === "waiting" || job.state === "delayed") && has("cancel")
      || running && has("cancel_running")) {
    buttons.push(el("button", { type: "button", class: "danger", "data-action": "cancel", onclick: () => act(
      running ? `Cancel job ${job.id} of ${job.queue}? It is running: its worker is told to stop it, and it ends cancelled (not retried).`
        : `Cancel job ${job.id} of ${job.queue}? It is removed and never runs.`,
      "cancel", { queue: job.queue, id: job.id }) }, "Cancel job"));
  }
  const dlq = stats.queues.find((q) => q.queue === job.queue)?.dead_letter_queue;
  if (job.state === "dead_lettered" && dlq) {
    buttons.push(el("a", { class: "button", href: `#${qs({ view: "dlq", queue: dlq })}` }, `Replay from ${dlq}`));
  }
  pane.replaceChildren(
    el("h3", { class: "id", "data-detail": job.id }, job.id),
    el("div", { class: "actions" }, ...buttons),
    el("dl", {}, ...field("queue", job.queue),
      ...field("state", el("span", { class: `state-${job.state}`, "data-detail-state": job.state }, STATE_LABELS[job.state] || job.state)),
      ...field("attempts", job.attempts), ...field("enqueued", fmtDateTime(job.enqueued_at_ms)),
      ...field("finished", fmtDateTime(job.finished_at_ms))),
    ...block("payload", json(job.payload)),
    ...(job.progress ? block("progress", json(job.progress)) : []),
    ...(job.result !== null && job.result !== undefined ? block("result", json(job.result)) : []),
    ...(job.error ? block("error", `${job.error.type}: ${job.error.message}\n\n${job.error.traceback || ""}`) : []));
}

// ------------------------------------------------------------------ a dead-letter queue

async function renderDlq(r) {
  $("dlq-title").textContent = `Dead letters of ${r.queue}`;
  const replayable = has("replay_dead_letters");
  $("dlq-replay-all").hidden = !replayable;
  $("dlq-replay-selected").hidden = !replayable;
  const pager = pagerFor(`dlq\u0000${r.queue}`);
  let data;
  try {
    data = await api(`api/dlq?${qs({ queue: r.queue, limit: PAGE, cursor: pager.cursors[pager.index] })}`);
  } catch (error) {
    $("dlq-note").hidden = false;
    $("dlq-note").textContent = `Could not read the records: ${error.message}`;
    return;
  }
  $("dlq-note").hidden = data.records.length > 0;
  $("dlq-note").textContent = data.records.length ? "" : "No dead letters.";
  const shown = new Set(data.records.map((x) => x.id));
  for (const id of [...selected]) if (!shown.has(id)) selected.delete(id);
  $("dlq").querySelector("tbody").replaceChildren(...data.records.map((x) => el("tr", { "data-record": x.id, class: x.id === r.record ? "current" : null },
    el("td", {}, x.record ? el("input", { type: "checkbox", "data-select": x.id, checked: selected.has(x.id), onchange: (e) => {
      if (e.target.checked) selected.add(x.id); else selected.delete(x.id);
      updateSelection();
    } }) : ""),
    el("td", { class: "id", title: x.id }, el("a", { href: `#${qs({ view: "dlq", queue: r.queue, record: x.id })}`, "data-open-record": x.id }, x.id)),
    el("td", { class: "id", title: x.record ? `${x.queue} / ${x.job_id}` : null }, x.record ? `${x.queue} / ${x.job_id}` : "(not a record)"),
    el("td", { class: "num" }, x.record ? x.attempts : ""),
    el("td", { title: x.record ? `failed ${fmtDateTime(x.failed_at_ms)}` : null }, x.record ? x.reason : ""),
    el("td", { class: "clip" }, x.record ? `${x.error.type}: ${x.error.message}` : ""),
    el("td", {}, x.record && replayable ? el("button", { type: "button", "data-replay": x.id, onclick: () => act(
      `Replay record ${x.id}? Job ${x.job_id} goes back to ${x.queue} with its attempts reset.`, "replay", { queue: r.queue, ids: [x.id] }) }, "Replay") : ""))));
  const first = pager.index * PAGE;
  const total = queueRow(r.queue)?.counts.waiting ?? data.records.length;
  $("dlq-range").textContent = data.records.length ? `${first + 1}–${first + data.records.length} of ${total}` : `0 of ${total}`;
  pager.next = data.next_cursor;
  $("dlq-newer").disabled = pager.index === 0;
  $("dlq-older").disabled = !data.next_cursor;
  updateSelection();
  const record = data.records.find((x) => x.id === r.record);
  const pane = $("record-detail");
  if (!r.record) {
    pane.replaceChildren(el("p", { class: "muted" }, "Pick a record to see the job's payload and its last error."));
  } else if (!record) {
    pane.replaceChildren(el("h3", { class: "id" }, r.record), el("p", { class: "error" }, "This record is not on this page any more (replayed, or removed)."));
  } else if (!record.record) {
    pane.replaceChildren(el("h3", { class: "id" }, record.id), ...block("payload (not a dead-letter record)", json(record.payload)));
  } else {
    pane.replaceChildren(
      el("h3", { class: "id", "data-detail": record.id }, `${record.queue} / ${record.job_id}`),
      el("dl", {}, ...field("record", record.id), ...field("reason", record.reason),
        ...field("attempts", record.attempts), ...field("failed", fmtDateTime(record.failed_at_ms))),
      ...block("payload", json(record.payload)),
      ...block("error", `${record.error.type}: ${record.error.message}\n\n${record.error.traceback || ""}`));
  }
}

function updateSelection() {
  const button = $("dlq-replay-selected");
  button.disabled = selected.size === 0;
  button.textContent = selected.size ? `Replay selected (${selected.size})` : "Replay selected";
}

// ------------------------------------------------------------------ wiring

function pageButtons(newer, older) {
  $(newer).addEventListener("click", () => { if (pages.index > 0) { pages.index -= 1; refresh(); } });
  $(older).addEventListener("click", () => {
    if (pages.next) { pages.cursors[pages.index + 1] = pages.next; pages.index += 1; refresh(); }
  });
}
pageButtons("jobs-newer", "jobs-older");
pageButtons("dlq-newer", "dlq-older");

$("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = $("lookup-id").value.trim();
  if (id) setRoute({ job: id });
});

$("queue-pause").addEventListener("click", () => {
  const q = route().queue;
  act(`Pause ${q}? Workers finish the active jobs and take no new ones until it is resumed.`, "pause", { queue: q });
});
$("queue-resume").addEventListener("click", () => act(`Resume ${route().queue}?`, "resume", { queue: route().queue }));
$("queue-clean-completed").addEventListener("click", () => act(
  `Remove every completed job of ${route().queue}? Their results are deleted for good.`, "clean", { queue: route().queue, state: "completed" }));
$("queue-clean-failed").addEventListener("click", () => act(
  `Remove every failed and dead-lettered job of ${route().queue}? Their errors are deleted (dead-letter records stay in their queue).`,
  "clean", { queue: route().queue, state: "failed" }));
$("dlq-replay-all").addEventListener("click", () => act(
  `Replay every record of ${route().queue}? The jobs go back to their queues with their attempts reset.`, "replay", { queue: route().queue, ids: null }));
$("dlq-replay-selected").addEventListener("click", () => act(
  `Replay the ${selected.size} selected record(s)? The jobs go back to their queues with their attempts reset.`, "replay", { queue: route().queue, ids: [...selected] }));
$("dlq-select-all").addEventListener("change", (event) => {
  for (const box of document.querySelectorAll("#dlq input[data-select]")) {
    box.checked = event.target.checked;
    if (box.checked) selected.add(box.dataset.select); else selected.delete(box.dataset.select);
  }
  updateSelection();
});

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  const r = route();
  try {
    stats = await api("api/stats");
    renderSidebar(r);
    for (const view of ["overview", "queue", "dlq"]) $(`view-${view}`).hidden = view !== r.view;
    if (r.view === "queue") await renderQueue(r);
    else if (r.view === "dlq") await renderDlq(r);
    else {
      renderOverview();
      await drawQueueCharts($("overview-charts"), "overview", stats.queues.filter((q) => !q.is_dlq).map((q) => q.queue));
    }
    $("updated").textContent = `updated ${fmtTime(stats.now_ms)}`;
    document.body.dataset.ready = "1";
  } catch (error) {
    $("updated").textContent = `error: ${error.message}`;
  } finally {
    refreshing = false;
  }
  if (again) { again = false; await refresh(); }
}

window.addEventListener("hashchange", () => { refresh(); });
window.addEventListener("resize", () => { for (const c of charts.values()) c.signature = ""; refresh(); });
refresh();
setInterval(refresh, 2000);
