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

import { join } from "node:path";
import { Recorder, api as callApi, flowEnv, launchBrowser } from "./lib.mjs";

const env = flowEnv();
const { base, token, artifacts, stepTimeout } = env;
const recorder = new Recorder(base, { withQuery: false });
const step = (name, action) => recorder.step(name, action);
const api = (path) => callApi(env, "GET", path);

async function openPage(browser, who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(stepTimeout);
  const page = await context.newPage();
  page.on("console", (message) => {
    // Two pages share the notebook's kernel; comm messages meant for the other page's
    // widget manager are logged by JupyterLab as "Comm not found" (as with jupyter_server).
    if (message.type() !== "error" || message.text().startsWith("Comm not found")) return;
    recorder.consoleErrors.push(`${who}: ${message.text()}`);
  });
  page.on("pageerror", (error) => recorder.consoleErrors.push(`${who} pageerror: ${error.message}`));
  page.on("response", (response) => {
    recorder.record(response.request().method(), response.url(), response.status());
  });
  page.on("websocket", (socket) => recorder.record("WS", socket.url(), 101));
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
  browser = await launchBrowser(env);
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

recorder.finish(env, "collaboration", failure);
