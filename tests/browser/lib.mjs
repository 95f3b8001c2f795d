// What the browser flows share: their environment, the chromium they launch, the record of
// the endpoints the UI called, console errors and steps, and the JSON summary they print.
//
// Each flow keeps what is particular to it (its steps, its WebSocket watchers, which errors
// it names); the Python test decides what it tolerates.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The flow's environment; exits 2 without JUNCTION_URL and JUNCTION_TOKEN. */
export function flowEnv() {
  const env = {
    base: process.env.JUNCTION_URL,
    token: process.env.JUNCTION_TOKEN,
    artifacts: process.env.ARTIFACTS_DIR ?? "test-artifacts",
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    stepTimeout: Number(process.env.STEP_TIMEOUT_MS ?? 30000),
  };
  if (!env.base || !env.token) {
    console.error("JUNCTION_URL and JUNCTION_TOKEN are required");
    process.exit(2);
  }
  mkdirSync(env.artifacts, { recursive: true });
  return env;
}

/** A chromium with a fresh profile and its first page; `close()` also removes the profile. */
export async function launch(env) {
  const userDataDir = mkdtempSync(join(tmpdir(), "junction-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: env.executablePath,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 800 },
    });
  } catch (error) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw error;
  }
  context.setDefaultTimeout(env.stepTimeout);
  const page = context.pages()[0] ?? (await context.newPage());
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, page, close };
}

/** A chromium without a profile, for flows that open contexts of their own (several people). */
export async function launchBrowser({ executablePath }) {
  return chromium.launch({ executablePath, headless: true, args: FLAGS });
}

/** Calls the server's REST API with the token; throws on any status but 2xx. */
export async function api(env, method, path, body) {
  const response = await fetch(new URL(path, env.base), {
    method,
    headers: { Authorization: `token ${env.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} -> ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** What the browser did: endpoints called (on the server's host), console errors, steps. */
export class Recorder {
  // `withQuery: false` records paths without their query.
  constructor(base, { withQuery = true } = {}) {
    this.host = new URL(base).host;
    this.withQuery = withQuery;
    this.endpoints = new Map(); // "METHOD path" -> {method, path, statuses: Set, count}
    this.consoleErrors = [];
    this.steps = [];
    this.failures = []; // bodies of 4xx/5xx answers, to say why
  }

  record(method, url, status) {
    const parsed = new URL(url);
    if (parsed.host !== this.host) return; // http: and ws: alike
    // The UI adds an epoch-millisecond cache buster as a bare query parameter; drop it.
    const query = [...parsed.searchParams.keys()].filter((k) => !/^\d+$/.test(k));
    let path = parsed.pathname;
    if (query.length && this.withQuery) path += "?" + query.sort().join("&");
    const key = `${method} ${path}`;
    const entry = this.endpoints.get(key) ?? { method, path, statuses: new Set(), count: 0 };
    entry.statuses.add(status);
    entry.count += 1;
    this.endpoints.set(key, entry);
  }

  async step(name, action) {
    const started = Date.now();
    try {
      await action();
    } finally {
      this.steps.push({ name, ms: Date.now() - started });
    }
  }

  /** Records answers and failed requests of `target` (a page or a context). */
  watchRequests(target, { withSent = false } = {}) {
    target.on("response", async (response) => {
      const request = response.request();
      this.record(request.method(), response.url(), response.status());
      if (response.status() >= 400) {
        const body = await response.text().catch(() => "");
        const sent = withSent ? ` (sent ${(request.postData() ?? "").slice(0, 2000)})` : "";
        this.failures.push(
          `${request.method()} ${response.url()} -> ${response.status()} ${body}${sent}`,
        );
      }
    });
    target.on("requestfailed", (request) => {
      const reason = request.failure()?.errorText ?? "failed";
      // Aborts happen when the page navigates away mid-request (reload); they are not errors.
      if (!reason.includes("ERR_ABORTED")) this.record(request.method(), request.url(), reason);
    });
  }

  /** Records a page's console errors, uncaught errors and answers. */
  watchPage(page, options) {
    page.on("console", (message) => {
      if (message.type() === "error") this.consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => this.consoleErrors.push(`pageerror: ${error.message}`));
    this.watchRequests(page, options);
  }

  /** Records a WebSocket as called and its errors as console errors. */
  watchSocket(socket) {
    this.record("WS", socket.url(), 101);
    socket.on("socketerror", (error) => this.consoleErrors.push(`websocket error: ${error}`));
  }

  /** The JSON summary; `ok` only without failure, console error or status >= 400. */
  summary(phase, failure) {
    const endpoints = [...this.endpoints.values()];
    const bad = endpoints.filter((e) =>
      [...e.statuses].some((s) => typeof s !== "number" || s >= 400),
    );
    return {
      ok: failure === null && this.consoleErrors.length === 0 && bad.length === 0,
      phase,
      error: failure ? String(failure.stack ?? failure) : null,
      endpoints: endpoints
        .map((e) => ({ method: e.method, path: e.path, statuses: [...e.statuses], count: e.count }))
        .sort((a, b) => (a.path + a.method).localeCompare(b.path + b.method)),
      console: this.consoleErrors,
      bad: bad.map((e) => `${e.method} ${e.path} ${[...e.statuses].join(",")}`),
      failures: this.failures.slice(0, 20),
      steps: this.steps,
    };
  }

  /** Writes the summary to `artifacts/<file>` and prints it as one line; sets the exit code. */
  finish(env, phase, failure, file = `${phase}-endpoints.json`) {
    const summary = this.summary(phase, failure);
    writeFileSync(join(env.artifacts, file), JSON.stringify(summary, null, 2));
    // Let stdout drain (a pipe cuts long output at exit) before the process ends by itself.
    process.exitCode = summary.ok ? 0 : 1;
    process.stdout.write(JSON.stringify(summary) + "\n");
    return summary;
  }
}

/** Saves a full-page screenshot of `page` after a failure, if the page is still there. */
export async function failureScreenshot(page, path, options = { fullPage: true }) {
  if (!page) return;
  try {
    await page.screenshot({ path, ...options });
  } catch {
    // the page may be gone; the flow's error says why
  }
}
