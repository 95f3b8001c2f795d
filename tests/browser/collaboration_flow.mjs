// Two people edit one notebook at once in JupyterLab with real-time collaboration.
//
// Usage: node collaboration_flow.mjs. Two browser contexts (two people, separate cookies)
// open /lab/tree/shared.ipynb on a server running the collaboration plugin. A types into
// the cell and B sees the text; B adds `print(a)` in a new cell and runs it, A sees the 42;
// A saves (Ctrl+S) and the file on disk, read through the Contents API, holds both edits and
// the output. Environment: JUNCTION_URL, JUNCTION_TOKEN, ARTIFACTS_DIR, CHROMIUM,
// STEP_TIMEOUT_MS.
//
// Prints one JSON line to stdout: {"ok", "error", "endpoints", "console", "bad", "steps"}.

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
const host = new URL(base).host;
const endpoints = new Map();
const consoleErrors = [];
const steps = [];

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

async function openPage(browser, who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(stepTimeout);
  const page = await context.newPage();
  page.on("console", (message) => {
    // Two pages share the notebook's kernel; comm messages meant for the other page's
    // widget manager are logged by JupyterLab as "Comm not found" (as with jupyter_server).
    if (message.type() !== "error" || message.text().startsWith("Comm not found")) return;
    consoleErrors.push(`${who}: ${message.text()}`);
  });
  page.on("pageerror", (error) => consoleErrors.push(`${who} pageerror: ${error.message}`));
  page.on("response", (response) => {
    record(response.request().method(), response.url(), response.status());
  });
  page.on("websocket", (socket) => record("WS", socket.url(), 101));
  await page.goto(`${base}lab/tree/shared.ipynb?token=${encodeURIComponent(token)}`);
  await page.locator(".jp-NotebookPanel:visible .jp-Cell").first().waitFor();
  return page;
}

function cellText(page, index) {
  return page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(index).locator(".cm-content");
}

let browser;
let pages = [];
let failure = null;

try {
  browser = await chromium.launch({ executablePath, headless: true, args: FLAGS });
  let alice;
  let bob;
  await step("two people open the notebook", async () => {
    alice = await openPage(browser, "alice");
    bob = await openPage(browser, "bob");
    pages = [alice, bob];
    for (const page of pages) {
      await cellText(page, 0).filter({ hasText: "a = 1" }).waitFor();
      await page.locator("#jp-main-statusbar", { hasText: "Idle" }).waitFor();
    }
  });

  await step("alice types, bob sees it", async () => {
    await cellText(alice, 0).click();
    await alice.keyboard.press("End");
    await alice.keyboard.type(" + 41");
    await cellText(bob, 0).filter({ hasText: "a = 1 + 41" }).waitFor();
  });

  await step("bob adds and runs print(a), alice sees 42", async () => {
    await cellText(bob, 0).click();
    await bob.keyboard.press("Shift+Enter"); // runs a = 1 + 41, then a new cell below
    await cellText(bob, 1).click();
    await bob.keyboard.type("print(a)");
    await cellText(alice, 1).filter({ hasText: "print(a)" }).waitFor();
    await bob.keyboard.press("Shift+Enter");
    const output = ".jp-OutputArea-output";
    const cellOf = (page) => page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(1);
    await cellOf(bob).locator(output, { hasText: "42" }).waitFor();
    await cellOf(alice).locator(output, { hasText: "42" }).waitFor();
  });

  await step("alice saves; the file holds both edits and the output", async () => {
    await cellText(alice, 0).click();
    await alice.keyboard.press("Control+s");
    const deadline = Date.now() + stepTimeout;
    for (;;) {
      const model = await api("api/contents/shared.ipynb?content=1");
      const cells = model.content.cells;
      const sources = cells.map((cell) => cell.source);
      const printed = (cells[1]?.outputs ?? []).some((o) => (o.text ?? "").includes("42"));
      if (sources[0] === "a = 1 + 41" && sources[1] === "print(a)" && printed) break;
      if (Date.now() > deadline) throw new Error(`saved file: ${JSON.stringify(sources)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
} catch (error) {
  failure = error;
  for (const [index, page] of pages.entries()) {
    await page
      .screenshot({ path: join(artifacts, `collaboration-failure-${index}.png`) })
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
  phase: "collaboration",
  error: failure ? String(failure.stack ?? failure) : null,
  endpoints: [...endpoints.values()]
    .map((e) => ({ method: e.method, path: e.path, statuses: [...e.statuses] }))
    .sort((a, b) => (a.path + a.method).localeCompare(b.path + b.method)),
  console: consoleErrors,
  bad: bad.map((e) => `${e.method} ${e.path} ${[...e.statuses].join(",")}`),
  steps,
};
writeFileSync(join(artifacts, "collaboration-endpoints.json"), JSON.stringify(summary, null, 2));
process.exitCode = summary.ok ? 0 : 1;
process.stdout.write(JSON.stringify(summary) + "\n");
