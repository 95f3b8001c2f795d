// Drives JupyterLab, served by a running Junction server, in Debian's chromium.
//
// Usage: node flow.mjs <phase>, phase "main" (the full user flow) or "restarted" (after a
// server restart: the saved notebook and the chosen theme must still be there).
// Environment: JUNCTION_URL (base URL with trailing slash), JUNCTION_TOKEN, ARTIFACTS_DIR
// (screenshots and the request log go there), SCREENSHOT (optional: where to save the
// documentation screenshot), CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS.
//
// Prints one JSON line to stdout: {"ok", "phase", "error", "endpoints", "console", "steps"}.
// Exits 1 on any failure, including a console error or an HTTP status >= 400.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const phase = process.argv[2] ?? "main";
const base = process.env.JUNCTION_URL;
const token = process.env.JUNCTION_TOKEN;
const artifacts = process.env.ARTIFACTS_DIR ?? "test-artifacts";
const screenshot = process.env.SCREENSHOT;
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS ?? 30000);
const notebookName = "Untitled.ipynb";

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

function record(method, url, status) {
  const parsed = new URL(url);
  if (parsed.host !== host) return; // http: and ws: alike
  // The UI adds an epoch-millisecond cache buster as a bare query parameter; drop it.
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

// Runs `action` and returns the first response matching `method` and `urlPart`; waiting
// and acting together, so a failed action cannot leave a dangling wait behind.
async function responseTo(method, urlPart, action) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && r.url().includes(urlPart)),
    action(),
  ]);
  return response;
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

// The notebook is a shared document (the collaboration plugin): JupyterLab saves it by
// sending the room a RAW "save" message, and the server answers with a RAW frame (type 2)
// holding {"type": "save", "responseTo", "status"}. Waiters get each answer once.
const saveReplies = [];
let saveWaiters = [];

function onRoomFrame(payload) {
  if (typeof payload === "string" || payload[0] !== 2) return;
  const text = Buffer.from(payload).toString("utf8");
  const start = text.indexOf("{");
  if (start < 0) return;
  let message;
  try {
    message = JSON.parse(text.slice(start));
  } catch {
    return;
  }
  if (message.type !== "save") return;
  saveReplies.push(message);
  const waiters = saveWaiters;
  saveWaiters = [];
  for (const resolve of waiters) resolve(message);
}

function nextSaveReply() {
  return new Promise((resolve) => saveWaiters.push(resolve));
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
      const sent = (request.postData() ?? "").slice(0, 2000);
      failures.push(`${request.method()} ${response.url()} -> ${response.status()} ${body} (sent ${sent})`);
    }
  });
  page.on("requestfailed", (request) => {
    const reason = request.failure()?.errorText ?? "failed";
    // Aborts happen when the page navigates away mid-request (reload); they are not errors.
    if (!reason.includes("ERR_ABORTED")) record(request.method(), request.url(), reason);
  });
  page.on("websocket", (socket) => {
    record("WS", socket.url(), 101);
    socket.on("socketerror", (error) => consoleErrors.push(`websocket error: ${error}`));
    if (socket.url().includes("/api/collaboration/room/json:notebook:")) {
      socket.on("framereceived", (frame) => onRoomFrame(frame.payload));
    }
  });

  await step("open /lab?token=...", async () => {
    await page.goto(`${base}lab?token=${encodeURIComponent(token)}`);
    await page.locator("#jp-main-dock-panel").waitFor();
    await page.locator(".jp-DirListing-content").waitFor();
    if (new URL(page.url()).searchParams.has("token")) throw new Error("token left in the URL");
  });

  if (phase === "main") {
    await mainFlow();
  } else {
    await restartedFlow();
  }
} catch (error) {
  failure = error;
  if (page) {
    try {
      await page.screenshot({ path: join(artifacts, `${phase}-failure.png`), fullPage: true });
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
// Let stdout drain (a pipe cuts long output at exit) before the process ends by itself.
process.exitCode = summary.ok ? 0 : 1;
process.stdout.write(JSON.stringify(summary) + "\n");

// --- the flows --------------------------------------------------------------------------

async function runCell(code, index) {
  const cell = page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(index);
  await cell.locator(".cm-content").click();
  await page.keyboard.type(code);
  await page.keyboard.press("Shift+Enter");
  return cell;
}

async function mainFlow() {
  await step("answer No to the news question (a user setting)", async () => {
    const response = await responseTo(
      "PUT",
      "/lab/api/settings/@jupyterlab/apputils-extension:notification",
      () => page.locator(".jp-toast-button", { hasText: /^No$/ }).click(),
    );
    if (response.status() !== 204) throw new Error(`answer saved with ${response.status()}`);
  });

  await step("create a notebook from the launcher", async () => {
    // The notebook shows an idle indicator before its session even exists; typing then
    // makes the UI start a second kernel. Wait for the kernel's own first answer instead.
    const kernelAnswered = page
      .waitForEvent("websocket", { predicate: (ws) => ws.url().includes("/channels") })
      .then((ws) =>
        ws.waitForEvent("framereceived", {
          predicate: (frame) => frame.payload.toString().includes('"kernel_info_reply"'),
        }),
      );
    await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
    await page.locator(".jp-NotebookPanel:visible").waitFor();
    await kernelAnswered;
    await page.locator("#jp-main-statusbar", { hasText: "Python 3 (ipykernel) | Idle" }).waitFor();
  });

  await step("run print(6*7) and see 42", async () => {
    const cell = await runCell("print(6*7)", 0);
    await cell.locator(".jp-OutputArea-output", { hasText: "42" }).waitFor();
  });

  await step("prebuilt extension (jupyterlab-execute-time) annotates the cell", async () => {
    const cell = page.locator(".jp-NotebookPanel:visible .jp-Cell").first();
    await cell.locator(".execute-time").waitFor();
  });

  await step("matplotlib draws an image", async () => {
    const code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()";
    const cell = await runCell(code, 1);
    await cell.locator(".jp-OutputArea-output img").waitFor();
  });

  await step("an ipywidgets slider renders and syncs with the kernel", async () => {
    const cell = await runCell("import ipywidgets as w\ns = w.IntSlider(value=3)\ns", 2);
    const readout = cell.locator(".widget-readout");
    await readout.waitFor();
    // browser -> kernel: move the slider with the keyboard, then read the value in Python.
    await cell.locator(".noUi-handle").focus();
    await page.keyboard.press("ArrowRight");
    await page.waitForFunction((el) => el.textContent.trim() === "4", await readout.elementHandle());
    const check = await runCell("print(s.value * 10)", 3);
    await check.locator(".jp-OutputArea-output", { hasText: "40" }).waitFor();
    // kernel -> browser: set the value in Python, see the readout follow.
    await runCell("s.value = 7", 4);
    await page.waitForFunction((el) => el.textContent.trim() === "7", await readout.elementHandle());
  });

  await step("save and find the outputs through the REST API", async () => {
    const reply = nextSaveReply();
    await page.keyboard.press("Control+s");
    // The first save of an untitled notebook offers to rename it; keep the name.
    await page.locator(".jp-Dialog button", { hasText: "Rename and Save" }).click();
    const answer = await Promise.race([
      reply,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no save reply")), stepTimeout)),
    ]);
    // "skipped": the room had saved these changes on its own already (nothing to write).
    if (!["success", "skipped"].includes(answer.status)) {
      throw new Error(`save answered ${JSON.stringify(answer)}`);
    }
    await page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current").waitFor();
    await page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
      .waitFor({ state: "detached" });
    const model = await api("GET", `api/contents/${notebookName}?content=1`);
    const outputs = model.content.cells[0].outputs;
    if (!outputs.some((o) => (o.text ?? "").includes("42"))) {
      throw new Error(`saved notebook lacks the 42 output: ${JSON.stringify(outputs)}`);
    }
    const image = model.content.cells[1].outputs.some((o) => o.data && o.data["image/png"]);
    if (!image) throw new Error("saved notebook lacks the matplotlib image");
    const sources = model.content.cells.map((c) => c.source);
    if (sources[4] !== "s.value = 7") throw new Error(`saved sources: ${JSON.stringify(sources)}`);
    const timing = model.content.cells[0].metadata.execution ?? {};
    for (const key of ["iopub.execute_input", "shell.execute_reply"]) {
      if (!timing[key]) throw new Error(`saved cell lacks execution.${key}: ${JSON.stringify(timing)}`);
    }
  });

  if (screenshot) {
    await step("take the documentation screenshot", async () => {
      await page.locator(".jp-NotebookPanel:visible .jp-Cell").first().click();
      await page.screenshot({ path: screenshot });
    });
  }

  await step("reload and find the saved notebook", async () => {
    await page.reload();
    await page.locator("#jp-main-dock-panel").waitFor();
    await page.locator(`.jp-DirListing-item[title^="Name: ${notebookName}"]`).waitFor();
  });

  await step("switch to the dark theme", async () => {
    const response = await responseTo(
      "PUT",
      "/lab/api/settings/@jupyterlab/apputils-extension:themes",
      async () => {
        await page.locator(".lm-MenuBar-itemLabel", { hasText: "Settings" }).click();
        await page.locator(".lm-Menu-itemLabel", { hasText: /^Theme$/ }).hover();
        await page.locator(".lm-Menu-itemLabel", { hasText: /^JupyterLab Dark$/ }).click();
      },
    );
    if (response.status() !== 204) throw new Error(`theme save answered ${response.status()}`);
    await page.locator('body[data-jp-theme-name="JupyterLab Dark"]').waitFor({ state: "attached" });
  });
}

async function restartedFlow() {
  await step("the news answer survived the restart", async () => {
    const entry = await api(
      "GET",
      "lab/api/settings/@jupyterlab/apputils-extension:notification",
    );
    if (entry.settings.fetchNews !== "false") throw new Error(`fetchNews: ${entry.raw}`);
  });
  await step("the dark theme survived the restart", async () => {
    await page.locator('body[data-jp-theme-name="JupyterLab Dark"]').waitFor({ state: "attached" });
  });
  await step("the saved notebook is listed", async () => {
    await page.locator(`.jp-DirListing-item[title^="Name: ${notebookName}"]`).waitFor();
  });
}
