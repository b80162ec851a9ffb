// What `npm pack` puts in the package: the built ESM with its type
// declarations, and nothing of the sources, tests or modules. (The build
// itself runs as the prepack script; this lists the files without it.)

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

test("npm pack: dist/ has a .js and a .d.ts of every module, the readme, and nothing else", () => {
  const dir = fileURLToPath(new URL("../..", import.meta.url));
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: dir, encoding: "utf8" });
  const [pkg] = JSON.parse(out);
  assert.equal(pkg.name, "@kaiwa-chat/client");
  const files = pkg.files.map((f) => f.path).sort();
  for (const m of ["index", "client", "errors", "types", "wire"]) {
    assert.ok(files.includes(`dist/${m}.js`), `dist/${m}.js in ${files}`);
    assert.ok(files.includes(`dist/${m}.d.ts`), `dist/${m}.d.ts in ${files}`);
  }
  assert.ok(files.includes("README.md"), `README.md in ${files}`);
  for (const f of files) {
    assert.match(f, /^(dist\/[a-z]+\.(js|d\.ts)|package\.json|README\.md|LICENSE)$/, `${f} should not be in the package`);
  }
});
