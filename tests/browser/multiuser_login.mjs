// Two people and an administrator log in to a multi-user Junction through a real OpenID
// provider, each in their own browser context of Debian's chromium; each starts a kernel
// from JupyterLab's page and lists the kernels the server shows them.
//
// Usage: node multiuser_login.mjs. Environment: JUNCTION_URL (base URL with trailing slash),
// USERS (comma-separated logins at the provider, the last one an administrator), ARTIFACTS_DIR,
// CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS.
//
// Then the administrator (the last login) revokes the first user from the /users page.
//
// Prints one JSON line: {"ok", "error", "users": {login: {"landed", "me", "kernel",
// "listed", "foreign"}}, "revoked": {"login", "status"}}. Exits 1 on failure.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser } from "./lib.mjs";

const base = process.env.JUNCTION_URL;
const logins = (process.env.USERS ?? "").split(",").filter(Boolean);
const artifacts = process.env.ARTIFACTS_DIR ?? "test-artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS ?? 30000);
mkdirSync(artifacts, { recursive: true });

const browser = await launchBrowser({ executablePath });
const result = { ok: false, error: null, users: {} };
const pages = {};
try {
  for (const login of logins) {
    const context = await browser.newContext();
    context.setDefaultTimeout(stepTimeout);
    const page = await context.newPage();
    pages[login] = page;
    // JupyterLab sends people without a session to the login page, which offers the issuer.
    await page.goto(`${base}lab`);
    await page.locator("a.login-link").click();
    // The provider's development login form, then its consent form.
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill("any");
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]').click();
    await page.waitForURL((url) => url.href.startsWith(`${base}lab`));
    await page.locator("#jp-main-dock-panel").waitFor();
    const landed = new URL(page.url()).pathname;
    const me = await page.evaluate(async () => (await (await fetch("../api/me")).json()).identity);
    const kernel = await page.evaluate(async () => {
      const xsrf = document.cookie.split("; ").find((c) => c.startsWith("_xsrf="))?.slice(6);
      const response = await fetch("../api/kernels", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf },
        body: "{}",
      });
      return (await response.json()).id;
    });
    result.users[login] = { landed, me, kernel };
  }
  for (const login of logins) {
    const page = pages[login];
    const listed = await page.evaluate(async () =>
      (await (await fetch("../api/kernels")).json()).map((k) => k.id),
    );
    const others = logins.filter((other) => other !== login).map((o) => result.users[o].kernel);
    const foreign = {};
    for (const id of others) {
      foreign[id] = await page.evaluate(async (kid) => (await fetch(`../api/kernels/${kid}`)).status, id);
    }
    Object.assign(result.users[login], { listed, foreign });
  }
  // The administrator (the last login) revokes the first user from the admin page; that
  // user's very next request is refused.
  const admin = pages[logins[logins.length - 1]];
  const victim = logins[0];
  await admin.goto(`${base}users`);
  const row = admin.locator(`tr[data-name="${victim}"]`);
  await row.locator('button[data-action="revoke"]').click();
  await admin.locator("#status", { hasText: `${victim}: done` }).waitFor();
  result.revoked = {
    login: victim,
    status: await pages[victim].evaluate(async () => (await fetch("../api/me")).status),
  };
  result.ok = true;
} catch (error) {
  result.error = String(error?.stack ?? error);
  for (const [login, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(artifacts, `multiuser-${login}.png`) }).catch(() => {});
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
