// Headless Chromium for the SDK's browser tests, driven by playwright-core:
// Debian's /usr/bin/chromium (or $KAIWA_CHROMIUM), never a browser of
// Playwright's own.

import { chromium } from "playwright-core";

export const chromiumPath = process.env.KAIWA_CHROMIUM || "/usr/bin/chromium";

/** Launches headless Chromium; extra args are added to the usual ones. */
export function launch(...args) {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      ...args,
    ],
  });
}

/** Prints what a page logs and throws, prefixed, so that a failure shows its cause. */
export function forwardConsole(page, prefix) {
  page.on("console", (m) => console.log(`${prefix} console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.log(`${prefix} page error: ${e.message}`));
}
