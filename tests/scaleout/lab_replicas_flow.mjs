// Drives JupyterLab in Debian's chromium through nginx in front of several Junction replicas,
// across the kill -9 of the replica that launched the notebook's kernel.
//
// Usage: node lab_replicas_flow.mjs. Environment as tests/browser/flow.mjs: JUNCTION_URL (nginx,
// with trailing slash), JUNCTION_TOKEN, ARTIFACTS_DIR, CHROMIUM, STEP_TIMEOUT_MS, and
// RECONNECT_TIMEOUT_MS (how long JupyterLab may take to show the kernel idle after the kill).
//
// Handshake with the test: once `x = 6*7` ran, the flow prints one line
// {"event": "kill", "kernel_id": ...} and waits for one line on stdin, "killed" (the test
// kills the replica running the kernel and the one its WebSocket is on, then writes it).
// Last, it prints the JSON summary of lib.mjs, with "kernel_id", "notebook", "killed_at",
// "sockets" (the kernel WebSockets: url, opened/closed times in ms since the flow started),
// "commLog" (comm messages on them) and "consoleLog" (console errors with their time) added.
// Exits 1 on any failure, console error or status >= 400.

import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { Recorder, api as callApi, failureScreenshot, flowEnv, launch } from "../browser/lib.mjs";

const env = flowEnv();
const { base, token, artifacts } = env;
const reconnectTimeout = Number(process.env.RECONNECT_TIMEOUT_MS ?? 40000);
const notebookName = "Untitled.ipynb";
const began = Date.now();

const recorder = new Recorder(base);
const step = (name, action) => recorder.step(name, action);
const api = (method, path, body) => callApi(env, method, path, body);
const sockets = [];
const commLog = []; // comm messages on the kernel sockets, to tell where a comm error came from
const consoleLog = []; // console errors with their time
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

let browser;
let page;
let kernelId = null;
let killedAt = null;
let failure = null;

try {
  browser = await launch(env);
  ({ page } = browser);
  recorder.watchPage(page, { withSent: true });
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    consoleLog.push({ at: Date.now() - began, text: message.text() });
  });
  page.on("websocket", (socket) => {
    recorder.watchSocket(socket);
    if (!socket.url().includes("/channels")) return;
    const entry = { url: new URL(socket.url()).pathname, opened: Date.now() - began, closed: null };
    sockets.push(entry);
    const comms = (direction) => (frame) => {
      const text = frame.payload.toString();
      const type = /"msg_type":\s*"(comm_\w+)"/.exec(text);
      const id = /"comm_id":\s*"([\w-]+)"/.exec(text);
      const target = /"target_name":\s*"([^"]+)"/.exec(text);
      if (type) {
        commLog.push({
          at: Date.now() - began,
          direction,
          socket: sockets.indexOf(entry),
          type: type[1],
          comm: id?.[1],
          target: target?.[1],
        });
      }
    };
    socket.on("framereceived", comms("in"));
    socket.on("framesent", comms("out"));
    socket.on("close", () => {
      entry.closed = Date.now() - began;
    });
  });
  await flow();
} catch (error) {
  failure = error;
  await failureScreenshot(page, join(artifacts, "lab-replicas-failure.png"));
} finally {
  if (browser) await browser.close();
  stdin.close();
}

const summary = recorder.summary("lab-replicas", failure);
Object.assign(summary, {
  kernel_id: kernelId,
  notebook: notebookName,
  killed_at: killedAt,
  sockets,
  commLog,
  consoleLog,
});
writeFileSync(join(artifacts, "lab-replicas-endpoints.json"), JSON.stringify(summary, null, 2));
process.exitCode = summary.ok ? 0 : 1;
process.stdout.write(JSON.stringify(summary) + "\n");

// --- the flow ---------------------------------------------------------------------------

async function runCell(code, index) {
  const cell = page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(index);
  await cell.locator(".cm-content").click();
  await page.keyboard.type(code);
  await page.keyboard.press("Shift+Enter");
  return cell;
}

// Waits until every kernel WebSocket opened before `since` closed and one opened after it is
// open, then for the status bar to show the kernel idle.
async function waitForNewSocket(since, timeout) {
  const deadline = Date.now() + timeout;
  const settled = () =>
    sockets.every((s) => s.opened >= since || s.closed !== null) &&
    sockets.some((s) => s.opened >= since && s.closed === null);
  while (!settled()) {
    if (Date.now() > deadline) {
      throw new Error(`no new kernel WebSocket alone: ${JSON.stringify(sockets)} since ${since}`);
    }
    await page.waitForTimeout(100);
  }
  await statusBar("Python 3 (ipykernel) | Idle").waitFor({
    timeout: Math.max(deadline - Date.now(), 1000),
  });
}

function statusBar(text) {
  return page.locator("#jp-main-statusbar", { hasText: text });
}

async function flow() {
  await step("open /lab?token=... through nginx", async () => {
    await page.goto(`${base}lab?token=${encodeURIComponent(token)}`);
    await page.locator("#jp-main-dock-panel").waitFor();
    await page.locator(".jp-DirListing-content").waitFor();
    if (new URL(page.url()).searchParams.has("token")) throw new Error("token left in the URL");
  });

  await step("create a notebook from the launcher", async () => {
    // Wait for the kernel's own first answer, not the idle indicator shown before the
    // session exists (typing then would make the UI start a second kernel).
    const kernelAnswered = page
      .waitForEvent("websocket", { predicate: (ws) => ws.url().includes("/channels") })
      .then((ws) => {
        kernelId = new URL(ws.url()).pathname.split("/").at(-2);
        return ws.waitForEvent("framereceived", {
          predicate: (frame) => frame.payload.toString().includes('"kernel_info_reply"'),
        });
      });
    kernelAnswered.catch(() => {}); // awaited below; a step failing first must not crash
    await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
    await page.locator(".jp-NotebookPanel:visible").waitFor();
    await kernelAnswered;
    await statusBar("Python 3 (ipykernel) | Idle").waitFor();
  });

  await step("run x = 6*7; print(x) and see 42", async () => {
    const cell = await runCell("x = 6*7; print(x)", 0);
    await cell.locator(".jp-OutputArea-output", { hasText: "42" }).waitFor();
    await statusBar("| Idle").waitFor();
  });

  await step("the test kills the replicas the kernel and its WebSocket are on", async () => {
    killedAt = Date.now() - began; // no socket of the kernel opens until the answer
    process.stdout.write(JSON.stringify({ event: "kill", kernel_id: kernelId }) + "\n");
    const answer = await lines.next();
    const word = answer.done ? null : answer.value.trim();
    if (word !== "killed") throw new Error(`the test answered ${JSON.stringify(word)}`);
  });

  await step("JupyterLab reconnects: the kernel is idle again", async () => {
    // The kernel socket on the killed replica closes; JupyterLab opens another one through
    // nginx (any closing code but 1000 and 1001 makes it try again).
    await waitForNewSocket(killedAt, reconnectTimeout);
  });

  await step("run print(x + 1) in the same page and see 43", async () => {
    const cell = await runCell("print(x + 1)", 1);
    await cell.locator(".jp-OutputArea-output", { hasText: "43" }).waitFor();
  });

  await step("save with Ctrl+S (PUT answered 200)", async () => {
    const [response] = await Promise.all([
      page.waitForResponse(
        (r) =>
          r.request().method() === "PUT" &&
          new URL(r.url()).pathname.endsWith(`/api/contents/${notebookName}`),
      ),
      (async () => {
        await page.keyboard.press("Control+s");
        // The first save of an untitled notebook offers to rename it; keep the name.
        await page.locator(".jp-Dialog button", { hasText: "Rename and Save" }).click();
      })(),
    ]);
    if (response.status() !== 200) throw new Error(`save answered ${response.status()}`);
    await page
      .locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
      .waitFor({ state: "detached" });
  });

  await step("the saved outputs are in the file (REST API)", async () => {
    const model = await api("GET", `api/contents/${notebookName}?content=1`);
    const texts = model.content.cells.map((cell) =>
      cell.outputs.map((output) => [output.text ?? ""].flat().join("")).join(""),
    );
    if (texts[0] !== "42\n" || texts[1] !== "43\n") {
      throw new Error(`saved outputs ${JSON.stringify(texts)}`);
    }
  });
}
