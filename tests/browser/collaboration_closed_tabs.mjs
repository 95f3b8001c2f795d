// A cell's output survives the closing of every tab that showed it.
//
// Usage: node collaboration_closed_tabs.mjs. One browser context opens
// /lab/tree/stream.ipynb on a server running the collaboration plugin and runs its only
// cell, which prints a line every 0.5 s for 10 s; about 2 s in (line 4 shown) the context
// is closed, so no tab is left. The server keeps running the cell: once the kernel is idle
// again (its execution_state through REST), a new context opens the notebook and must show
// all 20 lines; it saves (Ctrl+S) and the file, read through the Contents API, holds them.
// Environment: JUNCTION_URL, JUNCTION_TOKEN, ARTIFACTS_DIR, CHROMIUM, STEP_TIMEOUT_MS.
//
// Prints one JSON line to stdout: {"ok", "error", "endpoints", "console", "bad", "steps",
// "linesAtClose", "stateAtClose", "shownLines", "savedOutputs"}.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.JUNCTION_URL;
const token = process.env.JUNCTION_TOKEN;
const artifacts = process.env.ARTIFACTS_DIR ?? "test-artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS ?? 30000);

if (!base || !token) {
  console.error("JUNCTION_URL and JUNCTION_TOKEN are required");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"];
const NOTEBOOK = "stream.ipynb";
const host = new URL(base).host;
const endpoints = new Map();
const consoleErrors = [];
const steps = [];
const report = { linesAtClose: null, stateAtClose: null, shownLines: null, savedOutputs: null };

function record(method, url, status) {
  const parsed = new URL(url);
  if (parsed.host !== host) return;
  const key = `${method} ${parsed.pathname}`;
  const entry = endpoints.get(key) ?? { method, path: parsed.pathname, statuses: new Set() };
  entry.statuses.add(status);
  endpoints.set(key, entry);
}

async function step(name, action) {
  const started = Date.now();
  try {
    await action();
  } finally {
    steps.push({ name, ms: Date.now() - started });
  }
}

async function api(path) {
  const response = await fetch(`${base}${path}`, { headers: { Authorization: `token ${token}` } });
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
  return response.json();
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function openNotebook(browser, who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(stepTimeout);
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(`${who}: ${message.text()}`);
  });
  page.on("pageerror", (error) => consoleErrors.push(`${who} pageerror: ${error.message}`));
  page.on("response", (response) => {
    record(response.request().method(), response.url(), response.status());
  });
  page.on("websocket", (socket) => record("WS", socket.url(), 101));
  await page.goto(`${base}lab/tree/${NOTEBOOK}?token=${encodeURIComponent(token)}`);
  await page.locator(".jp-NotebookPanel:visible .jp-Cell").first().waitFor();
  return { context, page };
}

const cellOf = (page) => page.locator(".jp-NotebookPanel:visible .jp-Cell").first();

async function outputLines(page) {
  const text = await cellOf(page).locator(".jp-OutputArea").innerText();
  return text.split("\n").filter((line) => line.trim() !== "");
}

const EXPECTED = Array.from({ length: 20 }, (_, i) => String(i));
let browser;
const open = [];
let failure = null;

try {
  browser = await chromium.launch({ executablePath, headless: true, args: FLAGS });
  let first;
  await step("open the notebook and run the streaming cell", async () => {
    first = await openNotebook(browser, "first");
    open.push(first);
    await cellOf(first.page).locator(".cm-content", { hasText: "time.sleep(0.5)" }).waitFor();
    await first.page.locator("#jp-main-statusbar", { hasText: "Idle" }).waitFor();
    await cellOf(first.page).locator(".cm-content").click();
    await first.page.keyboard.press("Control+Enter");
    // Line 4 is printed 2 s after the first one.
    const deadline = Date.now() + stepTimeout;
    while (!(await outputLines(first.page)).includes("4")) {
      if (Date.now() > deadline) throw new Error("line 4 never shown");
      await pause(50);
    }
  });

  let kernelId;
  await step("close every tab while the cell runs", async () => {
    const sessions = await api("api/sessions");
    const session = sessions.find((s) => s.path === NOTEBOOK);
    if (!session) throw new Error(`no session for ${NOTEBOOK}: ${JSON.stringify(sessions)}`);
    kernelId = session.kernel.id;
    report.linesAtClose = await outputLines(first.page);
    await first.context.close();
    open.length = 0;
    report.stateAtClose = (await api(`api/kernels/${kernelId}`)).execution_state;
  });

  await step("wait until the kernel is idle again", async () => {
    const deadline = Date.now() + stepTimeout;
    while ((await api(`api/kernels/${kernelId}`)).execution_state !== "idle") {
      if (Date.now() > deadline) throw new Error("the kernel is still busy");
      await pause(200);
    }
  });

  let second;
  await step("open the notebook again: all 20 lines are shown", async () => {
    second = await openNotebook(browser, "second");
    open.push(second);
    const deadline = Date.now() + stepTimeout;
    for (;;) {
      report.shownLines = await outputLines(second.page);
      if (report.shownLines.join(",") === EXPECTED.join(",")) break;
      if (Date.now() > deadline) {
        throw new Error(`output shown: ${JSON.stringify(report.shownLines)}`);
      }
      await pause(200);
    }
  });

  await step("save; the file holds all 20 lines", async () => {
    await cellOf(second.page).locator(".cm-content").click();
    await second.page.keyboard.press("Control+s");
    const wanted = EXPECTED.map((line) => `${line}\n`).join("");
    const deadline = Date.now() + stepTimeout;
    for (;;) {
      const model = await api(`api/contents/${NOTEBOOK}?content=1`);
      report.savedOutputs = model.content.cells[0].outputs;
      const [only] = report.savedOutputs;
      if (report.savedOutputs.length === 1 && only.text === wanted) break;
      if (Date.now() > deadline) {
        throw new Error(`saved outputs: ${JSON.stringify(report.savedOutputs)}`);
      }
      await pause(200);
    }
  });
} catch (error) {
  failure = error;
  for (const [index, { page }] of open.entries()) {
    await page
      .screenshot({ path: join(artifacts, `collaboration-closed-tabs-${index}.png`) })
      .catch(() => {});
  }
} finally {
  if (browser) await browser.close().catch(() => {});
}

const bad = [...endpoints.values()].filter((e) =>
  [...e.statuses].some((s) => typeof s !== "number" || s >= 400),
);
const summary = {
  ok: failure === null && consoleErrors.length === 0 && bad.length === 0,
  phase: "collaboration-closed-tabs",
  error: failure ? String(failure.stack ?? failure) : null,
  endpoints: [...endpoints.values()]
    .map((e) => ({ method: e.method, path: e.path, statuses: [...e.statuses] }))
    .sort((a, b) => (a.path + a.method).localeCompare(b.path + b.method)),
  console: consoleErrors,
  bad: bad.map((e) => `${e.method} ${e.path} ${[...e.statuses].join(",")}`),
  steps,
  ...report,
};
writeFileSync(
  join(artifacts, "collaboration-closed-tabs.json"),
  JSON.stringify(summary, null, 2),
);
process.exitCode = summary.ok ? 0 : 1;
process.stdout.write(JSON.stringify(summary) + "\n");
