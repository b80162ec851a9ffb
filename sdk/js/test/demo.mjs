// Drives the demo page (demo/) in headless Chromium for the Go test
// internal/e2e TestDemoPage, against a real kaiwa dev stack: two players
// open the page in two browser contexts, connect with their tokens and
// join a channel; the first types a message, and the second's page must
// show it. Screenshots of both pages are saved. Prints PASS or FAIL lines
// and exits 1 on failure.
//
//   KAIWA_DEMO_URL      the page, https://HOST/demo/ (self-signed: accepted)
//   KAIWA_DEMO_TOKENS   {"alice": TOKEN, "bob": TOKEN}: the first types
//   KAIWA_DEMO_CHANNEL  the channel both join
//   KAIWA_DEMO_SHOTS    the directory the screenshots go to (USER.png)
//   KAIWA_CHROMIUM      Chromium (default /usr/bin/chromium)

import { join } from "node:path";

import { forwardConsole, launch } from "./browser.mjs";

const url = process.env.KAIWA_DEMO_URL;
const tokens = Object.entries(JSON.parse(process.env.KAIWA_DEMO_TOKENS || "{}"));
const channel = process.env.KAIWA_DEMO_CHANNEL || "world";
const shots = process.env.KAIWA_DEMO_SHOTS;
if (!url || tokens.length !== 2 || !shots) {
  console.error("demo: set KAIWA_DEMO_URL, KAIWA_DEMO_TOKENS (two users) and KAIWA_DEMO_SHOTS");
  process.exit(2);
}

const step = (what) => console.log(`demo: ${what}`);

/** Opens the demo page as one player, connected and in the channel. */
async function open(browser, user, token) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 620 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  forwardConsole(page, `[${user}]`);
  await page.goto(url);
  await page.fill("#token", token);
  await page.click("#connect");
  await page.waitForSelector("#state.connected");
  await page.fill("#channel", channel);
  await page.click("#join");
  await page.waitForSelector(`#channels li.current[data-channel="${channel}"]`);
  step(`${user} connected and joined ${channel}`);
  return page;
}

const browser = await launch("--ignore-certificate-errors");
let ok = false;
const pages = [];
try {
  const [[alice, aliceToken], [bob, bobToken]] = tokens;
  const a = await open(browser, alice, aliceToken);
  pages.push([alice, a]);
  const b = await open(browser, bob, bobToken);
  pages.push([bob, b]);

  // The first sees the second arrive.
  await a.waitForSelector(`#presence li[data-user="${bob}"]`);
  step(`${alice}'s page shows ${bob} here`);

  const text = `hello from ${alice} at ${new Date().toISOString()}`;
  await a.fill("#text", text);
  await a.press("#text", "Enter");
  await b.locator("#log li", { hasText: text }).waitFor();
  step(`${bob}'s page shows ${alice}'s message`);
  await a.locator("#log li", { hasText: text }).waitFor();

  for (const [, p] of pages) await p.waitForFunction(() => /^RTT \d+ ms$/.test(document.getElementById("rtt").textContent));
  step("both pages show an RTT");
  ok = true;
} catch (e) {
  console.log(`FAIL demo: ${e instanceof Error ? e.message : e}`);
} finally {
  for (const [user, p] of pages) {
    const path = join(shots, `${user}.png`);
    await p.screenshot({ path }).then(
      () => step(`screenshot ${path}`),
      (e) => console.log(`demo: no screenshot of ${user}: ${e.message}`),
    );
  }
  await browser.close();
}
console.log(ok ? "PASS demo" : "FAIL demo");
process.exit(ok ? 0 : 1);
