// The TypeScript SDK's conformance runner in a real browser: serves a page
// that loads the built ESM (dist/) and the same player as the Node runner
// (player.mjs) from 127.0.0.1, opens it in headless Chromium, and plays
// sdk/conformance/scenarios.json there against the control server (which
// answers CORS for it). Prints a line per scenario and version, and exits 1
// on any failure. Environment as for conformance.mjs, plus KAIWA_CHROMIUM.

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

import { forwardConsole, launch } from "./browser.mjs";

const control = process.env.KAIWA_CONFORMANCE_CONTROL;
if (!control) {
  console.error("browser conformance: KAIWA_CONFORMANCE_CONTROL is not set (the Go harness sets it: go test ./sdk/conformance)");
  process.exit(2);
}
const file =
  process.env.KAIWA_CONFORMANCE_SCENARIOS ||
  fileURLToPath(new URL("../../conformance/scenarios.json", import.meta.url));
const { scenarios } = JSON.parse(readFileSync(file, "utf8"));

const page = `<!doctype html>
<meta charset="utf-8">
<title>Kaiwa SDK conformance</title>
<link rel="icon" href="data:,">
<script type="module">
import { Client, KaiwaError } from "/dist/index.js";
import { playAll } from "/test/player.mjs";
window.kaiwaConformance = (args) => playAll({ Client, KaiwaError, ...args, log: (line) => window.kaiwaLog(line) });
</script>`;

// The page and the modules it imports; nothing else is served.
const root = new URL("..", import.meta.url);
const server = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  try {
    if (path === "/") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(page);
      return;
    }
    if (/^\/(dist\/[a-z]+\.js|test\/player\.mjs)$/.test(path)) {
      const body = await readFile(new URL("." + path, root));
      res.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8" });
      res.end(body);
      return;
    }
  } catch {
    // not there: 404
  }
  res.writeHead(404);
  res.end();
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

const guard = setTimeout(() => {
  console.log("FAIL browser conformance: no result within 4.5 minutes");
  process.exit(1);
}, 270_000);

let failed = 1;
const browser = await launch();
try {
  const tab = await browser.newPage();
  forwardConsole(tab, "[chromium]");
  await tab.exposeFunction("kaiwaLog", (line) => console.log(line));
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  await tab.waitForFunction(() => typeof window.kaiwaConformance === "function");
  const results = await tab.evaluate((args) => window.kaiwaConformance(args), {
    scenarios,
    control,
    only: process.env.KAIWA_CONFORMANCE_ONLY || "",
  });
  failed = results.filter((r) => !r.ok).length;
  console.log(`chromium ${browser.version()}: ${results.length - failed} passed, ${failed} failed`);
  if (results.length === 0) failed = 1;
} catch (e) {
  console.log(`FAIL browser conformance: ${e instanceof Error ? e.message : e}`);
} finally {
  clearTimeout(guard);
  await browser.close();
  server.close();
}
process.exit(failed > 0 ? 1 : 0);
