// Junction under a real JupyterHub, in Debian's chromium: ana logs into the Hub, starts her
// server from the Hub's home page, lands in Junction's JupyterLab under /user/ana/lab (through
// the Hub's OAuth), runs a cell and sees its output, reloads, and stops the server from the
// Hub's control panel. Before that, bob (another Hub user, in his own browser context) tries
// ana's server.
//
// Usage: node jupyterhub_flow.mjs. Environment: HUB_URL (no trailing slash), PASSWORD,
// ARTIFACTS_DIR, CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS.
//
// Prints one JSON line: {"ok", "error", "phase", "steps", "landed", "output", "kernels",
// "bob": {"status", "landed"}, "stopped"}. Exits 1 on failure.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser } from "./lib.mjs";

const hub = process.env.HUB_URL;
const password = process.env.PASSWORD;
const artifacts = process.env.ARTIFACTS_DIR ?? "test-artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS ?? 60000);
mkdirSync(artifacts, { recursive: true });

const result = { ok: false, error: null, phase: "jupyterhub", steps: [] };
let current = "start";
async function step(name, action) {
  current = name;
  const started = Date.now();
  await action();
  result.steps.push({ name, ms: Date.now() - started });
}

async function logIn(context, login) {
  const page = await context.newPage();
  await page.goto(`${hub}/hub/login`);
  await page.locator('input[name="username"]').fill(login);
  await page.locator('input[name="password"]').fill(password);
  await page.locator("#login_submit").click();
  await page.waitForURL((url) => !url.pathname.endsWith("/hub/login"));
  return page;
}

const browser = await launchBrowser({ executablePath });
let page;
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(stepTimeout);

  await step("ana logs into the Hub", async () => {
    page = await logIn(context, "ana");
  });

  await step("start the server from the Hub's home page, land in Junction's JupyterLab", async () => {
    await page.goto(`${hub}/hub/home`);
    await page.locator("#start").click();
    await page.waitForURL((url) => url.pathname.startsWith("/user/ana/lab"), { timeout: 120000 });
    await page.locator("#jp-main-dock-panel").waitFor();
    result.landed = new URL(page.url()).pathname;
  });

  await step("create a notebook and run print(6*7)", async () => {
    await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
    await page.locator(".jp-NotebookPanel:visible").waitFor();
    await page.locator("#jp-main-statusbar", { hasText: "Python 3 (ipykernel) | Idle" }).waitFor();
    const cell = page.locator(".jp-NotebookPanel:visible .jp-Cell").first();
    await cell.locator(".cm-content").click();
    await page.keyboard.type("print(6*7)");
    await page.keyboard.press("Shift+Enter");
    const output = cell.locator(".jp-OutputArea-output", { hasText: "42" });
    await output.waitFor();
    result.output = (await output.textContent()).trim();
  });

  await step("reload: JupyterLab comes back, the kernel still runs", async () => {
    await page.reload();
    await page.locator("#jp-main-dock-panel").waitFor();
    result.kernels = await page.evaluate(
      async () => (await (await fetch("/user/ana/api/kernels")).json()).length,
    );
  });

  await step("bob, logged into the Hub, cannot reach ana's server", async () => {
    const other = await browser.newContext();
    other.setDefaultTimeout(stepTimeout);
    const bobPage = await logIn(other, "bob");
    const response = await bobPage.goto(`${hub}/user/ana/lab`);
    result.bob = {
      status: response.status(),
      landed: new URL(bobPage.url()).pathname,
      lab: await bobPage.locator("#jp-main-dock-panel").count(),
    };
    await other.close();
  });

  await step("stop the server from the Hub's control panel", async () => {
    await page.goto(`${hub}/hub/home`);
    await page.locator("#stop").click();
    await page.locator("#start").waitFor({ state: "visible", timeout: 60000 });
    result.stopped = true;
  });
  result.ok = true;
} catch (error) {
  result.error = `${current}: ${error.stack ?? error}`;
  if (page) await page.screenshot({ path: join(artifacts, "jupyterhub-failure.png") }).catch(() => {});
} finally {
  await browser.close();
}
process.exitCode = result.ok ? 0 : 1;
process.stdout.write(JSON.stringify(result) + "\n");
