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

import { join } from "node:path";
import { Recorder, failureScreenshot, flowEnv, launch } from "./lib.mjs";

const env = flowEnv();
const { base, token, artifacts, stepTimeout } = env;
const recorder = new Recorder(base);
const step = (name, action) => recorder.step(name, action);

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

let browser;
let page;
let failure = null;

try {
  browser = await launch(env);
  ({ page } = browser);
  recorder.watchPage(page);
  page.on("websocket", (socket) => {
    recorder.watchSocket(socket);
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
  await failureScreenshot(page, join(artifacts, "terminal-failure.png"));
} finally {
  if (browser) await browser.close();
}

recorder.finish(env, "terminal", failure, "terminal-endpoints.json");
