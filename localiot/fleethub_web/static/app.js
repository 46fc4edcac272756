// The Fleet Hub dashboard: hash routes (#/search?q=..., #/thing/<name>, #/jobs,
// #/job/<id>, #/alarms) over the JSON routes beside this page, and live updates from
// the server-sent events at ./events. Everything shown is set as text, never HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const VIEWS = ["search", "thing", "jobs", "job", "alarms"];
const selected = new Set();
let current = { view: "search", arg: "" };
let tokens = [];  // nextToken of each page shown so far (paging)

async function api(path, options) {
  const response = await fetch("api/" + path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(`${body.code}: ${body.message}`);
  return body;
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function row(tbody, cells) {
  const tr = el("tr");
  for (const cell of cells) {
    const td = el("td");
    if (cell instanceof Node) td.append(cell); else td.textContent = cell === undefined || cell === null ? "" : String(cell);
    tr.append(td);
  }
  tbody.append(tr);
  return tr;
}

function fillList(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    dl.append(el("dt", k));
    dl.append(el("dd", v === undefined || v === null || v === "" ? "—" : (typeof v === "object" ? JSON.stringify(v) : v)));
  }
}

const time = (t) => (t ? new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
const timeMs = (t) => (t ? time(t / 1000) : "");
const shownValue = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(Object.values(v).length === 1 ? Object.values(v)[0] : v) : String(v));
const link = (href, text) => el("a", text, { href });
const badge = (on, yes, no) => el("span", on ? yes : no, { class: "badge " + (on ? "on" : "off") });

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
  $("error").hidden = !error;
}

// search ---------------------------------------------------------------------
async function showSearch(query, page) {
  $("query").value = query;
  $("search-status").textContent = "Searching…";
  const params = new URLSearchParams({ q: query });
  if (page > 0) params.set("next", tokens[page - 1]);
  const found = await api("search?" + params);
  tokens = tokens.slice(0, page).concat([found.nextToken]);
  const tbody = $("results").querySelector("tbody");
  tbody.replaceChildren();
  for (const t of found.things) {
    const box = el("input", null, { type: "checkbox", "aria-label": "Select " + t.thingName });
    box.checked = selected.has(t.thingName);
    box.addEventListener("change", () => (box.checked ? selected.add(t.thingName) : selected.delete(t.thingName)));
    const reported = t.shadow && t.shadow.reported ? el("code", JSON.stringify(t.shadow.reported)) : "";
    const conn = t.connectivity ? badge(t.connectivity.connected, "connected", "disconnected") : "unknown";
    const tr = row(tbody, [box, link("#/thing/" + encodeURIComponent(t.thingName), t.thingName), t.thingTypeName,
      conn, el("code", JSON.stringify(t.attributes || {})), reported]);
    tr.dataset.thing = t.thingName;
  }
  $("search-status").textContent = `${found.things.length} thing(s) on page ${page + 1} for ${found.queryString}`;
  $("next-page").hidden = !found.nextToken;
  $("first-page").hidden = page === 0;
  $("next-page").onclick = () => showSearch(query, page + 1).catch(showError);
}

// one device --------------------------------------------------------------------
function shadowBlocks(container, doc) {
  container.replaceChildren();
  if (!doc) { container.append(el("p", "No shadow.", { class: "muted" })); return; }
  const state = doc.state || {};
  for (const part of ["desired", "reported", "delta"]) {
    const box = el("div", null, { "data-part": part });
    box.append(el("h4", part));
    box.append(el("pre", state[part] === undefined ? "—" : JSON.stringify(state[part], null, 2)));
    container.append(box);
  }
  container.append(el("p", `version ${doc.version} · ${time(doc.timestamp)}`, { class: "muted", "data-part": "version" }));
}

async function showThing(name) {
  const d = await api("things/" + encodeURIComponent(name));
  $("thing-title").textContent = d.thing.thingName;
  fillList($("thing-registry"), [["Type", d.thing.thingTypeName], ["Version", d.thing.version],
    ["Billing group", d.thing.billingGroupName], ...Object.entries(d.thing.attributes || {}).map(([k, v]) => ["attributes." + k, v])]);
  const c = d.connectivity;
  fillList($("thing-connectivity"), c ? [["Connected", c.connected ? "yes" : "no"], ["Since", time(c.timestamp)],
    ["Disconnect reason", c.disconnectReason]] : [["Connected", "unknown"]]);
  $("thing-groups").replaceChildren(...(d.groups.length ? d.groups.map((g) => el("li", g)) : [el("li", "none")]));
  shadowBlocks($("thing-shadow"), d.shadow);
  const named = $("thing-named");
  named.replaceChildren();
  if (!Object.keys(d.namedShadows).length) named.append(el("p", "None.", { class: "muted" }));
  for (const [n, doc] of Object.entries(d.namedShadows)) {
    const box = el("div", null, { class: "shadow", "data-shadow": n });
    named.append(el("h4", n));
    named.append(box);
    shadowBlocks(box, doc);
  }
  const alarms = $("thing-violations").querySelector("tbody");
  alarms.replaceChildren();
  for (const v of d.violations) row(alarms, [v.securityProfileName, v.behaviorName, v.metric, v.criteriaType, shownValue(v.value), time(v.since)]).dataset.violation = v.violationId;
  if (!d.violations.length) row(alarms, ["none"]);
  const history = $("thing-history").querySelector("tbody");
  history.replaceChildren();
  for (const c of d.connections) row(history, [timeMs(c.connectedAt), c.disconnectedAt ? timeMs(c.disconnectedAt) : "connected", c.disconnectReason, c.ipAddress]);
  if (!d.connections.length) row(history, ["none"]);
  const tbody = $("thing-jobs").querySelector("tbody");
  tbody.replaceChildren();
  for (const j of d.jobs) row(tbody, [link("#/job/" + encodeURIComponent(j.jobId), j.jobId), j.status, time(j.queuedAt), time(j.lastUpdatedAt)]);
}

// a device's MQTT messages while its page is open (./things/<name>/messages) -------
const MESSAGES_KEPT = 50;
let watching = null;  // { name, source }

function watchMessages(name) {
  if (watching && watching.name === name) return;  // a re-render keeps what arrived
  stopWatching();
  $("thing-messages").querySelector("tbody").replaceChildren();
  $("messages-status").textContent = "Waiting for messages…";
  const source = new EventSource("things/" + encodeURIComponent(name) + "/messages");
  source.onmessage = (message) => {
    const m = JSON.parse(message.data);
    const tbody = $("thing-messages").querySelector("tbody");
    const payload = (m.text !== undefined ? m.text : "base64:" + m.base64) + (m.truncated ? " …" : "");
    const tr = row(tbody, [time(m.at), m.direction === "sent" ? "from device" : "to device", el("code", m.topic),
      el("code", payload), String(m.size)]);
    tr.dataset.topic = m.topic;
    tbody.prepend(tr);
    while (tbody.rows.length > MESSAGES_KEPT) tbody.deleteRow(-1);
    $("messages-status").textContent = `${tbody.rows.length} message(s) since this page opened`;
  };
  watching = { name, source };
}

function stopWatching() {
  if (watching) { watching.source.close(); watching = null; }
}

// jobs ---------------------------------------------------------------------------
async function showJobs() {
  const d = await api("jobs");
  const tbody = $("jobs").querySelector("tbody");
  tbody.replaceChildren();
  for (const j of d.jobs) row(tbody, [link("#/job/" + encodeURIComponent(j.jobId), j.jobId), j.status, time(j.createdAt)]);
  if (!$("job-things").value && selected.size) $("job-things").value = [...selected].join(", ");
}

async function showJob(id) {
  const d = await api("jobs/" + encodeURIComponent(id));
  $("job-title").textContent = "Job " + d.job.jobId;
  const p = d.job.jobProcessDetails || {};
  fillList($("job-details"), [["Status", d.job.status], ["Created", time(d.job.createdAt)], ["Completed", time(d.job.completedAt)],
    ["Succeeded", p.numberOfSucceededThings], ["Failed", p.numberOfFailedThings], ["In progress", p.numberOfInProgressThings],
    ["Queued", p.numberOfQueuedThings]]);
  const tbody = $("job-executions").querySelector("tbody");
  tbody.replaceChildren();
  for (const e of d.executions) row(tbody, [link("#/thing/" + encodeURIComponent(e.thingName), e.thingName), e.status, time(e.lastUpdatedAt)]);
}

async function createJob(event) {
  event.preventDefault();
  const things = $("job-things").value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    const created = await api("jobs", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jobId: $("job-id").value, things, document: $("job-document").value }) });
    $("job-form-status").textContent = "Created " + created.jobId;
    location.hash = "#/job/" + encodeURIComponent(created.jobId);
  } catch (error) {
    $("job-form-status").textContent = String(error.message || error);
  }
}

// alarms ---------------------------------------------------------------------------
async function showAlarms() {
  const d = await api("alarms");
  const tbody = $("violations").querySelector("tbody");
  tbody.replaceChildren();
  for (const v of d.violations) {
    row(tbody, [link("#/thing/" + encodeURIComponent(v.thingName), v.thingName), v.securityProfileName, v.behaviorName,
      v.metric, v.criteriaType, shownValue(v.value), time(v.since), v.verificationState]).dataset.violation = v.violationId;
  }
  $("violations-status").textContent = `${d.violations.length} active violation(s)`;
  const metrics = $("fleet-metrics").querySelector("tbody");
  metrics.replaceChildren();
  for (const m of d.fleetMetrics) {
    row(metrics, [m.metricName, el("code", m.queryString), m.aggregationType,
      m.error ? m.error : shownValue(m.value), m.period]).dataset.metric = m.metricName;
  }
  if (!d.fleetMetrics.length) row(metrics, ["none"]);
}

// routing and live updates --------------------------------------------------------
function parseHash() {
  const [path, query] = (location.hash.replace(/^#\/?/, "") || "search").split("?");
  const [view, ...rest] = path.split("/");
  return { view: VIEWS.includes(view) ? view : "search", arg: decodeURIComponent(rest.join("/")),
           query: new URLSearchParams(query || "").get("q") || "" };
}

async function render() {
  current = parseHash();
  for (const v of VIEWS) $("view-" + v).hidden = v !== current.view;
  if (current.view === "thing") watchMessages(current.arg); else stopWatching();
  showError(null);
  try {
    if (current.view === "search") await showSearch(current.query, 0);
    else if (current.view === "thing") await showThing(current.arg);
    else if (current.view === "jobs") await showJobs();
    else if (current.view === "alarms") await showAlarms();
    else await showJob(current.arg);
  } catch (error) { showError(error); }
  document.body.dataset.rendered = String(Date.now());
}

function touches(topic) {
  const v = current.view, name = current.arg;
  if (v === "thing") return topic.startsWith(`$aws/things/${name}/`) || topic.endsWith("/" + name) || topic.startsWith("$aws/events/job");
  if (v === "alarms") return true;
  if (v === "job" || v === "jobs") return topic.includes("/jobs/") || topic.startsWith("$aws/events/job");
  return topic.includes("/shadow/") || topic.startsWith("$aws/events/presence/") || topic.startsWith("$aws/events/thing/");
}

let pending = null;
function refreshSoon() {
  clearTimeout(pending);
  pending = setTimeout(() => {
    if (current.view === "search") showSearch($("query").value, Math.max(0, tokens.length - 1)).catch(showError);
    else render();
  }, 150);
}

function listen() {
  const source = new EventSource("events");
  source.onopen = () => { $("live").textContent = "live"; refreshSoon(); };
  source.onerror = () => { $("live").textContent = "reconnecting…"; };
  source.onmessage = (message) => { if (touches(JSON.parse(message.data).topic)) refreshSoon(); };
}

async function start() {
  const app = await api("application");
  $("app-name").textContent = app.applicationName;
  document.title = app.applicationName + " · Fleet Hub";
  $("app-scope").textContent = `${app.account} · ${app.region}`;
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const hash = "#/search?q=" + encodeURIComponent($("query").value);
    if (location.hash === hash) render(); else location.hash = hash;
  });
  $("first-page").addEventListener("click", () => showSearch($("query").value, 0).catch(showError));
  $("job-for-selected").addEventListener("click", () => { $("job-things").value = [...selected].join(", "); location.hash = "#/jobs"; });
  $("job-form").addEventListener("submit", createJob);
  window.addEventListener("hashchange", render);
  await render();
  listen();
}

start().catch(showError);
