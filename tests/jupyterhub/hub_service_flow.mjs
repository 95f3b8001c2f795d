// One shared multi-user Junction behind a real JupyterHub (a Hub service), in Debian's
// chromium: ana and bob, each in a browser of their own, open the service's JupyterLab, are
// sent through the Hub's login page and OAuth, land in Junction's JupyterLab in their own
// home, and save a file there; each then looks for the other's file.
//
// Usage: node hub_service_flow.mjs. Environment: HUB_URL (no trailing slash), PREFIX (the
// service's, e.g. /services/junction/), PASSWORD, ARTIFACTS_DIR, CHROMIUM, STEP_TIMEOUT_MS.
//
// Prints one JSON line: {"ok", "error", "steps", "users": {name: {"landed", "preferredPath",
// "me", "saved", "mine", "others", "otherFile", "homeListing"}}}. Exits 1 on failure.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser } from "../browser/lib.mjs";

const hub = process.env.HUB_URL;
const prefix = process.env.PREFIX;
const password = process.env.PASSWORD;
const artifacts = process.env.ARTIFACTS_DIR ?? "test-artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS ?? 60000);
mkdirSync(artifacts, { recursive: true });

const result = { ok: false, error: null, steps: [], users: {} };
let current = "start";
async function step(name, action) {
  current = name;
  const started = Date.now();
  await action();
  result.steps.push({ name, ms: Date.now() - started });
}

// Runs in the page: the contents API with the browser's session cookie and XSRF token.
async function contents(page, method, path, body) {
  return page.evaluate(
    async ({ prefix, method, path, body }) => {
      const xsrf = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/)?.[1] ?? "";
      const response = await fetch(`${prefix}api/contents/${path}`, {
        method,
        headers: { "X-XSRFToken": decodeURIComponent(xsrf), "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    { prefix, method, path, body },
  );
}

const browser = await launchBrowser({ executablePath });
const pages = {};
try {
  for (const name of ["ana", "bob"]) {
    const context = await browser.newContext();
    context.setDefaultTimeout(stepTimeout);
    const page = (pages[name] = await context.newPage());
    const seen = (result.users[name] = {});

    await step(`${name} opens the shared JupyterLab and logs in at the Hub`, async () => {
      await page.goto(`${hub}${prefix}lab`);
      await page.waitForURL((url) => url.pathname.endsWith("/hub/login"));
      await page.locator('input[name="username"]').fill(name);
      await page.locator('input[name="password"]').fill(password);
      await page.locator("#login_submit").click();
      await page.waitForURL((url) => url.pathname.startsWith(`${prefix}lab`), { timeout: 90000 });
      await page.locator("#jp-main-dock-panel").waitFor();
      seen.landed = new URL(page.url()).pathname;
      seen.preferredPath = await page.evaluate(
        () => JSON.parse(document.getElementById("jupyter-config-data").textContent).preferredPath,
      );
      seen.me = await page.evaluate(
        async (prefix) => (await (await fetch(`${prefix}api/me`)).json()).identity,
        prefix,
      );
    });

    await step(`${name} saves a file in their home`, async () => {
      const saved = await contents(page, "PUT", `home/${name}/${name}-notes.txt`, {
        type: "file",
        format: "text",
        content: `${name}'s notes`,
      });
      seen.saved = saved.status;
      const mine = await contents(page, "GET", `home/${name}`);
      seen.mine = mine.body.content.map((entry) => entry.name);
    });
  }

  for (const [name, other] of [["ana", "bob"], ["bob", "ana"]]) {
    await step(`${name} looks for ${other}'s file`, async () => {
      const seen = result.users[name];
      seen.others = (await contents(pages[name], "GET", `home/${other}`)).status;
      seen.otherFile = (await contents(pages[name], "GET", `home/${other}/${other}-notes.txt`)).status;
      const home = await contents(pages[name], "GET", "home");
      seen.homeListing = home.body.content.map((entry) => entry.name);
    });
  }
  result.ok = true;
} catch (error) {
  result.error = `${current}: ${error.stack ?? error}`;
  for (const [name, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(artifacts, `hub-service-${name}.png`) }).catch(() => {});
  }
} finally {
  await browser.close();
}
process.exitCode = result.ok ? 0 : 1;
process.stdout.write(JSON.stringify(result) + "\n");
