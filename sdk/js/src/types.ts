import type { KaiwaError } from "./errors.js";

/** Where a {@link Client} stands, reported by the `state` event. */
export type State =
  /** The first connection is being made. */
  | "connecting"
  /** A connection is ready: requests go out at once. */
  | "connected"
  /** The connection was lost (or the server asked for a reconnect): requests wait for the next. */
  | "reconnecting"
  /** The client ended: {@link Client.close}, or the server refused it for good (an `error` event says why). */
  | "closed";

/** A chat or system message, live or from {@link Client.history}. */
export interface Message {
  /** The channel: a channel name, `dm:a:b` for direct messages, `@user` for a user's inbox. */
  channel: string;
  /** The message id: opaque, unique within the game. */
  id: string;
  /** The message's sequence number in the server's stream (v2; 0 in v1). */
  seq: number;
  /** The seq of the channel's previous message (v2; 0 in v1 and for a channel's first). */
  prev: number;
  /** The sender's user id; absent for system messages. */
  user?: string;
  /** The sender's display name when it was sent; absent for system messages. */
  name?: string;
  /** The text; may be empty when `data` is set. */
  text: string;
  /** The sender's JSON object, when there is one. */
  data?: Record<string, unknown>;
  /** True for system messages from the game server. */
  system: boolean;
  /** When the server accepted it, in milliseconds since the epoch (`new Date(m.time)`). */
  time: number;
  /** The id of the message this one answers, and a short quote of it. */
  replyTo?: string;
  quote?: Quote;
  /** References to files the message shows (Kaiwa stores no files). */
  attachments?: Attachment[];
  /** When its author last edited the text, in ms since the epoch. */
  editedAt?: number;
  /** Reaction counts. */
  reactions?: Reaction[];
}

/** The quote of the message a reply answers: its text cut to 100 characters. */
export interface Quote {
  id: string;
  user?: string;
  name?: string;
  text: string;
}

/** A reference to a file: an https URL, at most 2048 bytes. */
export interface Attachment {
  type: "image" | "video" | "audio" | "file" | "link";
  url: string;
  width?: number;
  height?: number;
  name?: string;
}

/** How many users reacted to a message with one emoji. */
export interface Reaction {
  emoji: string;
  count: number;
}

/** The author edited message `id` of `channel` (live, or replayed on resume). */
export interface Edited {
  channel: string;
  id: string;
  seq: number;
  user?: string;
  text: string;
  editedAt: number;
}

/** A user added or took back a reaction; `reactions` are the message's counts after it. */
export interface ReactionChange {
  channel: string;
  id: string;
  seq: number;
  user: string;
  emoji: string;
  added: boolean;
  reactions: Reaction[];
}

/** The user read `channel` up to `seq`, on this or another device. */
export interface Read {
  channel: string;
  seq: number;
}

/** A user is typing in a channel this client is in. */
export interface Typing {
  channel: string;
  user: string;
  name: string;
}

/** A channel's unread count: messages of others after the user's read cursor `read` (at most 999); `last` the channel's position. */
export interface Unread {
  count: number;
  read: number;
  last?: number;
}

/** A page of {@link Client.search}: newest first; `next` is the `before` of the next page. */
export interface SearchPage {
  messages: Message[];
  next?: string;
}

/** Another session joined or left a channel this client is in. */
export interface Presence {
  channel: string;
  user: string;
  name: string;
  event: "join" | "leave";
}

/**
 * A channel's replay after a reconnect is complete (v2). `recovered` is
 * false when the server's history no longer reached back to where the
 * client left off: older messages are missing (read them with
 * {@link Client.history}, or show that they are gone).
 */
export interface Resumed {
  channel: string;
  recovered: boolean;
}

/**
 * Messages of a channel the client knows it missed (v2): those after seq
 * `after` up to the message with seq `before`, which is delivered right
 * after this event. Read them with {@link Client.history} if they matter.
 */
export interface Gap {
  channel: string;
  after: number;
  before: number;
}

/** What the server reported when a connection became ready. */
export interface Ready {
  user: string;
  name: string;
  /** Every channel the session is in: member channels, and resumed ones (v2). */
  channels: string[];
  /** The protocol version: "v1" or "v2". */
  version: string;
  /** The server's clock, in milliseconds since the epoch. */
  serverTime: number;
  /** Set when the version is deprecated: update before `sunset` (RFC 3339). */
  deprecated?: { sunset: string };
  /** Each joined channel's unread count, when the server could tell. */
  unread?: Record<string, Unread>;
  /** The users the user blocks. */
  blocks?: string[];
}

/** The game server added the user to a channel; the client is now in it. */
export interface Joined {
  channel: string;
}

/** The client is no longer in a channel, without having asked. */
export interface Left {
  channel: string;
  /** "removed", "channel deleted" or "channel closed". */
  reason: string;
}

/** A moderator removed a message: drop it from view. */
export interface Deleted {
  channel: string;
  id: string;
}

/** The events of a {@link Client}, by name, with what their listeners receive. */
export interface ClientEvents {
  message: Message;
  presence: Presence;
  state: State;
  resumed: Resumed;
  gap: Gap;
  error: KaiwaError;
  ready: Ready;
  joined: Joined;
  left: Left;
  deleted: Deleted;
  edited: Edited;
  reaction: ReactionChange;
  read: Read;
  typing: Typing;
}

/** The answer to {@link Client.say}. */
export interface Sent {
  /** The message's id. */
  id: string;
  /** Its sequence number (v2; 0 in v1). */
  seq: number;
}

/** The answer to {@link Client.dm}. */
export interface SentDirect extends Sent {
  /** The direct channel it went to: `dm:` and the two user ids, sorted. */
  channel: string;
}

/** A page of {@link Client.history}. */
export interface HistoryPage {
  channel: string;
  /** Oldest first. */
  messages: Message[];
  /**
   * The `before` to pass for the next, older page: the id of the oldest
   * message, when the page was full (a shorter page is the last).
   */
  next?: string;
}

/** What every request takes. */
export interface RequestOptions {
  /** Cancels the request: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * How long the request may take, the wait for a connection and resends
   * included (default: the client's `timeoutMs`). It then rejects with a
   * `timeout` {@link KaiwaError}.
   */
  timeoutMs?: number;
}

/** Options of {@link Client.say} and {@link Client.dm}. */
export interface SayOptions extends RequestOptions {
  /** A JSON object sent along with the text (at most 4 KiB). */
  data?: Record<string, unknown>;
  /**
   * The client message id (at most 64 characters). By default a fresh
   * random one: resends of this message carry it, so the server delivers
   * it once. Give your own to make a retry of your own safe as well.
   */
  cid?: string;
  /** The id of a message of the same channel this one answers. */
  replyTo?: string;
  /** Up to 4 references to files. */
  attachments?: Attachment[];
}

/** Options of {@link Client.history}. */
export interface HistoryOptions extends RequestOptions {
  /** 1–100; the server's default (50) when absent. */
  limit?: number;
  /** A message id: only older messages are returned. */
  before?: string;
}

/** Options of {@link Client.connect}. */
export interface ConnectOptions {
  /** Cancels the connect: the client closes and the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * How long the first connection may take, attempts and backoff included
   * (default 30000). The client then closes and the promise rejects with a
   * `timeout` {@link KaiwaError}.
   */
  timeoutMs?: number;
}

/** The part of the WHATWG WebSocket this client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: the browser's, Node's (22+), or the `ws` package's. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Options of a {@link Client}. Every field but `url` has a default. */
export interface ClientOptions {
  /**
   * The WebSocket URL, `wss://HOST/{version}/ws`: `v1` or `v2`. It carries
   * no token and no query.
   */
  url: string;
  /** The user token from the game server. Required unless `getToken` is set. */
  token?: string;
  /**
   * Asked for a token when the client has none, and again whenever the
   * server refuses the one it has (expired, revoked): the client then
   * reconnects with the new one. When it throws, the client closes with
   * the server's refusal as the `error` event (the thrown value as its
   * `cause`). Without it, a refused token closes the client.
   */
  getToken?: () => Promise<string>;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /**
   * Bounds of the wait between connection attempts: a random wait ("full
   * jitter") between 0 and `minBackoffMs` doubled once per failed attempt,
   * at most `maxBackoffMs`. Defaults 250 and 30000. A delay the server asks
   * for (`reconnect`, `closing.reconnect_after_ms`) is honoured instead.
   */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long one connection attempt may take, from dialing to `ready` (default 10000). */
  connectTimeoutMs?: number;
  /**
   * How long a request may take, the wait for a connection and resends
   * included, unless the request says otherwise (default 10000).
   */
  timeoutMs?: number;
  /**
   * How many requests may wait for a connection while the client is
   * (re)connecting (default 100). Beyond it a request is refused at once
   * with `unavailable`.
   */
  maxQueued?: number;
  /**
   * After this long without a frame from the server, the client sends a
   * `ping` (which also refreshes the RTT); after twice this long it takes
   * the connection for dead and reconnects (default 20000; 0 turns it off).
   */
  pingIntervalMs?: number;
  /**
   * Where to resume from (v2): channel → the last seq seen, as returned by
   * {@link Client.lastSeqs} of an earlier client, for example kept across
   * a page reload.
   */
  resume?: Record<string, number>;
  /**
   * The WebSocket constructor to use. Default: the global `WebSocket`
   * (browsers, Node 22+), else the `ws` package (Node 20: `npm install ws`).
   */
  WebSocket?: WebSocketConstructor;
}
