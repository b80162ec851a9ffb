// A scriptable fake Kaiwa server for the unit tests: a WebSocket server on
// 127.0.0.1 whose connections a test drives op by op. It speaks v1 (one op
// per frame) or v2 (envelopes with its own clock) by the URL's version.

import { WebSocketServer } from "ws";

export async function startFake(t) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => wss.once("listening", resolve));
  const port = wss.address().port;
  const waiting = [];
  const pending = [];
  let refuse = false;
  wss.on("connection", (ws, req) => {
    if (refuse) {
      ws.terminate();
      return;
    }
    const c = new FakeConn(ws, req.url.startsWith("/v1/") ? "v1" : "v2");
    const w = waiting.shift();
    if (w) w(c);
    else pending.push(c);
  });
  const srv = {
    url: (version = "v2") => `ws://127.0.0.1:${port}/${version}/ws`,
    /** The next connection, as it arrives. */
    next(timeoutMs = 5000) {
      const c = pending.shift();
      if (c) return Promise.resolve(c);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no connection")), timeoutMs);
        waiting.push((c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
    },
    /** While set, new connections are dropped at once. */
    refuse(on) {
      refuse = on;
    },
    connections: () => wss.clients.size,
  };
  t.after(() => {
    for (const ws of wss.clients) ws.terminate();
    return new Promise((resolve) => wss.close(resolve));
  });
  return srv;
}

/** One client connection of the fake server. */
class FakeConn {
  constructor(ws, version) {
    this.ws = ws;
    this.version = version;
    this.start = performance.now();
    this.peerT = undefined;
    this.peerAt = 0;
    this.frames = []; // every frame received, raw
    this.ops = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
    ws.on("message", (data) => {
      const raw = String(data);
      this.frames.push(raw);
      const v = JSON.parse(raw);
      const ops = version === "v2" ? v.ops : [v];
      if (version === "v2") {
        this.peerT = v.t;
        this.peerAt = performance.now();
      }
      for (const op of ops) {
        op.frame = v;
        const w = this.waiters.shift();
        if (w) w(op);
        else this.ops.push(op);
      }
    });
  }

  clock() {
    return Math.floor(performance.now() - this.start);
  }

  /** The next op the client sent (with .frame, its whole frame). */
  recv(timeoutMs = 5000) {
    const op = this.ops.shift();
    if (op) return Promise.resolve(op);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no op from the client")), timeoutMs);
      this.waiters.push((op) => {
        clearTimeout(timer);
        resolve(op);
      });
    });
  }

  /** Reads the auth op and answers ready. */
  async accept(ready = {}) {
    const auth = await this.recv();
    if (auth.op !== "auth") throw new Error(`first op ${auth.op}, want auth`);
    this.send({ op: "ready", user: "alice", name: "Alice", channels: [], version: this.version, server_time: Date.now(), ...ready });
    return auth;
  }

  /**
   * Sends ops: v1 one frame each, v2 in one envelope stamped with this
   * side's clock and an honest echo, unless env overrides t or e.
   */
  send(ops, env = {}) {
    const list = Array.isArray(ops) ? ops : [ops];
    if (this.version === "v1") {
      for (const op of list) this.ws.send(JSON.stringify(op));
      return;
    }
    const frame = { t: this.clock(), ops: list };
    if (this.peerT !== undefined) frame.e = this.peerT + Math.floor(performance.now() - this.peerAt);
    this.ws.send(JSON.stringify({ ...frame, ...env }));
  }

  raw(data) {
    this.ws.send(data);
  }

  close(code, reason) {
    this.ws.close(code, reason);
  }

  terminate() {
    this.ws.terminate();
  }
}

/** Collects a client's events in order. */
export function record(client, names = ["message", "presence", "state", "resumed", "gap", "error", "joined", "left", "deleted"]) {
  const events = [];
  const waiters = [];
  for (const name of names) {
    client.on(name, (value) => {
      events.push({ name, value });
      for (const w of [...waiters]) w();
    });
  }
  return {
    events,
    /** Waits until an event matching pred was recorded, and returns it. */
    until(pred, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const ev = events.find(pred);
          if (!ev) return false;
          waiters.splice(waiters.indexOf(check), 1);
          clearTimeout(timer);
          resolve(ev);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`no such event; got ${JSON.stringify(events.map((e) => [e.name, e.value?.code ?? e.value?.text ?? e.value]))}`));
        }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
    names: () => events.map((e) => e.name),
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
