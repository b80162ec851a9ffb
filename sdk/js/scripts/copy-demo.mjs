// Copies the built SDK (dist/*.js) into demo/kaiwa/, where the demo page
// imports it from and nginx serves it (/demo/kaiwa/index.js).
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";

const dist = new URL("../dist/", import.meta.url);
const to = new URL("../demo/kaiwa/", import.meta.url);
rmSync(to, { recursive: true, force: true });
mkdirSync(to, { recursive: true });
for (const f of readdirSync(dist)) {
  if (f.endsWith(".js")) copyFileSync(new URL(f, dist), new URL(f, to));
}
