// JupyterLab's launcher opens a Junction app: jupyter-server-proxy's prebuilt labextension
// reads Junction's /server-proxy/servers-info and draws a tile per app; a click opens the
// app in a new tab through /apps/{id}/ (one-time code, then {id}.apps.localhost), where a
// Dash page renders and a callback round trip updates it.
//
// Usage: node apps_launcher.mjs. Environment: JUNCTION_URL (Junction's origin as
// http://localhost:PORT/), JUNCTION_TOKEN, APP_TITLE (the tile's title), ARTIFACTS_DIR,
// CHROMIUM, STEP_TIMEOUT_MS. Prints one JSON summary line (lib.mjs) with "probes".

import { join } from "node:path";
import { Recorder, failureScreenshot, flowEnv, launch } from "./lib.mjs";

const env = flowEnv();
const title = process.env.APP_TITLE;
const recorder = new Recorder(env.base);
const probes = {};
let failure = null;
const { context, page, close } = await launch(env);
recorder.watchPage(page);
let app = null;

try {
  await recorder.step("open JupyterLab; the launcher shows the app's tile", async () => {
    await page.goto(`${env.base}lab?token=${env.token}`);
    const card = page.locator(".jp-LauncherCard", { hasText: title });
    await card.first().waitFor({ timeout: 90000 });
    probes.tiles = await card.count();
  });

  await recorder.step("the tile opens the app in a new tab, through Junction", async () => {
    const card = page.locator(".jp-LauncherCard", { hasText: title }).first();
    [app] = await Promise.all([context.waitForEvent("page"), card.click()]);
    app.on("console", (message) => {
      if (message.type() === "error") recorder.consoleErrors.push(`app: ${message.text()}`);
    });
    await app.getByText("Hello dash").waitFor();
    probes.appUrl = app.url();
  });

  await recorder.step("a Dash callback round trip updates the page", async () => {
    await app.getByText("clicks: 0").waitFor();
    await app.getByRole("button", { name: "Add one" }).click();
    await app.getByText("clicks: 1").waitFor();
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
