// JupyterLab opens Junction apps two ways, both in a new browser tab through /apps/{id}/ (a
// one-time code, then the app's own host {id}.apps.localhost), where a Dash page renders and a
// callback round trip updates it:
// - "Open as App (Dash)" in a file's context menu (Junction's own labextension), shown only on
//   files a framework preset would run; it creates the app;
// - after a reload, the app's tile in the launcher (jupyter-server-proxy's labextension, fed by
//   Junction's /server-proxy/servers-info).
//
// Usage: node apps_launcher.mjs. Environment: JUNCTION_URL (Junction's origin as
// http://localhost:PORT/), JUNCTION_TOKEN, ARTIFACTS_DIR, CHROMIUM, STEP_TIMEOUT_MS. The root
// holds dash_app.py and plain.py. Prints one JSON summary line (lib.mjs) with "probes".

import { join } from "node:path";
import { Recorder, api, failureScreenshot, flowEnv, launch } from "./lib.mjs";

const env = flowEnv();
const recorder = new Recorder(env.base);
const probes = {};
let failure = null;
const { context, page, close } = await launch(env);
recorder.watchPage(page);
let app = null;

function watchApp(tab) {
  tab.on("console", (message) => {
    if (message.type() === "error") recorder.consoleErrors.push(`app: ${message.text()}`);
  });
}

async function dashCounts(tab) {
  await tab.getByText("Hello dash").waitFor();
  await tab.getByText("clicks: 0").waitFor();
  await tab.getByRole("button", { name: "Add one" }).click();
  await tab.getByText("clicks: 1").waitFor();
}

const item = (name) => page.locator(`.jp-DirListing-item[title^="Name: ${name}"]`);
const openAsApp = page.locator(".lm-Menu-itemLabel", { hasText: "Open as App" });

try {
  await recorder.step("open JupyterLab; it asks which files are apps", async () => {
    const scanned = page.waitForResponse((r) => r.url().includes("/api/apps/frameworks"), {
      timeout: 90000,
    });
    scanned.catch(() => {}); // awaited below; a failed step must not leave it unhandled
    await page.goto(`${env.base}lab?token=${env.token}`);
    probes.frameworks = await (await scanned).json();
    await item("dash_app.py").waitFor();
  });

  await recorder.step("a plain Python file has no Open as App", async () => {
    await item("plain.py").click({ button: "right" });
    await page.locator(".lm-Menu-itemLabel", { hasText: "Rename" }).waitFor();
    probes.plainMenu = await openAsApp.filter({ visible: true }).count();
    await page.keyboard.press("Escape");
    await page.locator(".lm-Menu").waitFor({ state: "detached" });
  });

  await recorder.step("Open as App (Dash) runs the file and opens it in a new tab", async () => {
    await item("dash_app.py").click({ button: "right" });
    probes.menuLabel = (await openAsApp.textContent()).trim();
    [app] = await Promise.all([context.waitForEvent("page"), openAsApp.click()]);
    watchApp(app);
    await dashCounts(app);
    probes.openedUrl = app.url();
    await app.close();
  });

  await recorder.step("after a reload, the launcher's tile opens the same app", async () => {
    const [model] = await api(env, "GET", "api/apps");
    await page.reload();
    const card = page.locator(".jp-LauncherCard", { hasText: model.name });
    await card.first().waitFor({ timeout: 90000 });
    probes.tiles = await card.count();
    [app] = await Promise.all([context.waitForEvent("page"), card.first().click()]);
    watchApp(app);
    await dashCounts(app);
    probes.tileUrl = app.url();
  });
} catch (error) {
  failure = error;
  await failureScreenshot(page, join(env.artifacts, "apps-launcher-failure.png"));
  await failureScreenshot(app, join(env.artifacts, "apps-launcher-app-failure.png"));
}

await close();
const summary = recorder.summary("apps-launcher", failure);
process.exitCode = summary.ok ? 0 : 1;
process.stdout.write(JSON.stringify({ ...summary, probes }) + "\n");
