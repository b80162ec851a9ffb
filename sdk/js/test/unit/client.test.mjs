// Unit tests of the Client against a fake server: what the real stack
// cannot be made to do on purpose (malformed frames, unknown ops, chosen
// clocks, a reply lost at an exact moment). Everything else is proven by
// the conformance scenarios against the real stack.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, KaiwaError } from "../../dist/index.js";
import { record, sleep, startFake } from "./fake.mjs";

function client(t, srv, opts = {}) {
  const c = new Client({ url: srv.url(opts.version), token: "acme:secret", minBackoffMs: 20, maxBackoffMs: 100, ...opts });
  t.after(() => c.close());
  return c;
}

async function connected(t, opts = {}, ready = {}) {
  const srv = await startFake(t);
  const c = client(t, srv, opts);
  const ev = record(c);
  const p = c.connect();
  const conn = await srv.next();
  const auth = await conn.accept(ready);
  await p;
  return { srv, c, ev, conn, auth };
}

test("v2: the first frame authenticates, stamped with the client's clock and no echo", async (t) => {
  const { auth, c } = await connected(t);
  assert.equal(auth.token, "acme:secret");
  assert.equal(auth.resume, undefined);
  assert.ok(Number.isInteger(auth.frame.t) && auth.frame.t >= 0 && auth.frame.t < 1000, `t=${auth.frame.t}`);
  assert.equal("e" in auth.frame, false);
  assert.equal(c.state, "connected");
});

test("v2 clocks: e echoes the server's t plus the time held; rtt is the clock minus the echo", async (t) => {
  const { c, conn } = await connected(t);
  // The server's clock reads 5000 more than it would, as if it opened long before.
  conn.send({ op: "presence", ch: "lobby", user: "bob", name: "Bob", event: "join" }, { t: 5000 });
  await sleep(60);
  const p = c.ping();
  const ping = await conn.recv();
  const held = ping.frame.e - 5000;
  assert.ok(held >= 55 && held < 200, `held ${held} ms`);
  // The server holds the ping 80 ms but claims it answered at once: the
  // client measures those 80 ms as the round trip.
  await sleep(80);
  conn.send({ op: "pong", ref: ping.ref }, { e: ping.frame.t });
  await p;
  assert.ok(c.rtt >= 78 && c.rtt < 200, `rtt ${c.rtt}`);

  // An honest echo subtracts the time held: the round trip is the wire's.
  const p2 = c.ping();
  const ping2 = await conn.recv();
  await sleep(80);
  conn.send({ op: "pong", ref: ping2.ref }, { e: ping2.frame.t + 80 });
  await p2;
  assert.ok(c.rtt < 40, `rtt ${c.rtt}`);
  const good = c.rtt;

  // Echoes that cannot be right are not measurements: ahead of the
  // client's clock, behind an earlier echo, before its first frame.
  for (const e of [ping2.frame.t + 100000, ping.frame.t, 0]) {
    const p3 = c.ping();
    const op = await conn.recv();
    conn.send({ op: "pong", ref: op.ref }, { e });
    await p3;
    assert.equal(c.rtt, good, `e=${e}`);
  }
});

test("bad input from the server is reported as error events and the connection goes on", async (t) => {
  const { c, ev, conn } = await connected(t);
  conn.raw("not json");
  conn.raw("[1,2]");
  conn.raw('{"t":-1,"ops":[{"op":"pong"}]}');
  conn.raw('{"t":1,"ops":[]}');
  conn.raw('{"t":1,"e":"x","ops":[{"op":"pong"}]}');
  conn.raw('{"t":1,"ops":[5,{"op":"shout"},{"op":"msg","text":"no channel"},{"op":"presence","ch":"lobby"}]}');
  conn.raw(Buffer.from([1, 2, 3]));
  conn.send({ op: "msg", ch: "lobby", id: "m1", seq: 1, prev: 0, from: "bob", name: "Bob", text: "still here", ts: 1 });
  const m = await ev.until((e) => e.name === "message");
  assert.equal(m.value.text, "still here");
  const codes = ev.events.filter((e) => e.name === "error").map((e) => e.value.code);
  assert.deepEqual(codes, ["bad_frame", "bad_frame", "bad_frame", "bad_frame", "bad_frame", "bad_frame", "unknown_op", "bad_frame", "bad_frame", "bad_frame"]);
  for (const e of ev.events.filter((e) => e.name === "error")) assert.ok(e.value instanceof KaiwaError);
  assert.equal(c.state, "connected");
  const p = c.ping();
  const ping = await conn.recv();
  conn.send({ op: "pong", ref: ping.ref });
  await p;
});

test("a listener that throws does not stop the client", async (t) => {
  const { c, ev, conn } = await connected(t);
  const reported = [];
  const saved = globalThis.reportError;
  globalThis.reportError = (e) => reported.push(e);
  t.after(() => (globalThis.reportError = saved));
  c.on("message", () => {
    throw new Error("listener bug");
  });
  conn.send({ op: "msg", ch: "lobby", id: "m1", text: "one", ts: 1 });
  conn.send({ op: "msg", ch: "lobby", id: "m2", text: "two", ts: 2 });
  await ev.until((e) => e.name === "message" && e.value.text === "two");
  assert.equal(reported.length, 2);
  assert.equal(c.state, "connected");
});

test("the server's reconnect: the client waits after_ms and resumes from the last seqs, then every missed message once", async (t) => {
  const { srv, c, ev, conn } = await connected(t, {}, { seqs: { quiet: 40 } });
  conn.send({ op: "msg", ch: "lobby", id: "m5", seq: 5, prev: 0, from: "bob", text: "five", ts: 1 });
  await ev.until((e) => e.name === "message");
  const asked = performance.now();
  conn.send([
    { op: "reconnect", after_ms: 150 },
    { op: "closing", code: 1001, reason: "server shutting down", reconnect_after_ms: 150 },
  ]);
  conn.close(1001, "server shutting down");
  await ev.until((e) => e.name === "state" && e.value === "reconnecting");
  const conn2 = await srv.next();
  assert.ok(performance.now() - asked >= 145, `redialed after ${performance.now() - asked} ms`);
  const auth = await conn2.recv();
  assert.deepEqual(auth.resume, { lobby: 5, quiet: 40 });
  conn2.send([
    { op: "ready", user: "alice", name: "Alice", channels: ["lobby"], version: "v2", server_time: 2 },
    { op: "msg", ch: "lobby", id: "m5", seq: 5, prev: 0, text: "five", ts: 1 }, // a duplicate: dropped
    { op: "msg", ch: "lobby", id: "m7", seq: 7, prev: 5, text: "seven", ts: 2 },
    { op: "resumed", ch: "lobby", recovered: true },
    { op: "resumed", ch: "quiet", recovered: true },
  ]);
  await ev.until((e) => e.name === "resumed" && e.value.channel === "quiet");
  const seen = ev.events
    .filter((e) => ["message", "resumed", "state", "gap"].includes(e.name))
    .map((e) => (e.name === "message" ? e.value.text : e.name === "resumed" ? `resumed ${e.value.channel}` : `${e.name} ${e.value}`));
  assert.deepEqual(seen, ["state connecting", "state connected", "five", "state reconnecting", "state connected", "seven", "resumed lobby", "resumed quiet"]);
  assert.deepEqual(c.lastSeqs(), { lobby: 7 });
});

test("edits and reactions replayed after a resume are emitted once, and do not move the resume position", async (t) => {
  const { srv, c, conn } = await connected(t);
  const ev = record(c, ["message", "edited", "reaction", "resumed"]);
  const edit = { op: "edited", ch: "lobby", id: "m4", seq: 5, from: "bob", text: "fixed", edited_at: 9 };
  conn.send([{ op: "msg", ch: "lobby", id: "m4", seq: 4, prev: 0, from: "bob", text: "fxed", ts: 1 }, edit]);
  await ev.until((e) => e.name === "edited");
  conn.close(1001, "gone");
  const conn2 = await srv.next();
  const auth = await conn2.recv();
  assert.deepEqual(auth.resume, { lobby: 4 });
  conn2.send([
    { op: "ready", user: "alice", name: "Alice", channels: ["lobby"], version: "v2", server_time: 2 },
    edit,
    { op: "reaction", ch: "lobby", id: "m4", seq: 6, user: "carol", emoji: "👍", added: true, reactions: [{ emoji: "👍", count: 1 }] },
    { op: "resumed", ch: "lobby", recovered: true },
  ]);
  await ev.until((e) => e.name === "resumed");
  assert.deepEqual(
    ev.events.map((e) => e.name),
    ["message", "edited", "reaction", "resumed"],
  );
  assert.deepEqual(c.lastSeqs(), { lobby: 4 });
});

test("a message after a gap the server could not replay comes after a gap event", async (t) => {
  const { ev, conn } = await connected(t);
  conn.send([
    { op: "msg", ch: "lobby", id: "a", seq: 3, prev: 0, text: "a", ts: 1 },
    { op: "msg", ch: "lobby", id: "b", seq: 9, prev: 6, text: "b", ts: 2 },
  ]);
  await ev.until((e) => e.name === "message" && e.value.text === "b");
  const seen = ev.events.filter((e) => e.name === "message" || e.name === "gap");
  assert.deepEqual(
    seen.map((e) => e.name),
    ["message", "gap", "message"],
  );
  assert.deepEqual(seen[1].value, { channel: "lobby", after: 3, before: 9 });
});

test("a say in flight when the connection drops is sent again with the same cid, and answered once", async (t) => {
  const { srv, c, conn } = await connected(t);
  const p = c.say("lobby", "hi", { data: { emote: "wave" } });
  const first = await conn.recv();
  assert.equal(first.op, "say");
  assert.equal(typeof first.cid, "string");
  assert.ok(first.cid.length >= 16 && first.cid.length <= 64);
  assert.deepEqual(first.data, { emote: "wave" });
  conn.terminate(); // the answer is lost
  const conn2 = await srv.next();
  await conn2.accept({ channels: ["lobby"] });
  const again = await conn2.recv();
  assert.equal(again.op, "say");
  assert.equal(again.cid, first.cid);
  conn2.send({ op: "ok", ref: again.ref, id: "m9", seq: 9 });
  assert.deepEqual(await p, { id: "m9", seq: 9 });
});

test("an unavailable answer is an unknown outcome: sent again with the same cid", async (t) => {
  const { c, conn } = await connected(t);
  const p = c.say("lobby", "hi");
  const first = await conn.recv();
  conn.send({ op: "error", ref: first.ref, code: "unavailable", message: "bus", cid: first.cid });
  const again = await conn.recv();
  assert.equal(again.cid, first.cid);
  conn.send({ op: "ok", ref: again.ref, id: "m1", seq: 1 });
  assert.deepEqual(await p, { id: "m1", seq: 1 });
});

test("v1: requests made while reconnecting wait, and go out after the channels are joined again", async (t) => {
  const { srv, c, conn } = await connected(t, { version: "v1" });
  const pj = c.join("lobby");
  const join = await conn.recv();
  assert.equal("frame" in join && join.frame.ops, undefined); // a bare op, no envelope
  conn.send({ op: "ok", ref: join.ref, ch: "lobby" });
  await pj;
  srv.refuse(true);
  conn.terminate();
  await sleep(50);
  const a = c.say("lobby", "a");
  const b = c.say("lobby", "b");
  srv.refuse(false);
  const conn2 = await srv.next();
  const auth = await conn2.accept();
  assert.equal(auth.resume, undefined);
  const ops = [await conn2.recv(), await conn2.recv(), await conn2.recv()];
  assert.deepEqual(
    ops.map((o) => [o.op, o.ch, o.text]),
    [
      ["join", "lobby", undefined],
      ["say", "lobby", "a"],
      ["say", "lobby", "b"],
    ],
  );
  assert.ok(ops[1].cid && ops[2].cid && ops[1].cid !== ops[2].cid, "v1 sends carry a cid too");
  for (const o of ops) conn2.send({ op: "ok", ref: o.ref, ...(o.op === "say" ? { id: "id-" + o.text } : { ch: o.ch }) });
  assert.deepEqual(await a, { id: "id-a", seq: 0 });
  assert.deepEqual(await b, { id: "id-b", seq: 0 });
  assert.equal(c.rtt, undefined);
});

test("v2: a channel joined with join() is resumed from its join position, not joined again", async (t) => {
  const { srv, c, conn } = await connected(t);
  const pj = c.join("lobby");
  const join = await conn.recv();
  conn.send({ op: "ok", ref: join.ref, ch: "lobby", seq: 12 });
  await pj;
  conn.terminate();
  const conn2 = await srv.next();
  const auth = await conn2.accept({ channels: ["lobby"] });
  assert.deepEqual(auth.resume, { lobby: 12 });
  const p = c.ping();
  assert.equal((await conn2.recv()).op, "ping"); // no join went before it
  p.catch(() => {});
});

test("a refused token closes the client with the server's code, without reconnecting", async (t) => {
  const srv = await startFake(t);
  const c = client(t, srv);
  const ev = record(c);
  const p = c.connect();
  const conn = await srv.next();
  await conn.recv();
  conn.send({ op: "error", code: "token_expired", message: "token expired" });
  conn.close(4001, "unauthorized");
  await assert.rejects(p, (e) => e instanceof KaiwaError && e.code === "token_expired");
  assert.equal(c.state, "closed");
  assert.deepEqual(ev.names(), ["state", "error", "state"]);
  await sleep(100);
  assert.equal(srv.connections(), 0);
});

test("getToken: asked when there is no token and when the server refuses one", async (t) => {
  const srv = await startFake(t);
  const tokens = ["first", "second", "third"];
  const c = new Client({ url: srv.url(), getToken: async () => tokens.shift(), minBackoffMs: 10, maxBackoffMs: 20 });
  t.after(() => c.close());
  const ev = record(c);
  const p = c.connect();
  const conn = await srv.next();
  assert.equal((await conn.recv()).token, "first");
  conn.send({ op: "error", code: "unauthorized", message: "unknown token" });
  conn.close(4001, "unauthorized");
  const conn2 = await srv.next();
  assert.equal((await conn2.accept()).token, "second");
  await p;
  // Revoked during the session: a new token before the next dial.
  conn2.send({ op: "closing", code: 4001, reason: "token revoked" });
  conn2.close(4001, "token revoked");
  const conn3 = await srv.next();
  assert.equal((await conn3.accept()).token, "third");
  await ev.until((e) => e.name === "state" && e.value === "connected" && ev.events.filter((x) => x.value === "connected").length === 2);
  assert.equal(ev.events.filter((e) => e.name === "error").length, 0);
});

test("getToken that throws closes the client with the server's refusal", async (t) => {
  const srv = await startFake(t);
  let calls = 0;
  const c = new Client({
    url: srv.url(),
    token: "old",
    getToken: async () => {
      calls++;
      throw new Error("game server down");
    },
  });
  t.after(() => c.close());
  const ev = record(c);
  const p = c.connect();
  const conn = await srv.next();
  await conn.recv();
  conn.send({ op: "error", code: "token_expired", message: "token expired" });
  conn.close(4001, "unauthorized");
  await assert.rejects(p, (e) => e.code === "token_expired" && e.cause?.message === "game server down");
  assert.equal(calls, 1);
  assert.equal((await ev.until((e) => e.name === "error")).value.code, "token_expired");
});

test("kicked or banned (4003): the client closes and says why", async (t) => {
  const { c, ev, conn } = await connected(t);
  conn.send({ op: "closing", code: 4003, reason: "banned until lifted: spam" });
  conn.close(4003, "banned until lifted: spam");
  const err = await ev.until((e) => e.name === "error");
  assert.equal(err.value.code, "banned");
  assert.equal(err.value.closeCode, 4003);
  await ev.until((e) => e.name === "state" && e.value === "closed");
  assert.equal(c.state, "closed");
});

test("requests are time-bounded, cancellable, bounded while waiting, and checked for size", async (t) => {
  const { srv, c, conn } = await connected(t, { timeoutMs: 100, maxQueued: 2 });
  const started = performance.now();
  await assert.rejects(c.join("lobby"), (e) => e.code === "timeout");
  assert.ok(performance.now() - started < 1000);
  await conn.recv();

  const ac = new AbortController();
  const p = c.history("lobby", { signal: ac.signal, limit: 5 });
  const h = await conn.recv();
  assert.deepEqual([h.op, h.ch, h.limit], ["history", "lobby", 5]);
  ac.abort(new Error("the player left the screen"));
  await assert.rejects(p, { message: "the player left the screen" });
  // The late answer changes nothing.
  conn.send({ op: "history", ref: h.ref, ch: "lobby", messages: [] });

  const sayTimeout = c.say("lobby", "x", { cid: "my-cid", timeoutMs: 50 });
  await assert.rejects(sayTimeout, (e) => e.code === "timeout" && e.cid === "my-cid");

  await assert.rejects(c.say("lobby", "x".repeat(20000)), (e) => e.code === "too_large");

  srv.refuse(true);
  conn.terminate();
  await new Promise((resolve) => c.on("state", (s) => s === "reconnecting" && resolve()));
  const waiting = [c.ping({ timeoutMs: 5000 }), c.ping({ timeoutMs: 5000 })];
  await assert.rejects(c.ping(), (e) => e.code === "unavailable");
  c.close();
  for (const w of waiting) await assert.rejects(w, (e) => e.code === "closed");
});

test("history reads messages, oldest first, and says where the next page starts", async (t) => {
  const { c, conn } = await connected(t);
  const p = c.history("lobby", { limit: 2 });
  const h = await conn.recv();
  conn.send({
    op: "history",
    ref: h.ref,
    ch: "lobby",
    messages: [
      { op: "msg", ch: "lobby", id: "m1", seq: 1, prev: 0, from: "bob", name: "Bob", text: "one", ts: 10 },
      { op: "msg", ch: "lobby", id: "m2", seq: 2, prev: 1, text: "news", ts: 20, system: true, data: { k: 1 } },
    ],
  });
  const page = await p;
  assert.equal(page.next, "m1");
  assert.deepEqual(page.messages[0], { channel: "lobby", id: "m1", seq: 1, prev: 0, user: "bob", name: "Bob", text: "one", system: false, time: 10 });
  assert.deepEqual(page.messages[1], { channel: "lobby", id: "m2", seq: 2, prev: 1, text: "news", system: true, time: 20, data: { k: 1 } });
});

test("reconnect attempts back off with full jitter, within the bounds", async (t) => {
  const srv = await startFake(t);
  srv.refuse(true);
  const c = new Client({ url: srv.url(), token: "x", minBackoffMs: 10, maxBackoffMs: 40 });
  t.after(() => c.close());
  const p = c.connect({ timeoutMs: 600 });
  await assert.rejects(p, (e) => e.code === "timeout");
  assert.equal(c.state, "closed");
});

test("a connection that stops answering is taken for dead after the ping interval", async (t) => {
  const { srv, ev, conn } = await connected(t, { pingIntervalMs: 100 });
  const ping = await conn.recv(); // after 100 ms of silence
  assert.equal(ping.op, "ping");
  assert.equal(ping.ref, undefined);
  // No answer: within about two intervals the client dials again.
  await srv.next(1000);
  await ev.until((e) => e.name === "state" && e.value === "reconnecting");
});

test("options are checked at construction", () => {
  assert.throws(() => new Client({ url: "wss://h/v2/ws?token=x", token: "t" }), TypeError);
  assert.throws(() => new Client({ url: "wss://h/v3/ws", token: "t" }), TypeError);
  assert.throws(() => new Client({ url: "https://h/v2/ws", token: "t" }), TypeError);
  assert.throws(() => new Client({ url: "wss://h/v2/ws" }), TypeError);
  assert.equal(new Client({ url: "wss://h/v1/ws", token: "t" }).version, "v1");
});
