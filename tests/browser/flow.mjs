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

import { join } from "node:path";
import { Recorder, api as callApi, failureScreenshot, flowEnv, launch } from "./lib.mjs";

const phase = process.argv[2] ?? "main";
const env = flowEnv();
const { base, token, artifacts, stepTimeout } = env;
const screenshot = process.env.SCREENSHOT;
const notebookName = "Untitled.ipynb";

const recorder = new Recorder(base);
const step = (name, action) => recorder.step(name, action);
const api = (method, path, body) => callApi(env, method, path, body);

// Runs `action` and returns the first response matching `method` and `urlPart`; waiting
// and acting together, so a failed action cannot leave a dangling wait behind.
async function responseTo(method, urlPart, action) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && r.url().includes(urlPart)),
    action(),
  ]);
  return response;
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

let browser;
let page;
let failure = null;

try {
  browser = await launch(env);
  ({ page } = browser);
  recorder.watchPage(page, { withSent: true });
  page.on("websocket", (socket) => {
    recorder.watchSocket(socket);
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
  await failureScreenshot(page, join(artifacts, `${phase}-failure.png`));
} finally {
  if (browser) await browser.close();
}

recorder.finish(env, phase, failure);

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
    kernelAnswered.catch(() => {}); // awaited below; a step failing first must not crash node
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
