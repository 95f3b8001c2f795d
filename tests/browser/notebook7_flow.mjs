// Drives Notebook 7, served by a running Junction server, in Debian's chromium.
//
// Usage: node notebook7_flow.mjs. Environment: JUNCTION_URL (base URL with trailing slash),
// JUNCTION_TOKEN, ARTIFACTS_DIR, CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS.
// The server runs with --default-url /tree, so "/" must land on Notebook 7's file browser.
//
// Prints one JSON line to stdout: {"ok", "phase", "error", "endpoints", "console", "bad",
// "failures", "steps"}. Exits 1 on any failure, including a console error or an HTTP
// status >= 400 seen by the browser, in any of its tabs.

import { join } from "node:path";
import { Recorder, api as callApi, failureScreenshot, flowEnv, launch } from "./lib.mjs";

const phase = "notebook7";
const env = flowEnv();
const { base, token, artifacts } = env;
const notebookName = "flow.ipynb";

const recorder = new Recorder(base);
const step = (name, action) => recorder.step(name, action);
const api = (method, path, body) => callApi(env, method, path, body);
const pages = [];
let kernelReady; // resolves when a kernel WebSocket first carries kernel_info_reply
const kernelAnswered = new Promise((resolve) => (kernelReady = resolve));

// Requests, answers and console messages are watched on the whole context, so the first
// document of a tab Notebook 7 opens is seen too; WebSockets are watched per tab.
function watchContext(context) {
  context.on("console", (message) => {
    if (message.type() === "error") {
      const where = message.page()?.url() ?? "a worker";
      recorder.consoleErrors.push(`${where}: ${message.text()}`);
    }
  });
  context.on("weberror", (webError) => {
    const error = webError.error();
    recorder.consoleErrors.push(`pageerror: ${error.stack ?? error.message}`);
  });
  recorder.watchRequests(context);
}

function watchSockets(page) {
  pages.push(page);
  page.on("websocket", (socket) => {
    recorder.watchSocket(socket);
    if (socket.url().includes("/channels")) {
      socket.on("framereceived", (frame) => {
        if (String(frame.payload).includes('"kernel_info_reply"')) kernelReady();
      });
    }
  });
}

let browser;
let failure = null;

try {
  browser = await launch(env);
  const { context } = browser;
  watchContext(context);
  context.on("page", watchSockets);
  const tree = browser.page;
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
    const editor = cell.locator(".cm-content");
    await editor.click();
    await cell.locator(".cm-editor.cm-focused").waitFor();
    await notebook.keyboard.type("print(6*7)");
    await editor.filter({ hasText: "print(6*7)" }).waitFor();
    await notebook.keyboard.press("Shift+Enter");
    await cell.locator(".jp-OutputArea-output", { hasText: "42" }).waitFor();
  });

  await step("save and find the output through the REST API", async () => {
    // A key press that lands while the notebook moves focus to the new cell can be lost
    // under load: press again until the save request goes out.
    const saved = (r) =>
      r.request().method() === "PUT" && r.url().includes(`/api/contents/${notebookName}`);
    let response = null;
    for (let attempt = 0; response === null && attempt < 3; attempt += 1) {
      const waiting = notebook.waitForResponse(saved, { timeout: 10000 }).catch(() => null);
      await notebook.keyboard.press("Control+s");
      response = await waiting;
    }
    if (response === null) throw new Error("Control+s sent no save request in 30 s");
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
    await failureScreenshot(page, join(artifacts, `${phase}-failure-${index}.png`), {});
  }
} finally {
  if (browser) await browser.close();
}

recorder.finish(env, phase, failure);
