// The wire formats of v1 and v2 (docs/protocol.md §4, §14.2–14.4): frames,
// the v2 clocks, and reading the server's ops into the client's types.

import { KaiwaError } from "./errors.js";
import type { Attachment, Edited, Message, Reaction, ReactionChange, Ready, Unread } from "./types.js";

/** The largest value of a v2 clock: 2^53−1. */
export const MAX_CLOCK = Number.MAX_SAFE_INTEGER;

/** The largest round trip a {@link Clock} believes, in ms (as the server's). */
export const MAX_RTT_MS = 10_000;

/** The largest frame the server accepts from a client, in bytes. */
export const MAX_FRAME = 16 << 10;

/** A monotonic clock in milliseconds. */
export const now: () => number =
  typeof globalThis.performance?.now === "function" ? () => globalThis.performance.now() : () => Date.now();

function clamp(ms: number): number {
  return Math.min(Math.max(Math.floor(ms), 0), MAX_CLOCK);
}

/**
 * Clock keeps one v2 connection's clocks (§14.3): its own, counted from
 * when the WebSocket opened, and the peer's last `t` with when it arrived.
 * Stamp what leaves, record what arrives; {@link Clock.rtt} is the latest
 * round trip. An echo that cannot be right is not a measurement: one ahead
 * of this clock, one older than the first frame sent, one behind an
 * earlier echo, or one implying more than {@link MAX_RTT_MS}.
 */
export class Clock {
  private peerT = 0;
  private at = 0;
  private have = false;
  private sent = false;
  private firstT = 0;
  private lastE = 0;
  /** The latest round-trip time in ms, once measured. */
  rtt: number | undefined;

  constructor(private readonly start: number) {}

  /** This side's clock at time `at` (from {@link now}). */
  millis(at: number): number {
    return clamp(at - this.start);
  }

  /** The `t` and `e` of a frame leaving at `at`; `e` is absent until a frame arrived. */
  stamp(at: number): { t: number; e?: number } {
    const t = this.millis(at);
    if (!this.sent) {
      this.sent = true;
      this.firstT = t;
    }
    if (!this.have) return { t };
    return { t, e: clamp(this.peerT + Math.max(at - this.at, 0)) };
  }

  /** Notes a frame that arrived at `at` carrying the peer's `t` and maybe an echo `e`. */
  record(at: number, t: number, e: number | undefined): void {
    const own = this.millis(at);
    this.peerT = clamp(t);
    this.at = at;
    this.have = true;
    if (e === undefined || !this.sent || e > own || e < this.firstT || e < this.lastE || own - e > MAX_RTT_MS) {
      return;
    }
    this.rtt = own - e;
    this.lastE = e;
  }
}

/** A server op: a JSON object with a string `op`. */
export type Op = Record<string, unknown> & { op: string };

/**
 * Codec frames the ops of one protocol version, per connection: `encode`
 * wraps one client op into a frame, `decode` returns the ops of a server
 * frame. A frame that cannot be read throws a `bad_frame` error; an element
 * of a v2 frame that is not an op is returned as an error in its place.
 */
export interface Codec {
  encode(op: Record<string, unknown>): string;
  decode(frame: string): Array<Op | KaiwaError>;
  /** The latest round-trip time in ms (v2). */
  readonly rtt: number | undefined;
}

function badFrame(message: string): KaiwaError {
  return new KaiwaError("bad_frame", message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asOp(v: unknown, where: string): Op | KaiwaError {
  if (!isObject(v)) return badFrame(`${where} is not a JSON object`);
  if (typeof v.op !== "string" || v.op === "") return badFrame(`${where} has no op`);
  return v as Op;
}

function parse(frame: string): unknown {
  try {
    return JSON.parse(frame);
  } catch {
    return badFrame(`server frame is not JSON: ${frame.slice(0, 64)}`);
  }
}

/** v1: one op per frame. */
export class V1Codec implements Codec {
  readonly rtt = undefined;
  encode(op: Record<string, unknown>): string {
    return JSON.stringify(op);
  }
  decode(frame: string): Array<Op | KaiwaError> {
    const v = parse(frame);
    if (v instanceof KaiwaError) throw v;
    const op = asOp(v, "server frame");
    if (op instanceof KaiwaError) throw op;
    return [op];
  }
}

function isClock(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_CLOCK;
}

/** v2: envelopes {"t","e","ops"}, stamped and read with the connection's {@link Clock}. */
export class V2Codec implements Codec {
  constructor(readonly clock: Clock) {}

  get rtt(): number | undefined {
    return this.clock.rtt;
  }

  encode(op: Record<string, unknown>): string {
    const { t, e } = this.clock.stamp(now());
    return JSON.stringify(e === undefined ? { t, ops: [op] } : { t, e, ops: [op] });
  }

  decode(frame: string): Array<Op | KaiwaError> {
    const at = now();
    const v = parse(frame);
    if (v instanceof KaiwaError) throw v;
    if (!isObject(v)) throw badFrame("server frame is not a JSON object");
    if (!isClock(v.t)) throw badFrame("server frame: t must be an integer from 0 to 2^53-1");
    if (v.e !== undefined && v.e !== null && !isClock(v.e)) {
      throw badFrame("server frame: e must be an integer from 0 to 2^53-1");
    }
    if (!Array.isArray(v.ops) || v.ops.length === 0) throw badFrame("server frame: ops must be a non-empty array");
    this.clock.record(at, v.t, typeof v.e === "number" ? v.e : undefined);
    return v.ops.map((op, i) => asOp(op, `ops[${i}]`));
  }
}

/** The protocol version a URL names (".../{version}/ws"). */
export function urlVersion(url: string): "v1" | "v2" {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`kaiwa: url ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`kaiwa: url scheme ${u.protocol} : want wss: or ws:`);
  }
  if (u.username || u.password || u.search) {
    throw new TypeError("kaiwa: the url must carry no credentials or query: the token goes in options.token");
  }
  const m = /\/(v[0-9]+)\/ws\/?$/.exec(u.pathname);
  if (!m) throw new TypeError(`kaiwa: url path ${u.pathname}: want /{version}/ws`);
  if (m[1] !== "v1" && m[1] !== "v2") throw new TypeError(`kaiwa: protocol version ${m[1]} is not one this client speaks`);
  return m[1];
}

// --- reading ops ---------------------------------------------------------

function str(op: Op, key: string): string | undefined {
  const v = op[key];
  return typeof v === "string" ? v : undefined;
}

function num(op: Op, key: string): number | undefined {
  const v = op[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function need(op: Op, key: string): string {
  const v = str(op, key);
  if (v === undefined) throw badFrame(`${op.op} op without ${key}`);
  return v;
}

/** The message a "msg" op (or an element of a history reply) carries. */
export function readMessage(op: Op): Message {
  const m: Message = {
    channel: need(op, "ch"),
    id: need(op, "id"),
    seq: num(op, "seq") ?? 0,
    prev: num(op, "prev") ?? 0,
    text: str(op, "text") ?? "",
    system: op.system === true,
    time: num(op, "ts") ?? 0,
  };
  const user = str(op, "from");
  if (user !== undefined) m.user = user;
  const name = str(op, "name");
  if (name !== undefined) m.name = name;
  if (isObject(op.data)) m.data = op.data;
  const replyTo = str(op, "reply_to");
  if (replyTo !== undefined) m.replyTo = replyTo;
  if (isObject(op.quote) && typeof op.quote.id === "string") {
    const q = op.quote;
    m.quote = { id: q.id as string, text: typeof q.text === "string" ? q.text : "" };
    if (typeof q.from === "string") m.quote.user = q.from;
    if (typeof q.name === "string") m.quote.name = q.name;
  }
  if (Array.isArray(op.attachments)) m.attachments = op.attachments.filter(isObject) as unknown as Attachment[];
  const editedAt = num(op, "edited_at");
  if (editedAt !== undefined) m.editedAt = editedAt;
  if (Array.isArray(op.reactions)) m.reactions = readReactions(op.reactions);
  return m;
}

/** Reaction counts as the server sends them. */
export function readReactions(list: unknown[]): Reaction[] {
  return list
    .filter(isObject)
    .filter((r) => typeof r.emoji === "string" && typeof r.count === "number")
    .map((r) => ({ emoji: r.emoji as string, count: r.count as number }));
}

/** What an "edited" op says. */
export function readEdited(op: Op): Edited {
  const e: Edited = {
    channel: need(op, "ch"),
    id: need(op, "id"),
    seq: num(op, "seq") ?? 0,
    text: str(op, "text") ?? "",
    editedAt: num(op, "edited_at") ?? 0,
  };
  const user = str(op, "from");
  if (user !== undefined) e.user = user;
  return e;
}

/** What a "reaction" op says. */
export function readReaction(op: Op): ReactionChange {
  return {
    channel: need(op, "ch"),
    id: need(op, "id"),
    seq: num(op, "seq") ?? 0,
    user: str(op, "user") ?? "",
    emoji: need(op, "emoji"),
    added: op.added === true,
    reactions: Array.isArray(op.reactions) ? readReactions(op.reactions) : [],
  };
}

/** An "unread" map as the server sends it (in "ready" and the unread reply). */
export function readUnread(v: unknown): Record<string, Unread> {
  const out: Record<string, Unread> = {};
  if (!isObject(v)) return out;
  for (const [ch, u] of Object.entries(v)) {
    if (!isObject(u)) continue;
    const e: Unread = { count: typeof u.count === "number" ? u.count : 0, read: typeof u.read === "number" ? u.read : 0 };
    if (typeof u.last === "number") e.last = u.last;
    out[ch] = e;
  }
  return out;
}

/** The history reply's messages. */
export function readMessages(op: Op): Message[] {
  const list = op.messages ?? [];
  if (!Array.isArray(list)) throw badFrame("history op: messages is not an array");
  return list.map((m, i) => {
    const o = asOp(isObject(m) && m.op === undefined ? { ...m, op: "msg" } : m, `history messages[${i}]`);
    if (o instanceof KaiwaError) throw o;
    return readMessage(o);
  });
}

/** What a "ready" op says. */
export function readReady(op: Op): Ready & { seqs: Record<string, number> } {
  const channels = Array.isArray(op.channels) ? op.channels.filter((c): c is string => typeof c === "string") : [];
  const seqs: Record<string, number> = {};
  if (isObject(op.seqs)) {
    for (const [ch, seq] of Object.entries(op.seqs)) {
      if (typeof seq === "number" && Number.isInteger(seq) && seq >= 0) seqs[ch] = seq;
    }
  }
  const r: Ready & { seqs: Record<string, number> } = {
    user: str(op, "user") ?? "",
    name: str(op, "name") ?? "",
    channels,
    version: str(op, "version") ?? "",
    serverTime: num(op, "server_time") ?? 0,
    seqs,
  };
  if (isObject(op.deprecated) && typeof op.deprecated.sunset === "string") {
    r.deprecated = { sunset: op.deprecated.sunset };
  }
  if (isObject(op.unread)) r.unread = readUnread(op.unread);
  if (Array.isArray(op.blocks)) r.blocks = op.blocks.filter((b): b is string => typeof b === "string");
  return r;
}

/** The error an "error" op carries. */
export function readError(op: Op): KaiwaError {
  const details: { cid?: string } = {};
  const cid = str(op, "cid");
  if (cid !== undefined) details.cid = cid;
  return new KaiwaError(str(op, "code") || "internal", str(op, "message") ?? "", details);
}

/** UTF-8 length of a string, for the frame limit. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** A fresh random client message id: 22 characters of base64url, like the Go client's. */
export function newCID(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
