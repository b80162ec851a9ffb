// Drives the web console (/console/) in headless Chromium for the Go test
// internal/e2e TestConsole, against a real stack: an operator of tenant A
// logs in with an API key, sees a message a WebSocket client just sent on
// the Logs page, opens its sender's page and bans them, adds an NG word
// and sees the "try a sentence" box mask it, creates a channel, and does
// it in Japanese; an operator of tenant B then sees none of A's data.
// Screenshots of every page are saved. Prints PASS or FAIL and exits 1 on
// failure.
//
//   KAIWA_CONSOLE_URL   https://HOST/console/ (self-signed: accepted)
//   KAIWA_KEY_A, KAIWA_KEY_B   the two tenants' API keys
//   KAIWA_TEXT          the message A's client sent
//   KAIWA_USER          its sender
//   KAIWA_SECRETS       JSON list of strings of A's that B must never see
//   KAIWA_SHOTS         the directory the screenshots go to
//   KAIWA_SDK_DIR       sdk/js, where playwright-core is installed
//   KAIWA_CHROMIUM      Chromium (default /usr/bin/chromium)

import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.KAIWA_SDK_DIR, "package.json"));
const { chromium } = require("playwright-core");

const base = process.env.KAIWA_CONSOLE_URL;
const keyA = process.env.KAIWA_KEY_A;
const keyB = process.env.KAIWA_KEY_B;
const text = process.env.KAIWA_TEXT;
const user = process.env.KAIWA_USER;
const secrets = JSON.parse(process.env.KAIWA_SECRETS || "[]");
const shots = process.env.KAIWA_SHOTS;

const step = (what) => console.log(`console: ${what}`);
const url = (p) => new URL(p, base).toString();

const browser = await chromium.launch({
  executablePath: process.env.KAIWA_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--no-first-run", "--disable-background-networking"],
});
let ok = false;
let page;
const shot = async (p, name) => {
  const path = join(shots, `${name}.png`);
  await p.screenshot({ path, fullPage: true });
  step(`screenshot ${path}`);
};

async function login(ctx, key) {
  const p = await ctx.newPage();
  p.setDefaultTimeout(15_000);
  p.on("pageerror", (e) => console.log(`page error: ${e.message}`));
  await p.goto(base);
  await p.waitForSelector("#login");
  await p.fill("#key", key);
  await Promise.all([p.waitForURL(/\/console\/live/), p.click("#login-submit")]);
  return p;
}

try {
  const ctxA = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 }, locale: "en-US" });
  // The login page, in English and in Japanese.
  const lp = await ctxA.newPage();
  await lp.goto(base);
  await lp.waitForSelector("#login");
  await shot(lp, "login");
  await lp.close();

  page = await login(ctxA, keyA);
  await page.waitForSelector("#stats #sessions");
  step(`A is logged in; Live shows ${await page.textContent("#sessions")} sessions`);
  await shot(page, "live");

  // Logs: the message a client just sent, newest first.
  await page.click("#nav-logs");
  const row = page.locator("#messages tr.message", { hasText: text });
  await row.waitFor();
  step("the Logs page shows the client's message");
  await shot(page, "logs");

  // Its sender's page, and a ban with a reason.
  await Promise.all([page.waitForURL(/\/console\/users\//), row.locator("a.user").click()]);
  if ((await page.textContent("#user")) !== user) throw new Error("the user link opened another user's page");
  await page.fill("#ban-reason", "spam / スパム");
  await page.click("#ban-submit");
  await page.waitForSelector("#notice");
  await page.waitForSelector('#sanctions tr.sanction[data-kind="ban"]');
  step(`${user} is banned`);
  await shot(page, "user");
  console.log("BANNED");

  // Japanese: every page from now on.
  await page.click("#lang-ja");
  await page.waitForFunction(() => document.documentElement.lang === "ja");
  if (!(await page.textContent("#nav-logs")).includes("ログ")) throw new Error("the Japanese page has no Japanese navigation");
  step("the console speaks Japanese");
  await shot(page, "user-ja");

  // NG words: mask policy, add ばか, try a sentence.
  await page.click("#nav-ngwords");
  await page.selectOption("#policy-select", "mask");
  await page.click("#policy-submit");
  await page.waitForSelector("#notice");
  await page.fill("#add-words", "ばか");
  await page.click("#add-submit");
  await page.waitForSelector('#words tr.word[data-word="ばか"]');
  await page.fill("#try-text", "おまえはﾊﾞｶだ");
  await page.click("#try-submit");
  await page.waitForSelector("#try-outcome");
  const hit = await page.getAttribute("#try-outcome", "data-hit");
  const rejected = await page.getAttribute("#try-outcome", "data-rejected");
  const masked = await page.textContent("#try-masked");
  const entry = await page.textContent("#try-result .entry");
  if (hit !== "true" || rejected !== "false" || !masked.includes("*") || masked.includes("ﾊﾞｶ") || entry !== "ばか") {
    throw new Error(`the try box shows hit=${hit} rejected=${rejected} masked=${masked} entry=${entry}`);
  }
  step(`the try box masks it: ${masked} (matched ${entry}, folded ${await page.textContent("#try-folded")})`);
  await shot(page, "ngwords-ja");

  // Channels: create one with a Japanese title.
  await page.click("#nav-channels");
  await page.fill("#create-name", "lobby");
  await page.fill("#create-title", "ロビー");
  await page.click("#create-submit");
  await page.locator('#channels tr.channel[data-name="lobby"]', { hasText: "ロビー" }).waitFor();
  step("the channel lobby is created");
  await shot(page, "channels-ja");

  await page.goto(url("/console/live"));
  await page.waitForSelector("#stats");
  await shot(page, "live-ja");

  // Tenant B sees nothing of A's.
  const ctxB = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 }, locale: "ja-JP" });
  const b = await login(ctxB, keyB);
  const pagesB = ["/console/live", "/console/logs", "/console/logs?kind=events", `/console/users/${user}`, "/console/ngwords", "/console/channels"];
  for (const p of pagesB) {
    await b.goto(url(p));
    const body = await b.textContent("body");
    for (const s of secrets) {
      if (body.includes(s)) throw new Error(`tenant B sees ${JSON.stringify(s)} of tenant A on ${p}`);
    }
  }
  step("tenant B sees none of tenant A's data");
  await b.goto(url("/console/logs"));
  await shot(b, "tenant-b-logs");
  ok = true;
} catch (e) {
  console.log(`FAIL console: ${e instanceof Error ? e.message : e}`);
  if (page) await shot(page, "failure").catch(() => {});
} finally {
  await browser.close();
}
console.log(ok ? "PASS console" : "FAIL console");
process.exit(ok ? 0 : 1);
