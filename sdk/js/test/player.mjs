// The TypeScript SDK's conformance player: plays the scenarios of
// sdk/conformance/scenarios.json with the Client against the control
// server, step by step as the Go runner (sdk/conformance/runner_test.go)
// does with client.Session. It runs unchanged in Node (conformance.mjs)
// and in a browser page (browser-conformance.mjs): it needs only fetch,
// AbortSignal and the Client class it is given.

const STEP_MS = 15_000;

/**
 * Plays every scenario whose name matches `only`, once per version it
 * lists, and returns the results. `log` receives one line per scenario.
 */
export async function playAll({ Client, KaiwaError, scenarios, control, only = "", log = () => {} }) {
  const re = new RegExp(only);
  const results = [];
  for (const sc of scenarios) {
    if (!re.test(sc.name)) continue;
    for (const version of sc.versions) {
      const name = `${version}/${sc.name}`;
      const started = Date.now();
      let error;
      try {
        await play({ Client, KaiwaError, control }, sc, version);
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      const secs = ((Date.now() - started) / 1000).toFixed(2);
      results.push({ name, ok: !error, error, secs });
      log(error ? `FAIL ${name} (${secs}s): ${error}` : `PASS ${name} (${secs}s)`);
    }
  }
  return results;
}

/** Calls the control server. */
async function call(control, path, body, signal) {
  const resp = await fetch(control + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  const text = await resp.text();
  if (resp.status !== 200) throw new Error(`control ${path}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One client of a scenario: a Client and the events it received and nobody consumed yet. */
class Player {
  constructor(client, proxy) {
    this.c = client;
    this.proxy = proxy;
    this.events = [];
    this.wake = () => {};
    const add = (op) => (value) => {
      this.events.push({ op, value });
      this.wake();
    };
    for (const op of ["message", "presence", "state", "resumed", "error", "gap", "edited", "deleted", "reaction", "read", "typing"]) {
      client.on(op, add(op));
    }
  }

  /** Waits for the first unconsumed event that match accepts, removes it and returns it; the rest stay. */
  async take(signal, match) {
    for (;;) {
      const i = this.events.findIndex(match);
      if (i >= 0) return this.events.splice(i, 1)[0];
      if (signal.aborted) throw signal.reason;
      await new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          this.wake = () => {};
          resolve();
        };
        const timer = setTimeout(done, 50);
        this.wake = done;
        signal.addEventListener("abort", done);
      });
    }
  }

  pending(op) {
    return this.events.filter((e) => e.op === op);
  }
}

function setupUsers(setup) {
  return (setup && setup.users) || {};
}

async function play(env, sc, version) {
  const { control } = env;
  await call(control, "/begin", { scenario: `${sc.name} ${version}`, setup: sc.setup });
  const clients = new Map();
  const sayIDs = new Map();
  const labels = new Map(); // a say's label: the message's id and seq
  try {
    for (let i = 0; i < sc.steps.length; i++) {
      const step = sc.steps[i];
      const signal = AbortSignal.timeout(STEP_MS);
      try {
        await playStep(env, sc, version, clients, sayIDs, labels, i, step, signal);
      } catch (e) {
        const why = e instanceof Error ? (e.code ? `${e.code}: ${e.message}` : e.message) : String(e);
        throw new Error(`step ${i} ${JSON.stringify(step)}: ${why}`);
      }
    }
  } finally {
    for (const p of clients.values()) p.c.close();
  }
}

/** Calls f until it returns true, every 100 ms, until signal ends: what follows the log (unread counts, search) lags by a moment. */
async function poll(signal, f, why) {
  for (;;) {
    if (await f()) return;
    if (signal.aborted) throw new Error(why());
    await sleep(100);
  }
}

async function playStep(env, sc, version, clients, sayIDs, labels, i, st, signal) {
  const { Client, KaiwaError, control } = env;
  const kind = Object.keys(st)[0];
  const name = typeof st[kind] === "string" ? st[kind] : undefined;
  const p = clients.get(name);
  const need = () => {
    if (!p) throw new Error(`no client ${JSON.stringify(name)}`);
    return p;
  };
  const wantFail = (err) => {
    if (!st.fails) {
      if (err) throw err;
      return;
    }
    if (!(err instanceof KaiwaError) || err.code !== st.fails) {
      throw new Error(`got ${err ? `${err.code ?? ""} ${err.message}` : "success"}, want ${st.fails}`);
    }
  };
  const msg = () => {
    const m = labels.get(st.msg);
    if (!m) throw new Error(`no message labelled ${JSON.stringify(st.msg)}`);
    return m;
  };
  const attempt = async (f) => {
    try {
      await f();
    } catch (e) {
      return wantFail(e);
    }
    return wantFail(undefined);
  };
  switch (kind) {
    case "connect": {
      const u = setupUsers(sc.setup)[st.as] || {};
      const req = { user: st.as, join: u.join ?? null, publish: u.publish ?? null, ttl_seconds: st.ttl_seconds || 600 };
      if (st.token === "forged") req.forged = true;
      if (st.token === "expired") req.expired = true;
      const { token } = await call(control, "/token", req, signal);
      const where = await call(control, "/connect-url", { version }, signal);
      const c = new Client({ url: where.url, token, reconnect: true, minBackoffMs: 50, maxBackoffMs: 1000 });
      const np = new Player(c, where.proxy);
      try {
        await c.connect({ signal });
      } catch (e) {
        c.close();
        return wantFail(e);
      }
      if (st.fails) {
        c.close();
        throw new Error(`connected, want ${st.fails}`);
      }
      clients.set(name, np);
      return;
    }
    case "join":
      return attempt(() => need().c.join(st.ch, { signal, timeoutMs: STEP_MS }));
    case "leave":
      return attempt(() => need().c.leave(st.ch, { signal, timeoutMs: STEP_MS }));
    case "say": {
      const c = need().c;
      const options = { signal, timeoutMs: STEP_MS };
      if (st.cid) options.cid = st.cid;
      if (st.reply_to) options.replyTo = labels.get(st.reply_to)?.id;
      if (st.attachments) options.attachments = st.attachments;
      let sent;
      try {
        sent = await c.say(st.ch, st.text, options);
      } catch (e) {
        return wantFail(e);
      }
      if (st.fails) return wantFail(undefined);
      sayIDs.set(i, sent.id);
      if (st.label) labels.set(st.label, sent);
      if (st.same_as !== undefined && sayIDs.get(st.same_as) !== sent.id) {
        throw new Error(`message id ${sent.id}, want ${sayIDs.get(st.same_as)} (step ${st.same_as}'s)`);
      }
      return;
    }
    case "say-many": {
      const c = need().c;
      for (let n = 0; n < st.count; n++) await c.say(st.ch, `${st.prefix}${n}`, { signal, timeoutMs: STEP_MS });
      return;
    }
    case "dm":
      return attempt(() => need().c.dm(st.to, st.text, { signal, timeoutMs: STEP_MS }));
    case "history": {
      const page = await need().c.history(st.ch, { limit: st.limit, signal, timeoutMs: STEP_MS });
      const texts = page.messages.map((m) => m.text);
      if (st.texts && JSON.stringify(texts) !== JSON.stringify(st.texts)) {
        throw new Error(`history ${JSON.stringify(texts)}, want ${JSON.stringify(st.texts)}`);
      }
      if (st.messages) {
        if (page.messages.length !== st.messages.length) {
          throw new Error(`history ${JSON.stringify(texts)}, want ${st.messages.length} messages`);
        }
        page.messages.forEach((m, n) => {
          try {
            matchMessage(m, st.messages[n], labels);
          } catch (e) {
            throw new Error(`history[${n}]: ${e.message}`);
          }
        });
      }
      return;
    }
    case "edit":
      return attempt(() => need().c.edit(st.ch, msg().id, st.text, { signal, timeoutMs: STEP_MS }));
    case "delete":
      return attempt(() => need().c.delete(st.ch, msg().id, { signal, timeoutMs: STEP_MS }));
    case "react":
      return attempt(() => need().c.react(st.ch, msg().id, st.emoji, { signal, timeoutMs: STEP_MS }));
    case "unreact":
      return attempt(() => need().c.unreact(st.ch, msg().id, st.emoji, { signal, timeoutMs: STEP_MS }));
    case "read":
      return attempt(() => need().c.read(st.ch, msg().seq, { signal, timeoutMs: STEP_MS }));
    case "unread": {
      const pl = need();
      let got;
      await poll(
        signal,
        async () => {
          const counts = await pl.c.unread(st.ch, { signal, timeoutMs: STEP_MS });
          got = counts[st.ch]?.count;
          return got === st.count;
        },
        () => `unread count of ${st.ch} is ${got}, want ${st.count}`,
      );
      return;
    }
    case "block":
      return attempt(() => need().c.block(st.user, { signal, timeoutMs: STEP_MS }));
    case "unblock":
      return attempt(() => need().c.unblock(st.user, { signal, timeoutMs: STEP_MS }));
    case "typing":
      return attempt(() => need().c.typing(st.ch, { signal, timeoutMs: STEP_MS }));
    case "search": {
      const pl = need();
      const options = { signal, timeoutMs: STEP_MS };
      if (st.ch) options.channel = st.ch;
      if (st.limit) options.limit = st.limit;
      if (st.fails) return attempt(() => pl.c.search(st.q, options));
      let texts;
      await poll(
        signal,
        async () => {
          const page = await pl.c.search(st.q, options);
          texts = page.messages.map((m) => m.text);
          return JSON.stringify(texts) === JSON.stringify(st.texts);
        },
        () => `search ${JSON.stringify(st.q)} found ${JSON.stringify(texts)}, want ${JSON.stringify(st.texts)}`,
      );
      return;
    }
    case "expect":
      return expect(need(), st, signal, labels);
    case "quiet": {
      const pl = need();
      await pl.c.ping({ signal, timeoutMs: STEP_MS });
      for (const op of ["message", "edited", "deleted", "reaction"]) {
        const evs = pl.pending(op);
        if (evs.length > 0) {
          throw new Error(`${evs.length} ${op} events not expected, the first ${JSON.stringify(evs[0].value)}`);
        }
      }
      return;
    }
    case "rtt": {
      // Up to five pings: one sample may carry a scheduling hiccup.
      const pl = need();
      let rtt;
      for (let i = 0; i < 5; i++) {
        await pl.c.ping({ signal, timeoutMs: STEP_MS });
        rtt = pl.c.rtt;
        if (rtt !== undefined && rtt >= st.min_ms && rtt <= st.max_ms) return;
      }
      throw new Error(`RTT ${rtt} ms after five pings, want ${st.min_ms}–${st.max_ms} ms`);
    }
    case "wait-ms":
      await sleep(st["wait-ms"]);
      return;
    case "cut":
    case "restore":
      await call(control, `/proxy/${kind}`, { proxy: need().proxy }, signal);
      return;
    case "delay":
      await call(control, "/proxy/delay", { proxy: need().proxy, ms: st.ms }, signal);
      return;
    case "system":
      await call(control, "/system", { ch: st.system, text: st.text }, signal);
      return;
    case "system-many":
      await call(control, "/system-many", { ch: st["system-many"], prefix: st.prefix, count: st.count }, signal);
      return;
    case "revoke":
      await call(control, "/revoke", { user: st.revoke }, signal);
      return;
    case "kill-ua":
    case "drain-ua":
      await call(control, `/${kind}`, { version }, signal);
      return;
    case "close":
      need().c.close();
      return;
  }
  throw new Error(`unknown step ${JSON.stringify(kind)}`);
}

/** Whether reactions ([{emoji, count}]) are exactly the counts of want ({emoji: count}). */
function sameCounts(reactions, want) {
  const got = Object.fromEntries((reactions ?? []).map((r) => [r.emoji, r.count]));
  const keys = Object.keys(want ?? {});
  return Object.keys(got).length === keys.length && keys.every((k) => got[k] === want[k]);
}

/** What the Go runner's matchMessage compares: fmt.Sprint of each named field, and the players' fields. */
function matchMessage(m, want, labels) {
  const got = { ch: m.channel, text: m.text, from: m.user ?? "", system: m.system, edited: (m.editedAt ?? 0) !== 0 };
  const fail = (k, w) => {
    throw new Error(`message ${k}: want ${JSON.stringify(w)} (message ${JSON.stringify(m)})`);
  };
  for (const [k, w] of Object.entries(want)) {
    switch (k) {
      case "reply_to":
        if (m.replyTo !== labels.get(w)?.id) fail(k, w);
        continue;
      case "quote":
        if (!m.quote || (m.quote.user ?? "") !== w.from || m.quote.text !== w.text) fail(k, w);
        continue;
      case "attachments":
        if (JSON.stringify((m.attachments ?? []).map((a) => a.url)) !== JSON.stringify(w)) fail(k, w);
        continue;
      case "reactions":
        if (!sameCounts(m.reactions, w)) fail(k, w);
        continue;
    }
    if (String(got[k]) !== String(w)) {
      throw new Error(`message ${k} = ${JSON.stringify(got[k])}, want ${JSON.stringify(w)} (message ${JSON.stringify(m)})`);
    }
  }
}

async function expect(pl, st, signal, labels) {
  const wait = async (what, match) => {
    try {
      return await pl.take(signal, match);
    } catch (e) {
      throw new Error(`no ${what}: ${e instanceof Error ? e.message : e}`);
    }
  };
  if (st.message) {
    const ev = await wait("message", (e) => e.op === "message");
    return matchMessage(ev.value, st.message, labels);
  }
  if (st.messages) {
    const want = [...(st.messages.texts ?? [])];
    for (let n = 0; n < (st.messages.count ?? 0); n++) want.push(`${st.messages.prefix}${n}`);
    for (let n = 0; n < want.length; n++) {
      const ev = await wait(`message ${n} of ${want.length} (${JSON.stringify(want[n])})`, (e) => e.op === "message" && e.value.channel === st.messages.ch);
      if (ev.value.text !== want[n]) {
        throw new Error(`message ${n} of ${want.length} is ${JSON.stringify(ev.value.text)}, want ${JSON.stringify(want[n])}`);
      }
    }
    return;
  }
  if (st.presence) {
    const ev = await wait("presence", (e) => e.op === "presence");
    const p = ev.value;
    if (p.channel !== st.presence.ch || p.user !== st.presence.user || p.event !== st.presence.event) {
      throw new Error(`presence ${JSON.stringify(p)}, want ${JSON.stringify(st.presence)}`);
    }
    return;
  }
  if (st.state) {
    await wait(`state ${st.state} (now ${pl.c.state})`, (e) => e.op === "state" && e.value === st.state);
    return;
  }
  if (st.resumed) {
    const ev = await wait("resumed", (e) => e.op === "resumed" && e.value.channel === st.resumed.ch);
    if (ev.value.recovered !== st.resumed.recovered) {
      throw new Error(`resumed recovered ${ev.value.recovered}, want ${st.resumed.recovered}`);
    }
    return;
  }
  for (const op of ["edited", "deleted", "reaction"]) {
    const w = st[op];
    if (!w) continue;
    const id = labels.get(w.msg)?.id;
    const ev = await wait(`${op} event about ${w.msg} (${id})`, (e) => e.op === op && e.value.channel === w.ch && e.value.id === id);
    const v = ev.value;
    if (op === "edited" && (v.text !== w.text || !v.editedAt)) {
      throw new Error(`edited ${JSON.stringify(v)}, want the text ${JSON.stringify(w.text)}`);
    }
    if (
      op === "reaction" &&
      (v.user !== w.user || v.emoji !== w.emoji || (w.added !== undefined && v.added !== w.added) || !sameCounts(v.reactions, w.counts))
    ) {
      throw new Error(`reaction ${JSON.stringify(v)}, want ${JSON.stringify(w)}`);
    }
    return;
  }
  if (st.read) {
    const seq = labels.get(st.read.msg)?.seq;
    await wait(`read of ${st.read.ch} up to ${seq}`, (e) => e.op === "read" && e.value.channel === st.read.ch && e.value.seq === seq);
    return;
  }
  if (st.typing) {
    const ev = await wait(`typing in ${st.typing.ch}`, (e) => e.op === "typing" && e.value.channel === st.typing.ch);
    if (ev.value.user !== st.typing.user) throw new Error(`typing by ${ev.value.user}, want ${st.typing.user}`);
    return;
  }
  if (st.unread) {
    const got = pl.c.ready?.unread?.[st.unread.ch];
    if (!got || got.count !== st.unread.count) {
      throw new Error(`the latest ready's unread count of ${st.unread.ch} is ${JSON.stringify(got)}, want ${st.unread.count}`);
    }
    return;
  }
  if (st.error) {
    await wait(`error ${st.error.code}`, (e) => e.op === "error" && e.value.code === st.error.code);
    return;
  }
  throw new Error("unknown expectation");
}
