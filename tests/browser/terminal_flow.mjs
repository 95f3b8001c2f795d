// Drives JupyterLab's terminal, served by a running Junction server, in Debian's chromium.
//
// Usage: node terminal_flow.mjs. Opens /lab?token=..., clicks the Terminal tile of the
// launcher, types `echo $((6*7))`, sees 42 come back over the terminal WebSocket and on the
// screen, reloads the page and sees the restored terminal replay its scrollback with the 42.
// Environment: JUNCTION_URL (base URL with trailing slash), JUNCTION_TOKEN, ARTIFACTS_DIR,
// CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS.
//
// Prints one JSON line to stdout: {"ok", "error", "endpoints", "console", "bad", "steps"}.
// Exits 1 on any failure, including a console error or an HTTP status >= 400.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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
const endpoints = new Map();
const consoleErrors = [];
const steps = [];
const failures = [];

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

// Everything the terminal WebSockets of the current page load received on stdout.
let terminalOutput = "";

// Waits until the terminal output matches `pattern` (42 at the start of a line, not the
// typed `$((6*7))`).
async function waitForOutput(pattern) {
  const deadline = Date.now() + stepTimeout;
  while (!pattern.test(terminalOutput)) {
    if (Date.now() > deadline) {
      throw new Error(`no ${pattern} in the terminal: ${JSON.stringify(terminalOutput.slice(-500))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const userDataDir = mkdtempSync(join(tmpdir(), "junction-chromium-"));
let context;
let page;
let failure = null;

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(stepTimeout);
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(`pageerror: ${error.message}`));
  page.on("response", async (response) => {
    const request = response.request();
    record(request.method(), response.url(), response.status());
    if (response.status() >= 400) {
      const body = await response.text().catch(() => "");
      failures.push(`${request.method()} ${response.url()} -> ${response.status()} ${body}`);
    }
  });
  page.on("requestfailed", (request) => {
    const reason = request.failure()?.errorText ?? "failed";
    if (!reason.includes("ERR_ABORTED")) record(request.method(), request.url(), reason);
  });
  page.on("websocket", (socket) => {
    record("WS", socket.url(), 101);
    socket.on("socketerror", (error) => consoleErrors.push(`websocket error: ${error}`));
    if (!socket.url().includes("/terminals/websocket/")) return;
    socket.on("framereceived", (frame) => {
      const payload = frame.payload.toString();
      if (payload.startsWith('["stdout"')) terminalOutput += JSON.parse(payload)[1];
    });
  });

  await step("open /lab?token=...", async () => {
    await page.goto(`${base}lab?token=${encodeURIComponent(token)}`);
    await page.locator("#jp-main-dock-panel").waitFor();
    await page.locator(".jp-DirListing-content").waitFor();
  });

  await step("open a terminal from the launcher", async () => {
    const setup = page
      .waitForEvent("websocket", { predicate: (ws) => ws.url().includes("/terminals/websocket/") })
      .then((ws) =>
        ws.waitForEvent("framereceived", {
          predicate: (frame) => frame.payload.toString().startsWith('["setup"'),
        }),
      );
    const saved = page.waitForRequest(
      (r) =>
        r.method() === "PUT" &&
        r.url().includes("/lab/api/workspaces") &&
        (r.postData() ?? "").includes("terminal:"),
    );
    await page.locator('.jp-LauncherCard[data-category="Other"]', { hasText: "Terminal" }).click();
    await page.locator(".jp-Terminal:visible").waitFor();
    await setup;
    await saved; // the layout with the terminal is stored, so a reload restores it
  });

  const answer = /[\r\n]42\r\n/;

  await step("type echo $((6*7)) and see 42", async () => {
    await page.locator(".jp-Terminal:visible .xterm").click();
    await page.keyboard.type("echo $((6*7))");
    await page.keyboard.press("Enter");
    await waitForOutput(answer);
  });

  await step("reload and see the scrollback with 42", async () => {
    terminalOutput = "";
    await page.reload();
    await page.locator("#jp-main-dock-panel").waitFor();
    await page.locator(".jp-Terminal:visible").waitFor();
    await waitForOutput(answer);
  });
} catch (error) {
  failure = error;
  if (page) {
    try {
      await page.screenshot({ path: join(artifacts, "terminal-failure.png"), fullPage: true });
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
  phase: "terminal",
  error: failure ? String(failure.stack ?? failure) : null,
  endpoints: [...endpoints.values()]
    .map((e) => ({ method: e.method, path: e.path, statuses: [...e.statuses], count: e.count }))
    .sort((a, b) => (a.path + a.method).localeCompare(b.path + b.method)),
  console: consoleErrors,
  bad: bad.map((e) => `${e.method} ${e.path} ${[...e.statuses].join(",")}`),
  failures: failures.slice(0, 20),
  steps,
};
writeFileSync(join(artifacts, "terminal-endpoints.json"), JSON.stringify(summary, null, 2));
process.exitCode = summary.ok ? 0 : 1;
process.stdout.write(JSON.stringify(summary) + "\n");
