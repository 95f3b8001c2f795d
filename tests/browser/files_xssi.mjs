// Checks, in Debian's chromium, that /files serves the server's own pages and refuses
// another site's <script> tags (cross-site script inclusion) while the user is logged in.
//
// Environment: JUNCTION_URL (base URL with trailing slash), JUNCTION_TOKEN, FOREIGN_URL (a
// page of another origin on the same host, which includes <base>files/secret.js as a
// script), CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS.
//
// Prints one JSON line: {"ok", "error", "checks": {name: value}}.

import { launchBrowser } from "./lib.mjs";

const base = process.env.JUNCTION_URL;
const token = process.env.JUNCTION_TOKEN;
const foreign = process.env.FOREIGN_URL;
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const timeout = Number(process.env.STEP_TIMEOUT_MS ?? 30000);

const checks = {};
let error = null;
const browser = await launchBrowser({ executablePath });
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(timeout);
  const page = await context.newPage();

  // Log in by opening the view page with the token (exchanged for the login cookie).
  const view = await page.goto(`${base}view/page.html?token=${token}`);
  checks.viewStatus = view.status();
  checks.viewUrl = page.url();
  // The iframe loads /files with the view page as Referer.
  checks.framed = await page.frameLocator("#iframe").locator("p").textContent();

  // "Open in New Browser Tab" as JupyterLab does it: ?_xsrf= on the URL (here without a
  // Referer at all, so the _xsrf value alone must let it through).
  const xsrf = (await context.cookies()).find((c) => c.name === "_xsrf").value;
  const [tab] = await Promise.all([
    context.waitForEvent("page"),
    page.evaluate(
      (url) => window.open(url, "_blank", "noreferrer"),
      `${base}files/secret.js?_xsrf=${encodeURIComponent(xsrf)}`,
    ),
  ]);
  await tab.waitForLoadState();
  checks.newTab = (await tab.locator("body").textContent()).trim();

  // Another site on the same host includes the file as a script: the browser sends the
  // login cookie (same site), the server must refuse.
  // Chromium may block the refused answer itself (opaque response blocking) and report a
  // failed request instead of a response; the server's log has the status either way.
  const seen = [];
  page.on("response", (r) => {
    if (r.url().includes("/files/secret.js")) seen.push(`response ${r.status()}`);
  });
  page.on("requestfailed", (r) => {
    if (r.url().includes("/files/secret.js")) seen.push(`failed ${r.failure()?.errorText}`);
  });
  await page.goto(foreign);
  await page.waitForFunction(() => document.title === "done");
  checks.foreignScript = seen;
  checks.foreignSawSecret = await page.evaluate(() => typeof window.secret !== "undefined");

  // A URL typed into the address bar carries no Referer: refused, as in jupyter_server.
  const typed = await context.newPage();
  const direct = await typed.goto(`${base}files/secret.js`);
  checks.typedStatus = direct.status();
} catch (e) {
  error = String(e?.stack ?? e);
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ok: error === null, error, checks }));
process.exit(error === null ? 0 : 1);
