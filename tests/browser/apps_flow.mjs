// Drives apps launched on a running Junction server in Debian's chromium.
//
// Usage: node apps_flow.mjs. Logs in with ?token= on Junction's origin (http://localhost:PORT),
// opens the /apps page (a launch with a bad path shows the error, a failed app's Logs button
// shows its output), then each app through its Junction URL (/apps/{id}/, which hands the
// browser to {id}.apps.localhost with a one-time code): the Streamlit and Panel pages render,
// a click travels over the framework's WebSocket and the page updates. On an app's page,
// script cannot read Junction's cookies nor call Junction's API with the viewer's session.
// Voila (a widget click runs in its kernel) and Gradio (an event over server-sent events)
// too. The failed app's page shows its last output lines.
// Environment: JUNCTION_URL (base URL with trailing slash), JUNCTION_TOKEN, APPS (JSON:
// {"streamlit", "panel", "voila", "gradio", "failed": url}), ARTIFACTS_DIR, CHROMIUM, STEP_TIMEOUT_MS.
//
// Prints one JSON line to stdout: {"ok", "error", "steps", "console", "probes"}.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.JUNCTION_URL;
const token = process.env.JUNCTION_TOKEN;
const apps = JSON.parse(process.env.APPS ?? "{}");
const artifacts = process.env.ARTIFACTS_DIR ?? "test-artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS ?? 30000);
mkdirSync(artifacts, { recursive: true });

const steps = [];
const consoleErrors = [];
const probes = {};
let failure = null;

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"],
});
const context = await browser.newContext();
context.setDefaultTimeout(stepTimeout);
const page = await context.newPage();
page.on("console", (message) => {
  if (message.type() === "error") consoleErrors.push(`${page.url()}: ${message.text()}`);
});

async function step(name, action) {
  steps.push(name);
  await action();
}

try {
  await step("log in and open the apps page", async () => {
    await page.goto(`${base}apps?token=${token}`);
    await page.locator("tbody#apps tr").first().waitFor();
    probes.rows = await page.locator("tbody#apps tr").count();
  });

  await step("the apps page launches (a bad path is refused) and shows live logs", async () => {
    await page.locator("input[name=path]").fill("missing.py");
    await page.locator("select[name=framework]").selectOption("streamlit");
    await page.getByRole("button", { name: "Launch" }).click();
    await page.getByText("no such file: missing.py").waitFor();
    const failedRow = page.locator("tbody#apps tr", { hasText: "failed" }).first();
    await failedRow.getByRole("button", { name: "Logs" }).click();
    await page.locator("pre#logs", { hasText: "boom: the app could not start" }).waitFor();
  });

  await step("streamlit renders and counts a click over its WebSocket", async () => {
    await page.goto(apps.streamlit);
    probes.streamlitHost = new URL(page.url()).host;
    await page.getByText("Hello streamlit").waitFor();
    await page.getByText("clicks: 0").waitFor();
    await page.getByRole("button", { name: "Add one" }).click();
    await page.getByText("clicks: 1").waitFor();
  });

  await step("an app's page cannot use Junction's credentials", async () => {
    probes.appCookies = await page.evaluate(() => document.cookie);
    probes.apiFetch = await page.evaluate(async (junction) => {
      try {
        const response = await fetch(`${junction}api/contents`, { credentials: "include" });
        return `status ${response.status}`;
      } catch (error) {
        return `blocked: ${error.name}`;
      }
    }, base);
    probes.apiFetchNoCors = await page.evaluate(async (junction) => {
      try {
        const response = await fetch(`${junction}api/contents`, {
          credentials: "include",
          mode: "no-cors",
        });
        return `opaque ${response.type} ${(await response.text()).length}`;
      } catch (error) {
        return `blocked: ${error.name}`;
      }
    }, base);
  });

  await step("panel renders and counts a click over its WebSocket", async () => {
    await page.goto(apps.panel);
    probes.panelHost = new URL(page.url()).host;
    await page.getByText("Hello panel").waitFor();
    await page.getByText("panel clicks: 0").waitFor();
    await page.getByRole("button", { name: "Add one" }).click();
    await page.getByText("panel clicks: 1").waitFor();
  });

  await step("voila renders and a widget click runs in its kernel", async () => {
    await page.goto(apps.voila);
    probes.voilaHost = new URL(page.url()).host;
    await page.getByText("Hello voila").waitFor({ timeout: 90000 });
    await page.getByText("voila clicks: 0").waitFor({ timeout: 90000 });
    await page.getByRole("button", { name: "Add one" }).click();
    await page.getByText("voila clicks: 1").waitFor();
  });

  await step("gradio renders and an event round trip updates the page", async () => {
    await page.goto(apps.gradio);
    probes.gradioHost = new URL(page.url()).host;
    await page.getByRole("button", { name: "Greet" }).click();
    await page.waitForFunction(() =>
      [...document.querySelectorAll("textarea, input")].some(
        (field) => field.value === "Hello ana from gradio",
      ),
    );
  });

  await step("a failed app shows its last output", async () => {
    const response = await page.goto(apps.failed);
    probes.failedStatus = response.status();
    await page.getByText("boom: the app could not start").waitFor();
  });
} catch (error) {
  failure = `${steps.at(-1)}: ${error.message.split("\n")[0]}`;
  await page.screenshot({ path: join(artifacts, "apps-flow-failure.png") }).catch(() => {});
} finally {
  await browser.close();
}

console.log(JSON.stringify({ ok: failure === null, error: failure, steps, console: consoleErrors, probes }));
process.exit(failure === null ? 0 : 1);
