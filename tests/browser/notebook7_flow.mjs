// Drives Notebook 7, served by a running Junction server, in Debian's chromium.
//
// Usage: node notebook7_flow.mjs. Environment: JUNCTION_URL (base URL with trailing slash),
// JUNCTION_TOKEN, ARTIFACTS_DIR, CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS.
// The server runs with --default-url /tree, so "/" must land on Notebook 7's file browser.
//
// Prints one JSON line to stdout: {"ok", "phase", "error", "endpoints", "console", "bad",
// "failures", "steps"}. Exits 1 on any failure, including a console error or an HTTP
// status >= 400 seen by the browser, in any of its tabs.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const phase = "notebook7";
const base = process.env.JUNCTION_URL;
const token = process.env.JUNCTION_TOKEN;
const artifacts = process.env.ARTIFACTS_DIR ?? "test-artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS ?? 30000);
const notebookName = "flow.ipynb";

if (!base || !token) {
  console.error("JUNCTION_URL and JUNCTION_TOKEN are required");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const host = new URL(base).host;
const endpoints = new Map(); // "METHOD path" -> {method, path, statuses: Set}
const consoleErrors = [];
const steps = [];
const failures = []; // bodies of 4xx/5xx answers, to say why
const pages = [];
let kernelReady; // resolves when a kernel WebSocket first carries kernel_info_reply
const kernelAnswered = new Promise((resolve) => (kernelReady = resolve));

function record(method, url, status) {
  const parsed = new URL(url);
  if (parsed.host !== host) return;
  const query = [...parsed.searchParams.keys()].filter((k) => !/^\d+$/.test(k));
  let path = parsed.pathname;
  if (query.length) path += "?" + query.sort().join("&");
  const key = `${method} ${path}`;
  const entry = endpoints.get(key) ?? { method, path, statuses: new Set(), count: 0 };
  entry.statuses.add(status);
  entry.count += 1;
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

async function api(method, path, body) {
  const response = await fetch(new URL(path, base), {
    method,
    headers: { Authorization: `token ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} -> ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

// Requests, answers and console messages are watched on the whole context, so the first
// document of a tab Notebook 7 opens is seen too; WebSockets are watched per tab.
function watchContext(context) {
  context.on("console", (message) => {
    if (message.type() === "error") {
      const where = message.page()?.url() ?? "a worker";
      consoleErrors.push(`${where}: ${message.text()}`);
    }
  });
  context.on("weberror", (webError) => {
    const error = webError.error();
    consoleErrors.push(`pageerror: ${error.stack ?? error.message}`);
  });
  context.on("response", async (response) => {
    const request = response.request();
    record(request.method(), response.url(), response.status());
    if (response.status() >= 400) {
      const body = await response.text().catch(() => "");
      failures.push(`${request.method()} ${response.url()} -> ${response.status()} ${body}`);
    }
  });
  context.on("requestfailed", (request) => {
    const reason = request.failure()?.errorText ?? "failed";
    if (!reason.includes("ERR_ABORTED")) record(request.method(), request.url(), reason);
  });
}

function watchSockets(page) {
  pages.push(page);
  page.on("websocket", (socket) => {
    record("WS", socket.url(), 101);
    socket.on("socketerror", (error) => consoleErrors.push(`websocket error: ${error}`));
    if (socket.url().includes("/channels")) {
      socket.on("framereceived", (frame) => {
        if (String(frame.payload).includes('"kernel_info_reply"')) kernelReady();
      });
    }
  });
}

const userDataDir = mkdtempSync(join(tmpdir(), "junction-chromium-"));
let context;
let failure = null;

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(stepTimeout);
  watchContext(context);
  context.on("page", watchSockets);
  const tree = context.pages()[0] ?? (await context.newPage());
  if (!pages.includes(tree)) watchSockets(tree);

  await step("create flow.ipynb through the REST API", async () => {
    await api("PUT", `api/contents/${notebookName}`, {
      type: "notebook",
      content: {
        cells: [],
        metadata: {
          kernelspec: { name: "python3", display_name: "Python 3 (ipykernel)", language: "python" },
        },
        nbformat: 4,
        nbformat_minor: 5,
      },
    });
  });

  await step("open /?token=... and land on Notebook 7's file browser", async () => {
    await tree.goto(`${base}?token=${encodeURIComponent(token)}`);
    await tree.locator(".jp-DirListing-content").waitFor();
    const url = new URL(tree.url());
    if (url.pathname !== `${new URL(base).pathname}tree`) throw new Error(`landed on ${url}`);
    if (url.searchParams.has("token")) throw new Error("token left in the URL");
    const config = JSON.parse(await tree.locator("#jupyter-config-data").textContent());
    if (config.notebookPage !== "tree") throw new Error(`notebookPage ${config.notebookPage}`);
    if (config.appName !== "Jupyter Notebook") throw new Error(`appName ${config.appName}`);
  });

  let notebook;
  await step("open flow.ipynb from the file browser (a new tab)", async () => {
    const item = tree.locator(`.jp-DirListing-item[title^="Name: ${notebookName}"]`);
    const [opened] = await Promise.all([context.waitForEvent("page"), item.dblclick()]);
    notebook = opened;
    await notebook.waitForURL(`**/notebooks/${notebookName}`);
    await notebook.locator(".jp-NotebookPanel").waitFor();
    await kernelAnswered;
  });

  await step("run print(6*7) and see 42", async () => {
    const cell = notebook.locator(".jp-NotebookPanel .jp-Cell").first();
    await cell.locator(".cm-content").click();
    await notebook.keyboard.type("print(6*7)");
    await notebook.keyboard.press("Shift+Enter");
    await cell.locator(".jp-OutputArea-output", { hasText: "42" }).waitFor();
  });

  await step("save and find the output through the REST API", async () => {
    const [response] = await Promise.all([
      notebook.waitForResponse(
        (r) => r.request().method() === "PUT" && r.url().includes(`/api/contents/${notebookName}`),
      ),
      notebook.keyboard.press("Control+s"),
    ]);
    if (response.status() !== 200) throw new Error(`save answered ${response.status()}`);
    const model = await api("GET", `api/contents/${notebookName}?content=1`);
    const outputs = model.content.cells[0].outputs;
    if (!outputs.some((o) => (o.text ?? "").includes("42"))) {
      throw new Error(`saved notebook lacks the 42 output: ${JSON.stringify(outputs)}`);
    }
  });

  await step("take a screenshot of the notebook", async () => {
    await notebook.screenshot({ path: join(artifacts, "screenshot-notebook7.png") });
  });
} catch (error) {
  failure = error;
  for (const [index, page] of pages.entries()) {
    try {
      await page.screenshot({ path: join(artifacts, `${phase}-failure-${index}.png`) });
    } catch {
      // the page may be gone; the error below says why
    }
  }
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

const bad = [...endpoints.values()].filter((e) =>
  [...e.statuses].some((s) => typeof s !== "number" || s >= 400),
);
const summary = {
  ok: failure === null && consoleErrors.length === 0 && bad.length === 0,
  phase,
  error: failure ? String(failure.stack ?? failure) : null,
  endpoints: [...endpoints.values()]
    .map((e) => ({ method: e.method, path: e.path, statuses: [...e.statuses], count: e.count }))
    .sort((a, b) => (a.path + a.method).localeCompare(b.path + b.method)),
  console: consoleErrors,
  bad: bad.map((e) => `${e.method} ${e.path} ${[...e.statuses].join(",")}`),
  failures: failures.slice(0, 20),
  steps,
};
writeFileSync(join(artifacts, `${phase}-endpoints.json`), JSON.stringify(summary, null, 2));
process.exitCode = summary.ok ? 0 : 1;
process.stdout.write(JSON.stringify(summary) + "\n");
