import { KaiwaError, refusedCodes, tokenCodes } from "./errors.js";
import type {
  ClientEvents,
  ClientOptions,
  ConnectOptions,
  HistoryOptions,
  HistoryPage,
  Message,
  Ready,
  RequestOptions,
  SayOptions,
  SearchPage,
  Sent,
  SentDirect,
  State,
  Unread,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
import {
  Clock,
  type Codec,
  MAX_FRAME,
  newCID,
  now,
  type Op,
  readEdited,
  readError,
  readMessage,
  readMessages,
  readReaction,
  readReady,
  readUnread,
  urlVersion,
  utf8Length,
  V1Codec,
  V2Codec,
} from "./wire.js";

/** The defaults of {@link ClientOptions}. */
export const defaults = {
  reconnect: true,
  minBackoffMs: 250,
  maxBackoffMs: 30_000,
  connectTimeoutMs: 10_000,
  timeoutMs: 10_000,
  maxQueued: 100,
  pingIntervalMs: 20_000,
} as const;

/** The default bound of {@link Client.connect}. */
export const defaultConnectTimeoutMs = 30_000;

type Settings = Required<Omit<ClientOptions, "token" | "getToken" | "resume" | "WebSocket">> &
  Pick<ClientOptions, "getToken" | "WebSocket">;

/** A request: waiting for a connection (queued), or sent and waiting for its reply (in flight). */
interface Request {
  op: Record<string, unknown>;
  /** The op of the reply that answers it. */
  want: string;
  resolve: (reply: Op) => void;
  reject: (err: unknown) => void;
  /** Set for the client's own requests of one connection (rejoins): never queued or resent. */
  bound?: Conn;
  done: boolean;
  ref?: string;
  conn?: Conn;
  /** The last `unavailable` answer, while it is being resent. */
  lastError?: KaiwaError;
  cleanup: () => void;
}

/** One WebSocket and what belongs to it alone. */
class Conn {
  codec: Codec | undefined; // set when the socket opens
  ready = false;
  dead = false;
  refs = 0;
  /** Requests sent on this connection and not answered yet, in the order sent. */
  readonly inflight = new Map<string, Request>();
  closing: { code: number; reason: string; reconnectAfterMs?: number } | undefined;
  /** The wait the server's "reconnect" op asked for. */
  reconnectAfterMs: number | undefined;
  lastRx = now();
  pingSentAt: number | undefined;
  timers: Array<ReturnType<typeof setTimeout>> = [];
  intervals: Array<ReturnType<typeof setInterval>> = [];

  constructor(readonly ws: WebSocketLike) {}

  /** Stops the timers and detaches from the socket, then closes it. */
  shut(code = 1000): void {
    this.dead = true;
    for (const t of this.timers) clearTimeout(t);
    for (const t of this.intervals) clearInterval(t);
    this.ws.onopen = null;
    this.ws.onmessage = null;
    this.ws.onclose = null;
    this.ws.onerror = () => {}; // the ws package throws on an error event nobody listens to
    try {
      this.ws.close(code);
    } catch {
      // already closed, or never opened
    }
  }

  write(op: Record<string, unknown>): void {
    if (!this.codec) return;
    try {
      this.ws.send(this.codec.encode(op));
    } catch {
      // the socket is closing: its close requeues what was in flight
    }
  }
}

type Listener<K extends keyof ClientEvents> = (value: ClientEvents[K]) => void;

let wsPackage: Promise<WebSocketConstructor> | undefined;

/**
 * The WebSocket constructor: the given one, the global one, or the `ws`
 * package's (Node 20), imported only when needed so that browsers never
 * load it.
 */
function webSocketConstructor(given: WebSocketConstructor | undefined): Promise<WebSocketConstructor> {
  if (given) return Promise.resolve(given);
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof global === "function") return Promise.resolve(global);
  wsPackage ??= (async () => {
    const name = "ws";
    try {
      const m = (await import(/* webpackIgnore: true */ /* @vite-ignore */ name)) as {
        WebSocket?: WebSocketConstructor;
        default?: WebSocketConstructor;
      };
      const C = m.WebSocket ?? m.default;
      if (typeof C !== "function") throw new Error("the ws package has no WebSocket");
      return C;
    } catch (e) {
      wsPackage = undefined;
      throw new KaiwaError(
        "unavailable",
        "kaiwa: no WebSocket here: install the ws package (npm install ws) or pass options.WebSocket",
        { cause: e },
      );
    }
  })();
  return wsPackage;
}

function reportListenerError(e: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof report === "function") report(e);
  else console.error("kaiwa: a listener threw:", e);
}

/**
 * Client is a connection to Kaiwa that survives disconnects. When its
 * connection is lost, or the server asks it to reconnect, it dials again
 * with exponential backoff and full jitter; in v2 it resumes every channel
 * from the last sequence number it saw (or, for a channel that stayed
 * quiet, from where it joined it), so that each missed message arrives
 * once and in order, then a `resumed` event per channel; it joins again the
 * channels joined with {@link Client.join}; and it resends requests that
 * were waiting or in flight, each send with the same client message id, so
 * that nothing is delivered twice.
 *
 * ```ts
 * const c = new Client({ url: "wss://chat.example.com/v2/ws", token });
 * c.on("message", (m) => console.log(m.channel, m.name, m.text));
 * await c.connect();
 * await c.join("guild.42");
 * await c.say("guild.42", "hi");
 * ```
 *
 * Events are delivered synchronously, in the order the server sent them;
 * a listener that throws is reported (`reportError`) and the client goes
 * on. Input from the server that cannot be read is reported through the
 * `error` event, and the connection goes on.
 */
export class Client {
  /** The WebSocket URL. */
  readonly url: string;
  /** The protocol version the URL names. */
  readonly version: "v1" | "v2";

  private readonly o: Settings;
  private token: string | undefined;
  private _state: State = "closed";
  private readonly listeners = new Map<keyof ClientEvents, Set<(v: never) => void>>();
  private conn: Conn | undefined;
  private queue: Request[] = [];
  private readonly seqs = new Map<string, number>(); // the last seq seen per channel
  private readonly pos = new Map<string, number>(); // where a quiet channel stood when joined
  private readonly changes = new Map<string, number>(); // the last seq of an edit or reaction seen per channel
  private readonly joined = new Set<string>(); // channels joined with join()
  private attempt = 0; // failed attempts since the last ready connection
  private run = 0; // changes whenever the client starts or ends, so stale callbacks stop
  private retry: ReturnType<typeof setTimeout> | undefined;
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  /** Why the last attempt was refused, while a new token is fetched. */
  private refusal: KaiwaError | undefined;
  /** Why the last attempt failed, when it said (the cause of a connect's timeout). */
  private lastFailure: KaiwaError | undefined;
  private _ready: Ready | undefined;

  /** Throws a TypeError when the options cannot work (a bad URL, no token). */
  constructor(options: ClientOptions) {
    this.url = options.url;
    this.version = urlVersion(options.url);
    if (!options.token && !options.getToken) throw new TypeError("kaiwa: options.token or options.getToken is required");
    this.o = {
      url: options.url,
      reconnect: options.reconnect ?? defaults.reconnect,
      minBackoffMs: Math.max(options.minBackoffMs ?? defaults.minBackoffMs, 1),
      maxBackoffMs: Math.max(options.maxBackoffMs ?? defaults.maxBackoffMs, 1),
      connectTimeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
      timeoutMs: options.timeoutMs ?? defaults.timeoutMs,
      maxQueued: options.maxQueued ?? defaults.maxQueued,
      pingIntervalMs: options.pingIntervalMs ?? defaults.pingIntervalMs,
      getToken: options.getToken,
      WebSocket: options.WebSocket,
    };
    this.token = options.token || undefined;
    for (const [ch, seq] of Object.entries(options.resume ?? {})) {
      if (Number.isInteger(seq) && seq >= 0) this.seqs.set(ch, seq);
    }
  }

  // --- events ------------------------------------------------------------

  /** Calls `listener` with every `event`; returns a function that stops it. */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (v: never) => void);
    return () => this.off(event, listener);
  }

  /** Stops calling `listener` with `event`. */
  off<K extends keyof ClientEvents>(event: K, listener: Listener<K>): void {
    this.listeners.get(event)?.delete(listener as (v: never) => void);
  }

  private emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<K>)(value);
      } catch (e) {
        reportListenerError(e);
      }
    }
  }

  private setState(s: State): void {
    if (this._state === s) return;
    this._state = s;
    this.emit("state", s);
  }

  // --- what the client knows ---------------------------------------------

  /** Where the client stands. */
  get state(): State {
    return this._state;
  }

  /** The latest round-trip time in ms (v2), or undefined while unknown, reconnecting, and in v1. */
  get rtt(): number | undefined {
    const c = this.conn;
    return c?.ready ? c.codec?.rtt : undefined;
  }

  /** What the server said when the current (or last) connection became ready. */
  get ready(): Ready | undefined {
    return this._ready;
  }

  /**
   * The last seq seen per channel (v2): what the client resumes from when it
   * reconnects. Keep it to pass as `options.resume` to a later client.
   */
  lastSeqs(): Record<string, number> {
    return Object.fromEntries(this.seqs);
  }

  // --- connecting ----------------------------------------------------------

  /**
   * Connects, and resolves once the client is connected. The first
   * connection is retried like any other (unless `reconnect` is false)
   * until `timeoutMs`; a token or version the server refuses for good
   * rejects at once with its {@link KaiwaError}, and the client closes.
   * Calling it while connecting or reconnecting waits for that connection.
   * After {@link Client.close}, it connects again, resuming where the
   * client left off.
   */
  connect(options: ConnectOptions = {}): Promise<void> {
    if (this._state === "connected") return Promise.resolve();
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? defaultConnectTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const starts = this._state === "closed";
      const run = starts ? this.run + 1 : this.run;
      const giveUp = (e: unknown) => {
        w.reject(e);
        if (starts && this.run === run && this._state !== "connected") this.end();
      };
      const onAbort = () => giveUp(signal?.reason);
      const timer = setTimeout(
        () =>
          giveUp(
            new KaiwaError("timeout", `kaiwa: not connected after ${timeoutMs} ms`, {
              cause: this.refusal ?? this.lastFailure,
            }),
          ),
        timeoutMs,
      );
      const w = {
        resolve: () => {
          done();
          resolve();
        },
        reject: (e: unknown) => {
          done();
          reject(e);
        },
      };
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiters = this.waiters.filter((x) => x !== w);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(w);
      if (starts) {
        this.run = run;
        this.attempt = 0;
        this.setState("connecting");
        void this.dial(run);
      }
    });
  }

  /** Closes the connection and stops reconnecting; waiting requests reject with `closed`. */
  close(): void {
    this.end();
  }

  /** The full-jitter wait before attempt n+1. */
  private backoff(n: number): number {
    const ceil = Math.min(this.o.minBackoffMs * 2 ** Math.min(n, 30), this.o.maxBackoffMs);
    return Math.floor(Math.random() * (ceil + 1));
  }

  private schedule(ms: number): void {
    clearTimeout(this.retry);
    const run = this.run;
    this.retry = setTimeout(() => void this.dial(run), ms);
  }

  /** Makes one connection attempt. */
  private async dial(run: number): Promise<void> {
    this.retry = undefined;
    let Ctor: WebSocketConstructor;
    try {
      Ctor = await webSocketConstructor(this.o.WebSocket);
      if (this.token === undefined && this.o.getToken) {
        const token = await this.o.getToken();
        if (typeof token !== "string" || token === "") throw new TypeError("getToken gave no token");
        if (run === this.run) this.token = token;
      }
    } catch (e) {
      if (run !== this.run) return;
      const why = this.refusal ?? (e instanceof KaiwaError ? e : undefined);
      this.end(
        why
          ? new KaiwaError(why.code, why.message, { cause: e, ...(why.closeCode ? { closeCode: why.closeCode } : {}) })
          : new KaiwaError("unauthorized", `kaiwa: getToken: ${String(e)}`, { cause: e }),
      );
      return;
    }
    if (run !== this.run || this._state === "closed") return;
    let ws: WebSocketLike;
    try {
      ws = new Ctor(this.url);
    } catch {
      this.failed(undefined, undefined); // the URL was checked: a refusal of the runtime, tried again
      return;
    }
    const conn = new Conn(ws);
    this.conn = conn;
    ws.onopen = () => this.opened(conn);
    ws.onmessage = (ev) => this.frame(conn, ev.data);
    ws.onclose = (ev) => this.closed(conn, ev.code, ev.reason);
    ws.onerror = () => {}; // a close follows
    conn.timers.push(
      setTimeout(() => {
        if (this.conn === conn && !conn.ready) {
          this.failed(conn, new KaiwaError("timeout", `kaiwa: not ready after ${this.o.connectTimeoutMs} ms`));
        }
      }, this.o.connectTimeoutMs),
    );
  }

  /** The socket opened: start the clocks (v2) and authenticate with the first frame. */
  private opened(conn: Conn): void {
    if (this.conn !== conn || conn.dead) return;
    conn.codec = this.version === "v2" ? new V2Codec(new Clock(now())) : new V1Codec();
    conn.lastRx = now();
    const auth: Record<string, unknown> = { op: "auth", token: this.token };
    if (this.version === "v2") {
      const resume = this.resumeMap();
      if (Object.keys(resume).length > 0) auth.resume = resume;
    }
    conn.write(auth);
  }

  /**
   * Every channel with a seq seen, or, for a channel that stayed quiet
   * since it was joined, the position it was joined at. (A channel with
   * neither is joined again instead: resuming it from 0 would replay its
   * whole history.)
   */
  private resumeMap(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries(this.pos); // 0 included: the channel had no message
    for (const [ch, seq] of this.seqs) if (seq > 0) out[ch] = seq;
    return out;
  }

  /** Records where ch stood when joined, unless a message of it was seen. */
  private notePos(ch: string, seq: number): void {
    if (!this.seqs.has(ch)) this.pos.set(ch, seq);
  }

  private forget(ch: string): void {
    this.joined.delete(ch);
    this.seqs.delete(ch);
    this.pos.delete(ch);
    this.changes.delete(ch);
  }

  /** A frame arrived: read every op of it; nothing the server sends throws out of here. */
  private frame(conn: Conn, data: unknown): void {
    if (this.conn !== conn || conn.dead || !conn.codec) return;
    conn.lastRx = now();
    conn.pingSentAt = undefined;
    if (typeof data !== "string") {
      this.emit("error", new KaiwaError("bad_frame", "kaiwa: a binary frame from the server"));
      return;
    }
    let ops;
    try {
      ops = conn.codec.decode(data);
    } catch (e) {
      this.emit("error", e instanceof KaiwaError ? e : new KaiwaError("bad_frame", String(e), { cause: e }));
      return;
    }
    for (const op of ops) {
      if (this.conn !== conn || conn.dead) return; // the connection ended (a reconnect, a refusal, close())
      if (op instanceof KaiwaError) {
        this.emit("error", op);
        continue;
      }
      try {
        this.handle(conn, op);
      } catch (e) {
        this.emit("error", e instanceof KaiwaError ? e : new KaiwaError("bad_frame", String(e), { cause: e }));
      }
    }
  }

  /** One op from the server. */
  private handle(conn: Conn, op: Op): void {
    if (!conn.ready) {
      switch (op.op) {
        case "ready":
          this.becameReady(conn, readReady(op));
          return;
        case "error":
          this.failed(conn, readError(op)); // the server closes next
          return;
        case "closing":
          conn.closing = readClosing(op);
          return;
      }
    }
    const ref = typeof op.ref === "string" ? op.ref : undefined;
    const req = ref === undefined ? undefined : conn.inflight.get(ref);
    if (req && ref !== undefined) {
      conn.inflight.delete(ref);
      this.answer(req, op);
      return;
    }
    switch (op.op) {
      case "msg": {
        const m = readMessage(op);
        if (this.seen(m)) this.emit("message", m);
        return;
      }
      case "presence": {
        const ev = op.event === "leave" ? "leave" : op.event === "join" ? "join" : undefined;
        if (typeof op.ch !== "string" || typeof op.user !== "string" || !ev) {
          throw new KaiwaError("bad_frame", "kaiwa: a presence op without ch, user or event");
        }
        this.emit("presence", { channel: op.ch, user: op.user, name: typeof op.name === "string" ? op.name : "", event: ev });
        return;
      }
      case "resumed":
        this.emit("resumed", { channel: typeof op.ch === "string" ? op.ch : "", recovered: op.recovered === true });
        return;
      case "joined":
        if (typeof op.ch === "string") this.emit("joined", { channel: op.ch });
        return;
      case "left":
        if (typeof op.ch === "string") {
          this.forget(op.ch);
          this.emit("left", { channel: op.ch, reason: typeof op.reason === "string" ? op.reason : "" });
        }
        return;
      case "deleted":
        if (typeof op.ch === "string" && typeof op.id === "string") this.emit("deleted", { channel: op.ch, id: op.id });
        return;
      case "edited": {
        const e = readEdited(op);
        if (this.newChange(e.channel, e.seq)) this.emit("edited", e);
        return;
      }
      case "reaction": {
        const r = readReaction(op);
        if (this.newChange(r.channel, r.seq)) this.emit("reaction", r);
        return;
      }
      case "read":
        if (typeof op.ch === "string" && typeof op.seq === "number") this.emit("read", { channel: op.ch, seq: op.seq });
        return;
      case "typing":
        if (typeof op.ch === "string" && typeof op.user === "string") {
          this.emit("typing", { channel: op.ch, user: op.user, name: typeof op.name === "string" ? op.name : "" });
        }
        return;
      case "closing":
        conn.closing = readClosing(op);
        return;
      case "reconnect": {
        const after = typeof op.after_ms === "number" && op.after_ms >= 0 ? op.after_ms : 0;
        conn.reconnectAfterMs = after;
        this.drop(conn, 1001, "the server asked for a reconnect");
        return;
      }
      case "error":
        this.emit("error", readError(op));
        return;
      case "ok":
      case "history":
      case "pong":
      case "ready":
      case "unread":
      case "search":
        return; // an answer nobody waits for any more (timed out, cancelled, or a keepalive ping's)
      default:
        this.emit("error", new KaiwaError("unknown_op", `kaiwa: unknown server op ${JSON.stringify(op.op)}`));
    }
  }

  /**
   * Notes a message's seq and reports whether it is new. A message whose
   * prev is past the last seq seen in its channel follows a gap the server
   * could not replay: a `gap` event goes first.
   */
  private seen(m: Message): boolean {
    if (m.seq === 0) return true; // v1: nothing to compare
    const last = this.seqs.get(m.channel);
    if (last !== undefined && m.seq <= last) return false;
    this.seqs.set(m.channel, m.seq);
    this.pos.delete(m.channel);
    if (last !== undefined && last > 0 && m.prev > last) {
      this.emit("gap", { channel: m.channel, after: last, before: m.seq });
    }
    return true;
  }

  /**
   * Notes an edit's or a reaction's seq and reports whether it is new: a
   * resume replays the changes after the last message seen, some of which
   * may have come live already. Changes do not move the seqs the client
   * resumes from: a message the server held back may still come before.
   */
  private newChange(ch: string, seq: number): boolean {
    if (seq === 0) return true; // v1: nothing to compare
    const last = this.changes.get(ch);
    if (last !== undefined && seq <= last) return false;
    this.changes.set(ch, seq);
    return true;
  }

  private becameReady(conn: Conn, r: ReturnType<typeof readReady>): void {
    conn.ready = true;
    this.attempt = 0;
    this.refusal = undefined;
    this.lastFailure = undefined;
    for (const [ch, seq] of Object.entries(r.seqs)) this.notePos(ch, seq);
    const { seqs: _, ...ready } = r;
    this._ready = ready;
    if (this.o.pingIntervalMs > 0) this.keepalive(conn);
    this.setState("connected");
    if (this.conn !== conn) return;
    this.emit("ready", ready);
    for (const w of [...this.waiters]) w.resolve();
    if (this.conn !== conn) return;
    // Rejoins go out before what waited: the server runs a connection's ops in order.
    for (const ch of [...this.joined]) if (!r.channels.includes(ch)) this.rejoin(conn, ch);
    const waiting = this.queue;
    this.queue = [];
    for (const req of waiting) if (!req.done) this.send(conn, req);
  }

  /** Joins ch on a new connection; a channel that can no longer be joined is forgotten, with an error event. */
  private rejoin(conn: Conn, ch: string): void {
    const req: Request = {
      op: { op: "join", ch },
      want: "ok",
      bound: conn,
      done: false,
      resolve: (reply) => {
        if (typeof reply.seq === "number") this.notePos(ch, reply.seq);
      },
      reject: (e) => {
        if (!(e instanceof KaiwaError) || ["internal", "timeout", "closed", "unavailable"].includes(e.code)) return;
        this.forget(ch);
        this.emit("error", new KaiwaError(e.code, `kaiwa: rejoin ${ch}: ${e.message}`, { channel: ch, cause: e }));
      },
      cleanup: () => clearTimeout(timer),
    };
    const timer = setTimeout(
      () => this.finish(req, new KaiwaError("timeout", `kaiwa: rejoin ${ch} timed out`)),
      this.o.timeoutMs,
    );
    this.send(conn, req);
  }

  /** Sends a keepalive ping when the server was quiet, and drops a connection that stopped answering. */
  private keepalive(conn: Conn): void {
    const every = this.o.pingIntervalMs;
    conn.intervals.push(
      setInterval(
        () => {
          if (this.conn !== conn || conn.dead) return;
          const t = now();
          if (conn.pingSentAt !== undefined) {
            if (t - conn.pingSentAt >= every) this.drop(conn, 1006, "no answer from the server");
            return;
          }
          if (t - conn.lastRx >= every) {
            conn.pingSentAt = t;
            conn.write({ op: "ping" });
          }
        },
        Math.max(Math.floor(every / 4), 10),
      ),
    );
  }

  /** The socket closed. */
  private closed(conn: Conn, code: number, reason: string): void {
    if (this.conn !== conn || conn.dead) return;
    this.drop(conn, code, reason);
  }

  /**
   * Ends a connection: what was in flight waits for the next one, and the
   * client reconnects or ends, as the close says.
   */
  private drop(conn: Conn, code: number, reason: string): void {
    if (conn.dead) return;
    conn.shut();
    if (this.conn === conn) this.conn = undefined;
    if (code === 1006 && conn.closing) {
      code = conn.closing.code;
      reason = conn.closing.reason;
    }
    this.requeue(conn);
    if (!conn.ready) {
      this.failed(undefined, closeError(code, reason));
      return;
    }
    let wait = conn.reconnectAfterMs ?? conn.closing?.reconnectAfterMs;
    if (code === 4001) {
      const err = new KaiwaError("unauthorized", reason || "token refused", { closeCode: code });
      if (!this.o.getToken) {
        this.end(err);
        return;
      }
      this.token = undefined;
      this.refusal = err;
    } else if (code === 4003) {
      // Kicked or banned: do not come back by ourselves (docs/protocol.md §9).
      this.end(new KaiwaError(/^banned\b/.test(reason) ? "banned" : "forbidden", reason || "forbidden", { closeCode: code }));
      return;
    } else if (code === 4029 && wait === undefined) {
      wait = this.backoff(30); // "reconnect much later"
    }
    if (!this.o.reconnect) {
      this.end(new KaiwaError("unavailable", `kaiwa: connection lost (${code}${reason ? " " + reason : ""})`, { closeCode: code }));
      return;
    }
    this.setState("reconnecting");
    if (this._state !== "reconnecting") return; // a listener closed the client
    this.schedule(wait ?? this.backoff(0));
  }

  /** Puts what was in flight on conn back in front of the queue, in the order it was sent. */
  private requeue(conn: Conn): void {
    const again: Request[] = [];
    for (const req of conn.inflight.values()) {
      req.conn = undefined;
      req.ref = undefined;
      if (req.done) continue;
      if (req.bound) this.finish(req, new KaiwaError("closed", "kaiwa: connection lost"));
      else again.push(req);
    }
    conn.inflight.clear();
    this.queue.unshift(...again);
  }

  /**
   * A connection attempt failed before ready: with the server's refusal
   * (err), or without a word (a network error, a timeout). A refused token
   * is fetched again when `getToken` is set; a refusal no retry can change
   * ends the client; anything else is tried again after a backoff.
   */
  private failed(conn: Conn | undefined, err: KaiwaError | undefined): void {
    this.lastFailure = err;
    if (conn) {
      conn.shut();
      if (this.conn === conn) this.conn = undefined;
      this.requeue(conn);
    }
    if (err && tokenCodes.has(err.code)) {
      if (!this.o.getToken) {
        this.end(err);
        return;
      }
      this.token = undefined;
      this.refusal = err;
    } else if (err && refusedCodes.has(err.code)) {
      this.end(err);
      return;
    } else if (!this.o.reconnect) {
      this.end(err ?? new KaiwaError("unavailable", "kaiwa: could not connect"));
      return;
    }
    this.schedule(this.backoff(this.attempt++));
  }

  /** Ends the client: closed by the caller (no err), or refused for good. */
  private end(err?: KaiwaError): void {
    if (this._state === "closed") return;
    this.run++;
    clearTimeout(this.retry);
    this.retry = undefined;
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      conn.shut(1000);
      this.requeue(conn);
    }
    const closed = new KaiwaError("closed", err ? `kaiwa: closed: ${err.message}` : "kaiwa: client closed", {
      cause: err,
    });
    const waiting = this.queue;
    this.queue = [];
    for (const req of waiting) this.finish(req, closed);
    this._state = "closed";
    if (err) this.emit("error", err);
    this.emit("state", "closed");
    for (const w of [...this.waiters]) w.reject(err ?? closed);
  }

  // --- requests ----------------------------------------------------------

  private request(op: Record<string, unknown>, want: string, options: RequestOptions): Promise<Op> {
    return new Promise<Op>((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      if (this._state === "closed") {
        reject(new KaiwaError("closed", "kaiwa: not connected: call connect() first"));
        return;
      }
      const size = utf8Length(JSON.stringify(op)) + 64; // the ref and the v2 envelope
      if (size > MAX_FRAME) {
        reject(new KaiwaError("too_large", `kaiwa: a ${op.op} of about ${size} bytes; frames are at most ${MAX_FRAME}`));
        return;
      }
      const timeoutMs = options.timeoutMs ?? this.o.timeoutMs;
      const cid = typeof op.cid === "string" ? op.cid : undefined;
      const req: Request = { op, want, resolve, reject, done: false, cleanup: () => {} };
      const timer = setTimeout(() => {
        const details = { cause: req.lastError, ...(cid === undefined ? {} : { cid }) };
        this.finish(req, new KaiwaError("timeout", `kaiwa: ${String(op.op)} got no answer within ${timeoutMs} ms`, details));
      }, timeoutMs);
      const onAbort = () => this.finish(req, signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      req.cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      if (this.conn?.ready) this.send(this.conn, req);
      else if (this.queue.length >= this.o.maxQueued) {
        this.finish(req, new KaiwaError("unavailable", `kaiwa: ${this.o.maxQueued} requests already wait for a connection`));
      } else this.queue.push(req);
    });
  }

  private send(conn: Conn, req: Request): void {
    const ref = "c" + (++conn.refs).toString(36);
    req.ref = ref;
    req.conn = conn;
    conn.inflight.set(ref, req);
    conn.write({ ...req.op, ref });
  }

  /** A request's reply arrived. An `unavailable` answer is an unknown outcome: the request is sent again. */
  private answer(req: Request, op: Op): void {
    req.conn = undefined;
    req.ref = undefined;
    if (req.done) return;
    if (op.op === "error") {
      const err = readError(op);
      if (err.code === "unavailable" && !req.bound) {
        req.lastError = err;
        setTimeout(() => this.resubmit(req), 100);
        return;
      }
      this.finish(req, err);
      return;
    }
    if (op.op !== req.want) {
      this.finish(req, new KaiwaError("bad_frame", `kaiwa: ${String(req.op.op)}: reply ${op.op}, want ${req.want}`));
      return;
    }
    this.finish(req, undefined, op);
  }

  private resubmit(req: Request): void {
    if (req.done) return;
    if (this.conn?.ready) this.send(this.conn, req);
    else if (this._state !== "closed") this.queue.push(req);
    else this.finish(req, new KaiwaError("closed", "kaiwa: client closed", { cause: req.lastError }));
  }

  private finish(req: Request, err: unknown, reply?: Op): void {
    if (req.done) return;
    req.done = true;
    req.cleanup();
    if (req.conn && req.ref !== undefined) req.conn.inflight.delete(req.ref);
    const i = this.queue.indexOf(req);
    if (i >= 0) this.queue.splice(i, 1);
    if (reply) req.resolve(reply);
    else req.reject(err);
  }

  /**
   * Joins a channel, now and after every reconnect. Joining a channel
   * already joined succeeds.
   */
  async join(channel: string, options: RequestOptions = {}): Promise<void> {
    const reply = await this.request({ op: "join", ch: channel }, "ok", options);
    this.joined.add(channel);
    if (typeof reply.seq === "number") this.notePos(channel, reply.seq);
  }

  /**
   * Leaves a channel; it is not joined again after a reconnect. Leaving a
   * channel the session is not in succeeds.
   */
  async leave(channel: string, options: RequestOptions = {}): Promise<void> {
    this.forget(channel);
    try {
      await this.request({ op: "leave", ch: channel }, "ok", options);
    } catch (e) {
      if (e instanceof KaiwaError && e.code === "not_joined") return;
      throw e;
    }
  }

  /**
   * Sends a message to a joined channel, with a client message id: a send
   * interrupted by a disconnect is sent again on the next connection with
   * the same id, so it is delivered once. Resolves with the message's id
   * and seq (0 in v1).
   */
  async say(channel: string, text: string, options: SayOptions = {}): Promise<Sent> {
    const op: Record<string, unknown> = { op: "say", ch: channel, text, cid: options.cid ?? newCID() };
    if (options.data !== undefined) op.data = options.data;
    if (options.replyTo !== undefined) op.reply_to = options.replyTo;
    if (options.attachments !== undefined) op.attachments = options.attachments;
    const reply = await this.request(op, "ok", options);
    return { id: String(reply.id ?? ""), seq: typeof reply.seq === "number" ? reply.seq : 0 };
  }

  /** Sends a direct message to another user of the game, as {@link Client.say} does. */
  async dm(user: string, text: string, options: SayOptions = {}): Promise<SentDirect> {
    const op: Record<string, unknown> = { op: "dm", to: user, text, cid: options.cid ?? newCID() };
    if (options.data !== undefined) op.data = options.data;
    const reply = await this.request(op, "ok", options);
    return {
      id: String(reply.id ?? ""),
      channel: String(reply.ch ?? ""),
      seq: typeof reply.seq === "number" ? reply.seq : 0,
    };
  }

  /** Reads a channel's recent messages, oldest first; page back with `before: page.next`. */
  async history(channel: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    const op: Record<string, unknown> = { op: "history", ch: channel };
    if (options.limit !== undefined) op.limit = options.limit;
    if (options.before !== undefined) op.before = options.before;
    const reply = await this.request(op, "history", options);
    const messages = readMessages(reply);
    const page: HistoryPage = { channel: typeof reply.ch === "string" ? reply.ch : channel, messages };
    const oldest = messages[0];
    if (oldest && messages.length >= (options.limit || 50)) page.next = oldest.id;
    return page;
  }

  /** Asks the server for a pong (and, in v2, refreshes {@link Client.rtt}). */
  async ping(options: RequestOptions = {}): Promise<void> {
    await this.request({ op: "ping" }, "pong", options);
  }

  /** Replaces the text of the user's own message (within the game's edit window); everyone gets an `edited` event. */
  async edit(channel: string, id: string, text: string, options: RequestOptions = {}): Promise<void> {
    await this.request({ op: "edit", ch: channel, id, text }, "ok", options);
  }

  /** Deletes the user's own message (within the game's edit window); everyone gets a `deleted` event. */
  async delete(channel: string, id: string, options: RequestOptions = {}): Promise<void> {
    await this.request({ op: "delete", ch: channel, id }, "ok", options);
  }

  /** Adds the user's reaction (one of each emoji per user); everyone gets a `reaction` event with the counts. */
  async react(channel: string, id: string, emoji: string, options: RequestOptions = {}): Promise<void> {
    await this.request({ op: "react", ch: channel, id, emoji }, "ok", options);
  }

  /** Takes back the user's reaction. */
  async unreact(channel: string, id: string, emoji: string, options: RequestOptions = {}): Promise<void> {
    await this.request({ op: "unreact", ch: channel, id, emoji }, "ok", options);
  }

  /** Marks a channel read up to a message's seq; the user's other devices get a `read` event. Resolves with the cursor. */
  async read(channel: string, seq: number, options: RequestOptions = {}): Promise<number> {
    const reply = await this.request({ op: "read", ch: channel, seq }, "ok", options);
    return typeof reply.seq === "number" ? reply.seq : seq;
  }

  /** The unread counts of a channel, or of every joined channel. */
  async unread(channel?: string, options: RequestOptions = {}): Promise<Record<string, Unread>> {
    const op: Record<string, unknown> = { op: "unread" };
    if (channel !== undefined) op.ch = channel;
    const reply = await this.request(op, "unread", options);
    return readUnread(reply.unread);
  }

  /** Stops delivery of a user's messages to this user, and refuses their direct messages (`blocked`). */
  async block(user: string, options: RequestOptions = {}): Promise<void> {
    await this.request({ op: "block", user }, "ok", options);
  }

  /** Ends a {@link Client.block}. */
  async unblock(user: string, options: RequestOptions = {}): Promise<void> {
    await this.request({ op: "unblock", user }, "ok", options);
  }

  /** Tells the channel's other members (in a direct channel, the other user) the user is typing (passed on at most every 2 s; never stored). */
  async typing(channel: string, options: RequestOptions = {}): Promise<void> {
    await this.request({ op: "typing", ch: channel }, "ok", options);
  }

  /** Finds messages holding `q` (2–100 characters; case, width and kana folded) in the channels the client is in, newest first. */
  async search(q: string, options: SearchOptions = {}): Promise<SearchPage> {
    const op: Record<string, unknown> = { op: "search", q };
    if (options.channel !== undefined) op.ch = options.channel;
    if (options.limit !== undefined) op.limit = options.limit;
    if (options.before !== undefined) op.before = options.before;
    const reply = await this.request(op, "search", options);
    const page: SearchPage = { messages: readMessages(reply) };
    if (typeof reply.next === "string" && reply.next !== "") page.next = reply.next;
    return page;
  }
}

/** Options of {@link Client.search}. */
export interface SearchOptions extends RequestOptions {
  /** One joined channel only. */
  channel?: string;
  /** 1–100 (default 50). */
  limit?: number;
  /** A page's `next`. */
  before?: string;
}

function readClosing(op: Op): { code: number; reason: string; reconnectAfterMs?: number } {
  const c: { code: number; reason: string; reconnectAfterMs?: number } = {
    code: typeof op.code === "number" ? op.code : 0,
    reason: typeof op.reason === "string" ? op.reason : "",
  };
  if (typeof op.reconnect_after_ms === "number" && op.reconnect_after_ms > 0) c.reconnectAfterMs = op.reconnect_after_ms;
  return c;
}

/** What a close before ready says (docs/protocol.md §3, §9). */
function closeError(code: number, reason: string): KaiwaError | undefined {
  switch (code) {
    case 4001:
      return new KaiwaError("unauthorized", reason || "unauthorized", { closeCode: code });
    case 4003:
      return new KaiwaError("forbidden", reason || "forbidden", { closeCode: code });
  }
  return undefined;
}
