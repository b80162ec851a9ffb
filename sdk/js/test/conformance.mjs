// The TypeScript SDK's conformance runner in Node: plays
// sdk/conformance/scenarios.json against the control server named by
// KAIWA_CONFORMANCE_CONTROL (see sdk/conformance/README.md), with the
// built SDK (dist/) and, on Node 20, the ws package as its WebSocket.
// Prints a line per scenario and version, and exits 1 on any failure.
//
//   KAIWA_CONFORMANCE_CONTROL=http://127.0.0.1:PORT \
//   KAIWA_CONFORMANCE_SCENARIOS=../conformance/scenarios.json \
//   [KAIWA_CONFORMANCE_ONLY=regexp] node test/conformance.mjs

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { Client, KaiwaError } from "../dist/index.js";
import { playAll } from "./player.mjs";

const control = process.env.KAIWA_CONFORMANCE_CONTROL;
if (!control) {
  console.error("conformance: KAIWA_CONFORMANCE_CONTROL is not set (the Go harness sets it: go test ./sdk/conformance)");
  process.exit(2);
}
const file =
  process.env.KAIWA_CONFORMANCE_SCENARIOS ||
  fileURLToPath(new URL("../../conformance/scenarios.json", import.meta.url));
const { scenarios } = JSON.parse(readFileSync(file, "utf8"));
const results = await playAll({
  Client,
  KaiwaError,
  scenarios,
  control,
  only: process.env.KAIWA_CONFORMANCE_ONLY || "",
  log: (line) => console.log(line),
});
const failed = results.filter((r) => !r.ok).length;
console.log(`node ${process.version}: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 || results.length === 0 ? 1 : 0);
