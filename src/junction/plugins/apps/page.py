"""The ``/apps`` page: plain HTML and a little JavaScript over the apps API."""

from __future__ import annotations

__all__ = ["APPS_PAGE"]

APPS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Apps · Junction</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}
table{border-collapse:collapse;width:100%}td,th{padding:.3em .6em;border-bottom:1px solid #ddd;
text-align:left}pre{background:#111;color:#eee;padding:1em;max-height:30em;overflow:auto}
.failed{color:#b00}.ready{color:#070}
</style></head><body>
<h1>Apps</h1>
<form id="launch">
<label>File <input name="path" required placeholder="dash/app.py"></label>
<label>Framework <select name="framework">
<option>streamlit</option><option>panel</option><option>bokeh</option><option>voila</option>
<option>gradio</option><option>dash</option></select></label>
<label>Name <input name="name"></label>
<button type="submit">Launch</button> <span id="error" class="failed"></span>
</form>
<table><thead><tr><th>Name</th><th>Framework</th><th>Status</th><th>Actions</th></tr></thead>
<tbody id="apps"></tbody></table>
<h2 id="logs-title" hidden>Logs</h2><pre id="logs" hidden></pre>
<script>
const base = location.pathname.replace(/apps\\/?$/, "");
const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "";
async function api(method, path, body) {
  const response = await fetch(base + "api/apps" + path, {method, credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf)},
    body: body ? JSON.stringify(body) : undefined});
  if (!response.ok) throw new Error((await response.json()).message);
  return response.status === 204 ? null : response.json();
}
function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }
function button(td, label, action) {
  const b = document.createElement("button"); b.textContent = label;
  b.onclick = async () => { try { await action(); } catch (e) { alert(e.message); } refresh(); };
  td.append(b, " ");
}
let source = null;
function showLogs(app) {
  if (source) source.close();
  const pre = document.getElementById("logs"), title = document.getElementById("logs-title");
  pre.hidden = title.hidden = false; pre.textContent = ""; title.textContent = "Logs: " + app.name;
  source = new EventSource(base + "api/apps/" + app.id + "/logs?follow=1");
  source.onmessage = (event) => { pre.textContent += JSON.parse(event.data);
    pre.scrollTop = pre.scrollHeight; };
}
async function refresh() {
  const body = document.getElementById("apps"); const apps = await api("GET", "");
  body.replaceChildren();
  for (const app of apps) {
    const row = body.insertRow(); row.dataset.id = app.id;
    cell(row, app.name); cell(row, app.framework || app.command.join(" "));
    const status = cell(row, app.status + (app.reason ? " (" + app.reason + ")" : ""));
    status.className = app.status;
    const actions = row.insertCell();
    const open = document.createElement("a"); open.href = app.url; open.target = "_blank";
    open.textContent = "Open"; actions.append(open, " ");
    button(actions, "Restart", () => api("POST", "/" + app.id + "/restart"));
    button(actions, "Stop", () => api("POST", "/" + app.id + "/stop"));
    button(actions, "Logs", async () => showLogs(app));
    button(actions, "Delete", () => api("DELETE", "/" + app.id));
  }
}
document.getElementById("launch").onsubmit = async (event) => {
  event.preventDefault(); const form = new FormData(event.target);
  document.getElementById("error").textContent = "";
  try { await api("POST", "", Object.fromEntries([...form].filter(([, v]) => v))); }
  catch (e) { document.getElementById("error").textContent = e.message; }
  refresh();
};
refresh(); setInterval(refresh, 3000);
</script></body></html>
"""
